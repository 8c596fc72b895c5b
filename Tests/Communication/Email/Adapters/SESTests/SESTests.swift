import Foundation
import NimbusAWS
import NimbusCore
import NimbusEmail
import NimbusTesting
import Testing
@testable import NimbusEmailSES
import NimbusEmailConformance

/// SES v2 SendEmail against moto with signature checking on (`scripts/peers up moto`).
@Suite("SES against moto", .requires(.moto))
struct SESTests {
    static func aws() throws -> AWSClient {
        let (id, secret) = try Peer.motoKeys()
        return AWSClient(configuration: .init(region: "eu-west-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret),
                                              endpointURL: try Peer.moto.url(), environment: [:]))
    }

    /// What moto stored for a message id: the raw MIME it received.
    static func rawMessage(_ id: String) async throws -> String? {
        let json = try await Peer.motoState()
        return json["ses"]?["RawMessage"]?.arrayValue?.first { $0["id"]?.stringValue == id }?["raw_data"]?.stringValue
    }

    @Test func aVerifiedSenderSendsRawMIMEThatArrivesByteForByte() async throws {
        let aws = try Self.aws()
        let domain = "ses-\(IDGenerator.shared.ulid().description.lowercased().prefix(10)).example.com"
        try await AWS.SESv2(client: aws).createEmailIdentity(.init(emailIdentity: domain))
        let client = EmailClient(driver: SESEmailDriver(aws: aws))
        var message = EmailMessage(from: try EmailAddress("Shop <shop@\(domain)>"), to: [try EmailAddress("zoe@example.org")],
                                   bcc: [try EmailAddress("audit@example.org")], subject: "Grüße from SES", text: "Hello", html: "<p>Hello</p>",
                                   attachments: [.file(named: "a.txt", contentType: "text/plain", data: Array("attached".utf8))])
        message.metadata = ["order": "1042"]
        message.tags = ["receipt"]
        let rendered = try client.render(message)
        let receipt = try await client.send(message)
        let id = try #require(receipt.providerMessageID)
        #expect(receipt.provider == "ses" && Set(receipt.accepted.map(\.address)) == ["zoe@example.org", "audit@example.org"])
        let stored = try #require(try await Self.rawMessage(id), "moto keeps the raw message")
        // Same message apart from the Date and Message-ID made at each render.
        func stable(_ text: String) -> [String] {
            text.components(separatedBy: "\r\n").filter { !$0.hasPrefix("Date:") && !$0.hasPrefix("Message-ID:") && !$0.contains("=_nimbus_") }
        }
        #expect(stable(stored) == stable(String(decoding: rendered.document.bytes, as: UTF8.self)))
        #expect(stored.contains("Subject: =?UTF-8?B?") && !stored.contains("audit@"), "Bcc travels in the envelope only")
    }

    @Test func anUnverifiedSenderIsAFailedPreconditionNotRetried() async throws {
        let client = EmailClient(driver: SESEmailDriver(aws: try Self.aws()))
        let message = EmailMessage(from: try EmailAddress("nobody@unverified-\(UUID().uuidString.prefix(8)).example"), to: [try EmailAddress("a@example.org")],
                                   subject: "x", text: "x")
        let error = await #expect(throws: NimbusError.self) { try await client.send(message) }
        #expect(error?.code == .failedPrecondition && error?.isRetryable == false && error?.message.contains("MessageRejected") == true, "\(String(describing: error))")
    }

    @Test func tagsFollowSESRules() throws {
        var message = EmailMessage(from: try EmailAddress("a@example.com"), to: [try EmailAddress("b@example.org")], subject: "x", text: "x",
                                   tags: ["welcome"], metadata: ["user_id": "u-42"])
        #expect(try SESEmailDriver.tags(message).map { "\($0.name)=\($0.value)" } == ["user_id=u-42", "welcome=true"])
        message.metadata = ["bad key": "x"]
        #expect(throws: NimbusError.self) { try SESEmailDriver.tags(message) }
    }

    /// The key id is moto's real one, so only the signature is wrong: an unknown key id would be
    /// refused before any signature is checked, and prove nothing.
    @Test func aWrongSecretIsUnauthenticated() async throws {
        let keyID = try #require(Peer.setting("NIMBUS_PEER_MOTO_ACCESS_KEY_ID"), "the moto peer exported no IAM key; run scripts/peers up moto")
        let aws = AWSClient(configuration: .init(region: "eu-west-1", credentials: AWSCredentials(accessKeyID: keyID, secretAccessKey: Secret("wrong")),
                                                 endpointURL: try Peer.moto.url(), maxAttempts: 1, environment: [:]))
        let message = EmailMessage(from: try EmailAddress("a@example.com"), to: [try EmailAddress("b@example.org")], subject: "x", text: "x")
        let error = await #expect(throws: NimbusError.self) { try await EmailClient(driver: SESEmailDriver(aws: aws), configuration: .init(retry: .none)).send(message) }
        #expect(error?.code == .unauthenticated, "\(String(describing: error))")
        #expect((error?.underlying as? AWSServiceError)?.code == "SignatureDoesNotMatch", "the signature, not the key id, was refused: \(String(describing: error))")
    }
}


extension SESTests {
    /// moto keeps what SES took: each check reads the raw message back from moto's state.
    @Test(arguments: EmailConformance.suite.checks(supportedBy: [.readBack]))
    func conformance(_ check: ConformanceCheck<EmailConformance.Harness>) async throws {
        let aws = try Self.aws()
        let domain = "conf-\(IDGenerator.shared.ulid().description.lowercased().prefix(10)).example.com"
        try await AWS.SESv2(client: aws).createEmailIdentity(.init(emailIdentity: domain))
        let recipients = [try EmailAddress("a@example.org"), try EmailAddress("b@example.org"), try EmailAddress("c@example.org")]
        try await check.run(.init(makeDriver: { SESEmailDriver(aws: aws) }, from: try EmailAddress("shop@\(domain)"), recipients: recipients) { receipt in
            guard let id = receipt.providerMessageID, let raw = try await Self.rawMessage(id) else { return nil }
            return Array(raw.utf8)
        })
    }
}

@Suite("SES events")
struct SESEventTests {
    @Test func eventsFromSNSBecomeEmailEvents() throws {
        let bounce = #"""
        {"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"gone@example.org","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"timestamp":"2026-11-26T10:00:01.669Z","feedbackId":"fb-1"},
         "mail":{"timestamp":"2026-11-26T10:00:00.000Z","source":"shop@example.com","messageId":"m-1","destination":["gone@example.org"],"tags":{"ses:configuration-set":["events"],"order":["1042"],"receipt":["true"]}}}
        """#
        let events = try SESEvents.parse(bounce)
        #expect(events.count == 1 && events[0].kind == .bounced && events[0].kind.suppressesRecipient && events[0].recipient == "gone@example.org")
        #expect(events[0].reason == "smtp; 550 5.1.1 user unknown" && events[0].providerMessageID == "m-1" && events[0].eventID == "fb-1")
        #expect(events[0].metadata == ["order": "1042"] && events[0].tags == ["receipt"])
        let transient = bounce.replacingOccurrences(of: "\"Permanent\"", with: "\"Transient\"")
        #expect(try SESEvents.parse(transient)[0].kind == .deferred)
        let click = #"{"eventType":"Click","mail":{"messageId":"m-2","destination":["a@example.org"]},"click":{"link":"https://example.com/x","timestamp":"2026-11-26T10:05:00.000Z"}}"#
        #expect(try SESEvents.parse(click).first?.url == "https://example.com/x")
        let complaint = #"{"notificationType":"Complaint","mail":{"messageId":"m-3","destination":["b@example.org"]},"complaint":{"complainedRecipients":[{"emailAddress":"b@example.org"}],"complaintFeedbackType":"abuse"}}"#
        #expect(try SESEvents.parse(complaint).first?.kind == .complained)
        let novel = #"{"eventType":"Quarantine","mail":{"messageId":"m-4","destination":["c@example.org"]}}"#
        #expect(try SESEvents.parse(novel).first?.kind.rawValue == "quarantine", "an event type SES adds later is kept")
        #expect(throws: NimbusError.self) { try SESEvents.parse(#"{"hello":"world"}"#) }
    }
}

extension SESTests {
    @Test func simpleContentLetsSESWriteTheMIME() async throws {
        let aws = try Self.aws()
        let domain = "simple-\(IDGenerator.shared.ulid().description.lowercased().prefix(10)).example.com"
        try await AWS.SESv2(client: aws).createEmailIdentity(.init(emailIdentity: domain))
        let client = EmailClient(driver: SESEmailDriver(aws: aws, content: .simple))
        let message = EmailMessage(from: try EmailAddress("Zoë Shop <shop@\(domain)>"), to: [try EmailAddress("a@example.org")],
                                   bcc: [try EmailAddress("b@example.org")], subject: "Grüße", text: "Hallo", html: "<p>Hallo</p>")
        let receipt = try await client.send(message)
        let id = try #require(receipt.providerMessageID)
        let stored = try #require(try await Peer.motoState()["ses"]?["Message"]?.arrayValue?.first { $0["id"]?.stringValue == id })
        #expect(stored["subject"]?.stringValue == "Grüße" && stored["body"]?.stringValue == "<p>Hallo</p>")
        #expect(stored["destinations"]?["BccAddresses"]?.arrayValue?.first?.stringValue == "b@example.org")
        #expect(stored["source"]?.stringValue?.hasSuffix("<shop@\(domain)>") == true)
        let withFile = EmailMessage(from: try EmailAddress("shop@\(domain)"), to: [try EmailAddress("a@example.org")], subject: "x", text: "x",
                                    attachments: [.file(named: "a.txt", contentType: "text/plain", data: [65])])
        #expect(await #expect(throws: NimbusError.self) { try await client.send(withFile) }?.code == .invalidArgument)
    }
}
