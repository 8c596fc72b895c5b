import NimbusCore
import NimbusDistributedLock
import NimbusDistributedLockConformance
import NimbusDistributedLockPostgres
import NimbusPostgres
import NimbusTesting
import PostgresNIO
import Synchronization
import Testing

@Suite("PostgreSQL locks (real server)", .requires(.postgres), .timeLimit(.minutes(2)))
struct PostgresDistributedLockDriverTests {
    @Test("conformance", arguments: DistributedLockConformance.checks)
    func conformance(_ check: DistributedLockConformance.Check) async throws {
        let url = try await Peer.sharedPostgresDatabase(prefix: "nimbus_lock")      // one database for all checks: each check prefixes its names
        try await check.run(DistributedLockConformance.Harness { try await PostgresDistributedLockDriver.open(url: OpenURL(url)) })
    }

    @Test("advisory locks serialize transactions; the try form refuses while another holds it")
    func advisory() async throws {
        let url = try await Peer.freshPostgresDatabase(prefix: "nimbus_lock")
        let locks = try await DistributedLocks.open(url, openers: .distributedLock.withPostgres())
        let driver = try #require(locks.driver(as: PostgresDistributedLockDriver.self))
        let occupancy = Occupancy()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    try await driver.withAdvisoryLock("migrate") { _ in
                        occupancy.enter()
                        try await Task.sleep(for: .milliseconds(50))
                        occupancy.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(occupancy.most == 1)
        let started = AsyncSignal(), finish = AsyncSignal()
        let holder = Task {
            try await driver.withAdvisoryLock("report") { _ in
                started.signal()
                try await finish.wait(since: 0)
            }
        }
        try await started.wait(since: 0)
        #expect(try await driver.withAdvisoryLockIfFree("report") { _ in 1 } == nil)
        finish.signal()
        try await holder.value
        #expect(try await driver.withAdvisoryLockIfFree("report") { _ in 1 } == 1)
        try await locks.close()
    }
}

/// How many tasks were inside a critical section at once.
final class Occupancy: Sendable {
    private let state = Mutex((inside: 0, most: 0))
    func enter() { state.withLock { $0.inside += 1; $0.most = max($0.most, $0.inside) } }
    func leave() { state.withLock { $0.inside -= 1 } }
    var most: Int { state.withLock { $0.most } }
}

