import NimbusCore
import NimbusRateLimit
import NimbusTesting
import Synchronization
import Testing

/// The behaviour every ``RateLimitDriver`` must have, stated once and run against each adapter.
///
/// Time is the harness's: a driver reads a ``RateLimitTime`` made from a `ManualClock`, and
/// `advance` moves that clock, so every figure below is exact on every driver.
///
/// ```swift
/// @Test(arguments: RateLimitConformance.checks)
/// func conformance(_ check: RateLimitConformance.Check) async throws {
///     let clock = ManualClock()
///     try await check.run(RateLimitConformance.Harness(
///         makeDriver: { MemoryRateLimitDriver(time: .clock(clock)) },
///         advance: { clock.advance(by: $0) }))
/// }
/// ```
public enum RateLimitConformance {
    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes a fresh driver on the harness's clock.
        public var makeDriver: @Sendable () async throws -> any RateLimitDriver
        /// Moves the driver's clock forward.
        public var advance: @Sendable (Duration) async throws -> Void

        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any RateLimitDriver,
                    advance: @escaping @Sendable (Duration) async throws -> Void) {
            self.makeDriver = makeDriver
            self.advance = advance
        }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    /// A check on a fresh limiter with a unique key prefix.
    static func check(_ name: String, _ body: @escaping @Sendable (RateLimiter, Harness) async throws -> Void) -> Check {
        Check(name) { harness in
            let limiter = RateLimiter(driver: try await harness.makeDriver(),
                                      configuration: .init(keyPrefix: "conformance:\(IDGenerator.shared.ulid()):"))
            try await limiter.closing { try await body($0, harness) }
        }
    }

    static func admitted(_ limiter: RateLimiter, _ key: String, _ policy: RateLimitPolicy, times: Int, cost: Int = 1) async throws -> Int {
        var count = 0
        for _ in 0..<times where try await limiter.acquire(key, policy: policy, cost: cost).allowed { count += 1 }
        return count
    }

    /// Every check.
    public static let checks: [Check] = [
        check("GCRA admits the burst, then one call per interval, and says when") { limiter, harness async throws in
            let policy = RateLimitPolicy.gcra("api", limit: 10, per: .seconds(10), burst: 3)
            #expect(try await admitted(limiter, "k", policy, times: 3) == 3)
            let refused = try await limiter.acquire("k", policy: policy)
            #expect(!refused.allowed)
            #expect(refused.retryAfter == .seconds(1))
            #expect(refused.states.first?.remaining == 0)
            try await harness.advance(.milliseconds(999))
            #expect(try await limiter.acquire("k", policy: policy).allowed == false)
            try await harness.advance(.milliseconds(1))
            let next = try await limiter.acquire("k", policy: policy)
            #expect(next.allowed)
            #expect(next.states.first?.resetAfter == .seconds(3))
        },
        check("GCRA reports remaining and reset after each call") { limiter, _ async throws in
            let policy = RateLimitPolicy.gcra("api", limit: 10, per: .seconds(10))
            let first = try await limiter.acquire("k", policy: policy)
            #expect(first.states.first == RateLimitState(policy: "api", allowed: true, limit: 10, remaining: 9, resetAfter: .seconds(1), retryAfter: nil))
            let second = try await limiter.acquire("k", policy: policy, cost: 4)
            #expect(second.states.first?.remaining == 5)
            #expect(second.states.first?.resetAfter == .seconds(5))
        },
        check("a token bucket refills continuously up to its capacity") { limiter, harness async throws in
            let policy = RateLimitPolicy.tokenBucket("tb", capacity: 5, refill: 1, per: .seconds(1))
            #expect(try await admitted(limiter, "k", policy, times: 6) == 5)
            let refused = try await limiter.acquire("k", policy: policy)
            #expect(refused.retryAfter == .seconds(1))
            try await harness.advance(.milliseconds(2500))
            #expect(try await admitted(limiter, "k", policy, times: 3) == 2)
            let again = try await limiter.acquire("k", policy: policy)
            #expect(again.retryAfter == .milliseconds(500))
            try await harness.advance(.seconds(3600))
            let full = try await limiter.acquire("k", policy: policy, cost: 0)
            #expect(full.states.first?.remaining == 5)             // never above capacity
        },
        check("a token bucket charges a cost in units") { limiter, _ async throws in
            let policy = RateLimitPolicy.tokenBucket("tpm", capacity: 1000, refill: 1000, per: .seconds(60))
            #expect(try await limiter.acquire("k", policy: policy, cost: 700).allowed)
            let refused = try await limiter.acquire("k", policy: policy, cost: 400)
            #expect(!refused.allowed)
            #expect(refused.states.first?.remaining == 300)
            #expect(refused.retryAfter == .seconds(6))             // 100 tokens at 1000/min
            #expect(try await limiter.acquire("k", policy: policy, cost: 300).allowed)
        },
        check("a fixed window resets at the window's end") { limiter, harness async throws in
            let policy = RateLimitPolicy.fixedWindow("fw", limit: 3, per: .seconds(10))
            // Align to a window start first: the harness clock starts on a whole multiple of 10 s.
            #expect(try await admitted(limiter, "k", policy, times: 4) == 3)
            try await harness.advance(.seconds(4))
            let refused = try await limiter.acquire("k", policy: policy)
            #expect(refused.retryAfter == .seconds(6))
            try await harness.advance(.seconds(6))
            #expect(try await admitted(limiter, "k", policy, times: 4) == 3)
        },
        check("a sliding window weighs the previous window by its overlap") { limiter, harness async throws in
            let policy = RateLimitPolicy.slidingWindow("sw", limit: 10, per: .seconds(10))
            #expect(try await admitted(limiter, "k", policy, times: 12) == 10)
            try await harness.advance(.seconds(15))               // half of the previous window still counts: 5
            #expect(try await admitted(limiter, "k", policy, times: 8) == 5)
            let refused = try await limiter.acquire("k", policy: policy)
            #expect(!refused.allowed)
            // 10 old calls weighted 0.5, plus 5 new; one more fits once the old weight is 4, at 60% of the window.
            #expect(refused.retryAfter == .seconds(1))
            try await harness.advance(.seconds(1))
            #expect(try await limiter.acquire("k", policy: policy).allowed)
        },
        check("a refused batch charges none of its policies") { limiter, _ async throws in
            let rpm = RateLimitPolicy.slidingWindow("rpm", limit: 100, per: .seconds(60))
            let tpm = RateLimitPolicy.tokenBucket("tpm", capacity: 1000, refill: 1000, per: .seconds(60))
            let first = try await limiter.acquire([RateLimitRequest(key: "key", policy: rpm), RateLimitRequest(key: "key", policy: tpm, cost: 1000),
                                                   RateLimitRequest(key: "key", policy: tpm.renamed("tpm2"), cost: 1000)])
            #expect(first.allowed)
            let second = try await limiter.acquire([RateLimitRequest(key: "key", policy: rpm), RateLimitRequest(key: "key", policy: tpm, cost: 10)])
            #expect(!second.allowed)
            #expect(second.states.map(\.allowed) == [true, false])
            #expect(second.states[0].remaining == 99)               // not charged: still 99 after the first call
            let peek = try await limiter.acquire("key", policy: rpm, cost: 0)
            #expect(peek.states.first?.remaining == 99)
        },
        check("cost 0 reads the state without charging") { limiter, _ async throws in
            let policy = RateLimitPolicy.gcra("api", limit: 5, per: .seconds(5))
            for _ in 0..<10 { #expect(try await limiter.acquire("k", policy: policy, cost: 0).states.first?.remaining == 5) }
            #expect(try await admitted(limiter, "k", policy, times: 6) == 5)
        },
        check("keys and policy names are independent") { limiter, _ async throws in
            let policy = RateLimitPolicy.fixedWindow("a", limit: 2, per: .seconds(60))
            #expect(try await admitted(limiter, "alice", policy, times: 3) == 2)
            #expect(try await admitted(limiter, "bob", policy, times: 3) == 2)
            #expect(try await admitted(limiter, "alice", policy.renamed("b"), times: 3) == 2)
        },
        check("reset makes a key's quota whole") { limiter, _ async throws in
            let policy = RateLimitPolicy.gcra("api", limit: 2, per: .seconds(3600))
            #expect(try await admitted(limiter, "k", policy, times: 3) == 2)
            try await limiter.reset("k", policy: policy)
            #expect(try await admitted(limiter, "k", policy, times: 3) == 2)
        },
        check("a cost no policy could ever admit is invalidArgument") { limiter, _ async throws in
            let policy = RateLimitPolicy.tokenBucket("tb", capacity: 10, refill: 10, per: .seconds(1))
            let error = await #expect(throws: NimbusError.self) { try await limiter.acquire("k", policy: policy, cost: 11) }
            #expect(error?.code == .invalidArgument)
            let negative = await #expect(throws: NimbusError.self) { try await limiter.acquire("k", policy: policy, cost: -1) }
            #expect(negative?.code == .invalidArgument)
        },
        check("64 concurrent callers never get more than the limit") { limiter, _ async throws in
            for policy in [RateLimitPolicy.gcra("g", limit: 50, per: .seconds(3600)), .tokenBucket("t", capacity: 50, refill: 50, per: .seconds(3600)),
                           .fixedWindow("f", limit: 50, per: .seconds(3600)), .slidingWindow("s", limit: 50, per: .seconds(3600))] {
                let admitted = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<64 {
                        group.addTask {
                            var count = 0
                            for _ in 0..<4 where try await limiter.acquire("shared", policy: policy).allowed { count += 1 }
                            return count
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(admitted == 50, "\(policy.algorithm)")
            }
        },
        check("a concurrency limit hands out its slots and takes them back") { limiter, harness async throws in
            let first = try await limiter.acquireSlot("exports", limit: 2, lease: .seconds(60))
            let second = try await limiter.acquireSlot("exports", limit: 2, lease: .seconds(60))
            #expect(first.slot != nil && second.slot != nil && first.slot != second.slot)
            #expect(second.inUse == 2)
            try await harness.advance(.seconds(10))
            let third = try await limiter.acquireSlot("exports", limit: 2, lease: .seconds(60))
            #expect(third.slot == nil)
            #expect(third.retryAfter == .seconds(50))
            #expect(try await limiter.releaseSlot(#require(first.slot)))
            let fourth = try await limiter.acquireSlot("exports", limit: 2, lease: .seconds(60))
            #expect(fourth.slot != nil)
        },
        check("a slot whose lease ran out frees itself") { limiter, harness async throws in
            let held = try await limiter.acquireSlot("jobs", limit: 1, lease: .seconds(5))
            #expect(try await limiter.acquireSlot("jobs", limit: 1, lease: .seconds(5)).slot == nil)
            try await harness.advance(.seconds(6))
            let next = try await limiter.acquireSlot("jobs", limit: 1, lease: .seconds(5))
            #expect(next.slot != nil)
            #expect(try await limiter.releaseSlot(#require(held.slot)) == false)    // the crashed holder's slot was reclaimed
            let refused = await #expect(throws: NimbusError.self) {
                try await limiter.withSlot("jobs", limit: 1, lease: .seconds(5)) { 1 }
            }
            #expect(refused?.code == .resourceExhausted)
            #expect(try await limiter.releaseSlot(#require(next.slot)))
            #expect(try await limiter.withSlot("jobs", limit: 1, lease: .seconds(5)) { 7 } == 7)
            #expect(try await limiter.acquireSlot("jobs", limit: 1, lease: .seconds(5)).slot != nil)   // withSlot gave it back
        },
    ]
}

extension RateLimitPolicy {
    /// The same policy under another name.
    func renamed(_ name: String) -> RateLimitPolicy {
        var copy = self
        copy.name = name
        return copy
    }
}
