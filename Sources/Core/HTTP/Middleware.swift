import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NimbusCore
import Tracing

/// Injects credentials into every attempt (so a refreshed token is used on a retry).
///
/// ```swift
/// .bearer(Secret("sk-..."))                    // Authorization: Bearer sk-...
/// .header("x-api-key", Secret("..."))          // Anthropic
/// .basic(user: "AC123", password: Secret(".."))  // Twilio
/// AuthMiddleware { ["Authorization": Secret("Bearer " + (try await tokens.current()))] }
/// ```
public struct AuthMiddleware: HTTPMiddleware {
    private let provide: @Sendable () async throws -> [(String, Secret<String>)]

    /// Credentials from a closure, called for each attempt.
    public init(_ provide: @escaping @Sendable () async throws -> [(String, Secret<String>)]) { self.provide = provide }

    /// `Authorization: Bearer <token>`.
    public static func bearer(_ token: Secret<String>) -> AuthMiddleware {
        AuthMiddleware { [("Authorization", token.map { "Bearer " + $0 })] }
    }

    /// A header carrying the key as it is.
    public static func header(_ name: String, _ value: Secret<String>) -> AuthMiddleware {
        AuthMiddleware { [(name, value)] }
    }

    /// `Authorization: Basic base64(user:password)`.
    public static func basic(user: String, password: Secret<String>) -> AuthMiddleware {
        AuthMiddleware { [("Authorization", password.map { "Basic " + Data("\(user):\($0)".utf8).base64EncodedString() })] }
    }

    public func intercept(_ request: NimbusHTTPRequest, next: @escaping Next) async throws -> NimbusHTTPResponse {
        var request = request
        for (name, value) in try await provide() { request.headers.replaceOrAdd(name: name, value: value.reveal()) }
        return try await next(request)
    }
}

/// Retries what is safe to retry, waiting as the server asks.
///
/// - Retries idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE, or any request with an
///   idempotency key — the same key on every attempt) that failed in transport or answered
///   408, 429, 500, 502, 503 or 504.
/// - Retries any request answered 429: the server says it did not process it.
/// - Honours `Retry-After` (seconds or HTTP-date); a wait longer than the policy's
///   `maxRetryAfter` ends the retries and returns the 429/503 to the caller.
/// - The last answer is returned as it is, so the adapter can read the vendor's error body.
public struct RetryMiddleware: HTTPMiddleware {
    let policy: RetryPolicy
    let budget: RetryBudget?
    let logger: Logger

    /// Creates the step.
    public init(policy: RetryPolicy, budget: RetryBudget? = nil, logger: Logger = Logger(label: "nimbus.http")) {
        self.policy = policy
        self.budget = budget
        self.logger = logger
    }

    public func intercept(_ request: NimbusHTTPRequest, next: @escaping Next) async throws -> NimbusHTTPResponse {
        var policy = self.policy
        let original = policy.isRetryable
        policy.isRetryable = { error in
            if let status = (error as? NimbusError)?.underlying as? RetryableStatus {
                return request.isIdempotent || status.response.status == .tooManyRequests
            }
            return request.isIdempotent && original(error)
        }
        do {
            return try await policy.run(budget: budget) { attempt in
                if attempt > 1 {
                    logger.debug("retrying", metadata: ["operation": "\(request.operation)", "attempt": "\(attempt)"])
                }
                let response = try await next(request)
                guard HTTPStatusMapping.isRetryable(response.status), attempt < policy.maxAttempts else { return response }
                // Let the policy decide, with the server's Retry-After; the answer rides along.
                throw response.error("HTTP \(response.status.code) from \(request.operation)", underlying: RetryableStatus(response: response))
            }
        } catch let error as NimbusError {
            // Given up on a retryable answer: hand that answer back untouched.
            if let status = error.underlying as? RetryableStatus { return status.response }
            throw error
        }
    }
}

/// A retryable answer, carried through the retry policy as a `NimbusError`'s `underlying`.
struct RetryableStatus: Error, Sendable {
    let response: NimbusHTTPResponse
}

/// Logs (with secrets redacted), counts and traces each call once, around its retries.
///
/// Metrics: `nimbus_http_requests_total{service,operation,status}` and
/// `nimbus_http_request_duration_seconds{service,operation}`. Traces: one client span per call,
/// `"<service> <operation>"`, with AsyncHTTPClient's per-attempt spans beneath it.
public struct ObservabilityMiddleware: HTTPMiddleware {
    let service: String
    let logger: Logger
    let logBodies: Bool
    let metricsFactory: any MetricsFactory

    /// Creates the step.
    public init(service: String, logger: Logger, logBodies: Bool = false, metricsFactory: any MetricsFactory = MetricsSystem.factory) {
        self.service = service
        self.logger = logger
        self.logBodies = logBodies
        self.metricsFactory = metricsFactory
    }

    public func intercept(_ request: NimbusHTTPRequest, next: @escaping Next) async throws -> NimbusHTTPResponse {
        let start = ContinuousClock.now
        let service = self.service
        return try await withSpan("\(service) \(request.operation)", ofKind: .client) { span in
            span.attributes["http.request.method"] = request.method.rawValue
            span.attributes["url.full"] = Redaction.url(request.url)
            span.attributes["nimbus.service"] = service
            logger.debug("request", metadata: [
                "operation": "\(request.operation)", "method": "\(request.method.rawValue)", "url": "\(Redaction.url(request.url))",
                "headers": "\(Redaction.headers(request.headers))",
            ])
            if logBodies, let body = request.body { logger.trace("request body", metadata: ["body": "\(Redaction.body(body))"]) }
            do {
                let response = try await next(request)
                span.attributes["http.response.status_code"] = Int(response.status.code)
                if response.status.code >= 500 { span.setStatus(.init(code: .error)) }
                record(request.operation, status: String(response.status.code), since: start)
                logger.debug("response", metadata: [
                    "operation": "\(request.operation)", "status": "\(response.status.code)",
                    "headers": "\(Redaction.headers(response.headers))",
                    "ms": "\((ContinuousClock.now - start).nimbusMilliseconds)",
                ])
                return response
            } catch {
                span.recordError(error)
                let code = (error as? NimbusError)?.code.description ?? "error"
                record(request.operation, status: code, since: start)
                logger.debug("request failed", metadata: ["operation": "\(request.operation)", "error": "\(error)"])
                throw error
            }
        }
    }

    private func record(_ operation: String, status: String, since start: ContinuousClock.Instant) {
        Counter(label: "nimbus_http_requests_total", dimensions: [("service", service), ("operation", operation), ("status", status)],
                factory: metricsFactory).increment()
        Timer(label: "nimbus_http_request_duration_seconds", dimensions: [("service", service), ("operation", operation)], factory: metricsFactory)
            .recordNanoseconds((ContinuousClock.now - start).nimbusNanoseconds)
    }
}

/// Removes secrets from what is logged: sensitive headers, credentials and key-like query
/// parameters in URLs, sensitive fields in JSON bodies.
public enum Redaction {
    /// Headers as `name: value` pairs with sensitive values replaced.
    public static func headers(_ headers: HTTPHeaders) -> String {
        headers.map { "\($0.name): \(LogRedaction.isSensitive($0.name) ? LogRedaction.placeholder : $0.value)" }.joined(separator: ", ")
    }

    /// A URL without user info, and with sensitive query values (`key`, `api_key`, `token`, `sig`...) replaced.
    public static func url(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return "<unparseable URL>" }
        if components.password != nil { components.password = "***" }
        components.percentEncodedPath = redactedPath(components.percentEncodedPath, host: components.host?.lowercased() ?? "")
        components.queryItems = components.queryItems?.map { item in
            let lower = item.name.lowercased()
            let sensitive = LogRedaction.isSensitive(lower) || ["key", "sig", "signature", "code", "x-amz-signature", "x-amz-credential"].contains(lower)
            return sensitive ? URLQueryItem(name: item.name, value: "***") : item
        }
        return components.string ?? "<unparseable URL>"
    }

    /// Secrets that vendors put in URL paths: Slack's incoming-webhook and workflow URLs
    /// (`hooks.slack.com/services/T…/B…/<secret>`), and webhook tokens (`…/webhooks/<id>/<token>`: Discord,
    /// Microsoft Teams-style connectors).
    static func redactedPath(_ path: String, host: String) -> String {
        var segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if host == "hooks.slack.com" || host.hasSuffix(".hooks.slack.com"), let last = segments.indices.last, segments.count > 3, !segments[last].isEmpty {
            segments[last] = "***"
        }
        for index in segments.indices where segments[index] == "webhooks" && index + 2 < segments.count && !segments[index + 2].isEmpty {
            segments[index + 2] = "***"
        }
        return segments.joined(separator: "/")
    }

    /// A body for logs: JSON with sensitive fields replaced, other content only by size.
    public static func body(_ buffer: ByteBuffer) -> String {
        guard let value = try? JSONValue.parse(Data(buffer.readableBytesView)) else { return "<\(buffer.readableBytes) bytes>" }
        return redact(value).description
    }

    static func redact(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            .object(Dictionary(uniqueKeysWithValues: members.map { key, value in
                (key, LogRedaction.isSensitive(key) ? .string(LogRedaction.placeholder) : redact(value))
            }))
        case .array(let elements): .array(elements.map(redact))
        default: value
        }
    }
}
