import Foundation
import NimbusCore
import NimbusEmail
import NimbusTesting
import Testing

/// The behaviour every email driver must have, stated once and run by each driver's tests (memory, file,
/// SMTP against aiosmtpd, SES against moto, SendGrid against its spec-checked fake).
///
/// ```swift
/// @Test(arguments: EmailConformance.suite.checks(supportedBy: [.readBack]))
/// func conformance(_ check: ConformanceCheck<EmailConformance.Harness>) async throws {
///     let outbox = MemoryEmailDriver()
///     try await check.run(.init(makeDriver: { outbox }, from: shop, recipients: [a, b, c]) { receipt in
///         outbox.sent.last { $0.document.messageID == receipt.messageID }?.document.bytes
///     })
/// }
/// ```
/// A check that reads the delivered message needs ``ConformanceCapability/readBack``; a harness that
/// declares it and then cannot find the message fails the check (it could not observe it).
public enum EmailConformance {
    /// Reads back what the driver delivered for a receipt (the raw MIME the server stored).
    public typealias ReadBack = @Sendable (EmailReceipt) async throws -> [UInt8]?

    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes a driver (one per check; it is closed after the check).
        public var makeDriver: @Sendable () async throws -> any EmailDriver
        /// The sender the driver may use (a verified identity for SES).
        public var from: EmailAddress
        /// Three recipients the driver accepts.
        public var recipients: [EmailAddress]
        /// What the provider stored (capability ``ConformanceCapability/readBack``).
        public var readBack: ReadBack?

        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any EmailDriver, from: EmailAddress, recipients: [EmailAddress],
                    readBack: ReadBack? = nil) {
            self.makeDriver = makeDriver
            self.from = from
            self.recipients = recipients
            self.readBack = readBack
        }

        func withClient(_ body: (EmailClient, _ provider: String) async throws -> Void) async throws {
            guard recipients.count >= 3 else { throw NimbusError(.invalidArgument, "the email suite needs three recipients") }
            let driver = try await makeDriver()
            try await EmailClient(driver: driver, configuration: .init(retry: .none)).closing { try await body($0, driver.provider) }
        }

        func delivered(_ receipt: EmailReceipt) async throws -> MIMEReader {
            try MIMEReader(try await ConformanceObservation.read(readBack, receipt, what: "message for \(receipt.messageID)"))
        }
    }

    /// Every check.
    public static let suite = ConformanceSuite<Harness>(domain: "email", checks: [
        ConformanceCheck("every recipient is reported accepted, with the Message-ID") { harness in
            try await harness.withClient { client, provider in
                let message = EmailMessage(from: harness.from, to: [harness.recipients[0]], cc: [harness.recipients[1]], subject: "conformance: recipients", text: "hello")
                let receipt = try await client.send(message)
                #expect(Set(receipt.accepted) == Set(harness.recipients[0...1]), "accepted \(receipt.accepted)")
                #expect(receipt.messageID.hasPrefix("<") && receipt.messageID.hasSuffix(">"), "Message-ID \(receipt.messageID)")
                #expect(receipt.provider == provider)
            }
        },
        ConformanceCheck("bcc recipients get the message; no header names them", needs: [.readBack]) { harness in
            try await harness.withClient { client, _ in
                let hidden = harness.recipients[2]
                let message = EmailMessage(from: harness.from, to: [harness.recipients[0]], bcc: [hidden], subject: "conformance: bcc", text: "hidden copy")
                let receipt = try await client.send(message)
                #expect(receipt.accepted.contains(hidden), "the bcc recipient was not accepted: \(receipt.accepted)")
                let parsed = try await harness.delivered(receipt)
                #expect(!parsed.headers.contains { $0.name.equalsIgnoringASCIICase("bcc") }, "a Bcc header was delivered")
                #expect(!parsed.raw.contains(hidden.smtpAddress), "the bcc address appears in the delivered text")
            }
        },
        ConformanceCheck("a Unicode subject, text and HTML arrive as written", needs: [.readBack]) { harness in
            try await harness.withClient { client, _ in
                let subject = "Grüße, Zoë — 🧾 #1042 " + String(repeating: "long subject ", count: 6)
                let text = "Zoë's receipt:\n.a line with a leading dot\nTrailing spaces   \n" + String(repeating: "0123456789", count: 110) + "\n"
                let html = "<p>Grüße <b>Zoë</b></p>\n"
                let receipt = try await client.send(EmailMessage(from: harness.from, to: [harness.recipients[0]], subject: subject, text: text, html: html))
                let parsed = try await harness.delivered(receipt)
                #expect(parsed.subject == subject)
                #expect(parsed.text(of: "text/plain")?.replacingOccurrences(of: "\r\n", with: "\n") == text, "text part differs")
                #expect(parsed.text(of: "text/html")?.replacingOccurrences(of: "\r\n", with: "\n") == html, "HTML part differs")
                #expect(!parsed.rawBytes.split(separator: 10).contains { $0.count > 999 }, "a line is over 998 bytes")
            }
        },
        ConformanceCheck("attachments arrive byte for byte with their names", needs: [.readBack]) { harness in
            try await harness.withClient { client, _ in
                let bytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
                let message = EmailMessage(from: harness.from, to: [harness.recipients[0]], subject: "conformance: attachment", text: "see attached",
                                           attachments: [.file(named: "Rechnung März.pdf", contentType: "application/pdf", data: bytes)])
                let receipt = try await client.send(message)
                let parsed = try await harness.delivered(receipt)
                let part = try #require(parsed.parts.first { $0.contentType.hasPrefix("application/pdf") }, "no PDF part")
                #expect(part.data == bytes, "the attachment's bytes differ (\(part.data.count) bytes)")
                #expect(part.filename == "Rechnung März.pdf")
            }
        },
        ConformanceCheck("a message without recipients is refused before the driver") { harness in
            try await harness.withClient { client, _ in
                let error = await #expect(throws: NimbusError.self) { _ = try await client.send(EmailMessage(from: harness.from, subject: "nobody", text: "x")) }
                #expect(error?.code == .invalidArgument)
            }
        },
    ])
}
