import Foundation
import GRDB
import NimbusCore
import NimbusSession

/// Sessions in a SQLite file (`sqlite://PATH`): the embedded default — they survive restarts and
/// are shared by the processes of one machine. Ended sessions are removed by ``purge(now:)``.
public final class SQLiteSessionStore: SessionStoreDriver {
    private let queue: DatabaseQueue
    /// The file (`nil`: in memory).
    public let path: String?

    /// Opens (and creates) the store at `path`, or an in-memory database.
    /// - Throws: `unavailable` when the file cannot be opened.
    public init(path: String?) throws {
        self.path = path
        do {
            var settings = GRDB.Configuration()
            settings.busyMode = .timeout(10)
            if path != nil {
                settings.prepareDatabase { db in
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                    try db.execute(sql: "PRAGMA synchronous = NORMAL")
                }
            }
            queue = try path.map { try DatabaseQueue(path: $0, configuration: settings) } ?? DatabaseQueue(configuration: settings)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.execute(sql: """
                    CREATE TABLE nimbus_sessions (
                        key TEXT PRIMARY KEY, user_id TEXT, record TEXT NOT NULL,
                        created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, version INTEGER NOT NULL);
                    CREATE INDEX nimbus_sessions_user ON nimbus_sessions (user_id, created_ms) WHERE user_id IS NOT NULL;
                    CREATE INDEX nimbus_sessions_expiry ON nimbus_sessions (expires_ms);
                    """)
            }
            try migrator.migrate(queue)
        } catch {
            throw NimbusError(.unavailable, "cannot open the session store at \(path ?? ":memory:"): \(error)", underlying: error)
        }
    }

    public var provider: String { "sqlite" }

    static func millis(_ date: Date) -> Int64 { SessionRecordCoding.millis(date) }
    static func text(_ record: SessionRecord) throws -> String { String(decoding: try SessionRecordCoding.encoder.encode(record), as: UTF8.self) }
    static func record(_ text: String) throws -> SessionRecord { try SessionRecordCoding.decode(Data(text.utf8)) }

    public func insert(_ session: SessionRecord) async throws {
        let text = try Self.text(session)
        try await queue.write { db in
            do {
                try db.execute(sql: "INSERT INTO nimbus_sessions (key, user_id, record, created_ms, expires_ms, version) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [session.key, session.userID, text, Self.millis(session.createdAt), Self.millis(session.expiresAt), session.version])
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
                throw NimbusError(.alreadyExists, "a session with this key exists")
            }
        }
    }

    public func find(_ key: String, now: Date) async throws -> SessionRecord? {
        let text = try await queue.read { db in
            try String.fetchOne(db, sql: "SELECT record FROM nimbus_sessions WHERE key = ? AND expires_ms > ?", arguments: [key, Self.millis(now)])
        }
        return try text.map(Self.record)
    }

    public func update(_ session: SessionRecord, expectedVersion: Int64) async throws -> Bool {
        let text = try Self.text(session)
        return try await queue.write { db in
            try db.execute(sql: "UPDATE nimbus_sessions SET user_id = ?, record = ?, expires_ms = ?, version = ? WHERE key = ? AND version = ?",
                           arguments: [session.userID, text, Self.millis(session.expiresAt), session.version, session.key, expectedVersion])
            return db.changesCount == 1
        }
    }

    public func remove(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return try await queue.write { db in
            var removed = 0
            for key in keys {
                try db.execute(sql: "DELETE FROM nimbus_sessions WHERE key = ?", arguments: [key])
                removed += db.changesCount
            }
            return removed
        }
    }

    public func sessions(ofUser userID: String, now: Date) async throws -> [SessionRecord] {
        let texts = try await queue.read { db in
            try String.fetchAll(db, sql: "SELECT record FROM nimbus_sessions WHERE user_id = ? AND expires_ms > ? ORDER BY created_ms, key",
                                arguments: [userID, Self.millis(now)])
        }
        return try texts.map(Self.record)
    }

    public func purge(now: Date) async throws -> Int {
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM nimbus_sessions WHERE expires_ms <= ?", arguments: [Self.millis(now)])
            return db.changesCount
        }
    }
}

extension URLOpenerRegistry where Resource == any SessionStoreDriver {
    /// Adds `sqlite://PATH` (`sqlite:///abs/path`, or `sqlite://./rel/path` from the working directory).
    public func withSQLite() -> Self {
        var copy = self
        copy.register("sqlite") { url in
            try url.options.validate(known: [], for: "SQLite sessions")
            return try SQLiteSessionStore(path: try url.localFilePath(example: "sqlite://./.nimbus/sessions.sqlite"))
        }
        return copy
    }
}
