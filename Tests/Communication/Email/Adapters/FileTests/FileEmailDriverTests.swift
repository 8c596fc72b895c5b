import Foundation
import NimbusCore
import NimbusEmail
import NimbusEmailConformance
import NimbusTesting
import Testing
import NimbusEmailFile

@Suite("File email outbox")
struct FileEmailDriverTests {
    static let recipients = [try! EmailAddress("a@example.org"), try! EmailAddress("b@example.org"), try! EmailAddress("c@example.org")]

    @Test func theFileOutboxWritesOneEmlPerMessageAndOpensByURL() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-outbox-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let client = try await EmailClient.open("file://\(directory.path)", openers: EmailClient.openers.withFile())
        let receipt = try await client.send(EmailMessage(from: try EmailAddress("a@example.com"), to: [try EmailAddress("b@example.org")], subject: "Saved", text: "t"))
        let files = try FileEmailDriver(directory: directory).messages()
        #expect(files.count == 1 && files[0].lastPathComponent == receipt.providerMessageID)
        let text = try String(contentsOf: files[0], encoding: .utf8)
        #expect(text.hasPrefix("X-Nimbus-Envelope-From: a@example.com\r\n") && text.contains("Subject: Saved\r\n") && text.contains(receipt.messageID))
        await #expect(throws: NimbusError.self) { try await EmailClient.open("smtp://host", openers: EmailClient.openers.withFile()) }
        await #expect(throws: NimbusError.self) { try await EmailClient.open("file://\(directory.path)?mode=600", openers: EmailClient.openers.withFile()) }
    }

    @Test(arguments: EmailConformance.suite.checks(supportedBy: [.readBack]))
    func fileOutbox(_ check: ConformanceCheck<EmailConformance.Harness>) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-conformance-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let driver = try FileEmailDriver(directory: directory)
        try await check.run(.init(makeDriver: { driver }, from: try EmailAddress("shop@example.com"), recipients: Self.recipients) { receipt in
            guard let name = receipt.providerMessageID else { return nil }
            let bytes = Array(try Data(contentsOf: directory.appendingPathComponent(name)))
            // Past the two X-Nimbus-Envelope lines the outbox writes first.
            let text = String(decoding: bytes, as: UTF8.self)
            let lines = text.components(separatedBy: "\r\n").drop { $0.hasPrefix("X-Nimbus-Envelope-") }
            return Array(lines.joined(separator: "\r\n").utf8)
        })
    }

    @Test func everyCheckRuns() {
        #expect(EmailConformance.suite.unsupported(by: [.readBack]).isEmpty)
    }
}
