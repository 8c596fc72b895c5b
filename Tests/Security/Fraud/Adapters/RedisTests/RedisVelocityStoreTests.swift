import Foundation
import NimbusCore
import NimbusFraud
import NimbusFraudConformance
import NimbusFraudRedis
import NimbusTesting
import Testing

@Suite("Redis velocity counters (real server)", .requires(.redis), .timeLimit(.minutes(2)))
struct RedisVelocityStoreTests {
    static func open() async throws -> any VelocityStore {
        let url = try Peer.redis.url()
        return try await URLOpenerRegistry.velocity.withRedis().open(url + (url.contains("?") ? "&" : "?") + "prefix=nimbus:velocity:test:\(IDGenerator.shared.ulid()):")
    }

    @Test("conformance", arguments: VelocityConformance.checks)
    func conformance(_ check: VelocityConformance.Check) async throws {
        try await check.run(VelocityConformance.Harness { try await Self.open() })
    }

    @Test("Redis expires a key after its retention")
    func expiry() async throws {
        let store = try #require(try await Self.open() as? RedisVelocityStore)
        _ = try await store.observe("card:x", member: "e1", at: Date(), window: .seconds(60), retain: .seconds(90))
        let ttl = try #require(try await store.client.timeToLive(store.keyPrefix + "card:x"))
        // The key expires, no later than the retention (how much of it is left depends on the machine's load).
        #expect(ttl > .zero && ttl <= .seconds(90))
        try await store.close()
    }
}
