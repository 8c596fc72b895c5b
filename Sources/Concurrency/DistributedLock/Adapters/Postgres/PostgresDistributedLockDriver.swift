import Foundation
import Logging
import NimbusCore
import NimbusDistributedLock
import NimbusPostgres
import PostgresNIO

/// Locks in PostgreSQL: a lease table (`nimbus_locks`: name, owner, token, expiry on the server's
/// clock) whose tokens come from one sequence, so they only grow; a fenced register
/// (`nimbus_fenced`); and transaction-scoped advisory locks for work that fits in one transaction.
///
/// Every call is one statement: acquiring is an `INSERT … ON CONFLICT DO UPDATE … WHERE expired`,
/// so two contenders serialize on the row and exactly one gets a token.
///
/// ```swift
/// let locks = try await DistributedLocks.open("postgres://app@db/app?sslmode=verify-full", openers: .distributedLock.withPostgres())
/// // Or, for a one-transaction critical section (released at COMMIT or ROLLBACK, even on a crash):
/// try await driver.withAdvisoryLock("monthly-invoices") { connection in … }
/// ```
public struct PostgresDistributedLockDriver: DistributedLockDriver {
    public var provider: String { "postgres" }
    /// The connection pool (run by the caller, or by the adapter when opened by URL).
    public var client: PostgresClient { pool.client }
    private let pool: PostgresPool
    private let logger: Logger

    /// Uses a pool the caller runs; call ``migrate()`` once.
    public init(client: PostgresClient, logger: Logger = Logger(label: "nimbus.lock.postgres")) {
        self.pool = PostgresPool(client: client)
        self.logger = logger
    }

    private init(pool: PostgresPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    /// Opens one that owns its pool (`postgres://…`), creates its tables and runs the pool until ``close()``.
    public static func open(url: OpenURL, logger: Logger = Logger(label: "nimbus.lock.postgres")) async throws -> PostgresDistributedLockDriver {
        try await PostgresPool.openAdapter(url: url, make: { PostgresDistributedLockDriver(pool: $0, logger: logger) }, migrate: { try await $0.migrate() })
    }

    /// Stops the pool it owns (a pool the caller runs is left alone).
    public func close() async throws { await pool.close() }

    /// Creates the tables if missing (safe from many processes at once).
    public func migrate() async throws {
        try await pool.migrate("nimbus_locks_migration", logger: logger, [
            "CREATE SEQUENCE IF NOT EXISTS nimbus_lock_tokens",
            """
            CREATE TABLE IF NOT EXISTS nimbus_locks (
                name TEXT PRIMARY KEY, owner TEXT NOT NULL, token BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)
            """,
            "CREATE TABLE IF NOT EXISTS nimbus_fenced (resource TEXT PRIMARY KEY, token BIGINT NOT NULL, value TEXT NOT NULL)",
        ])
    }

    public func tryAcquire(_ name: String, owner: String, ttl: Duration) async throws -> UInt64? {
        let milliseconds = Self.milliseconds(ttl)
        let rows = try await client.query("""
            INSERT INTO nimbus_locks (name, owner, token, expires_at)
            VALUES (\(name), \(owner), nextval('nimbus_lock_tokens'), clock_timestamp() + \(milliseconds) * interval '1 millisecond')
            ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
            WHERE nimbus_locks.expires_at <= clock_timestamp()
            RETURNING token
            """, logger: logger)
        for try await token in rows.decode(Int64.self) { return UInt64(clamping: token) }
        return nil
    }

    public func renew(_ name: String, owner: String, token: UInt64, ttl: Duration) async throws -> Bool {
        let milliseconds = Self.milliseconds(ttl), token = Int64(clamping: token)
        let rows = try await client.query("""
            UPDATE nimbus_locks SET expires_at = clock_timestamp() + \(milliseconds) * interval '1 millisecond'
            WHERE name = \(name) AND owner = \(owner) AND token = \(token) AND expires_at > clock_timestamp()
            RETURNING token
            """, logger: logger)
        for try await _ in rows.decode(Int64.self) { return true }
        return false
    }

    public func release(_ name: String, owner: String, token: UInt64) async throws -> Bool {
        let token = Int64(clamping: token)
        let rows = try await client.query("""
            DELETE FROM nimbus_locks WHERE name = \(name) AND owner = \(owner) AND token = \(token)
            RETURNING expires_at > clock_timestamp()
            """, logger: logger)
        for try await held in rows.decode(Bool.self) { return held }
        return false
    }

    public func holder(of name: String) async throws -> LockHolder? {
        let rows = try await client.query("""
            SELECT owner, token, (EXTRACT(EPOCH FROM expires_at - clock_timestamp()) * 1000)::BIGINT
            FROM nimbus_locks WHERE name = \(name) AND expires_at > clock_timestamp()
            """, logger: logger)
        for try await (owner, token, left) in rows.decode((String, Int64, Int64).self) {
            return LockHolder(owner: owner, token: UInt64(clamping: token), expiresIn: .milliseconds(max(0, left)))
        }
        return nil
    }

    public func fencedWrite(_ resource: String, value: String, token: UInt64) async throws -> Bool {
        let token = Int64(clamping: token)
        let rows = try await client.query("""
            INSERT INTO nimbus_fenced (resource, token, value) VALUES (\(resource), \(token), \(value))
            ON CONFLICT (resource) DO UPDATE SET token = EXCLUDED.token, value = EXCLUDED.value
            WHERE nimbus_fenced.token <= EXCLUDED.token
            RETURNING token
            """, logger: logger)
        for try await _ in rows.decode(Int64.self) { return true }
        return false
    }

    public func fencedRead(_ resource: String) async throws -> FencedValue? {
        let rows = try await client.query("SELECT value, token FROM nimbus_fenced WHERE resource = \(resource)", logger: logger)
        for try await (value, token) in rows.decode((String, Int64).self) { return FencedValue(value: value, token: UInt64(clamping: token)) }
        return nil
    }

    /// Runs `body` in a transaction holding the advisory lock of `name` (`pg_advisory_xact_lock`,
    /// waiting for it): released at commit or rollback, and by the server if the connection dies.
    /// Serializes work that fits in one transaction without any lease to renew.
    public func withAdvisoryLock<T: Sendable>(_ name: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let logger = logger
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(name), 0))", logger: logger)
            return try await body(connection)
        }
    }

    /// Like ``withAdvisoryLock(_:_:)`` but returns `nil` at once when another transaction holds it.
    public func withAdvisoryLockIfFree<T: Sendable>(_ name: String, _ body: (PostgresConnection) async throws -> T) async throws -> T? {
        let logger = logger
        return try await client.withTransaction(logger: logger) { connection -> T? in
            let rows = try await connection.query("SELECT pg_try_advisory_xact_lock(hashtextextended(\(name), 0))", logger: logger)
            var taken = false
            for try await value in rows.decode(Bool.self) { taken = value }
            guard taken else { return nil }
            return try await body(connection)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 { max(1, duration.nimbusMilliseconds) }
}

extension URLOpenerRegistry where Resource == any DistributedLockDriver {
    /// Adds `postgres://` and `postgresql://` (creates the tables on open).
    public func withPostgres() -> Self {
        var copy = self
        copy.register("postgres", "postgresql") { url in try await PostgresDistributedLockDriver.open(url: url) }
        return copy
    }
}
