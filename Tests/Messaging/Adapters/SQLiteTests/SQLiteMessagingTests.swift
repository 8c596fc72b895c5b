import Foundation
import GRDB
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusMessagingConformance
import NimbusMessagingSQLite
import NimbusTesting
import Testing

func temporaryStore() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-messaging-\(IDGenerator.shared.ulid()).sqlite").path
}

@Suite("SQLite messaging driver", .timeLimit(.minutes(2)))
struct SQLiteMessagingTests {
    static let declared: MessagingCapabilities = [.durable, .orderingKeys, .delayedDelivery, .deduplication, .deadLetters, .deliveryCount, .extendDeadline, .delayedRedelivery]
    static let all = MessagingConformance.capabilities(declared)

    @Test("declares every capability on a file, all but durability in memory")
    func declaredCapabilities() throws {
        let file = try SQLiteMessagingDriver(path: temporaryStore(), clock: ManualClock())
        #expect(file.capabilities == Self.declared)
        let memory = try SQLiteMessagingDriver(path: nil, clock: ManualClock())
        #expect(memory.capabilities == file.capabilities.subtracting(.durable))
        #expect(MessagingConformance.suite.unsupported(by: Self.all).map(\.name) == [])
    }

    @Test("conformance, on a file", arguments: MessagingConformance.suite.checks(supportedBy: all))
    func conformanceFile(_ check: MessagingConformance.Check) async throws {
        let clock = ManualClock(), path = temporaryStore()
        try await check.run(MessagingConformance.Harness(
            makeDriver: { try SQLiteMessagingDriver(path: path, clock: clock) },
            advance: { clock.advance(by: $0) }))
    }

    @Test("conformance, in memory (mem://)", arguments: MessagingConformance.suite.checks(supportedBy: all.subtracting(["durable"])))
    func conformanceMemory(_ check: MessagingConformance.Check) async throws {
        let clock = ManualClock()
        let driver = try SQLiteMessagingDriver(path: nil, clock: clock)
        try await check.run(MessagingConformance.Harness(makeDriver: { SharedDriver(driver) }, advance: { clock.advance(by: $0) }))
    }

    @Test("two stores on one file never lease a message twice: 300 messages, 4 consumers, each delivered once")
    func competingProcesses() async throws {
        let path = temporaryStore()
        let setup = Messaging(driver: try SQLiteMessagingDriver(path: path))
        try await setup.createTopic("jobs")
        try await setup.createSubscription("workers", topic: "jobs", options: .init(ackDeadline: .seconds(600)))
        try await setup.publish((0..<300).map { Message("job \($0)") }, to: "jobs")
        try await setup.close()
        let seen = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    // Each consumer has its own connection to the file, as separate processes would.
                    let messaging = Messaging(driver: try SQLiteMessagingDriver(path: path))
                    return try await messaging.closing { messaging in
                        let subscription = messaging.subscription("workers")
                        var texts: [String] = []
                        while true {
                            let batch = try await subscription.receive(maxMessages: 7, wait: .milliseconds(200))
                            if batch.isEmpty { return texts }
                            for message in batch { texts.append(message.text); try await message.ack() }
                        }
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(seen.count == 300)
        #expect(Set(seen).count == 300)
    }

    @Test("a forged or stale receipt is failedPrecondition and settles nothing")
    func staleReceipts() async throws {
        let clock = ManualClock()
        let driver = try SQLiteMessagingDriver(path: nil, clock: clock)
        let messaging = Messaging(driver: driver)
        try await messaging.createTopic("t")
        try await messaging.createSubscription("s", topic: "t", options: .init(ackDeadline: .seconds(5)))
        try await messaging.publish(Message("m"), to: "t")
        let first = try #require(try await messaging.subscription("s").receive().first)
        for receipt in ["", "x", "1", "1.", "99.ABC", "-1.Z", "\(first.delivery.receipt)x"] {
            let error = await #expect(throws: NimbusError.self) { try await driver.ack([receipt], on: "s") }
            #expect(error?.code == .failedPrecondition, "\(receipt)")
        }
        clock.advance(by: .seconds(6))
        let second = try #require(try await messaging.subscription("s").receive().first)   // the lease passed: delivered again
        let stale = await #expect(throws: NimbusError.self) { try await first.ack() }
        #expect(stale?.code == .failedPrecondition)
        try await second.ack()
        #expect(try await messaging.subscription("s").receive(wait: .zero).isEmpty)
    }

    @Test("a store written by another program with bad attributes is dataLoss, not a crash")
    func corruptRow() async throws {
        let path = temporaryStore()
        let messaging = Messaging(driver: try SQLiteMessagingDriver(path: path))
        try await messaging.createTopic("t")
        try await messaging.createSubscription("s", topic: "t")
        try await messaging.publish(Message("m", attributes: ["a": "b"]), to: "t")
        let queue = try DatabaseQueue(path: path)
        try await queue.write { try $0.execute(sql: "UPDATE nimbus_messages SET attributes = '[1,2'") }
        try queue.close()
        let error = await #expect(throws: NimbusError.self) { _ = try await messaging.subscription("s").receive(wait: .zero) }
        #expect(error?.code == .dataLoss)
        try await messaging.close()
    }

    @Test("sqlite:// and mem:// open through the registry; unknown options are refused")
    func openers() async throws {
        let openers = URLOpenerRegistry.messaging.withSQLite()
        let path = temporaryStore()
        let file = try await Messaging.open("sqlite://\(path)?poll=20ms&dedup_window=1m", openers: openers)
        #expect(file.provider == "sqlite")
        #expect(file.driver(as: SQLiteMessagingDriver<ContinuousClock>.self)?.configuration.pollInterval == .milliseconds(20))
        try await file.close()
        let memory = try await Messaging.open("mem://", openers: openers)
        #expect(memory.provider == "memory")
        try await memory.close()
        let error = await #expect(throws: NimbusError.self) { _ = try await Messaging.open("sqlite://\(path)?pol=1s", openers: openers) }
        #expect(error?.code == .invalidArgument)
    }
}

/// One in-memory driver handed out again and again (its `close` does nothing), so a harness's
/// second driver sees the same store, as a second connection to a server would.
struct SharedDriver: MessagingDriver {
    let base: any MessagingDriver
    init(_ base: any MessagingDriver) { self.base = base }
    var provider: String { base.provider }
    var capabilities: MessagingCapabilities { base.capabilities }
    func createTopic(_ topic: String) async throws -> Bool { try await base.createTopic(topic) }
    func deleteTopic(_ topic: String) async throws { try await base.deleteTopic(topic) }
    func topics() async throws -> [String] { try await base.topics() }
    func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions) async throws -> Bool {
        try await base.createSubscription(subscription, topic: topic, options: options)
    }
    func deleteSubscription(_ subscription: String) async throws { try await base.deleteSubscription(subscription) }
    func subscriptions(of topic: String) async throws -> [String] { try await base.subscriptions(of: topic) }
    func publish(_ messages: [Message], to topic: String) async throws -> [String] { try await base.publish(messages, to: topic) }
    func receive(from subscription: String, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        try await base.receive(from: subscription, maxMessages: maxMessages, wait: wait)
    }
    func ack(_ receipts: [String], on subscription: String) async throws { try await base.ack(receipts, on: subscription) }
    func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws {
        try await base.nack(receipts, on: subscription, disposition: disposition)
    }
    func extendDeadline(_ receipts: [String], on subscription: String, to deadline: Duration) async throws {
        try await base.extendDeadline(receipts, on: subscription, to: deadline)
    }
}
