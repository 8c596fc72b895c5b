import Foundation
import GRDB
import NimbusCore

/// The kinds of documents billing keeps.
public enum BillingDocumentKind: String, Sendable, CaseIterable {
    case plan, meter, customer, coupon, subscription, invoice, creditNote = "credit_note"
}

/// One document write: a JSON body under a kind and id, with the owner it is listed under
/// (a customer for subscriptions and invoices).
public struct BillingDocument: Sendable, Hashable {
    public var kind: BillingDocumentKind
    public var id: String
    public var owner: String?
    public var body: Data

    public init(kind: BillingDocumentKind, id: String, owner: String?, body: Data) {
        self.kind = kind
        self.id = id
        self.owner = owner
        self.body = body
    }
}

/// Where billing lives. Every method is atomic; ``commit(documents:events:)`` writes several documents
/// and events in one transaction. The embedded default is ``SQLiteBillingStore``; `NimbusBillingPostgres`
/// keeps it in PostgreSQL. One ``BillingEngine`` writes to a store at a time.
public protocol BillingStore: NimbusDriver {
    /// Creates the tables if they are missing.
    func migrate() async throws
    /// Upserts `documents` and appends `events`, all or nothing.
    func commit(documents: [BillingDocument], events: [Data]) async throws
    /// A document's body.
    func document(_ kind: BillingDocumentKind, id: String) async throws -> Data?
    /// The bodies of a kind (of one owner), in creation order.
    func documents(_ kind: BillingDocumentKind, owner: String?) async throws -> [Data]
    /// Stores usage events, in one transaction, skipping ids already stored; how many were new.
    func recordUsage(_ events: [UsageEvent]) async throws -> Int
    /// A subscription's events of a meter with `from <= timestamp < to`.
    func usage(subscriptionID: String, meter: String, from: Date, to: Date) async throws -> [UsageEvent]
    /// Events after sequence number `after`, oldest first.
    func events(after: Int64, limit: Int) async throws -> [(sequence: Int64, body: Data)]
    /// The next number of a named sequence (1, 2, 3...).
    func nextNumber(_ sequence: String) async throws -> Int64
}

/// Billing in a SQLite file (GRDB): the embedded default.
public struct SQLiteBillingStore: BillingStore {
    private let queue: DatabaseQueue
    public var provider: String { "sqlite" }

    /// Opens (creating) the file at `path`; `nil` keeps it in memory.
    /// - Throws: `unavailable` when the file cannot be opened.
    public init(path: String? = nil) throws {
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            queue = try path.map { try DatabaseQueue(path: $0, configuration: configuration) } ?? DatabaseQueue(configuration: configuration)
        } catch {
            throw NimbusError(.unavailable, "cannot open the billing database at \(path ?? ":memory:"): \(error)", underlying: error)
        }
    }

    public func migrate() async throws {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("billing-v1") { db in
            try db.execute(sql: """
                CREATE TABLE billing_documents (kind TEXT NOT NULL, id TEXT NOT NULL, owner TEXT, seq INTEGER NOT NULL, body BLOB NOT NULL,
                                                PRIMARY KEY (kind, id));
                CREATE INDEX billing_documents_owner ON billing_documents(kind, owner, seq);
                CREATE TABLE billing_usage (id TEXT PRIMARY KEY, subscription TEXT NOT NULL, meter TEXT NOT NULL, ts REAL NOT NULL, body BLOB NOT NULL);
                CREATE INDEX billing_usage_window ON billing_usage(subscription, meter, ts);
                CREATE TABLE billing_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
                CREATE TABLE billing_sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                """)
        }
        try migrator.migrate(queue)
    }

    public func commit(documents: [BillingDocument], events: [Data]) async throws {
        try await queue.write { db in
            for document in documents {
                let next = (try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) + 1 FROM billing_documents")) ?? 1
                try db.execute(sql: """
                    INSERT INTO billing_documents (kind, id, owner, seq, body) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body, owner = excluded.owner
                    """, arguments: [document.kind.rawValue, document.id, document.owner, next, document.body])
            }
            for event in events { try db.execute(sql: "INSERT INTO billing_events (body) VALUES (?)", arguments: [event]) }
        }
    }

    public func document(_ kind: BillingDocumentKind, id: String) async throws -> Data? {
        try await queue.read { try Data.fetchOne($0, sql: "SELECT body FROM billing_documents WHERE kind = ? AND id = ?", arguments: [kind.rawValue, id]) }
    }

    public func documents(_ kind: BillingDocumentKind, owner: String?) async throws -> [Data] {
        try await queue.read { db in
            if let owner {
                return try Data.fetchAll(db, sql: "SELECT body FROM billing_documents WHERE kind = ? AND owner = ? ORDER BY seq", arguments: [kind.rawValue, owner])
            }
            return try Data.fetchAll(db, sql: "SELECT body FROM billing_documents WHERE kind = ? ORDER BY seq", arguments: [kind.rawValue])
        }
    }

    public func recordUsage(_ events: [UsageEvent]) async throws -> Int {
        let encoder = JSONEncoder.billing
        let rows = try events.map { ($0, try encoder.encode($0)) }
        return try await queue.write { db in
            var added = 0
            let statement = try db.makeStatement(sql: "INSERT OR IGNORE INTO billing_usage (id, subscription, meter, ts, body) VALUES (?, ?, ?, ?, ?)")
            for (event, body) in rows {
                try statement.execute(arguments: [event.id, event.subscriptionID, event.meter, event.timestamp.timeIntervalSince1970, body])
                added += db.changesCount
            }
            return added
        }
    }

    public func usage(subscriptionID: String, meter: String, from: Date, to: Date) async throws -> [UsageEvent] {
        let bodies = try await queue.read { db in
            try Data.fetchAll(db, sql: "SELECT body FROM billing_usage WHERE subscription = ? AND meter = ? AND ts >= ? AND ts < ? ORDER BY ts",
                              arguments: [subscriptionID, meter, from.timeIntervalSince1970, to.timeIntervalSince1970])
        }
        return try bodies.map { try JSONDecoder.billing.decode(UsageEvent.self, from: $0) }
    }

    public func events(after: Int64, limit: Int) async throws -> [(sequence: Int64, body: Data)] {
        try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT seq, body FROM billing_events WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [after, limit])
                .map { (sequence: $0["seq"], body: $0["body"]) }
        }
    }

    public func nextNumber(_ sequence: String) async throws -> Int64 {
        try await queue.write { db in
            try db.execute(sql: "INSERT INTO billing_sequences (name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
                           arguments: [sequence])
            return try Int64.fetchOne(db, sql: "SELECT value FROM billing_sequences WHERE name = ?", arguments: [sequence]) ?? 1
        }
    }
}

extension JSONEncoder {
    /// Billing's encoder: sorted keys, dates as milliseconds.
    public static var billing: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return encoder
    }
}

extension JSONDecoder {
    /// Billing's decoder.
    public static var billing: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }
}

extension URLOpenerRegistry where Resource == any BillingStore {
    /// An empty registry for the billing domain's stores; modules add schemes (`.withSQLite()`, `.withPostgres()`).
    public static var billing: URLOpenerRegistry<any BillingStore> { URLOpenerRegistry(domain: "billing") }

    /// Adds `sqlite://PATH` (persistent; the directory is created) and `mem://` (in process memory, volatile).
    public func withSQLite() -> Self {
        var copy = withInProcess { try SQLiteBillingStore() }
        copy.register("sqlite") { url in
            try url.options.validate(known: [], for: "sqlite://")
            return try SQLiteBillingStore(path: try url.localFilePath(example: "sqlite://./.nimbus/billing.sqlite or sqlite:///var/lib/app/billing.sqlite"))
        }
        return copy
    }
}
