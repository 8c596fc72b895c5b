import NIOCore
import NimbusCache
import NimbusCacheConformance
import NimbusCacheMemory
import NimbusCore
import NimbusTesting
import Testing

@Suite("Memory cache", .timeLimit(.minutes(2)))
struct MemoryCacheDriverTests {
    @Test("conformance", arguments: CacheConformance.checks)
    func conformance(_ check: CacheConformance.Check) async throws {
        let clock = ManualClock()
        try await check.run(CacheConformance.Harness(
            makeDriver: { MemoryCacheDriver(clock: clock) },
            advance: { clock.advance(by: $0) }
        ))
    }

    @Test("evicts the least recently used entry past maxEntries")
    func lruByCount() async throws {
        let driver = MemoryCacheDriver(maxEntries: 3, clock: ManualClock())
        let cache = Cache(driver: driver)
        for key in ["a", "b", "c"] { try await cache.set(key, bytes: ByteBuffer(string: key)) }
        _ = try await cache.get("a")                      // a is now the most recent
        try await cache.set("d", bytes: ByteBuffer(string: "d"))
        #expect(try await cache.get("b") == nil)          // b was the coldest
        #expect(try await cache.getMany(["a", "c", "d"]).count == 3)
        #expect(driver.evictionCount == 1)
        #expect(driver.count == 3)
    }

    @Test("evicts by bytes and accounts for overwrites")
    func lruByBytes() async throws {
        let driver = MemoryCacheDriver(maxEntries: 100, maxBytes: 30, clock: ManualClock())
        let cache = Cache(driver: driver)
        try await cache.set("k1", bytes: ByteBuffer(string: String(repeating: "x", count: 10)))   // 12 bytes
        try await cache.set("k2", bytes: ByteBuffer(string: String(repeating: "y", count: 10)))   // 24
        #expect(driver.byteCount == 24)
        try await cache.set("k2", bytes: ByteBuffer(string: "short"))                             // 12 + 7
        #expect(driver.byteCount == 19)
        try await cache.set("k3", bytes: ByteBuffer(string: String(repeating: "z", count: 10)))   // 31 > 30: k1 goes
        #expect(try await cache.get("k1") == nil)
        #expect(driver.byteCount == 19)
    }

    @Test("purgeExpired drops expired entries without touching them")
    func purge() async throws {
        let clock = ManualClock()
        let driver = MemoryCacheDriver(clock: clock)
        let cache = Cache(driver: driver)
        try await cache.set("a", bytes: ByteBuffer(string: "1"), ttl: .seconds(1))
        try await cache.set("b", bytes: ByteBuffer(string: "2"))
        clock.advance(by: .seconds(2))
        driver.purgeExpired()
        #expect(driver.count == 1)
    }

    @Test("mem:// opens a bounded memory cache; unknown options are rejected")
    func opener() async throws {
        let openers = URLOpenerRegistry.cache.withMemory()
        let cache = try await Cache.open("mem://?maxEntries=2", openers: openers)
        #expect(cache.provider == "memory")
        #expect(cache.driver(as: MemoryCacheDriver<ContinuousClock>.self)?.maxEntries == 2)
        let error = await #expect(throws: NimbusError.self) { try await Cache.open("mem://?maxEntrys=2", openers: openers) }
        #expect(error?.message.contains("maxEntrys") == true)
        let unknown = await #expect(throws: NimbusError.self) { try await Cache.open("memcached://x", openers: openers) }
        #expect(unknown?.message.contains("mem://") == true)
    }
}
