import NimbusChat
import NimbusCore
import Testing
import NimbusChatMemory

@Suite("Chat client")
struct ChatTests {
    @Test func theMemoryDriverKeepsPostsAndEmptyMessagesAreRefused() async throws {
        let memory = MemoryChatDriver()
        let chat = ChatClient(driver: memory)
        let receipt = try await chat.post(ChatPost(channel: "ops", text: "deployed"))
        #expect(receipt.messageID == "1" && memory.posted.map(\.text) == ["deployed"])
        await #expect(throws: NimbusError.self) { try await chat.post(ChatPost(text: "")) }
        #expect(try await ChatClient.openers.withMemory().open("mem://").provider == "memory")
    }
}
