import Foundation
import Logging
import NimbusBilling
import NimbusCore
import NimbusPostgres
import PostgresNIO

/// Billing in PostgreSQL, for services that already run one. Documents are JSON rows; usage goes in
/// batches (one statement per batch, duplicates skipped by id); invoice numbers come from a row
/// updated in place, so they stay gapless and unique.
///
/// ```swift
/// let client = PostgresClient(configuration: try .init(url: "postgres://billing@db/billing"))   // run it: `await client.run()`
/// let engine = try await BillingEngine(store: PostgresBillingStore(client: client), configuration: ...)
/// ```
public struct PostgresBillingStore: BillingStore {
    /// The connection pool (run by the caller, or by the store when it was opened by URL).
    public let client: PostgresClient
    private let logger: Logger
    private let runner: Task<Void, Never>?
    public var provider: String { "postgres" }

    /// Creates a store over a pool the caller runs.
    public init(client: PostgresClient, logger: Logger = Logger(label: "nimbus.billing.postgres")) {
        self.client = client
        self.logger = logger
        self.runner = nil
    }

    /// Opens a store that owns its pool: the pool runs until ``close()``.
    public init(url: OpenURL, logger: Logger = Logger(label: "nimbus.billing.postgres")) throws {
        let client = PostgresClient(configuration: try .init(url: url))
        self.client = client
        self.logger = logger
        self.runner = Task { await client.run() }
    }

    /// Stops the pool the store owns (a pool the caller runs is left alone).
    public func close() async throws {
        guard let runner else { return }
        runner.cancel()
        await runner.value
    }

    public func migrate() async throws {
        for statement in [
            """
            CREATE TABLE IF NOT EXISTS nimbus_billing_documents (kind TEXT NOT NULL, id TEXT NOT NULL, owner TEXT, seq BIGSERIAL, body TEXT NOT NULL,
                                                                 PRIMARY KEY (kind, id))
            """,
            "CREATE INDEX IF NOT EXISTS nimbus_billing_documents_owner ON nimbus_billing_documents (kind, owner, seq)",
            """
            CREATE TABLE IF NOT EXISTS nimbus_billing_usage (id TEXT PRIMARY KEY, subscription TEXT NOT NULL, meter TEXT NOT NULL,
                                                             ts DOUBLE PRECISION NOT NULL, body TEXT NOT NULL)
            """,
            "CREATE INDEX IF NOT EXISTS nimbus_billing_usage_window ON nimbus_billing_usage (subscription, meter, ts)",
            "CREATE TABLE IF NOT EXISTS nimbus_billing_events (seq BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS nimbus_billing_sequences (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        ] {
            try await client.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
    }

    public func commit(documents: [BillingDocument], events: [Data]) async throws {
        let logger = logger
        try await client.withTransaction(logger: logger) { connection in
            for document in documents {
                let body = String(decoding: document.body, as: UTF8.self)
                try await connection.query("""
                    INSERT INTO nimbus_billing_documents (kind, id, owner, body) VALUES (\(document.kind.rawValue), \(document.id), \(document.owner), \(body))
                    ON CONFLICT (kind, id) DO UPDATE SET body = EXCLUDED.body, owner = EXCLUDED.owner
                    """, logger: logger)
            }
            for event in events {
                try await connection.query("INSERT INTO nimbus_billing_events (body) VALUES (\(String(decoding: event, as: UTF8.self)))", logger: logger)
            }
        }
    }

    public func document(_ kind: BillingDocumentKind, id: String) async throws -> Data? {
        let rows = try await client.query("SELECT body FROM nimbus_billing_documents WHERE kind = \(kind.rawValue) AND id = \(id)", logger: logger)
        for try await body in rows.decode(String.self) { return Data(body.utf8) }
        return nil
    }

    public func documents(_ kind: BillingDocumentKind, owner: String?) async throws -> [Data] {
        let rows = if let owner {
            try await client.query("SELECT body FROM nimbus_billing_documents WHERE kind = \(kind.rawValue) AND owner = \(owner) ORDER BY seq", logger: logger)
        } else {
            try await client.query("SELECT body FROM nimbus_billing_documents WHERE kind = \(kind.rawValue) ORDER BY seq", logger: logger)
        }
        var bodies: [Data] = []
        for try await body in rows.decode(String.self) { bodies.append(Data(body.utf8)) }
        return bodies
    }

    public func recordUsage(_ events: [UsageEvent]) async throws -> Int {
        guard !events.isEmpty else { return 0 }
        let encoder = JSONEncoder.billing
        let ids = events.map(\.id), subscriptions = events.map(\.subscriptionID), meters = events.map(\.meter)
        let stamps = events.map(\.timestamp.timeIntervalSince1970)
        let bodies = try events.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        let rows = try await client.query("""
            WITH added AS (
                INSERT INTO nimbus_billing_usage (id, subscription, meter, ts, body)
                SELECT * FROM UNNEST(\(ids)::text[], \(subscriptions)::text[], \(meters)::text[], \(stamps)::float8[], \(bodies)::text[])
                ON CONFLICT (id) DO NOTHING RETURNING 1)
            SELECT count(*) FROM added
            """, logger: logger)
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }

    public func usage(subscriptionID: String, meter: String, from: Date, to: Date) async throws -> [UsageEvent] {
        let start = from.timeIntervalSince1970, end = to.timeIntervalSince1970
        let rows = try await client.query("""
            SELECT body FROM nimbus_billing_usage WHERE subscription = \(subscriptionID) AND meter = \(meter) AND ts >= \(start) AND ts < \(end) ORDER BY ts
            """, logger: logger)
        var events: [UsageEvent] = []
        let decoder = JSONDecoder.billing
        for try await body in rows.decode(String.self) { events.append(try decoder.decode(UsageEvent.self, from: Data(body.utf8))) }
        return events
    }

    public func events(after: Int64, limit: Int) async throws -> [(sequence: Int64, body: Data)] {
        let rows = try await client.query("SELECT seq, body FROM nimbus_billing_events WHERE seq > \(after) ORDER BY seq LIMIT \(Int64(limit))", logger: logger)
        var events: [(sequence: Int64, body: Data)] = []
        for try await (sequence, body) in rows.decode((Int64, String).self) { events.append((sequence, Data(body.utf8))) }
        return events
    }

    public func nextNumber(_ sequence: String) async throws -> Int64 {
        let rows = try await client.query("""
            INSERT INTO nimbus_billing_sequences (name, value) VALUES (\(sequence), 1)
            ON CONFLICT (name) DO UPDATE SET value = nimbus_billing_sequences.value + 1 RETURNING value
            """, logger: logger)
        for try await value in rows.decode(Int64.self) { return value }
        throw NimbusError(.internal, "PostgreSQL returned no value for sequence \(sequence)")
    }
}

extension URLOpenerRegistry where Resource == any BillingStore {
    /// Adds `postgres://` and `postgresql://` (NimbusPostgres URL options, `sslmode` among them): a store
    /// that owns its connection pool until it is closed.
    public func withPostgres() -> Self {
        var copy = self
        copy.register("postgres", "postgresql") { url in try PostgresBillingStore(url: url) }
        return copy
    }
}
