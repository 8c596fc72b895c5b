import Foundation
import NimbusCore

/// Places a key on one of a set of shards. Every selector is a value built from a shard list, so
/// every process with the same list places every key on the same shard.
public protocol ShardSelector: Sendable {
    /// The shards, in the order given.
    var shards: [String] { get }
    /// The shard of a key's stable hash (``StableHash``).
    func shard(forHash hash: UInt64) -> String
    /// The shard of `key` (by its hash; range maps by its bytes).
    func shard(for key: String) -> String
}

extension ShardSelector {
    /// The shard of `key`'s stable hash.
    public func shard(for key: String) -> String { shard(forHash: StableHash.hash(key)) }
}

/// Consistent hashing on a ring with virtual nodes (Karger et al.; Dynamo, Cassandra): each shard
/// owns `virtualNodes × weight` points, a key belongs to the first point clockwise from its hash.
/// Adding a shard moves only the keys it takes over, about 1/(n+1) of them.
///
/// ```swift
/// let ring = HashRing(shards: ["a", "b", "c"], virtualNodes: 160)
/// ring.shard(for: "user:42")          // "b"
/// ```
public struct HashRing: ShardSelector, Hashable {
    public let shards: [String]
    /// Points per unit of weight.
    public let virtualNodes: Int
    /// The ring: point → shard index, sorted by point.
    let points: [UInt64]
    let owners: [Int]

    /// Builds the ring; `weights` (default 1) scale a shard's points.
    public init(shards: [String], virtualNodes: Int = 160, weights: [String: Double] = [:]) {
        self.shards = shards
        self.virtualNodes = max(1, virtualNodes)
        var ring: [(UInt64, Int)] = []
        for (index, shard) in shards.enumerated() {
            let count = max(1, Int((Double(self.virtualNodes) * (weights[shard] ?? 1)).rounded()))
            ring.reserveCapacity(ring.count + count)
            for replica in 0..<count { ring.append((StableHash.hash("\(shard)#\(replica)"), index)) }
        }
        ring.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        self.points = ring.map(\.0)
        self.owners = ring.map(\.1)
    }

    public func shard(forHash hash: UInt64) -> String {
        guard !points.isEmpty else { return "" }
        // The first point at or after the hash, wrapping to the start.
        var low = 0, high = points.count
        while low < high {
            let middle = (low + high) / 2
            if points[middle] < hash { low = middle + 1 } else { high = middle }
        }
        return shards[owners[low == points.count ? 0 : low]]
    }

    /// The arcs of the hash space whose owner differs between this ring and `other`, exactly: what a
    /// rebalance must copy, and the fraction of all keys it moves.
    public func changedArcs(to other: HashRing) -> (moves: [ShardMove], fraction: Double) {
        var boundaries = Array(Set(points + other.points)).sorted()
        guard !boundaries.isEmpty else { return ([], 0) }
        if boundaries[0] != 0 { boundaries.insert(0, at: 0) }
        var moved: [String: [String: Double]] = [:]
        var total = 0.0
        for (index, start) in boundaries.enumerated() {
            // Keys in (previous point, point] belong to `point`'s owner; use the arc ending at each boundary.
            let end = index + 1 < boundaries.count ? boundaries[index + 1] : UInt64.max
            let length = Double(end - start) / Double(UInt64.max)
            let probe = end
            let (from, to) = (shard(forHash: probe), other.shard(forHash: probe))
            if from != to {
                moved[from, default: [:]][to, default: 0] += length
                total += length
            }
        }
        let moves = moved.flatMap { from, targets in targets.map { ShardMove(from: from, to: $0.key, fraction: $0.value) } }
            .sorted { ($0.from, $0.to) < ($1.from, $1.to) }
        return (moves, total)
    }
}

/// Lamping and Veach's jump consistent hash: no table at all, perfectly even, and adding shard
/// n+1 moves exactly the keys it should (1/(n+1)). Shards are numbered: only append or remove the
/// last one, never reorder.
public struct JumpHash: ShardSelector, Hashable {
    public let shards: [String]

    /// Creates the selector over shards numbered in this order.
    public init(shards: [String]) { self.shards = shards }

    /// The bucket of `key` among `buckets` (the published algorithm, with its 64-bit LCG).
    public static func bucket(_ key: UInt64, buckets: Int) -> Int {
        var key = key, b: Int64 = -1, j: Int64 = 0
        while j < Int64(buckets) {
            b = j
            key = key &* 2_862_933_555_777_941_757 &+ 1
            j = Int64(Double(b + 1) * (Double(Int64(1) << 31) / Double((key >> 33) + 1)))
        }
        return Int(b)
    }

    public func shard(forHash hash: UInt64) -> String {
        guard !shards.isEmpty else { return "" }
        return shards[Self.bucket(hash, buckets: shards.count)]
    }
}

/// Rendezvous (highest random weight) hashing: every shard scores the key, the highest wins.
/// No table, any shard can be removed or added with minimal movement; weighted with the
/// logarithmic method, so a shard of weight 2 gets twice the keys.
public struct RendezvousHash: ShardSelector, Hashable {
    public let shards: [String]
    let seeds: [UInt64]
    let weights: [Double]

    /// Creates the selector; `weights` default to 1.
    public init(shards: [String], weights: [String: Double] = [:]) {
        self.shards = shards
        self.seeds = shards.map { StableHash.hash($0) }
        self.weights = shards.map { max(0.0001, weights[$0] ?? 1) }
    }

    public func shard(forHash hash: UInt64) -> String {
        guard !shards.isEmpty else { return "" }
        var best = 0, bestScore = -Double.infinity
        let uniform = weights.allSatisfy { $0 == 1 }
        for index in seeds.indices {
            let mixed = StableHash.mix(hash ^ seeds[index])
            if uniform {
                let score = Double(mixed)
                if score > bestScore { bestScore = score; best = index }
            } else {
                // -w / ln(u) with u uniform in (0, 1): the weighted HRW of Schindelhauer and Schomaker.
                let u = (Double(mixed >> 11) + 0.5) / Double(UInt64(1) << 53)
                let score = -weights[index] / log(u)
                if score > bestScore { bestScore = score; best = index }
            }
        }
        return shards[best]
    }
}

/// Google's Maglev hashing: a lookup table of prime size filled from per-shard permutations, so
/// lookups are one array read, load is within a few percent of even, and a change of one shard
/// moves little more than that shard's share.
public struct MaglevHash: ShardSelector, Hashable {
    public let shards: [String]
    /// The lookup table's size (a prime, much larger than the shard count).
    public let tableSize: Int
    let table: [Int32]

    /// Builds the table. `tableSize` must be prime; 65,537 suits up to a few hundred shards.
    public init(shards: [String], tableSize: Int = 65_537) {
        self.shards = shards
        self.tableSize = tableSize
        let n = shards.count, m = tableSize
        guard n > 0 else { self.table = []; return }
        let offsets = shards.map { Int(StableHash.hash($0, seed: 0x6d61_676c_6576) % UInt64(m)) }
        let skips = shards.map { Int(StableHash.hash($0, seed: 0x736b_6970) % UInt64(m - 1)) + 1 }
        var next = Array(repeating: 0, count: n)
        var table = Array(repeating: Int32(-1), count: m)
        var filled = 0
        while true {
            for index in 0..<n {
                var candidate = (offsets[index] + next[index] * skips[index]) % m
                while table[candidate] >= 0 {
                    next[index] += 1
                    candidate = (offsets[index] + next[index] * skips[index]) % m
                }
                table[candidate] = Int32(index)
                next[index] += 1
                filled += 1
                if filled == m { self.table = table; return }
            }
        }
    }

    public func shard(forHash hash: UInt64) -> String {
        guard !table.isEmpty else { return "" }
        return shards[Int(table[Int(hash % UInt64(tableSize))])]
    }
}

/// Ranges of keys on shards (Bigtable, Spanner, CockroachDB): sorted upper bounds, each range
/// `[previous bound, bound)` on one shard, the last range open-ended. Keys compare by UTF-8 bytes,
/// so related keys (`tenant:acme:…`) stay together and range scans touch few shards.
public struct RangeShardMap: ShardSelector, Hashable, Codable {
    /// One range: keys below `upperBound` (and at or above the previous bound) live on `shard`.
    public struct Range: Hashable, Codable, Sendable {
        /// The exclusive upper bound; `nil` for the last range.
        public var upperBound: String?
        /// The shard.
        public var shard: String
        /// Creates a range.
        public init(upTo upperBound: String?, shard: String) { self.upperBound = upperBound; self.shard = shard }
    }

    /// The ranges, by increasing bound, the last with no bound.
    public let ranges: [Range]

    /// Creates the map. - Throws: `invalidArgument` unless bounds increase and only the last range is open.
    public init(_ ranges: [Range]) throws {
        guard let last = ranges.last, last.upperBound == nil else {
            throw NimbusError(.invalidArgument, "the last range must have no upper bound, so every key has a shard")
        }
        let bounds = ranges.dropLast().map(\.upperBound)
        guard bounds.allSatisfy({ $0 != nil }) else { throw NimbusError(.invalidArgument, "only the last range may be open-ended") }
        let values = bounds.compactMap { $0 }
        guard zip(values, values.dropFirst()).allSatisfy({ Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) else {
            throw NimbusError(.invalidArgument, "range bounds must strictly increase: \(values)")
        }
        self.ranges = ranges
    }

    public var shards: [String] {
        var seen = Set<String>()
        return ranges.map(\.shard).filter { seen.insert($0).inserted }
    }

    /// The shard of a key by its bytes (not its hash).
    public func shard(for key: String) -> String {
        let bytes = Array(key.utf8)
        var low = 0, high = ranges.count - 1
        while low < high {
            let middle = (low + high) / 2
            if let bound = ranges[middle].upperBound, bytes.lexicographicallyPrecedes(Array(bound.utf8)) { high = middle } else { low = middle + 1 }
        }
        return ranges[low].shard
    }

    /// Range maps place keys by their bytes; a hash has no range. Use ``shard(for:)``.
    public func shard(forHash hash: UInt64) -> String { shard(for: String(hash, radix: 16)) }

    /// Splits the range holding `key` at `key`: keys from `key` up move to `newShard`.
    public func splitting(at key: String, to newShard: String) throws -> RangeShardMap {
        var copy = ranges
        guard let index = copy.firstIndex(where: { range in range.upperBound.map { Array(key.utf8).lexicographicallyPrecedes(Array($0.utf8)) } ?? true }) else {
            return self
        }
        let old = copy[index]
        copy[index] = Range(upTo: key, shard: old.shard)
        copy.insert(Range(upTo: old.upperBound, shard: newShard), at: index + 1)
        return try RangeShardMap(copy)
    }
}

/// A share of the key space that changes shard in a rebalance.
public struct ShardMove: Sendable, Hashable, Codable {
    /// The shard that gives the keys.
    public var from: String
    /// The shard that takes them.
    public var to: String
    /// The fraction of all keys (0...1).
    public var fraction: Double
}
