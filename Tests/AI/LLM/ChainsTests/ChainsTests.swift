import Foundation
import InMemoryTracing
import NimbusCore
import NimbusLLM
import NimbusLLMChains
import NimbusLLMScripted
import Synchronization
import Testing
import Tracing

func memoryModel(_ configure: (ScriptedChatModelDriver) -> Void = { _ in }) -> (ChatModel, ScriptedChatModelDriver) {
    let driver = ScriptedChatModelDriver()
    configure(driver)
    return (ChatModel(driver: driver, configuration: .init(defaultModel: "memory")), driver)
}

struct Ticket: Codable, Sendable, Equatable {
    enum Priority: String, Codable, CaseIterable, Sendable { case low, high }
    var title: String
    var priority: Priority
    var tags: [String]?
}

enum Sentiment: String, CaseIterable, Sendable { case positive, negative, neutral }

@Suite struct PromptTests {
    @Test func templatesFillVariablesKeepEscapedBracesAndNameWhatIsMissing() throws {
        let template = try PromptTemplate("Hello {name}, your JSON is {{\"a\": {value}}}.")
        #expect(template.variables == ["name", "value"])
        #expect(try template.format(["name": "Ada", "value": "1"]) == #"Hello Ada, your JSON is {"a": 1}."#)
        let error = #expect(throws: NimbusError.self) { try template.format(["name": "Ada"]) }
        #expect(error?.message.contains("'value'") == true)
        #expect(throws: NimbusError.self) { try PromptTemplate("broken {name") }
    }

    @Test func chatTemplatesInsertHistoryAtTheirPlaceholder() throws {
        let prompt = ChatPromptTemplate([.system("You are {persona}."), .placeholder("history"), .user("{question}")])
        let messages = try prompt.format(ChatPromptInput(values: ["persona": "terse", "question": "And now?"],
                                                         messages: ["history": [.user("Hi"), .assistant("Hello")]]))
        #expect(messages.map(\.role) == [.system, .user, .assistant, .user])
        #expect(messages.first?.text == "You are terse." && messages.last?.text == "And now?")
        #expect(throws: NimbusError.self) { try prompt.format(["persona": "x", "question": "y"]) }
        #expect(throws: NimbusError.self) { try ChatPromptTemplate([.user("unclosed {brace")]).format([:]) }
    }
}

@Suite struct ChainTests {
    @Test func aPromptModelParserChainStreamsTokensThenItsOutput() async throws {
        let (model, _) = memoryModel()
        let chain = ChatPromptTemplate([.system("Echo."), .user("Tell {who} about {topic}")]).then(ModelStep(model)).then(TextParser())
        let input: ChatPromptInput = ["who": "Ada", "topic": "streams"]
        #expect(try await chain.invoke(input) == "Tell Ada about streams")
        var tokens = "", steps: [String] = [], output: String?
        for try await event in chain.stream(input) {
            switch event {
            case .progress(.token(let text)): tokens += text
            case .progress(.stepStarted(let name)): steps.append(name)
            case .progress(.stepFinished): break
            case .output(let value): output = value
            }
        }
        #expect(tokens == "Tell Ada about streams")
        #expect(output == tokens)
        #expect(steps == ["chat-prompt | model | text", "chat-prompt | model", "chat-prompt", "model", "text"])
    }

    @Test func eachStepGetsASpanUnderTheChainsSpan() async throws {
        let (model, _) = memoryModel()
        let tracer = InMemoryTracer()
        let chain = ChatPromptTemplate([.user("{q}")]).then(ModelStep(model)).then(TextParser())
        _ = try await chain.invoke(["q": "hi"], context: ChainContext(tracer: tracer))
        let spans = tracer.finishedSpans
        #expect(Set(spans.map(\.operationName)) == ["chain.chat-prompt | model | text", "chain.chat-prompt | model", "chain.chat-prompt", "chain.model", "chain.text"])
        let root = try #require(spans.first { $0.operationName == "chain.chat-prompt | model | text" })
        #expect(spans.allSatisfy { $0.context.inMemorySpanContext?.traceID == root.context.inMemorySpanContext?.traceID }, "one trace")
        let step = try #require(spans.first { $0.operationName == "chain.model" })
        #expect(step.context.inMemorySpanContext?.parentSpanID != nil)
    }

    @Test func structuredOutputIsCheckedAgainstItsSchemaAndRepairedOnce() async throws {
        let (model, driver) = memoryModel()
        let parser = try JSONParser<Ticket>(repairingWith: model)
        func reply(_ text: String) -> ChatResponse { ChatResponse(id: "r", model: "m", message: .assistant(text), finishReason: .stop, usage: Usage()) }

        #expect(try await parser.invoke(reply("```json\n{\"title\":\"Down\",\"priority\":\"high\"}\n```")) == Ticket(title: "Down", priority: .high, tags: nil))

        driver.enqueue(.text(#"{"title":"Down","priority":"low","tags":["db"]}"#))
        let repaired = try await parser.invoke(reply(#"{"title":"Down","priority":"urgent"}"#))
        #expect(repaired == Ticket(title: "Down", priority: .low, tags: ["db"]))
        let repairPrompt = driver.requests.last?.messages.last?.text ?? ""
        #expect(repairPrompt.contains(#"/priority: must be one of "low", "high""#), "the model is told what is wrong: \(repairPrompt)")

        driver.enqueue(.text("still not json"))
        let error = await #expect(throws: NimbusError.self) { try await parser.invoke(reply("{\"title\": 3}")) }
        #expect(error?.code == .dataLoss && error?.message.contains("even after one repair") == true)

        let strict = try JSONParser<Ticket>()
        let noRepair = await #expect(throws: NimbusError.self) { try await strict.invoke(reply("{}")) }
        #expect(noRepair?.message.contains("/title: required property is missing") == true)
        #expect(try JSONParser<Ticket>.request().responseFormat != nil)
    }

    @Test func choiceAndListParsers() async throws {
        func reply(_ text: String) -> ChatResponse { ChatResponse(id: "r", model: "m", message: .assistant(text), finishReason: .stop, usage: Usage()) }
        #expect(try await ChoiceParser(Sentiment.self).invoke(reply("Negative.")) == .negative)
        #expect(try await ChoiceParser(Sentiment.self).invoke(reply("I'd say it is neutral overall")) == .neutral)
        await #expect(throws: NimbusError.self) { try await ChoiceParser(Sentiment.self).invoke(reply("positive or negative")) }
        #expect(try await ListParser().invoke(reply("1. Oslo\n2) Rome\n\n- Paris\n* Kyoto\nplain")) == ["Oslo", "Rome", "Paris", "Kyoto", "plain"])
    }

    @Test func parallelMapAndBranch() async throws {
        let upper = Lambda<String, String>("upper") { $0.uppercased() }
        let reverse = Lambda<String, String>("reverse") { String($0.reversed()) }
        #expect(try await Parallel("both", [("u", upper), ("r", reverse)]).invoke("abc") == ["u": "ABC", "r": "cba"])

        let running = Mutex((now: 0, peak: 0))
        let slow = Lambda<Int, Int>("square") { value in
            running.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
            try await Task.sleep(for: .milliseconds(Int.random(in: 1...20)))
            running.withLock { $0.now -= 1 }
            return value * value
        }
        #expect(try await MapEach(slow, concurrency: 3).invoke(Array(1...12)) == (1...12).map { $0 * $0 })
        #expect(running.withLock { $0.peak } <= 3)

        let route = Branch<String, String>(routes: [("question", { $0.hasSuffix("?") }, Lambda("answer") { _ in "answer" })],
                                           otherwise: Lambda("ack") { _ in "ack" })
        #expect(try await route.invoke("why?") == "answer")
        #expect(try await route.invoke("ok") == "ack")
    }

    @Test func retriesRideOutTransientFailuresAndFallbacksTakeOver() async throws {
        let (model, driver) = memoryModel { $0.enqueue(.failure(.rateLimited(retryAfter: .milliseconds(10))), .text("recovered")) }
        let policy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(20))
        let retried = ModelStep(model).then(TextParser()).retrying(policy)
        #expect(try await retried.invoke([.user("x")]) == "recovered")
        #expect(driver.requests.count == 2)

        let (broken, _) = memoryModel { $0.enqueue(.failure(.invalidRequest("bad"))) }
        let primary = ModelStep(broken).then(TextParser())
        let chain = primary.withFallbacks([Lambda<[ChatMessage], String>("canned") { _ in "fallback" }])
        #expect(try await chain.invoke([.user("x")]) == "fallback")
    }

    @Test func breakingOutOfAStreamCancelsTheRun() async throws {
        let (model, _) = memoryModel()
        // (started, cancelled, finished) of the slow step.
        let state = Mutex((false, false, false))
        let chain = ModelStep(model).then(TextParser()).then("slow") { (text: String) -> String in
            state.withLock { $0.0 = true }
            do { try await Task.sleep(for: .seconds(30)) } catch {
                state.withLock { $0.1 = true }
                throw error
            }
            state.withLock { $0.2 = true }
            return text
        }
        for try await event in chain.stream([.user("one two three")]) {
            if case .progress(.token) = event { break }
        }
        // The run is cancelled: the slow step either never starts or is cancelled in its sleep — never finishes.
        // (Polled, not timed: a loaded machine may take a while; the 60 s bound only guards against a hang.)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let (started, cancelled, _) = state.withLock { $0 }
            if !started || cancelled { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(50))
        let (started, cancelled, finished) = state.withLock { $0 }
        #expect(!finished)
        #expect(!started || cancelled, "a started slow step is cancelled")
    }
}
