import Foundation
import Logging
import NimbusCore
import NimbusLLM
import NimbusLLMMemory
import NimbusPostgres
import PostgresNIO

/// Conversations in PostgreSQL, for services running as several instances. An append is one
/// transaction that first locks the conversation's row, so concurrent appends from any instance land
/// whole and in order. TTLs are stored as an expiry time; expired conversations read as empty and are
/// removed when touched (or by ``purgeExpired()`` from a periodic job).
///
/// ```swift
/// let client = PostgresClient(configuration: ...)       // run it: `await client.run()` in a task or a ServiceGroup
/// let store = PostgresConversationStore(client: client, defaultTTL: .seconds(86_400))
/// try await store.migrate()
/// ```
public struct PostgresConversationStore: ConversationStore {
    /// The connection pool (run by the caller, or by the store when it was opened by URL).
    public let client: PostgresClient
    private let runner: Task<Void, Never>?
    public var provider: String { "postgres" }
    private let defaultTTL: Duration?
    private let logger: Logger
    private let now: @Sendable () -> Date

    /// Creates a store; `now` is for tests.
    public init(client: PostgresClient, defaultTTL: Duration? = nil, logger: Logger = Logger(label: "nimbus.llm.memory.postgres"),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.client = client
        self.defaultTTL = defaultTTL
        self.logger = logger
        self.now = now
        self.runner = nil
    }

    /// Opens a store that owns its pool (`postgres://USER@HOST/DB?sslmode=…&ttl=24h`), creates its
    /// tables, and runs the pool until ``close()``.
    public static func open(url: OpenURL, logger: Logger = Logger(label: "nimbus.llm.memory.postgres")) async throws -> PostgresConversationStore {
        let client = PostgresClient(configuration: try .init(url: url.removingOptions(["ttl"])))
        let store = PostgresConversationStore(client: client, defaultTTL: try url.options.duration("ttl"), logger: logger,
                                              runner: Task { await client.run() })
        do { try await store.migrate() } catch {
            try? await store.close()
            throw error
        }
        return store
    }

    private init(client: PostgresClient, defaultTTL: Duration?, logger: Logger, runner: Task<Void, Never>) {
        self.client = client
        self.defaultTTL = defaultTTL
        self.logger = logger
        self.now = { Date() }
        self.runner = runner
    }

    /// Stops the pool the store owns (a pool the caller runs is left alone).
    public func close() async throws {
        guard let runner else { return }
        runner.cancel()
        await runner.value
    }

    /// Creates the tables if they are missing.
    public func migrate() async throws {
        try await client.query("""
            CREATE TABLE IF NOT EXISTS nimbus_conversations (
                id TEXT PRIMARY KEY, ttl_ms BIGINT, expires_at DOUBLE PRECISION, next_seq BIGINT NOT NULL DEFAULT 0)
            """, logger: logger)
        try await client.query("""
            CREATE TABLE IF NOT EXISTS nimbus_conversation_messages (
                conversation TEXT NOT NULL REFERENCES nimbus_conversations(id) ON DELETE CASCADE,
                seq BIGINT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (conversation, seq))
            """, logger: logger)
    }

    public func append(_ messages: [ChatMessage], to conversation: String) async throws {
        let encoder = JSONEncoder()
        let bodies = try messages.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        let instant = now().timeIntervalSince1970
        let defaultMilliseconds = defaultTTL.map { Int64($0.nimbusMilliseconds) }
        let logger = logger
        try await client.withTransaction(logger: logger) { connection in
            // Creates the row or locks it; an expired conversation starts anew with the default TTL.
            try await connection.query("""
                INSERT INTO nimbus_conversations (id, ttl_ms, expires_at, next_seq) VALUES (\(conversation), \(defaultMilliseconds), NULL, 0)
                ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id
                """, logger: logger)
            let rows = try await connection.query("SELECT ttl_ms, expires_at, next_seq FROM nimbus_conversations WHERE id = \(conversation) FOR UPDATE",
                                                  logger: logger)
            var ttl = defaultMilliseconds, next: Int64 = 0
            for try await (storedTTL, expires, seq) in rows.decode((Int64?, Double?, Int64).self) {
                if let expires, instant >= expires {
                    try await connection.query("DELETE FROM nimbus_conversation_messages WHERE conversation = \(conversation)", logger: logger)
                } else {
                    ttl = storedTTL
                    next = seq
                }
            }
            for body in bodies {
                next += 1
                try await connection.query("INSERT INTO nimbus_conversation_messages (conversation, seq, body) VALUES (\(conversation), \(next), \(body))",
                                           logger: logger)
            }
            let expires = ttl.map { instant + Double($0) / 1000 }
            try await connection.query("UPDATE nimbus_conversations SET ttl_ms = \(ttl), expires_at = \(expires), next_seq = \(next) WHERE id = \(conversation)",
                                       logger: logger)
        }
    }

    public func messages(of conversation: String) async throws -> [ChatMessage] {
        let instant = now().timeIntervalSince1970
        let rows = try await client.query("""
            SELECT m.body FROM nimbus_conversation_messages m JOIN nimbus_conversations c ON c.id = m.conversation
            WHERE c.id = \(conversation) AND (c.expires_at IS NULL OR c.expires_at > \(instant)) ORDER BY m.seq
            """, logger: logger)
        let decoder = JSONDecoder()
        var messages: [ChatMessage] = []
        for try await body in rows.decode(String.self) {
            do { messages.append(try decoder.decode(ChatMessage.self, from: Data(body.utf8))) } catch {
                throw NimbusError(.dataLoss, "message \(messages.count) of conversation \(conversation) cannot be read: \(error)", underlying: error)
            }
        }
        return messages
    }

    @discardableResult public func delete(_ conversation: String) async throws -> Bool {
        let instant = now().timeIntervalSince1970
        let rows = try await client.query("DELETE FROM nimbus_conversations WHERE id = \(conversation) RETURNING expires_at", logger: logger)
        var existed = false
        for try await expires in rows.decode(Double?.self) { existed = expires.map { instant < $0 } ?? true }
        return existed
    }

    public func setTimeToLive(_ ttl: Duration?, for conversation: String) async throws {
        let instant = now().timeIntervalSince1970
        let milliseconds = ttl.map { Int64($0.nimbusMilliseconds) }
        let expires = milliseconds.map { instant + Double($0) / 1000 }
        try await client.query("""
            UPDATE nimbus_conversations SET ttl_ms = \(milliseconds), expires_at = \(expires)
            WHERE id = \(conversation) AND (expires_at IS NULL OR expires_at > \(instant))
            """, logger: logger)
    }

    /// Deletes every expired conversation. - Returns: how many.
    @discardableResult public func purgeExpired() async throws -> Int {
        let instant = now().timeIntervalSince1970
        let rows = try await client.query("DELETE FROM nimbus_conversations WHERE expires_at <= \(instant) RETURNING id", logger: logger)
        var count = 0
        for try await _ in rows.decode(String.self) { count += 1 }
        return count
    }
}

extension URLOpenerRegistry where Resource == any ConversationStore {
    /// Adds `postgres://` and `postgresql://` (`?sslmode=…&ttl=24h`): a store that owns its pool and creates its tables.
    public func withPostgres() -> Self {
        var copy = self
        copy.register("postgres", "postgresql") { url in try await PostgresConversationStore.open(url: url) }
        return copy
    }
}
