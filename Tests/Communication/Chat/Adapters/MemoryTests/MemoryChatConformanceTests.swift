import NimbusChat
import NimbusChatConformance
import NimbusChatMemory
import NimbusCore
import NimbusTesting
import Testing

/// The chat suite against the embedded driver.
@Suite("Memory chat conformance")
struct MemoryChatConformanceTests {
    static let capabilities: Set<ConformanceCapability> = [.readBack, .messageIDs, .threads]

    @Test(arguments: ChatConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<ChatConformance.Harness>) async throws {
        let memory = MemoryChatDriver()
        try await check.run(.init(makeDriver: { memory }, channel: "C0123", threadID: "1", readBack: {
            memory.posted.last.map { ChatConformance.Delivered(channel: $0.channel, text: $0.text, threadID: $0.threadID) }
        }))
    }

    @Test func everyCheckRuns() {
        #expect(ChatConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }
}
