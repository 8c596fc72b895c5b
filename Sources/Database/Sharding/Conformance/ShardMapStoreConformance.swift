import NimbusCore
import NimbusSharding
import NimbusTesting
import Testing

/// The behaviour every ``ShardMapStore`` must have, stated once and run against each adapter.
///
/// ```swift
/// @Test(arguments: ShardMapStoreConformance.checks)
/// func conformance(_ check: ShardMapStoreConformance.Check) async throws {
///     try await check.run(ShardMapStoreConformance.Harness { MemoryShardMapStore() })
/// }
/// ```
public enum ShardMapStoreConformance {
    /// How a check reaches the store under test.
    public struct Harness: Sendable {
        /// Makes a store (one per check).
        public var makeStore: @Sendable () async throws -> any ShardMapStore
        /// Creates a harness.
        public init(makeStore: @escaping @Sendable () async throws -> any ShardMapStore) { self.makeStore = makeStore }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    static func check(_ name: String, _ body: @escaping @Sendable (ShardMaps, String) async throws -> Void) -> Check {
        Check(name) { harness in
            let maps = ShardMaps(store: try await harness.makeStore())
            try await maps.closing { try await body($0, "map-\(IDGenerator.shared.ulid())") }
        }
    }

    static func shards(_ count: Int) -> [ShardMap.Shard] {
        (0..<count).map { ShardMap.Shard(name: "s\($0)", location: "postgres://db\($0)/app", weight: $0 == 0 ? 2 : 1) }
    }

    /// Every check.
    public static let checks: [Check] = [
        check("a published map reads back whole, at version 1") { maps, name async throws in
            let map = ShardMap(name: name, algorithm: .range, shards: shards(2), ranges: [.init(upTo: "m", shard: "s0"), .init(upTo: nil, shard: "s1")])
            let published = try await maps.publish(map)
            #expect(published.version == 1)
            let read = try await maps.current(name)
            #expect(read == published)
            #expect(try read.locate("alpha").name == "s0" && read.locate("zulu").location == "postgres://db1/app")
        },
        check("a missing map is notFound; publishing twice is alreadyExists") { maps, name async throws in
            let missing = await #expect(throws: NimbusError.self) { try await maps.current(name) }
            #expect(missing?.code == .notFound)
            try await maps.publish(ShardMap(name: name, algorithm: .ring, shards: shards(3)))
            let twice = await #expect(throws: NimbusError.self) { try await maps.publish(ShardMap(name: name, algorithm: .jump, shards: shards(3))) }
            #expect(twice?.code == .alreadyExists)
            #expect(try await maps.current(name).algorithm == .ring)
        },
        check("a store only writes over the version a change was made from") { maps, name async throws in
            try await maps.publish(ShardMap(name: name, algorithm: .ring, shards: shards(3)))
            let store = try #require(maps.driver(as: (any ShardMapStore).self))
            var stale = try await maps.current(name)
            stale.version = 3                                  // skips version 2
            #expect(try await store.store(stale) == false)
            stale.version = 1                                  // rewrites version 1
            #expect(try await store.store(stale) == false)
            stale.version = 2
            #expect(try await store.store(stale))
            #expect(try await maps.current(name).version == 2)
        },
        check("eight concurrent updates all land, one version each") { maps, name async throws in
            try await maps.publish(ShardMap(name: name, algorithm: .rendezvous, shards: shards(1)))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        _ = try await maps.update(name, attempts: 50) { map in map.shards.append(.init(name: "added\(index)")) }
                    }
                }
                try await group.waitForAll()
            }
            let final = try await maps.current(name)
            #expect(final.version == 9)
            #expect(Set(final.shards.map(\.name)) == Set(["s0"] + (0..<8).map { "added\($0)" }))
        },
        check("update returns the rebalance plan of the change") { maps, name async throws in
            try await maps.publish(ShardMap(name: name, algorithm: .ring, shards: (0..<4).map { .init(name: "s\($0)") }))
            let (plan, map) = try await maps.update(name) { $0.shards.append(.init(name: "s4")) }
            #expect(map.version == 2 && plan.exact)
            #expect(abs(plan.minimum - 0.2) < 1e-9)
            #expect(plan.fraction > 0.15 && plan.fraction < 0.25, "\(plan.fraction)")
            #expect(plan.moves.allSatisfy { $0.to == "s4" })     // a ring only moves keys to the new shard
        },
        check("an invalid map is refused before it is stored") { maps, name async throws in
            let empty = await #expect(throws: NimbusError.self) { try await maps.publish(ShardMap(name: name, algorithm: .ring, shards: [])) }
            #expect(empty?.code == .invalidArgument)
            let ranges = await #expect(throws: NimbusError.self) {
                try await maps.publish(ShardMap(name: name, algorithm: .range, shards: shards(1), ranges: [.init(upTo: nil, shard: "elsewhere")]))
            }
            #expect(ranges?.code == .invalidArgument)
            await #expect(throws: NimbusError.self) { try await maps.current(name) }
        },
    ]
}
