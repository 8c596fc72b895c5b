import Foundation
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusMessagingSQLite
import NimbusTesting
import Synchronization
import Testing

/// A driver that forwards to an in-memory store, counts calls, can fail the next calls with a
/// given error, and can pretend to lack capabilities.
final class ProbeDriver: MessagingDriver, Sendable {
    let base: SQLiteMessagingDriver<ManualClock>
    let clock = ManualClock()
    let declared: MessagingCapabilities
    private let state = Mutex<(calls: [String: Int], failures: [NimbusError])>(([:], []))

    init(capabilities: MessagingCapabilities? = nil) throws {
        base = try SQLiteMessagingDriver(path: nil, clock: clock)
        declared = capabilities ?? base.capabilities
    }

    var provider: String { "probe" }
    var capabilities: MessagingCapabilities { declared }
    func calls(_ operation: String) -> Int { state.withLock { $0.calls[operation, default: 0] } }
    func failNext(_ errors: NimbusError...) { state.withLock { $0.failures += errors } }

    private func enter(_ operation: String) throws {
        let failure = state.withLock { state -> NimbusError? in
            state.calls[operation, default: 0] += 1
            return state.failures.isEmpty ? nil : state.failures.removeFirst()
        }
        if let failure { throw failure }
    }

    func createTopic(_ topic: String) async throws -> Bool { try enter("createTopic"); return try await base.createTopic(topic) }
    func deleteTopic(_ topic: String) async throws { try enter("deleteTopic"); try await base.deleteTopic(topic) }
    func topics() async throws -> [String] { try enter("topics"); return try await base.topics() }
    func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions) async throws -> Bool {
        try enter("createSubscription"); return try await base.createSubscription(subscription, topic: topic, options: options)
    }
    func deleteSubscription(_ subscription: String) async throws { try enter("deleteSubscription"); try await base.deleteSubscription(subscription) }
    func subscriptions(of topic: String) async throws -> [String] { try enter("subscriptions"); return try await base.subscriptions(of: topic) }
    func publish(_ messages: [Message], to topic: String) async throws -> [String] { try enter("publish"); return try await base.publish(messages, to: topic) }
    func receive(from subscription: String, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        try enter("receive"); return try await base.receive(from: subscription, maxMessages: maxMessages, wait: wait)
    }
    func ack(_ receipts: [String], on subscription: String) async throws { try enter("ack"); try await base.ack(receipts, on: subscription) }
    func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws {
        try enter("nack"); try await base.nack(receipts, on: subscription, disposition: disposition)
    }
    func extendDeadline(_ receipts: [String], on subscription: String, to deadline: Duration) async throws {
        try enter("extendDeadline"); try await base.extendDeadline(receipts, on: subscription, to: deadline)
    }
}

@Suite("Messaging (portable layer)", .timeLimit(.minutes(1)))
struct MessagingTests {
    func setUp(_ driver: ProbeDriver, retry: RetryPolicy = .none) async throws -> Messaging {
        let messaging = Messaging(driver: driver, configuration: .init(retry: retry))
        try await messaging.createTopic("t")
        try await messaging.createSubscription("s", topic: "t")
        return messaging
    }

    @Test("bad names, bodies, attributes and batches are invalidArgument before the broker is called")
    func validation() async throws {
        let driver = try ProbeDriver()
        let messaging = try await setUp(driver)
        let before = driver.calls("publish")
        let cases: [(String, [Message])] = [
            ("", [Message("x")]), ("-dash", [Message("x")]), (".dot", [Message("x")]), ("has space", [Message("x")]), ("slash/name", [Message("x")]),
            (String(repeating: "n", count: 201), [Message("x")]),
            ("t", [Message(body: ByteBuffer(repeating: 0, count: 256 * 1024 + 1))]),
            ("t", [Message("x", attributes: Dictionary(uniqueKeysWithValues: (0..<65).map { ("a\($0)", "v") }))]),
            ("t", [Message("x", attributes: ["": "v"])]),
            ("t", [Message("x", attributes: ["k": String(repeating: "v", count: 1025)])]),
            ("t", [Message("x", orderingKey: "")]), ("t", [Message("x", deduplicationID: String(repeating: "d", count: 129))]),
            ("t", [Message("x", delay: .seconds(-1))]), ("t", [Message("x", delay: .seconds(8 * 86_400))]),
            ("t", (0..<1001).map { Message("\($0)") }),
        ]
        for (topic, messages) in cases {
            let error = await #expect(throws: NimbusError.self) { try await messaging.publish(messages, to: topic) }
            #expect(error?.code == .invalidArgument, "\(topic.prefix(20)) \(messages.count)")
        }
        #expect(driver.calls("publish") == before)
        for options in [SubscriptionOptions(ackDeadline: .milliseconds(999)), SubscriptionOptions(ackDeadline: .seconds(43_201)),
                        SubscriptionOptions(deadLetter: .init(topic: "d", maxDeliveries: 0)), SubscriptionOptions(deadLetter: .init(topic: "t"))] {
            let error = await #expect(throws: NimbusError.self) { try await messaging.createSubscription("s2", topic: "t", options: options) }
            #expect(error?.code == .invalidArgument)
        }
        #expect(try await messaging.subscription("s").receive(wait: .zero).isEmpty, "nothing reached the store")
    }

    @Test("options the broker lacks are unimplemented, not silently dropped")
    func capabilities() async throws {
        let driver = try ProbeDriver(capabilities: [])
        let messaging = try await setUp(driver)
        for message in [Message("x", orderingKey: "k"), Message("x", deduplicationID: "d"), Message("x", delay: .seconds(1))] {
            let error = await #expect(throws: NimbusError.self) { try await messaging.publish(message, to: "t") }
            #expect(error?.code == .unimplemented)
        }
        for options in [SubscriptionOptions(deadLetter: .init(topic: "dead")), SubscriptionOptions(ordered: true)] {
            let error = await #expect(throws: NimbusError.self) { try await messaging.createSubscription("s2", topic: "t", options: options) }
            #expect(error?.code == .unimplemented)
        }
        try await messaging.publish(Message("plain"), to: "t")
        let message = try #require(try await messaging.subscription("s").receive().first)
        let extend = await #expect(throws: NimbusError.self) { try await message.extendDeadline(to: .seconds(60)) }
        #expect(extend?.code == .unimplemented)
        let delayed = await #expect(throws: NimbusError.self) { try await message.nack(redeliverAfter: .seconds(5)) }
        #expect(delayed?.code == .unimplemented)
        // Request/reply needs a broker that has it.
        let request = await #expect(throws: NimbusError.self) { _ = try await messaging.request(Message("x"), on: "quote") }
        #expect(request?.code == .unimplemented)
        let serve = await #expect(throws: NimbusError.self) { _ = try await messaging.serve("quote") { $0 } }
        #expect(serve?.code == .unimplemented)
        let badSubject = await #expect(throws: NimbusError.self) { _ = try await messaging.request(Message("x"), on: "bad subject") }
        #expect(badSubject?.code == .invalidArgument)
    }

    @Test("a publish is retried only when every message has a deduplication id")
    func publishRetries() async throws {
        let driver = try ProbeDriver()
        let messaging = try await setUp(driver, retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2)))
        driver.failNext(NimbusError(.unavailable, "broker restarting"))
        let error = await #expect(throws: NimbusError.self) { try await messaging.publish(Message("once"), to: "t") }
        #expect(error?.code == .unavailable)
        #expect(driver.calls("publish") == 1)
        driver.failNext(NimbusError(.unavailable, "broker restarting"), NimbusError(.unavailable, "still restarting"))
        let id = try await messaging.publish(Message("safe", deduplicationID: "order-1"), to: "t")
        #expect(driver.calls("publish") == 4)
        let received = try await messaging.subscription("s").receive(maxMessages: 10)
        #expect(received.map(\.id) == [id])
        driver.failNext(NimbusError(.unavailable, "blip"))
        try await received[0].ack()   // acks are idempotent: retried
        #expect(driver.calls("ack") == 2)
    }

    @Test("drain gives back fetched-but-unhanded messages at once and waits for the handed-out one")
    func drain() async throws {
        let driver = try ProbeDriver()
        let messaging = try await setUp(driver)
        try await messaging.publish((0..<3).map { Message("d\($0)") }, to: "t")
        let subscription = messaging.subscription("s", flowControl: .init(batchSize: 3, wait: .milliseconds(100)))
        var iterator = subscription.messages().makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(subscription.outstanding.messages == 3)
        let acker = Task { try await Task.sleep(for: .milliseconds(200)); try await first.ack() }
        let settled = await subscription.drain(timeout: .seconds(10))
        try await acker.value
        #expect(settled)
        #expect(try await iterator.next() == nil)
        #expect(subscription.outstanding.messages == 0)
        #expect(try await subscription.receive().isEmpty, "a draining subscription fetches nothing")
        // The two given back are ready for another consumer now, not after the ack deadline.
        var other: [String] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while other.count < 2, ContinuousClock.now < deadline {
            other += try await messaging.subscription("s").receive(maxMessages: 10, wait: .milliseconds(500)).map(\.text)
        }
        #expect(Set(other) == ["d1", "d2"])
    }

    @Test("drain reports false when a handed-out message is never settled")
    func drainTimeout() async throws {
        let messaging = try await setUp(try ProbeDriver())
        try await messaging.publish(Message("stuck"), to: "t")
        let subscription = messaging.subscription("s")
        let held = try await subscription.receive()
        #expect(held.count == 1)
        #expect(await subscription.drain(timeout: .milliseconds(100)) == false)
    }

    @Test("an iterator dropped with buffered messages gives them back")
    func droppedIterator() async throws {
        let messaging = try await setUp(try ProbeDriver())
        try await messaging.publish((0..<4).map { Message("b\($0)") }, to: "t")
        let subscription = messaging.subscription("s", flowControl: .init(batchSize: 4))
        do {
            var iterator = subscription.messages().makeAsyncIterator()
            let first = try #require(try await iterator.next())
            try await first.ack()
        }
        #expect(subscription.outstanding.messages == 0)
        // Given back by a task the iterator's deinit starts; the driver's clock never moves here, so
        // nothing else could make them ready (their lease is 30 s of that clock).
        var rest: [String] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while rest.count < 3, ContinuousClock.now < deadline {
            for message in try await messaging.subscription("s").receive(maxMessages: 10, wait: .milliseconds(500)) {
                rest.append(message.text)
                try await message.ack()
            }
        }
        #expect(Set(rest) == ["b1", "b2", "b3"])
    }

    @Test("a closed client refuses calls; JSON bodies round-trip and undecodable ones are invalidArgument")
    func closedAndJSON() async throws {
        struct Order: Codable, Equatable { var id: Int; var item: String }
        let messaging = try await setUp(try ProbeDriver())
        try await messaging.publish(try Message(json: Order(id: 7, item: "tea")), to: "t")
        let message = try #require(try await messaging.subscription("s").receive().first)
        #expect(message.attributes["content-type"] == "application/json")
        #expect(try message.decode(Order.self) == Order(id: 7, item: "tea"))
        #expect(throws: NimbusError.self) { try message.decode([String].self) }
        try await message.ack()
        try await messaging.close()
        let error = await #expect(throws: NimbusError.self) { try await messaging.publish(Message("late"), to: "t") }
        #expect(error?.code == .failedPrecondition)
    }
}
