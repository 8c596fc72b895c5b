import NimbusCore
import NimbusEmail
import NimbusEmailConformance
import NimbusTesting
import Testing

/// The email suite against SendGrid's spec-checked fake. SendGrid takes JSON and writes the MIME
/// itself, and the fake keeps no delivered message, so the checks that read the MIME back are not run.
@Suite("SendGrid email conformance", .timeLimit(.minutes(1)))
struct SendGridConformanceTests {
    static let capabilities: Set<ConformanceCapability> = []

    @Test(arguments: EmailConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<EmailConformance.Harness>) async throws {
        let fake = try await SendGridFake.start()
        defer { Task { await fake.server.shutdown() } }
        let recipients = [try EmailAddress("a@example.org"), try EmailAddress("b@example.org"), try EmailAddress("c@example.org")]
        try await check.run(.init(makeDriver: { fake.driver() }, from: try EmailAddress("shop@example.com"), recipients: recipients))
    }

    @Test func notSupported() {
        #expect(EmailConformance.suite.unsupported(by: Self.capabilities).map(\.name) == [
            "bcc recipients get the message; no header names them", "a Unicode subject, text and HTML arrive as written",
            "attachments arrive byte for byte with their names",
        ])
    }
}
