import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import Synchronization

/// The shared AWS client every AWS adapter is built on — one SigV4 signer, one credential chain,
/// one endpoint resolver, the five wire protocols, AWS's error shapes mapped to `NimbusError`, the
/// standard retry mode (3 attempts, a shared retry quota), and clock-skew correction.
///
/// Operations come from the committed service models: typed through the generated services
/// (``AWS/S3``, ``AWS/DynamoDB``…) or untyped through ``call(_:_:input:payload:maxAttempts:)``; both bind
/// inputs to HTTP with one model-driven serializer (``AWSRequestSerializer``).
///
/// ```swift
/// let aws = AWSClient(configuration: .init(region: "eu-west-1"))          // credentials and region as the AWS SDKs find them
/// let identity = try await AWS.STS(client: aws).getCallerIdentity()
/// let item = try await aws.call("dynamodb", "GetItem", input: ["TableName": "users", "Key": ["id": ["S": "42"]]])
/// let object = try await AWS.S3(client: aws).getObject(.init(bucket: "docs", key: "a.txt"))
/// ```
public final class AWSClient: Sendable {
    /// Settings.
    public struct Configuration: Sendable {
        /// The region; `nil` reads `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's `region`.
        public var region: String?
        /// Where credentials come from (default: the SDKs' chain — environment, web identity, profile, container, IMDS).
        public var credentials: (any AWSCredentialProvider)?
        /// The profile (default `AWS_PROFILE` or `default`).
        public var profile: String?
        /// An endpoint for every service (moto, LocalStack); otherwise `AWS_ENDPOINT_URL[_<SERVICE>]` and the profile are read.
        public var endpointURL: String?
        /// S3 path-style addressing (`host/bucket/key`); always used for custom endpoints on IP addresses or localhost.
        public var s3ForcePathStyle: Bool
        /// Attempts per call (standard mode: 3).
        public var maxAttempts: Int
        /// The time limit of one attempt.
        public var timeout: Duration
        /// The environment to read (tests pass their own).
        public var environment: [String: String]

        /// Creates settings.
        public init(region: String? = nil, credentials: (any AWSCredentialProvider)? = nil, profile: String? = nil, endpointURL: String? = nil,
                    s3ForcePathStyle: Bool = false, maxAttempts: Int = 3, timeout: Duration = .seconds(60),
                    environment: [String: String] = ProcessInfo.processInfo.environment) {
            self.region = region
            self.credentials = credentials
            self.profile = profile
            self.endpointURL = endpointURL
            self.s3ForcePathStyle = s3ForcePathStyle
            self.maxAttempts = maxAttempts
            self.timeout = timeout
            self.environment = environment
        }
    }

    /// The region requests go to.
    public let region: String
    /// The credentials in use.
    public let credentialProvider: any AWSCredentialProvider
    /// The endpoints in use.
    public let endpoints: AWSEndpointResolver
    let configuration: Configuration
    let http: NimbusHTTPClient
    private let quota = RetryBudget()
    private let clockOffset = Mutex<TimeInterval>(0)
    private let logger: Logger

    /// Creates a client.
    public init(configuration: Configuration = .init(), httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.configuration = configuration
        let environment = configuration.environment
        let profileName = configuration.profile ?? environment["AWS_PROFILE"] ?? "default"
        let shared = AWSSharedConfig.load(environment: environment)
        let profile = shared.profile(profileName)
        region = configuration.region ?? environment["AWS_REGION"].nonEmpty ?? environment["AWS_DEFAULT_REGION"].nonEmpty
            ?? profile["region"] ?? "us-east-1"
        endpoints = AWSEndpointResolver(endpointURL: configuration.endpointURL, environment: environment, profileEndpointURL: profile["endpoint_url"])
        let logger = logger ?? Logger(label: "nimbus.aws")
        self.logger = logger
        http = NimbusHTTPClient(configuration: .init(service: "aws", retry: .none, retryBudget: nil, timeout: configuration.timeout),
                                httpClient: httpClient, logger: logger)
        credentialProvider = configuration.credentials
            ?? AWSDefaultCredentialChain(profile: profileName, region: configuration.region ?? environment["AWS_REGION"] ?? profile["region"],
                                         environment: environment, shared: shared, httpClient: httpClient)
    }

    /// The clock correction learned from a `RequestTimeTooSkewed` answer (server time − local time).
    public var clockSkew: TimeInterval { clockOffset.withLock { $0 } }

    // MARK: Helpers

    /// An answer as it came.
    struct Response: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: ByteBuffer
    }

    /// `application/x-www-form-urlencoded` escaping: RFC 3986 unreserved characters kept, a space as `+`.
    static func formEscape(_ text: String) -> String {
        SigV4.uriEncode(text, keepSlash: false).replacingOccurrences(of: "%20", with: "+")
    }

    /// S3's encoded path for an object (path-style): `/bucket/key` with the key's segments encoded.
    public static func s3Path(bucket: String, key: String? = nil) -> String {
        "/" + bucket + (key.map { "/" + SigV4.uriEncode($0, keepSlash: true) } ?? "")
    }

    /// A presigned URL anyone can use until it expires (S3 GET/PUT, or any service's query-signable call).
    public func presign(_ service: AWSService, method: HTTPMethod, path: String, query: [(String, String)] = [], expires: Duration) async throws -> String {
        let target = try await target(service, path: path)
        let credentials = try await credentialProvider.credentials()
        var options: SigV4.Options = service == .s3 ? .s3 : .standard
        options.contentSHA256Header = false
        options.unsignedPayload = true
        let signer = SigV4(service: service.signingName, region: target.signingRegion, options: options)
        let request = SigV4.Request(method: method.rawValue, path: target.path, query: query, headers: [("Host", target.host)])
        let signed = signer.presign(request, credentials: credentials, date: now(), expires: Int(expires.nimbusSeconds))
        let all = query.map { SigV4.Request.Pair($0.0, $0.1) } + signed.query
        let rendered = all.map { "\(SigV4.uriEncode($0.name, keepSlash: false))=\(SigV4.uriEncode($0.value, keepSlash: false))" }.joined(separator: "&")
        return "\(target.scheme)://\(target.host)\(target.path)?\(rendered)"
    }

    // MARK: The exchange

    struct Target {
        var scheme: String
        var host: String
        var path: String
        var baseURL: String
        var signingRegion: String
    }

    func target(_ service: AWSService, path: String, hostPrefix: String? = nil) async throws -> Target {
        let endpoint = endpoints.resolve(service, region: region)
        guard let components = URLComponents(string: endpoint.url), let scheme = components.scheme, let host = components.host else {
            throw NimbusError(.invalidArgument, "'\(endpoint.url)' is not an endpoint URL")
        }
        let authority = host + (components.port.map { ":\($0)" } ?? "")
        let basePath = components.path == "/" ? "" : components.path
        var finalPath = basePath + (path.isEmpty ? "/" : path)
        // A host prefix (`{AccountId}.`) is not applied to custom endpoints on IP addresses or localhost (moto, LocalStack).
        var finalHost = (endpoint.isCustom && Self.isLocal(host) ? "" : hostPrefix ?? "") + authority
        if service == .s3, !configuration.s3ForcePathStyle, !endpoint.isCustom || !Self.isLocal(host) {
            // Virtual-hosted style when the bucket is a DNS label: bucket.s3.region.amazonaws.com/key.
            let parts = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: true)
            if let bucket = parts.first.map(String.init), Self.isDNSCompatible(bucket, secure: scheme == "https") {
                finalHost = "\(bucket).\(authority)"
                finalPath = basePath + "/" + (parts.count > 1 ? String(parts[1]) : "")
            }
        }
        return Target(scheme: scheme, host: finalHost, path: finalPath, baseURL: "\(scheme)://\(finalHost)", signingRegion: endpoint.signingRegion)
    }

    static func isLocal(_ host: String) -> Bool {
        host == "localhost" || host.allSatisfy { $0.isNumber || $0 == "." } || host.contains(":")
    }

    static func isDNSCompatible(_ bucket: String, secure: Bool) -> Bool {
        guard (3...63).contains(bucket.count), bucket.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }),
              bucket.first?.isLetter == true || bucket.first?.isNumber == true, !bucket.contains("..") else { return false }
        return !(secure && bucket.contains("."))           // dots break the TLS wildcard certificate
    }

    func now() -> Date { Date().addingTimeInterval(clockOffset.withLock { $0 }) }

    /// Signs and sends with the standard retry mode; on a clock-skew refusal, learns the server's time and retries.
    func execute(_ service: AWSService, operation: String, method: HTTPMethod, path: String, query: [(String, String)],
                 headers: [(String, String)], body: [UInt8], payload: ByteBuffer? = nil, maxAttempts: Int? = nil, hostPrefix: String? = nil,
                 unsigned: Bool = false) async throws -> Response {
        let target = try await target(service, path: path, hostPrefix: hostPrefix)
        let policy = RetryPolicy(maxAttempts: max(1, maxAttempts ?? configuration.maxAttempts), baseDelay: .milliseconds(100), maxDelay: .seconds(20))
        var skewRetried = false
        while true {
            do {
                return try await policy.run(budget: quota) { _ in
                    try await attempt(service, operation: operation, method: method, target: target, query: query, headers: headers, body: body, payload: payload,
                                      unsigned: unsigned)
                }
            } catch let error as NimbusError {
                if !skewRetried, let aws = error.underlying as? AWSServiceError, aws.isClockSkew, let serverDate = lastServerDate.withLock({ $0 }) {
                    skewRetried = true
                    clockOffset.withLock { $0 = serverDate.timeIntervalSince(Date()) }
                    logger.notice("correcting the clock by the server's", metadata: ["skew_seconds": "\(Int(serverDate.timeIntervalSince(Date())))"])
                    continue
                }
                throw error
            }
        }
    }

    private let lastServerDate = Mutex<Date?>(nil)

    private func attempt(_ service: AWSService, operation: String, method: HTTPMethod, target: Target, query: [(String, String)],
                         headers: [(String, String)], body: [UInt8], payload: ByteBuffer?, unsigned: Bool) async throws -> Response {
        var request = SigV4.Request(method: method.rawValue, path: target.path, query: query, headers: [("Host", target.host)] + headers, body: payload == nil ? body : [])
        // An S3 payload that carries a flexible checksum (x-amz-checksum-crc32c…, itself signed) is sent as
        // UNSIGNED-PAYLOAD, as the AWS SDKs do: S3 checks the bytes against the checksum, and the signature
        // needs no pass over a multi-megabyte part. Any other payload is hashed where it lies, not copied.
        let unsignedPayload = service == .s3 && payload != nil && headers.contains { $0.0.lowercased().hasPrefix("x-amz-checksum-") }
        if let payload, !unsignedPayload { request.payloadSHA256 = payload.withUnsafeReadableBytes { SigV4.sha256Hex($0) } }
        var signatureHeaders: [SigV4.Request.Pair] = []
        if !unsigned {
            let credentials = try await credentialProvider.credentials()
            var options: SigV4.Options = service == .s3 ? .s3 : .standard
            options.unsignedPayload = unsignedPayload
            let signer = SigV4(service: service.signingName, region: target.signingRegion, options: options)
            signatureHeaders = signer.sign(request, credentials: credentials, date: now()).headers
        }
        let rendered = query.map { "\(SigV4.uriEncode($0.0, keepSlash: false))=\(SigV4.uriEncode($0.1, keepSlash: false))" }.joined(separator: "&")
        var outgoing = NimbusHTTPRequest(method, target.baseURL + target.path + (rendered.isEmpty ? "" : "?" + rendered),
                                         operation: "\(service.serviceID) \(operation)")
        for (name, value) in headers { outgoing.headers.add(name: name, value: value) }
        for header in signatureHeaders { outgoing.headers.replaceOrAdd(name: header.name, value: header.value) }
        if let payload { outgoing.body = payload } else if !body.isEmpty || method == .PUT || method == .POST { outgoing.body = ByteBuffer(bytes: body) }
        let response = try await http.send(outgoing)
        let data = try await response.collect(upTo: 512 * 1024 * 1024)
        let responseHeaders = response.headers.map { ($0.name, $0.value) }
        guard response.isSuccess else {
            let bytes = method == .HEAD ? [] : Array(data.readableBytesView)
            let error = AWSServiceError.parse(status: Int(response.status.code), headers: responseHeaders, body: bytes)
            if error.isClockSkew, let date = Self.serverTime(body: bytes, headers: response.headers[canonicalForm: "Date"].map(String.init)) {
                lastServerDate.withLock { $0 = date }
            }
            throw error.nimbusError(service: service.serviceID, operation: operation, retryAfter: response.retryAfter())
        }
        return Response(status: Int(response.status.code), headers: responseHeaders, body: data)
    }

    /// The server's clock: S3's `<ServerTime>` in the error, else the (last) `Date` header.
    static func serverTime(body: [UInt8], headers dates: [String]) -> Date? {
        if let xml = try? XMLElement.parse(body), let text = xml["ServerTime"]?.text ?? xml["Error"]?["ServerTime"]?.text,
           let date = ISO8601DateFormatter().date(from: text) {
            return date
        }
        return dates.last.flatMap(HTTPDate.parse)
    }

}

extension Optional where Wrapped == String {
    var nonEmpty: String? { self?.isEmpty == false ? self : nil }
}

extension AWSClient.Configuration {
    /// Settings from an adapter URL: `scheme://[REGION]?region=R&profile=P&endpoint=http://127.0.0.1:5000` (the
    /// region in the host or the query; anything left out comes from the environment and profile as usual).
    public init(url: OpenURL) {
        self.init(region: url.options.string("region") ?? url.host, profile: url.options.string("profile"), endpointURL: url.options.string("endpoint"))
    }
}
