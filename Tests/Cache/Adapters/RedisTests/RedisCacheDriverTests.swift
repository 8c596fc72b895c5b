import NIOCore
import NimbusCache
import NimbusCacheConformance
import NimbusCacheRedis
import NimbusCore
import NimbusRedis
import NimbusTesting
import Testing

@Suite("Redis cache (real redis-server)", .requires(.redis), .timeLimit(.minutes(2)))
struct RedisCacheDriverTests {
    @Test("conformance", arguments: CacheConformance.checks)
    func conformance(_ check: CacheConformance.Check) async throws {
        let url = try Peer.redis.url()
        try await check.run(CacheConformance.Harness(
            makeDriver: { try RedisCacheDriver(url: url) },
            advance: { try await Task.sleep(for: $0) }
        ))
    }

    @Test("redis:// opens through the registry, with the database from the path")
    func opener() async throws {
        let url = try Peer.redis.url()
        let cache = try await Cache.open(url + "/3?pool=2&name=nimbus-test", openers: URLOpenerRegistry.cache.withRedis())
        #expect(cache.provider == "redis")
        let key = "opener:\(IDGenerator.shared.ulid())"
        try await cache.set(key, bytes: ByteBuffer(string: "db3"))
        let driver = try #require(cache.driver(as: RedisCacheDriver.self))
        #expect(driver.client.configuration.database == 3)
        #expect(driver.client.configuration.poolSize == 2)
        // The value is in database 3, not in database 0.
        let db0 = try RedisClient(url: url)
        #expect(try await db0.get(key) == nil)
        try await db0.shutdown()
        try await cache.close()
    }

    @Test("a wrong-type server error maps to failedPrecondition")
    func wrongType() async throws {
        let client = try RedisClient(url: try Peer.redis.url())
        let key = "list:\(IDGenerator.shared.ulid())"
        _ = try await client.send(RedisCommand("RPUSH", key, "a"))
        let cache = Cache(driver: RedisCacheDriver(client: client))
        let error = await #expect(throws: NimbusError.self) { try await cache.get(key) }
        #expect(error?.code == .failedPrecondition)
        #expect(error?.underlying is RedisServerError)
        try await client.shutdown()
    }
}
