import Foundation
import Logging
import NIOCore
import NimbusCore
import NimbusMessaging
@testable import NimbusMessagingPostgres
import NimbusMessagingSQLite
import NimbusPostgres
import NimbusTesting
import PostgresNIO
import Synchronization
import Testing

@Suite("Transactional outbox (real PostgreSQL)", .requires(.postgres), .timeLimit(.minutes(3)))
struct PostgresOutboxTests {
    let logger = Logger(label: "test.outbox")

    func setUp() async throws -> (PostgresPool, PostgresOutbox, Messaging) {
        let pool = try PostgresPool(url: OpenURL(try await Peer.freshPostgresDatabase(prefix: "nimbus_outbox")))
        try await pool.client.query("CREATE TABLE orders (id TEXT PRIMARY KEY, state TEXT NOT NULL)", logger: logger)
        let outbox = try await PostgresOutbox(pool: pool)
        let messaging = Messaging(driver: try SQLiteMessagingDriver(path: nil))
        for topic in ["orders", "invoices"] {
            try await messaging.createTopic(topic)
            try await messaging.createSubscription(topic + "-audit", topic: topic)
        }
        return (pool, outbox, messaging)
    }

    func drain(_ messaging: Messaging, _ subscription: String) async throws -> [ReceivedMessage] {
        var all: [ReceivedMessage] = []
        while true {
            let batch = try await messaging.subscription(subscription).receive(maxMessages: 100, wait: .milliseconds(50))
            if batch.isEmpty { return all }
            for message in batch { try await message.ack() }
            all += batch
        }
    }

    @Test("an entry goes out only if its transaction commits, in order, once, with its attributes; published entries are purged")
    func commitAndRollback() async throws {
        let (pool, outbox, messaging) = try await setUp()
        for id in ["o1", "o2", "o3"] {
            try await pool.client.withTransaction(logger: logger) { connection in
                try await connection.query("INSERT INTO orders (id, state) VALUES (\(id), 'paid')", logger: logger)
                try await PostgresOutbox.add(Message("paid \(id)", attributes: ["order": id]), to: "orders", on: connection, logger: logger)
            }
        }
        struct Abort: Error {}
        let aborted = await #expect(throws: PostgresTransactionError.self) {
            try await pool.client.withTransaction(logger: logger) { connection in
                try await connection.query("INSERT INTO orders (id, state) VALUES ('o4', 'paid')", logger: logger)
                try await PostgresOutbox.add(Message("paid o4"), to: "orders", on: connection, logger: logger)
                throw Abort()
            }
        }
        #expect(aborted?.closureError is Abort && aborted?.rollbackError == nil)
        let relay = OutboxRelay(store: outbox, messaging: messaging)
        #expect(try await relay.publishPending() == 3)
        #expect(try await relay.publishPending() == 0, "published entries are not sent again")
        let received = try await drain(messaging, "orders-audit")
        #expect(received.map(\.text) == ["paid o1", "paid o2", "paid o3"])
        #expect(received.map { $0.attributes["order"] } == ["o1", "o2", "o3"])
        #expect(try await outbox.purge(publishedBefore: Date().addingTimeInterval(60)) == 3)
        #expect(try await outbox.purge(publishedBefore: Date().addingTimeInterval(60)) == 0)
        try await messaging.close()
        await pool.close()
    }

    @Test("16 concurrent writers that commit slowly: each topic's entries go out in commit order while the relay runs")
    func concurrentWritersKeepOrder() async throws {
        let (pool, outbox, messaging) = try await setUp()
        let relay = OutboxRelay(store: outbox, messaging: messaging, configuration: .init(batchSize: 10, pollInterval: .milliseconds(5)))
        let running = Task { try await relay.run() }
        let logger = logger
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<16 {
                group.addTask {
                    for step in 0..<8 {
                        let topic = writer % 2 == 0 ? "orders" : "invoices"
                        try await pool.client.withTransaction(logger: logger) { connection in
                            try await PostgresOutbox.add(Message("\(writer)-\(step)", attributes: ["writer": String(writer)]), to: topic,
                                                         on: connection, logger: logger)
                            // The transaction goes on after the entry got its sequence number: a later one must not overtake it.
                            try await Task.sleep(for: .milliseconds(Int64((writer * 7 + step * 3) % 11)))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        // Wait for the relay to catch up.
        for _ in 0..<1500 {      // up to 30 s on a machine busy with other tests
            if try await outbox.pendingCount() == 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        running.cancel()
        _ = try? await running.value
        for topic in ["orders", "invoices"] {
            let received = try await drain(messaging, topic + "-audit")
            #expect(received.count == 64, "\(topic)")
            // Each writer's own entries keep their order, and the relay sent them in sequence order.
            var lastStep: [String: Int] = [:]
            for message in received {
                let parts = message.text.split(separator: "-").compactMap { Int($0) }
                let writer = String(parts[0])
                #expect(parts[1] > lastStep[writer, default: -1], "\(topic): \(message.text) after step \(lastStep[writer, default: -1])")
                lastStep[writer] = parts[1]
            }
            #expect(Set(received.map(\.text)).count == 64, "each entry once")
        }
        #expect(try await outbox.publishedOrderIsSequenceOrder())
        try await messaging.close()
        await pool.close()
    }

    @Test("two relays on one table: one holds the lease and publishes everything once; when it stops, the other takes over")
    func oneRelayAtATime() async throws {
        let (pool, first, messaging) = try await setUp()
        // Leases of 5 s: long enough that a busy machine does not let one lapse between two steps of the test.
        let second = try await PostgresOutbox(pool: pool, leaseDuration: .seconds(5))
        let short = try await PostgresOutbox(pool: pool, leaseDuration: .seconds(5))
        for index in 0..<20 {
            try await pool.client.withTransaction(logger: logger) { connection in
                try await PostgresOutbox.add(Message("m\(index)"), to: "orders", on: connection, logger: logger)
            }
        }
        // `short` takes the lease and publishes; `second` sees nothing while the lease holds.
        #expect(try await OutboxRelay(store: short, messaging: messaging).publishPending() == 20)
        try await pool.client.withTransaction(logger: logger) { connection in
            try await PostgresOutbox.add(Message("late"), to: "orders", on: connection, logger: logger)
        }
        #expect(try await second.pending(limit: 10).isEmpty, "the lease is held by another relay")
        #expect(try await first.pending(limit: 10).isEmpty)
        try await Task.sleep(for: .milliseconds(5300))
        #expect(try await second.pending(limit: 10).map { String(buffer: $0.message.body) } == ["late"], "after the lease ran out, another relay takes over")
        #expect(try await drain(messaging, "orders-audit").count == 20)
        try await messaging.close()
        await pool.close()
    }
}

extension PostgresOutbox {
    func pendingCount() async throws -> Int {
        let rows = try await pool.client.query("SELECT count(*)::bigint FROM nimbus_outbox WHERE published_at IS NULL", logger: Logger(label: "test"))
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }

    /// Per topic, publication times never go down as sequence numbers go up.
    func publishedOrderIsSequenceOrder() async throws -> Bool {
        let rows = try await pool.client.query("""
            SELECT count(*)::bigint FROM (
              SELECT published_at < lag(published_at) OVER (PARTITION BY topic ORDER BY seq) AS backwards FROM nimbus_outbox) AS ordered
            WHERE backwards
            """, logger: Logger(label: "test"))
        for try await count in rows.decode(Int64.self) { return count == 0 }
        return false
    }
}
