import NimbusCore
import NimbusLLM
import NimbusTesting
import Testing

/// The fake's proto check is live: a field the adapter sends, misspelled on the way, is refused.
@Suite(.timeLimit(.minutes(1))) struct GeminiSpecMutationTests {
    @Test func aMisspelledMaxOutputTokensIsRefused() async throws {
        let fake = try await GeminiFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "ok")))
        await fake.server.expectRefusal(renaming: "maxOutputTokens", to: "maxOutputToken", at: ["generationConfig"]) {
            _ = try await fake.model().chat(ChatRequest(messages: [.user("hi")], maxTokens: 5))
        }
    }
}
