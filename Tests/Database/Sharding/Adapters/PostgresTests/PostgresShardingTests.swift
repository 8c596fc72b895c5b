import Foundation
import Logging
import NimbusCore
import NimbusPostgres
import NimbusSharding
import NimbusShardingConformance
import NimbusShardingPostgres
import NimbusTesting
import PostgresNIO
import Testing

@Suite("PostgreSQL sharding (real server)", .requires(.postgres), .timeLimit(.minutes(2)))
struct PostgresShardingTests {
    static let logger = Logger(label: "test")

    @Test("conformance", arguments: ShardMapStoreConformance.checks)
    func conformance(_ check: ShardMapStoreConformance.Check) async throws {
        let url = try await Peer.sharedPostgresDatabase(prefix: "nimbus_shardmaps")
        try await check.run(ShardMapStoreConformance.Harness { try await PostgresShardMapStore.open(url: OpenURL(url)) })
    }

    @Test("a router over four databases puts each row in its shard's database and fans out to all")
    func routerOverFourDatabases() async throws {
        var shards: [ShardMap.Shard] = []
        for index in 0..<4 { shards.append(.init(name: "s\(index)", location: try await Peer.freshPostgresDatabase(prefix: "nimbus_shard"))) }
        let map = ShardMap(name: "orders", algorithm: .ring, shards: shards, version: 1)
        let router = try ShardedPostgres(map: map)
        let logger = Self.logger
        try await router.run {
            _ = try await router.all { _, client in
                try await client.query("CREATE TABLE orders (id TEXT PRIMARY KEY, shard TEXT NOT NULL)", logger: logger)
            }
            for index in 0..<400 {
                let key = "order:\(index)", shard = router.shard(for: key)
                try await router.client(for: key).query("INSERT INTO orders (id, shard) VALUES (\(key), \(shard))", logger: logger)
            }
            let counts = try await router.all { name, client -> (Int, Int) in
                let rows = try await client.query("SELECT count(*)::int, count(*) FILTER (WHERE shard <> \(name))::int FROM orders", logger: logger)
                for try await (total, misplaced) in rows.decode((Int, Int).self) { return (total, misplaced) }
                return (0, 0)
            }
            #expect(counts.values.map(\.0).reduce(0, +) == 400)
            #expect(counts.values.allSatisfy { $0.1 == 0 }, "every row is in the database of its shard")
            #expect(counts.values.allSatisfy { $0.0 > 50 }, "the ring spreads rows over all four: \(counts)")
            // A read goes to the one database that has the row.
            let rows = try await router.client(for: "order:7").query("SELECT shard FROM orders WHERE id = 'order:7'", logger: logger)
            var found: [String] = []
            for try await shard in rows.decode(String.self) { found.append(shard) }
            #expect(found == [router.shard(for: "order:7")])
        }
    }

    @Test("declarative partitions: time ranges, list, hash, attach/detach, retention")
    func partitions() async throws {
        let client = PostgresClient(configuration: try .init(url: try await Peer.freshPostgresDatabase(prefix: "nimbus_part")))
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        let partitions = PostgresPartitions(client: client)
        let logger = Self.logger
        try await partitions.createTable("events", columns: "id BIGINT, at TIMESTAMPTZ NOT NULL, body TEXT", partitionBy: .range("at"))
        let start = try #require(ISO8601DateFormatter().date(from: "2026-11-28T10:00:00Z"))
        let names = try await partitions.ensureTimePartitions(of: "events", every: .day, from: start, through: start.addingTimeInterval(5 * 86_400))
        #expect(names == ["events_p20261128", "events_p20261129", "events_p20261130", "events_p20261201", "events_p20261202", "events_p20261203"])
        #expect(try await partitions.ensureTimePartitions(of: "events", every: .day, from: start, through: start) == ["events_p20261128"])   // idempotent
        try await client.query("INSERT INTO events VALUES (1, '2026-11-28 23:59:59+00', 'a'), (2, '2026-12-01 00:00:00+00', 'b')", logger: logger)
        let where1 = try await client.query("SELECT tableoid::regclass::text FROM events WHERE id = 2", logger: logger)
        for try await table in where1.decode(String.self) { #expect(table == "events_p20261201") }
        let outside = await #expect(throws: (any Error).self) {
            try await client.query("INSERT INTO events VALUES (3, '2027-01-01 00:00:00+00', 'c')", logger: logger)
        }
        #expect(outside != nil, "no partition takes a row outside every range")
        try await partitions.createDefaultPartition(of: "events")
        try await client.query("INSERT INTO events VALUES (3, '2027-01-01 00:00:00+00', 'c')", logger: logger)

        // Retention: drop the days that ended by Nov 30 00:00 — only the 28th and 29th.
        let dropped = try await partitions.dropTimePartitions(of: "events", endingBefore: try #require(ISO8601DateFormatter().date(from: "2026-11-30T00:00:00Z")))
        #expect(dropped == ["events_p20261128", "events_p20261129"])
        let left = try await partitions.partitions(of: "events").map(\.name)
        #expect(left == ["events_default", "events_p20261130", "events_p20261201", "events_p20261202", "events_p20261203"])

        // Detach keeps the data as a table; attach puts it back.
        try await partitions.detach("events_p20261201", from: "events")
        #expect(try await partitions.partitions(of: "events").map(\.name).contains("events_p20261201") == false)
        try await partitions.attach("events_p20261201", to: "events", from: "2026-12-01T00:00:00Z", to: "2026-12-02T00:00:00Z")
        let bound = try await partitions.partitions(of: "events").first { $0.name == "events_p20261201" }?.bound
        #expect(bound?.contains("FROM ('2026-12-01") == true, "\(bound ?? "")")

        // List and hash partitioning.
        try await partitions.createTable("accounts", columns: "id BIGINT, region TEXT NOT NULL", partitionBy: .list("region"))
        try await partitions.createListPartition("accounts_eu", of: "accounts", values: ["de", "fr", "it's"])
        try await client.query("INSERT INTO accounts VALUES (1, 'it''s')", logger: logger)
        try await partitions.createTable("sessions", columns: "id BIGINT NOT NULL", partitionBy: .hash("id"))
        try await partitions.createHashPartitions(of: "sessions", modulus: 4)
        #expect(try await partitions.partitions(of: "sessions").count == 4)
        for bad in ["Events", "events; DROP TABLE x", "1events", String(repeating: "a", count: 64)] {
            await #expect(throws: NimbusError.self) { try await partitions.createDefaultPartition(of: bad) }
        }
    }
}

