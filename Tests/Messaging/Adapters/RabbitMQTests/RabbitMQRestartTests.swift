import Foundation
import NIOCore
import NimbusCore
import NimbusMessaging
@testable import NimbusMessagingRabbitMQ
import NimbusTesting
import Testing

/// Stops and starts the broker: run alone (the second, real-time pass of scripts/test), never beside other RabbitMQ tests.
@Suite("RabbitMQ across a broker restart (real rabbitmq-server)", .requires(.rabbitmq), .timeLimit(.minutes(3)))
struct RabbitMQRestartTests {
    @Test("confirmed messages survive a broker restart, a leased one comes back, and the driver reconnects by itself")
    func survivesRestart() async throws {
        let root = try #require(Peer.packageRoot(), "the package root (with scripts/peers) was not found")
        let messaging = Messaging(driver: try await URLOpenerRegistry.messaging.withRabbitMQ().open(try Peer.rabbitmq.url()),
                                  configuration: .init(retry: .none))
        let topic = "restart-\(IDGenerator.shared.ulid().description.lowercased().suffix(10))"
        try await messaging.createTopic(topic)
        try await messaging.createSubscription(topic + "-s", topic: topic)
        try await messaging.publish([Message("one"), Message("two"), Message("three")], to: topic)
        let leased = try await messaging.subscription(topic + "-s").receive(maxMessages: 1, wait: .seconds(5))
        try #require(leased.count == 1)

        let restart = try await ProcessRunner.run("/bin/bash", ["\(root)/scripts/peers", "restart", "rabbitmq"])
        try #require(restart.status == 0, "scripts/peers restart rabbitmq failed: \(restart.output)")

        let error = await #expect(throws: NimbusError.self) { try await leased[0].ack() }
        #expect(error?.code == .failedPrecondition, "a receipt from before the restart is refused")
        var texts: [String] = []
        for _ in 0..<10 where texts.count < 3 {
            let batch = try await messaging.subscription(topic + "-s").receive(maxMessages: 10, wait: .seconds(2))
            for message in batch { texts.append(message.text); try await message.ack() }
        }
        #expect(texts.sorted() == ["one", "three", "two"])
        try await messaging.deleteSubscription(topic + "-s")
        try await messaging.deleteTopic(topic)
        try await messaging.close()
    }
}
