import Crypto
import Foundation
import NimbusCore
import NimbusEmail
import NimbusHTTP
import NimbusTesting
import Testing
@testable import NimbusEmailSendGrid

/// A local Mail Send endpoint that checks each request against SendGrid's published spec and the API key.
struct SendGridFake {
    static let spec = OpenAPIRequestChecker.fixture("sendgrid-mail-send-extract", in: .module)
    static let key = "SG.fake-key.0123456789"
    let server: FakeHTTPServer

    static func start() async throws -> SendGridFake {
        let server = try await FakeHTTPServer.start()
        server.refuseRequests(departingFrom: try spec.get()) { problems in
            .json(400, ["errors": .array(problems.map { ["field": "body", "message": .string($0), "help": nil] })])
        }
        server.route(.POST, "/v3/mail/send") { request in
            guard request.header("Authorization") == "Bearer \(key)" else {
                return .json(401, #"{"errors":[{"field":null,"message":"The provided authorization grant is invalid, expired, or revoked","help":null}]}"#)
            }
            return .text(202, "", headers: [("X-Message-Id", "sgid-\(UUID().uuidString.prefix(8))")])
        }
        return SendGridFake(server: server)
    }

    func driver(key: String = SendGridFake.key, sandbox: Bool = false) -> SendGridEmailDriver {
        SendGridEmailDriver(configuration: .init(apiKey: Secret(key), baseURL: server.baseURL, sandbox: sandbox))
    }
}

@Suite("SendGrid against a spec-checked fake")
struct SendGridDriverTests {
    @Test func aFullMessageBecomesOneSpecValidMailSend() async throws {
        let fake = try await SendGridFake.start()
        defer { Task { await fake.server.shutdown() } }
        var message = EmailMessage(from: try EmailAddress("Shop <shop@example.com>"), to: [try EmailAddress("Zoë <zoe@bücher.example>")],
                                   cc: [try EmailAddress("ops@example.net")], bcc: [try EmailAddress("audit@example.com")],
                                   replyTo: [try EmailAddress("help@example.com")], subject: "Receipt", text: "Thanks", html: "<p>Thanks <img src=\"cid:logo\"></p>",
                                   attachments: [.file(named: "r.pdf", contentType: "application/pdf", data: [1, 2, 3]),
                                                 .inline(id: "logo", named: "logo.png", contentType: "image/png", data: [4])],
                                   headers: [(name: "X-Campaign", value: "w26")], tags: ["receipt"], metadata: ["order": "1042"])
        message.listUnsubscribe = .init(url: URL(string: "https://example.com/u/1"), oneClick: true)
        let receipt = try await EmailClient(driver: fake.driver(sandbox: true)).send(message)
        #expect(receipt.providerMessageID?.hasPrefix("sgid-") == true && receipt.accepted.count == 3)
        let body = try #require(fake.server.requests.first).json()
        let personalization = try #require(body["personalizations"]?.arrayValue?.first)
        #expect(personalization["to"]?.arrayValue?.first?["email"]?.stringValue == "zoe@xn--bcher-kva.example")
        #expect(personalization["to"]?.arrayValue?.first?["name"]?.stringValue == "Zoë")
        #expect(personalization["bcc"]?.arrayValue?.first?["email"]?.stringValue == "audit@example.com")
        #expect(body["content"]?.arrayValue?.map { $0["type"]?.stringValue } == ["text/plain", "text/html"])
        #expect(body["attachments"]?.arrayValue?.last?["disposition"]?.stringValue == "inline" && body["attachments"]?.arrayValue?.last?["content_id"]?.stringValue == "logo")
        #expect(body["attachments"]?.arrayValue?.first?["content"]?.stringValue == "AQID")
        #expect(body["categories"] == ["receipt"] && personalization["custom_args"]?["order"]?.stringValue == "1042")
        #expect(body["headers"]?["X-Campaign"]?.stringValue == "w26" && body["headers"]?["List-Unsubscribe-Post"]?.stringValue == "List-Unsubscribe=One-Click")
        #expect(body["mail_settings"]?["sandbox_mode"]?["enable"]?.boolValue == true)
        #expect(body["reply_to"]?["email"]?.stringValue == "help@example.com")
    }

    @Test func dynamicTemplatesCarryTheirData() async throws {
        let fake = try await SendGridFake.start()
        defer { Task { await fake.server.shutdown() } }
        let message = EmailMessage(from: try EmailAddress("shop@example.com"), bcc: [try EmailAddress("only-bcc@example.org")], subject: "ignored")
        let receipt = try await fake.driver().send(templateID: "d-0123456789abcdef", data: ["name": "Zoë", "items": [["sku": "A1"]]], message: message)
        #expect(receipt.accepted.map(\.address) == ["only-bcc@example.org"])
        let body = try #require(fake.server.requests.first).json()
        #expect(body["template_id"]?.stringValue == "d-0123456789abcdef" && body["subject"] == nil && body["content"] == nil)
        let personalization = try #require(body["personalizations"]?.arrayValue?.first)
        #expect(personalization["dynamic_template_data"]?["name"]?.stringValue == "Zoë")
        #expect(personalization["to"]?.arrayValue?.first?["email"]?.stringValue == "only-bcc@example.org", "a bcc-only message still has a to")
        await #expect(throws: NimbusError.self) { try await fake.driver().send(templateID: "tmpl-1", data: [:], message: message) }
    }

    @Test func errorsSayWhatToFixAndOnlyA429IsRetried() async throws {
        let fake = try await SendGridFake.start()
        defer { Task { await fake.server.shutdown() } }
        let message = EmailMessage(from: try EmailAddress("shop@example.com"), to: [try EmailAddress("a@example.org")], subject: "s", text: "t")
        let unauthorized = await #expect(throws: NimbusError.self) { try await EmailClient(driver: fake.driver(key: "SG.wrong")).send(message) }
        #expect(unauthorized?.code == .unauthenticated && !"\(String(describing: unauthorized))".contains("SG.wrong"))
        fake.server.route(.POST, "/v3/mail/send", replies: [
            .json(429, #"{"errors":[{"field":null,"message":"too many requests"}]}"#, headers: [("X-RateLimit-Reset", "\(Int(Date().timeIntervalSince1970))")]),
            .text(202, "", headers: [("X-Message-Id", "after-429")]),
        ])
        let client = EmailClient(driver: fake.driver(), configuration: .init(retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5))))
        #expect(try await client.send(message).providerMessageID == "after-429")
        fake.server.route(.POST, "/v3/mail/send", reply: .json(400, #"{"errors":[{"field":"from.email","message":"The from email does not contain a valid address.","help":"http://sendgrid.com/docs"}]}"#))
        let invalid = await #expect(throws: NimbusError.self) { try await client.send(message) }
        #expect(invalid?.code == .invalidArgument && invalid?.message.contains("from.email: The from email") == true)
        fake.server.route(.POST, "/v3/mail/send", reply: .json(403, #"{"errors":[{"field":null,"message":"The from address does not match a verified Sender Identity."}]}"#))
        #expect(await #expect(throws: NimbusError.self) { try await client.send(message) }?.code == .permissionDenied)
        let before = fake.server.requests.count
        fake.server.route(.POST, "/v3/mail/send", reply: .text(500, "upstream broke"))
        let server = await #expect(throws: NimbusError.self) { try await client.send(message) }
        #expect(server?.isRetryable == false && fake.server.requests.count == before + 1, "a 5xx may have queued the message: not retried")
        var reserved = message
        reserved.headers = [(name: "X-SG-ID", value: "1")]
        await #expect(throws: NimbusError.self) { try await client.send(reserved) }
    }
}

@Suite("SendGrid event webhook")
struct SendGridWebhookTests {
    static let events = Array(#"""
    [{"email":"zoe@example.org","timestamp":1764122400,"event":"delivered","sg_event_id":"e1","sg_message_id":"sgid-1.filter","category":["receipt"],"order":"1042","response":"250 OK"},
     {"email":"x@example.org","timestamp":1764122401,"event":"bounce","reason":"550 5.1.1 unknown user","sg_event_id":"e2"},
     {"email":"y@example.org","timestamp":1764122402,"event":"click","url":"https://example.com/a","sg_event_id":"e3","category":"promo"},
     {"email":"z@example.org","timestamp":1764122403,"event":"brand_new_event","sg_event_id":"e4"}]
    """#.utf8)

    @Test func signedEventsAreVerifiedAndRead() throws {
        let key = P256.Signing.PrivateKey()
        let webhook = try SendGridEventWebhook(publicKeyBase64: key.publicKey.derRepresentation.base64EncodedString())
        let timestamp = "1764122500"
        let signature = try key.signature(for: Array(timestamp.utf8) + Self.events).derRepresentation.base64EncodedString()
        let now = Date(timeIntervalSince1970: 1_764_122_510)
        let events = try webhook.events(body: Self.events, signature: signature, timestamp: timestamp, now: now)
        #expect(events.map(\.kind) == [.delivered, .bounced, .clicked, EmailEvent.Kind(rawValue: "brand_new_event")])
        #expect(events[0].metadata == ["order": "1042"] && events[0].tags == ["receipt"] && events[0].providerMessageID == "sgid-1.filter")
        #expect(events[1].kind.suppressesRecipient && events[1].reason == "550 5.1.1 unknown user" && events[2].url == "https://example.com/a" && events[2].tags == ["promo"])
        // A changed body, an old timestamp, another key, a missing header: refused.
        #expect(throws: NimbusError.self) { try webhook.verify(body: Self.events + [32], signature: signature, timestamp: timestamp, now: now) }
        #expect(throws: NimbusError.self) { try webhook.verify(body: Self.events, signature: signature, timestamp: timestamp, now: now.addingTimeInterval(3600)) }
        let other = try SendGridEventWebhook(publicKeyBase64: P256.Signing.PrivateKey().publicKey.derRepresentation.base64EncodedString())
        #expect(throws: NimbusError.self) { try other.verify(body: Self.events, signature: signature, timestamp: timestamp, now: now) }
        #expect(throws: NimbusError.self) { try webhook.verify(body: Self.events, signature: nil, timestamp: timestamp, now: now) }
        #expect(throws: NimbusError.self) { try SendGridEventWebhook.parse(Array(#"{"not":"an array"}"#.utf8)) }
        #expect(throws: NimbusError.self) { try SendGridEventWebhook(publicKeyBase64: "bm90IGEga2V5") }
    }

    /// The official `sendgrid` library's EventWebhook verifies what this signs, and this verifies what Python's
    /// `cryptography` signs the same way SendGrid does.
    @Test(.requires(.commsSDKs)) func signaturesAgreeWithTheOfficialLibrary() async throws {
        let python = try Peer.commsSDKs.url()
        let key = P256.Signing.PrivateKey()
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let payload = String(decoding: Self.events, as: UTF8.self)
        let ours = try key.signature(for: Array((timestamp + payload).utf8)).derRepresentation.base64EncodedString()
        let script = """
        import base64, json, sys
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from sendgrid.helpers.eventwebhook import EventWebhook
        data = json.load(sys.stdin)
        verifier = EventWebhook(data["public_key"])
        ok = verifier.verify_signature(data["payload"], data["signature"], data["timestamp"])
        tampered = verifier.verify_signature(data["payload"] + " ", data["signature"], data["timestamp"])
        theirs = ec.generate_private_key(ec.SECP256R1())
        public = base64.b64encode(theirs.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
        signature = base64.b64encode(theirs.sign((data["timestamp"] + data["payload"]).encode(), ec.ECDSA(hashes.SHA256()))).decode()
        print(json.dumps({"ok": ok, "tampered": tampered, "public_key": public, "signature": signature}))
        """
        let input: JSONValue = ["public_key": .string(key.publicKey.derRepresentation.base64EncodedString()), "payload": .string(payload),
                                "signature": .string(ours), "timestamp": .string(timestamp)]
        let directory = FileManager.default.temporaryDirectory
        let scriptFile = directory.appendingPathComponent("sg-\(UUID().uuidString).py"), inputFile = directory.appendingPathComponent("sg-\(UUID().uuidString).json")
        try script.write(to: scriptFile, atomically: true, encoding: .utf8)
        try Data(input.description.utf8).write(to: inputFile)
        let result = try await ProcessRunner.run("/bin/sh", ["-c", "\"\(python)\" \"\(scriptFile.path)\" < \"\(inputFile.path)\""])
        #expect(result.status == 0, "\(result.stderr)")
        let answer = try JSONValue.parse(Data(result.stdout.utf8))
        #expect(answer["ok"]?.boolValue == true && answer["tampered"]?.boolValue == false)
        let verifier = try SendGridEventWebhook(publicKeyBase64: try #require(answer["public_key"]?.stringValue))
        try verifier.verify(body: Self.events, signature: answer["signature"]?.stringValue, timestamp: timestamp)
    }
}
