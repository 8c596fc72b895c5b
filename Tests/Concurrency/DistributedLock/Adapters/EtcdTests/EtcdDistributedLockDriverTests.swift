import Foundation
import NimbusCore
import NimbusDistributedLock
import NimbusDistributedLockConformance
import NimbusDistributedLockEtcd
import NimbusTesting
import Testing

@Suite("etcd locks (real etcd 3.4)", .requires(.etcd), .timeLimit(.minutes(3)))
struct EtcdDistributedLockDriverTests {
    @Test("conformance", arguments: DistributedLockConformance.checks)
    func conformance(_ check: DistributedLockConformance.Check) async throws {
        let url = try Peer.etcd.url()
        // etcd grants whole-second leases of at least ~2 s and sweeps expired ones every 500 ms.
        try await check.run(DistributedLockConformance.Harness(timeScale: 2, expiryLag: .milliseconds(1500)) {
            EtcdDistributedLockDriver(endpoint: url)
        })
    }

    @Test("the token is the revision that created the key; the key lives on the lease")
    func tokenIsTheCreateRevision() async throws {
        let driver = EtcdDistributedLockDriver(endpoint: try Peer.etcd.url())
        let name = "locks-test/\(IDGenerator.shared.ulid())"
        let token = try #require(try await driver.tryAcquire(name, owner: "me", ttl: .seconds(120)))
        let range = try await driver.call("/v3/kv/range", ["key": .string(Data(name.utf8).base64EncodedString())])
        let kv = try #require(range["kvs"]?.arrayValue?.first)
        #expect(kv["create_revision"]?.stringValue == String(token))
        #expect(kv["lease"]?.stringValue.map { $0 != "0" } == true)
        let holder = try #require(try await driver.holder(of: name))
        #expect(holder.owner == "me" && holder.token == token && holder.expiresIn <= .seconds(120))
        #expect(try await driver.release(name, owner: "me", token: token))
        #expect(try await driver.holder(of: name) == nil)
        let next = try #require(try await driver.tryAcquire(name, owner: "other", ttl: .seconds(120)))
        #expect(next > token)
        _ = try await driver.release(name, owner: "other", token: next)
    }

    @Test("etcd:// opens through the registry; a server that is down is unavailable")
    func opener() async throws {
        let url = try Peer.etcd.url()
        let locks = try await DistributedLocks.open(url.replacingOccurrences(of: "http://", with: "etcd://"), openers: .distributedLock.withEtcd())
        #expect(locks.provider == "etcd")
        try await locks.close()
        let port = try LocalPorts.free()
        let down = DistributedLocks(driver: EtcdDistributedLockDriver(endpoint: "http://127.0.0.1:\(port)", timeout: .seconds(2)),
                                    configuration: .init(retry: .none))
        let error = await #expect(throws: NimbusError.self) { try await down.tryLock("x", ttl: .seconds(5)) }
        #expect(error?.code == .unavailable)
    }
}
