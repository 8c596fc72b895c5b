import Foundation
import GRDB
import NimbusCore
import NimbusLLM
import NimbusLLMMemory

/// Conversations in a SQLite file (GRDB): the embedded default, persistent across restarts.
/// Messages are stored as JSON rows in order; appends are transactions, so concurrent appends to
/// one conversation each land whole. TTLs use wall-clock time (they survive restarts).
///
/// ```swift
/// let store = try SQLiteConversationStore(path: ".nimbus/conversations.sqlite", defaultTTL: .seconds(86_400))
/// ```
public struct SQLiteConversationStore: ConversationStore {
    public var provider: String { "sqlite" }
    private let queue: DatabaseQueue
    private let defaultTTL: Duration?
    private let now: @Sendable () -> Date

    /// Opens (creating) the file at `path`; `now` is for tests.
    /// - Throws: `unavailable` when the file cannot be opened or migrated.
    public init(path: String, defaultTTL: Duration? = nil, now: @escaping @Sendable () -> Date = { Date() }) throws {
        self.defaultTTL = defaultTTL
        self.now = now
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            queue = try DatabaseQueue(path: path, configuration: configuration)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.execute(sql: """
                    CREATE TABLE conversations (id TEXT PRIMARY KEY, ttl_ms INTEGER, expires_at REAL);
                    CREATE TABLE conversation_messages (
                        conversation TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE, seq INTEGER NOT NULL, body BLOB NOT NULL,
                        PRIMARY KEY (conversation, seq));
                    """)
            }
            try migrator.migrate(queue)
        } catch {
            throw NimbusError(.unavailable, "cannot open the conversation database at \(path): \(error)", underlying: error)
        }
    }

    /// Deletes the conversation if it expired; whether it is (still) there.
    private static func live(_ db: Database, _ conversation: String, at instant: Date) throws -> (exists: Bool, ttl: Int64?) {
        guard let row = try Row.fetchOne(db, sql: "SELECT ttl_ms, expires_at FROM conversations WHERE id = ?", arguments: [conversation]) else {
            return (false, nil)
        }
        if let expires = row["expires_at"] as Double?, instant.timeIntervalSince1970 >= expires {
            try db.execute(sql: "DELETE FROM conversation_messages WHERE conversation = ?", arguments: [conversation])
            try db.execute(sql: "DELETE FROM conversations WHERE id = ?", arguments: [conversation])
            return (false, nil)
        }
        return (true, row["ttl_ms"])
    }

    public func append(_ messages: [ChatMessage], to conversation: String) async throws {
        let encoder = JSONEncoder()
        let bodies = try messages.map { try encoder.encode($0) }
        let instant = now()
        let defaultMilliseconds = defaultTTL?.nimbusMilliseconds
        try await queue.write { db in
            let (exists, stored) = try Self.live(db, conversation, at: instant)
            let ttl = exists ? stored : defaultMilliseconds
            let expires = ttl.map { instant.timeIntervalSince1970 + Double($0) / 1000 }
            if exists {
                try db.execute(sql: "UPDATE conversations SET expires_at = ? WHERE id = ?", arguments: [expires, conversation])
            } else {
                try db.execute(sql: "INSERT INTO conversations (id, ttl_ms, expires_at) VALUES (?, ?, ?)", arguments: [conversation, ttl, expires])
            }
            var next = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM conversation_messages WHERE conversation = ?", arguments: [conversation]) ?? 0
            for body in bodies {
                next += 1
                try db.execute(sql: "INSERT INTO conversation_messages (conversation, seq, body) VALUES (?, ?, ?)", arguments: [conversation, next, body])
            }
        }
    }

    public func messages(of conversation: String) async throws -> [ChatMessage] {
        let instant = now()
        let bodies: [Data] = try await queue.write { db in
            guard try Self.live(db, conversation, at: instant).exists else { return [] }
            return try Data.fetchAll(db, sql: "SELECT body FROM conversation_messages WHERE conversation = ? ORDER BY seq", arguments: [conversation])
        }
        let decoder = JSONDecoder()
        return try bodies.enumerated().map { index, body in
            do { return try decoder.decode(ChatMessage.self, from: body) } catch {
                throw NimbusError(.dataLoss, "message \(index) of conversation \(conversation) cannot be read: \(error)", underlying: error)
            }
        }
    }

    @discardableResult public func delete(_ conversation: String) async throws -> Bool {
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM conversation_messages WHERE conversation = ?", arguments: [conversation])
            try db.execute(sql: "DELETE FROM conversations WHERE id = ?", arguments: [conversation])
            return db.changesCount > 0
        }
    }

    public func setTimeToLive(_ ttl: Duration?, for conversation: String) async throws {
        let instant = now()
        let milliseconds = ttl?.nimbusMilliseconds
        try await queue.write { db in
            guard try Self.live(db, conversation, at: instant).exists else { return }
            let expires = milliseconds.map { instant.timeIntervalSince1970 + Double($0) / 1000 }
            try db.execute(sql: "UPDATE conversations SET ttl_ms = ?, expires_at = ? WHERE id = ?", arguments: [milliseconds, expires, conversation])
        }
    }
}

extension URLOpenerRegistry where Resource == any ConversationStore {
    /// Adds `sqlite://PATH?ttl=24h` (`sqlite://./.nimbus/conversations.sqlite`): conversations in a SQLite file, kept across restarts.
    public func withSQLite() -> Self {
        var copy = self
        copy.register("sqlite") { url in
            try url.options.validate(known: ["ttl"], for: "sqlite://")
            return try SQLiteConversationStore(path: try url.localFilePath(example: "sqlite://./.nimbus/conversations.sqlite"),
                                               defaultTTL: try url.options.duration("ttl"))
        }
        return copy
    }
}
