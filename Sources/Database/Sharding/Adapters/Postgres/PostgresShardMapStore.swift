import Foundation
import Logging
import NimbusCore
import NimbusPostgres
import NimbusSharding
import PostgresNIO

/// Shard maps in PostgreSQL (`nimbus_shard_maps`: name, version, the map as JSON), every version
/// kept, a new one written only over its predecessor (the primary key on name and version and an
/// `INSERT … SELECT … WHERE` on the current version make the compare-and-set one statement).
///
/// ```swift
/// let maps = try await ShardMaps.open("postgres://app@db/app", openers: .sharding.withPostgres())
/// ```
public struct PostgresShardMapStore: ShardMapStore {
    public var provider: String { "postgres" }
    /// The connection pool (run by the caller, or by the adapter when opened by URL).
    public var client: PostgresClient { pool.client }
    private let pool: PostgresPool
    private let logger: Logger

    /// Uses a pool the caller runs; call ``migrate()`` once.
    public init(client: PostgresClient, logger: Logger = Logger(label: "nimbus.sharding.postgres")) {
        self.pool = PostgresPool(client: client)
        self.logger = logger
    }

    private init(pool: PostgresPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    /// Opens one that owns its pool (`postgres://…`), creates its tables and runs the pool until ``close()``.
    public static func open(url: OpenURL, logger: Logger = Logger(label: "nimbus.sharding.postgres")) async throws -> PostgresShardMapStore {
        try await PostgresPool.openAdapter(url: url, make: { PostgresShardMapStore(pool: $0, logger: logger) }, migrate: { try await $0.migrate() })
    }

    /// Stops the pool it owns (a pool the caller runs is left alone).
    public func close() async throws { await pool.close() }

    /// Creates the tables if missing (safe from many processes at once).
    public func migrate() async throws {
        try await pool.migrate("nimbus_shard_maps_migration", logger: logger, [
            """
            CREATE TABLE IF NOT EXISTS nimbus_shard_maps (
                name TEXT NOT NULL, version INTEGER NOT NULL, map JSONB NOT NULL, stored_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (name, version))
            """,
        ])
    }

    public func load(_ name: String) async throws -> ShardMap? {
        let rows = try await client.query("SELECT map::text FROM nimbus_shard_maps WHERE name = \(name) ORDER BY version DESC LIMIT 1", logger: logger)
        for try await text in rows.decode(String.self) {
            do { return try JSONDecoder().decode(ShardMap.self, from: Data(text.utf8)) } catch {
                throw NimbusError(.dataLoss, "shard map '\(name)' in nimbus_shard_maps is not readable: \(error)", underlying: error)
            }
        }
        return nil
    }

    public func store(_ map: ShardMap) async throws -> Bool {
        let json = String(decoding: try JSONEncoder().encode(map), as: UTF8.self)
        let previous = map.version - 1
        do {
            let rows = try await client.query("""
                INSERT INTO nimbus_shard_maps (name, version, map)
                SELECT \(map.name), \(map.version), \(json)::jsonb
                WHERE COALESCE((SELECT max(version) FROM nimbus_shard_maps WHERE name = \(map.name)), 0) = \(previous)
                RETURNING version
                """, logger: logger)
            for try await _ in rows.decode(Int.self) { return true }
            return false
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            return false        // a concurrent writer stored the same version first
        }
    }
}

extension URLOpenerRegistry where Resource == any ShardMapStore {
    /// Adds `postgres://` and `postgresql://` (creates the table on open).
    public func withPostgres() -> Self {
        var copy = self
        copy.register("postgres", "postgresql") { url in try await PostgresShardMapStore.open(url: url) }
        return copy
    }
}
