import Foundation
import GRDB
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusMessagingSQLite
import Testing

@Suite("Transactional outbox (SQLite)", .timeLimit(.minutes(1)))
struct OutboxTests {
    func setUp() async throws -> (DatabaseQueue, SQLiteOutbox, Messaging) {
        let queue = try DatabaseQueue(path: temporaryStore())
        try await queue.write { try $0.execute(sql: "CREATE TABLE orders (id TEXT PRIMARY KEY, state TEXT NOT NULL)") }
        let outbox = try SQLiteOutbox(queue: queue)
        let messaging = Messaging(driver: try SQLiteMessagingDriver(path: nil))
        try await messaging.createTopic("orders")
        try await messaging.createSubscription("audit", topic: "orders")
        return (queue, outbox, messaging)
    }

    @Test("an entry goes out only if its transaction commits, in order, once, with its attributes")
    func commitAndRollback() async throws {
        let (queue, outbox, messaging) = try await setUp()
        for id in ["o1", "o2", "o3"] {
            try await queue.write { db in
                try db.execute(sql: "INSERT INTO orders (id, state) VALUES (?, 'paid')", arguments: [id])
                try SQLiteOutbox.add(Message("paid \(id)", attributes: ["order": id]), to: "orders", in: db)
            }
        }
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await queue.write { db in
                try db.execute(sql: "INSERT INTO orders (id, state) VALUES ('o4', 'paid')")
                try SQLiteOutbox.add(Message("paid o4"), to: "orders", in: db)
                throw Abort()
            }
        }
        let relay = OutboxRelay(store: outbox, messaging: messaging)
        #expect(try await relay.publishPending() == 3)
        #expect(try await relay.publishPending() == 0, "published entries are not sent again")
        let received = try await messaging.subscription("audit").receive(maxMessages: 10)
        #expect(received.map(\.text) == ["paid o1", "paid o2", "paid o3"])
        #expect(received.map { $0.attributes["order"] } == ["o1", "o2", "o3"])
        #expect(try await outbox.purge(publishedBefore: Date().addingTimeInterval(60)) == 3)
    }

    @Test("a broker failure stops the pass at that entry; the next pass starts there, so order holds and nothing is lost")
    func failureKeepsOrder() async throws {
        let (queue, outbox, messaging) = try await setUp()
        try await queue.write { db in
            try SQLiteOutbox.add(Message("first"), to: "orders", in: db)
            try SQLiteOutbox.add(Message("to a missing topic"), to: "missing", in: db)
            try SQLiteOutbox.add(Message("third"), to: "orders", in: db)
        }
        let relay = OutboxRelay(store: outbox, messaging: messaging)
        let error = await #expect(throws: NimbusError.self) { try await relay.publishPending() }
        #expect(error?.code == .notFound)
        #expect(try await outbox.pending(limit: 10).map(\.topic) == ["missing", "orders"])
        try await messaging.createTopic("missing")
        #expect(try await relay.publishPending() == 2)
        #expect(try await messaging.subscription("audit").receive(maxMessages: 10).map(\.text) == ["first", "third"])
    }

    @Test("entries carry the deduplication id outbox-<sequence> where the broker deduplicates, so a repeated pass is delivered once")
    func deduplication() async throws {
        let (queue, outbox, messaging) = try await setUp()
        try await queue.write { try SQLiteOutbox.add(Message("once"), to: "orders", in: $0) }
        let entry = try #require(try await outbox.pending(limit: 1).first)
        // A relay that crashed after publishing and before marking: the same entry is published again.
        let relay = OutboxRelay(store: outbox, messaging: messaging)
        try await messaging.publish(Message("once", deduplicationID: "outbox-\(entry.sequence)"), to: "orders")
        #expect(try await relay.publishPending() == 1)
        #expect(try await messaging.subscription("audit").receive(maxMessages: 10).map(\.text) == ["once"])
    }

    @Test("run() publishes what is added while it runs and stops when cancelled")
    func runLoop() async throws {
        let (queue, outbox, messaging) = try await setUp()
        let relay = OutboxRelay(store: outbox, messaging: messaging, configuration: .init(pollInterval: .milliseconds(20)))
        let running = Task { try await relay.run() }
        try await queue.write { try SQLiteOutbox.add(Message("live"), to: "orders", in: $0) }
        let received = try await messaging.subscription("audit").receive(maxMessages: 1, wait: .seconds(10))
        #expect(received.map(\.text) == ["live"])
        running.cancel()
        try await running.value
    }
}
