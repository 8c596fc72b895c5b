import Foundation
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusMessagingConformance
import NimbusMessagingRedis
import NimbusRedis
import NimbusTesting
import Testing

@Suite("Redis Streams messaging (real redis-server)", .requires(.redis), .timeLimit(.minutes(2)))
struct RedisStreamsMessagingTests {
    static let declared: MessagingCapabilities = [.durable, .deduplication, .deadLetters, .deliveryCount, .extendDeadline, .delayedRedelivery]

    @Test("declares its capabilities; ordering keys and delayed first delivery are not supported")
    func declaredCapabilities() throws {
        let driver = try RedisStreamsMessagingDriver(url: "redis://127.0.0.1:6379")
        #expect(driver.capabilities == Self.declared)
        #expect(MessagingConformance.suite.unsupported(by: MessagingConformance.capabilities(Self.declared)).map(\.name) == [
            "messages with one ordering key come in publish order, one at a time",
            "a delayed message is not delivered before its delay",
        ])
    }

    @Test("conformance", arguments: MessagingConformance.suite.checks(supportedBy: MessagingConformance.capabilities(declared)))
    func conformance(_ check: MessagingConformance.Check) async throws {
        let url = try Peer.redis.url()
        try await check.run(MessagingConformance.Harness(
            makeDriver: { try RedisStreamsMessagingDriver(url: url) },
            advance: { try await Task.sleep(for: $0) }))
    }

    @Test("four drivers compete for 200 messages: each is delivered once")
    func competingConsumers() async throws {
        let url = try Peer.redis.url()
        let topic = "compete-\(IDGenerator.shared.ulid())"
        let setup = Messaging(driver: try RedisStreamsMessagingDriver(url: url))
        try await setup.createTopic(topic)
        try await setup.createSubscription(topic, topic: topic, options: .init(ackDeadline: .seconds(600)))
        try await setup.publish((0..<200).map { Message("job \($0)") }, to: topic)
        let seen = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await Messaging(driver: try RedisStreamsMessagingDriver(url: url)).closing { messaging in
                        var texts: [String] = []
                        while true {
                            let batch = try await messaging.subscription(topic).receive(maxMessages: 9, wait: .milliseconds(300))
                            if batch.isEmpty { return texts }
                            for message in batch { texts.append(message.text); try await message.ack() }
                        }
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(seen.count == 200)
        #expect(Set(seen).count == 200)
        try await setup.deleteTopic(topic)
        try await setup.close()
    }

    @Test("a receipt whose lease passed cannot ack the copy another consumer holds")
    func staleReceipt() async throws {
        let url = try Peer.redis.url()
        let topic = "stale-\(IDGenerator.shared.ulid())"
        let first = Messaging(driver: try RedisStreamsMessagingDriver(url: url)), second = Messaging(driver: try RedisStreamsMessagingDriver(url: url))
        try await first.createTopic(topic)
        try await first.createSubscription(topic, topic: topic, options: .init(ackDeadline: .seconds(1)))
        try await first.publish(Message("m"), to: topic)
        let old = try #require(try await first.subscription(topic).receive(wait: .seconds(2)).first)
        try await Task.sleep(for: .milliseconds(1300))
        let current = try #require(try await second.subscription(topic).receive(wait: .seconds(2)).first)
        #expect(current.id == old.id && current.deliveryAttempt == 2)
        let error = await #expect(throws: NimbusError.self) { try await old.ack() }
        #expect(error?.code == .failedPrecondition)
        try await current.ack()
        let forged = await #expect(throws: NimbusError.self) {
            try await first.driver(as: RedisStreamsMessagingDriver.self)?.ack(["not a receipt"], on: topic)
        }
        #expect(forged?.code == .failedPrecondition)
        try await first.deleteTopic(topic)
        try await first.close(); try await second.close()
    }

    @Test("a blocking receive does not hold up other calls on the same driver")
    func blockingReceiveIsolated() async throws {
        let url = try Peer.redis.url()
        let topic = "block-\(IDGenerator.shared.ulid())"
        let messaging = Messaging(driver: try RedisStreamsMessagingDriver(url: url))
        try await messaging.createTopic(topic)
        try await messaging.createSubscription(topic, topic: topic)
        let waiting = Task { try await messaging.subscription(topic).receive(wait: .seconds(20)) }
        try await Task.sleep(for: .milliseconds(200))
        // The pool is free while the receive blocks on its own connection: this publish goes through and wakes it.
        try await messaging.publish(Message("wake"), to: topic)
        #expect(try await waiting.value.map(\.text) == ["wake"])
        try await messaging.deleteTopic(topic)
        try await messaging.close()
    }

    @Test("redis:// opens through the registry with prefix and maxlen; entries written by others with bad attributes are dataLoss")
    func openerAndCorruptEntries() async throws {
        let url = try Peer.redis.url()
        let prefix = "t\(IDGenerator.shared.ulid().description.lowercased()):"
        let messaging = try await Messaging.open("\(url)?prefix=\(prefix)&maxlen=1000", openers: URLOpenerRegistry.messaging.withRedisStreams())
        let driver = try #require(messaging.driver(as: RedisStreamsMessagingDriver.self))
        #expect(driver.configuration.keyPrefix == prefix && driver.configuration.maxLength == 1000)
        try await messaging.createTopic("t")
        try await messaging.createSubscription("s", topic: "t")
        _ = try await driver.client.send(RedisCommand("XADD", "\(prefix)t:t", "*", "b", "x", "a", "[1,2"))
        let error = await #expect(throws: NimbusError.self) { _ = try await messaging.subscription("s").receive(wait: .zero) }
        #expect(error?.code == .dataLoss)
        #expect(try await driver.client.send(RedisCommand("EXISTS", "\(prefix)topics")).int(for: "EXISTS") == 1, "keys live under the prefix")
        try await messaging.deleteTopic("t")
        try await messaging.close()
    }
}
