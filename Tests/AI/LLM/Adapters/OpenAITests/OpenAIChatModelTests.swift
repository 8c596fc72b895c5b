import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusLLM
import NimbusLLMConformance
import NimbusLLMToolsConformance
import NimbusLLMOpenAI
import NimbusTesting
import Testing

@Suite(.timeLimit(.minutes(2))) struct OpenAIChatModelTests {
    static let capabilities: Set<ConformanceCapability> = [.responseMetadata, .providerToolCallIDs, .rawErrors, .malformedBodies, .contentFilterFinish]
    static let notSupported: [String] = ["visible reasoning comes before the text, streamed or not"]   // Chat Completions shows no reasoning

    @Test func checksItsProviderCannotRunAreNamed() {
        let unsupported = LLMConformance.suite.unsupported(by: Self.capabilities).map(\.name)
        #expect(unsupported == Self.notSupported, "not supported: \(unsupported)")
    }

    /// The conformance harness over a fresh fake.
    static func harness(_ fake: OpenAIFake) -> LLMConformance.Harness {
        LLMConformance.Harness(model: fake.model(), capabilities: Self.capabilities) {
            fake.script($0)
        }
    }

    @Test(arguments: LLMConformance.suite.checks(supportedBy: capabilities) + AgentConformance.checks)
    func conformance(_ check: LLMConformance.Check) async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        try await check.run(Self.harness(fake))
        #expect(fake.specMismatches.isEmpty, "requests departed from OpenAI's spec: \(fake.specMismatches)")
    }


    @Test func requestsAreWrittenTheWayOpenAIDocumentsThem() async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "ok")))
        fake.script(.reply(.init(text: "ok")))
        let model = fake.model()
        var request = ChatRequest(messages: [.system("Be brief."), .user([.text("What's this?"), .image(.data(Data([1, 2, 3]), mediaType: "image/png"), detail: .high)])],
                                  tools: [ToolDefinition(name: "lookup", parameters: ["type": "object", "properties": ["q": ["type": "string"]]], strict: true)],
                                  toolChoice: .tool("lookup"), maxTokens: 50, stop: ["END"], reasoning: Reasoning(budgetTokens: 20000),
                                  metadata: ["team": "search"], user: "user-42", providerOptions: ["service_tier": "flex"])
        _ = try await model.chat(request)
        request.toolChoice = .required
        _ = try await model.stream(request).collect()
        let sent = fake.server.requests
        #expect(sent.count == 2)
        let body = try sent[0].json()
        #expect(body["model"] == "gpt-4o-mini")
        #expect(body["messages"]?.arrayValue?.first == ["role": "system", "content": "Be brief."])
        #expect(body["messages"]?.arrayValue?.last?["content"]?.arrayValue?.last
                == ["type": "image_url", "image_url": ["url": "data:image/png;base64,AQID", "detail": "high"]])
        #expect(body["tool_choice"] == ["type": "function", "function": ["name": "lookup"]])
        #expect(body["tools"]?.arrayValue?.first?["function"]?["strict"] == true)
        #expect(body["max_completion_tokens"] == 50)
        #expect(body["max_tokens"] == nil)
        #expect(body["stop"] == "END")
        #expect(body["reasoning_effort"] == "high")
        #expect(body["metadata"] == ["team": "search"])
        #expect(body["service_tier"] == "flex")
        #expect(body["stream"] == nil)
        #expect(sent[0].header("OpenAI-Organization") == "org-test")
        let streamed = try sent[1].json()
        #expect(streamed["stream"] == true)
        #expect(streamed["stream_options"] == ["include_usage": true])
        #expect(streamed["tool_choice"] == "required")
        #expect(sent[1].header("accept") == "text/event-stream")
        #expect(fake.specMismatches.isEmpty, "\(fake.specMismatches)")
    }

    @Test func rateLimitsAreRetriedAfterTheServersWaitAndQuotaIsNot() async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/v1/chat/completions", replies: [
            OpenAIFake.error(429, "Rate limit reached", type: "requests", code: "rate_limit_exceeded", headers: [("retry-after-ms", "20")]),
            OpenAIFake.error(503, "overloaded", type: "server_error", code: nil, headers: [("retry-after", "0")]),
            .json(200, OpenAIFake.completion(.init(text: "third time lucky"))),
        ])
        let model = fake.model(retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(50)))
        #expect(try await model.chat([.user("hi")]).text == "third time lucky")
        #expect(fake.server.requests.count == 3)

        fake.server.route(.POST, "/v1/chat/completions", reply: OpenAIFake.error(429, "You exceeded your current quota, please check your plan and billing details.",
                                                                                  type: "insufficient_quota", code: "insufficient_quota"))
        fake.server.clearRequests()
        do {
            _ = try await model.chat([.user("hi")])
            Issue.record("expected a quota error")
        } catch let error as NimbusError {
            #expect(error.llmFailure?.kind == .quotaExceeded)
            #expect(error.code == .resourceExhausted)
            #expect(!error.isRetryable)
            #expect(error.message.contains("retrying will not help"))
        }
    }

    @Test func anErrorEventInTheStreamIsThrownWithItsKind() async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        let first = OpenAIFake.transcript(.init(text: "Hello"), includeUsage: false)[0]
        fake.server.route(.POST, "/v1/chat/completions", reply: .sse([
            ServerSentEvent(data: first),
            ServerSentEvent(data: #"{"error":{"message":"The server is overloaded","type":"server_error","param":null,"code":null}}"#),
        ]))
        var texts: [String] = []
        do {
            for try await event in try await fake.model().stream(ChatRequest(messages: [.user("hi")])) {
                if case .start = event { texts.append("start") }
            }
            Issue.record("expected the error event to be thrown")
        } catch let error as NimbusError {
            #expect(error.code == .unavailable)
            #expect(error.llmFailure?.message == "The server is overloaded")
        }
        #expect(texts == ["start"])
    }

    @Test func breakingOutOfAStreamCancelsTheUpstreamRequest() async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        let events = OpenAIFake.transcript(.init(text: String(repeating: "long reply ", count: 40)), includeUsage: true)
        fake.server.route(.POST, "/v1/chat/completions", reply: .sse(events.map { ServerSentEvent(data: $0) }, pause: .milliseconds(50)))
        var seen = 0
        for try await _ in try await fake.model().stream(ChatRequest(messages: [.user("hi")])) {
            seen += 1
            if seen == 3 { break }
        }
        for _ in 0..<100 where fake.server.clientDisconnects == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(fake.server.clientDisconnects == 1)
    }

    @Test func azureUsesDeploymentsApiVersionAndTheApiKeyHeader() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/openai/deployments/prod-gpt4o/chat/completions", reply: .json(200, OpenAIFake.completion(.init(text: "from azure"))))
        let driver = OpenAIChatModelDriver(configuration: .azure(endpoint: server.baseURL, apiKey: Secret("azure-key"), deployments: ["gpt-4o": "prod-gpt4o"]))
        let model = ChatModel(driver: driver, configuration: .init(defaultModel: "gpt-4o"))
        #expect(try await model.chat([.user("hi")]).text == "from azure")
        let request = try #require(server.requests.first)
        #expect(request.queryItem("api-version") == "2024-10-21")
        #expect(request.header("api-key") == "azure-key")
        #expect(request.header("authorization") == nil)
        #expect(model.provider == "azure")
    }

    @Test func compatibleServersGetMaxTokensAndMayOmitDoneAndIds() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        // A vLLM-style stream: reasoning_content, no tool-call id, no [DONE] at the end.
        let base: JSONValue = ["id": "cmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "qwen"]
        func chunk(_ delta: JSONValue, _ finish: JSONValue = .null) -> ServerSentEvent {
            var object = base.objectValue ?? [:]
            object["choices"] = [["index": 0, "delta": delta, "finish_reason": finish]]
            return ServerSentEvent(data: JSONValue.object(object).description)
        }
        server.route(.POST, "/v1/chat/completions", reply: .sse([
            chunk(["role": "assistant", "reasoning_content": "Think."]), chunk(["content": "Answer."]),
            chunk(["tool_calls": [["index": 0, "function": ["name": "f", "arguments": "{}"]]]]), chunk([:], "tool_calls"),
        ]))
        let model = ChatModel(driver: OpenAIChatModelDriver(configuration: .compatible(baseURL: server.baseURL + "/v1", provider: "vllm")),
                              configuration: .init(defaultModel: "qwen"))
        let response = try await model.stream(ChatRequest(messages: [.user("hi")], maxTokens: 9)).collect()
        #expect(response.message.content == [.reasoning("Think."), .text("Answer.")])
        #expect(response.toolCalls.map(\.name) == ["f"])
        #expect(response.finishReason == .toolCalls)
        let body = try #require(server.requests.first).json()
        #expect(body["max_tokens"] == 9)
        #expect(body["max_completion_tokens"] == nil)
        #expect(server.requests.first?.header("authorization") == nil)
    }

    @Test func refusalsAreContentFiltered() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/v1/chat/completions", reply: .json(200, [
            "id": "chatcmpl-r", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [["index": 0, "message": ["role": "assistant", "content": .null, "refusal": "I can't help with that."],
                         "logprobs": .null, "finish_reason": "stop"]],
            "usage": ["prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11],
        ]))
        let model = ChatModel(driver: OpenAIChatModelDriver(configuration: .init(apiKey: "k", baseURL: server.baseURL + "/v1")), configuration: .init(defaultModel: "gpt-4o"))
        let response = try await model.chat([.user("something bad")])
        #expect(response.finishReason == .contentFilter)
        #expect(response.text == "I can't help with that.")
    }

    @Test func listsModels() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.GET, "/v1/models", reply: .json(200, #"{"object":"list","data":[{"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"system"},{"id":"o3-mini","object":"model","created":1737146383,"owned_by":"system"}]}"#))
        let model = ChatModel(driver: OpenAIChatModelDriver(configuration: .init(apiKey: "k", baseURL: server.baseURL + "/v1")), configuration: .init(defaultModel: "gpt-4o"))
        #expect(try await model.models().map(\.id) == ["gpt-4o", "o3-mini"])
    }
}

@Suite struct OpenAIStreamEncoderTests {
    @Test func directlyWrittenChunksAreValidJSONThatRoundTrips() throws {
        var encoder = OpenAIWire.StreamEncoder(id: "chatcmpl-\"x\"", model: "m\\1", created: 7)
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{07} ünïcödé 🚀"
        var text = ""
        var decoder = OpenAIWire.StreamDecoder(provider: "test")
        for event: ChatStreamEvent in [.start(id: "", model: ""), .textDelta(tricky), .toolCallDelta(ToolCallDelta(index: 0, id: "c", name: "f", arguments: "{}")),
                                       .finish(.toolCalls)] {
            guard let bytes = try encoder.sse(event, encoder: JSONEncoder()) else { continue }
            text += String(buffer: bytes)
        }
        var events: [ChatStreamEvent] = []
        for block in text.components(separatedBy: "\n\n") where block.hasPrefix("data: ") {
            events += try decoder.decode(String(block.dropFirst(6)), decoder: JSONDecoder())
        }
        events += try decoder.decode("[DONE]", decoder: JSONDecoder())
        var accumulator = ChatResponseAccumulator()
        events.forEach { accumulator.add($0) }
        let response = try accumulator.response()
        #expect(response.text == tricky)
        #expect(response.id == "chatcmpl-\"x\"")
        #expect(response.model == "m\\1")
        #expect(response.toolCalls == [ToolCall(id: "c", name: "f", arguments: "{}")])
        #expect(response.finishReason == .toolCalls)
    }
}
