import ArgumentParser
import Foundation
import NimbusCore
import NimbusSharding
import NimbusShardingMemory
import NimbusShardingPostgres

/// `nimbus shard`: place keys, plan rebalances, and keep shard maps.
struct ShardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shard",
        abstract: "Place keys on shards, measure placements and rebalances, keep versioned shard maps (postgres://, mem://).",
        subcommands: [Locate.self, Plan.self, Distribution.self, Publish.self, Show.self, Add.self]
    )

    /// A placement given on the command line.
    struct Placement: ParsableArguments {
        @Option(help: "ring, jump, rendezvous or maglev.") var algorithm: String = "ring"
        @Option(help: "Comma-separated shard names, in order.") var shards: String

        func map(name: String = "cli") throws -> ShardMap {
            guard let algorithm = ShardMap.Algorithm(rawValue: algorithm), algorithm != .range else {
                throw ValidationError("--algorithm must be ring, jump, rendezvous or maglev")
            }
            let names = shards.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let map = ShardMap(name: name, algorithm: algorithm, shards: names.map { ShardMap.Shard(name: $0) })
            try map.validate()
            return map
        }
    }

    struct Locate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the shard of each KEY.")
        @OptionGroup var placement: Placement
        @Argument(help: "Keys.") var keys: [String]

        func run() async throws {
            let selector = try placement.map().selector()
            for key in keys { print("\(key)\t\(selector.shard(for: key))") }
        }
    }

    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "How many keys move from --shards to --to, against the least possible.")
        @OptionGroup var placement: Placement
        @Option(help: "The new comma-separated shard list.") var to: String

        func run() async throws {
            let old = try placement.map()
            var newPlacement = placement
            newPlacement.shards = to
            let plan = try RebalancePlan.between(old, try newPlacement.map())
            print(String(format: "moves %.4f of keys (minimum %.4f, overhead %.3f×, %@)", plan.fraction, plan.minimum, plan.overhead,
                         plan.exact ? "exact" : "measured on 200000 keys"))
            for move in plan.moves { print(String(format: "  %@ → %@  %.4f", move.from, move.to, move.fraction)) }
        }
    }

    struct Distribution: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "How evenly KEYS keys spread: keys per shard and max/mean.")
        @OptionGroup var placement: Placement
        @Option(help: "Keys to place.") var keys: Int = 1_000_000

        func run() async throws {
            guard keys > 0, keys <= 100_000_000 else { throw ValidationError("--keys must be 1...100000000") }
            let report = DistributionReport.measure(try placement.map().selector(), keys: keys)
            for (shard, count) in report.counts.sorted(by: { $0.key < $1.key }) { print("\(shard)\t\(count)") }
            print(String(format: "max/mean %.4f  min/mean %.4f", report.maxOverMean, report.minOverMean))
        }
    }

    /// Where shard maps are kept.
    struct Store: ParsableArguments {
        @Option(help: "Shard-map store URL (settings key sharding.url, env NIMBUS_SHARDING_URL; default mem://).") var url: String?
        @Option(help: "Settings file (.yaml, .yml or .json).") var config: String?

        func open() async throws -> ShardMaps {
            let url = try await DomainURL.resolve(url, key: "sharding.url", default: "mem://", config: config)
            return try await ShardMaps.open(url, openers: URLOpenerRegistry.sharding.withMemory().withPostgres())
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store a new shard map NAME (version 1); shards as name=location,…")
        @OptionGroup var store: Store
        @Argument(help: "The map's name.") var name: String
        @Option(help: "ring, jump, rendezvous or maglev.") var algorithm: String = "ring"
        @Option(help: "Comma-separated name=location pairs.") var shards: String

        func run() async throws {
            guard let algorithm = ShardMap.Algorithm(rawValue: algorithm), algorithm != .range else {
                throw ValidationError("--algorithm must be ring, jump, rendezvous or maglev")
            }
            let map = ShardMap(name: name, algorithm: algorithm, shards: try ShardCommand.shards(shards))
            let maps = try await store.open()
            let stored = try await maps.closing { try await $0.publish(map) }
            print("\(stored.name) version \(stored.version): \(stored.shards.count) shards")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the current version of map NAME.")
        @OptionGroup var store: Store
        @Argument(help: "The map's name.") var name: String

        func run() async throws {
            let maps = try await store.open()
            let map = try await maps.closing { try await $0.current(name) }
            print("\(map.name) version \(map.version) \(map.algorithm.rawValue)")
            for shard in map.shards { print("  \(shard.name)\t\(shard.location)\tweight \(shard.weight)") }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add shards (name=location,…) to map NAME as its next version; print what moves.")
        @OptionGroup var store: Store
        @Argument(help: "The map's name.") var name: String
        @Option(help: "Comma-separated name=location pairs.") var shards: String

        func run() async throws {
            let added = try ShardCommand.shards(shards)
            let maps = try await store.open()
            let (plan, map) = try await maps.closing { try await $0.update(name) { $0.shards += added } }
            print(String(format: "%@ version %d: moves %.4f of keys (minimum %.4f)", map.name, map.version, plan.fraction, plan.minimum))
        }
    }

    static func shards(_ text: String) throws -> [ShardMap.Shard] {
        try text.split(separator: ",").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard let name = parts.first, !name.isEmpty else { throw ValidationError("shards are name=location pairs, e.g. s0=postgres://db0/app") }
            return ShardMap.Shard(name: name, location: parts.count > 1 ? parts[1] : "")
        }
    }
}
