import Foundation
import GRDB
import NIOCore
import NimbusCore
import NimbusMessaging

/// An outbox table (`nimbus_outbox`) in the application's own SQLite database, for ``OutboxRelay``.
///
/// Add messages with ``add(_:to:in:)`` inside the transaction that changes the state they
/// announce; the relay publishes them afterwards, in order.
///
/// ```swift
/// try await database.write { db in
///     try db.execute(sql: "INSERT INTO payments (id, amount) VALUES (?, ?)", arguments: [id, amount])
///     try SQLiteOutbox.add(Message(json: PaymentReceived(id: id)), to: "payments", in: db)
/// }
/// ```
public struct SQLiteOutbox: OutboxStore {
    private let queue: DatabaseQueue

    /// Uses the application's database queue (creating the table if needed).
    public init(queue: DatabaseQueue) throws {
        self.queue = queue
        try queue.write { try Self.createTable($0) }
    }

    /// Opens the database file at `path` (creating the table if needed).
    public init(path: String) throws {
        var settings = GRDB.Configuration()
        settings.busyMode = .timeout(10)
        do { try self.init(queue: DatabaseQueue(path: path, configuration: settings)) }
        catch let error as NimbusError { throw error }
        catch { throw NimbusError(.unavailable, "cannot open the outbox database at \(path): \(error)", underlying: error) }
    }

    /// Creates `nimbus_outbox` if it does not exist; call it from the application's migrations, or let `init` do it.
    public static func createTable(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS nimbus_outbox (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, body BLOB NOT NULL, attributes TEXT,
                ordering_key TEXT, deduplication_id TEXT, delay_ms INTEGER, created_at REAL NOT NULL, published_at REAL);
            CREATE INDEX IF NOT EXISTS nimbus_outbox_pending ON nimbus_outbox (seq) WHERE published_at IS NULL;
            """)
    }

    /// Adds `message` for `topic` in the caller's transaction: it is published only if the transaction commits.
    public static func add(_ message: Message, to topic: String, in db: Database) throws {
        let attributes = try StoredAttributes.encode(message.attributes)
        try db.execute(sql: """
            INSERT INTO nimbus_outbox (topic, body, attributes, ordering_key, deduplication_id, delay_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [topic, Data(message.body.readableBytesView), attributes, message.orderingKey, message.deduplicationID,
                             message.delay?.nimbusMilliseconds, Date().timeIntervalSince1970])
    }

    public func pending(limit: Int) async throws -> [OutboxEntry] {
        try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM nimbus_outbox WHERE published_at IS NULL ORDER BY seq LIMIT ?", arguments: [limit]).map { row in
                let body: Data = row["body"]
                var attributes: [String: String] = [:]
                if let json: String = row["attributes"] {
                    attributes = try StoredAttributes.decode(Array(json.utf8), of: "outbox entry \(row["seq"] as Int64? ?? -1)")
                }
                let delay: Int64? = row["delay_ms"]
                return OutboxEntry(sequence: row["seq"], topic: row["topic"], message: Message(
                    body: ByteBuffer(bytes: body), attributes: attributes, orderingKey: row["ordering_key"], deduplicationID: row["deduplication_id"],
                    delay: delay.map { .milliseconds($0) }))
            }
        }
    }

    public func markPublished(_ sequences: [Int64]) async throws {
        let now = Date().timeIntervalSince1970
        try await queue.write { db in
            for sequence in sequences {
                try db.execute(sql: "UPDATE nimbus_outbox SET published_at = ? WHERE seq = ?", arguments: [now, sequence])
            }
        }
    }

    public func purge(publishedBefore date: Date) async throws -> Int {
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM nimbus_outbox WHERE published_at IS NOT NULL AND published_at < ?", arguments: [date.timeIntervalSince1970])
            return db.changesCount
        }
    }
}
