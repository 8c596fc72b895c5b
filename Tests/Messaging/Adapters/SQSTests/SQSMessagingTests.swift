import Foundation
import NIOCore
import NimbusAWS
import NimbusCore
import NimbusMessaging
import NimbusMessagingConformance
@testable import NimbusMessagingSQS
import NimbusTesting
import Testing

@Suite("SNS + SQS messaging (moto, signatures checked)", .requires(.moto), .timeLimit(.minutes(3)))
struct SQSMessagingTests {
    static let declared: MessagingCapabilities = [.durable, .deadLetters, .deliveryCount, .extendDeadline, .delayedRedelivery]

    static func aws() throws -> AWSClient {
        let (id, secret) = try Peer.motoKeys()
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret),
                                              endpointURL: try Peer.moto.url(), maxAttempts: 1, environment: [:]))
    }

    @Test("declares its capabilities: no ordering keys, deduplication or delays through a standard SNS topic")
    func declaredCapabilities() throws {
        #expect(SQSMessagingDriver(aws: try Self.aws()).capabilities == Self.declared)
        #expect(MessagingConformance.suite.unsupported(by: MessagingConformance.capabilities(Self.declared)).map(\.name) == [
            "messages with one ordering key come in publish order, one at a time",
            "a delayed message is not delivered before its delay",
            "a repeated deduplication id is delivered once",
        ])
    }

    @Test("conformance", arguments: MessagingConformance.suite.checks(supportedBy: MessagingConformance.capabilities(declared)))
    func conformance(_ check: MessagingConformance.Check) async throws {
        let aws = try Self.aws()
        try await check.run(MessagingConformance.Harness(makeDriver: { SQSMessagingDriver(aws: aws) }, advance: { try await Task.sleep(for: $0) }))
    }

    @Test("attribute names are escaped reversibly; binary bodies travel base64-encoded")
    func encodings() throws {
        for name in ["kind", "ünï", "a_b", "a.b", "x-y", "_", "A9"] {
            let escaped = SQSMessagingDriver.attributeName(name)
            #expect(escaped.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 })
            #expect(SQSMessagingDriver.portableAttributeName(escaped) == name)
        }
        let binary = try SQSMessagingDriver.entry(Message(body: ByteBuffer(bytes: [0, 255, 1])), id: "i", index: 0)
        #expect(binary.messageAttributes?["nimbus-encoding"]?.stringValue == "base64" && binary.message == "AP8B")
        let text = try SQSMessagingDriver.entry(Message("héllo"), id: "i", index: 0)
        #expect(text.messageAttributes?["nimbus-encoding"] == nil && text.message == "héllo")
        #expect(throws: NimbusError.self) { try SQSMessagingDriver.entry(Message("x", attributes: Dictionary(uniqueKeysWithValues: (0..<9).map { ("a\($0)", "v") })), id: "i", index: 0) }
    }

    @Test("sqs:// opens through the registry; fifo=true picks FIFO topics; unknown options are refused")
    func opener() async throws {
        let messaging = try await Messaging.open("sqs://?region=us-east-1", openers: URLOpenerRegistry.messaging.withSQS())
        #expect(messaging.provider == "sqs")
        try await messaging.close()
        let fifo = try await URLOpenerRegistry.messaging.withSQS().open("sqs://?region=us-east-1&fifo=true")
        #expect((fifo as? SQSMessagingDriver)?.fifo == true)
        await #expect(throws: NimbusError.self) { _ = try await URLOpenerRegistry.messaging.withSQS().open("sqs://?region=us-east-1&fifo=maybe") }
        await #expect(throws: NimbusError.self) { _ = try await URLOpenerRegistry.messaging.withSQS().open("sqs://?region=us-east-1&fifoo=true") }
    }

    static let fifoDeclared: MessagingCapabilities = [.durable, .deadLetters, .deliveryCount, .extendDeadline, .delayedRedelivery, .orderingKeys, .deduplication]

    @Test("FIFO declares ordering keys and deduplication; only delays stay unsupported")
    func fifoCapabilities() throws {
        #expect(SQSMessagingDriver(aws: try Self.aws(), fifo: true).capabilities == Self.fifoDeclared)
        #expect(MessagingConformance.suite.unsupported(by: MessagingConformance.capabilities(Self.fifoDeclared)).map(\.name) == [
            "a delayed message is not delivered before its delay",
        ])
    }

    @Test("FIFO conformance (SNS FIFO topics, SQS FIFO queues)", arguments: MessagingConformance.suite.checks(supportedBy: MessagingConformance.capabilities(fifoDeclared)))
    func fifoConformance(_ check: MessagingConformance.Check) async throws {
        let aws = try Self.aws()
        try await check.run(MessagingConformance.Harness(makeDriver: { SQSMessagingDriver(aws: aws, fifo: true) }, advance: { try await Task.sleep(for: $0) }))
    }

    @Test("FIFO names end in .fifo on AWS and not in Nimbus; standard and FIFO drivers see only their own kind; a bad ordering key is refused before sending")
    func fifoNames() async throws {
        let aws = try Self.aws()
        let fifo = Messaging(driver: SQSMessagingDriver(aws: aws, fifo: true)), standard = Messaging(driver: SQSMessagingDriver(aws: aws))
        let name = "fifo-\(IDGenerator.shared.ulid().description.lowercased().suffix(10))"
        try await fifo.createTopic(name)
        try await fifo.createSubscription(name, topic: name)
        #expect(try await fifo.topics().contains(name))
        #expect(try await standard.topics().contains(name) == false)
        #expect(try await fifo.subscriptions(of: name) == [name])
        var arns: [String] = [], next: String?
        repeat {
            let page = try await AWS.SNS(client: aws).listTopics(.init(nextToken: next), maxAttempts: 1)
            arns += page.topics?.compactMap(\.topicArn) ?? []
            next = page.nextToken
        } while next != nil
        #expect(arns.contains { $0.hasSuffix(":\(name).fifo") })
        let refused = await #expect(throws: NimbusError.self) { try await fifo.publish(Message("x", orderingKey: "has space"), to: name) }
        #expect(refused?.code == .invalidArgument)
        try await fifo.deleteTopic(name)
        try await fifo.close()
        try await standard.close()
    }

    @Test("a filter policy on attributes (escaped names, anything-but) or on the JSON body lets SNS deliver only what matches")
    func filterPolicies() async throws {
        let aws = try Self.aws()
        let driver = SQSMessagingDriver(aws: aws)
        let messaging = Messaging(driver: driver)
        let topic = "filter-\(IDGenerator.shared.ulid().description.lowercased().suffix(10))"
        try await messaging.createTopic(topic)
        try await messaging.createSubscription(topic + "-orders", topic: topic)
        try await messaging.createSubscription(topic + "-eu", topic: topic)
        try await messaging.createSubscription(topic + "-all", topic: topic)
        try await driver.setFilterPolicy(["event_kind": ["order"], "amount": [["anything-but": ["50"]]]], on: topic + "-orders")
        try await driver.setFilterPolicy(["region": ["eu"]], on: topic + "-eu", scope: .messageBody)
        try await messaging.publish([
            Message("{\"region\":\"eu\"}", attributes: ["event_kind": "order", "amount": "250"]),
            Message("{\"region\":\"us\"}", attributes: ["event_kind": "order", "amount": "50"]),
            Message("{\"region\":\"us\"}", attributes: ["event_kind": "refund", "amount": "500"]),
        ], to: topic)
        func drain(_ name: String) async throws -> [String] {
            var texts: [String] = []
            for _ in 0..<4 {
                let batch = try await messaging.subscription(name).receive(maxMessages: 10, wait: .milliseconds(500))
                for message in batch { texts.append(message.attributes["amount"] ?? "?"); try await message.ack() }
            }
            return texts.sorted()
        }
        #expect(try await drain(topic + "-orders") == ["250"])
        #expect(try await drain(topic + "-eu") == ["250"])
        #expect(try await drain(topic + "-all") == ["250", "50", "500"])
        try await driver.setFilterPolicy(nil, on: topic + "-orders")
        try await messaging.publish(Message("{}", attributes: ["event_kind": "refund", "amount": "1"]), to: topic)
        #expect(try await drain(topic + "-orders") == ["1"], "removing the policy delivers everything again")
        await #expect(throws: NimbusError.self) { try await driver.setFilterPolicy(["kind": ["a"]], on: topic + "-missing") }
        try await messaging.deleteTopic(topic)
        try await messaging.close()
    }
}
