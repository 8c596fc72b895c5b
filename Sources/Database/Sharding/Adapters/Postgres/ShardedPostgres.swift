import Logging
import NimbusCore
import NimbusPostgres
import NimbusSharding
import PostgresNIO

/// Routes work to the PostgreSQL database of a key's shard: one pool per shard (the shard's
/// `location` is its `postgres://` URL), the map's selector to choose, and fan-out to every shard.
///
/// ```swift
/// let router = try ShardedPostgres(map: try await maps.current("orders"))
/// try await router.run {                                               // pools run while the body runs
///     try await router.client(for: "order:1234").query("INSERT INTO orders …", logger: logger)
///     let counts = try await router.all { shard, client in try await count(client) }   // every shard at once
/// }
/// ```
public final class ShardedPostgres: Sendable {
    /// The map routed by.
    public let map: ShardMap
    private let selector: any ShardSelector
    private let clients: [String: PostgresClient]

    /// Creates a pool per shard (not yet running: see ``run(_:)``).
    public init(map: ShardMap) throws {
        self.map = map
        self.selector = try map.selector()
        var clients: [String: PostgresClient] = [:]
        for shard in map.shards {
            clients[shard.name] = PostgresClient(configuration: try .init(url: OpenURL(shard.location)))
        }
        self.clients = clients
    }

    /// Runs every shard's pool while `body` runs.
    public func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        let pools = clients.values.map { client in Task { await client.run() } }
        defer { for pool in pools { pool.cancel() } }
        return try await body()
    }

    /// The shard of `key`.
    public func shard(for key: String) -> String {
        selector.shard(for: key)
    }

    /// The pool of `key`'s shard.
    public func client(for key: String) throws -> PostgresClient {
        let name = shard(for: key)
        guard let client = clients[name] else { throw NimbusError(.internal, "shard map '\(map.name)' has no pool for shard '\(name)'") }
        return client
    }

    /// Runs `body` on every shard at once and returns the results by shard name.
    public func all<T: Sendable>(_ body: @escaping @Sendable (String, PostgresClient) async throws -> T) async throws -> [String: T] {
        try await withThrowingTaskGroup(of: (String, T).self) { group in
            for (name, client) in clients { group.addTask { (name, try await body(name, client)) } }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
    }
}
