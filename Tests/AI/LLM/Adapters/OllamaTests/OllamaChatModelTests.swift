import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusLLM
import NimbusLLMConformance
import NimbusLLMToolsConformance
import NimbusLLMOllama
import NimbusTesting
import Testing

@Suite(.timeLimit(.minutes(2))) struct OllamaChatModelTests {
    static let capabilities: Set<ConformanceCapability> = [.reasoning, .rawErrors, .malformedBodies]
    static let notSupported: [String] = []

    @Test func checksItsProviderCannotRunAreNamed() {
        let unsupported = LLMConformance.suite.unsupported(by: Self.capabilities).map(\.name)
        #expect(unsupported == Self.notSupported, "not supported: \(unsupported)")
    }

    /// The conformance harness over a fresh fake.
    static func harness(_ fake: OllamaFake) -> LLMConformance.Harness {
        LLMConformance.Harness(model: fake.model(), capabilities: Self.capabilities, script: { fake.script($0) },
                                             expectedUsage: { Usage(inputTokens: $0.inputTokens, outputTokens: $0.outputTokens) },
                                             imageURL: fake.server.baseURL + "/images/cat.png")
    }

    @Test(arguments: LLMConformance.suite.checks(supportedBy: capabilities) + AgentConformance.checks)
    func conformance(_ check: LLMConformance.Check) async throws {
        let fake = try await OllamaFake.start()
        defer { Task { await fake.server.shutdown() } }
        try await check.run(Self.harness(fake))
        #expect(fake.specMismatches.isEmpty, "requests departed from Ollama's API description: \(fake.specMismatches)")
    }


    @Test func requestsCarryOptionsFormatThinkToolNamesAndKeepAlive() async throws {
        let fake = try await OllamaFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "ok")))
        let call = ToolCall(id: "nimbus_call_0", name: "get_weather", arguments: #"{"city":"Paris"}"#)
        var request = ChatRequest(messages: [.system("Be brief."), .user([.text("Look"), .image(.data(Data([7]), mediaType: "image/png"))]),
                                             .assistant("", toolCalls: [call]), .tool(callID: "nimbus_call_0", "18")],
                                  tools: [ToolDefinition(name: "get_weather", description: "Weather", parameters: ["type": "object", "properties": ["city": ["type": "string"]]])],
                                  temperature: 0.1, maxTokens: 20, stop: ["x"], seed: 1, reasoning: Reasoning(effort: .high))
        request.responseFormat = .jsonSchema(name: "w", schema: ["type": "object"])
        _ = try await fake.model().chat(request)
        let body = try #require(fake.server.requests.first).json()
        #expect(body["stream"] == false)
        #expect(body["keep_alive"] == "10m")
        #expect(body["think"] == "high")
        #expect(body["format"] == ["type": "object"])
        #expect(body["options"] == ["temperature": 0.1, "num_predict": 20, "stop": ["x"], "seed": 1])
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages[1]["images"] == ["Bw=="])
        #expect(messages[2]["tool_calls"] == [["function": ["name": "get_weather", "arguments": ["city": "Paris"]]]])
        #expect(messages[3] == ["role": "tool", "content": "18", "tool_name": "get_weather"])
        await #expect(throws: NimbusError.self) { try await fake.model().chat([.user([.image(.url(fake.server.baseURL + "/missing.png"))])]) }
    }

    /// Issue 15 §3: image URLs are fetched only when the operator turned downloads on, never with the
    /// provider's credentials, never from inward addresses (the fake is on loopback, so only the
    /// test's allowPrivateNetworks lets it through).
    @Test func imageDownloadsAreOffByDefaultAndNeverCarryTheKey() async throws {
        let fake = try await OllamaFake.start()
        defer { Task { await fake.server.shutdown() } }
        let imageURL = fake.server.baseURL + "/images/cat.png"
        fake.server.route(.GET, "/images/cat.png", reply: .response(status: 200, headers: [("Content-Type", "image/png")], body: ByteBuffer(bytes: [1, 2])))
        let off = fake.model { $0.imageDownloads = nil }
        do {
            _ = try await off.chat([.user([.text("what is it"), .image(.url(imageURL))])])
            Issue.record("an image URL was accepted with downloads off")
        } catch let error as NimbusError {
            #expect(error.code == .invalidArgument && error.message.contains("imageDownloads"), "\(error)")
        }
        let public_only = fake.model { $0.imageDownloads = .init() }
        await #expect(throws: NimbusError.self, "a loopback image URL is refused under the default policy") {
            try await public_only.chat([.user([.text("what is it"), .image(.url(imageURL))])])
        }
        #expect(fake.server.requests.isEmpty, "nothing was fetched or sent")

        fake.script(.reply(.init(text: "a cat")))
        _ = try await fake.model { $0.apiKey = Secret("sk-ollama-proxy-key") }.chat([.user([.text("what is it"), .image(.url(imageURL))])])
        let download = try #require(fake.server.requests.first { $0.path == "/images/cat.png" })
        #expect(download.header("authorization") == nil, "the provider's key went to the image host")
        let chat = try #require(fake.server.requests.first { $0.path == "/api/chat" })
        #expect(chat.header("authorization") == "Bearer sk-ollama-proxy-key")
        #expect(try chat.json()["messages"]?.arrayValue?.first?["images"] == ["AQI="])
    }

    /// Issue 15 §2: a caller's options add to the request but cannot replace the operator's context
    /// window or output cap, or any field the adapter built.
    @Test func callerOptionsCannotOverrideOperatorSettings() async throws {
        let fake = try await OllamaFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "ok")))
        var request = ChatRequest(messages: [.user("hi")])
        request.providerOptions = ["options": ["num_ctx": 1_000_000, "num_predict": 100_000, "top_k": 7], "model": "other-model", "stream": true, "format": "json"]
        _ = try await fake.model { $0.contextLength = 4096; $0.maxOutputTokens = 256 }.chat(request)
        let body = try #require(fake.server.requests.first).json()
        #expect(body["options"] == ["num_ctx": 4096, "num_predict": 256, "top_k": 7], "\(body)")
        #expect(body["model"] == "llama3.2" && body["stream"] == false && body["format"] == "json")
    }

    @Test func anErrorLineMidStreamIsThrownAndMissingModelsAreNotFound() async throws {
        let fake = try await OllamaFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/api/chat", replies: [
            .ndjson([#"{"model":"llama3.2","created_at":"2025-10-03T12:00:00Z","message":{"role":"assistant","content":"Hi"},"done":false}"#,
                     #"{"error":"an error was encountered while running the model: unexpected EOF"}"#]),
            .json(404, #"{"error":"model 'llama9' not found"}"#),
        ])
        await #expect(throws: NimbusError.self) { try await fake.model().stream(ChatRequest(messages: [.user("hi")])).collect() }
        do { _ = try await fake.model().chat([.user("hi")]) } catch let error as NimbusError {
            #expect(error.llmFailure?.kind == .modelNotFound)
            #expect(error.code == .notFound)
        }
    }

    @Test func aProxyPageInsteadOfAStreamIsMalformed() async throws {
        let fake = try await OllamaFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/api/chat", reply: .response(status: 200, headers: [("Content-Type", "text/html")],
                                                               body: ByteBuffer(string: "<html>Sign in to the proxy</html>")))
        do {
            _ = try await fake.model().stream(ChatRequest(messages: [.user("hi")])).collect()
            Issue.record("expected malformedResponse")
        } catch let error as NimbusError {
            #expect(error.code == .dataLoss)
            #expect(error.llmFailure?.rawBody?.contains("Sign in") == true)
        }
    }

    @Test func listsLocalModels() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.GET, "/api/tags", reply: .json(200, #"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2025-10-03T23:34:03.409490317-07:00","size":2019393189,"digest":"a80c4f17acd5","details":{"format":"gguf","family":"llama","parameter_size":"3.2B","quantization_level":"Q4_K_M"}}]}"#))
        let model = ChatModel(driver: OllamaChatModelDriver(configuration: .init(baseURL: server.baseURL)), configuration: .init(defaultModel: "llama3.2"))
        #expect(try await model.models().map(\.id) == ["llama3.2:latest"])
    }
}
