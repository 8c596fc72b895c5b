import NimbusCore
import NimbusLLM
import NimbusTesting
import Testing

/// The fake's spec check is live: a field the adapter sends, misspelled on the way, is refused.
@Suite(.timeLimit(.minutes(1))) struct OllamaSpecMutationTests {
    @Test func aMisspelledOptionsIsRefused() async throws {
        let fake = try await OllamaFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "ok")))
        await fake.server.expectRefusal(renaming: "options", to: "option") {
            _ = try await fake.model().chat(ChatRequest(messages: [.user("hi")], temperature: 0.2, maxTokens: 5))
        }
    }
}
