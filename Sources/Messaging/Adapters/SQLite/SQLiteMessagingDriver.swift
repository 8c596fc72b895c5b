import Foundation
import GRDB
import NIOCore
import NimbusCore
import NimbusMessaging

/// The embedded broker: topics, fan-out subscriptions, leases and dead letters in one SQLite
/// file (or in memory for `mem://`). No server, no account.
///
/// Every call is one SQLite transaction in WAL mode, so a publish that returned is on disk and
/// survives `kill -9` of the process, and several processes can share one file (a lease taken by
/// one is respected by the others). Each subscription holds its own copy of every message
/// published after it was created. Leases, delays and deduplication windows follow wall-clock
/// time (they survive restarts), read through an injectable `Clock` so tests move time instead
/// of sleeping; how long a receive waits for a message is real time.
///
/// ```swift
/// let messaging = Messaging(driver: try SQLiteMessagingDriver(path: ".nimbus/queue.sqlite"))
/// ```
public final class SQLiteMessagingDriver<C: Clock<Duration>>: MessagingDriver, Sendable {
    /// Settings of the embedded broker.
    public struct Configuration: Sendable {
        /// How long a deduplication id suppresses repeats (SQS FIFO's 5 minutes by default).
        public var deduplicationWindow: Duration
        /// How often a waiting receive looks for messages published by other processes (publishes
        /// from this process wake it at once).
        public var pollInterval: Duration

        /// Creates settings.
        public init(deduplicationWindow: Duration = .seconds(300), pollInterval: Duration = .milliseconds(100)) {
            self.deduplicationWindow = deduplicationWindow
            self.pollInterval = pollInterval
        }
    }

    public var provider: String { isInMemory ? "memory" : "sqlite" }
    public var capabilities: MessagingCapabilities {
        var capabilities: MessagingCapabilities = [.orderingKeys, .delayedDelivery, .deduplication, .deadLetters, .deliveryCount, .extendDeadline, .delayedRedelivery]
        if !isInMemory { capabilities.insert(.durable) }
        return capabilities
    }

    /// Where the file is; `nil` in memory.
    public let path: String?
    /// The settings it was made with.
    public let configuration: Configuration
    private var isInMemory: Bool { path == nil }
    private let queue: DatabaseQueue
    private let clock: C
    private let origin: (instant: C.Instant, milliseconds: Int64)
    private let published = AsyncSignal()

    /// Opens (creating) the file at `path`, or an in-memory store when `path` is `nil`.
    /// - Throws: `unavailable` when the file cannot be opened or migrated.
    public init(path: String?, configuration: Configuration = .init(), clock: C) throws {
        self.path = path
        self.configuration = configuration
        self.clock = clock
        self.origin = (clock.now, Int64((Date().timeIntervalSince1970 * 1000).rounded()))
        do {
            var settings = GRDB.Configuration()
            settings.busyMode = .timeout(10)
            settings.foreignKeysEnabled = true
            if path != nil {
                settings.prepareDatabase { db in
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                    try db.execute(sql: "PRAGMA synchronous = NORMAL")
                }
            }
            queue = try path.map { try DatabaseQueue(path: $0, configuration: settings) } ?? DatabaseQueue(configuration: settings)
            try Self.migrator.migrate(queue)
        } catch {
            throw NimbusError(.unavailable, "cannot open the message store at \(path ?? ":memory:"): \(error)", underlying: error)
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE nimbus_topics (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
                CREATE TABLE nimbus_subscriptions (
                    name TEXT PRIMARY KEY,
                    topic TEXT NOT NULL REFERENCES nimbus_topics(name) ON DELETE CASCADE,
                    ack_deadline_ms INTEGER NOT NULL, dead_letter_topic TEXT, max_deliveries INTEGER,
                    ordered INTEGER NOT NULL, created_at INTEGER NOT NULL);
                CREATE INDEX nimbus_subscriptions_topic ON nimbus_subscriptions (topic);
                CREATE TABLE nimbus_messages (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    subscription TEXT NOT NULL REFERENCES nimbus_subscriptions(name) ON DELETE CASCADE,
                    message_id TEXT NOT NULL, body BLOB NOT NULL, attributes TEXT, ordering_key TEXT,
                    published_at INTEGER NOT NULL, visible_at INTEGER NOT NULL,
                    deliveries INTEGER NOT NULL DEFAULT 0, receipt TEXT);
                CREATE INDEX nimbus_messages_next ON nimbus_messages (subscription, seq);
                CREATE INDEX nimbus_messages_key ON nimbus_messages (subscription, ordering_key, seq) WHERE ordering_key IS NOT NULL;
                CREATE TABLE nimbus_deduplication (
                    topic TEXT NOT NULL, deduplication_id TEXT NOT NULL, message_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
                    PRIMARY KEY (topic, deduplication_id));
                """)
        }
        return migrator
    }

    /// Milliseconds since 1970 on the driver's clock.
    private var now: Int64 { origin.milliseconds + origin.instant.duration(to: clock.now).nimbusMilliseconds }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so two
    /// processes never both read a message as ready and lease it.
    private func transaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await queue.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                guard let result else { throw NimbusError(.internal, "message store transaction produced no result") }
                return result
            }
        } catch let error as NimbusError {
            throw error
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            throw NimbusError(.unavailable, "the message store at \(path ?? ":memory:") is locked by another process: \(error)", underlying: error)
        } catch {
            throw NimbusError(.internal, "message store at \(path ?? ":memory:"): \(error)", underlying: error)
        }
    }

    // MARK: Topics and subscriptions

    public func createTopic(_ topic: String) async throws -> Bool {
        let now = now
        return try await transaction { db in
            try db.execute(sql: "INSERT OR IGNORE INTO nimbus_topics (name, created_at) VALUES (?, ?)", arguments: [topic, now])
            return db.changesCount == 1
        }
    }

    public func deleteTopic(_ topic: String) async throws {
        try await transaction { db in
            try db.execute(sql: "DELETE FROM nimbus_topics WHERE name = ?", arguments: [topic])
            guard db.changesCount == 1 else { throw NimbusError(.notFound, "topic '\(topic)' does not exist") }
        }
    }

    public func topics() async throws -> [String] {
        try await queue.read { db in try String.fetchAll(db, sql: "SELECT name FROM nimbus_topics ORDER BY name") }
    }

    public func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions) async throws -> Bool {
        let now = now
        return try await transaction { db in
            if let existing = try String.fetchOne(db, sql: "SELECT topic FROM nimbus_subscriptions WHERE name = ?", arguments: [subscription]) {
                guard existing == topic else {
                    throw NimbusError(.alreadyExists, "subscription '\(subscription)' already exists on topic '\(existing)', not '\(topic)'")
                }
                return false
            }
            guard try Self.topicExists(db, topic) else {
                throw NimbusError(.notFound, "topic '\(topic)' does not exist; create it first")
            }
            try db.execute(sql: """
                INSERT INTO nimbus_subscriptions (name, topic, ack_deadline_ms, dead_letter_topic, max_deliveries, ordered, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [subscription, topic, options.ackDeadline.nimbusMilliseconds, options.deadLetter?.topic,
                                 options.deadLetter?.maxDeliveries, options.ordered, now])
            return true
        }
    }

    public func deleteSubscription(_ subscription: String) async throws {
        try await transaction { db in
            try db.execute(sql: "DELETE FROM nimbus_subscriptions WHERE name = ?", arguments: [subscription])
            guard db.changesCount == 1 else { throw NimbusError(.notFound, "subscription '\(subscription)' does not exist") }
        }
    }

    public func subscriptions(of topic: String) async throws -> [String] {
        try await queue.read { db in
            guard try Self.topicExists(db, topic) else { throw NimbusError(.notFound, "topic '\(topic)' does not exist") }
            return try String.fetchAll(db, sql: "SELECT name FROM nimbus_subscriptions WHERE topic = ? ORDER BY name", arguments: [topic])
        }
    }

    private static func topicExists(_ db: Database, _ topic: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM nimbus_topics WHERE name = ?)", arguments: [topic]) ?? false
    }

    // MARK: Publishing

    public func publish(_ messages: [Message], to topic: String) async throws -> [String] {
        let now = now, window = configuration.deduplicationWindow.nimbusMilliseconds
        let ids = try await transaction { db -> [String] in
            guard try Self.topicExists(db, topic) else {
                throw NimbusError(.notFound, "topic '\(topic)' does not exist; create it first")
            }
            if messages.contains(where: { $0.deduplicationID != nil }) {
                try db.execute(sql: "DELETE FROM nimbus_deduplication WHERE topic = ? AND expires_at <= ?", arguments: [topic, now])
            }
            var ids: [String] = []
            for message in messages {
                if let deduplicationID = message.deduplicationID {
                    if let first = try String.fetchOne(db, sql: "SELECT message_id FROM nimbus_deduplication WHERE topic = ? AND deduplication_id = ?",
                                                       arguments: [topic, deduplicationID]) {
                        ids.append(first)
                        continue
                    }
                }
                let id = IDGenerator.shared.ulid().description
                if let deduplicationID = message.deduplicationID {
                    try db.execute(sql: "INSERT INTO nimbus_deduplication (topic, deduplication_id, message_id, expires_at) VALUES (?, ?, ?, ?)",
                                   arguments: [topic, deduplicationID, id, now + window])
                }
                try Self.insert(db, id: id, body: message.body, attributes: message.attributes, orderingKey: message.orderingKey,
                                publishedAt: now, visibleAt: now + (message.delay?.nimbusMilliseconds ?? 0), topic: topic)
                ids.append(id)
            }
            return ids
        }
        published.signal()
        return ids
    }

    /// One copy of the message for every subscription of `topic`.
    private static func insert(_ db: Database, id: String, body: ByteBuffer, attributes: [String: String], orderingKey: String?,
                               publishedAt: Int64, visibleAt: Int64, topic: String) throws {
        let attributesJSON = try StoredAttributes.encode(attributes)
        try db.execute(sql: """
            INSERT INTO nimbus_messages (subscription, message_id, body, attributes, ordering_key, published_at, visible_at)
            SELECT name, ?, ?, ?, ?, ?, ? FROM nimbus_subscriptions WHERE topic = ?
            """, arguments: [id, Data(body.readableBytesView), attributesJSON, orderingKey, publishedAt, visibleAt, topic])
    }

    // MARK: Receiving

    /// Waits in real time (a receive's wait is the caller's patience, not message time): this
    /// process's publishes wake it at once, other processes' are seen on the next poll.
    public func receive(from subscription: String, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        let start = ContinuousClock.now
        while true {
            let version = published.version
            let messages = try await take(maxMessages, from: subscription)
            let waited = ContinuousClock.now - start
            if !messages.isEmpty || waited >= wait { return messages }
            _ = try await published.wait(since: version, timeout: min(configuration.pollInterval, wait - waited), clock: ContinuousClock())
        }
    }

    private struct SubscriptionRow {
        var ackDeadline: Int64
        var deadLetterTopic: String?
        var maxDeliveries: Int?
        var ordered: Bool
    }

    private func take(_ limit: Int, from subscription: String) async throws -> [DeliveredMessage] {
        let now = now
        return try await transaction { db -> [DeliveredMessage] in
            guard let row = try Row.fetchOne(db, sql: "SELECT ack_deadline_ms, dead_letter_topic, max_deliveries, ordered FROM nimbus_subscriptions WHERE name = ?",
                                             arguments: [subscription]) else {
                throw NimbusError(.notFound, "subscription '\(subscription)' does not exist")
            }
            let settings = SubscriptionRow(ackDeadline: row[0], deadLetterTopic: row[1], maxDeliveries: row[2], ordered: row[3])
            var delivered: [DeliveredMessage] = []
            // Dead-lettered candidates make room for more, so look again until the batch is full or nothing is ready.
            while delivered.count < limit {
                let candidates = try Row.fetchAll(db, sql: """
                    SELECT seq, message_id, body, attributes, ordering_key, published_at, deliveries FROM nimbus_messages AS m
                    WHERE subscription = ? AND visible_at <= ?
                      AND (? = 0 OR ordering_key IS NULL OR NOT EXISTS (
                          SELECT 1 FROM nimbus_messages AS e WHERE e.subscription = m.subscription AND e.ordering_key = m.ordering_key AND e.seq < m.seq))
                    ORDER BY seq LIMIT ?
                    """, arguments: [subscription, now, settings.ordered, limit - delivered.count])
                if candidates.isEmpty { break }
                for candidate in candidates {
                    let seq: Int64 = candidate["seq"], deliveries: Int = candidate["deliveries"]
                    let attributes = try Self.attributes(candidate["attributes"])
                    if let maxDeliveries = settings.maxDeliveries, let topic = settings.deadLetterTopic, deliveries >= maxDeliveries {
                        try Self.deadLetter(db, seq: seq, from: subscription, to: topic, now: now)
                        continue
                    }
                    let receipt = "\(seq).\(IDGenerator.shared.ulid())"
                    try db.execute(sql: "UPDATE nimbus_messages SET deliveries = deliveries + 1, visible_at = ?, receipt = ? WHERE seq = ?",
                                   arguments: [now + settings.ackDeadline, receipt, seq])
                    let body: Data = candidate["body"]
                    let publishedAt: Int64 = candidate["published_at"]
                    delivered.append(DeliveredMessage(
                        id: candidate["message_id"], receipt: receipt, body: ByteBuffer(bytes: body), attributes: attributes,
                        orderingKey: candidate["ordering_key"], deliveryAttempt: deliveries + 1,
                        publishedAt: Date(timeIntervalSince1970: Double(publishedAt) / 1000)))
                }
            }
            return delivered
        }
    }

    private static func attributes(_ json: String?) throws -> [String: String] {
        guard let json else { return [:] }
        return try StoredAttributes.decode(Array(json.utf8), of: "a stored message")
    }

    /// Publishes the message at `seq` to `topic` (with where it came from) and removes it from `subscription`.
    private static func deadLetter(_ db: Database, seq: Int64, from subscription: String, to topic: String, now: Int64) throws {
        guard let row = try Row.fetchOne(db, sql: "SELECT message_id, body, attributes, ordering_key, deliveries FROM nimbus_messages WHERE seq = ?",
                                         arguments: [seq]) else { return }
        let attributes = DeadLetterAttribute.marking(try Self.attributes(row["attributes"]), subscription: subscription,
                                                     messageID: row["message_id"], deliveries: row["deliveries"])
        if try topicExists(db, topic) {
            let body: Data = row["body"]
            try insert(db, id: IDGenerator.shared.ulid().description, body: ByteBuffer(bytes: body), attributes: attributes, orderingKey: row["ordering_key"],
                       publishedAt: now, visibleAt: now, topic: topic)
        }
        try db.execute(sql: "DELETE FROM nimbus_messages WHERE seq = ?", arguments: [seq])
    }

    /// The message a receipt names, if the receipt is still the current lease.
    private static func leased(_ db: Database, _ receipt: String, _ subscription: String) throws -> Int64 {
        guard let dot = receipt.firstIndex(of: "."), let seq = Int64(receipt[..<dot]),
              try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM nimbus_messages WHERE seq = ? AND subscription = ? AND receipt = ?)",
                                arguments: [seq, subscription, receipt]) == true
        else {
            throw NimbusError(.failedPrecondition, "receipt \(receipt.prefix(40)) on '\(subscription)' is no longer the message's lease: it was settled, or its deadline passed and it was delivered again")
        }
        return seq
    }

    public func ack(_ receipts: [String], on subscription: String) async throws {
        try await transaction { db in
            for receipt in receipts {
                let seq = try Self.leased(db, receipt, subscription)
                try db.execute(sql: "DELETE FROM nimbus_messages WHERE seq = ?", arguments: [seq])
            }
        }
    }

    public func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws {
        let now = now
        try await transaction { db in
            for receipt in receipts {
                let seq = try Self.leased(db, receipt, subscription)
                switch disposition {
                case .requeue(let delay):
                    try db.execute(sql: "UPDATE nimbus_messages SET visible_at = ?, receipt = NULL WHERE seq = ?", arguments: [now + delay.nimbusMilliseconds, seq])
                case .deadLetter:
                    guard let topic = try String.fetchOne(db, sql: "SELECT dead_letter_topic FROM nimbus_subscriptions WHERE name = ?", arguments: [subscription]) else {
                        throw NimbusError(.failedPrecondition, "subscription '\(subscription)' has no dead-letter policy; nack to requeue, or create it with one")
                    }
                    try Self.deadLetter(db, seq: seq, from: subscription, to: topic, now: now)
                }
            }
        }
        published.signal()
    }

    public func extendDeadline(_ receipts: [String], on subscription: String, to deadline: Duration) async throws {
        let visibleAt = now + deadline.nimbusMilliseconds
        try await transaction { db in
            for receipt in receipts {
                let seq = try Self.leased(db, receipt, subscription)
                try db.execute(sql: "UPDATE nimbus_messages SET visible_at = ? WHERE seq = ?", arguments: [visibleAt, seq])
            }
        }
    }

    public func close() async throws {
        try queue.close()
    }
}

extension SQLiteMessagingDriver where C == ContinuousClock {
    /// Opens (creating) the file at `path`, or an in-memory store when `path` is `nil`.
    public convenience init(path: String?, configuration: Configuration = .init()) throws {
        try self.init(path: path, configuration: configuration, clock: ContinuousClock())
    }
}

extension URLOpenerRegistry where Resource == any MessagingDriver {
    /// Adds `sqlite:///path/to/file.sqlite` (`sqlite://./relative.sqlite` for a relative path) and
    /// `mem://` (the same store in process memory, volatile). `sqlite://` options: `poll` (how often
    /// a waiting receive looks for other processes' messages, e.g. `50ms`), `dedup_window` (e.g. `10m`).
    public func withSQLite() -> Self {
        var copy = self
        copy.register("sqlite") { url in
            try url.options.validate(known: ["poll", "dedup_window"], for: "sqlite://")
            let path = try url.localFilePath(example: "sqlite:///var/lib/app/queue.sqlite")
            return try SQLiteMessagingDriver(path: path, configuration: try Self.sqliteConfiguration(url))
        }
        return copy.withInProcess { try SQLiteMessagingDriver(path: nil) }
    }

    private static func sqliteConfiguration(_ url: OpenURL) throws -> SQLiteMessagingDriver<ContinuousClock>.Configuration {
        var configuration = SQLiteMessagingDriver<ContinuousClock>.Configuration()
        if let poll = try url.options.duration("poll") { configuration.pollInterval = max(.milliseconds(1), poll) }
        if let window = try url.options.duration("dedup_window") { configuration.deduplicationWindow = window }
        return configuration
    }
}
