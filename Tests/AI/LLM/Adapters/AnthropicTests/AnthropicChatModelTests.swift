import Foundation
import NimbusCore
import NimbusHTTP
import NimbusLLM
import NimbusLLMAnthropic
import NimbusLLMConformance
import NimbusLLMToolsConformance
import NimbusTesting
import Testing

@Suite(.timeLimit(.minutes(2))) struct AnthropicChatModelTests {
    static let capabilities: Set<ConformanceCapability> = [.responseMetadata, .providerToolCallIDs, .reasoning, .rawErrors, .malformedBodies, .contentFilterFinish]
    static let notSupported: [String] = []

    @Test func checksItsProviderCannotRunAreNamed() {
        let unsupported = LLMConformance.suite.unsupported(by: Self.capabilities).map(\.name)
        #expect(unsupported == Self.notSupported, "not supported: \(unsupported)")
    }

    /// The conformance harness over a fresh fake.
    static func harness(_ fake: AnthropicFake) -> LLMConformance.Harness {
        LLMConformance.Harness(model: fake.model(), capabilities: Self.capabilities,
                                             script: { fake.script($0) }, expectedUsage: { usage in
                                                 var usage = usage
                                                 usage.reasoningTokens = 0   // Anthropic does not count thinking tokens apart
                                                 return usage
                                             })
    }

    @Test(arguments: LLMConformance.suite.checks(supportedBy: capabilities) + AgentConformance.checks)
    func conformance(_ check: LLMConformance.Check) async throws {
        let fake = try await AnthropicFake.start()
        defer { Task { await fake.server.shutdown() } }
        try await check.run(Self.harness(fake))
        #expect(fake.specMismatches.isEmpty, "requests departed from the Messages API spec: \(fake.specMismatches)")
    }


    @Test func requestsUseTopLevelSystemToolResultTurnsCacheControlAndThinking() async throws {
        let fake = try await AnthropicFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "ok")))
        let calls = [ToolCall(id: "toolu_01", name: "get_weather", arguments: #"{"city":"Paris"}"#),
                     ToolCall(id: "toolu_02", name: "get_weather", arguments: #"{"city":"Oslo"}"#)]
        var system = ChatMessage.system("Long policy text.")
        system.cacheBreakpoint = true
        let request = ChatRequest(messages: [
            system, .user([.text("Weather?"), .image(.data(Data([9, 9]), mediaType: "image/jpeg"))]),
            .assistant("Checking.", toolCalls: calls),
            .tool(callID: "toolu_01", "18 °C"), .tool(callID: "toolu_02", "-3 °C", isError: true), .user("Compare them."),
        ], tools: [ToolDefinition(name: "get_weather", parameters: ["type": "object", "properties": ["city": ["type": "string"]]])],
           toolChoice: .required, parallelToolCalls: false, temperature: 1.7, maxTokens: 1000, stop: ["###"], reasoning: Reasoning(effort: .low), user: "u-1")
        _ = try await fake.model().chat(request)
        let sent = try #require(fake.server.requests.first)
        let body = try sent.json()
        #expect(body["system"] == [["type": "text", "text": "Long policy text.", "cache_control": ["type": "ephemeral"]]])
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages.map { $0["role"] } == ["user", "assistant", "user"])
        #expect(messages[0]["content"]?.arrayValue?.last?["source"] == ["type": "base64", "media_type": "image/jpeg", "data": "CQk="])
        #expect(messages[1]["content"]?.arrayValue?.map { $0["type"] } == ["text", "tool_use", "tool_use"])
        #expect(messages[1]["content"]?.arrayValue?[1]["input"] == ["city": "Paris"])
        #expect(messages[2]["content"]?.arrayValue?.map { $0["type"] } == ["tool_result", "tool_result", "text"])
        #expect(messages[2]["content"]?.arrayValue?[1]["is_error"] == true)
        #expect(body["tool_choice"] == ["type": "any", "disable_parallel_tool_use": true])
        #expect(body["thinking"] == ["type": "enabled", "budget_tokens": 2048])
        #expect(body["max_tokens"] == 3048)
        #expect(body["temperature"] == nil)        // not allowed with thinking
        #expect(body["stop_sequences"] == ["###"])
        #expect(body["metadata"] == ["user_id": "u-1"])
        #expect(fake.specMismatches.isEmpty, "\(fake.specMismatches)")
    }

    @Test func temperatureIsClampedToAnthropicsRangeAndJSONSchemaGoesToOutputConfig() async throws {
        let fake = try await AnthropicFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "{}")))
        var request = ChatRequest(messages: [.user("json please")], temperature: 1.5)
        request.responseFormat = .jsonSchema(name: "x", schema: ["type": "object", "properties": [:]])
        _ = try await fake.model().chat(request)
        let body = try #require(fake.server.requests.first).json()
        #expect(body["temperature"] == 1)
        #expect(body["max_tokens"] == 4096)
        #expect(body["output_config"] == ["format": ["type": "json_schema", "schema": ["type": "object", "properties": [:]]]])
    }

    @Test func anOverloadedErrorEventMidStreamIsThrown() async throws {
        let fake = try await AnthropicFake.start()
        defer { Task { await fake.server.shutdown() } }
        let events = AnthropicFake.transcript(.init(text: "Hello there"))
        fake.server.route(.POST, "/v1/messages", reply: .sse(Array(events.prefix(4)) + [
            ServerSentEvent(event: "error", data: #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
        ]))
        do {
            _ = try await fake.model().stream(ChatRequest(messages: [.user("hi")])).collect()
            Issue.record("expected overloaded")
        } catch let error as NimbusError {
            #expect(error.llmFailure?.kind == .overloaded)
            #expect(error.code == .unavailable)
        }
    }

    @Test func overloaded529IsRetried() async throws {
        let fake = try await AnthropicFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/v1/messages", replies: [
            AnthropicFake.error(529, "overloaded_error", "Overloaded", headers: [("retry-after", "0")]),
            .json(200, AnthropicFake.message(.init(text: "made it"))),
        ])
        let model = fake.model(retry: RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(1), maxDelay: .milliseconds(10)))
        #expect(try await model.chat([.user("hi")]).text == "made it")
        #expect(fake.server.requests.count == 2)
    }

    @Test func unsignedReasoningFromAnotherProviderIsDroppedAndAudioIsRefused() async throws {
        let fake = try await AnthropicFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "ok")))
        let history: [ChatMessage] = [.user("q"), ChatMessage(role: .assistant, content: [.reasoning("from gpt"), .text("a")]), .user("more")]
        _ = try await fake.model().chat(history)
        let body = try #require(fake.server.requests.first).json()
        #expect(body["messages"]?.arrayValue?[1]["content"] == [["type": "text", "text": "a"]])
        await #expect(throws: NimbusError.self) {
            try await fake.model().chat([.user([.audio(data: Data([1]), format: "wav")])])
        }
    }

    @Test func listsModels() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.GET, "/v1/models", reply: .json(200, #"{"data":[{"type":"model","id":"claude-sonnet-4-20250514","display_name":"Claude Sonnet 4","created_at":"2025-05-22T00:00:00Z"}],"has_more":false,"first_id":"claude-sonnet-4-20250514","last_id":"claude-sonnet-4-20250514"}"#))
        let model = ChatModel(driver: AnthropicChatModelDriver(configuration: .init(apiKey: "k", baseURL: server.baseURL)), configuration: .init(defaultModel: "x"))
        let models = try await model.models()
        #expect(models.map(\.id) == ["claude-sonnet-4-20250514"])
        #expect(models.first?.created == Date(timeIntervalSince1970: 1_747_872_000))
    }
}
