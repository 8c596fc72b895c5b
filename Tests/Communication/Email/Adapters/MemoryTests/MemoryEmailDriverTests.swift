import Foundation
import NimbusCore
import NimbusEmail
import NimbusEmailConformance
import NimbusTesting
import Testing
import NimbusEmailMemory

@Suite("Memory email outbox")
struct MemoryEmailDriverTests {
    static let recipients = [try! EmailAddress("a@example.org"), try! EmailAddress("b@example.org"), try! EmailAddress("c@example.org")]

    @Test func theMemoryOutboxKeepsWhatWasSentAndReportsRefusals() async throws {
        let outbox = MemoryEmailDriver(refuse: { $0.localPart.hasPrefix("bounce") ? .init(recipient: $0, code: "550", message: "no such user", temporary: false) : nil })
        let client = EmailClient(driver: outbox)
        let receipt = try await client.send(EmailMessage(from: try EmailAddress("a@example.com"), to: [try EmailAddress("b@example.org"), try EmailAddress("bounce@example.org")],
                                                         subject: "s", text: "t"))
        #expect(receipt.accepted.map(\.address) == ["b@example.org"] && receipt.rejected.map(\.recipient.address) == ["bounce@example.org"])
        #expect(outbox.sent.count == 1 && outbox.sent[0].recipients.map(\.address) == ["b@example.org"])
        let error = await #expect(throws: NimbusError.self) {
            try await client.send(EmailMessage(from: try EmailAddress("a@example.com"), to: [try EmailAddress("bounce@example.org")], subject: "s", text: "t"))
        }
        #expect(error?.code == .failedPrecondition && error?.message.contains("no such user") == true)
    }

    @Test func opensByURL() async throws {
        #expect(try await EmailClient.open("mem://", openers: EmailClient.openers.withMemory()).provider == "memory")
        await #expect(throws: NimbusError.self) { try await EmailClient.open("mem://?size=3", openers: EmailClient.openers.withMemory()) }
    }

    @Test(arguments: EmailConformance.suite.checks(supportedBy: [.readBack]))
    func memoryOutbox(_ check: ConformanceCheck<EmailConformance.Harness>) async throws {
        let outbox = MemoryEmailDriver()
        try await check.run(.init(makeDriver: { outbox }, from: try EmailAddress("shop@example.com"), recipients: Self.recipients) { receipt in
            outbox.sent.last { $0.document.messageID == receipt.messageID }?.document.bytes
        })
    }

    @Test func everyCheckRuns() {
        #expect(EmailConformance.suite.unsupported(by: [.readBack]).isEmpty)
    }
}
