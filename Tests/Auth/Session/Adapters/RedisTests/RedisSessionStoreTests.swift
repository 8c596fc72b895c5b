import NimbusCore
import NimbusSession
import NimbusSessionConformance
import NimbusSessionRedis
import NimbusTesting
import Testing

@Suite("Redis sessions (real server)", .requires(.redis), .timeLimit(.minutes(2)))
struct RedisSessionStoreTests {
    static func open() async throws -> any SessionStoreDriver {
        let url = try Peer.redis.url()
        let prefix = "nimbus:session:test:\(IDGenerator.shared.ulid()):"
        return try await URLOpenerRegistry.session.withRedis().open(url + (url.contains("?") ? "&" : "?") + "prefix=\(prefix)")
    }

    @Test("conformance", arguments: SessionConformance.checks)
    func conformance(_ check: SessionConformance.Check) async throws {
        try await check.run(SessionConformance.Harness { try await Self.open() })
    }

    @Test("Redis expires a session's record itself a minute after the session would end")
    func expiry() async throws {
        let driver = try #require(try await Self.open() as? RedisSessionStore)
        let key = try SessionSigningKey(id: "k", secret: Secret(Array(repeating: 4, count: 32)))
        let sessions = try SessionManager(driver: driver, configuration: .init(keys: [key], idleTimeout: .seconds(60), absoluteTimeout: .seconds(600)))
        let (session, _) = try await sessions.create(userID: "ada")
        let ttl = try #require(try await driver.client.timeToLive(driver.keyPrefix + "s:" + session.record.key))
        #expect(ttl > .seconds(100) && ttl <= .seconds(120))
        try await sessions.close()
    }
}
