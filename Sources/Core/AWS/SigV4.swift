import Crypto
import Foundation
import NimbusCore

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
        let addedNames = Set(added.map { $0.name.lowercased() })
        request.headers.removeAll { addedNames.contains($0.name.lowercased()) }
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
        [request.method.uppercased(), canonicalPath(request.path), canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].joined(separator: "\n")
    }

    /// The path as the service expects it in the canonical request.
    public func canonicalPath(_ path: String) -> String {
        var value = path.isEmpty ? "/" : path
        if options.normalizePath { value = Self.normalize(value) }
        return options.doubleEncodePath ? Self.uriEncode(value, keepSlash: true) : value
    }

    /// Removes `.`/`..` segments and empty segments, keeping a leading and a trailing slash.
    static func normalize(_ path: String) -> String {
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
        var merged: [String: [String]] = [:]
        for header in headers {
            let name = header.name.lowercased().trimmingCharacters(in: .whitespaces)
            guard !Self.unsignedHeaders.contains(name) else { continue }
            let value = header.value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
            merged[name, default: []].append(value)
        }
        let names = merged.keys.sorted()
        let canonical = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        return (canonical, names.joined(separator: ";"))
    }

    /// `a=1&b=2`, keys and values URI-encoded, sorted by key then value.
    static func canonicalQuery(_ query: [Request.Pair]) -> String {
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

    private static let unreserved: Set<UInt8> = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// RFC 3986 encoding of everything but unreserved characters (and `/` when asked).
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if unreserved.contains(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                bytes.append(byte)
            } else {
                bytes += [UInt8(ascii: "%"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Keys

    static func stringToSign(amzDate: String, scope: String, canonicalRequest: String) -> String {
        "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(sha256Hex(Array(canonicalRequest.utf8)))"
    }

    static func signature(_ stringToSign: String, secret: Secret<String>, day: String, region: String, service: String) -> String {
        let key = signingKey(secret: secret, day: day, region: region, service: service)
        return HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key).hexString
    }

    /// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")`.
    static func signingKey(secret: Secret<String>, day: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array(("AWS4" + secret.reveal()).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).hexString }

    /// `20150830T123600Z` and `20150830`.
    static func timestamps(_ date: Date) -> (amzDate: String, day: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let day = String(format: "%04d%02d%02d", c.year!, c.month!, c.day!)
        return (day + String(format: "T%02d%02d%02dZ", c.hour!, c.minute!, c.second!), day)
    }
}
