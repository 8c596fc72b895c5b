import Foundation
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusTesting
import Synchronization
import Testing

/// The behaviour every ``MessagingDriver`` must have, stated once and run against each adapter.
///
/// An adapter's test target runs the checks its capabilities allow, one test case each:
///
/// ```swift
/// @Test(arguments: MessagingConformance.suite.checks(supportedBy: MessagingConformance.capabilities(.all)))
/// func conformance(_ check: MessagingConformance.Check) async throws {
///     let clock = ManualClock(), path = temporaryFile()
///     try await check.run(MessagingConformance.Harness(
///         makeDriver: { try SQLiteMessagingDriver(path: path, clock: clock) },
///         advance: { clock.advance(by: $0) }))
/// }
/// ```
/// Each check uses its own topic and subscription names, so checks can run in parallel on one broker.
public enum MessagingConformance {
    /// How a check reaches the broker under test.
    public struct Harness: Sendable {
        /// Makes a driver on the broker under test; every call reaches the same broker (and, for
        /// an embedded store, the same storage), so a second driver sees what the first published.
        public var makeDriver: @Sendable () async throws -> any MessagingDriver
        /// Lets at least `duration` pass for the broker: advance a manual clock, or sleep for a server.
        public var advance: @Sendable (Duration) async throws -> Void

        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any MessagingDriver,
                    advance: @escaping @Sendable (Duration) async throws -> Void) {
            self.makeDriver = makeDriver
            self.advance = advance
        }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    /// The conformance capabilities a driver's ``MessagingCapabilities`` grant (one per capability, same names).
    public static func capabilities(_ declared: MessagingCapabilities) -> Set<ConformanceCapability> {
        Set(named.filter { declared.contains($0.1) }.map { ConformanceCapability($0.0) })
    }

    static let named: [(String, MessagingCapabilities)] = [
        ("durable", .durable), ("orderingKeys", .orderingKeys), ("delayedDelivery", .delayedDelivery), ("deduplication", .deduplication),
        ("deadLetters", .deadLetters), ("deliveryCount", .deliveryCount), ("extendDeadline", .extendDeadline), ("delayedRedelivery", .delayedRedelivery),
    ]

    /// A fresh client and unique names for one check.
    public struct Context: Sendable {
        /// The client under test.
        public let messaging: Messaging
        /// A unique prefix for this check's topics and subscriptions.
        public let prefix: String
        /// The harness.
        public let harness: Harness

        /// A unique name for this check (`prefix` + `name`).
        public func name(_ name: String) -> String { prefix + name }

        /// Creates topic `topic` with one subscription per name in `subscriptions`; returns the full names.
        /// The default deadline is long, so that a slow machine sees no redelivery a check did not ask
        /// for; checks about deadlines pass a short one.
        public func topic(_ topic: String, subscriptions: [String], options: SubscriptionOptions = .init(ackDeadline: .seconds(60))) async throws -> (String, [String]) {
            let topicName = name(topic)
            try await messaging.createTopic(topicName)
            var names: [String] = []
            for subscription in subscriptions {
                names.append(name(subscription))
                try await messaging.createSubscription(name(subscription), topic: topicName, options: options)
            }
            return (topicName, names)
        }

        /// Receives until `count` messages came or five receives in a row (about 2 s) brought nothing:
        /// asking for more than will come takes that long, so use deadlines longer than that.
        public func receive(_ count: Int, from subscription: Subscription) async throws -> [ReceivedMessage] {
            var received: [ReceivedMessage] = []
            var idle = 0
            while received.count < count, idle < 5 {
                let batch = try await subscription.receive(maxMessages: count - received.count, wait: .milliseconds(400))
                if batch.isEmpty { idle += 1 } else { idle = 0 }
                received += batch
            }
            return received
        }

        /// Runs `attempt` up to three times. Against a real broker time is real: an attempt returns
        /// `false` when the machine stalled so long between two of its steps that it proves nothing
        /// (a lease passed before the step that should beat it); the third attempt always counts.
        public func stallTolerant(_ attempt: (Int) async throws -> Bool) async throws {
            for number in 1...3 where try await attempt(number) { return }
        }

        /// What a subscription holds that is ready now (it is received and given back at once).
        public func ready(_ subscription: String) async throws -> [String] {
            let probe = messaging.subscription(subscription)
            let messages = try await probe.receive(maxMessages: 100, wait: .milliseconds(300))
            for message in messages { try await message.nack() }
            return messages.map(\.text)
        }
    }

    static func check(_ name: String, needs: Set<ConformanceCapability> = [], _ body: @escaping @Sendable (Context) async throws -> Void) -> Check {
        Check(name, needs: needs) { harness in
            let prefix = "conf-\(IDGenerator.shared.ulid().description.lowercased().suffix(12))-"
            let messaging = Messaging(driver: try await harness.makeDriver(), configuration: .init(retry: .none))
            try await messaging.closing { try await body(Context(messaging: $0, prefix: prefix, harness: harness)) }
        }
    }

    /// Every check.
    public static let suite = ConformanceSuite<Harness>(domain: "messaging", checks: [
        check("a published message is received with its body and attributes") { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"])
            let body = ByteBuffer(bytes: [0, 1, 2, 13, 10, 255, 0, 36] + Array("héllo".utf8))
            let id = try await context.messaging.publish(Message(body: body, attributes: ["kind": "greeting", "ünï": "cödé"]), to: topic)
            let received = try await context.receive(1, from: context.messaging.subscription(subscriptions[0]))
            try #require(received.count == 1)
            #expect(received[0].id == id)
            #expect(received[0].body == body)
            #expect(received[0].attributes["kind"] == "greeting")
            #expect(received[0].attributes["ünï"] == "cödé")
            #expect(received[0].deliveryAttempt == 1)
            try await received[0].ack()
        },
        check("a batch is delivered completely, each message once") { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"])
            let ids = try await context.messaging.publish((0..<25).map { Message("m\($0)") }, to: topic)
            #expect(Set(ids).count == 25)
            let received = try await context.receive(25, from: context.messaging.subscription(subscriptions[0]))
            #expect(received.count == 25)
            #expect(Set(received.map(\.text)) == Set((0..<25).map { "m\($0)" }))
            #expect(Set(received.map(\.id)) == Set(ids))
            for message in received { try await message.ack() }
        },
        check("an acked message does not come back after its deadline") { context in
            try await context.stallTolerant { attempt in
                let (topic, subscriptions) = try await context.topic("t\(attempt)", subscriptions: ["s\(attempt)"], options: .init(ackDeadline: .seconds(2)))
                try await context.messaging.publish(Message("done"), to: topic)
                let start = ContinuousClock.now
                let received = try await context.receive(1, from: context.messaging.subscription(subscriptions[0]))
                try #require(received.count == 1)
                try await received[0].ack()
                if ContinuousClock.now - start > .milliseconds(1500), attempt < 3 { return false }
                try await context.harness.advance(.milliseconds(2600))
                #expect(try await context.ready(subscriptions[0]).isEmpty)
                return true
            }
        },
        check("every subscription of a topic gets its own copy") { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["a", "b"])
            try await context.messaging.publish(Message("fan"), to: topic)
            for subscription in subscriptions {
                let received = try await context.receive(1, from: context.messaging.subscription(subscription))
                #expect(received.map(\.text) == ["fan"], "subscription \(subscription)")
                for message in received { try await message.ack() }
            }
        },
        check("a subscription gets only messages published after it was created") { context in
            let (topic, _) = try await context.topic("t", subscriptions: ["early"])
            try await context.messaging.publish(Message("before"), to: topic)
            // A long deadline: looking for a second message must not see the first one again.
            try await context.messaging.createSubscription(context.name("late"), topic: topic, options: .init(ackDeadline: .seconds(60)))
            try await context.messaging.publish(Message("after"), to: topic)
            let received = try await context.receive(2, from: context.messaging.subscription(context.name("late")))
            #expect(received.map(\.text) == ["after"])
            for message in received { try await message.ack() }
        },
        check("a leased message is not handed to a competing consumer") { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"], options: .init(ackDeadline: .seconds(30)))
            try await context.messaging.publish(Message("once"), to: topic)
            let first = try await context.receive(1, from: context.messaging.subscription(subscriptions[0]))
            #expect(first.count == 1)
            let second = try await context.messaging.subscription(subscriptions[0]).receive(maxMessages: 10, wait: .milliseconds(300))
            #expect(second.isEmpty)
            for message in first { try await message.ack() }
        },
        check("an unacked message is delivered again after its ack deadline") { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"], options: .init(ackDeadline: .seconds(2)))
            try await context.messaging.publish(Message("again"), to: topic)
            let subscription = context.messaging.subscription(subscriptions[0])
            let first = try await context.receive(1, from: subscription)
            try #require(first.count == 1)
            try await context.harness.advance(.milliseconds(2600))
            let second = try await context.receive(1, from: subscription)
            try #require(second.count == 1)
            #expect(second[0].id == first[0].id)
            #expect(second[0].text == "again")
            try await second[0].ack()
        },
        check("the delivery attempt counts redeliveries", needs: ["deliveryCount"]) { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"])
            try await context.messaging.publish(Message("count"), to: topic)
            let subscription = context.messaging.subscription(subscriptions[0])
            for attempt in 1...3 {
                let received = try await context.receive(1, from: subscription)
                try #require(received.count == 1)
                #expect(received[0].deliveryAttempt == attempt)
                if attempt < 3 { try await received[0].nack() } else { try await received[0].ack() }
            }
        },
        check("a nacked message is delivered again at once") { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"], options: .init(ackDeadline: .seconds(600)))
            try await context.messaging.publish(Message("retry"), to: topic)
            let subscription = context.messaging.subscription(subscriptions[0])
            let first = try await context.receive(1, from: subscription)
            try #require(first.count == 1)
            try await first[0].nack()
            let second = try await context.receive(1, from: subscription)
            #expect(second.map(\.id) == first.map(\.id))
            for message in second { try await message.ack() }
        },
        check("a nack with a delay holds the message for that long", needs: ["delayedRedelivery"]) { context in
            try await context.stallTolerant { attempt in
                let (topic, subscriptions) = try await context.topic("t\(attempt)", subscriptions: ["s\(attempt)"])
                try await context.messaging.publish(Message("later"), to: topic)
                let subscription = context.messaging.subscription(subscriptions[0])
                let first = try await context.receive(1, from: subscription)
                try #require(first.count == 1)
                let start = ContinuousClock.now
                try await first[0].nack(redeliverAfter: .seconds(3))
                let early = try await context.ready(subscriptions[0])
                if ContinuousClock.now - start > .milliseconds(2500), attempt < 3 { return false }
                #expect(early.isEmpty)
                try await context.harness.advance(.milliseconds(3600))
                #expect(try await context.ready(subscriptions[0]) == ["later"])
                return true
            }
        },
        check("extending the deadline keeps the lease", needs: ["extendDeadline"]) { context in
            try await context.stallTolerant { attempt in
                let (topic, subscriptions) = try await context.topic("t\(attempt)", subscriptions: ["s\(attempt)"], options: .init(ackDeadline: .seconds(2)))
                try await context.messaging.publish(Message("long job"), to: topic)
                let start = ContinuousClock.now, watch = StallWatch.start()
                let received = try await context.receive(1, from: context.messaging.subscription(subscriptions[0]))
                try #require(received.count == 1)
                try await received[0].extendDeadline(to: .seconds(20))
                if ContinuousClock.now - start > .milliseconds(1500), attempt < 3 { return false }
                try await context.harness.advance(.milliseconds(2600))
                let redelivered = try await context.ready(subscriptions[0])
                // A broker that extends by repeated progress acks (JetStream) cannot send them while the machine stalls.
                if await watch.stop() > .milliseconds(800), !redelivered.isEmpty, attempt < 3 { try? await received[0].ack(); return false }
                #expect(redelivered.isEmpty)
                try await received[0].ack()
                return true
            }
        },
        check("a message is settled once; a second settle is refused") { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"])
            try await context.messaging.publish(Message("x"), to: topic)
            let received = try await context.receive(1, from: context.messaging.subscription(subscriptions[0]))
            try #require(received.count == 1)
            try await received[0].ack()
            let error = await #expect(throws: NimbusError.self) { try await received[0].nack() }
            #expect(error?.code == .failedPrecondition)
        },
        check("messages with one ordering key come in publish order, one at a time", needs: ["orderingKeys"]) { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"], options: .init(ackDeadline: .seconds(30), ordered: true))
            try await context.messaging.publish([Message("a1", orderingKey: "a"), Message("a2", orderingKey: "a"), Message("a3", orderingKey: "a"),
                                                 Message("b1", orderingKey: "b")], to: topic)
            let subscription = context.messaging.subscription(subscriptions[0])
            var first = try await subscription.receive(maxMessages: 10, wait: .milliseconds(500))
            if first.count < 2 { first += try await subscription.receive(maxMessages: 10, wait: .milliseconds(500)) }
            #expect(Set(first.map(\.text)) == ["a1", "b1"])
            let a1 = try #require(first.first { $0.text == "a1" })
            try await a1.ack()
            let second = try await subscription.receive(maxMessages: 10, wait: .milliseconds(500))
            #expect(second.map(\.text) == ["a2"])
            for message in second { try await message.nack() }
            let third = try await subscription.receive(maxMessages: 10, wait: .milliseconds(500))
            #expect(third.map(\.text) == ["a2"], "a nacked head of key comes back before the messages behind it")
            for message in third + first.filter({ $0.text == "b1" }) { try await message.ack() }
        },
        check("a poison message goes to the dead-letter topic after maxDeliveries", needs: ["deadLetters"]) { context in
            let dead = context.name("dead")
            try await context.messaging.createTopic(dead)
            try await context.messaging.createSubscription(context.name("dead-reader"), topic: dead)
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"],
                                                                 options: .init(ackDeadline: .seconds(30), deadLetter: .init(topic: dead, maxDeliveries: 2)))
            let id = try await context.messaging.publish(Message("poison", attributes: ["k": "v"]), to: topic)
            let subscription = context.messaging.subscription(subscriptions[0])
            for _ in 1...2 {
                let received = try await context.receive(1, from: subscription)
                try #require(received.count == 1)
                try await received[0].nack()
            }
            #expect(try await subscription.receive(maxMessages: 10, wait: .milliseconds(300)).isEmpty)
            let letters = try await context.receive(1, from: context.messaging.subscription(context.name("dead-reader")))
            try #require(letters.count == 1)
            #expect(letters[0].text == "poison")
            #expect(letters[0].attributes["k"] == "v")
            #expect(letters[0].attributes[DeadLetterAttribute.messageID] == id)
            #expect(letters[0].attributes[DeadLetterAttribute.subscription] == subscriptions[0])
            try await letters[0].ack()
        },
        check("deadLetter() moves a message to the dead-letter topic at once", needs: ["deadLetters"]) { context in
            let dead = context.name("dead")
            try await context.messaging.createTopic(dead)
            try await context.messaging.createSubscription(context.name("dead-reader"), topic: dead)
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"],
                                                                 options: .init(ackDeadline: .seconds(2), deadLetter: .init(topic: dead, maxDeliveries: 10)))
            try await context.messaging.publish(Message("unparseable"), to: topic)
            let received = try await context.receive(1, from: context.messaging.subscription(subscriptions[0]))
            try #require(received.count == 1)
            try await received[0].deadLetter()
            try await context.harness.advance(.milliseconds(2600))
            #expect(try await context.ready(subscriptions[0]).isEmpty)
            #expect(try await context.ready(context.name("dead-reader")) == ["unparseable"])
        },
        check("a delayed message is not delivered before its delay", needs: ["delayedDelivery"]) { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"])
            try await context.messaging.publish(Message("soon", delay: .seconds(3)), to: topic)
            #expect(try await context.ready(subscriptions[0]).isEmpty)
            try await context.harness.advance(.milliseconds(3600))
            #expect(try await context.ready(subscriptions[0]) == ["soon"])
        },
        check("a repeated deduplication id is delivered once", needs: ["deduplication"]) { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"])
            let first = try await context.messaging.publish(Message("pay 10", deduplicationID: "order-7"), to: topic)
            let second = try await context.messaging.publish(Message("pay 10", deduplicationID: "order-7"), to: topic)
            #expect(first == second)
            #expect(try await context.ready(subscriptions[0]) == ["pay 10"])
        },
        check("published messages survive reopening the broker", needs: ["durable"]) { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"])
            try await context.messaging.publish([Message("kept 1"), Message("kept 2")], to: topic)
            let reopened = Messaging(driver: try await context.harness.makeDriver())
            try await reopened.closing { reopened in
                let received = try await context.receive(2, from: reopened.subscription(subscriptions[0]))
                #expect(Set(received.map(\.text)) == ["kept 1", "kept 2"])
                for message in received { try await message.ack() }
            }
        },
        check("a waiting receive returns when a message is published") { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"])
            let subscription = context.messaging.subscription(subscriptions[0])
            let waiting = Task { try await subscription.receive(maxMessages: 1, wait: .seconds(20)) }
            try await Task.sleep(for: .milliseconds(100))
            try await context.messaging.publish(Message("wake"), to: topic)
            let received = try await waiting.value
            #expect(received.map(\.text) == ["wake"])
            for message in received { try await message.ack() }
        },
        check("flow control stops fetching while messages are unsettled") { context in
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"], options: .init(ackDeadline: .seconds(60)))
            try await context.messaging.publish((0..<5).map { Message("f\($0)") }, to: topic)
            let subscription = context.messaging.subscription(subscriptions[0], flowControl: .init(maxOutstandingMessages: 2, batchSize: 10, wait: .milliseconds(200)))
            var iterator = subscription.messages().makeAsyncIterator()
            let one = try #require(try await iterator.next())
            let two = try #require(try await iterator.next())
            #expect(subscription.outstanding.messages == 2)
            let third = Task { [iterator] in
                var iterator = iterator
                return try await iterator.next()
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(subscription.outstanding.messages == 2, "no third message is fetched while two are unsettled")
            try await one.ack()
            let three = try #require(try await third.value)
            #expect(subscription.outstanding.messages == 2)
            try await two.ack()
            try await three.ack()
            #expect(subscription.outstanding.messages == 0)
        },
        check("names the broker does not know are notFound; a reused subscription name is alreadyExists") { context in
            let missing = context.name("missing")
            await expectCode(.notFound) { try await context.messaging.publish(Message("x"), to: missing) }
            await expectCode(.notFound) { _ = try await context.messaging.subscription(missing).receive(wait: .zero) }
            await expectCode(.notFound) { try await context.messaging.createSubscription(context.name("orphan"), topic: missing) }
            let (topic, subscriptions) = try await context.topic("t", subscriptions: ["s"])
            #expect(try await context.messaging.createTopic(topic) == false)
            #expect(try await context.messaging.createSubscription(subscriptions[0], topic: topic, options: .init(ackDeadline: .seconds(2))) == false)
            let other = context.name("other")
            try await context.messaging.createTopic(other)
            await expectCode(.alreadyExists) { try await context.messaging.createSubscription(subscriptions[0], topic: other) }
            #expect(try await context.messaging.topics().contains(topic))
            #expect(try await context.messaging.subscriptions(of: topic) == subscriptions)
            try await context.messaging.deleteSubscription(subscriptions[0])
            await expectCode(.notFound) { _ = try await context.messaging.subscription(subscriptions[0]).receive(wait: .zero) }
            try await context.messaging.deleteTopic(other)
            await expectCode(.notFound) { try await context.messaging.deleteTopic(other) }
        },
    ])

    static func expectCode(_ code: NimbusError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
        let error = await #expect(throws: NimbusError.self, sourceLocation: sourceLocation) { try await body() }
        #expect(error?.code == code, sourceLocation: sourceLocation)
    }
}
