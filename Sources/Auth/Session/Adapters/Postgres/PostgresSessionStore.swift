import Foundation
import Logging
import NimbusCore
import NimbusPostgres
import NimbusSession
import PostgresNIO

/// Sessions in PostgreSQL (`postgres://`): one row per session (`nimbus_sessions`), the record as
/// JSON, with indexes by user and by expiry. Updates check the version in the `WHERE` clause, so a
/// stale write changes nothing.
public struct PostgresSessionStore: SessionStoreDriver {
    public var provider: String { "postgres" }
    /// The connection pool.
    public var client: PostgresClient { pool.client }
    private let pool: PostgresPool
    private let logger: Logger

    /// Uses a pool the caller runs; call ``migrate()`` once.
    public init(client: PostgresClient, logger: Logger = Logger(label: "nimbus.session.postgres")) {
        self.pool = PostgresPool(client: client)
        self.logger = logger
    }

    private init(pool: PostgresPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    /// Opens one that owns its pool, creates its table and runs the pool until ``close()``.
    public static func open(url: OpenURL, logger: Logger = Logger(label: "nimbus.session.postgres")) async throws -> PostgresSessionStore {
        try await PostgresPool.openAdapter(url: url, make: { PostgresSessionStore(pool: $0, logger: logger) }, migrate: { try await $0.migrate() })
    }

    /// Stops the pool it owns.
    public func close() async throws { await pool.close() }

    /// Creates the table if missing (safe from many processes at once).
    public func migrate() async throws {
        try await pool.migrate("nimbus_sessions_migration", logger: logger, [
            """
            CREATE TABLE IF NOT EXISTS nimbus_sessions (
                key TEXT PRIMARY KEY, user_id TEXT, record TEXT NOT NULL,
                created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL, version BIGINT NOT NULL)
            """,
            "CREATE INDEX IF NOT EXISTS nimbus_sessions_user ON nimbus_sessions (user_id, created_ms) WHERE user_id IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS nimbus_sessions_expiry ON nimbus_sessions (expires_ms)",
        ])
    }

    private static func text(_ record: SessionRecord) throws -> String {
        String(decoding: try SessionRecordCoding.encoder.encode(record), as: UTF8.self)
    }

    public func insert(_ session: SessionRecord) async throws {
        let text = try Self.text(session), created = SessionRecordCoding.millis(session.createdAt), expires = SessionRecordCoding.millis(session.expiresAt)
        let rows = try await client.query("""
            INSERT INTO nimbus_sessions (key, user_id, record, created_ms, expires_ms, version)
            VALUES (\(session.key), \(session.userID), \(text), \(created), \(expires), \(session.version))
            ON CONFLICT (key) DO NOTHING RETURNING 1
            """, logger: logger)
        var inserted = false
        for try await _ in rows.decode(Int32.self) { inserted = true }
        guard inserted else { throw NimbusError(.alreadyExists, "a session with this key exists") }
    }

    public func find(_ key: String, now: Date) async throws -> SessionRecord? {
        let current = SessionRecordCoding.millis(now)
        let rows = try await client.query("SELECT record FROM nimbus_sessions WHERE key = \(key) AND expires_ms > \(current)", logger: logger)
        for try await text in rows.decode(String.self) { return try SessionRecordCoding.decode(Data(text.utf8)) }
        return nil
    }

    public func update(_ session: SessionRecord, expectedVersion: Int64) async throws -> Bool {
        let text = try Self.text(session), expires = SessionRecordCoding.millis(session.expiresAt)
        let rows = try await client.query("""
            UPDATE nimbus_sessions SET user_id = \(session.userID), record = \(text), expires_ms = \(expires), version = \(session.version)
            WHERE key = \(session.key) AND version = \(expectedVersion) RETURNING 1
            """, logger: logger)
        for try await _ in rows.decode(Int32.self) { return true }
        return false
    }

    public func remove(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        let rows = try await client.query("DELETE FROM nimbus_sessions WHERE key = ANY(\(keys)) RETURNING 1", logger: logger)
        var removed = 0
        for try await _ in rows.decode(Int32.self) { removed += 1 }
        return removed
    }

    public func sessions(ofUser userID: String, now: Date) async throws -> [SessionRecord] {
        let current = SessionRecordCoding.millis(now)
        let rows = try await client.query("""
            SELECT record FROM nimbus_sessions WHERE user_id = \(userID) AND expires_ms > \(current) ORDER BY created_ms, key
            """, logger: logger)
        var records: [SessionRecord] = []
        for try await text in rows.decode(String.self) { records.append(try SessionRecordCoding.decode(Data(text.utf8))) }
        return records
    }

    public func purge(now: Date) async throws -> Int {
        let current = SessionRecordCoding.millis(now)
        let rows = try await client.query("DELETE FROM nimbus_sessions WHERE expires_ms <= \(current) RETURNING 1", logger: logger)
        var removed = 0
        for try await _ in rows.decode(Int32.self) { removed += 1 }
        return removed
    }
}

extension URLOpenerRegistry where Resource == any SessionStoreDriver {
    /// Adds `postgres://` and `postgresql://` (with `sslmode`, as every PostgreSQL URL in Nimbus).
    public func withPostgres() -> Self {
        var copy = self
        copy.register("postgres", "postgresql") { url in try await PostgresSessionStore.open(url: url) }
        return copy
    }
}
