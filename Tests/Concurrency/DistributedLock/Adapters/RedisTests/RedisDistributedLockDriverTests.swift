import NimbusCore
import NimbusDistributedLock
import NimbusDistributedLockConformance
import NimbusDistributedLockRedis
import NimbusRedis
import NimbusTesting
import Testing

@Suite("Redis locks (real redis-server)", .requires(.redis), .timeLimit(.minutes(2)))
struct RedisDistributedLockDriverTests {
    @Test("conformance", arguments: DistributedLockConformance.checks)
    func conformance(_ check: DistributedLockConformance.Check) async throws {
        let url = try Peer.redis.url()
        try await check.run(DistributedLockConformance.Harness { try RedisDistributedLockDriver(url: url) })
    }

    @Test("the lease is a plain key with a TTL on the server, and the token counter outlives it")
    func onTheServer() async throws {
        let url = try Peer.redis.url()
        let driver = try RedisDistributedLockDriver(url: url)
        let locks = DistributedLocks(driver: driver, configuration: .init(keyPrefix: "lock-test:\(IDGenerator.shared.ulid()):"))
        let handle = try #require(try await locks.tryLock("job", ttl: .seconds(300), owner: "me", keepAlive: false))
        let key = locks.configuration.keyPrefix + "job"
        #expect(try await driver.client.get(key).map { String(buffer: $0) } == "me \(handle.token)")
        let ttl = try #require(try await driver.client.timeToLive(key))
        #expect(ttl > .seconds(200) && ttl <= .seconds(300))
        try await handle.release()
        #expect(try await driver.client.get(key) == nil)
        #expect(try await driver.client.get(key + ":fence").map { String(buffer: $0) } == String(handle.token))
        try await locks.close()
    }
}
