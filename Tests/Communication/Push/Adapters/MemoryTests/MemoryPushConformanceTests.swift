import NimbusCore
import NimbusPush
import NimbusPushConformance
import NimbusPushMemory
import NimbusTesting
import Testing

/// The push suite against the embedded driver (tokens starting with `invalid` are dead).
@Suite("Memory push conformance")
struct MemoryPushConformanceTests {
    static let capabilities: Set<ConformanceCapability> = [.readBack, .deadTokens]

    @Test(arguments: PushConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<PushConformance.Harness>) async throws {
        let memory = MemoryPushDriver()
        try await check.run(.init(makeDriver: { memory }, tokens: ["tok-a", "tok-b", "tok-c"], deadToken: "invalid-1", readBack: { token in
            memory.sent.last { $0.token == token }.map { PushConformance.Delivered(title: $0.notification.title, body: $0.notification.body, data: $0.notification.data) }
        }))
    }

    @Test func everyCheckRuns() {
        #expect(PushConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }
}
