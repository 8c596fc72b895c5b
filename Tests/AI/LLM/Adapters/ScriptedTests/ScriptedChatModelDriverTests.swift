import Foundation
import NimbusCore
import NimbusLLM
import NimbusLLMConformance
import NimbusLLMToolsConformance
import NimbusLLMScripted
import NimbusTesting
import Testing

@Suite struct MemoryChatModelTests {
    static let capabilities: Set<ConformanceCapability> = [.reasoning, .providerToolCallIDs, .contentFilterFinish]
    static let notSupported: [String] = ["a malformed body is a clear dataLoss error, not a crash"]   // no wire to break

    @Test func checksItsProviderCannotRunAreNamed() {
        let unsupported = LLMConformance.suite.unsupported(by: Self.capabilities).map(\.name)
        #expect(unsupported == Self.notSupported, "not supported: \(unsupported)")
    }

    static func harness() -> (LLMConformance.Harness, ScriptedChatModelDriver) {
        let memory = ScriptedChatModelDriver()
        let model = ChatModel(driver: memory, configuration: .init(defaultModel: "memory", retry: .none))
        let harness = LLMConformance.Harness(model: model, capabilities: Self.capabilities) { scripted in
            switch scripted {
            case .reply(let exchange):
                memory.enqueue(ScriptedChatModelDriver.Reply(text: exchange.text, reasoning: exchange.reasoning, toolCalls: exchange.toolCalls,
                                                     finishReason: exchange.finishReason, usage: exchange.usage))
            case .failure(let failure):
                let simulated: ScriptedChatModelDriver.Failure = switch failure {
                case .rateLimited: .rateLimited(retryAfter: .seconds(2))
                case .unauthenticated: .unauthenticated
                case .contextLengthExceeded: .contextLengthExceeded
                case .invalidRequest: .invalidRequest("bad request (simulated)")
                case .overloaded: .overloaded
                case .serverError: .serverError
                case .malformedBody, .cutMidStream: .cutMidStream
                }
                memory.enqueue(.failure(simulated))
            }
        }
        return (harness, memory)
    }

    @Test(arguments: LLMConformance.suite.checks(supportedBy: capabilities) + AgentConformance.checks)
    func conformance(_ check: LLMConformance.Check) async throws {
        try await check.run(Self.harness().0)
    }


    @Test func echoesTheLastUserMessageWithEstimatedUsage() async throws {
        let model = ChatModel(driver: ScriptedChatModelDriver(), configuration: .init(defaultModel: "memory"))
        let response = try await model.chat([.system("Be brief."), .user("Hello, world!")])
        #expect(response.text == "Hello, world!")
        #expect(response.finishReason == .stop)
        #expect(response.usage.outputTokens == 4)       // Hello , world !
        #expect(response.usage.inputTokens > response.usage.outputTokens)
        #expect(model.cost(of: response) == 0)
    }

    @Test func aForcedToolGetsACallWithSchemaShapedArguments() async throws {
        let model = ChatModel(driver: ScriptedChatModelDriver(), configuration: .init(defaultModel: "memory"))
        let tool = ToolDefinition(name: "book", parameters: [
            "type": "object",
            "properties": ["city": ["type": "string", "minLength": 2], "nights": ["type": "integer", "minimum": 1],
                           "kind": ["enum": ["hotel", "flat"]], "note": ["type": "string"]],
            "required": ["city", "nights", "kind"],
        ])
        let request = ChatRequest(messages: [.user("Book it")], tools: [tool], toolChoice: .tool("book"))
        let response = try await model.chat(request)
        #expect(response.finishReason == .toolCalls)
        #expect(try response.toolCalls.first?.parsedArguments() == ["city": "xx", "nights": 1, "kind": "hotel"])
        let streamed = try await model.stream(request).collect()
        #expect(streamed.toolCalls == response.toolCalls)
    }

    @Test func structuredOutputFitsTheSchemaAndToolResultsAreQuoted() async throws {
        let model = ChatModel(driver: ScriptedChatModelDriver(), configuration: .init(defaultModel: "memory"))
        var request = ChatRequest(messages: [.user("A city please")])
        request.responseFormat = .jsonSchema(name: "city", schema: ["type": "object", "properties": ["name": ["type": "string"], "tags": ["type": "array", "items": ["type": "string"]]], "required": ["name", "tags"]])
        #expect(try await model.chat(request).text == #"{"name":"","tags":[]}"#)

        let call = ToolCall(id: "call_1", name: "get_weather", arguments: #"{"city":"Oslo"}"#)
        let followUp = try await model.chat([.user("Weather?"), .assistant("", toolCalls: [call]), .tool(callID: "call_1", name: "get_weather", "-3 °C")])
        #expect(followUp.text == "Tool results: get_weather → -3 °C")
    }

    @Test func rulesScriptsAndRecordedRequests() async throws {
        let memory = ScriptedChatModelDriver()
        memory.addRule(.lastUserMessageContains("capital"), reply: .text("Paris."))
        memory.enqueue(.text("first"))
        let model = ChatModel(driver: memory, configuration: .init(defaultModel: "memory"))
        #expect(try await model.chat([.user("What is the capital?")]).text == "first")
        #expect(try await model.chat([.user("And the CAPITAL again?")]).text == "Paris.")
        #expect(try await model.chat([.user("other")]).text == "other")
        #expect(memory.requests.count == 3)
        #expect(memory.requests.allSatisfy { $0.model == "memory" })
    }

    @Test func unknownModelsAreNotFoundAndMaxTokensGivesLength() async throws {
        let model = ChatModel(driver: ScriptedChatModelDriver(), configuration: .init(defaultModel: "memory"))
        do {
            _ = try await model.chat(ChatRequest(model: "gpt-9", messages: [.user("hi")]))
            Issue.record("expected notFound")
        } catch let error as NimbusError {
            #expect(error.code == .notFound)
            #expect(error.llmFailure?.kind == .modelNotFound)
        }
        let long = try await model.chat(ChatRequest(messages: [.user("one two three four five six")], maxTokens: 2))
        #expect(long.finishReason == .length)
        #expect(try await model.models().map(\.id) == ["memory"])
    }

    @Test func latencyIsSimulatedThroughTheInjectedSleep() async throws {
        let slept = SleepLog()
        let memory = ScriptedChatModelDriver(configuration: .init(latency: .milliseconds(300))) { await slept.add($0) }
        let model = ChatModel(driver: memory, configuration: .init(defaultModel: "memory"))
        _ = try await model.chat([.user("hi")])
        #expect(await slept.total == .milliseconds(300))
        _ = try await model.stream(ChatRequest(messages: [.user("a b")])).collect()
        #expect(await slept.total == .milliseconds(600))
    }

    @Test func cancellingTheConsumerStopsTheStream() async throws {
        let memory = ScriptedChatModelDriver(configuration: .init(latency: .seconds(30)))
        let model = ChatModel(driver: memory, configuration: .init(defaultModel: "memory"))
        let stream = try await model.stream(ChatRequest(messages: [.user(String(repeating: "word ", count: 50))]))
        let task = Task {
            var count = 0
            for try await _ in stream { count += 1 }
            return count
        }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let result = await task.result
        switch result {
        case .success(let count): #expect(count < 5)
        case .failure(let error): #expect(error is CancellationError || (error as? NimbusError)?.code == .canceled)
        }
    }
}

actor SleepLog {
    private(set) var total: Duration = .zero
    func add(_ duration: Duration) { total += duration }
}

@Suite("The memory model by URL")
struct ScriptedOpenerTests {
    @Test func memOpensTheMemoryModelWithItsOptions() async throws {
        let model = try await ChatModel.open("mem://?latency=5ms&models=memory,small", openers: ChatModel.openers.withMemory(),
                                             configuration: .init(defaultModel: "small"))
        #expect(try await model.models().map(\.id) == ["memory", "small"])
        #expect(try await model.chat(ChatRequest(messages: [.user("echo")])).text == "echo")
        let unknown = await #expect(throws: NimbusError.self) { try await ChatModel.openers.withMemory().open("mem://?latencyMs=5") }
        #expect(unknown?.message.contains("latency") == true)
    }
}

@Suite("The memory model stays bounded")
struct ScriptedBoundsTests {
    @Test func itKeepsOnlyTheLatestRequests() async throws {
        let driver = ScriptedChatModelDriver(configuration: .init(recordLimit: 50))
        let model = ChatModel(driver: driver, configuration: .init(defaultModel: "memory"))
        for index in 0..<120 { _ = try await model.chat(ChatRequest(messages: [.user("message \(index)")])) }
        #expect(driver.requests.count == 50)
        #expect(driver.requests.first?.messages.first?.text == "message 70" && driver.requests.last?.messages.first?.text == "message 119")
    }

    @Test func hugeTokenCountsAreRefusedBeforeAnyArithmetic() async throws {
        let model = ChatModel(driver: ScriptedChatModelDriver(), configuration: .init(defaultModel: "memory"))
        for request in [ChatRequest(messages: [.user("x")], maxTokens: Int.max), ChatRequest(messages: [.user("x")], maxTokens: -5),
                        ChatRequest(messages: [.user("x")], reasoning: Reasoning(budgetTokens: Int.max))] {
            let error = await #expect(throws: NimbusError.self) { try await model.chat(request) }
            #expect(error?.code == .invalidArgument)
        }
    }
}
