import Foundation
import Logging
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusPostgres
import PostgresNIO

/// An outbox table (`nimbus_outbox`) in the application's own PostgreSQL database, for ``OutboxRelay``.
///
/// Add messages with ``add(_:to:on:logger:)`` inside the transaction that changes the state they
/// announce; the relay publishes them afterwards.
///
/// **Order.** PostgreSQL hands out sequence numbers when rows are inserted, not when transactions
/// commit, so a plain table can show entry 12 before entry 11 exists. `add` therefore takes a
/// transaction-scoped advisory lock per topic: writers of one topic commit their entries in
/// sequence order, and the relay publishes each topic's entries in the order they were committed.
/// (Writers of one topic wait for each other from `add` to commit — add last in the transaction.)
/// Entries of different topics are not ordered relative to each other.
///
/// **One relay at a time.** Any number of processes may run a relay on the same table: a pass
/// first takes (or renews) a lease row, and only its holder reads entries, so they go out once and
/// in order. A holder that stops renewing for ``leaseDuration`` is replaced (and an entry it had
/// published but not yet marked goes out again: at least once).
///
/// ```swift
/// try await pool.client.withTransaction(logger: logger) { connection in
///     try await connection.query("UPDATE orders SET state = 'paid' WHERE id = \(id)", logger: logger)
///     try await PostgresOutbox.add(Message(json: OrderPaid(id: id)), to: "orders", on: connection, logger: logger)
/// }
/// let relay = OutboxRelay(store: try await PostgresOutbox(pool: pool), messaging: messaging)
/// ```
public struct PostgresOutbox: OutboxStore {
    /// The pool it reads and marks entries with.
    public let pool: PostgresPool
    /// How long a relay's lease lasts without renewal (renewed on every pass).
    public let leaseDuration: Duration
    /// This store's name in the lease row.
    public let owner: String
    private let logger: Logger

    /// Uses the application's pool, creating the tables if needed.
    public init(pool: PostgresPool, leaseDuration: Duration = .seconds(30), logger: Logger = Logger(label: "nimbus.messaging.outbox")) async throws {
        self.pool = pool
        self.leaseDuration = leaseDuration
        self.owner = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(IDGenerator.shared.ulid())"
        self.logger = logger
        try await pool.migrate("nimbus_outbox", logger: logger, Self.migrations)
    }

    /// The tables (for an application's own migrations).
    public static let migrations = [
        """
        CREATE TABLE IF NOT EXISTS nimbus_outbox (
            seq BIGSERIAL PRIMARY KEY, topic TEXT NOT NULL, body BYTEA NOT NULL, attributes JSONB,
            ordering_key TEXT, deduplication_id TEXT, delay_ms BIGINT, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), published_at TIMESTAMPTZ)
        """,
        "CREATE INDEX IF NOT EXISTS nimbus_outbox_pending ON nimbus_outbox (seq) WHERE published_at IS NULL",
        "CREATE TABLE IF NOT EXISTS nimbus_outbox_relay (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)",
    ]

    /// Adds `message` for `topic` in the caller's transaction (`connection` must be inside one): it is
    /// published only if the transaction commits.
    public static func add(_ message: Message, to topic: String, on connection: PostgresConnection, logger: Logger) async throws {
        let attributes = try StoredAttributes.encode(message.attributes)
        let body = message.body, key = message.orderingKey, deduplication = message.deduplicationID
        let delay = message.delay?.nimbusMilliseconds
        // Writers of one topic take their sequence numbers and commit one after another (see the type's notes).
        try await connection.query("SELECT pg_advisory_xact_lock(hashtext('nimbus_outbox'), hashtext(\(topic)))", logger: logger)
        try await connection.query("""
            INSERT INTO nimbus_outbox (topic, body, attributes, ordering_key, deduplication_id, delay_ms)
            VALUES (\(topic), \(body), \(attributes)::jsonb, \(key), \(deduplication), \(delay))
            """, logger: logger)
    }

    /// Takes or renews the relay lease; whether this store holds it.
    func holdLease() async throws -> Bool {
        let milliseconds = leaseDuration.nimbusMilliseconds
        let rows = try await pool.client.query("""
            INSERT INTO nimbus_outbox_relay (name, owner, expires_at) VALUES ('relay', \(owner), now() + \(milliseconds) * interval '1 millisecond')
            ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
            WHERE nimbus_outbox_relay.owner = EXCLUDED.owner OR nimbus_outbox_relay.expires_at < now()
            RETURNING owner
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    public func pending(limit: Int) async throws -> [OutboxEntry] {
        guard try await holdLease() else { return [] }
        let rows = try await pool.client.query("""
            SELECT seq, topic, body, attributes::text, ordering_key, deduplication_id, delay_ms FROM nimbus_outbox
            WHERE published_at IS NULL ORDER BY seq LIMIT \(limit)
            """, logger: logger)
        var entries: [OutboxEntry] = []
        for try await (sequence, topic, body, attributes, key, deduplication, delay) in rows.decode((Int64, String, ByteBuffer, String?, String?, String?, Int64?).self) {
            let decoded = try attributes.map { try StoredAttributes.decode(Array($0.utf8), of: "outbox entry \(sequence)") } ?? [:]
            entries.append(OutboxEntry(sequence: sequence, topic: topic, message: Message(body: body, attributes: decoded, orderingKey: key,
                                                                                          deduplicationID: deduplication, delay: delay.map { .milliseconds($0) })))
        }
        return entries
    }

    public func markPublished(_ sequences: [Int64]) async throws {
        guard !sequences.isEmpty else { return }
        try await pool.client.query("UPDATE nimbus_outbox SET published_at = now() WHERE seq = ANY(\(sequences))", logger: logger)
    }

    public func purge(publishedBefore date: Date) async throws -> Int {
        let rows = try await pool.client.query("""
            WITH removed AS (DELETE FROM nimbus_outbox WHERE published_at IS NOT NULL AND published_at < \(date) RETURNING 1)
            SELECT count(*)::bigint FROM removed
            """, logger: logger)
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }
}
