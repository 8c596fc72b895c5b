import NimbusCore
import NimbusLLM
import NimbusTesting
import Testing

/// The fake's spec check is live: a field the adapter sends, misspelled on the way, is refused.
@Suite(.timeLimit(.minutes(1))) struct OpenAISpecMutationTests {
    @Test func aMisspelledMaxCompletionTokensIsRefused() async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "ok")))
        await fake.server.expectRefusal(renaming: "max_completion_tokens", to: "max_completion_token") {
            _ = try await fake.model().chat(ChatRequest(messages: [.user("hi")], maxTokens: 5))
        }
    }
}
