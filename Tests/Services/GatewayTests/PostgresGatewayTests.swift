import Foundation
import Logging
import NimbusCore
import NimbusGateway
import NimbusTesting
import PostgresNIO
import Testing

@Suite(.requires(.postgres), .timeLimit(.minutes(2))) struct PostgresGatewayTests {
    @Test func keysAndSpendPersistInPostgreSQL() async throws {
        let url = try await Peer.freshPostgresDatabase(prefix: "nimbus_gw")
        let database = try PostgresGatewayDatabase(url: url)
        let runner = Task { await database.client.run() }
        defer { runner.cancel() }
        let store = try await GatewayStore(database: database)
        let (key, secret) = try await store.createKey(name: "pg", models: ["memory"], rpm: 10, tpm: nil, maxBudget: Decimal(string: "2.50"))
        for cost in ["0.10", "0.25", "1.05"] {
            store.record(SpendRecord(at: Date(), keyID: key.id, route: "chat", model: "memory", deployment: "d", provider: "memory", inputTokens: 3,
                                     outputTokens: 4, cachedTokens: 0, reasoningTokens: 0, cost: Decimal(string: cost) ?? 0, latencyMilliseconds: 1.5,
                                     outcome: "ok", cached: false))
        }
        #expect(try await store.flush() == 3)
        let totals = try await store.spendByKey()
        #expect(totals.first { $0.keyID == key.id }?.cost == Decimal(string: "1.40"), "costs are summed exactly: \(totals)")
        #expect(totals.first?.inputTokens == 9)

        let reopened = try await GatewayStore(database: database)
        let loaded = try #require(reopened.key(secret: secret))
        #expect(loaded.spent == Decimal(string: "1.40"))
        #expect(loaded.maxBudget == Decimal(string: "2.50"))
        #expect(loaded.models == ["memory"] && loaded.rpm == 10)
        #expect(try await reopened.spendLogCount() == 3)
        #expect(try await reopened.revokeKey(id: key.id))
        #expect(try await GatewayStore(database: database).key(secret: secret) == nil)
    }

    /// Issue 15 §2: two instances on one database add their spend (before: each wrote its own total
    /// and the last writer won), and see each other's keys after a reload.
    @Test func instancesAddTheirSpendAndSeeEachOthersKeys() async throws {
        let url = try await Peer.freshPostgresDatabase(prefix: "nimbus_gw")
        let (one, two) = (try PostgresGatewayDatabase(url: url), try PostgresGatewayDatabase(url: url))
        let runners = [Task { await one.client.run() }, Task { await two.client.run() }]
        defer { runners.forEach { $0.cancel() } }
        let first = try await GatewayStore(database: one), second = try await GatewayStore(database: two)
        let (key, secret) = try await first.createKey(name: "shared", models: [], rpm: nil, tpm: nil, maxBudget: 10)
        #expect(second.key(secret: secret) == nil)
        try await second.refreshKeys()
        #expect(second.key(secret: secret)?.id == key.id, "a key created on one instance reaches the other")
        func spend(_ store: GatewayStore, _ cost: String) {
            store.record(SpendRecord(at: Date(), keyID: key.id, route: "chat", model: "m", deployment: "d", provider: "memory", inputTokens: 1,
                                     outputTokens: 1, cachedTokens: 0, reasoningTokens: 0, cost: Decimal(string: cost) ?? 0, latencyMilliseconds: 1,
                                     outcome: "ok", cached: false))
        }
        spend(first, "1.25")
        spend(second, "2.50")
        try await first.flush()
        try await second.flush()
        #expect(second.key(id: key.id)?.spent == Decimal(string: "3.75"), "the second instance's total includes the first's spend")
        try await first.refreshKeys()
        #expect(first.key(id: key.id)?.spent == Decimal(string: "3.75"))
        spend(first, "0.25")   // not yet written: a reload keeps it
        try await first.refreshKeys()
        #expect(first.key(id: key.id)?.spent == Decimal(string: "4.00"))
        #expect(try await GatewayStore(database: one).key(secret: secret)?.spent == Decimal(string: "3.75"))
        #expect(try await second.revokeKey(id: key.id))
        try await first.refreshKeys()
        #expect(first.key(secret: secret) == nil, "a key revoked on one instance is gone from the other after a reload")
    }

    @Test(.requires(.redis)) func twoReplicasShareAKeysRateLimitThroughRedis() async throws {
        var configuration = testConfiguration()
        configuration.databaseURL = try await Peer.freshPostgresDatabase(prefix: "nimbus_gw")
        configuration.rateLimitURL = try Peer.redis.url()
        configuration.keySyncSeconds = 0.2
        let one = try await GatewayRig.start(configuration), two = try await GatewayRig.start(configuration)
        defer { Task { await one.shutdown(); await two.shutdown() } }
        let key = try #require(try await one.call(.POST, "/key/generate", ["name": "shared", "rpm": 3], key: "sk-master-test").body["key"]?.stringValue)
        #expect(try await one.call(.POST, "/v1/chat/completions", GatewayRig.chat("one"), key: key).status == 200)
        #expect(try await one.call(.POST, "/v1/chat/completions", GatewayRig.chat("two"), key: key).status == 200)
        var status = 401
        for _ in 0..<50 where status == 401 {                 // until the second replica has loaded the key
            status = try await two.call(.POST, "/v1/chat/completions", GatewayRig.chat("three"), key: key).status
            if status == 401 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(status == 200)
        let refused = try await two.call(.POST, "/v1/chat/completions", GatewayRig.chat("four"), key: key)
        #expect(refused.status == 429, "the fourth call in a minute, on either replica, is over rpm 3: \(refused.body)")
        #expect(try await one.call(.POST, "/v1/chat/completions", GatewayRig.chat("five"), key: key).status == 429)
    }

    @Test func theGatewayLogsToPostgreSQLWhenConfigured() async throws {
        var configuration = testConfiguration()
        configuration.databaseURL = try await Peer.freshPostgresDatabase(prefix: "nimbus_gw")
        let rig = try await GatewayRig.start(configuration)
        defer { Task { await rig.shutdown() } }
        let key = try #require(try await rig.call(.POST, "/key/generate", ["name": "pg"], key: "sk-master-test").body["key"]?.stringValue)
        #expect(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("to postgres", model: "priced"), key: key).status == 200)
        let spend = try await rig.call(.GET, "/v1/gateway/spend", key: "sk-master-test").body
        #expect(spend["keys"]?.arrayValue?.first?["requests"] == 1, "\(spend)")
        #expect(try await rig.gateway.store.database is PostgresGatewayDatabase)
    }

    @Test func badURLsExplainThemselves() {
        #expect(throws: NimbusError.self) { try PostgresGatewayDatabase(url: "mysql://x/y") }
        #expect(throws: NimbusError.self) { try PostgresGatewayDatabase(url: "postgres://h/db?sslmode=sometimes") }
        #expect(throws: NimbusError.self) { try PostgresGatewayDatabase(url: "postgres://h/db?colour=blue") }
    }
}
