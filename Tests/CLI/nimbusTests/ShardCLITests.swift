import Foundation
import NimbusCore
import NimbusTesting
import Testing

@Suite("nimbus shard", .timeLimit(.minutes(2)))
struct ShardCLITests {
    @Test("locate is stable across runs; plan reports the move against the minimum")
    func locateAndPlan() async throws {
        let first = try await Binary.run(["shard", "locate", "--algorithm", "jump", "--shards", "s0,s1,s2", "user:1", "user:2", "user:3"])
        let again = try await Binary.run(["shard", "locate", "--algorithm", "jump", "--shards", "s0,s1,s2", "user:1", "user:2", "user:3"])
        #expect(first.status == 0 && first.stdout == again.stdout && first.stdout.split(separator: "\n").count == 3, "\(first.output)")
        let plan = try await Binary.run(["shard", "plan", "--shards", "s0,s1,s2,s3", "--to", "s0,s1,s2,s3,s4"])
        #expect(plan.stdout.hasPrefix("moves 0.1") && plan.stdout.contains("minimum 0.2000") && plan.stdout.contains("exact"), "\(plan.output)")
        #expect(!plan.stdout.contains("→ s0") && plan.stdout.contains("→ s4"), "only the new shard takes keys: \(plan.stdout)")
        let bad = try await Binary.run(["shard", "locate", "--algorithm", "modulo", "--shards", "a", "k"])
        #expect(bad.status != 0 && bad.stderr.contains("ring, jump, rendezvous or maglev"), "\(bad.output)")
    }

    @Test("publish, add and show a shard map in PostgreSQL", .requires(.postgres))
    func mapsInPostgres() async throws {
        let url = try await Peer.freshPostgresDatabase(prefix: "nimbus_shardcli")
        let published = try await Binary.run(["shard", "publish", "--url", url, "orders", "--shards", "s0=postgres://db0/o,s1=postgres://db1/o"])
        #expect(published.stdout == "orders version 1: 2 shards\n", "\(published.output)")
        let added = try await Binary.run(["shard", "add", "--url", url, "orders", "--shards", "s2=postgres://db2/o"])
        #expect(added.stdout.hasPrefix("orders version 2: moves 0.") && added.stdout.contains("minimum 0.3333"), "\(added.output)")
        let shown = try await Binary.run(["shard", "show", "--url", url, "orders"])
        #expect(shown.stdout.hasPrefix("orders version 2 ring") && shown.stdout.contains("s2\tpostgres://db2/o"), "\(shown.output)")
        let twice = try await Binary.run(["shard", "publish", "--url", url, "orders", "--shards", "s9=x"])
        #expect(twice.status != 0 && twice.stderr.contains("exists"), "\(twice.output)")
    }
}
