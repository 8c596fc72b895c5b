import Foundation
import NIOCore
import NIOSSL
import NimbusCore
import NimbusMessaging
import NimbusMessagingConformance
@testable import NimbusMessagingRabbitMQ
import NimbusTesting
import Synchronization
import Testing

@Suite("RabbitMQ messaging (real rabbitmq-server)", .requires(.rabbitmq), .timeLimit(.minutes(3)))
struct RabbitMQMessagingTests {
    static let declared: MessagingCapabilities = [.durable, .deadLetters, .deliveryCount, .extendDeadline]
    static let openers = URLOpenerRegistry.messaging.withRabbitMQ()

    static func driver(_ extra: String = "") async throws -> any MessagingDriver {
        try await openers.open(try Peer.rabbitmq.url() + extra)
    }

    static func connection() async throws -> AMQPConnection {
        let driver = try #require(try await driver() as? RabbitMQMessagingDriver)
        return try await AMQPConnection.connect(driver.configuration.connection)
    }

    @Test("declares its capabilities: no ordering keys, delays or deduplication on RabbitMQ")
    func declaredCapabilities() async throws {
        let driver = try await Self.driver()
        #expect(driver.capabilities == Self.declared)
        #expect(MessagingConformance.suite.unsupported(by: MessagingConformance.capabilities(Self.declared)).map(\.name) == [
            "a nack with a delay holds the message for that long",
            "messages with one ordering key come in publish order, one at a time",
            "a delayed message is not delivered before its delay",
            "a repeated deduplication id is delivered once",
        ])
        try await driver.close()
        // Classic queues count no deliveries, so they take no maxDeliveries.
        let classic = try await Self.driver("&queue_type=classic")
        #expect(classic.capabilities == [.durable, .extendDeadline])
        try await classic.close()
    }

    @Test("conformance", arguments: MessagingConformance.suite.checks(supportedBy: MessagingConformance.capabilities(declared)))
    func conformance(_ check: MessagingConformance.Check) async throws {
        try await check.run(MessagingConformance.Harness(makeDriver: { try await Self.driver() }, advance: { try await Task.sleep(for: $0) }))
    }

    @Test("publisher confirms; a mandatory message no queue takes comes back as notFound; a missing exchange closes only its channel")
    func confirmsAndReturns() async throws {
        let connection = try await Self.connection()
        let name = "amqp-test-\(IDGenerator.shared.ulid().description.lowercased().suffix(10))"
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        try await channel.exchangeDeclare(name, type: "direct", durable: false, autoDelete: true)
        try await channel.queueDeclare(name, durable: false, exclusive: true)
        try await channel.queueBind(name, exchange: name, routingKey: "routed")
        try await channel.publish(exchange: name, routingKey: "routed", body: ByteBuffer(string: "kept"), mandatory: true)
        let returned = await #expect(throws: NimbusError.self) {
            try await channel.publish(exchange: name, routingKey: "nowhere", body: ByteBuffer(string: "lost"), mandatory: true)
        }
        #expect(returned?.code == .notFound)
        #expect(returned?.message.contains("NO_ROUTE") == true)
        let got = try #require(try await channel.get(queue: name, noAck: true))
        #expect(String(buffer: got.body) == "kept" && got.messageCount == 0)
        #expect(try await channel.get(queue: name) == nil)

        let doomed = try await connection.openChannel()
        let missing = await #expect(throws: NimbusError.self) {
            try await doomed.publish(exchange: name + "-missing", routingKey: "", body: ByteBuffer(string: "x"))
            _ = try await doomed.queueDeclare(name, passive: true)      // the close arrives before this reply
        }
        #expect(missing?.code == .notFound)
        #expect(!doomed.isOpen)
        #expect(channel.isOpen)
        #expect(try await channel.queueDeclare(name, passive: true).messageCount == 0)
        try await connection.close()
    }

    @Test("a large message crosses many frames both ways, byte for byte")
    func largeMessage() async throws {
        let connection = try await Self.connection()
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let queue = try await channel.queueDeclare("", durable: false, exclusive: true).queue
        let body = ByteBuffer(bytes: (0..<(3 << 19)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try await channel.publish(exchange: "", routingKey: queue, body: body, properties: .init(headers: ["k": .string("v")]))
        let got = try #require(try await channel.get(queue: queue, noAck: true))
        #expect(got.body == body)
        #expect(got.properties.headers?["k"] == .string("v"))
        try await connection.close()
    }

    @Test("a consumer whose queue is deleted is told so; receiving from it again is notFound")
    func consumerCancelled() async throws {
        let driver = try await Self.driver()
        let messaging = Messaging(driver: driver)
        let prefix = "cancel-\(IDGenerator.shared.ulid().description.lowercased().suffix(10))"
        try await messaging.createTopic(prefix)
        try await messaging.createSubscription(prefix + "-s", topic: prefix)
        #expect(try await messaging.subscription(prefix + "-s").receive(wait: .milliseconds(100)).isEmpty)
        // Another client deletes the queue under the running consumer.
        let connection = try await Self.connection()
        let channel = try await connection.openChannel()
        try await channel.queueDelete(prefix + "-s")
        try await connection.close()
        let error = await #expect(throws: NimbusError.self) { _ = try await messaging.subscription(prefix + "-s").receive(wait: .seconds(2)) }
        #expect(error?.code == .notFound)
        try await messaging.deleteTopic(prefix)
        try await messaging.close()
    }

    @Test("a connection the broker drops is replaced on the next call; receipts from the old one are refused, and their messages come back")
    func reconnects() async throws {
        let driver = try #require(try await Self.driver() as? RabbitMQMessagingDriver)
        let messaging = Messaging(driver: driver, configuration: .init(retry: .none))
        let topic = "drop-\(IDGenerator.shared.ulid().description.lowercased().suffix(10))"
        try await messaging.createTopic(topic)
        try await messaging.createSubscription(topic + "-s", topic: topic)
        try await messaging.publish(Message("survives"), to: topic)
        let first = try await messaging.subscription(topic + "-s").receive(wait: .seconds(5))
        try #require(first.count == 1)
        // Close the connection from the server's side, through the management API.
        let connection = try await driver.client.connection()
        let name = try await Self.connectionName(of: connection, driver: driver)
        let response = try await driver.management!.send(.init(.DELETE, "/api/connections/\(RabbitMQMessagingDriver.pathSegment(name))"))
        #expect(response.isSuccess)
        try await Task.sleep(for: .milliseconds(300))
        #expect(!connection.isOpen)
        let stale = await #expect(throws: NimbusError.self) { try await first[0].ack() }
        #expect(stale?.code == .failedPrecondition)
        let again = try await messaging.subscription(topic + "-s").receive(wait: .seconds(5))
        #expect(again.map(\.text) == ["survives"])
        #expect(again.first?.deliveryAttempt == 2)
        for message in again { try await message.ack() }
        try await messaging.deleteSubscription(topic + "-s")
        try await messaging.deleteTopic(topic)
        try await messaging.close()
    }

    static func connectionName(of connection: AMQPConnection, driver: RabbitMQMessagingDriver) async throws -> String {
        // The management API lists connections a moment after they open.
        for _ in 0..<50 {
            if case .array(let items)? = try await driver.managementGet("/api/connections?columns=name,client_properties") {
                if let mine = items.first(where: { $0["client_properties"]?["connection_name"]?.stringValue == connection.name }),
                   let name = mine["name"]?.stringValue { return name }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw NimbusError(.notFound, "the management API never listed connection \(connection.name)")
    }

    @Test("wrong credentials are unauthenticated, a missing virtual host is permissionDenied, a closed port is unavailable")
    func refusals() async throws {
        let base = try OpenURL(try Peer.rabbitmq.url())
        let port = base.port ?? 5672
        let wrong = await #expect(throws: NimbusError.self) {
            _ = try await AMQPConnection.connect(.init(host: "127.0.0.1", port: port, user: "guest", password: Secret("wrong"), connectTimeout: .seconds(30)))
        }
        #expect(wrong?.code == .unauthenticated)
        #expect(wrong?.message.contains("wrong") == false)
        let vhost = await #expect(throws: NimbusError.self) {
            _ = try await AMQPConnection.connect(.init(host: "127.0.0.1", port: port, virtualHost: "no-such-vhost", connectTimeout: .seconds(30)))
        }
        #expect(vhost?.code == .permissionDenied)
        let closed = await #expect(throws: NimbusError.self) { _ = try await AMQPConnection.connect(.init(host: "127.0.0.1", port: 1)) }
        #expect(closed?.code == .unavailable)
    }

    @Test("amqps: verified against the test CA; without it the handshake fails", .requires(.rabbitmqTLS))
    func tls() async throws {
        let url = try Peer.rabbitmqTLS.url()
        let ca = try #require(Peer.setting("NIMBUS_PEER_RABBITMQ_TLS_CA"))
        let driver = try #require(try await Self.openers.open(url + "&tls_ca=\(ca)") as? RabbitMQMessagingDriver)
        #expect(driver.configuration.connection.tls?.certificateVerification == .fullVerification)
        let messaging = Messaging(driver: driver)
        let topic = "tls-\(IDGenerator.shared.ulid().description.lowercased().suffix(10))"
        try await messaging.createTopic(topic)
        try await messaging.createSubscription(topic + "-s", topic: topic)
        try await messaging.publish(Message("over tls"), to: topic)
        let received = try await messaging.subscription(topic + "-s").receive(wait: .seconds(5))
        #expect(received.map(\.text) == ["over tls"])
        for message in received { try await message.ack() }
        try await messaging.deleteSubscription(topic + "-s")
        try await messaging.deleteTopic(topic)
        try await messaging.close()

        let untrusted = try await Self.openers.open(url)
        let error = await #expect(throws: NimbusError.self) { _ = try await untrusted.createTopic("x") }
        #expect(error?.code == .unavailable)
        try await untrusted.close()
    }

    @Test("amqp:// options: virtual host from the path, prefetch, queue type; bad values refused")
    func opener() async throws {
        let driver = try #require(try await Self.openers.open("amqp://u@h:1234/my%2Fvhost?prefetch=7&queue_type=classic&heartbeat=10s&connect_timeout=3s")
                                  as? RabbitMQMessagingDriver)
        #expect(driver.configuration.connection.connectTimeout == .seconds(3))
        #expect(driver.configuration.connection.virtualHost == "my/vhost")
        #expect(driver.configuration.connection.port == 1234 && driver.configuration.connection.user == "u")
        #expect(driver.configuration.prefetch == 7 && driver.configuration.queueType == .classic)
        #expect(driver.configuration.connection.heartbeat == .seconds(10))
        #expect(driver.configuration.connection.tls == nil)
        let root = try #require(try await Self.openers.open("amqps://h") as? RabbitMQMessagingDriver)
        #expect(root.configuration.connection.virtualHost == "/" && root.configuration.connection.port == 5671)
        #expect(root.configuration.connection.tls?.certificateVerification == .fullVerification)
        for bad in ["amqp://h?prefetch=0", "amqp://h?queue_type=stream", "amqp://h?tls_ca=/x.pem", "amqp://h?bogus=1", "amqp://u:literal@h?password=hunter2"] {
            await #expect(throws: NimbusError.self, "\(bad)") { _ = try await Self.openers.open(bad) }
        }
    }
}
