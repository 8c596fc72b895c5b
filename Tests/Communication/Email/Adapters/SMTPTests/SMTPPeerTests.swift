import _CryptoExtras
import Crypto
import Foundation
import NIOSSL
import NimbusCore
import NimbusEmail
import NimbusTesting
import Synchronization
import Testing
@testable import NimbusEmailSMTP
import NimbusEmailConformance

/// Against aiosmtpd (`scripts/peers up smtp`): what arrives is read back by Python's `email` package and
/// its DKIM signature checked by dkimpy.
@Suite("SMTP against aiosmtpd", .requires(.smtp), .serialized)
struct SMTPPeerTests {
    static let user = "nimbus", password = "peer-password", token = "peer-oauth-token"

    static func configuration(port: Int = 2525, security: SMTPConfiguration.Security = .startTLS(required: true),
                              authentication: SMTPAuthentication = .password(user: user, password: Secret(password)),
                              trustPeerCA: Bool = true) throws -> SMTPConfiguration {
        _ = try Peer.smtp.url()
        var tls = TLSConfiguration.makeClientConfiguration()
        if trustPeerCA, let ca = Peer.setting("NIMBUS_PEER_SMTP_CA") { tls.trustRoots = .file(ca) }
        return SMTPConfiguration(host: "127.0.0.1", port: port, security: security, tls: tls, authentication: authentication,
                                 heloName: "nimbus-tests.localhost", timeouts: .init(connect: .seconds(5), greeting: .seconds(10), command: .seconds(10), dataEnd: .seconds(20)))
    }

    static func maildir() throws -> URL {
        URL(fileURLWithPath: try #require(Peer.setting("NIMBUS_PEER_SMTP_MAILDIR"), "scripts/peers up smtp exports NIMBUS_PEER_SMTP_MAILDIR"))
    }

    /// The envelope aiosmtpd recorded for a queue id.
    static func envelope(_ queueID: String) throws -> [String: Any] {
        let data = try Data(contentsOf: try maildir().appendingPathComponent(queueID + ".json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Python's reading of the message (and dkimpy's verdict when a record is given).
    static func inspect(_ queueID: String, dkimRecord: String? = nil) async throws -> [String: Any] {
        let python = try #require(Peer.setting("NIMBUS_PEER_SMTP_PYTHON"))
        let script = try #require(Bundle.module.url(forResource: "inspect_message", withExtension: "py", subdirectory: "Fixtures")).path
        let file = try maildir().appendingPathComponent(queueID + ".eml").path
        let result = try await ProcessRunner.run(python, [script, file] + (dkimRecord.map { [$0] } ?? []))
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.output)")
    }

    static let pdf = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + (0..<200).map { UInt8(truncatingIfNeeded: $0) }

    static func richMessage(subject: String = "Your receipt 🧾 — Größe und Übergröße, a subject long enough to be folded over several lines") throws -> EmailMessage {
        let longLine = String(repeating: "0123456789", count: 120)           // 1200 characters: quoted-printable needed
        var message = EmailMessage(
            from: try EmailAddress("Zoë Exämple <zoe@example.com>"),
            to: [try EmailAddress("\"Doe, Jane\" <jane@example.org>"), try EmailAddress("reject-unknown@example.org")],
            cc: [try EmailAddress("Ops <ops@example.net>")],
            bcc: [try EmailAddress("audit@example.com")],
            replyTo: [try EmailAddress("support@example.com")],
            subject: subject,
            text: "Hello Jane,\n.a line that starts with a dot\nTrailing spaces   \n\(longLine)\nGrüße, Zoë\n",
            html: "<p>Hello <b>Jane</b> — <img src=\"cid:logo\"></p>\n.dot\n",
            attachments: [.file(named: "Rechnung März.pdf", contentType: "application/pdf", data: pdf),
                          .inline(id: "logo", named: "logo.png", contentType: "image/png", data: png)],
            headers: [(name: "X-Campaign", value: "winter-2026")])
        message.listUnsubscribe = .init(mailto: "unsubscribe@example.com", url: URL(string: "https://example.com/u/42"), oneClick: true)
        return message
    }

    static func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    @Test func aRichMessageArrivesWholeAndItsRSADKIMSignatureVerifies() async throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let signer = try DKIMSigner(domain: "example.com", selector: "nimbus2026", rsaPrivateKeyPEM: key.pemRepresentation)
        let driver = try SMTPEmailDriver(configuration: try Self.configuration())
        let client = EmailClient(driver: driver, configuration: .init(dkim: signer))
        let message = try Self.richMessage()
        let receipt = try await client.send(message)
        try await driver.close()

        #expect(Set(receipt.accepted.map(\.address)) == ["jane@example.org", "ops@example.net", "audit@example.com"])
        let rejection = try #require(receipt.rejected.first)
        #expect(rejection.recipient.address == "reject-unknown@example.org" && rejection.code == "550 5.1.1" && !rejection.temporary)
        let queueID = try #require(receipt.providerMessageID)

        let envelope = try Self.envelope(queueID)
        #expect(envelope["mail_from"] as? String == "zoe@example.com")
        #expect(Set(envelope["rcpt_tos"] as? [String] ?? []) == ["jane@example.org", "ops@example.net", "audit@example.com"], "bcc in the envelope")
        #expect((envelope["mail_options"] as? [String] ?? []).contains { $0.hasPrefix("SIZE=") })
        #expect(envelope["tls"] as? Bool == true && envelope["authenticated"] as? Bool == true)
        #expect(envelope["ehlo"] as? String == "nimbus-tests.localhost")

        let read = try await Self.inspect(queueID, dkimRecord: signer.dnsRecord.value)
        #expect(read["dkim"] as? Bool == true, "dkimpy verifies the rsa-sha256 signature")
        #expect(read["subject"] as? String == message.subject)
        #expect((read["from"] as? [[String: String]])?.first == ["name": "Zoë Exämple", "address": "zoe@example.com"])
        #expect((read["to"] as? [[String: String]])?.first == ["name": "Doe, Jane", "address": "jane@example.org"])
        #expect(read["bcc_header"] is NSNull, "Bcc never appears in the headers")
        #expect(read["message_id"] as? String == receipt.messageID)
        #expect(read["list_unsubscribe_post"] as? String == "List-Unsubscribe=One-Click")
        #expect((read["defects"] as? [String])?.isEmpty == true, "\(read["defects"] ?? "")")
        #expect((read["longest_line"] as? Int ?? 9999) <= 998)
        #expect(read["bare_lf"] as? Bool == false)
        #expect(read["content_type"] as? String == "multipart/mixed")
        let parts = try #require(read["parts"] as? [[String: Any]])
        #expect(parts.map { $0["type"] as? String } == ["multipart/mixed", "multipart/related", "multipart/alternative", "text/plain", "text/html", "image/png", "application/pdf"])
        let text = try #require(parts.first { $0["type"] as? String == "text/plain" })
        #expect((text["text"] as? String)?.replacingOccurrences(of: "\r\n", with: "\n") == message.text, "dot-stuffing, quoted-printable and UTF-8 undone exactly")
        let html = try #require(parts.first { $0["type"] as? String == "text/html" })
        #expect((html["text"] as? String)?.replacingOccurrences(of: "\r\n", with: "\n") == message.html)
        let file = try #require(parts.first { $0["type"] as? String == "application/pdf" })
        #expect(file["filename"] as? String == "Rechnung März.pdf" && file["disposition"] as? String == "attachment")
        #expect(file["sha256"] as? String == Self.sha256(Self.pdf))
        let logo = try #require(parts.first { $0["type"] as? String == "image/png" })
        #expect(logo["cid"] as? String == "<logo>" && logo["disposition"] as? String == "inline" && logo["sha256"] as? String == Self.sha256(Self.png))
    }

    @Test func ed25519DKIMOverImplicitTLSWithAuthLogin() async throws {
        let key = Curve25519.Signing.PrivateKey()
        let signer = try DKIMSigner(domain: "example.com", selector: "ed", ed25519PrivateKeyBase64: key.rawRepresentation.base64EncodedString())
        let driver = try SMTPEmailDriver(configuration: try Self.configuration(port: 2465, security: .implicitTLS,
                                                                                authentication: .password(user: Self.user, password: Secret(Self.password), mechanism: .login)))
        let message = EmailMessage(from: try EmailAddress("news@example.com"), to: [try EmailAddress("reader@example.org")],
                                   subject: "Plain ASCII", text: "Short and simple.\n")
        let receipt = try await EmailClient(driver: driver, configuration: .init(dkim: signer)).send(message)
        try await driver.close()
        let read = try await Self.inspect(try #require(receipt.providerMessageID), dkimRecord: signer.dnsRecord.value)
        #expect(read["dkim"] as? Bool == true, "dkimpy verifies the ed25519-sha256 signature (RFC 8463)")
        #expect(signer.dnsRecord.value.hasPrefix("v=DKIM1; k=ed25519; p="))
        // A tampered body no longer verifies: the check can fail.
        let file = try Self.maildir().appendingPathComponent(try #require(receipt.providerMessageID) + ".eml")
        var raw = try Data(contentsOf: file)
        raw.append(contentsOf: Array("tampered\r\n".utf8))
        let tampered = file.deletingLastPathComponent().appendingPathComponent("tampered-\(UUID().uuidString).eml")
        try raw.write(to: tampered)
        let python = try #require(Peer.setting("NIMBUS_PEER_SMTP_PYTHON"))
        let script = try #require(Bundle.module.url(forResource: "inspect_message", withExtension: "py", subdirectory: "Fixtures")).path
        let output = try await ProcessRunner.run(python, [script, tampered.path, signer.dnsRecord.value])
        #expect(output.stdout.contains("\"dkim\": false"), "\(output.output)")
    }

    @Test func xoauth2SignsInWithTheTokenAndAWrongTokenIsUnauthenticated() async throws {
        let good = try SMTPEmailDriver(configuration: try Self.configuration(authentication: .xoauth2(user: Self.user, token: { Secret(Self.token) })))
        let message = EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("user@example.org")], subject: "OAuth", text: "ok")
        let receipt = try await EmailClient(driver: good).send(message)
        try await good.close()
        #expect(try Self.envelope(try #require(receipt.providerMessageID))["authenticated"] as? Bool == true)

        let bad = try SMTPEmailDriver(configuration: try Self.configuration(authentication: .xoauth2(user: Self.user, token: { Secret("expired") })))
        let error = await #expect(throws: NimbusError.self) { try await EmailClient(driver: bad).send(message) }
        #expect(error?.code == .unauthenticated, "\(String(describing: error))")
        try await bad.close()
    }

    @Test func aWrongPasswordIsUnauthenticatedAndTheSecretIsNotInTheError() async throws {
        let driver = try SMTPEmailDriver(configuration: try Self.configuration(authentication: .password(user: Self.user, password: Secret("not-the-password"))))
        let message = EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("user@example.org")], subject: "x", text: "x")
        let error = await #expect(throws: NimbusError.self) { try await EmailClient(driver: driver).send(message) }
        #expect(error?.code == .unauthenticated)
        #expect(!"\(String(describing: error))".contains("not-the-password"))
        try await driver.close()
    }

    @Test func tlsIsVerifiedRequiredWhenAskedAndCredentialsNeverGoInClearText() async throws {
        let message = EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("user@example.org")], subject: "x", text: "x")
        // The peer's certificate is signed by a CA this client does not trust: refused, over implicit TLS and after STARTTLS.
        // STARTTLS is tried 20 times: the handshake can fail before the EHLO that follows reaches the pipeline, and that EHLO
        // must then fail at once with the TLS error (it once waited for the command time limit).
        let untrusted = try SMTPEmailDriver(configuration: try Self.configuration(port: 2465, security: .implicitTLS, trustPeerCA: false))
        let tlsError = await #expect(throws: NimbusError.self) { try await EmailClient(driver: untrusted, configuration: .init(retry: .none)).send(message) }
        #expect(tlsError?.code == .failedPrecondition, "\(String(describing: tlsError))")
        try await untrusted.close()
        for _ in 0..<20 {
            let afterStartTLS = try SMTPEmailDriver(configuration: try Self.configuration(trustPeerCA: false))
            let error = await #expect(throws: NimbusError.self) { try await EmailClient(driver: afterStartTLS, configuration: .init(retry: .none)).send(message) }
            #expect(error?.code == .failedPrecondition, "\(String(describing: error))")
            try await afterStartTLS.close()
        }
        // Port 2526 offers no STARTTLS: required fails, opportunistic sends in clear text (without AUTH).
        let required = try SMTPEmailDriver(configuration: try Self.configuration(port: 2526, authentication: .none))
        let missing = await #expect(throws: NimbusError.self) { try await EmailClient(driver: required).send(message) }
        #expect(missing?.code == .failedPrecondition && missing?.message.contains("STARTTLS") == true)
        try await required.close()
        let opportunistic = try SMTPEmailDriver(configuration: try Self.configuration(port: 2526, security: .startTLS(required: false), authentication: .none))
        let receipt = try await EmailClient(driver: opportunistic).send(message)
        #expect(try Self.envelope(try #require(receipt.providerMessageID))["tls"] as? Bool == false)
        try await opportunistic.close()
        // A password over a clear-text session is refused before anything is sent.
        let clear = try SMTPEmailDriver(configuration: try Self.configuration(port: 2526, security: .none))
        let refused = await #expect(throws: NimbusError.self) { try await EmailClient(driver: clear).send(message) }
        #expect(refused?.code == .failedPrecondition && refused?.message.contains("without TLS") == true)
        try await clear.close()
    }

    @Test func refusalsAreReportedPerRecipientAndTemporaryFailuresAreRetried() async throws {
        let driver = try SMTPEmailDriver(configuration: try Self.configuration())
        let client = EmailClient(driver: driver, configuration: .init(retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(10), maxDelay: .milliseconds(20))))
        // Everyone refused: an error naming each refusal.
        let nobody = EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("reject-a@example.org"), try EmailAddress("busy-b@example.org")],
                                  subject: "x", text: "x")
        let refused = await #expect(throws: NimbusError.self) { try await client.send(nobody) }
        #expect(refused?.code == .failedPrecondition && refused?.message.contains("550 5.1.1") == true && refused?.message.contains("451 4.2.1") == true)
        // A temporary refusal is marked so.
        let partial = EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("ok@example.org"), try EmailAddress("busy-b@example.org")],
                                   subject: "x", text: "x")
        let receipt = try await client.send(partial)
        #expect(receipt.accepted.map(\.address) == ["ok@example.org"] && receipt.rejected.first?.temporary == true)
        // 451 after DATA: retried, then reported as retryable; nothing was stored.
        let before = try FileManager.default.contentsOfDirectory(atPath: try Self.maildir().path).count
        let deferred = EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("tempfail-data@example.org")], subject: "x", text: "x")
        let error = await #expect(throws: NimbusError.self) { try await client.send(deferred) }
        #expect(error?.code == .unavailable && error?.isRetryable == true && error?.message.contains("451 4.3.0") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: try Self.maildir().path).count == before)
        // Too large for SIZE: refused before DATA.
        let huge = EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("ok@example.org")], subject: "big",
                                text: "x", attachments: [.file(named: "big.bin", contentType: "application/octet-stream", data: [UInt8](repeating: 1, count: 900_000))])
        let tooLarge = await #expect(throws: NimbusError.self) { try await client.send(huge) }
        #expect(tooLarge?.code == .invalidArgument && tooLarge?.message.contains("at most 1048576") == true)
        try await driver.close()
    }

    @Test func sessionsAreReusedWithRSETAndThePoolBoundsConnections() async throws {
        var configuration = try Self.configuration()
        configuration.maxConnections = 2
        let driver = try SMTPEmailDriver(configuration: configuration)
        let client = EmailClient(driver: driver)
        func message(_ index: Int) throws -> EmailMessage {
            EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("user\(index)@example.org")], subject: "n\(index)", text: "body \(index)")
        }
        var sequential: [String] = []
        for index in 0..<4 { sequential.append(try #require(try await client.send(try message(index)).providerMessageID)) }
        let ports = try sequential.map { try #require(try Self.envelope($0)["peer"] as? [Any]).last as? Int }
        #expect(Set(ports).count == 1, "one session carried the four messages: \(ports)")
        let concurrent = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 10..<18 { group.addTask { try #require(try await client.send(try message(index)).providerMessageID) } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        let concurrentPorts = Set(try concurrent.map { try #require(try Self.envelope($0)["peer"] as? [Any]).last as? Int })
        #expect(concurrent.count == 8 && concurrentPorts.count <= 2, "at most maxConnections sessions: \(concurrentPorts)")
        try await driver.close()
        await #expect(throws: NimbusError.self) { try await client.send(try message(99)) }
    }

    @Test func smtpUTF8IsAskedForWhenAnAddressNeedsIt() async throws {
        let driver = try SMTPEmailDriver(configuration: try Self.configuration())
        let message = EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("jörg@bücher.example")], subject: "ü", text: "ü")
        let receipt = try await EmailClient(driver: driver).send(message)
        try await driver.close()
        let envelope = try Self.envelope(try #require(receipt.providerMessageID))
        #expect((envelope["mail_options"] as? [String] ?? []).contains("SMTPUTF8"))
        #expect(envelope["rcpt_tos"] as? [String] == ["jörg@xn--bcher-kva.example"], "the domain travels in its ASCII form")
    }

    @Test func theURLOpenerReadsTheSMTPURL() async throws {
        let ca = try #require(Peer.setting("NIMBUS_PEER_SMTP_CA"))
        let client = try await EmailClient.open("smtp://nimbus:peer-password@127.0.0.1:2525?ca=\(ca)&helo=opener.localhost&pool=1", openers: EmailClient.openers.withSMTP())
        let receipt = try await client.send(EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("user@example.org")], subject: "url", text: "x"))
        try await client.close()
        #expect(try Self.envelope(try #require(receipt.providerMessageID))["ehlo"] as? String == "opener.localhost")
    }
}

extension SMTPPeerTests {
    @Test func aDroppedConnectionBeforeDataIsRetriedButAfterDataIsNot() async throws {
        let driver = try SMTPEmailDriver(configuration: try Self.configuration())
        let attempts = AttemptCounter()
        let policy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(10), maxDelay: .milliseconds(20),
                                 isRetryable: { error in attempts.add(); return (error as? NimbusError)?.isRetryable ?? false })
        let client = EmailClient(driver: driver, configuration: .init(retry: policy))
        let early = EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("drop-at-rcpt@example.org")], subject: "x", text: "x")
        let dropped = await #expect(throws: NimbusError.self) { try await client.send(early) }
        #expect(dropped?.code == .unavailable && dropped?.isRetryable == true && attempts.value == 2, "asked after attempts 1 and 2 (the third is the last): \(String(describing: dropped)), \(attempts.value)")
        attempts.reset()
        let late = EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("drop-after-data@example.org")], subject: "x", text: "x")
        let ambiguous = await #expect(throws: NimbusError.self) { try await client.send(late) }
        #expect(ambiguous?.isRetryable == false && ambiguous?.message.contains("may or may not have been delivered") == true && attempts.value == 1,
                "\(String(describing: ambiguous)), \(attempts.value) attempts")
        // The pool recovers: the next message goes out on a new session.
        let receipt = try await client.send(EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("ok@example.org")], subject: "x", text: "x"))
        #expect(receipt.accepted.count == 1)
        try await driver.close()
    }
}

final class AttemptCounter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    func reset() { count.withLock { $0 = 0 } }
    var value: Int { count.withLock { $0 } }
}

extension SMTPPeerTests {
    /// aiosmtpd keeps every message it took: each check reads the delivered MIME back.
    @Test(arguments: EmailConformance.suite.checks(supportedBy: [.readBack]))
    func conformance(_ check: ConformanceCheck<EmailConformance.Harness>) async throws {
        let recipients = [try EmailAddress("a@example.org"), try EmailAddress("b@example.org"), try EmailAddress("c@example.org")]
        try await check.run(.init(makeDriver: { try SMTPEmailDriver(configuration: try Self.configuration()) }, from: try EmailAddress("shop@example.com"),
                                  recipients: recipients) { receipt in
            guard let id = receipt.providerMessageID else { return nil }
            return Array(try Data(contentsOf: try Self.maildir().appendingPathComponent(id + ".eml")))
        })
    }
}

extension SMTPPeerTests {
    @Test func aSenderWaitingForASessionCanBeCancelled() async throws {
        var configuration = try Self.configuration()
        configuration.maxConnections = 1
        let driver = try SMTPEmailDriver(configuration: configuration)
        let held = try await driver.pool.checkout()
        let waiting = Task { try await driver.pool.checkout() }
        try await Task.sleep(for: .milliseconds(50))                 // let it queue (if it has not yet, it sees the cancellation at once)
        waiting.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiting.value }
        await driver.pool.checkin(held)
        let receipt = try await EmailClient(driver: driver).send(EmailMessage(from: try EmailAddress("app@example.com"), to: [try EmailAddress("u@example.org")],
                                                                              subject: "after a cancelled wait", text: "x"))
        #expect(receipt.accepted.count == 1, "the line moved on")
        try await driver.close()
    }
}
