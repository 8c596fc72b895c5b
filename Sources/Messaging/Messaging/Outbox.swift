import Foundation
import Logging
import NimbusCore

/// A message written to an outbox in the same transaction as the state change it announces,
/// waiting for a relay to publish it.
public struct OutboxEntry: Sendable, Hashable {
    /// The outbox's sequence number: entries are published in this order.
    public var sequence: Int64
    /// Where it goes.
    public var topic: String
    /// What goes.
    public var message: Message

    /// Creates an entry.
    public init(sequence: Int64, topic: String, message: Message) {
        self.sequence = sequence
        self.topic = topic
        self.message = message
    }
}

/// Where outbox entries wait: a table in the application's own database (SQLite, PostgreSQL).
/// Writing an entry is the store's own API, called inside the application's transaction; the
/// relay only reads what is pending and marks what it published.
public protocol OutboxStore: Sendable {
    /// Up to `limit` unpublished entries, oldest first.
    func pending(limit: Int) async throws -> [OutboxEntry]
    /// Marks entries published (they are kept for `retention`, then removed by ``purge(before:)``).
    func markPublished(_ sequences: [Int64]) async throws
    /// Removes entries published before `date`; returns how many.
    func purge(publishedBefore date: Date) async throws -> Int
}

/// Publishes an outbox's entries, in order, at least once: the **transactional outbox** pattern.
///
/// A service that must change its state *and* announce it cannot do both atomically against a
/// database and a broker; instead it writes the message into an outbox table in the same
/// transaction as the change, and this relay publishes it afterwards. A crash between publishing
/// and marking publishes the entry again on restart — where the broker deduplicates, each entry
/// goes out with the deduplication id `outbox-<sequence>`, so consumers see it once.
///
/// ```swift
/// try await database.write { db in
///     try db.execute(sql: "UPDATE orders SET state = 'paid' WHERE id = ?", arguments: [id])
///     try SQLiteOutbox.add(Message(json: OrderPaid(id: id)), to: "orders", in: db)
/// }
/// let relay = OutboxRelay(store: try SQLiteOutbox(path: "app.sqlite"), messaging: messaging)
/// try await relay.run()          // or add it to a ServiceGroup; relay.publishPending() for one pass
/// ```
public struct OutboxRelay: Sendable {
    /// How the relay works.
    public struct Configuration: Sendable {
        /// Entries read and published per pass.
        public var batchSize: Int
        /// How long to wait when the outbox is empty (or the broker failed) before looking again.
        public var pollInterval: Duration
        /// How long published entries are kept before they are purged.
        public var retention: Duration

        /// Creates settings (batches of 100, 200 ms polls, one day of retention).
        public init(batchSize: Int = 100, pollInterval: Duration = .milliseconds(200), retention: Duration = .seconds(86_400)) {
            self.batchSize = max(1, batchSize)
            self.pollInterval = pollInterval
            self.retention = retention
        }
    }

    /// The outbox.
    public let store: any OutboxStore
    /// Where entries are published.
    public let messaging: Messaging
    /// The settings.
    public let configuration: Configuration
    private let logger: Logger

    /// Creates a relay.
    public init(store: some OutboxStore, messaging: Messaging, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.messaging.outbox")) {
        self.store = store
        self.messaging = messaging
        self.configuration = configuration
        self.logger = logger
    }

    /// Publishes what is pending, in order, until the outbox is empty; returns how many entries went out.
    /// An entry that fails stops the pass (later entries wait, so the order holds) and the error is thrown.
    @discardableResult
    public func publishPending() async throws -> Int {
        var published = 0
        while true {
            let entries = try await store.pending(limit: configuration.batchSize)
            if entries.isEmpty { return published }
            for entry in entries {
                var message = entry.message
                if message.deduplicationID == nil, messaging.capabilities.contains(.deduplication) {
                    message.deduplicationID = "outbox-\(entry.sequence)"
                }
                if message.delay != nil, !messaging.capabilities.contains(.delayedDelivery) { message.delay = nil }
                try await messaging.publish(message, to: entry.topic)
                try await store.markPublished([entry.sequence])
                published += 1
            }
        }
    }

    /// Publishes pending entries until the task is cancelled, looking again every `pollInterval`;
    /// broker errors are logged and retried on the next pass. Purges old published entries hourly.
    public func run() async throws {
        var lastPurge = ContinuousClock.now
        while !Task.isCancelled {
            do {
                try await publishPending()
            } catch is CancellationError {
                return
            } catch {
                logger.warning("outbox relay pass failed; retrying", metadata: ["error": "\(error)"])
            }
            if ContinuousClock.now - lastPurge > .seconds(3600) {
                lastPurge = ContinuousClock.now
                let cutoff = Date().addingTimeInterval(-Double(configuration.retention.components.seconds))
                if let removed = try? await store.purge(publishedBefore: cutoff), removed > 0 {
                    logger.debug("outbox purged", metadata: ["entries": "\(removed)"])
                }
            }
            do { try await Task.sleep(for: configuration.pollInterval) } catch { return }
        }
    }
}
