import NimbusCore
import NimbusLLM
import NimbusLLMOpenAI
import NimbusTesting
import Testing

/// Retries live in one layer: the adapter makes one request per call, `ChatModel` retries
/// (a stream only while it opens).
@Suite(.timeLimit(.minutes(1))) struct OpenAIRetryLayerTests {
    @Test func oneFailingCallIsAsManyRequestsAsTheChatModelsAttempts() async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/v1/chat/completions", reply: OpenAIFake.error(503, "The server is overloaded.", type: "server_error", code: nil))
        let request = ChatRequest(messages: [.user("hi")])
        let driver = OpenAIChatModelDriver(configuration: .init(apiKey: Secret("sk-test-123"), baseURL: fake.baseURL))
        await #expect(throws: NimbusError.self) { _ = try await driver.chat(request) }
        #expect(fake.server.requests.count == 1, "the adapter alone: one request")

        let model = fake.model(retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2)))
        let error = await #expect(throws: NimbusError.self) { _ = try await model.chat(request) }
        #expect(error?.code == .unavailable)
        #expect(fake.server.requests.count == 1 + 3, "ChatModel's 3 attempts, none added by the adapter")
        await #expect(throws: NimbusError.self) { _ = try await model.stream(request).collect() }
        #expect(fake.server.requests.count == 1 + 3 + 3, "a stream that fails while opening is retried the same way")
    }
}
