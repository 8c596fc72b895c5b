import Foundation
import NimbusCore
import NimbusDistributedLock
import NimbusDistributedLockConformance
import NimbusDistributedLockRedlock
import NimbusRedis
import NimbusTesting
import Testing

@Suite("Redlock (three real redis-servers)", .timeLimit(.minutes(3)))
struct RedlockDistributedLockDriverTests {
    @Test("conformance", .requires(.redlock), arguments: DistributedLockConformance.checks)
    func conformance(_ check: DistributedLockConformance.Check) async throws {
        let url = try Peer.redlock.url()
        try await check.run(DistributedLockConformance.Harness {
            try await URLOpenerRegistry<any DistributedLockDriver>.distributedLock.withRedlock().open(url)
        })
    }

    @Test("Redlock needs an odd number of servers, at least three")
    func serverCount() {
        #expect(throws: NimbusError.self) { try RedlockDistributedLockDriver(urls: ["redis://a", "redis://b"]) }
        #expect(throws: NimbusError.self) { try RedlockDistributedLockDriver(urls: ["redis://a", "redis://b", "redis://c", "redis://d"]) }
    }

    /// Servers of its own (so pausing them disturbs no other test): one paused server of three still
    /// leaves a majority; tokens keep growing when the majority changes; two paused servers of three
    /// leave no lock at all.
    @Test("a majority holds the lock through a paused server, and tokens grow across changing majorities", .requires(.redis))
    func majorities() async throws {
        var servers: [(port: Int, process: Process)] = []
        defer { for server in servers { kill(server.process.processIdentifier, SIGCONT); server.process.terminate() } }
        for _ in 0..<3 {
            let port = try LocalPorts.free()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["redis-server", "--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            servers.append((port, process))
            try await LocalPorts.waitUntilListening(port)
        }
        let driver = try RedlockDistributedLockDriver(urls: servers.map { "redis://127.0.0.1:\($0.port)?commandTimeout=300ms&connectTimeout=300ms" })
        let locks = DistributedLocks(driver: driver, configuration: .init(retry: .none))
        let first = try #require(try await locks.tryLock("job", ttl: .seconds(10), owner: "all-three", keepAlive: false))
        try await first.release()

        kill(servers[2].process.processIdentifier, SIGSTOP)          // C paused: A and B are a majority
        let second = try #require(try await locks.tryLock("job", ttl: .seconds(3), owner: "a-and-b", keepAlive: false))
        #expect(second.token > first.token)
        #expect(try await locks.holder(of: "job")?.owner == "a-and-b")
        try await second.release()

        kill(servers[2].process.processIdentifier, SIGCONT)
        kill(servers[0].process.processIdentifier, SIGSTOP)          // A paused: B and C — C never saw the second token
        // C runs the commands it received while paused only now, in no fixed order across connections: it may
        // hold a stale copy of the second lease until that expires. Redlock clients wait and retry, as here.
        let third = try await locks.lock("job", ttl: .seconds(10), timeout: .seconds(20), owner: "b-and-c", keepAlive: false)
        #expect(third.token > second.token, "the write-back to B carries the fence across majorities: \(third.token) vs \(second.token)")
        #expect(try await locks.fencedWrite("ledger", value: "third", token: third.token))
        #expect(try await locks.fencedWrite("ledger", value: "stale", token: second.token) == false)

        kill(servers[1].process.processIdentifier, SIGSTOP)          // A and B paused: no majority
        try await third.release()
        do {
            let none = try await locks.tryLock("job", ttl: .seconds(10), owner: "c-alone", keepAlive: false)
            #expect(none == nil, "one server of three is no majority")
        } catch let error as NimbusError {
            #expect(error.code == .unavailable)
        }
        for server in servers { kill(server.process.processIdentifier, SIGCONT) }
        try await locks.close()
    }
}
