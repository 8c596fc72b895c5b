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

/// A small MIME reader for checking delivered messages: unfolded headers, RFC 2047 words, multipart bodies,
/// base64 and quoted-printable parts, RFC 2231 file names.
public struct MIMEReader: Sendable {
    public struct Part: Sendable {
        public var contentType: String
        public var filename: String?
        public var data: [UInt8]
    }

    public var headers: [(name: String, value: String)]
    public var parts: [Part]
    /// The message as delivered.
    public let rawBytes: [UInt8]
    /// The message as delivered, as text.
    public var raw: String { String(decoding: rawBytes, as: UTF8.self) }

    public init(_ raw: [UInt8]) throws {
        rawBytes = raw
        let text = String(decoding: raw, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        guard let split = text.range(of: "\n\n") else { throw NimbusError(.invalidArgument, "the message has no blank line after its headers") }
        headers = Self.headers(String(text[..<split.lowerBound]))
        parts = []
        parts = Self.parts(headers: headers, body: String(text[split.upperBound...]))
    }

    public func header(_ name: String) -> String? { headers.first { $0.name.equalsIgnoringASCIICase(name) }?.value }
    public var subject: String? { header("Subject").map(Self.decodeWords) }

    /// The decoded text of the first part of a type.
    public func text(of type: String) -> String? {
        parts.first { $0.contentType.lowercased().hasPrefix(type) }.map { String(decoding: $0.data, as: UTF8.self) }
    }

    static func headers(_ block: String) -> [(name: String, value: String)] {
        var result: [(String, String)] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if let first = line.first, first == " " || first == "\t", !result.isEmpty {
                result[result.count - 1].1 += String(line)
            } else if let colon = line.firstIndex(of: ":") {
                result.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
        }
        return result.map { (name: $0.0, value: $0.1) }
    }

    static func parameter(_ name: String, in value: String) -> String? {
        for piece in value.components(separatedBy: ";").dropFirst() {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            if trimmed.lowercased().hasPrefix(name.lowercased() + "*=") {
                let encoded = trimmed.dropFirst(name.count + 2)
                let afterCharset = encoded.components(separatedBy: "'").last ?? String(encoded)
                return afterCharset.removingPercentEncoding
            }
            if trimmed.lowercased().hasPrefix(name.lowercased() + "=") {
                return decodeWords(trimmed.dropFirst(name.count + 1).trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
            }
        }
        return nil
    }

    static func parts(headers: [(name: String, value: String)], body: String) -> [Part] {
        let contentType = headers.first { $0.name.equalsIgnoringASCIICase("content-type") }?.value ?? "text/plain"
        if contentType.lowercased().hasPrefix("multipart/"), let boundary = parameter("boundary", in: contentType) {
            var result: [Part] = []
            let sections = body.components(separatedBy: "--" + boundary)
            for section in sections.dropFirst() where !section.hasPrefix("--") {
                var content = section
                if content.hasPrefix("\n") { content.removeFirst() }
                if content.hasSuffix("\n") { content.removeLast() }                 // the CRLF before a delimiter is the delimiter's
                guard let split = content.range(of: "\n\n") else { continue }
                result += parts(headers: Self.headers(String(content[..<split.lowerBound])), body: String(content[split.upperBound...]))
            }
            return result
        }
        let encoding = headers.first { $0.name.equalsIgnoringASCIICase("content-transfer-encoding") }?.value.lowercased() ?? "7bit"
        let disposition = headers.first { $0.name.equalsIgnoringASCIICase("content-disposition") }?.value ?? ""
        let data: [UInt8]
        switch encoding {
        case "base64": data = Data(base64Encoded: body.filter { !$0.isWhitespace }).map(Array.init) ?? []
        case "quoted-printable": data = quotedPrintable(body)
        default: data = Array(body.utf8)
        }
        return [Part(contentType: contentType, filename: parameter("filename", in: disposition) ?? parameter("name", in: contentType), data: data)]
    }

    static func quotedPrintable(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "="), index + 1 < bytes.count, bytes[index + 1] == 10 { index += 2; continue }   // soft break
            if bytes[index] == UInt8(ascii: "="), index + 2 < bytes.count, let value = UInt8(String(decoding: bytes[index + 1...index + 2], as: UTF8.self), radix: 16) {
                out.append(value)
                index += 3
                continue
            }
            out.append(bytes[index])
            index += 1
        }
        return out
    }

    /// Decodes RFC 2047 `=?charset?B|Q?…?=` words (whitespace between adjacent words dropped).
    public static func decodeWords(_ value: String) -> String {
        guard value.contains("=?") else { return value }
        var result = "", rest = Substring(value), lastWasWord = false
        while let start = rest.range(of: "=?") {
            let before = rest[..<start.lowerBound]
            if !(lastWasWord && before.allSatisfy(\.isWhitespace)) { result += before }
            let afterStart = rest[start.upperBound...]
            let pieces = afterStart.split(separator: "?", maxSplits: 3, omittingEmptySubsequences: false)
            guard pieces.count >= 3, let end = afterStart.range(of: "?=", range: afterStart.index(afterStart.startIndex, offsetBy: pieces[0].count + pieces[1].count + 2)..<afterStart.endIndex) else {
                result += rest[start.lowerBound...]
                return result
            }
            let encoding = pieces[1].uppercased()
            let payload = String(afterStart[afterStart.index(afterStart.startIndex, offsetBy: pieces[0].count + pieces[1].count + 2)..<end.lowerBound])
            if encoding == "B" {
                result += String(decoding: Data(base64Encoded: payload) ?? Data(), as: UTF8.self)
            } else {
                result += String(decoding: quotedPrintable(payload.replacingOccurrences(of: "_", with: " ")), as: UTF8.self)
            }
            rest = afterStart[end.upperBound...]
            lastWasWord = true
        }
        return result + rest
    }
}
