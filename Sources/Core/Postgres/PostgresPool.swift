import Logging
import NimbusCore
import PostgresNIO

/// A `PostgresClient` as an adapter holds it: either the caller's (the caller runs it) or its own
/// (opened from a URL, run by a task until ``close()``), plus the one way adapters create their
/// tables — in a transaction that holds an advisory lock, so many processes may start at once.
///
/// ```swift
/// let pool = try PostgresPool(url: url)                       // owned: runs until close()
/// try await pool.migrate("nimbus_locks", logger: logger, ["CREATE TABLE IF NOT EXISTS …"])
/// try await pool.close()
/// ```
public struct PostgresPool: Sendable {
    /// The connection pool.
    public let client: PostgresClient
    private let runner: Task<Void, Never>?

    /// The caller's pool: the caller runs it, and ``close()`` leaves it alone.
    public init(client: PostgresClient) {
        self.client = client
        self.runner = nil
    }

    /// A pool of its own for a `postgres://` URL, run until ``close()``.
    public init(url: OpenURL) throws {
        let client = PostgresClient(configuration: try .init(url: url))
        self.client = client
        self.runner = Task { await client.run() }
    }

    /// Stops the pool if it is owned.
    public func close() async {
        guard let runner else { return }
        runner.cancel()
        await runner.value
    }

    /// Runs `statements` in one transaction holding the advisory lock named `lock` (safe from many
    /// processes at once; `CREATE … IF NOT EXISTS` alone races on the catalog).
    public func migrate(_ lock: String, logger: Logger, _ statements: [String]) async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(lock)))", logger: logger)
            for statement in statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
        }
    }

    /// The one way an adapter opens itself from a URL: a pool of its own, the adapter made with it,
    /// its tables created — and the pool stopped again if that fails.
    ///
    /// ```swift
    /// public static func open(url: OpenURL) async throws -> MyStore {
    ///     try await PostgresPool.openAdapter(url: url, make: { MyStore(pool: $0) }, migrate: { try await $0.migrate() })
    /// }
    /// ```
    public static func openAdapter<Adapter>(url: OpenURL, make: (PostgresPool) -> Adapter,
                                            migrate: (Adapter) async throws -> Void) async throws -> Adapter {
        let pool = try PostgresPool(url: url)
        let adapter = make(pool)
        do { try await migrate(adapter) } catch {
            await pool.close()
            throw error
        }
        return adapter
    }
}
