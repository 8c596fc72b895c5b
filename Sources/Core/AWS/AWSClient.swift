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
/// Model-less: an adapter is a small file of operation names and shapes.
///
/// ```swift
/// let aws = AWSClient(configuration: .init(region: "eu-west-1"))          // credentials and region as the AWS SDKs find them
/// let identity = try await aws.send(.sts, operation: "GetCallerIdentity")
/// let item = try await aws.send(.dynamoDB, operation: "GetItem", input: ["TableName": "users", "Key": ["id": ["S": "42"]]])
/// let object = try await aws.rest(.s3, method: .GET, path: AWSClient.s3Path(bucket: "docs", key: "a.txt"))
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

    // MARK: RPC protocols (query, ec2, json)

    /// Calls an operation of a query, EC2 or JSON protocol service with `input` as JSON, returning the
    /// result as JSON (query/EC2 XML is turned into JSON: leaves are strings, `member`/`item` lists arrays).
    ///
    /// Query and EC2 inputs are flattened: nested objects `A.B`, arrays `A.member.N` (query) or `A.N` (EC2).
    ///
    /// `maxAttempts` overrides the configuration's for this call: an adapter under a portable type
    /// that retries (`EmailClient`, `SMSClient`) passes 1, so that retries happen in one layer.
    public func send(_ service: AWSService, operation: String, input: JSONValue = [:], maxAttempts: Int? = nil) async throws -> JSONValue {
        switch service.wireProtocol {
        case .query(let version), .ec2(let version):
            let isEC2 = if case .ec2 = service.wireProtocol { true } else { false }
            var pairs: [(String, String)] = [("Action", operation), ("Version", version)]
            Self.flatten(input, prefix: nil, ec2: isEC2, into: &pairs)
            // Form encoding as botocore writes it (Python's urlencode: a space is '+'); AWS reads either, and
            // checkers that re-encode the parsed form before recomputing the signature (moto) need this one.
            let body = pairs.map { "\(Self.formEscape($0.0))=\(Self.formEscape($0.1))" }.joined(separator: "&")
            let response = try await execute(service, operation: operation, method: .POST, path: "/", query: [],
                                             headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], body: Array(body.utf8),
                                             maxAttempts: maxAttempts)
            guard !response.body.isEmpty else { return [:] }
            let xml = try XMLElement.parse(response.body)
            if isEC2 { return xml.json }
            return xml["\(operation)Result"]?.json ?? [:]
        case .json(let version, let prefix):
            let response = try await execute(service, operation: operation, method: .POST, path: "/", query: [],
                                             headers: [("Content-Type", "application/x-amz-json-\(version)"), ("X-Amz-Target", "\(prefix).\(operation)")],
                                             body: Array(input.description.utf8), maxAttempts: maxAttempts)
            return try Self.json(response.body, service: service, operation: operation)
        case .restJSON, .restXML:
            throw NimbusError(.invalidArgument, "\(service.serviceID) is a REST service; call rest(_:method:path:...) with the operation's method and path")
        }
    }

    /// Calls an RPC operation with Codable input and output (through their JSON form).
    public func send<Input: Encodable & Sendable, Output: Decodable>(_ service: AWSService, operation: String, input: Input, as output: Output.Type) async throws -> Output {
        let result = try await send(service, operation: operation, input: try JSONValue(encoding: input))
        do { return try result.decode(Output.self) } catch {
            throw NimbusError(.internal, "\(service.serviceID) \(operation) answered a shape \(Output.self) cannot read: \(error)", underlying: error)
        }
    }

    // MARK: REST protocols

    /// A REST answer.
    public struct Response: Sendable {
        /// The status.
        public var status: Int
        /// The headers.
        public var headers: [(String, String)]
        /// The body.
        public var body: [UInt8]
        /// A header's value.
        public func header(_ name: String) -> String? { headers.header(name) }
        /// The body as JSON (REST-JSON services).
        public func json() throws -> JSONValue { body.isEmpty ? [:] : try JSONValue.parse(body) }
        /// The body as XML (REST-XML services).
        public func xml() throws -> XMLElement { try XMLElement.parse(body) }
    }

    /// Calls a REST operation: `path` is the encoded path (``s3Path(bucket:key:)`` builds S3's), `query` decoded pairs.
    /// - Throws: the operation's error mapped (a 404 with no body is `notFound`).
    public func rest(_ service: AWSService, method: HTTPMethod, path: String, query: [(String, String)] = [], headers: [(String, String)] = [],
                     body: [UInt8] = [], operation: String? = nil, maxAttempts: Int? = nil) async throws -> Response {
        try await execute(service, operation: operation ?? "\(method.rawValue) \(path)", method: method, path: path, query: query, headers: headers, body: body,
                          maxAttempts: maxAttempts)
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

    // MARK: Pagination and waiting

    /// Every page of a paginated RPC operation: `tokenField` in the output (`NextToken`, `Marker`,
    /// `NextContinuationToken`...) is passed back as `inputTokenField` until it is absent.
    public func pages(_ service: AWSService, operation: String, input: JSONValue = [:], inputTokenField: String = "NextToken",
                      outputTokenField: String = "NextToken") -> AsyncThrowingStream<JSONValue, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var request = input.objectValue ?? [:]
                    var seen: Set<JSONValue> = []
                    while true {
                        let page = try await send(service, operation: operation, input: .object(request))
                        continuation.yield(page)
                        // Tokens are strings (NextToken, Marker) or objects (DynamoDB's LastEvaluatedKey).
                        guard let token = Self.lookup(page, outputTokenField), token != .null, token != .string(""), seen.insert(token).inserted else { break }
                        request[inputTokenField] = token
                    }
                    continuation.finish()
                } catch { continuation.finish(throwing: error) }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Polls `check` until it returns a value, every `interval`, for at most `timeout` (a waiter).
    /// - Throws: `deadlineExceeded` when time runs out; the check's own errors.
    public static func wait<T: Sendable>(every interval: Duration = .seconds(2), timeout: Duration = .seconds(300),
                                         _ check: @Sendable () async throws -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let value = try await check() { return value }
            guard ContinuousClock.now + interval < deadline else {
                throw NimbusError(.deadlineExceeded, "the resource did not reach the wanted state within \(timeout.nimbusFormatted)")
            }
            try await Task.sleep(for: interval)
        }
    }

    /// A dotted path into JSON (`ListBucketResult.NextContinuationToken`).
    static func lookup(_ value: JSONValue, _ path: String) -> JSONValue? {
        path.split(separator: ".").reduce(Optional(value)) { $0?[String($1)] }
    }

    // MARK: The exchange

    struct Target {
        var scheme: String
        var host: String
        var path: String
        var baseURL: String
        var signingRegion: String
    }

    func target(_ service: AWSService, path: String) async throws -> Target {
        let endpoint = endpoints.resolve(service, region: region)
        guard let components = URLComponents(string: endpoint.url), let scheme = components.scheme, let host = components.host else {
            throw NimbusError(.invalidArgument, "'\(endpoint.url)' is not an endpoint URL")
        }
        let authority = host + (components.port.map { ":\($0)" } ?? "")
        let basePath = components.path == "/" ? "" : components.path
        var finalPath = basePath + (path.isEmpty ? "/" : path)
        var finalHost = authority
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
                 headers: [(String, String)], body: [UInt8], maxAttempts: Int? = nil) async throws -> Response {
        let target = try await target(service, path: path)
        let policy = RetryPolicy(maxAttempts: max(1, maxAttempts ?? configuration.maxAttempts), baseDelay: .milliseconds(100), maxDelay: .seconds(20))
        var skewRetried = false
        while true {
            do {
                return try await policy.run(budget: quota) { _ in
                    try await attempt(service, operation: operation, method: method, target: target, query: query, headers: headers, body: body)
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
                         headers: [(String, String)], body: [UInt8]) async throws -> Response {
        let credentials = try await credentialProvider.credentials()
        let signer = SigV4(service: service.signingName, region: target.signingRegion, options: service == .s3 ? .s3 : .standard)
        let request = SigV4.Request(method: method.rawValue, path: target.path, query: query, headers: [("Host", target.host)] + headers, body: body)
        let signed = signer.sign(request, credentials: credentials, date: now())
        let rendered = query.map { "\(SigV4.uriEncode($0.0, keepSlash: false))=\(SigV4.uriEncode($0.1, keepSlash: false))" }.joined(separator: "&")
        var outgoing = NimbusHTTPRequest(method, target.baseURL + target.path + (rendered.isEmpty ? "" : "?" + rendered),
                                         operation: "\(service.serviceID) \(operation)")
        for (name, value) in headers { outgoing.headers.add(name: name, value: value) }
        for header in signed.headers { outgoing.headers.replaceOrAdd(name: header.name, value: header.value) }
        if !body.isEmpty || method == .PUT || method == .POST { outgoing.body = ByteBuffer(bytes: body) }
        let response = try await http.send(outgoing)
        let data = Array(try await response.collect(upTo: 512 * 1024 * 1024).readableBytesView)
        let responseHeaders = response.headers.map { ($0.name, $0.value) }
        guard response.isSuccess else {
            let error = AWSServiceError.parse(status: Int(response.status.code), headers: responseHeaders, body: method == .HEAD ? [] : data)
            if error.isClockSkew, let date = Self.serverTime(body: data, headers: response.headers[canonicalForm: "Date"].map(String.init)) {
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

    static func json(_ body: [UInt8], service: AWSService, operation: String) throws -> JSONValue {
        guard !body.isEmpty else { return [:] }
        do { return try JSONValue.parse(body) } catch {
            throw NimbusError(.internal, "\(service.serviceID) \(operation) answered a body that is not JSON: \(String(decoding: body.prefix(200), as: UTF8.self))",
                              underlying: error)
        }
    }

    /// Query/EC2 parameter flattening.
    static func flatten(_ value: JSONValue, prefix: String?, ec2: Bool, into pairs: inout [(String, String)]) {
        switch value {
        case .null: return
        case .string(let text): if let prefix { pairs.append((prefix, text)) }
        case .bool(let flag): if let prefix { pairs.append((prefix, flag ? "true" : "false")) }
        case .number(let number): if let prefix { pairs.append((prefix, number.rounded() == number && abs(number) < 9e15 ? String(Int64(number)) : String(number))) }
        case .array(let items):
            guard let prefix else { return }
            for (index, item) in items.enumerated() { flatten(item, prefix: ec2 ? "\(prefix).\(index + 1)" : "\(prefix).member.\(index + 1)", ec2: ec2, into: &pairs) }
        case .object(let members):
            for key in members.keys.sorted() { flatten(members[key]!, prefix: prefix.map { "\($0).\(key)" } ?? key, ec2: ec2, into: &pairs) }
        }
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
