import Foundation
import NimbusAWS
import NimbusCore
import NimbusSMS
import NimbusTesting
import Testing
@testable import NimbusSMSSNS

/// SNS Publish to phone numbers against moto with signatures checked (`scripts/peers up moto`).
@Suite("SNS SMS against moto", .requires(.moto))
struct SNSTests {
    static func aws(secret: String? = nil) throws -> AWSClient {
        guard let id = Peer.setting("NIMBUS_PEER_MOTO_ACCESS_KEY_ID"), let real = Peer.setting("NIMBUS_PEER_MOTO_SECRET_ACCESS_KEY") else {
            throw NimbusError(.unavailable, "the moto peer exported no IAM keys; run scripts/peers up moto")
        }
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: Secret(secret ?? real)),
                                              endpointURL: try Peer.moto.url(), maxAttempts: 1, environment: [:]))
    }

    /// The SMS messages moto recorded: id → (number, text).
    static func stored() async throws -> [String: (String, String)] {
        let json = try await Peer.motoState()
        var result: [String: (String, String)] = [:]
        for entry in json["sns"]?["SMS"]?.arrayValue ?? [] {
            if let id = entry["message_id"]?.stringValue { result[id] = (entry["phone_number"]?.stringValue ?? "", entry["message"]?.stringValue ?? "") }
        }
        return result
    }

    @Test func aTextReachesTheNumberWithItsAttributes() async throws {
        let client = SMSClient(driver: SNSSMSDriver(aws: try Self.aws(), maxPriceUSD: Decimal(string: "0.50")))
        let body = "Ihr Code: 424242 — gültig 10 Minuten"
        let receipt = try await client.send(SMSMessage(from: try .alphanumericID("Nimbus"), to: try PhoneNumber("+49 151 23456789"), body: body))
        #expect(receipt.provider == "sns" && receipt.status == .sent && receipt.segments == 1)
        let stored = try await Self.stored()
        let entry = try #require(stored[receipt.id])
        #expect(entry.0 == "+4915123456789" && entry.1 == body)
    }

    @Test func refusalsComeBackAsErrors() async throws {
        let driver = SNSSMSDriver(aws: try Self.aws())
        let long = SMSMessage(from: .number(try PhoneNumber("+12065550100")), to: try PhoneNumber("+14155550100"), body: String(repeating: "x", count: 1600))
        let tooLong = await #expect(throws: NimbusError.self) { try await driver.send(long) }
        #expect(tooLong?.code == .invalidArgument)
        let wrong = SNSSMSDriver(aws: try Self.aws(secret: "not-the-secret"))
        let denied = await #expect(throws: NimbusError.self) {
            try await wrong.send(SMSMessage(from: .number(try PhoneNumber("+12065550100")), to: try PhoneNumber("+14155550100"), body: "x"))
        }
        #expect(denied?.code == .unauthenticated, "\(String(describing: denied))")
    }
}

