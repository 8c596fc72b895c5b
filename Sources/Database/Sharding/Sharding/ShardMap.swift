import Foundation
import NimbusCore

/// A named, versioned placement of keys on shards: the algorithm, the shards (with where each one
/// lives) and, for range sharding, the ranges. Stored in a ``ShardMapStore`` so every process
/// routes alike; each change is a new version, written only over the version it was made from.
///
/// ```swift
/// let map = ShardMap(name: "orders", algorithm: .ring, shards: [
///     .init(name: "s0", location: "postgres://app@db0/orders"), .init(name: "s1", location: "postgres://app@db1/orders")])
/// let shard = try map.selector().shard(for: "order:1234")
/// ```
public struct ShardMap: Sendable, Hashable, Codable {
    /// How keys are placed.
    public enum Algorithm: String, Sendable, Hashable, Codable, CaseIterable {
        /// ``HashRing`` with virtual nodes (weights honoured).
        case ring
        /// ``JumpHash`` (append-only shard lists).
        case jump
        /// ``RendezvousHash`` (weights honoured).
        case rendezvous
        /// ``MaglevHash``.
        case maglev
        /// ``RangeShardMap`` over ``ShardMap/ranges``.
        case range
    }

    /// One shard.
    public struct Shard: Sendable, Hashable, Codable {
        /// Its name (what keys map to).
        public var name: String
        /// Where it lives (a database URL, a host); opaque to the map.
        public var location: String
        /// Its relative capacity (ring and rendezvous).
        public var weight: Double

        /// Creates a shard.
        public init(name: String, location: String = "", weight: Double = 1) {
            self.name = name; self.location = location; self.weight = weight
        }
    }

    /// The map's name.
    public var name: String
    /// Its version: 1 when first stored, +1 for every change.
    public var version: Int
    /// How keys are placed.
    public var algorithm: Algorithm
    /// The shards, in order (order matters for jump hashing).
    public var shards: [Shard]
    /// The ranges, for `.range`.
    public var ranges: [RangeShardMap.Range]
    /// Virtual nodes per unit of weight, for `.ring`.
    public var virtualNodes: Int

    /// Creates a map at version 0 (not yet stored).
    public init(name: String, algorithm: Algorithm, shards: [Shard], ranges: [RangeShardMap.Range] = [], virtualNodes: Int = 160, version: Int = 0) {
        self.name = name; self.algorithm = algorithm; self.shards = shards; self.ranges = ranges
        self.virtualNodes = virtualNodes; self.version = version
    }

    /// Checks names and ranges. - Throws: `invalidArgument`.
    public func validate() throws {
        guard !name.isEmpty, name.utf8.count <= 200 else { throw NimbusError(.invalidArgument, "a shard map needs a name of 1–200 bytes") }
        guard !shards.isEmpty else { throw NimbusError(.invalidArgument, "shard map '\(name)' has no shards") }
        guard Set(shards.map(\.name)).count == shards.count else { throw NimbusError(.invalidArgument, "shard map '\(name)' names a shard twice") }
        guard shards.allSatisfy({ !$0.name.isEmpty && $0.weight > 0 && $0.weight.isFinite }) else {
            throw NimbusError(.invalidArgument, "every shard of '\(name)' needs a name and a positive weight")
        }
        if algorithm == .range {
            let map = try RangeShardMap(ranges)
            let unknown = Set(map.shards).subtracting(shards.map(\.name))
            guard unknown.isEmpty else { throw NimbusError(.invalidArgument, "ranges of '\(name)' name unknown shards: \(unknown.sorted())") }
        }
    }

    /// The selector this map describes.
    public func selector() throws -> any ShardSelector {
        try validate()
        let names = shards.map(\.name)
        let weights = Dictionary(uniqueKeysWithValues: shards.map { ($0.name, $0.weight) })
        switch algorithm {
        case .ring: return HashRing(shards: names, virtualNodes: virtualNodes, weights: weights)
        case .jump: return JumpHash(shards: names)
        case .rendezvous: return RendezvousHash(shards: names, weights: weights)
        case .maglev: return MaglevHash(shards: names)
        case .range: return try RangeShardMap(ranges)
        }
    }

    /// The shard of `key` and where it lives.
    public func locate(_ key: String) throws -> Shard {
        let name = try selector().shard(for: key)
        guard let shard = shards.first(where: { $0.name == name }) else {
            throw NimbusError(.internal, "shard map '\(self.name)' placed '\(key)' on unknown shard '\(name)'")
        }
        return shard
    }
}

/// What a change of shard map moves.
public struct RebalancePlan: Sendable, Hashable {
    /// Shares of the key space that change shard, by source and target.
    public var moves: [ShardMove]
    /// The fraction of all keys that move.
    public var fraction: Double
    /// The least any placement could move for this change: the share of keys that new shards must
    /// take (adding shards of equal weight to n: added / (n + added)), or that removed shards held.
    public var minimum: Double
    /// Whether `fraction` is exact (ring arcs, ranges) or measured on a sample of keys.
    public var exact: Bool

    /// `fraction / minimum`: 1 is optimal.
    public var overhead: Double { minimum > 0 ? fraction / minimum : (fraction == 0 ? 1 : .infinity) }

    /// The plan from `old` to `new`: exact for two rings, measured over `sampleSize` keys otherwise.
    public static func between(_ old: ShardMap, _ new: ShardMap, sampleSize: Int = 200_000) throws -> RebalancePlan {
        let oldWeight = old.shards.reduce(0) { $0 + $1.weight }, newWeight = new.shards.reduce(0) { $0 + $1.weight }
        let oldNames = Set(old.shards.map(\.name)), newNames = Set(new.shards.map(\.name))
        let added = new.shards.filter { !oldNames.contains($0.name) }.reduce(0) { $0 + $1.weight } / newWeight
        let removed = old.shards.filter { !newNames.contains($0.name) }.reduce(0) { $0 + $1.weight } / oldWeight
        let minimum = max(added, removed)
        if old.algorithm == .ring, new.algorithm == .ring,
           let a = try old.selector() as? HashRing, let b = try new.selector() as? HashRing {
            let (moves, fraction) = a.changedArcs(to: b)
            return RebalancePlan(moves: moves, fraction: fraction, minimum: minimum, exact: true)
        }
        let (a, b) = (try old.selector(), try new.selector())
        var counts: [String: [String: Int]] = [:]
        var moved = 0
        for index in 0..<sampleSize {
            let key = "rebalance-sample-\(index)"
            let (from, to) = (a.shard(for: key), b.shard(for: key))
            if from != to { moved += 1; counts[from, default: [:]][to, default: 0] += 1 }
        }
        let moves = counts.flatMap { from, targets in targets.map { ShardMove(from: from, to: $0.key, fraction: Double($0.value) / Double(sampleSize)) } }
            .sorted { ($0.from, $0.to) < ($1.from, $1.to) }
        return RebalancePlan(moves: moves, fraction: Double(moved) / Double(sampleSize), minimum: minimum, exact: false)
    }
}

/// How evenly a selector spreads keys: the most-loaded shard over the mean (1 is perfect).
public struct DistributionReport: Sendable, Hashable {
    /// Keys per shard.
    public var counts: [String: Int]
    /// Max load over mean load.
    public var maxOverMean: Double
    /// Min load over mean load.
    public var minOverMean: Double

    /// Places `keys` keys (`key-0`, `key-1`, …) and reports the spread.
    public static func measure(_ selector: any ShardSelector, keys: Int) -> DistributionReport {
        var counts = Dictionary(uniqueKeysWithValues: selector.shards.map { ($0, 0) })
        for index in 0..<keys { counts[selector.shard(for: "key-\(index)"), default: 0] += 1 }
        let mean = Double(keys) / Double(max(1, counts.count))
        return DistributionReport(counts: counts, maxOverMean: Double(counts.values.max() ?? 0) / mean,
                                  minOverMean: Double(counts.values.min() ?? 0) / mean)
    }
}
