import Foundation
import NimbusCore
import NimbusHTTP
import NimbusLLM
import NimbusLLMConformance
import NimbusLLMToolsConformance
import NimbusLLMGemini
import NimbusTesting
import Testing

@Suite(.timeLimit(.minutes(2))) struct GeminiChatModelTests {
    static let capabilities: Set<ConformanceCapability> = [.responseMetadata, .reasoning, .rawErrors, .malformedBodies, .contentFilterFinish]
    static let notSupported: [String] = []

    @Test func checksItsProviderCannotRunAreNamed() {
        let unsupported = LLMConformance.suite.unsupported(by: Self.capabilities).map(\.name)
        #expect(unsupported == Self.notSupported, "not supported: \(unsupported)")
    }

    /// The conformance harness over a fresh fake.
    static func harness(_ fake: GeminiFake) -> LLMConformance.Harness {
        LLMConformance.Harness(model: fake.model(), capabilities: Self.capabilities) {
            fake.script($0)
        }
    }

    @Test(arguments: LLMConformance.suite.checks(supportedBy: capabilities) + AgentConformance.checks)
    func conformance(_ check: LLMConformance.Check) async throws {
        let fake = try await GeminiFake.start()
        defer { Task { await fake.server.shutdown() } }
        try await check.run(Self.harness(fake))
        #expect(fake.specMismatches.isEmpty, "requests departed from the generativelanguage protos: \(fake.specMismatches)")
    }


    @Test func requestsFollowTheProtoJSONMapping() async throws {
        let fake = try await GeminiFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.reply(.init(text: "ok")))
        let call = ToolCall(id: "nimbus_call_0", name: "lookup", arguments: #"{"q":"swift"}"#)
        let request = ChatRequest(messages: [
            .system("Be brief."), .user([.text("Find it"), .image(.url("gs://bucket/cat.png"))]),
            .assistant("", toolCalls: [call]), .tool(callID: "nimbus_call_0", "not json, just text"), .user("and?"),
        ], tools: [ToolDefinition(name: "lookup", parameters: ["type": "object", "properties": ["q": ["type": "string"]]])],
           toolChoice: .tool("lookup"), temperature: 0.3, maxTokens: 64, stop: ["END"], seed: 3, reasoning: Reasoning(budgetTokens: 512))
        _ = try await fake.model().chat(request)
        let sent = try #require(fake.server.requests.first)
        #expect(sent.path == "/v1beta/models/gemini-2.5-flash:generateContent")
        let body = try sent.json()
        #expect(body["systemInstruction"] == ["parts": [["text": "Be brief."]]])
        let contents = try #require(body["contents"]?.arrayValue)
        #expect(contents.map { $0["role"] } == ["user", "model", "user"])
        #expect(contents[0]["parts"]?.arrayValue?.last == ["fileData": ["mimeType": "image/png", "fileUri": "gs://bucket/cat.png"]])
        #expect(contents[1]["parts"] == [["functionCall": ["name": "lookup", "args": ["q": "swift"]]]])
        #expect(contents[2]["parts"]?.arrayValue?.first == ["functionResponse": ["name": "lookup", "response": ["output": "not json, just text"]]])
        #expect(body["toolConfig"] == ["functionCallingConfig": ["mode": "ANY", "allowedFunctionNames": ["lookup"]]])
        #expect(body["tools"]?.arrayValue?.first?["functionDeclarations"]?.arrayValue?.first?["parametersJsonSchema"]?["type"] == "object")
        #expect(body["generationConfig"] == ["temperature": 0.3, "maxOutputTokens": 64, "stopSequences": ["END"], "seed": 3,
                                             "thinkingConfig": ["includeThoughts": true, "thinkingBudget": 512]])
        #expect(fake.specMismatches.isEmpty, "\(fake.specMismatches)")
    }

    @Test func theProtoCheckerCatchesWhatGeminiWouldReject() throws {
        let checker = try GeminiFake.protos.get()
        #expect(checker.check(["contents": [["role": "user", "parts": [["text": "hi"]]]]], message: "GenerateContentRequest", pathFields: ["model"]).isEmpty)
        let bad: JSONValue = ["contents": [["parts": [["text": "hi", "inlineData": ["mimeType": "image/png", "data": "AA=="]]]]],
                              "generationConfig": ["maxOutputTokens": "many", "temprature": 1],
                              "toolConfig": ["functionCallingConfig": ["mode": "SOMETIMES"]]]
        let found = checker.check(bad, message: "GenerateContentRequest", pathFields: ["model"])
        #expect(found.contains { $0.contains("oneof") }, "\(found)")
        #expect(found.contains { $0.contains("maxOutputTokens") }, "\(found)")
        #expect(found.contains { $0.contains("temprature") }, "\(found)")
        #expect(found.contains { $0.contains("SOMETIMES") }, "\(found)")
        #expect(!checker.check([:], message: "GenerateContentRequest", pathFields: ["model"]).isEmpty)   // contents is required
    }

    @Test func aBlockedPromptIsContentFiltered() async throws {
        let fake = try await GeminiFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/v1beta/models/{model}", reply: .json(200, [
            "promptFeedback": ["blockReason": "SAFETY", "safetyRatings": [["category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"]]],
            "usageMetadata": ["promptTokenCount": 8, "totalTokenCount": 8], "modelVersion": "gemini-2.5-flash",
        ]))
        do {
            _ = try await fake.model().chat([.user("something dangerous")])
            Issue.record("expected contentFiltered")
        } catch let error as NimbusError {
            #expect(error.llmFailure?.kind == .contentFiltered)
            #expect(error.llmFailure?.providerCode == "SAFETY")
            #expect(!error.isRetryable)
        }
    }

    @Test func vertexUsesTheProjectPathAndABearerToken() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/v1/projects/acme/locations/europe-west4/publishers/google/models/{model}", reply: .json(200, GeminiFake.response(.init(text: "from vertex"))))
        let driver = GeminiChatModelDriver(configuration: .vertex(project: "acme", location: "europe-west4", accessToken: { Secret("ya29.token") }, baseURL: server.baseURL))
        let model = ChatModel(driver: driver, configuration: .init(defaultModel: "gemini-2.5-pro"))
        #expect(try await model.chat([.user("hi")]).text == "from vertex")
        let request = try #require(server.requests.first)
        #expect(request.path == "/v1/projects/acme/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent")
        #expect(request.header("authorization") == "Bearer ya29.token")
        #expect(request.header("x-goog-api-key") == nil)
        #expect(model.provider == "vertex-ai")
    }

    /// Issue 15 §5: vertex:// takes its tokens from NimbusGCP credentials — here a service-account file whose
    /// JWT the fake token endpoint verifies — exchanged once and reused, the project from the file.
    @Test func vertexTakesTokensFromServiceAccountCredentials() async throws {
        let oauth = try await FakeGoogleOAuth(scope: "https://www.googleapis.com/auth/cloud-platform")
        defer { Task { await oauth.server.shutdown() } }
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/v1/projects/nimbus-test/locations/europe-west4/publishers/google/models/{model}", reply: .json(200, GeminiFake.response(.init(text: "from vertex"))))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sa-\(IDGenerator.shared.ulid()).json").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let credentials: JSONValue = ["type": "service_account", "client_email": .string(oauth.email), "private_key_id": "key-1",
                                      "private_key": .string(oauth.privateKeyPEM), "token_uri": .string(oauth.tokenURL), "project_id": "nimbus-test"]
        try Data(credentials.description.utf8).write(to: URL(fileURLWithPath: file))
        let port = try #require(URL(string: server.baseURL)?.port)
        let model = try await ChatModel.open("vertex://127.0.0.1:\(port)?location=europe-west4&tls=false&credentials=\(file)",
                                             openers: ChatModel.openers.withGemini(environment: [:]), configuration: .init(defaultModel: "gemini-2.5-pro"))
        for _ in 0..<2 { #expect(try await model.chat([.user("hi")]).text == "from vertex") }
        #expect(oauth.problems.withLock { $0 }.isEmpty, "\(oauth.problems.withLock { $0 })")
        #expect(oauth.issued.withLock { $0 } == 1, "one token exchange, then the cached token")
        #expect(server.requests.map { $0.header("authorization") } == ["Bearer sa-token-1", "Bearer sa-token-1"])
        await #expect(throws: NimbusError.self, "an unreadable credentials file is a clear error") {
            try await ChatModel.open("vertex://?project=p&location=l&credentials=/nonexistent/sa.json", openers: ChatModel.openers.withGemini(environment: [:]), configuration: .init(defaultModel: "gemini-2.5-pro"))
        }
    }

    @Test func rateLimitsWaitForRetryInfo() async throws {
        let fake = try await GeminiFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.script(.failure(.rateLimited))
        do { _ = try await fake.model().chat([.user("hi")]) } catch let error as NimbusError {
            #expect(error.retryAfter == .seconds(2))
            #expect(error.llmFailure?.kind == .rateLimited)
        }
    }
}
