import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

/// A Hummingbird middleware that charges each request against rate-limit policies and answers
/// `429 Too Many Requests` with `Retry-After` when they refuse. Every answer carries the IETF
/// `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers), so clients
/// can slow down before they are refused.
///
/// ```swift
/// let limiter = RateLimiter(driver: MemoryRateLimitDriver())
/// router.add(middleware: RateLimitMiddleware(limiter, policy: .gcra("api", limit: 20, per: .seconds(1), burst: 40)) { request, _ in
///     request.headers[.authorization] ?? "anonymous"        // whose budget
/// })
/// // RateLimit-Policy: "api";q=20;w=1
/// // RateLimit: "api";r=39;t=1
/// ```
public struct RateLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    /// What a request is charged: `nil` or empty lets it through unlimited.
    public typealias Charges = @Sendable (Request, Context) async throws -> [RateLimitRequest]?

    let limiter: RateLimiter
    let charges: Charges

    /// Charges each request as `charges` says (several policies, costs, keys).
    public init(_ limiter: RateLimiter, charges: @escaping Charges) {
        self.limiter = limiter
        self.charges = charges
    }

    /// Charges each request one unit of `policy` under the key `key` returns (`nil`: not limited).
    public init(_ limiter: RateLimiter, policy: RateLimitPolicy, key: @escaping @Sendable (Request, Context) -> String?) {
        self.init(limiter) { request, context in
            key(request, context).map { [RateLimitRequest(key: $0, policy: policy)] }
        }
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let requests = try await charges(request, context), !requests.isEmpty else { return try await next(request, context) }
        let decision: RateLimitDecision
        do {
            decision = try await limiter.acquire(requests)
        } catch let error as NimbusError where error.code == .unavailable || error.code == .deadlineExceeded {
            context.logger.error("rate limiter unavailable", metadata: ["error": "\(error)"])
            throw HTTPError(.serviceUnavailable, message: "the rate limiter is unavailable; try again shortly")
        }
        let fields = Self.fields(for: requests.map(\.policy), decision: decision)
        guard decision.allowed else {
            var headers = HTTPFields()
            headers.append(contentsOf: fields)
            let wait = Self.seconds(decision.retryAfter ?? .seconds(1))
            headers[.retryAfter] = String(max(1, wait))
            headers[.contentType] = "application/json"
            let refused = decision.states.filter { !$0.allowed }.map(\.policy).joined(separator: ", ")
            let body = #"{"error":{"message":"rate limit exceeded (\#(refused)); retry after \#(max(1, wait)) s","type":"rate_limit_exceeded","code":429}}"#
            return Response(status: .tooManyRequests, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        }
        var response = try await next(request, context)
        response.headers.append(contentsOf: fields)
        return response
    }

    /// The `RateLimit-Policy` and `RateLimit` fields for a decision.
    public static func fields(for policies: [RateLimitPolicy], decision: RateLimitDecision) -> HTTPFields {
        var fields = HTTPFields()
        let policy = policies.map { "\"\($0.name)\";q=\($0.limit);w=\(max(1, seconds($0.period)))" }.joined(separator: ", ")
        let state = decision.states.map { "\"\($0.policy)\";r=\(max(0, $0.remaining));t=\(seconds($0.resetAfter))" }.joined(separator: ", ")
        fields[.rateLimitPolicy] = policy
        fields[.rateLimit] = state
        return fields
    }

    /// Whole seconds, rounded up.
    static func seconds(_ duration: Duration) -> Int {
        let (whole, fraction) = duration.components
        return Int(whole) + (fraction > 0 ? 1 : 0)
    }
}

extension HTTPField.Name {
    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): the quota policies of a resource.
    public static let rateLimitPolicy = HTTPField.Name("RateLimit-Policy")!
    /// `RateLimit` (draft-ietf-httpapi-ratelimit-headers): where the caller stands in each policy.
    public static let rateLimit = HTTPField.Name("RateLimit")!
}
