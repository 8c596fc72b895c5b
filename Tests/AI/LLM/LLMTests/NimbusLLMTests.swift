import Foundation
import MetricsTestKit
import NimbusCore
import NimbusLLM
import NimbusLLMScripted
import Synchronization
import Testing

@Suite struct ChatRequestValidationTests {
    let call = ToolCall(id: "call_1", name: "lookup", arguments: "{}")

    @Test func acceptsAWellFormedConversation() throws {
        try ChatRequest(messages: [.user("q"), .assistant("", toolCalls: [call]), .tool(callID: "call_1", "r"), .user("thanks")],
                        tools: [ToolDefinition(name: "lookup")], toolChoice: .tool("lookup")).validate()
    }

    @Test(arguments: [
        ("empty", ChatRequest(messages: [])),
        ("orphan tool result", ChatRequest(messages: [.user("q"), .tool(callID: "call_1", "r")])),
        ("result answered twice", ChatRequest(messages: [.user("q"), .assistant("", toolCalls: [ToolCall(id: "c", name: "t", arguments: "{}")]),
                                                          .tool(callID: "c", "r"), .tool(callID: "c", "r")])),
        ("result after a user turn", ChatRequest(messages: [.assistant("", toolCalls: [ToolCall(id: "c", name: "t", arguments: "{}")]),
                                                             .user("wait"), .tool(callID: "c", "r")])),
        ("temperature", ChatRequest(messages: [.user("q")], temperature: 2.5)),
        ("topP", ChatRequest(messages: [.user("q")], topP: -0.1)),
        ("maxTokens", ChatRequest(messages: [.user("q")], maxTokens: 0)),
        ("bad tool name", ChatRequest(messages: [.user("q")], tools: [ToolDefinition(name: "has space")])),
        ("duplicate tool", ChatRequest(messages: [.user("q")], tools: [ToolDefinition(name: "a"), ToolDefinition(name: "a")])),
        ("schema not an object", ChatRequest(messages: [.user("q")], tools: [ToolDefinition(name: "a", parameters: "string")])),
        ("unknown named tool", ChatRequest(messages: [.user("q")], tools: [ToolDefinition(name: "a")], toolChoice: .tool("b"))),
        ("user with tool calls", ChatRequest(messages: [ChatMessage(role: .user, content: [.text("q")], toolCalls: [ToolCall(id: "c", name: "t", arguments: "{}")])])),
    ])
    func refuses(_ name: String, _ request: ChatRequest) {
        #expect(throws: NimbusError.self, "\(name)") { try request.validate() }
        do { try request.validate() } catch let error as NimbusError { #expect(error.code == .invalidArgument) } catch {}
    }
}

@Suite struct StreamingTests {
    @Test func accumulatorMergesDeltasAndToolCallFragmentsByIndex() throws {
        var accumulator = ChatResponseAccumulator()
        for event: ChatStreamEvent in [
            .start(id: "r1", model: "m"), .reasoningDelta("think"), .reasoningDelta("ing", signature: "sig"),
            .textDelta("Hel"), .textDelta("lo"),
            .toolCallDelta(ToolCallDelta(index: 1, id: "b", name: "second", arguments: "{\"x\"")),
            .toolCallDelta(ToolCallDelta(index: 0, id: "a", name: "first", arguments: "{")),
            .toolCallDelta(ToolCallDelta(index: 1, arguments: ":1}")), .toolCallDelta(ToolCallDelta(index: 0, arguments: "}")),
            .usage(Usage(inputTokens: 1, outputTokens: 1)), .usage(Usage(inputTokens: 5, outputTokens: 9)), .finish(.toolCalls),
        ] { accumulator.add(event) }
        let response = try accumulator.response()
        #expect(response.message.content == [.reasoning("thinking", signature: "sig"), .text("Hello")])
        #expect(response.toolCalls == [ToolCall(id: "a", name: "first", arguments: "{}"), ToolCall(id: "b", name: "second", arguments: #"{"x":1}"#)])
        #expect(response.usage == Usage(inputTokens: 5, outputTokens: 9))
        #expect(response.finishReason == .toolCalls)
    }

    @Test func aStreamWithoutFinishIsDataLoss() {
        var accumulator = ChatResponseAccumulator()
        accumulator.add(.textDelta("half"))
        #expect(throws: NimbusError.self) { try accumulator.response() }
        #expect(accumulator.partialResponse(finishReason: .error).text == "half")
    }

    /// Issue 15 §1: a slow reader slows the producer down; the stream never piles up in memory.
    @Test func aSlowReaderHoldsTheProducerBack() async throws {
        let produced = Atomic<Int>(0)
        let stream = ChatStream { yield in
            for index in 0..<100_000 {
                await yield(.textDelta("t\(index) "))
                produced.add(1, ordering: .relaxed)
                try Task.checkCancellation()
            }
        }
        var read = 0
        for try await _ in stream {
            read += 1
            if read == 5 {
                try await Task.sleep(for: .milliseconds(200))   // a reader that stalls
                break
            }
        }
        #expect(produced.load(ordering: .relaxed) <= read + 1, "the producer ran ahead of its reader: \(produced.load(ordering: .relaxed)) events made, \(read) read")
    }

    @Test func aProducedStreamEndsWithItsProducersError() async throws {
        let stream = ChatStream { yield in
            await yield(.textDelta("partial"))
            throw NimbusError(.unavailable, "upstream closed")
        }
        var texts: [String] = []
        await #expect(throws: NimbusError.self) {
            for try await event in stream { if case .textDelta(let text) = event { texts.append(text) } }
        }
        #expect(texts == ["partial"])
    }

    @Test func coalescingJoinsAdjacentTextOnly() {
        #expect(ContentPart.coalesced([.text("a"), .text(""), .text("b"), .image(.url("u")), .text("c")])
                == [.text("ab"), .image(.url("u")), .text("c")])
    }
}

@Suite struct ModelCatalogTests {
    @Test func cachedTokensAreBilledOnceAtTheirOwnPrice() throws {
        // gpt-4o: $2.50 input, $1.25 cached, $10 output per million.
        let usage = Usage(inputTokens: 1_000_000, outputTokens: 100_000, cachedInputTokens: 400_000, reasoningTokens: 50_000)
        let cost = try #require(ModelCatalog.standard.cost(of: usage, model: "gpt-4o-2024-08-06"))
        #expect(cost == Decimal(string: "3.0"))      // 0.6M × 2.5 + 0.4M × 1.25 + 0.1M × 10
    }

    @Test func anthropicCacheWritesAndReads() throws {
        // claude-sonnet-4: $3 input, $3.75 write, $0.30 read, $15 output.
        let usage = Usage(inputTokens: 10_000, outputTokens: 1000, cachedInputTokens: 6000, cacheWriteInputTokens: 2000)
        let cost = try #require(ModelCatalog.standard.cost(of: usage, model: "claude-sonnet-4-20250514"))
        #expect(cost == Decimal(string: "0.0303"))   // 2000×3 + 6000×0.3 + 2000×3.75 + 1000×15 = 30,300 / 1e6
    }

    @Test func lookupIsExactThenLongestPrefixAndRegistrationOverrides() {
        #expect(ModelCatalog.standard.model("gpt-4o-mini-2024-07-18")?.id == "gpt-4o-mini")
        #expect(ModelCatalog.standard.model("openai/gpt-4.1-nano")?.id == "gpt-4.1-nano")
        #expect(ModelCatalog.standard.model("gpt-4ox") == nil)
        let custom = ModelCatalog.standard.registering(ModelInfo(id: "gpt-4o", provider: "openai", contextWindow: 1,
                                                                 pricing: .init(input: 1, output: 1)))
        #expect(custom.cost(of: Usage(inputTokens: 1_000_000), model: "gpt-4o") == 1)
        #expect(ModelCatalog.standard.cost(of: Usage(inputTokens: 5), model: "unknown-model") == nil)
    }

    @Test func separateReasoningPrice() {
        let pricing = ModelInfo.Pricing(input: 1, output: 10, reasoning: 20)
        #expect(pricing.cost(of: Usage(outputTokens: 1_000_000, reasoningTokens: 250_000)) == Decimal(12.5))
    }
}

@Suite struct TokenEstimatorTests {
    @Test func countsWordsPunctuationAndCJK() {
        let estimator = TokenEstimator()
        #expect(estimator.count("") == 0)
        #expect(estimator.count("Hello, world!") == 4)
        #expect(estimator.count("internationalization") == 5)
        #expect(estimator.count("日本語") == 3)
        #expect(TokenEstimator.forModel("claude-3-5-haiku").count("abcdefg") == 2)
        #expect(estimator.count(messages: [.user("hi")]) == 3 + 4 + 1)
        #expect(estimator.count("a b c") == 3)
    }
}

@Suite struct FailureAndCodableTests {
    @Test func kindsMapToCodesAndRetryVerdicts() {
        let quota = LLMFailure(kind: .quotaExceeded, provider: "openai", status: 429, message: "insufficient_quota").nimbusError()
        #expect(quota.code == .resourceExhausted)
        #expect(!quota.isRetryable)
        let limited = LLMFailure(kind: .rateLimited, provider: "openai", status: 429, message: "slow down").nimbusError(retryAfter: .seconds(3))
        #expect(limited.isRetryable && limited.retryAfter == .seconds(3))
        #expect(limited.llmFailure?.provider == "openai")
        #expect(LLMFailure.kind(forStatus: 529) == .overloaded)
        #expect(LLMFailure.mentionsContextLength("prompt is too long: 210000 tokens > 200000 maximum"))
    }

    @Test func messagesRoundTripThroughJSON() throws {
        let messages: [ChatMessage] = [
            .system("s"), .user([.text("look"), .image(.data(Data([1, 2]), mediaType: "image/png"), detail: .high), .file(.url("https://x/y.pdf"), filename: "y.pdf")]),
            ChatMessage(role: .assistant, content: [.reasoning("r", signature: "sig"), .text("t")], toolCalls: [ToolCall(id: "c", name: "n", arguments: "{}")]),
            .tool(callID: "c", name: "n", "out", isError: true),
        ]
        let data = try JSONEncoder().encode(messages)
        #expect(try JSONDecoder().decode([ChatMessage].self, from: data) == messages)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ContentPart.self, from: Data(#"{"type":"hologram"}"#.utf8)) }
        #expect(MediaSource.url("data:image/png;base64,AQI=").inlineData?.data == Data([1, 2]))
    }

    @Test func reasoningEffortAndBudgetConvert() {
        #expect(Reasoning(effort: .high).resolvedBudget == 24576)
        #expect(Reasoning(budgetTokens: 3000).resolvedEffort == .low)
    }
}

@Suite struct ChatModelTests {
    @Test func recordsRequestsTokensAndCost() async throws {
        let metrics = TestMetrics()
        let catalog = ModelCatalog.standard.registering(ModelInfo(id: "memory", provider: "memory", contextWindow: 1000,
                                                                  pricing: .init(input: 1_000_000, output: 2_000_000)))
        let memory = ScriptedChatModelDriver()
        memory.enqueue(.init(text: "ok", usage: Usage(inputTokens: 3, outputTokens: 2)), .failure(.rateLimited(retryAfter: nil)))
        let model = ChatModel(driver: memory, configuration: .init(defaultModel: "memory", catalog: catalog, metricsFactory: metrics, retry: .none))
        let response = try await model.chat([.user("hi")])
        #expect(model.cost(of: response) == 7)
        await #expect(throws: NimbusError.self) { try await model.chat([.user("hi")]) }
        let ok = try metrics.expectCounter("nimbus_llm_requests_total", [("provider", "memory"), ("model", "memory"), ("outcome", "ok")])
        #expect(ok.totalValue == 1)
        let limited = try metrics.expectCounter("nimbus_llm_requests_total", [("provider", "memory"), ("model", "memory"), ("outcome", "resourceExhausted")])
        #expect(limited.totalValue == 1)
        #expect(try metrics.expectCounter("nimbus_llm_tokens_total", [("provider", "memory"), ("model", "memory"), ("kind", "output")]).totalValue == 2)
        #expect(model.driver(as: ScriptedChatModelDriver.self) === memory)
    }
}
