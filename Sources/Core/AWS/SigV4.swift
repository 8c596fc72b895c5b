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
        /// The body's SHA-256 in hex, when its bytes travel apart from `body` (a `ByteBuffer` payload hashed where it lies).
        public var payloadSHA256: String?

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

    /// What signing produced (the intermediate texts are kept for diagnosis and tests).
    public struct Signature: Sendable, Hashable {
        /// Headers to add (header signing).
        public var headers: [Request.Pair]
        /// Query parameters to add, in order (presigning).
        public var query: [Request.Pair]
        /// The canonical request, as hashed.
        public var canonicalRequestBytes: [UInt8]
        /// The string to sign, as signed.
        public var stringToSignBytes: [UInt8]
        /// The hex signature.
        public var signature: String

        /// The canonical request.
        public var canonicalRequest: String { String(decoding: canonicalRequestBytes, as: UTF8.self) }
        /// The string to sign.
        public var stringToSign: String { String(decoding: stringToSignBytes, as: UTF8.self) }
    }

    /// Headers never signed: they are added or changed on the way (botocore's list).
    public static let unsignedHeaders: Set<String> = ["authorization", "user-agent", "x-amzn-trace-id", "expect", "connection"]

    static func isUnsigned(_ name: String) -> Bool {
        switch name.utf8.count {
        case 13: compareIgnoringASCIICase(name, "authorization") == 0
        case 10: compareIgnoringASCIICase(name, "user-agent") == 0 || compareIgnoringASCIICase(name, "connection") == 0
        case 15: compareIgnoringASCIICase(name, "x-amzn-trace-id") == 0
        case 6: compareIgnoringASCIICase(name, "expect") == 0
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
        let payloadHash = payloadHash(request)
        var added = [Request.Pair("X-Amz-Date", amzDate)]
        added.reserveCapacity(5)
        if options.contentSHA256Header { added.append(Request.Pair("X-Amz-Content-Sha256", payloadHash)) }
        if let token = credentials.sessionToken, !options.sessionTokenAfterSigning {
            added.append(Request.Pair("X-Amz-Security-Token", token.reveal()))
        }
        let scope = scope(day: day)
        let (canonical, signedHeaders) = canonicalRequest(request, replacingHeaders: added, extraQuery: [], payloadHash: payloadHash)
        let toSign = Self.stringToSign(amzDate: amzDate, scope: scope, canonicalRequest: canonical)
        let signature = Self.signature(toSign, secret: credentials.secretAccessKey, day: day, region: region, service: service)
        var authorization = ByteWriter(capacity: 64 + credentials.accessKeyID.utf8.count + scope.utf8.count + signedHeaders.utf8.count + signature.utf8.count)
        authorization.append("AWS4-HMAC-SHA256 Credential=")
        authorization.append(credentials.accessKeyID)
        authorization.append(UInt8(ascii: "/"))
        authorization.append(scope)
        authorization.append(", SignedHeaders=")
        authorization.append(signedHeaders)
        authorization.append(", Signature=")
        authorization.append(signature)
        added.append(Request.Pair("Authorization", authorization.string(from: 0)))
        if let token = credentials.sessionToken, options.sessionTokenAfterSigning { added.append(Request.Pair("X-Amz-Security-Token", token.reveal())) }
        return Signature(headers: added, query: [], canonicalRequestBytes: canonical, stringToSignBytes: toSign, signature: signature)
    }

    /// Signs in the query (a presigned URL valid for `expires` seconds, at most 7 days).
    public func presign(_ request: Request, credentials: AWSCredentials, date: Date, expires: Int) -> Signature {
        let (amzDate, day) = Self.timestamps(date)
        let scope = scope(day: day)
        let signedHeaders = canonicalRequest(request, replacingHeaders: [], extraQuery: [], payloadHash: "").signedHeaders
        var parameters = [Request.Pair("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), Request.Pair("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope)"),
                          Request.Pair("X-Amz-Date", amzDate), Request.Pair("X-Amz-Expires", String(min(max(expires, 1), 604_800)))]
        if let token = credentials.sessionToken, !options.sessionTokenAfterSigning { parameters.append(Request.Pair("X-Amz-Security-Token", token.reveal())) }
        parameters.append(Request.Pair("X-Amz-SignedHeaders", signedHeaders))
        let payloadHash = options.unsignedPayload ? "UNSIGNED-PAYLOAD" : Self.sha256Hex(request.body)
        let canonical = canonicalRequest(request, replacingHeaders: [], extraQuery: parameters, payloadHash: payloadHash).bytes
        let toSign = Self.stringToSign(amzDate: amzDate, scope: scope, canonicalRequest: canonical)
        let signature = Self.signature(toSign, secret: credentials.secretAccessKey, day: day, region: region, service: service)
        parameters.append(Request.Pair("X-Amz-Signature", signature))
        if let token = credentials.sessionToken, options.sessionTokenAfterSigning { parameters.append(Request.Pair("X-Amz-Security-Token", token.reveal())) }
        return Signature(headers: [], query: parameters, canonicalRequestBytes: canonical, stringToSignBytes: toSign, signature: signature)
    }

    /// `20150830/us-east-1/iam/aws4_request`.
    func scope(day: String) -> String {
        var scope = ByteWriter(capacity: day.utf8.count + region.utf8.count + service.utf8.count + 15)
        scope.append(day)
        scope.append(UInt8(ascii: "/"))
        scope.append(region)
        scope.append(UInt8(ascii: "/"))
        scope.append(service)
        scope.append("/aws4_request")
        return scope.string(from: 0)
    }

    // MARK: The canonical request

    func payloadHash(_ request: Request) -> String { options.unsignedPayload ? "UNSIGNED-PAYLOAD" : request.payloadSHA256 ?? Self.sha256Hex(request.body) }

    /// The canonical request, written in one pass into one buffer: the method, the path, the sorted query (with
    /// `extraQuery`), the sorted headers (those in `added` replace the request's own of the same name), the
    /// signed-header list and the payload hash.
    func canonicalRequest(_ request: Request, replacingHeaders added: [Request.Pair], extraQuery: [Request.Pair],
                          payloadHash: String) -> (bytes: [UInt8], signedHeaders: String) {
        var out = ByteWriter(capacity: 512 + request.path.utf8.count * 3
                                       + request.headers.reduce(0) { $0 + $1.name.utf8.count * 2 + $1.value.utf8.count + 3 })
        out.appendUppercased(request.method)
        out.append(0x0A)
        appendCanonicalPath(request.path, to: &out)
        out.append(0x0A)
        Self.appendCanonicalQuery(request.query, extraQuery, to: &out)
        out.append(0x0A)
        let signedStart = Self.appendCanonicalHeaders(request.headers, replacedBy: added, to: &out)
        let signedHeaders = out.string(from: signedStart)
        out.append(0x0A)
        out.append(payloadHash)
        return (out.bytes(), signedHeaders)
    }

    /// The path as the service expects it in the canonical request.
    public func canonicalPath(_ path: String) -> String {
        var bytes = ByteWriter(capacity: path.utf8.count * 3 + 1)
        appendCanonicalPath(path, to: &bytes)
        return bytes.string(from: 0)
    }

    func appendCanonicalPath(_ path: String, to out: inout ByteWriter) {
        var value = path.isEmpty ? "/" : path
        if options.normalizePath { value = Self.normalize(value) }
        if options.doubleEncodePath { Self.appendURIEncoded(value, keepSlash: true, to: &out) } else { out.append(value) }
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

    /// Writes the canonical header lines (lower-cased names, sorted; values trimmed with inner whitespace
    /// collapsed; repeated names joined with commas in their order), a blank line, then the signed-header
    /// list, whose start it returns. Names are compared ignoring ASCII case, so no lower-cased copy is made.
    static func appendCanonicalHeaders(_ headers: [Request.Pair], replacedBy added: [Request.Pair], to out: inout ByteWriter) -> Int {
        var entries: [HeaderEntry] = []
        entries.reserveCapacity(headers.count + added.count)
        for (offset, header) in added.enumerated() { entries.append(HeaderEntry(name: HeaderName(header.name), value: header.value, order: headers.count + offset)) }
        for (order, header) in headers.enumerated() {
            var key = HeaderName(header.name)
            if key.hasBlanks { key = HeaderName(lowercasedTrimmed(header.name)) }
            guard !isUnsigned(key.text) else { continue }
            guard !entries[..<added.count].contains(where: { $0.name.compare(key) == 0 }) else { continue }
            entries.append(HeaderEntry(name: key, value: header.value, order: order))
        }
        entries.sort { lhs, rhs in
            let order = lhs.name.compare(rhs.name)
            return order == 0 ? lhs.order < rhs.order : order < 0
        }
        var index = 0
        while index < entries.count {
            out.appendLowercased(entries[index].name.text)
            out.append(UInt8(ascii: ":"))
            appendCollapsed(entries[index].value, to: &out)
            index += 1
            while index < entries.count, entries[index].name.compare(entries[index - 1].name) == 0 {
                out.append(UInt8(ascii: ","))
                appendCollapsed(entries[index].value, to: &out)
                index += 1
            }
            out.append(0x0A)
        }
        out.append(0x0A)
        let signedStart = out.count
        for (position, entry) in entries.enumerated() where position == 0 || entry.name.compare(entries[position - 1].name) != 0 {
            if out.count > signedStart { out.append(UInt8(ascii: ";")) }
            out.appendLowercased(entry.name.text)
        }
        return signedStart
    }

    struct HeaderEntry {
        var name: HeaderName
        var value: String
        var order: Int
    }

    /// A header name with its first 16 bytes lower-cased into two integers, so that most comparisons
    /// are two integer comparisons (names are ASCII and never hold a zero byte, so zero padding keeps the order).
    struct HeaderName {
        var text: String
        var high: UInt64 = 0
        var low: UInt64 = 0
        var short: Bool
        /// Whether the name holds spaces or tabs (to be trimmed before use).
        var hasBlanks = false

        init(_ text: String) {
            self.text = text
            var text = text
            var high: UInt64 = 0, low: UInt64 = 0, blanks = false
            let count = text.withUTF8 { utf8 -> Int in
                for index in 0..<utf8.count {
                    let raw = utf8[index]
                    if raw == 0x20 || raw == 0x09 { blanks = true }
                    guard index < 16 else { continue }
                    let byte = UInt64(raw >= 0x41 && raw <= 0x5A ? raw + 0x20 : raw)
                    if index < 8 { high |= byte << UInt64(56 - 8 * index) } else { low |= byte << UInt64(56 - 8 * (index - 8)) }
                }
                return utf8.count
            }
            self.high = high
            self.low = low
            short = count <= 16
            hasBlanks = blanks
        }

        /// -1, 0 or 1, as the lower-case forms compare.
        @inline(__always) func compare(_ other: HeaderName) -> Int {
            if high != other.high { return high < other.high ? -1 : 1 }
            if low != other.low { return low < other.low ? -1 : 1 }
            if short && other.short { return 0 }
            return SigV4.compareIgnoringASCIICase(text, other.text)
        }
    }

    /// Compares two ASCII names byte by byte with A–Z folded to a–z (the order of their lower-case forms).
    static func compareIgnoringASCIICase(_ lhs: String, _ rhs: String) -> Int {
        @inline(__always) func fold(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte }
        let result: Int? = lhs.utf8.withContiguousStorageIfAvailable { left in
            rhs.utf8.withContiguousStorageIfAvailable { right in
                let count = min(left.count, right.count)
                for index in 0..<count {
                    let a = fold(left[index]), b = fold(right[index])
                    if a != b { return a < b ? -1 : 1 }
                }
                return left.count == right.count ? 0 : (left.count < right.count ? -1 : 1)
            }
        } ?? nil
        if let result { return result }
        let left = lhs.utf8.map(fold), right = rhs.utf8.map(fold)
        return left == right ? 0 : (left.lexicographicallyPrecedes(right) ? -1 : 1)
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

    /// Writes a header value trimmed, each inner run of spaces, tabs and line breaks collapsed into one space.
    static func appendCollapsed(_ value: String, to out: inout ByteWriter) {
        var value = value
        value.withUTF8 { utf8 in
            var clean = true, previousSpace = true              // the fast path: nothing to trim or collapse
            for byte in utf8 {
                if byte == 0x09 || byte == 0x0A || byte == 0x0D || (byte == 0x20 && previousSpace) { clean = false; break }
                previousSpace = byte == 0x20
            }
            if clean && !previousSpace { out.append(utf8); return }
            out.reserve(utf8.count)
            var pendingSpace = false, wrote = false
            for byte in utf8 {
                if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                    pendingSpace = wrote
                } else {
                    if pendingSpace { out.appendUnchecked(0x20); pendingSpace = false }
                    out.appendUnchecked(byte)
                    wrote = true
                }
            }
        }
    }

    /// Writes `a=1&b=2` from both lists, names and values URI-encoded, sorted by encoded name then value.
    static func appendCanonicalQuery(_ query: [Request.Pair], _ extra: [Request.Pair], to out: inout ByteWriter) {
        if query.isEmpty && extra.isEmpty { return }
        var encoded: [Request.Pair] = []
        encoded.reserveCapacity(query.count + extra.count)
        for pair in query { encoded.append(Request.Pair(uriEncode(pair.name, keepSlash: false), uriEncode(pair.value, keepSlash: false))) }
        for pair in extra { encoded.append(Request.Pair(uriEncode(pair.name, keepSlash: false), uriEncode(pair.value, keepSlash: false))) }
        encoded.sort { lhs, rhs in                                    // encoded text is ASCII: byte order, no Unicode collation
            let order = compareBytes(lhs.name, rhs.name)
            return order == 0 ? compareBytes(lhs.value, rhs.value) < 0 : order < 0
        }
        for (index, pair) in encoded.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "&")) }
            out.append(pair.name)
            out.append(UInt8(ascii: "="))
            out.append(pair.value)
        }
    }

    static func compareBytes(_ lhs: String, _ rhs: String) -> Int {
        lhs == rhs ? 0 : (lhs.utf8.lexicographicallyPrecedes(rhs.utf8) ? -1 : 1)
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
        var bytes = ByteWriter(capacity: text.utf8.count * 3)
        appendURIEncoded(text, keepSlash: keepSlash, to: &bytes)
        return bytes.string(from: 0)
    }

    static func appendURIEncoded(_ text: String, keepSlash: Bool, to out: inout ByteWriter) {
        for byte in text.utf8 {
            if unreserved[Int(byte)] || (keepSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
    }

    // MARK: Keys

    /// `AWS4-HMAC-SHA256`, the time, the scope and the canonical request's hash, one per line.
    static func stringToSign(amzDate: String, scope: String, canonicalRequest: [UInt8]) -> [UInt8] {
        var out = ByteWriter(capacity: 100 + scope.utf8.count)
        out.append("AWS4-HMAC-SHA256\n")
        out.append(amzDate)
        out.append(0x0A)
        out.append(scope)
        out.append(0x0A)
        appendHex(sha256(canonicalRequest), to: &out)
        return out.bytes()
    }

    static func signature(_ stringToSign: [UInt8], secret: Secret<String>, day: String, region: String, service: String) -> String {
        let key = SigningKeyCache.shared.key(secret: secret, day: day, region: region, service: service)
        return stringToSign.withUnsafeBytes { hex(key.authenticationCode(for: $0)) }
    }

    static func appendHex(_ bytes: some ContiguousBytes, to out: inout ByteWriter) {
        bytes.withUnsafeBytes { raw in
            out.reserve(raw.count * 2)
            for byte in raw {
                out.appendUnchecked(lowerHex[Int(byte >> 4)])
                out.appendUnchecked(lowerHex[Int(byte & 0x0F)])
            }
        }
    }

    /// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")`.
    static func signingKey(secret: Secret<String>, day: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array(("AWS4" + secret.reveal()).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String { hex(sha256(bytes)) }

    /// The SHA-256 (hex) of bytes where they lie (a payload buffer).
    static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var hasher = SHA256()
        hasher.update(bufferPointer: bytes)
        return hex(hasher.finalize())
    }

    static func sha256(_ bytes: [UInt8]) -> SHA256.Digest {
        var hasher = SHA256()
        bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize()
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
        let amzDate = String(unsafeUninitializedCapacity: 16) { buffer in
            func put(_ value: Int64, width: Int, at position: Int) {
                var rest = value
                for offset in stride(from: width - 1, through: 0, by: -1) {
                    buffer[position + offset] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                    rest /= 10
                }
            }
            put(year, width: 4, at: 0)
            put(month, width: 2, at: 4)
            put(day, width: 2, at: 6)
            buffer[8] = UInt8(ascii: "T")
            put(secondOfDay / 3600, width: 2, at: 9)
            put(secondOfDay / 60 % 60, width: 2, at: 11)
            put(secondOfDay % 60, width: 2, at: 13)
            buffer[15] = UInt8(ascii: "Z")
            return 16
        }
        let dayText = String(unsafeUninitializedCapacity: 8) { buffer in
            var amzDate = amzDate
            return amzDate.withUTF8 { utf8 in
                for index in 0..<8 { buffer[index] = utf8[index] }
                return 8
            }
        }
        return (amzDate, dayText)
    }
}

/// Derived SigV4 keys, one per secret, day, region and service — four HMACs saved on every signature,
/// as the AWS SDKs do. Keys are bound to a hash of the secret (the secret itself is not kept as a key).
final class SigningKeyCache: Sendable {
    static let shared = SigningKeyCache()
    /// Keyed by the secret with the scope.
    private struct Scope: Hashable {
        var day: String, region: String, service: String, secret: String
    }
    private let keys = Mutex<(last: (Scope, PreparedHMAC)?, all: [Scope: PreparedHMAC])>((nil, [:]))

    func key(secret: Secret<String>, day: String, region: String, service: String) -> PreparedHMAC {
        let scope = Scope(day: day, region: region, service: service, secret: secret.reveal())
        let found: PreparedHMAC? = keys.withLock { state in
            if let last = state.last, last.0 == scope { return last.1 }          // the common case: one client, one service
            if let cached = state.all[scope] { state.last = (scope, cached); return cached }
            return nil
        }
        if let found { return found }
        let key = PreparedHMAC(key: SigV4.signingKey(secret: secret, day: day, region: region, service: service))
        keys.withLock { state in
            if state.all.count > 256 { state.all.removeAll() }
            state.all[scope] = key
            state.last = (scope, key)
        }
        return key
    }
}

/// HMAC-SHA256 (RFC 2104) with the key's two padded blocks already hashed: a code costs the message's
/// blocks plus two, and no generic `DataProtocol` walk.
struct PreparedHMAC: Sendable {
    private let inner: SHA256
    private let outer: SHA256

    init(key: SymmetricKey) {
        var block = [UInt8](repeating: 0, count: 64)
        key.withUnsafeBytes { raw in                      // SigV4 keys are 32 bytes: no hashing of a long key needed
            precondition(raw.count <= 64, "PreparedHMAC takes keys of at most one SHA-256 block")
            for (index, byte) in raw.enumerated() { block[index] = byte }
        }
        var inner = SHA256(), outer = SHA256()
        inner.update(data: block.map { $0 ^ 0x36 })
        outer.update(data: block.map { $0 ^ 0x5C })
        self.inner = inner
        self.outer = outer
    }

    func authenticationCode(for message: UnsafeRawBufferPointer) -> SHA256.Digest {
        var inner = inner
        inner.update(bufferPointer: message)
        let innerDigest = inner.finalize()
        var outer = outer
        innerDigest.withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize()
    }
}

/// A growable byte buffer for building canonical texts: appends without copy-on-write checks, one
/// allocation in the common case.
struct ByteWriter: ~Copyable {
    private var storage: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        storage = .allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    /// Makes room for `extra` more bytes.
    @inline(__always) mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    private mutating func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let newStorage = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newStorage.update(from: storage, count: count)
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
    }

    /// Appends a byte after `reserve`.
    @inline(__always) mutating func appendUnchecked(_ byte: UInt8) {
        storage[count] = byte
        count += 1
    }

    @inline(__always) mutating func append(_ byte: UInt8) {
        reserve(1)
        appendUnchecked(byte)
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append($0) }
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        reserve(bytes.count)
        if let base = bytes.baseAddress { (storage + count).update(from: base, count: bytes.count) }
        count += bytes.count
    }

    /// Appends ASCII text with A–Z lowered.
    mutating func appendLowercased(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            reserve(utf8.count)
            for byte in utf8 { appendUnchecked(byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte) }
        }
    }

    /// Appends ASCII text with a–z raised.
    mutating func appendUppercased(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            reserve(utf8.count)
            for byte in utf8 { appendUnchecked(byte >= 0x61 && byte <= 0x7A ? byte - 0x20 : byte) }
        }
    }

    /// The bytes from `start` as UTF-8 text.
    func string(from start: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: storage + start, count: count - start), as: UTF8.self)
    }

    /// A copy of the bytes.
    func bytes() -> [UInt8] { Array(UnsafeBufferPointer(start: storage, count: count)) }
}
