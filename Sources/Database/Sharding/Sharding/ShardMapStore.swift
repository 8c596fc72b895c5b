import Logging
import NimbusCore
import Synchronization

/// Where shard maps are kept, so every process routes alike: the driver of ``ShardMaps``.
public protocol ShardMapStore: NimbusDriver {
    /// The current version of the map `name`, if stored.
    func load(_ name: String) async throws -> ShardMap?
    /// Stores `map` if the stored version is `map.version - 1` (or, for version 1, none is stored);
    /// returns whether it did. The compare-and-set every change goes through.
    func store(_ map: ShardMap) async throws -> Bool
}

/// Versioned shard maps over any ``ShardMapStore`` (memory, PostgreSQL): publish, read, and change
/// a map with compare-and-set, so two operators' changes never overwrite each other.
///
/// ```swift
/// let maps = ShardMaps(store: try await PostgresShardMapStore.open(url: OpenURL("postgres://…")))
/// try await maps.publish(ShardMap(name: "orders", algorithm: .ring, shards: shards))
/// let (plan, map) = try await maps.update("orders") { map in map.shards.append(.init(name: "s4", location: url4)) }
/// print(plan.fraction, plan.minimum)        // ≈ 0.2 and 0.2 for the 5th shard
/// ```
public final class ShardMaps: PortableClient {
    private let driver: any ShardMapStore
    private let closed = Atomic<Bool>(false)
    private let calls: PortableCalls

    /// Wraps a store.
    public init(store: some ShardMapStore, logger: Logger = Logger(label: "nimbus.sharding")) {
        self.driver = store
        self.calls = PortableCalls(domain: "sharding", provider: store.provider, operations: ["load", "store"], logger: logger)
    }

    /// Opens the store that `url`'s scheme names in `openers`.
    public static func open(_ url: String, openers: URLOpenerRegistry<any ShardMapStore>) async throws -> ShardMaps {
        ShardMaps(store: try await openers.open(url))
    }

    public var provider: String { driver.provider }
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    public func close() async throws {
        guard closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        try await driver.close()
    }

    /// The current map `name`. - Throws: `notFound` if none was published.
    public func current(_ name: String) async throws -> ShardMap {
        let map = try await calls.run("load", retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20)), closed: closed.load(ordering: .acquiring)) {
            try await self.driver.load(name)
        }
        guard let map else { throw NimbusError(.notFound, "no shard map named '\(name)'; publish one first") }
        return map
    }

    /// Stores a new map as version 1. - Throws: `alreadyExists` if one is stored.
    @discardableResult
    public func publish(_ map: ShardMap) async throws -> ShardMap {
        var first = map
        first.version = 1
        try first.validate()
        let candidate = first
        let stored = try await calls.run("store", retry: .none, closed: closed.load(ordering: .acquiring)) { try await self.driver.store(candidate) }
        guard stored else { throw NimbusError(.alreadyExists, "shard map '\(map.name)' exists; change it with update(_:_:)") }
        return first
    }

    /// Changes the map with `change`, storing it as the next version; on a concurrent change, reads the
    /// new current map and applies `change` again (up to `attempts` times). Returns the plan from the
    /// old map to the stored one, and the stored map.
    public func update(_ name: String, attempts: Int = 8, _ change: @Sendable (inout ShardMap) throws -> Void) async throws -> (RebalancePlan, ShardMap) {
        for _ in 0..<max(1, attempts) {
            let old = try await current(name)
            var new = old
            try change(&new)
            new.name = old.name
            new.version = old.version + 1
            try new.validate()
            let candidate = new
            let stored = try await calls.run("store", retry: .none, closed: closed.load(ordering: .acquiring)) { try await self.driver.store(candidate) }
            if stored { return (try RebalancePlan.between(old, candidate), candidate) }
        }
        throw NimbusError(.failedPrecondition, "shard map '\(name)' kept changing under \(attempts) attempts to update it; try again")
    }
}

extension URLOpenerRegistry where Resource == any ShardMapStore {
    /// An empty registry for shard-map stores (`.withMemory()`, `.withPostgres()`).
    public static var sharding: URLOpenerRegistry<any ShardMapStore> { URLOpenerRegistry(domain: "sharding") }
}
