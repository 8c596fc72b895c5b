import NIOHTTP1
import NimbusCore
import NimbusHTTP

/// Runs every attempt of a ``NimbusHTTPClient`` through a ``ResiliencePipeline``: a breaker, a bulkhead or
/// an adaptive limit per vendor, under the client's own retries (so each retry is seen by the breaker).
///
/// Responses whose status ``isFailure`` accepts (by default 5xx, 408 and 429) are failures for the
/// pipeline's strategies, and are still handed back to the client as they are, so the adapter reads
/// the vendor's error body and the retry step honours `Retry-After`. An open breaker answers at once
/// with `unavailable`.
///
/// ```swift
/// let breaker = CircuitBreaker(name: "stripe", configuration: .init(window: .time(seconds: 30), minimumCalls: 20))
/// let http = NimbusHTTPClient(configuration: .init(service: "stripe", middlewares: [
///     ResilienceMiddleware(ResiliencePipeline([breaker, Bulkhead(name: "stripe", configuration: .init(maxConcurrentCalls: 64))]))
/// ]))
/// ```
public struct ResilienceMiddleware: HTTPMiddleware {
    /// The strategies each attempt runs through.
    public let pipeline: ResiliencePipeline
    /// Which answers count as failures of the dependency.
    public let isFailure: @Sendable (HTTPResponseStatus) -> Bool

    /// Creates the step.
    public init(_ pipeline: ResiliencePipeline,
                isFailure: @escaping @Sendable (HTTPResponseStatus) -> Bool = { $0.code >= 500 || $0 == .requestTimeout || $0 == .tooManyRequests }) {
        self.pipeline = pipeline
        self.isFailure = isFailure
    }

    /// A failing answer carried through the pipeline as an error, then handed back.
    struct FailedResponse: Error {
        let response: NimbusHTTPResponse
    }

    public func intercept(_ request: NimbusHTTPRequest, next: @escaping Next) async throws -> NimbusHTTPResponse {
        let isFailure = self.isFailure
        do {
            return try await pipeline.execute {
                let response = try await next(request)
                if isFailure(response.status) { throw FailedResponse(response: response) }
                return response
            }
        } catch let failed as FailedResponse {
            return failed.response
        }
    }
}
