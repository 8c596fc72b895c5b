import NIOCore
import NimbusCore
import NimbusRateLimit
import NimbusRateLimitConformance
import NimbusRateLimitRedis
import NimbusRedis
import NimbusTesting
import Testing

@Suite("Redis rate limiter (real redis-server)", .requires(.redis), .timeLimit(.minutes(2)))
struct RedisRateLimitDriverTests {
    @Test("conformance", arguments: RateLimitConformance.checks)
    func conformance(_ check: RateLimitConformance.Check) async throws {
        let url = try Peer.redis.url()
        let clock = ManualClock()
        try await check.run(RateLimitConformance.Harness(
            makeDriver: { try RedisRateLimitDriver(url: url, time: .clock(clock)) },
            advance: { clock.advance(by: $0) }))
    }

    @Test("on the server's clock: a key's hash expires once its quota is whole again")
    func serverClock() async throws {
        let url = try Peer.redis.url()
        let driver = try RedisRateLimitDriver(url: url)
        let limiter = RateLimiter(driver: driver, configuration: .init(keyPrefix: "rl-test:\(IDGenerator.shared.ulid()):"))
        // One call per 2 s, two at once: the third call within 2 s is refused and the cell lives at most 4 s.
        let policy = RateLimitPolicy.gcra("api", limit: 1, per: .seconds(2), burst: 2)
        for attempt in 1...4 {
            let key = "k\(attempt)", watch = StallWatch.start()
            let first = try await limiter.acquire(key, policy: policy), second = try await limiter.acquire(key, policy: policy)
            let refused = try await limiter.acquire(key, policy: policy)
            let stored = limiter.configuration.keyPrefix + "api:" + key
            let ttl = try await driver.client.timeToLive(stored)
            if await watch.stop() > .milliseconds(800), refused.allowed || ttl == nil, attempt < 4 { continue }   // the machine stalled
            #expect(first.allowed && second.allowed)
            #expect(!refused.allowed)
            let wait = try #require(refused.retryAfter)
            #expect(wait > .zero && wait <= .seconds(2))
            #expect(try #require(ttl) <= .milliseconds(4001))
            try await Task.sleep(for: .milliseconds(4500))
            #expect(try await driver.client.get(stored) == nil)
            #expect(try await limiter.acquire(key, policy: policy).allowed)
            break
        }
        try await limiter.close()
    }

    @Test("a flushed script cache is reloaded (NOSCRIPT)")
    func scriptReload() async throws {
        let url = try Peer.redis.url()
        let limiter = RateLimiter(driver: try RedisRateLimitDriver(url: url), configuration: .init(keyPrefix: "rl-test:\(IDGenerator.shared.ulid()):"))
        let policy = RateLimitPolicy.fixedWindow("fw", limit: 5, per: .seconds(60))
        #expect(try await limiter.acquire("k", policy: policy).allowed)
        let admin = try RedisClient(url: url)
        try await admin.send(RedisCommand("SCRIPT", "FLUSH"))
        #expect(try await limiter.acquire("k", policy: policy).states.first?.remaining == 3)
        try await admin.shutdown()
        try await limiter.close()
    }

    @Test("a server that is down: unavailable, or the configured fail-open / fail-closed answer")
    func backendDown() async throws {
        let port = try LocalPorts.free()
        let policy = RateLimitPolicy.gcra("api", limit: 1, per: .seconds(1))
        let strict = RateLimiter(driver: try RedisRateLimitDriver(url: "redis://127.0.0.1:\(port)?connectTimeout=200ms"))
        let error = await #expect(throws: NimbusError.self) { try await strict.acquire("k", policy: policy) }
        #expect(error?.code == .unavailable)
        let open = RateLimiter(driver: try RedisRateLimitDriver(url: "redis://127.0.0.1:\(port)?connectTimeout=200ms"), configuration: .init(onBackendFailure: .allow))
        #expect(try await open.acquire("k", policy: policy).allowed)
        let closed = RateLimiter(driver: try RedisRateLimitDriver(url: "redis://127.0.0.1:\(port)?connectTimeout=200ms"), configuration: .init(onBackendFailure: .deny))
        let denied = try await closed.acquire("k", policy: policy)
        #expect(!denied.allowed)
        #expect(denied.retryAfter == .seconds(1))
        for limiter in [strict, open, closed] { try await limiter.close() }
    }
}
