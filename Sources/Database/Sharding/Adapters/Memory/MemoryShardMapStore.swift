import NimbusCore
import NimbusSharding
import Synchronization

/// Shard maps in process memory (`mem://`): for tests and single-process services.
public final class MemoryShardMapStore: ShardMapStore {
    public var provider: String { "memory" }
    private let maps = Mutex<[String: ShardMap]>([:])

    /// Creates an empty store.
    public init() {}

    public func load(_ name: String) async throws -> ShardMap? { maps.withLock { $0[name] } }

    public func store(_ map: ShardMap) async throws -> Bool {
        maps.withLock { maps in
            guard (maps[map.name]?.version ?? 0) == map.version - 1 else { return false }
            maps[map.name] = map
            return true
        }
    }
}

extension URLOpenerRegistry where Resource == any ShardMapStore {
    /// Adds `mem://`.
    public func withMemory() -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: [], for: "memory shard maps")
            return MemoryShardMapStore()
        }
        return copy
    }
}
