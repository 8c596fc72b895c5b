import AsyncHTTPClient
import Foundation
import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import NIOHTTP1
import NimbusCore

/// One step of the request pipeline: it may change the request, call `next`, inspect or change
/// the response, call `next` again (retries) or answer by itself.
///
/// ```swift
/// struct UserAgent: HTTPMiddleware {
///     func intercept(_ request: NimbusHTTPRequest, next: @escaping Next) async throws -> NimbusHTTPResponse {
///         var request = request
///         request.headers.replaceOrAdd(name: "User-Agent", value: "nimbus/1")
///         return try await next(request)
///     }
/// }
/// ```
public protocol HTTPMiddleware: Sendable {
    /// The rest of the chain.
    typealias Next = @Sendable (NimbusHTTPRequest) async throws -> NimbusHTTPResponse
    /// Handles one request. `next` may be called more than once (retries) and from child tasks
    /// (hedging, timeouts), but not after this call has returned.
    func intercept(_ request: NimbusHTTPRequest, next: @escaping Next) async throws -> NimbusHTTPResponse
}

/// The HTTP client every vendor adapter is built on: AsyncHTTPClient under a middleware chain
/// that adds auth, retries with `Retry-After`, timeouts, a response size limit, redacted logs,
/// metrics and traces.
///
/// ```swift
/// let client = NimbusHTTPClient(configuration: .init(
///     service: "openai", baseURL: "https://api.openai.com",
///     auth: .bearer(Secret(apiKey))))
/// let response = try await client.send(NimbusHTTPRequest(.GET, "/v1/models", operation: "models.list"))
/// guard response.isSuccess else { throw response.error("OpenAI said no") }
/// let models = try await response.decode(ModelList.self)
/// ```
public final class NimbusHTTPClient: Sendable {
    /// Settings of one vendor's client.
    public struct Configuration: Sendable {
        /// The vendor's name in metrics, logs and traces (`openai`, `stripe`).
        public var service: String
        /// Joined to relative request URLs.
        public var baseURL: String?
        /// Added to every request unless it sets them itself.
        public var defaultHeaders: HTTPHeaders
        /// Credentials injected into every attempt.
        public var auth: AuthMiddleware?
        /// Retries of idempotent requests (see ``RetryMiddleware``).
        public var retry: RetryPolicy
        /// A budget shared by this client's retries.
        public var retryBudget: RetryBudget?
        /// The header that carries ``NimbusHTTPRequest/idempotencyKey`` (`Idempotency-Key`; PayPal: `PayPal-Request-Id`).
        public var idempotencyKeyHeader: String
        /// Generates an idempotency key for every POST/PATCH that has none, as Stripe's SDKs do.
        public var generateIdempotencyKeys: Bool
        /// The default time limit of one attempt, from request to the last body byte.
        public var timeout: Duration
        /// Bodies longer than this fail with `resourceExhausted` instead of filling memory.
        public var maxResponseSize: Int
        /// Log request and response bodies at `trace` level (secrets in JSON fields are redacted).
        public var logBodies: Bool
        /// Extra steps, run inside auth (closest to the wire) in order.
        public var middlewares: [any HTTPMiddleware]
        /// Where request counts and durations go (the global `MetricsSystem` by default).
        public var metricsFactory: any MetricsFactory

        /// Creates settings.
        public init(
            service: String, baseURL: String? = nil, defaultHeaders: HTTPHeaders = [:], auth: AuthMiddleware? = nil,
            retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(250), maxDelay: .seconds(8)),
            retryBudget: RetryBudget? = RetryBudget(), idempotencyKeyHeader: String = "Idempotency-Key",
            generateIdempotencyKeys: Bool = false, timeout: Duration = .seconds(60),
            maxResponseSize: Int = 32 * 1024 * 1024, logBodies: Bool = false, middlewares: [any HTTPMiddleware] = [],
            metricsFactory: any MetricsFactory = MetricsSystem.factory
        ) {
            self.service = service; self.baseURL = baseURL; self.defaultHeaders = defaultHeaders; self.auth = auth
            self.retry = retry; self.retryBudget = retryBudget; self.idempotencyKeyHeader = idempotencyKeyHeader
            self.generateIdempotencyKeys = generateIdempotencyKeys; self.timeout = timeout
            self.maxResponseSize = maxResponseSize; self.logBodies = logBodies; self.middlewares = middlewares
            self.metricsFactory = metricsFactory
        }
    }

    /// The settings.
    public let configuration: Configuration
    private let httpClient: HTTPClient
    private let ownsHTTPClient: Bool
    private let logger: Logger
    private let chain: HTTPMiddleware.Next

    /// Creates a client over ``defaultTransport`` (TLS verification on, 10 s connect timeout).
    public convenience init(configuration: Configuration, logger: Logger? = nil) {
        self.init(configuration: configuration, httpClient: NimbusHTTPClient.defaultTransport, logger: logger)
    }

    /// The process-wide AsyncHTTPClient that vendor clients share: certificate verification on,
    /// HTTP/2 where offered, a 10 s connect timeout (AsyncHTTPClient otherwise keeps retrying
    /// a refused connection until the request's own deadline), and up to 64 HTTP/1 connections per
    /// host (AsyncHTTPClient's default of 8 caps a 20 ms upstream at 400 calls/s).
    public static let defaultTransport: HTTPClient = makeTransport(connectTimeout: .seconds(10))

    /// A new AsyncHTTPClient with Nimbus' defaults, the given connect timeout and HTTP/1 connections
    /// per host (requests beyond it wait for a free connection). Shut it down when done.
    public static func makeTransport(connectTimeout: Duration, connectionsPerHost: Int = 64) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .nanoseconds(connectTimeout.nimbusNanoseconds)
        configuration.httpVersion = .automatic
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(1, connectionsPerHost)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Creates a client over a given AsyncHTTPClient (for custom TLS or proxies).
    public init(configuration: Configuration, httpClient: HTTPClient, logger: Logger? = nil) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.ownsHTTPClient = false
        let logger = logger ?? Logger(label: "nimbus.http.\(configuration.service)")
        self.logger = logger
        let transport = Transport(client: httpClient, configuration: configuration, logger: logger)
        var steps: [any HTTPMiddleware] = [
            ObservabilityMiddleware(service: configuration.service, logger: logger, logBodies: configuration.logBodies,
                                    metricsFactory: configuration.metricsFactory),
            RetryMiddleware(policy: configuration.retry, budget: configuration.retryBudget, logger: logger),
        ]
        if let auth = configuration.auth { steps.append(auth) }
        steps += configuration.middlewares
        var next: HTTPMiddleware.Next = { request in try await transport.send(request) }
        for step in steps.reversed() {
            let inner = next
            next = { request in try await step.intercept(request, next: inner) }
        }
        self.chain = next
    }

    /// Sends a request through the chain. Non-2xx answers are returned, not thrown, so adapters
    /// can read the vendor's error body; transport failures throw `NimbusError`s.
    public func send(_ request: NimbusHTTPRequest) async throws -> NimbusHTTPResponse {
        var request = request
        if !request.url.hasPrefix("http://") && !request.url.hasPrefix("https://") {
            guard let base = configuration.baseURL else {
                throw NimbusError(.invalidArgument, "\(configuration.service): '\(request.url)' is relative and no baseURL is configured")
            }
            request.url = base.trimmingSuffix("/") + (request.url.hasPrefix("/") ? "" : "/") + request.url
        }
        for header in configuration.defaultHeaders where !request.headers.contains(name: header.name) {
            request.headers.add(name: header.name, value: header.value)
        }
        if request.idempotencyKey == nil, configuration.generateIdempotencyKeys, request.method == .POST || request.method == .PATCH {
            request.idempotencyKey = IDGenerator.shared.uuidV7().uuidString.lowercased()
        }
        if let key = request.idempotencyKey {
            request.headers.replaceOrAdd(name: configuration.idempotencyKeyHeader, value: key)
        }
        return try await chain(request)
    }

    /// Sends a request and decodes a 2xx JSON answer; any other status throws via `errorMapper`.
    public func json<T: Decodable>(
        _ request: NimbusHTTPRequest, as type: T.Type, decoder: JSONDecoder = .nimbus,
        errorMapper: @Sendable (NimbusHTTPResponse, ByteBuffer) -> NimbusError = NimbusHTTPClient.defaultErrorMapper
    ) async throws -> T {
        let response = try await send(request, errorMapper: errorMapper)
        return try await response.decode(T.self, decoder: decoder, operation: request.operation)
    }

    /// Sends a request and returns a 2xx answer with its body unread (a stream, say); any other status
    /// throws `errorMapper`'s error for it, given the first 256 KiB of the error body.
    public func send(
        _ request: NimbusHTTPRequest,
        errorMapper: @Sendable (NimbusHTTPResponse, ByteBuffer) -> NimbusError
    ) async throws -> NimbusHTTPResponse {
        let response = try await send(request)
        guard response.isSuccess else {
            let body = (try? await response.collect(upTo: 256 * 1024)) ?? ByteBuffer()
            throw errorMapper(response, body)
        }
        return response
    }

    /// The error for a non-2xx answer when the adapter has no vendor-specific parser.
    public static let defaultErrorMapper: @Sendable (NimbusHTTPResponse, ByteBuffer) -> NimbusError = { response, body in
        let text = String(decoding: body.readableBytesView.prefix(500), as: UTF8.self)
        return response.error("HTTP \(response.status.code) \(response.status.reasonPhrase): \(text)")
    }
}

/// The end of the chain: AsyncHTTPClient, with the time limit and the size limit applied and
/// transport failures mapped to `NimbusError`.
struct Transport: Sendable {
    let client: HTTPClient
    let configuration: NimbusHTTPClient.Configuration
    let logger: Logger

    func send(_ request: NimbusHTTPRequest) async throws -> NimbusHTTPResponse {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = request.method
        outgoing.headers = request.headers
        if let body = request.body { outgoing.body = .bytes(body) }
        let timeout = request.timeout ?? configuration.timeout
        let response: HTTPClientResponse
        do {
            response = try await client.execute(outgoing, deadline: .now() + .nanoseconds(timeout.nimbusNanoseconds), logger: logger)
        } catch {
            throw Self.map(error, operation: request.operation, service: configuration.service, timeout: timeout)
        }
        let limit = configuration.maxResponseSize
        // A HEAD answer (and a 204/304) announces the size of a body it does not carry: S3's HEAD of a 1 GiB object is not a 1 GiB response.
        let hasBody = request.method != .HEAD && response.status != .noContent && response.status != .notModified
        if hasBody, let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > limit {
            throw NimbusError(.resourceExhausted, "\(configuration.service) \(request.operation): response of \(length) bytes is over the \(limit)-byte limit; raise maxResponseSize if this is expected")
        }
        let service = configuration.service, operation = request.operation
        let body = HTTPBody(response.body, limit: limit) { Transport.map($0, operation: operation, service: service, timeout: timeout) }
        return NimbusHTTPResponse(status: response.status, headers: response.headers, body: body)
    }

    static func map(_ error: any Error, operation: String, service: String, timeout: Duration) -> NimbusError {
        if let error = error as? NimbusError { return error }
        if error is CancellationError { return NimbusError(.canceled, "\(service) \(operation) was cancelled", underlying: error) }
        // A name that does not resolve will not resolve a second later: say so, and do not retry.
        if let connection = error as? NIOConnectionError, connection.connectionErrors.isEmpty,
           let dns = connection.dnsAError ?? connection.dnsAAAAError {
            return NimbusError(.unavailable, "\(service) \(operation): cannot resolve the host \(connection.host) (\(dns)); check the URL and the network (not retried)",
                               underlying: error, retryable: false)
        }
        if let unknown = error as? SocketAddressError.UnknownHost {
            return NimbusError(.unavailable, "\(service) \(operation): cannot resolve the host \(unknown.host) (\(unknown.errorDescription)); check the URL and the network (not retried)",
                               underlying: error, retryable: false)
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return NimbusError(.deadlineExceeded, "\(service) \(operation) did not finish within \(timeout.nimbusFormatted) (\(error))", underlying: error)
            case .cancelled:
                return NimbusError(.canceled, "\(service) \(operation) was cancelled", underlying: error)
            case .remoteConnectionClosed:
                return NimbusError(.unavailable, "\(service) closed the connection during \(operation); the request may or may not have been processed", underlying: error)
            default:
                return NimbusError(.unavailable, "\(service) \(operation) failed in transport: \(error)", underlying: error)
            }
        }
        return NimbusError(.unavailable, "\(service) \(operation) failed in transport: \(error)", underlying: error)
    }
}
