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
        let policy = RateLimitPolicy.gcra("api", limit: 10, per: .seconds(1), burst: 2)
        #expect(try await limiter.acquire("k", policy: policy).allowed)
        #expect(try await limiter.acquire("k", policy: policy).allowed)
        let refused = try await limiter.acquire("k", policy: policy)
        #expect(!refused.allowed)
        let wait = try #require(refused.retryAfter)
        #expect(wait > .zero && wait <= .milliseconds(100))
        let key = limiter.configuration.keyPrefix + "api:k"
        let ttl = try #require(try await driver.client.timeToLive(key))
        #expect(ttl <= .milliseconds(201))
        try await Task.sleep(for: .milliseconds(350))
        let stored = try await driver.client.get(key)
        #expect(stored == nil)
        #expect(try await limiter.acquire("k", policy: policy).allowed)
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
