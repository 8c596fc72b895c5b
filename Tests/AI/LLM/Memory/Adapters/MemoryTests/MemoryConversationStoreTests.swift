import Foundation
import NimbusCore
import NimbusLLM
import NimbusLLMMemory
import NimbusLLMMemoryConformance
import NimbusLLMMemoryMemory
import NimbusTesting
import Testing

@Suite struct MemoryConversationStoreTests {
    @Test(arguments: ConversationStoreConformance.checks)
    func memoryStoreConforms(_ check: ConversationStoreConformance.Check) async throws {
        let clock = ManualClock()
        try await check.run(.init(makeStore: { ttl in MemoryConversationStore(clock: clock, defaultTTL: ttl) },
                                  advance: { clock.advance(by: $0) }))
    }


    @Test func opensByURL() async throws {
        let memory = try await ConversationMemory.open("mem://?ttl=1h", openers: ConversationMemory.openers.withMemory(), policy: FullBuffer())
        try await memory.append([.user("hi")], to: "c")
        #expect(try await memory.context(for: "c").map(\.text) == ["hi"])
        let typo = await #expect(throws: NimbusError.self) { try await ConversationMemory.openers.withMemory().open("mem://?tll=1h") }
        #expect(typo?.message.contains("ttl") == true)
    }
}
