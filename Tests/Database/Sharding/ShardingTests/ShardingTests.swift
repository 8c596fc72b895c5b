import NimbusCore
import Testing
@testable import NimbusSharding

@Suite struct SelectorTests {
    let keys = (0..<20_000).map { "user:\($0)" }
    let five = ["s0", "s1", "s2", "s3", "s4"]

    @Test func theHashIsPinned() {
        // Placement must never change between releases: a changed hash would move every key.
        #expect(StableHash.hash("") == StableHash.mix(0xcbf2_9ce4_8422_2325))
        #expect(StableHash.hash("user:42") == StableHash.hash("user:42"))
        #expect(StableHash.hash("user:42") != StableHash.hash("user:43"))
        #expect(StableHash.hash("a", seed: 1) != StableHash.hash("a"))
    }

    @Test func jumpHashMovesOnlyToTheNewBucket() {
        for key in keys.prefix(2000) {
            let hash = StableHash.hash(key)
            for buckets in 1..<40 {
                let before = JumpHash.bucket(hash, buckets: buckets), after = JumpHash.bucket(hash, buckets: buckets + 1)
                #expect(before >= 0 && before < buckets)
                #expect(after == before || after == buckets, "a key moves only to the added bucket")
            }
        }
    }

    @Test func ringAndRendezvousMoveOnlyToAnAddedShardAndOnlyFromARemovedOne() {
        let selectors: [(any ShardSelector, any ShardSelector, any ShardSelector)] = [
            (HashRing(shards: Array(five.prefix(4))), HashRing(shards: five), HashRing(shards: ["s0", "s1", "s3", "s4"])),
            (RendezvousHash(shards: Array(five.prefix(4))), RendezvousHash(shards: five), RendezvousHash(shards: ["s0", "s1", "s3", "s4"])),
        ]
        for (four, grown, shrunk) in selectors {
            var moved = 0
            for key in keys {
                let (a, b, c) = (four.shard(for: key), grown.shard(for: key), shrunk.shard(for: key))
                if a != b { #expect(b == "s4"); moved += 1 }
                if b != c { #expect(b == "s2") }
            }
            let fraction = Double(moved) / Double(keys.count)
            #expect(fraction > 0.15 && fraction < 0.25, "\(type(of: four)): \(fraction)")
        }
    }

    @Test func maglevFillsItsTableEvenlyAndMovesLittle() {
        let maglev = MaglevHash(shards: five, tableSize: 65_537)
        var slots: [Int32: Int] = [:]
        for index in maglev.table { slots[index, default: 0] += 1 }
        #expect(slots.count == 5)
        #expect((slots.values.max() ?? 0) - (slots.values.min() ?? 0) <= 1)
        let old = MaglevHash(shards: Array(five.prefix(4)))
        let moved = keys.filter { old.shard(for: $0) != maglev.shard(for: $0) }.count
        let fraction = Double(moved) / Double(keys.count)
        #expect(fraction > 0.18 && fraction < 0.3, "\(fraction)")
    }

    @Test func weightsSkewTheShare() {
        for selector in [HashRing(shards: ["big", "small"], weights: ["big": 3]) as any ShardSelector,
                         RendezvousHash(shards: ["big", "small"], weights: ["big": 3])] {
            let big = keys.filter { selector.shard(for: $0) == "big" }.count
            let share = Double(big) / Double(keys.count)
            #expect(share > 0.70 && share < 0.80, "\(type(of: selector)): \(share)")
        }
    }

    @Test func distributionIsEven() {
        for (selector, bound) in [(HashRing(shards: five) as any ShardSelector, 1.2), (JumpHash(shards: five), 1.04),
                                  (RendezvousHash(shards: five), 1.04), (MaglevHash(shards: five), 1.04)] {
            let report = DistributionReport.measure(selector, keys: 50_000)
            #expect(report.maxOverMean < bound, "\(type(of: selector)): \(report.maxOverMean)")
        }
    }

    @Test func rangesRouteByBytesAndSplit() throws {
        let map = try RangeShardMap([.init(upTo: "g", shard: "a"), .init(upTo: "p", shard: "b"), .init(upTo: nil, shard: "c")])
        #expect(map.shard(for: "apple") == "a" && map.shard(for: "g") == "b" && map.shard(for: "orange") == "b" && map.shard(for: "zebra") == "c")
        #expect(map.shard(for: "") == "a")
        let split = try map.splitting(at: "m", to: "d")
        #expect(split.shard(for: "lemon") == "b" && split.shard(for: "mango") == "d" && split.shard(for: "quince") == "c")
        #expect(throws: NimbusError.self) { try RangeShardMap([.init(upTo: "p", shard: "a"), .init(upTo: "g", shard: "b"), .init(upTo: nil, shard: "c")]) }
        #expect(throws: NimbusError.self) { try RangeShardMap([.init(upTo: "p", shard: "a")]) }
        #expect(throws: NimbusError.self) { try RangeShardMap([.init(upTo: nil, shard: "a"), .init(upTo: nil, shard: "b")]) }
    }

    @Test func rebalancePlansMeasureAgainstTheMinimum() throws {
        let four = (0..<4).map { ShardMap.Shard(name: "s\($0)") }
        let fiveShards = four + [ShardMap.Shard(name: "s4")]
        let ring = try RebalancePlan.between(ShardMap(name: "m", algorithm: .ring, shards: four), ShardMap(name: "m", algorithm: .ring, shards: fiveShards))
        #expect(ring.exact && abs(ring.minimum - 0.2) < 1e-12)
        #expect(ring.fraction > 0.15 && ring.fraction < 0.25)
        // The exact arcs agree with a count over keys.
        let (a, b) = (HashRing(shards: four.map(\.name)), HashRing(shards: fiveShards.map(\.name)))
        let counted = Double(keys.filter { a.shard(for: $0) != b.shard(for: $0) }.count) / Double(keys.count)
        #expect(abs(counted - ring.fraction) < 0.015, "\(counted) vs \(ring.fraction)")
        let jump = try RebalancePlan.between(ShardMap(name: "m", algorithm: .jump, shards: four), ShardMap(name: "m", algorithm: .jump, shards: fiveShards),
                                             sampleSize: 50_000)
        #expect(!jump.exact && jump.overhead < 1.05, "\(jump.overhead)")
        let change = try RebalancePlan.between(ShardMap(name: "m", algorithm: .ring, shards: four), ShardMap(name: "m", algorithm: .jump, shards: four),
                                               sampleSize: 20_000)
        #expect(change.minimum == 0 && change.fraction > 0.5)   // changing algorithm moves most keys: the plan says so
    }

    @Test func mapsValidate() throws {
        #expect(throws: NimbusError.self) { try ShardMap(name: "m", algorithm: .ring, shards: [.init(name: "a"), .init(name: "a")]).validate() }
        #expect(throws: NimbusError.self) { try ShardMap(name: "m", algorithm: .ring, shards: [.init(name: "a", weight: 0)]).validate() }
        #expect(throws: NimbusError.self) { try ShardMap(name: "", algorithm: .ring, shards: [.init(name: "a")]).validate() }
        let map = ShardMap(name: "m", algorithm: .maglev, shards: [.init(name: "a", location: "pg://a"), .init(name: "b", location: "pg://b")])
        #expect(try ["x", "y", "z"].allSatisfy { try ["pg://a", "pg://b"].contains(map.locate($0).location) })
    }
}
