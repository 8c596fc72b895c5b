import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NimbusCore
import NimbusRateLimitMemory
import NimbusTesting
import Testing
@testable import NimbusRateLimit

@Suite struct RateLimitPolicyTests {
    @Test func parsesTheCommandLineForm() throws {
        #expect(try RateLimitPolicy.parse("100/1m") == .gcra("default", limit: 100, per: .seconds(60)))
        #expect(try RateLimitPolicy.parse("gcra:10/1s;burst=20", name: "api") == .gcra("api", limit: 10, per: .seconds(1), burst: 20))
        #expect(try RateLimitPolicy.parse("sliding-window:600/1min") == .slidingWindow("default", limit: 600, per: .seconds(60)))
        #expect(try RateLimitPolicy.parse("token-bucket:5/1s;burst=50") == .tokenBucket("default", capacity: 50, refill: 5, per: .seconds(1)))
        #expect(RateLimitPolicy.gcra("x", limit: 10, per: .seconds(1), burst: 20).description == "gcra:10/1s;burst=20")
        #expect(RateLimitPolicy.fixedWindow("x", limit: 10, per: .seconds(60)).description == "fixed-window:10/1m")
        for bad in ["", "10", "ten/1s", "10/soon", "leaky:10/1s", "10/1s;burst", "10/1s;size=2", "0/1s", "10/0s", "gcra:10/1s;burst=0"] {
            #expect(throws: NimbusError.self, "\(bad)") { try RateLimitPolicy.parse(bad) }
        }
    }

    @Test func policyNamesAreBounded() {
        #expect(throws: NimbusError.self) { try RateLimitPolicy.gcra("has space", limit: 1, per: .seconds(1)).validate() }
        #expect(throws: NimbusError.self) { try RateLimitPolicy.gcra(String(repeating: "a", count: 65), limit: 1, per: .seconds(1)).validate() }
        #expect(throws: NimbusError.self) { try RateLimitPolicy.gcra("quote\"", limit: 1, per: .seconds(1)).validate() }
    }

    @Test func theLimiterRefusesBadKeysAndBatches() async throws {
        let limiter = RateLimiter(driver: MemoryRateLimitDriver(), configuration: .init(maximumKeyLength: 40))
        let policy = RateLimitPolicy.gcra("api", limit: 1, per: .seconds(1))
        await #expect(throws: NimbusError.self) { try await limiter.acquire("", policy: policy) }
        await #expect(throws: NimbusError.self) { try await limiter.acquire(String(repeating: "k", count: 40), policy: policy) }
        let many = (0..<17).map { RateLimitRequest(key: "k\($0)", policy: policy) }
        await #expect(throws: NimbusError.self) { try await limiter.acquire(many) }
        try await limiter.close()
        let closed = await #expect(throws: NimbusError.self) { try await limiter.acquire("k", policy: policy) }
        #expect(closed?.code == .failedPrecondition)
    }

    @Test func theTightestStateAndTheLongestWait() {
        let decision = RateLimitDecision(allowed: false, states: [
            RateLimitState(policy: "rpm", allowed: false, limit: 60, remaining: 0, resetAfter: .seconds(20), retryAfter: .seconds(2)),
            RateLimitState(policy: "tpm", allowed: false, limit: 1000, remaining: 10, resetAfter: .seconds(60), retryAfter: .seconds(9)),
        ])
        #expect(decision.retryAfter == .seconds(9))
        #expect(decision.tightest?.policy == "rpm")
    }
}

@Suite struct RateLimitMiddlewareTests {
    @Test func answers429WithRetryAfterAndTheRateLimitFields() async throws {
        let clock = ManualClock()
        let limiter = RateLimiter(driver: MemoryRateLimitDriver(time: .clock(clock)))
        let router = Router()
        router.add(middleware: RateLimitMiddleware(limiter, policy: .gcra("api", limit: 2, per: .seconds(10))) { request, _ in
            request.headers[.authorization]
        })
        router.get("/hello") { _, _ in "hi" }
        let app = Application(router: router)
        try await app.test(.router) { client in
            for remaining in [1, 0] {
                try await client.execute(uri: "/hello", method: .get, headers: [.authorization: "alice"]) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.rateLimitPolicy] == #""api";q=2;w=10"#)
                    #expect(response.headers[.rateLimit] == #""api";r=\#(remaining);t=\#(remaining == 1 ? 5 : 10)"#)
                }
            }
            try await client.execute(uri: "/hello", method: .get, headers: [.authorization: "alice"]) { response in
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[.retryAfter] == "5")
                #expect(response.headers[.rateLimit] == #""api";r=0;t=10"#)
                #expect(String(buffer: response.body).contains("rate_limit_exceeded"))
            }
            // Another key has its own budget; no key means not limited.
            try await client.execute(uri: "/hello", method: .get, headers: [.authorization: "bob"]) { response in
                #expect(response.status == .ok)
            }
            for _ in 0..<5 {
                try await client.execute(uri: "/hello", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.rateLimit] == nil)
                }
            }
            clock.advance(by: .seconds(5))
            try await client.execute(uri: "/hello", method: .get, headers: [.authorization: "alice"]) { response in
                #expect(response.status == .ok)
            }
        }
    }
}
