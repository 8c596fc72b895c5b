import Foundation
import NIOCore
import NimbusCache
import NimbusCacheMemory
import NimbusCore
import NimbusTesting
import Synchronization
import Testing

/// A driver that fails on demand, to test what the portable `Cache` adds.
final class FlakyDriver: CacheDriver {
    var provider: String { "flaky" }
    let failures = Mutex<[NimbusError]>([])
    let calls = Atomic<Int>(0)
    let keysSeen = Mutex<[String]>([])
    let inner = MemoryCacheDriver(clock: ManualClock())

    func failNext(_ errors: NimbusError...) { failures.withLock { $0 += errors } }

    private func step(_ keys: [String]) throws {
        calls.add(1, ordering: .relaxed)
        keysSeen.withLock { $0 += keys }
        if let error = failures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { throw error }
    }

    func get(_ keys: [String]) async throws -> [ByteBuffer?] { try step(keys); return try await inner.get(keys) }
    func set(_ entries: [CacheEntry], condition: CacheWriteCondition) async throws -> [Bool] {
        try step(entries.map(\.key)); return try await inner.set(entries, condition: condition)
    }
    func delete(_ keys: [String]) async throws -> Int { try step(keys); return try await inner.delete(keys) }
    func increment(_ key: String, by delta: Int64, ttl: Duration?) async throws -> Int64 {
        try step([key]); return try await inner.increment(key, by: delta, ttl: ttl)
    }
    func close() async throws {}
}

@Suite("Cache (portable layer)", .timeLimit(.minutes(2)))
struct CacheTests {
    private func cache(_ driver: FlakyDriver, prefix: String = "svc:", defaultTTL: Duration? = nil) -> Cache {
        Cache(driver: driver, configuration: .init(keyPrefix: prefix, defaultTTL: defaultTTL,
                                                   retry: RetryPolicy(maxAttempts: 3, baseDelay: .zero, jitter: .none)))
    }

    @Test("keys reach the driver prefixed; results come back unprefixed")
    func prefixing() async throws {
        let driver = FlakyDriver()
        let cache = cache(driver)
        try await cache.setMany(["a": ByteBuffer(string: "1"), "b": ByteBuffer(string: "2")])
        #expect(try await cache.getMany(["a", "b"]).keys.sorted() == ["a", "b"])
        #expect(driver.keysSeen.withLock { $0 }.allSatisfy { $0.hasPrefix("svc:") })
    }

    @Test("idempotent calls are retried on transient errors; increment and setIfAbsent are not")
    func retries() async throws {
        let driver = FlakyDriver()
        let cache = cache(driver)
        driver.failNext(NimbusError(.unavailable, "blip"), NimbusError(.unavailable, "blip"))
        try await cache.set("k", bytes: ByteBuffer(string: "v"))
        #expect(driver.calls.load(ordering: .relaxed) == 3)

        driver.failNext(NimbusError(.unavailable, "blip"))
        await #expect(throws: NimbusError.self) { try await cache.increment("n") }
        driver.failNext(NimbusError(.unavailable, "blip"))
        await #expect(throws: NimbusError.self) { try await cache.setIfAbsent("once", bytes: ByteBuffer(string: "v")) }
        #expect(try await cache.get("n") == nil)   // the failed increment did not run twice behind our back
    }

    @Test("non-retryable errors surface at once; foreign errors are wrapped once")
    func errors() async throws {
        struct Boom: Error {}
        let driver = FlakyDriver()
        let cache = cache(driver)
        driver.failNext(NimbusError(.permissionDenied, "no"))
        let denied = await #expect(throws: NimbusError.self) { try await cache.get("k") }
        #expect(denied?.code == .permissionDenied)
        #expect(driver.calls.load(ordering: .relaxed) == 1)
    }

    @Test("the default TTL applies when a write names none")
    func defaultTTL() async throws {
        let clock = ManualClock()
        let cache = Cache(driver: MemoryCacheDriver(clock: clock), configuration: .init(defaultTTL: .seconds(10)))
        try await cache.set("k", bytes: ByteBuffer(string: "v"))
        try await cache.set("forever-ish", bytes: ByteBuffer(string: "v"), ttl: .seconds(100))
        clock.advance(by: .seconds(11))
        #expect(try await cache.get("k") == nil)
        #expect(try await cache.get("forever-ish") != nil)
    }

    @Test("keys and values over the limits are refused before reaching the driver")
    func limits() async throws {
        let driver = FlakyDriver()
        let cache = Cache(driver: driver, configuration: .init(keyPrefix: "p:", maximumKeyLength: 8, maximumValueSize: 4))
        #expect((await #expect(throws: NimbusError.self) { try await cache.get("toolongkey") })?.code == .invalidArgument)
        #expect((await #expect(throws: NimbusError.self) { try await cache.set("k", bytes: ByteBuffer(string: "12345")) })?.code == .resourceExhausted)
        #expect(driver.calls.load(ordering: .relaxed) == 0)
    }

    @Test("values that cannot be encoded are invalidArgument")
    func encoding() async throws {
        let cache = Cache(driver: MemoryCacheDriver(clock: ManualClock()))
        #expect((await #expect(throws: NimbusError.self) { try await cache.set("nan", Double.nan) })?.code == .invalidArgument)
    }
}
