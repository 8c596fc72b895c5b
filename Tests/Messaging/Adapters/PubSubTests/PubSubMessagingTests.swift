import Foundation
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusMessagingConformance
@testable import NimbusMessagingPubSub
import NimbusTesting
import Testing

/// No Pub/Sub service or emulator runs here: the driver runs against ``FakePubSub``, which checks
/// every request body against the committed `pubsub.proto` and keeps Pub/Sub's limits and semantics.
@Suite("Google Pub/Sub messaging (fake checked against pubsub.proto)", .timeLimit(.minutes(3)))
struct PubSubMessagingTests {
    static let declared: MessagingCapabilities = [.durable, .extendDeadline, .delayedRedelivery, .deadLetters]
    static let openers = URLOpenerRegistry.messaging.withPubSub()

    static func driver(_ fake: FakePubSub) async throws -> PubSubMessagingDriver {
        try #require(try await openers.open(fake.url) as? PubSubMessagingDriver)
    }

    @Test("declares its capabilities: no ordering keys, delays, deduplication or delivery counts over REST pull")
    func declaredCapabilities() async throws {
        let fake = try await FakePubSub.start()
        let driver = try await Self.driver(fake)
        #expect(driver.capabilities == Self.declared)
        #expect(MessagingConformance.suite.unsupported(by: MessagingConformance.capabilities(Self.declared)).map(\.name) == [
            "the delivery attempt counts redeliveries",
            "messages with one ordering key come in publish order, one at a time",
            "a delayed message is not delivered before its delay",
            "a repeated deduplication id is delivered once",
        ])
        try await driver.close()
        await fake.stop()
    }

    @Test("conformance", arguments: MessagingConformance.suite.checks(supportedBy: MessagingConformance.capabilities(declared)))
    func conformance(_ check: MessagingConformance.Check) async throws {
        let fake = try await FakePubSub.start()
        try await check.run(MessagingConformance.Harness(makeDriver: { try await Self.driver(fake) }, advance: { try await Task.sleep(for: $0) }))
        #expect(fake.specMismatches == [])
        await fake.stop()
    }

    @Test("Pub/Sub's limits are kept: a 2 s deadline is set per message, 2 deliveries become 5 attempts on the service and 2 in the driver, labels carry what was asked")
    func limits() async throws {
        let fake = try await FakePubSub.start()
        let driver = try await Self.driver(fake)
        #expect(try await driver.createTopic("jobs"))
        #expect(try await driver.createTopic("jobs-dead"))
        #expect(try await driver.createSubscription("workers", topic: "jobs", options: .init(ackDeadline: .seconds(2), deadLetter: .init(topic: "jobs-dead", maxDeliveries: 2))))
        let created = try #require(fake.server.requests.first { $0.method == "PUT" && $0.path.hasSuffix("/subscriptions/workers") }).json()
        #expect(created["ackDeadlineSeconds"]?.numberValue == 10)
        #expect(created["deadLetterPolicy"]?["maxDeliveryAttempts"]?.numberValue == 5)
        #expect(created["labels"]?["nimbus-ack-deadline-ms"]?.stringValue == "2000")
        #expect(created["labels"]?["nimbus-max-deliveries"]?.stringValue == "2")
        _ = try await driver.publish([Message(body: ByteBuffer(bytes: [0, 255, 10]), attributes: ["k": "v"])], to: "jobs")
        let received = try await driver.receive(from: "workers", maxMessages: 10, wait: .seconds(2))
        try #require(received.count == 1)
        #expect(received[0].body == ByteBuffer(bytes: [0, 255, 10]))
        #expect(received[0].deliveryAttempt == 1)
        let modified = try #require(fake.server.requests.last { $0.path.hasSuffix(":modifyAckDeadline") }).json()
        #expect(modified["ackDeadlineSeconds"]?.numberValue == 2)
        await #expect(throws: NimbusError.self) { _ = try await driver.createSubscription("ordered", topic: "jobs", options: .init(ordered: true)) }
        #expect(fake.specMismatches == [])
        try await driver.close()
        await fake.stop()
    }

    @Test("Google's errors become clear NimbusErrors: 404 notFound, 409 alreadyExists, a refused body invalidArgument")
    func errors() async throws {
        let fake = try await FakePubSub.start()
        let driver = try await Self.driver(fake)
        let missing = await #expect(throws: NimbusError.self) { _ = try await driver.publish([Message("x")], to: "nowhere") }
        #expect(missing?.code == .notFound)
        #expect(try await driver.createTopic("t"))
        #expect(try await driver.createTopic("t") == false)
        fake.server.route(.POST, "/v1/projects/\(fake.project)/topics/{verb}", reply: FakePubSub.error(429, "RESOURCE_EXHAUSTED", "quota"))
        let quota = await #expect(throws: NimbusError.self) { _ = try await driver.publish([Message("x")], to: "t") }
        #expect(quota?.code == .resourceExhausted)
        try await driver.close()
        await fake.stop()
    }

    @Test("the fake's checker refuses what pubsub.proto does not say: unknown fields, wrong types, a missing required field")
    func checkerRefuses() throws {
        let checker = try FakePubSub.protos.get()
        #expect(checker.check(["maxMessages": 10, "returnImmediately": true], message: "PullRequest", pathFields: ["subscription"]) == [])
        #expect(!checker.check(["maxMessages": 10, "waitSeconds": 5], message: "PullRequest", pathFields: ["subscription"]).isEmpty)
        #expect(!checker.check(["maxMessages": "many"], message: "PullRequest", pathFields: ["subscription"]).isEmpty)
        #expect(!checker.check([:], message: "PullRequest", pathFields: ["subscription"]).isEmpty)
        #expect(!checker.check(["ackIds": ["a"], "ackDeadlineSeconds": 10, "reason": "x"], message: "ModifyAckDeadlineRequest", pathFields: ["subscription"]).isEmpty)
        #expect(!checker.check(["messages": [["data": "aGk=", "attrs": ["k": "v"]]]], message: "PublishRequest", pathFields: ["topic"]).isEmpty)
    }
}
