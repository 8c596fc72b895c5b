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
        guard let id = Peer.setting("NIMBUS_PEER_MOTO_ACCESS_KEY_ID"), let secret = Peer.setting("NIMBUS_PEER_MOTO_SECRET_ACCESS_KEY") else {
            throw NimbusError(.unavailable, "the moto peer exported no IAM keys; run scripts/peers up moto")
        }
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: Secret(secret)),
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

    @Test("sqs:// opens through the registry")
    func opener() async throws {
        let messaging = try await Messaging.open("sqs://?region=us-east-1", openers: URLOpenerRegistry.messaging.withSQS())
        #expect(messaging.provider == "sqs")
        try await messaging.close()
    }
}
