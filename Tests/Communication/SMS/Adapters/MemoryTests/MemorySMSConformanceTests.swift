import NimbusCore
import NimbusSMS
import NimbusSMSConformance
import NimbusSMSMemory
import NimbusTesting
import Testing

/// The SMS suite against the embedded outbox.
@Suite("Memory SMS conformance")
struct MemorySMSConformanceTests {
    /// The outbox takes any number.
    static let capabilities: Set<ConformanceCapability> = [.readBack]

    @Test(arguments: SMSConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<SMSConformance.Harness>) async throws {
        let memory = MemorySMSDriver()
        try await check.run(.init(makeDriver: { memory }, from: .number(try PhoneNumber("+15005550006")), to: try PhoneNumber("+14155550100"),
                                  readBack: { _ in memory.sent.last.map { SMSConformance.Delivered(to: $0.to.e164, body: $0.body) } }))
    }

    @Test func notSupported() {
        #expect(SMSConformance.suite.unsupported(by: Self.capabilities).map(\.needs) == [[.rejectsInvalidNumbers]])
    }
}
