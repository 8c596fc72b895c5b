import NimbusCore
import NimbusDistributedLock
import NimbusTesting
import Synchronization
import Testing

/// The behaviour every ``DistributedLockDriver`` must have, stated once and run against each adapter.
///
/// Leases expire on the backend's clock, so the checks run on real time with short TTLs (1–2 s);
/// a check whose timing the machine could not keep (a stall longer than the margin) is retried.
///
/// ```swift
/// @Test(arguments: DistributedLockConformance.checks)
/// func conformance(_ check: DistributedLockConformance.Check) async throws {
///     try await check.run(DistributedLockConformance.Harness { try RedisDistributedLockDriver(url: url) })
/// }
/// ```
public enum DistributedLockConformance {
    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes a fresh driver (one per check; every lock of a check shares it).
        public var makeDriver: @Sendable () async throws -> any DistributedLockDriver
        /// Multiplies every TTL and wait of the timed checks: for backends whose leases are coarse
        /// (etcd grants whole seconds, at least about 2).
        public var timeScale: Double
        /// How late after its TTL the backend may notice that a lease ended (etcd sweeps every 500 ms).
        public var expiryLag: Duration

        /// Creates a harness.
        public init(timeScale: Double = 1, expiryLag: Duration = .milliseconds(300),
                    makeDriver: @escaping @Sendable () async throws -> any DistributedLockDriver) {
            self.makeDriver = makeDriver
            self.timeScale = timeScale
            self.expiryLag = expiryLag
        }

        /// A duration of a timed check, scaled.
        func t(_ duration: Duration) -> Duration { duration * timeScale }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    static func check(_ name: String, _ body: @escaping @Sendable (DistributedLocks, Harness) async throws -> Void) -> Check {
        Check(name) { harness in
            let locks = DistributedLocks(driver: try await harness.makeDriver(),
                                         configuration: .init(keyPrefix: "conformance:\(IDGenerator.shared.ulid()):"))
            try await locks.closing { try await body($0, harness) }
        }
    }

    static func sleep(_ duration: Duration) async throws { try await Task.sleep(for: duration) }

    /// Every check.
    public static let checks: [Check] = [
        check("one holder at a time, named by holder()") { locks, h async throws in
            let a = try #require(try await locks.tryLock("job", ttl: .seconds(30), owner: "a"))
            #expect(try await locks.tryLock("job", ttl: .seconds(30), owner: "b") == nil)
            #expect(try await locks.tryLock("job", ttl: .seconds(30), owner: "a") == nil, "not re-entrant")
            let holder = try #require(try await locks.holder(of: "job"))
            #expect(holder.owner == "a" && holder.token == a.token)
            #expect(holder.expiresIn > .zero && holder.expiresIn <= .seconds(30))
            #expect(try await locks.holder(of: "other") == nil)
            try await a.release()
        },
        check("every acquisition gets a larger token, also after release and expiry") { locks, h async throws in
            var tokens: [UInt64] = []
            for round in 0..<3 {
                let handle = try #require(try await locks.tryLock("job", ttl: h.t(.seconds(1)), owner: "o\(round)", keepAlive: false))
                tokens.append(handle.token)
                if round == 1 { try await sleep(h.t(.seconds(1)) + h.expiryLag) } else { try await handle.release() }
            }
            #expect(tokens == tokens.sorted() && Set(tokens).count == 3, "\(tokens)")
        },
        check("an expired lease goes to the next contender; the old holder can neither renew nor release it") { locks, h async throws in
            let old = try #require(try await locks.tryLock("job", ttl: h.t(.seconds(1)), owner: "old", keepAlive: false))
            try await sleep(h.t(.seconds(1)) + h.expiryLag)
            let new = try #require(try await locks.tryLock("job", ttl: .seconds(30), owner: "new", keepAlive: false))
            #expect(new.token > old.token)
            #expect(try await old.renew() == false)
            #expect(!old.isHeld)
            try await old.release()
            #expect(try await locks.holder(of: "job")?.owner == "new")
            try await new.release()
        },
        check("release frees at once; a second release is harmless") { locks, h async throws in
            let a = try #require(try await locks.tryLock("job", ttl: .seconds(30), owner: "a"))
            try await a.release()
            try await a.release()
            #expect(!a.isHeld)
            let b = try #require(try await locks.tryLock("job", ttl: .seconds(30), owner: "b"))
            #expect(b.token > a.token)
            try await b.release()
        },
        check("renew extends the lease from now") { locks, h async throws in
            for attempt in 1...5 {
                let start = ContinuousClock.now, watch = StallWatch.start()
                let a = try #require(try await locks.tryLock("job\(attempt)", ttl: h.t(.seconds(2)), owner: "a", keepAlive: false))
                try await sleep(h.t(.milliseconds(1200)))
                let renewed = try await a.renew()
                try await sleep(h.t(.milliseconds(1200)))
                let holder = try await locks.holder(of: "job\(attempt)")
                let stalled = await watch.stop() > .milliseconds(600) || ContinuousClock.now - start > h.t(.milliseconds(3300))
                if stalled, !renewed || holder?.owner != "a", attempt < 5 { continue }   // the machine stalled: try again
                #expect(renewed)
                #expect(holder?.owner == "a", "2.4 s after taking a 2 s lease renewed at 1.2 s")
                try await a.release()
                break
            }
        },
        check("keep-alive holds a lease past its TTL until released") { locks, h async throws in
            for attempt in 1...5 {
                let watch = StallWatch.start()
                let a = try #require(try await locks.tryLock("job\(attempt)", ttl: h.t(.seconds(2)), owner: "a"))
                try await sleep(h.t(.milliseconds(4500)))
                let held = a.isHeld, holder = try await locks.holder(of: "job\(attempt)")
                // Renewals run every ⅔ s; a machine that stopped running tasks for more than ⅔ s could not renew.
                if await watch.stop() > .milliseconds(600), !held || holder == nil, attempt < 5 { try? await a.release(); continue }
                #expect(held)
                #expect(holder?.token == a.token)
                try await a.release()
                #expect(try await locks.holder(of: "job\(attempt)") == nil)
                break
            }
        },
        check("16 contenders: at most one wins a try; waiting, each gets its turn and no two hold it at once") { locks, h async throws in
            let winners = try await withThrowingTaskGroup(of: LockHandle?.self) { group in
                for index in 0..<16 { group.addTask { try await locks.tryLock("race", ttl: .seconds(30), owner: "c\(index)", keepAlive: false) } }
                return try await group.reduce(into: [LockHandle]()) { if let handle = $1 { $0.append(handle) } }
            }
            #expect(winners.count <= 1)
            for winner in winners { try await winner.release() }
            let occupancy = Terms()                            // (owner, token) of whoever is inside; never more than one
            let overlaps = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<16 {
                    group.addTask {
                        let handle = try await locks.lock("turns", ttl: .seconds(30), timeout: .seconds(60), owner: "t\(index)", keepAlive: false)
                        let inside = occupancy.list.withLock { $0.append(("t\(index)", handle.token)); return $0.count }
                        try await sleep(.milliseconds(5))
                        occupancy.list.withLock { $0.removeAll { $0.0 == "t\(index)" } }
                        try await handle.release()
                        return inside > 1 ? 1 : 0
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(overlaps == 0)
        },
        check("lock(timeout:) waits for the holder to release") { locks, h async throws in
            let a = try #require(try await locks.tryLock("job", ttl: .seconds(30), owner: "a"))
            let waiter = Task { try await locks.lock("job", ttl: .seconds(30), timeout: .seconds(10), owner: "b") }
            try await sleep(.milliseconds(300))
            try await a.release()
            let b = try await waiter.value
            #expect(b.owner == "b" && b.token > a.token)
            try await b.release()
        },
        check("lock(timeout:) gives up with deadlineExceeded naming the holder") { locks, h async throws in
            let a = try #require(try await locks.tryLock("job", ttl: .seconds(30), owner: "holder-a"))
            let error = await #expect(throws: NimbusError.self) { try await locks.lock("job", ttl: .seconds(30), timeout: .milliseconds(300), owner: "b") }
            #expect(error?.code == .deadlineExceeded)
            #expect(error?.message.contains("holder-a") == true)
            try await a.release()
        },
        check("fenced writes: an older token is refused, the same or a newer one accepted") { locks, h async throws in
            #expect(try await locks.fencedRead("ledger") == nil)
            #expect(try await locks.fencedWrite("ledger", value: "v5", token: 5))
            #expect(try await locks.fencedWrite("ledger", value: "v5b", token: 5))
            #expect(try await locks.fencedWrite("ledger", value: "v4", token: 4) == false)
            #expect(try await locks.fencedRead("ledger") == FencedValue(value: "v5b", token: 5))
            #expect(try await locks.fencedWrite("ledger", value: "v9", token: 9))
            #expect(try await locks.fencedRead("ledger") == FencedValue(value: "v9", token: 9))
        },
        check("withLock runs the work holding the lock and releases it") { locks, h async throws in
            let token = try await locks.withLock("job", ttl: .seconds(30), timeout: .seconds(5)) { lock async throws in
                #expect(try await locks.tryLock("job", ttl: .seconds(30), owner: "other") == nil)
                return lock.token
            }
            let next = try #require(try await locks.tryLock("job", ttl: .seconds(30), owner: "other"))
            #expect(next.token > token)
            try await next.release()
        },
        check("leader election: one leader; when it steps down another takes over with a higher term") { locks, h async throws in
            for attempt in 1...5 {
                let watch = StallWatch.start()
                let terms = Terms()
                @Sendable func candidate(_ name: String) -> Task<Void, any Error> {
                    Task {
                        try await LeaderElection(locks: locks, name: "leader\(attempt)", ttl: h.t(.seconds(2)), candidate: name).run { term in
                            terms.list.withLock { $0.append((name, term.token)) }
                            try await Task.sleep(for: .seconds(3600))
                        }
                    }
                }
                let first = candidate("one"), second = candidate("two")
                var waited = 0
                while terms.list.withLock({ $0.count }) < 1 && waited < 100 { try await sleep(.milliseconds(50)); waited += 1 }
                try await sleep(.milliseconds(300))
                let leaders = terms.list.withLock { $0 }
                let leader = leaders.first
                if let leader { (leader.0 == "one" ? first : second).cancel() }   // the leader steps down (its lease is released)
                waited = 0
                while terms.list.withLock({ $0.count }) < 2 && waited < 200 { try await sleep(.milliseconds(50)); waited += 1 }
                let after = terms.list.withLock { $0 }
                first.cancel(); second.cancel()
                _ = await first.result; _ = await second.result
                // A leader whose renewals the machine could not run for ⅔ s may lose its term: that run proves nothing.
                if await watch.stop() > .milliseconds(600), leaders.count != 1 || after.count != 2, attempt < 5 { continue }
                #expect(leaders.count == 1, "\(leaders)")
                let elected = try #require(leader)
                #expect(after.count == 2 && after[1].0 != elected.0 && after[1].1 > elected.1, "\(after)")
                break
            }
        },
    ]
}

/// The terms a leader-election check saw, in order.
final class Terms: Sendable {
    let list = Mutex<[(String, UInt64)]>([])
}
