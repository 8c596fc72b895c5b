import Crypto
import Foundation
import NimbusCore
import Synchronization

/// AWS credentials: an access key, its secret, and a session token for temporary credentials.
public struct AWSCredentials: Sendable, Hashable, CustomStringConvertible {
    /// `AKIA…` or `ASIA…`.
    public var accessKeyID: String
    /// The secret. Never logged.
    public var secretAccessKey: Secret<String>
    /// The session token of temporary credentials.
    public var sessionToken: Secret<String>?
    /// When temporary credentials expire.
    public var expiration: Date?

    /// Creates credentials.
    public init(accessKeyID: String, secretAccessKey: Secret<String>, sessionToken: Secret<String>? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    public static func == (lhs: AWSCredentials, rhs: AWSCredentials) -> Bool {
        lhs.accessKeyID == rhs.accessKeyID && lhs.secretAccessKey.reveal() == rhs.secretAccessKey.reveal()
            && lhs.sessionToken?.reveal() == rhs.sessionToken?.reveal() && lhs.expiration == rhs.expiration
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(accessKeyID) }

    public var description: String { "AWSCredentials(\(accessKeyID), secret: <redacted>\(sessionToken == nil ? "" : ", session token: <redacted>"))" }
}

/// Signature Version 4: the canonical request, the string to sign, the derived key and the
/// signature — in an `Authorization` header or in a presigned URL's query.
///
/// ```swift
/// let signer = SigV4(service: "s3", region: "eu-west-1", options: .s3)
/// var request = SigV4.Request(method: "GET", path: "/bucket/key.txt", headers: [("Host", "s3.eu-west-1.amazonaws.com")])
/// let signed = signer.sign(request, credentials: credentials, date: Date())
/// signed.headers                                  // X-Amz-Date, X-Amz-Content-Sha256, Authorization...
/// let url = signer.presign(request, credentials: credentials, date: Date(), expires: 3600).query
/// ```
/// Passes every v4 case of botocore's classic suite and aws-c-auth's suite (see the tests).
public struct SigV4: Sendable {
    /// How a service wants its requests signed.
    public struct Options: Sendable, Hashable {
        /// Remove `.`/`..` segments and repeated slashes from the path (every service but S3).
        public var normalizePath: Bool
        /// URI-encode the (already encoded) path again (every service but S3).
        public var doubleEncodePath: Bool
        /// Send and sign `X-Amz-Content-Sha256` (S3; and any service that asks for a signed body).
        public var contentSHA256Header: Bool
        /// Sign with `UNSIGNED-PAYLOAD` instead of the body's hash (S3 presigned URLs, streaming uploads).
        public var unsignedPayload: Bool
        /// Add the session token after signing instead of signing it (a few legacy services).
        public var sessionTokenAfterSigning: Bool

        /// Creates options.
        public init(normalizePath: Bool = true, doubleEncodePath: Bool = true, contentSHA256Header: Bool = false,
                    unsignedPayload: Bool = false, sessionTokenAfterSigning: Bool = false) {
            self.normalizePath = normalizePath
            self.doubleEncodePath = doubleEncodePath
            self.contentSHA256Header = contentSHA256Header
            self.unsignedPayload = unsignedPayload
            self.sessionTokenAfterSigning = sessionTokenAfterSigning
        }

        /// Every service but S3.
        public static let standard = Options()
        /// S3: the path as sent, `X-Amz-Content-Sha256` on every request.
        public static let s3 = Options(normalizePath: false, doubleEncodePath: false, contentSHA256Header: true)
    }

    /// What is signed.
    public struct Request: Sendable, Hashable {
        /// `GET`, `POST`...
        public var method: String
        /// The path as sent on the wire (percent-encoded for S3; other services encode it again).
        public var path: String
        /// Query parameters, decoded.
        public var query: [Pair]
        /// Headers; `Host` must be among them.
        public var headers: [Pair]
        /// The body.
        public var body: [UInt8]

        /// A name and a value.
        public struct Pair: Sendable, Hashable {
            public var name: String
            public var value: String
            public init(_ name: String, _ value: String) {
                self.name = name
                self.value = value
            }
        }

        /// Creates a request.
        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], body: [UInt8] = []) {
            self.method = method
            self.path = path
            self.query = query.map { Pair($0.0, $0.1) }
            self.headers = headers.map { Pair($0.0, $0.1) }
            self.body = body
        }

        /// Creates a request from a URL's path and raw query (`a=1&b=%20x`).
        public init(method: String, path: String, rawQuery: String?, headers: [(String, String)], body: [UInt8] = []) {
            self.init(method: method, path: path, query: SigV4.parseQuery(rawQuery ?? ""), headers: headers, body: body)
        }
    }

    /// What signing produced (the intermediate strings are kept for diagnosis and tests).
    public struct Signature: Sendable, Hashable {
        /// Headers to add (header signing).
        public var headers: [Request.Pair]
        /// Query parameters to add, in order (presigning).
        public var query: [Request.Pair]
        /// The canonical request.
        public var canonicalRequest: String
        /// The string to sign.
        public var stringToSign: String
        /// The hex signature.
        public var signature: String
    }

    /// Headers never signed: they are added or changed on the way (botocore's list).
    public static let unsignedHeaders: Set<String> = ["authorization", "user-agent", "x-amzn-trace-id", "expect", "connection"]

    static func isUnsigned(_ name: String) -> Bool {
        switch name {
        case "authorization", "user-agent", "x-amzn-trace-id", "expect", "connection": true
        default: false
        }
    }

    /// The service's signing name (`s3`, `sts`, `dynamodb`...).
    public var service: String
    /// The region (`us-east-1`).
    public var region: String
    /// The service's rules.
    public var options: Options

    /// Creates a signer.
    public init(service: String, region: String, options: Options = .standard) {
        self.service = service
        self.region = region
        self.options = options
    }

    // MARK: Signing

    /// Signs with an `Authorization` header.
    public func sign(_ request: Request, credentials: AWSCredentials, date: Date) -> Signature {
        let (amzDate, day) = Self.timestamps(date)
        var request = request
        let payloadHash = payloadHash(request.body)
        var added = [Request.Pair("X-Amz-Date", amzDate)]
        if options.contentSHA256Header { added.append(Request.Pair("X-Amz-Content-Sha256", payloadHash)) }
        if let token = credentials.sessionToken, !options.sessionTokenAfterSigning {
            added.append(Request.Pair("X-Amz-Security-Token", token.reveal()))
        }
        let addedNames = added.map { Self.lowercasedTrimmed($0.name) }          // two or three names: a list beats a set
        request.headers.removeAll { header in addedNames.contains { Self.equalsIgnoringASCIICase(header.name, lowercased: $0) } }
        request.headers += added
        let (canonicalHeaders, signedHeaders) = canonicalHeaders(request.headers)
        let canonical = canonicalRequest(request, canonicalHeaders: canonicalHeaders, signedHeaders: signedHeaders,
                                         canonicalQuery: Self.canonicalQuery(request.query), payloadHash: payloadHash)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = Self.stringToSign(amzDate: amzDate, scope: scope, canonicalRequest: canonical)
        let signature = Self.signature(toSign, secret: credentials.secretAccessKey, day: day, region: region, service: service)
        added.append(Request.Pair("Authorization",
                                  "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"))
        if let token = credentials.sessionToken, options.sessionTokenAfterSigning { added.append(Request.Pair("X-Amz-Security-Token", token.reveal())) }
        return Signature(headers: added, query: [], canonicalRequest: canonical, stringToSign: toSign, signature: signature)
    }

    /// Signs in the query (a presigned URL valid for `expires` seconds, at most 7 days).
    public func presign(_ request: Request, credentials: AWSCredentials, date: Date, expires: Int) -> Signature {
        let (amzDate, day) = Self.timestamps(date)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let (canonicalHeaders, signedHeaders) = canonicalHeaders(request.headers)
        var parameters = [Request.Pair("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), Request.Pair("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope)"),
                          Request.Pair("X-Amz-Date", amzDate), Request.Pair("X-Amz-Expires", String(min(max(expires, 1), 604_800)))]
        if let token = credentials.sessionToken, !options.sessionTokenAfterSigning { parameters.append(Request.Pair("X-Amz-Security-Token", token.reveal())) }
        parameters.append(Request.Pair("X-Amz-SignedHeaders", signedHeaders))
        let payloadHash = options.unsignedPayload ? "UNSIGNED-PAYLOAD" : Self.sha256Hex(request.body)
        let canonical = canonicalRequest(request, canonicalHeaders: canonicalHeaders, signedHeaders: signedHeaders,
                                         canonicalQuery: Self.canonicalQuery(request.query + parameters), payloadHash: payloadHash)
        let toSign = Self.stringToSign(amzDate: amzDate, scope: scope, canonicalRequest: canonical)
        let signature = Self.signature(toSign, secret: credentials.secretAccessKey, day: day, region: region, service: service)
        parameters.append(Request.Pair("X-Amz-Signature", signature))
        if let token = credentials.sessionToken, options.sessionTokenAfterSigning { parameters.append(Request.Pair("X-Amz-Security-Token", token.reveal())) }
        return Signature(headers: [], query: parameters, canonicalRequest: canonical, stringToSign: toSign, signature: signature)
    }

    // MARK: The canonical request

    func payloadHash(_ body: [UInt8]) -> String { options.unsignedPayload ? "UNSIGNED-PAYLOAD" : Self.sha256Hex(body) }

    func canonicalRequest(_ request: Request, canonicalHeaders: String, signedHeaders: String, canonicalQuery: String, payloadHash: String) -> String {
        let path = canonicalPath(request.path)
        var bytes = [UInt8]()
        bytes.reserveCapacity(request.method.utf8.count + path.utf8.count + canonicalQuery.utf8.count + canonicalHeaders.utf8.count
                              + signedHeaders.utf8.count + payloadHash.utf8.count + 5)
        for (index, part) in [request.method.uppercased(), path, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: "\n")) }
            bytes += part.utf8
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The path as the service expects it in the canonical request.
    public func canonicalPath(_ path: String) -> String {
        var value = path.isEmpty ? "/" : path
        if options.normalizePath { value = Self.normalize(value) }
        return options.doubleEncodePath ? Self.uriEncode(value, keepSlash: true) : value
    }

    /// Whether a path has no empty, `.` or `..` segment (a byte scan; most paths take this fast path).
    static func isNormal(_ path: String) -> Bool {
        var previousSlash = false, segmentStart = true, dots = 0
        var first = true
        for byte in path.utf8 {
            if first { first = false; guard byte == UInt8(ascii: "/") else { return false } ; previousSlash = true; continue }
            if byte == UInt8(ascii: "/") {
                if previousSlash || (segmentStart && dots > 0) { return false }
                previousSlash = true
                segmentStart = true
                dots = 0
            } else {
                previousSlash = false
                if segmentStart && byte == UInt8(ascii: ".") { dots += 1; if dots > 2 { segmentStart = false } } else { segmentStart = false }
            }
        }
        return !(segmentStart && dots > 0)
    }

    /// Removes `.`/`..` segments and empty segments, keeping a leading and a trailing slash.
    static func normalize(_ path: String) -> String {
        if isNormal(path) { return path }
        var segments: [Substring] = []
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for part in parts {
            switch part {
            case "", ".": continue
            case "..": if !segments.isEmpty { segments.removeLast() }
            default: segments.append(part)
            }
        }
        let trailing = path.hasSuffix("/") || path.hasSuffix("/.") || path.hasSuffix("/..")
        var result = "/" + segments.joined(separator: "/")
        if trailing && result != "/" { result += "/" }
        return result
    }

    /// Lower-cased, trimmed, whitespace-collapsed headers, sorted; repeated names joined with commas.
    func canonicalHeaders(_ headers: [Request.Pair]) -> (canonical: String, signed: String) {
        var entries: [(name: String, value: String, order: Int)] = []
        entries.reserveCapacity(headers.count)
        for (order, header) in headers.enumerated() {
            let name = Self.lowercasedTrimmed(header.name)
            guard !Self.isUnsigned(name) else { continue }
            entries.append((name, Self.collapseWhitespace(header.value), order))
        }
        // Sort by name, keeping the order of repeated names (their values are joined in order).
        entries.sort { $0.name == $1.name ? $0.order < $1.order : $0.name < $1.name }
        var canonical = [UInt8]()
        var signed = [UInt8]()
        canonical.reserveCapacity(entries.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 2 })
        var index = 0
        while index < entries.count {
            let name = entries[index].name
            if !signed.isEmpty { signed.append(UInt8(ascii: ";")) }
            signed += name.utf8
            canonical += name.utf8
            canonical.append(UInt8(ascii: ":"))
            canonical += entries[index].value.utf8
            index += 1
            while index < entries.count, entries[index].name == name {
                canonical.append(UInt8(ascii: ","))
                canonical += entries[index].value.utf8
                index += 1
            }
            canonical.append(UInt8(ascii: "\n"))
        }
        return (String(decoding: canonical, as: UTF8.self), String(decoding: signed, as: UTF8.self))
    }

    /// ASCII-lowercases and trims a header name (header names are ASCII tokens).
    static func lowercasedTrimmed(_ name: String) -> String {
        if !name.utf8.contains(where: { ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x20 || $0 == 0x09 }) { return name }   // already canonical
        return String(unsafeUninitializedCapacity: name.utf8.count) { buffer in
            var count = 0
            for byte in name.utf8 where byte != 0x20 && byte != 0x09 {
                buffer[count] = byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
                count += 1
            }
            return count
        }
    }

    /// Whether `name` equals the lower-case `lowercased`, ignoring ASCII case (no allocation).
    static func equalsIgnoringASCIICase(_ name: String, lowercased: String) -> Bool {
        guard name.utf8.count == lowercased.utf8.count else { return false }
        for (byte, other) in zip(name.utf8, lowercased.utf8) where (byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte) != other { return false }
        return true
    }

    /// Lower-case hex of contiguous bytes (a digest, a MAC), without generic iteration.
    static func hex(_ bytes: some ContiguousBytes) -> String {
        bytes.withUnsafeBytes { raw in
            String(unsafeUninitializedCapacity: raw.count * 2) { buffer in
                var index = 0
                for byte in raw {
                    buffer[index] = lowerHex[Int(byte >> 4)]
                    buffer[index + 1] = lowerHex[Int(byte & 0x0F)]
                    index += 2
                }
                return index
            }
        }
    }

    private static let lowerHex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Trims a header value and collapses each run of spaces, tabs and line breaks into one space.
    static func collapseWhitespace(_ value: String) -> String {
        // Fast path: no tabs or line breaks, no leading, trailing or doubled spaces.
        var clean = true, previousSpace = true
        for byte in value.utf8 {
            if byte == 0x09 || byte == 0x0A || byte == 0x0D || (byte == 0x20 && previousSpace) { clean = false; break }
            previousSpace = byte == 0x20
        }
        if clean && !previousSpace || value.isEmpty { return value }
        var out = [UInt8]()
        out.reserveCapacity(value.utf8.count)
        var pendingSpace = false
        for byte in value.utf8 {
            if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(0x20); pendingSpace = false }
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `a=1&b=2`, keys and values URI-encoded, sorted by key then value.
    static func canonicalQuery(_ query: [Request.Pair]) -> String {
        if query.isEmpty { return "" }
        let encoded: [(name: String, value: String)] = query.map { (uriEncode($0.name, keepSlash: false), uriEncode($0.value, keepSlash: false)) }
        let sorted = encoded.sorted { lhs, rhs in lhs.name == rhs.name ? lhs.value < rhs.value : lhs.name < rhs.name }
        return sorted.map { $0.name + "=" + $0.value }.joined(separator: "&")
    }

    /// Splits and percent-decodes a raw query (`+` stays a plus, as AWS reads it).
    public static func parseQuery(_ raw: String) -> [(String, String)] {
        raw.split(separator: "&", omittingEmptySubsequences: true).map { item in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            return (name, value)
        }
    }

    private static let unreserved: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for byte in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8 { table[Int(byte)] = true }
        return table
    }()
    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// RFC 3986 encoding of everything but unreserved characters (and `/` when asked).
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        if text.utf8.allSatisfy({ unreserved[Int($0)] || (keepSlash && $0 == UInt8(ascii: "/")) }) { return text }   // nothing to encode
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if unreserved[Int(byte)] || (keepSlash && byte == UInt8(ascii: "/")) {
                bytes.append(byte)
            } else {
                bytes += [UInt8(ascii: "%"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Keys

    static func stringToSign(amzDate: String, scope: String, canonicalRequest: String) -> String {
        "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(sha256Hex(canonicalRequest))"
    }

    static func signature(_ stringToSign: String, secret: Secret<String>, day: String, region: String, service: String) -> String {
        var mac = SigningKeyCache.shared.mac(secret: secret, day: day, region: region, service: service)
        var text = stringToSign
        text.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
        return hex(mac.finalize())
    }

    /// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")`.
    static func signingKey(secret: Secret<String>, day: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array(("AWS4" + secret.reveal()).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { hex(SHA256.hash(data: $0)) } }

    static func sha256Hex(_ text: String) -> String {
        var text = text
        return text.withUTF8 { hex(SHA256.hash(data: UnsafeRawBufferPointer($0))) }
    }

    /// `20150830T123600Z` and `20150830` (integer civil-date arithmetic; no Calendar on the hot path).
    static func timestamps(_ date: Date) -> (amzDate: String, day: String) {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Howard Hinnant's days-from-civil inverse.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let fields: [(Int64, Int)] = [(year, 4), (month, 2), (day, 2), (secondOfDay / 3600, 2), (secondOfDay / 60 % 60, 2), (secondOfDay % 60, 2)]
        let amzDate = String(unsafeUninitializedCapacity: 16) { buffer in
            var position = 0
            for (index, (value, width)) in fields.enumerated() {
                if index == 3 { buffer[position] = UInt8(ascii: "T"); position += 1 }
                var rest = value
                for offset in stride(from: width - 1, through: 0, by: -1) {
                    buffer[position + offset] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                position += width
            }
            buffer[position] = UInt8(ascii: "Z")
            return position + 1
        }
        return (amzDate, String(amzDate.prefix(8)))
    }
}

/// Derived SigV4 keys, one per secret, day, region and service — four HMACs saved on every signature,
/// as the AWS SDKs do. Keys are bound to a hash of the secret (the secret itself is not kept as a key).
final class SigningKeyCache: Sendable {
    static let shared = SigningKeyCache()
    /// Keyed by the secret with the scope; an HMAC already keyed with the derived key is kept, so each
    /// signature copies it and only hashes the string to sign.
    private struct Scope: Hashable {
        var day: String, region: String, service: String, secret: String
    }
    private let macs = Mutex<(last: (Scope, HMAC<SHA256>)?, all: [Scope: HMAC<SHA256>])>((nil, [:]))

    func mac(secret: Secret<String>, day: String, region: String, service: String) -> HMAC<SHA256> {
        let scope = Scope(day: day, region: region, service: service, secret: secret.reveal())
        let found: HMAC<SHA256>? = macs.withLock { state in
            if let last = state.last, last.0 == scope { return last.1 }          // the common case: one client, one service
            if let cached = state.all[scope] { state.last = (scope, cached); return cached }
            return nil
        }
        if let found { return found }
        let mac = HMAC<SHA256>(key: SigV4.signingKey(secret: secret, day: day, region: region, service: service))
        macs.withLock { state in
            if state.all.count > 256 { state.all.removeAll() }
            state.all[scope] = mac
            state.last = (scope, mac)
        }
        return mac
    }
}
