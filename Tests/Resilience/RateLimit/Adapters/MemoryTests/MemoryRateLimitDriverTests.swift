import NimbusCore
import NimbusRateLimit
import NimbusRateLimitConformance
import NimbusRateLimitMemory
import NimbusTesting
import Testing

@Suite("Memory rate limiter")
struct MemoryRateLimitDriverTests {
    @Test("conformance", arguments: RateLimitConformance.checks)
    func conformance(_ check: RateLimitConformance.Check) async throws {
        let clock = ManualClock()
        try await check.run(RateLimitConformance.Harness(
            makeDriver: { MemoryRateLimitDriver(time: .clock(clock)) },
            advance: { clock.advance(by: $0) }))
    }

    @Test("mem:// opens through the registry; unknown options are refused")
    func opener() async throws {
        let limiter = try await RateLimiter.open("mem://?maxKeys=100", openers: .rateLimit.withMemory())
        #expect(limiter.provider == "memory")
        #expect(limiter.driver(as: MemoryRateLimitDriver.self)?.maxKeys == 100)
        try await limiter.close()
        await #expect(throws: NimbusError.self) { try await RateLimiter.open("mem://?maxKeyz=1", openers: .rateLimit.withMemory()) }
    }

    @Test("memory stays bounded: whole quotas are swept, and past maxKeys the soonest-expiring go first")
    func bounded() async throws {
        let clock = ManualClock()
        let driver = MemoryRateLimitDriver(time: .clock(clock), maxKeys: 1000)
        let limiter = RateLimiter(driver: driver)
        let policy = RateLimitPolicy.gcra("api", limit: 10, per: .seconds(10))
        for index in 0..<5000 { _ = try await limiter.acquire("user:\(index)", policy: policy) }
        #expect(driver.keyCount <= 1000)
        clock.advance(by: .seconds(2))                      // every cell's quota is whole again
        for index in 0..<1100 { _ = try await limiter.acquire("other:\(index)", policy: policy) }
        #expect(driver.keyCount <= 1100)
        #expect(driver.keyCount >= 100)
    }
}
