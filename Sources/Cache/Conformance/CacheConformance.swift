import Foundation
import NIOCore
import NimbusCache
import NimbusCore
import NimbusTesting
import Testing

/// The behaviour every ``CacheDriver`` must have, stated once and run against each adapter.
///
/// An adapter's test target runs every check against its own driver:
///
/// ```swift
/// @Test(arguments: CacheConformance.checks)
/// func conformance(_ check: CacheConformance.Check) async throws {
///     let clock = ManualClock()
///     try await check.run(CacheConformance.Harness(
///         makeDriver: { MemoryCacheDriver(clock: clock) },
///         advance: { clock.advance(by: $0) }))
/// }
/// ```
/// Each check uses its own random key prefix, so checks can run in parallel on one server.
public enum CacheConformance {
    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes a fresh driver (one per check).
        public var makeDriver: @Sendable () async throws -> any CacheDriver
        /// Lets at least `duration` pass for the driver: advance a manual clock, or sleep for a server.
        public var advance: @Sendable (Duration) async throws -> Void

        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any CacheDriver,
                    advance: @escaping @Sendable (Duration) async throws -> Void) {
            self.makeDriver = makeDriver
            self.advance = advance
        }
    }

    /// One named behaviour (the conformance kit's check over this harness).
    public typealias Check = ConformanceCheck<Harness>

    /// A check that runs on a fresh driver, behind a `Cache` with a unique key prefix.
    static func check(_ name: String, _ body: @escaping @Sendable (Cache, Harness, String) async throws -> Void) -> Check {
        Check(name) { harness in
            let prefix = "conformance:\(IDGenerator.shared.ulid()):"
            let cache = Cache(driver: try await harness.makeDriver(), configuration: .init(keyPrefix: prefix, retry: .none))
            try await cache.closing { try await body($0, harness, prefix) }
        }
    }

    struct Profile: Codable, Equatable {
        var name: String
        var tags: [String]
        var score: Double?
    }

    /// Every check.
    public static let checks: [Check] = [
        check("a missing key reads as nil") { cache, _, _ async throws in
            #expect(try await cache.get("absent") == nil)
        },
        check("set then get returns the same bytes, binary-safe") { cache, _, _ async throws in
            let bytes = ByteBuffer(bytes: [0, 1, 2, 13, 10, 255, 0, 36])
            try await cache.set("binary", bytes: bytes)
            #expect(try await cache.get("binary") == bytes)
        },
        check("an empty value is stored and is not a miss") { cache, _, _ async throws in
            try await cache.set("empty", bytes: ByteBuffer())
            #expect(try await cache.get("empty") == ByteBuffer())
        },
        check("set overwrites") { cache, _, _ async throws in
            try await cache.set("k", bytes: ByteBuffer(string: "one"))
            try await cache.set("k", bytes: ByteBuffer(string: "two"))
            #expect(try await cache.get("k") == ByteBuffer(string: "two"))
        },
        check("Codable values round-trip") { cache, _, _ async throws in
            let profile = Profile(name: "Ada", tags: ["math", "engines"], score: 9.5)
            try await cache.set("profile", profile)
            #expect(try await cache.get("profile", as: Profile.self) == profile)
        },
        check("reading a value as the wrong type is failedPrecondition") { cache, _, _ async throws in
            try await cache.set("number", 42)
            let error = await #expect(throws: NimbusError.self) { try await cache.get("number", as: Profile.self) }
            #expect(error?.code == .failedPrecondition)
        },
        check("a value expires after its TTL") { cache, harness, _ async throws in
            // Against a real server time is real: if the machine stalls past the TTL between two steps,
            // that attempt proves nothing and is run again (at most three times).
            for attempt in 1...3 {
                let key = "short\(attempt)"
                let start = ContinuousClock.now
                try await cache.set(key, bytes: ByteBuffer(string: "v"), ttl: .seconds(3))
                let present = try await cache.get(key) != nil
                if ContinuousClock.now - start >= .milliseconds(2500), attempt < 3 { continue }
                try await harness.advance(.milliseconds(3600))
                #expect(present)
                #expect(try await cache.get(key) == nil)
                break
            }
        },
        check("a value without TTL outlives a TTL'd one") { cache, harness, _ async throws in
            try await cache.set("forever", bytes: ByteBuffer(string: "v"))
            try await cache.set("brief", bytes: ByteBuffer(string: "v"), ttl: .seconds(1))
            try await harness.advance(.milliseconds(1600))
            #expect(try await cache.get("forever") != nil)
            #expect(try await cache.get("brief") == nil)
        },
        check("overwriting without TTL clears the old TTL") { cache, harness, _ async throws in
            try await cache.set("k", bytes: ByteBuffer(string: "a"), ttl: .seconds(1))
            try await cache.set("k", bytes: ByteBuffer(string: "b"))
            try await harness.advance(.milliseconds(1600))
            #expect(try await cache.get("k") == ByteBuffer(string: "b"))
        },
        check("setIfAbsent writes once and keeps the first value") { cache, _, _ async throws in
            #expect(try await cache.setIfAbsent("lock", bytes: ByteBuffer(string: "first")))
            #expect(try await cache.setIfAbsent("lock", bytes: ByteBuffer(string: "second")) == false)
            #expect(try await cache.get("lock") == ByteBuffer(string: "first"))
        },
        check("setIfAbsent succeeds again once the value expired") { cache, harness, _ async throws in
            #expect(try await cache.setIfAbsent("lease", bytes: ByteBuffer(string: "a"), ttl: .seconds(1)))
            try await harness.advance(.milliseconds(1600))
            #expect(try await cache.setIfAbsent("lease", bytes: ByteBuffer(string: "b")))
            #expect(try await cache.get("lease") == ByteBuffer(string: "b"))
        },
        check("increment starts from zero, adds, and accepts negative deltas") { cache, _, _ async throws in
            #expect(try await cache.increment("counter") == 1)
            #expect(try await cache.increment("counter", by: 10) == 11)
            #expect(try await cache.increment("counter", by: -20) == -9)
            #expect(try await cache.get("counter") == ByteBuffer(string: "-9"))
        },
        check("increment sees a counter written with set") { cache, _, _ async throws in
            try await cache.set("seeded", bytes: ByteBuffer(string: "41"))
            #expect(try await cache.increment("seeded") == 42)
        },
        check("increment of a non-integer value is invalidArgument and keeps the value") { cache, _, _ async throws in
            try await cache.set("text", bytes: ByteBuffer(string: "hello"))
            let error = await #expect(throws: NimbusError.self) { try await cache.increment("text") }
            #expect(error?.code == .invalidArgument)
            #expect(try await cache.get("text") == ByteBuffer(string: "hello"))
        },
        check("increment's TTL applies when it creates the key, not later") { cache, harness, _ async throws in
            // A loaded machine can stall a real server's round trips past the TTL; such an attempt
            // observed nothing and is repeated. If every attempt stalls, the check fails: it could not observe.
            let attempts = 5
            for attempt in 1...attempts {
                let key = "window\(attempt)"
                let start = ContinuousClock.now
                let first = try await cache.increment(key, ttl: .seconds(4))
                try await harness.advance(.milliseconds(2400))
                let second = try await cache.increment(key, ttl: .seconds(4))   // must not extend the window
                let elapsed = ContinuousClock.now - start
                if elapsed >= .milliseconds(3800) {
                    if attempt < attempts { continue }
                    Issue.record("could not observe: all \(attempts) attempts stalled past the 4 s TTL (the last took \(elapsed))")
                    return
                }
                try await harness.advance(.milliseconds(2400))
                #expect(first == 1)
                #expect(second == 2, "the second increment came \(elapsed) after the first (attempt \(attempt))")
                #expect(try await cache.get(key) == nil)
                #expect(try await cache.increment(key, ttl: .seconds(4)) == 1)
                break
            }
        },
        check("delete counts the keys that existed") { cache, _, _ async throws in
            try await cache.set("a", bytes: ByteBuffer(string: "1"))
            try await cache.set("b", bytes: ByteBuffer(string: "2"))
            #expect(try await cache.delete("a", "b", "missing") == 2)
            #expect(try await cache.get("a") == nil)
            #expect(try await cache.delete("a") == 0)
        },
        check("getMany returns only the keys that exist; setMany writes all") { cache, _, _ async throws in
            try await cache.setMany(["x": ByteBuffer(string: "1"), "y": ByteBuffer(string: "2"), "z": ByteBuffer(string: "3")])
            let values = try await cache.getMany(["x", "nope", "z"])
            #expect(values == ["x": ByteBuffer(string: "1"), "z": ByteBuffer(string: "3")])
        },
        check("setMany with a TTL expires every value") { cache, harness, _ async throws in
            try await cache.setMany(["p": ByteBuffer(string: "1"), "q": ByteBuffer(string: "2")], ttl: .seconds(1))
            try await harness.advance(.milliseconds(1600))
            #expect(try await cache.getMany(["p", "q"]).isEmpty)
        },
        check("key prefixes isolate caches on one backend") { cache, harness, prefix async throws in
            try await cache.set("shared", bytes: ByteBuffer(string: "mine"))
            // A second cache on a different prefix over a fresh driver of the same backend.
            let other = Cache(driver: try await harness.makeDriver(), configuration: .init(keyPrefix: prefix + "other:", retry: .none))
            #expect(try await other.get("shared") == nil)
            try await other.close()
        },
        check("large values (1 MiB) round-trip") { cache, _, _ async throws in
            let big = ByteBuffer(bytes: (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            try await cache.set("big", bytes: big)
            #expect(try await cache.get("big") == big)
        },
        check("keys may hold any UTF-8, spaces and separators") { cache, _, _ async throws in
            let key = "naïve key:with/odd\tchars 🚀"
            try await cache.set(key, bytes: ByteBuffer(string: "ok"))
            #expect(try await cache.get(key) == ByteBuffer(string: "ok"))
        },
        check("an empty key is invalidArgument") { cache, _, _ async throws in
            let error = await #expect(throws: NimbusError.self) { try await cache.set("", bytes: ByteBuffer(string: "v")) }
            #expect(error?.code == .invalidArgument)
        },
        check("a non-positive TTL is invalidArgument") { cache, _, _ async throws in
            let error = await #expect(throws: NimbusError.self) { try await cache.set("k", bytes: ByteBuffer(string: "v"), ttl: .zero) }
            #expect(error?.code == .invalidArgument)
        },
        check("concurrent increments are not lost") { cache, _, _ async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<50 { group.addTask { _ = try await cache.increment("race") } }
                try await group.waitForAll()
            }
            #expect(try await cache.get("race") == ByteBuffer(string: "50"))
        },
        check("a closed cache refuses calls with failedPrecondition") { cache, _, _ async throws in
            try await cache.close()
            let error = await #expect(throws: NimbusError.self) { try await cache.get("k") }
            #expect(error?.code == .failedPrecondition)
        },
    ]
}
