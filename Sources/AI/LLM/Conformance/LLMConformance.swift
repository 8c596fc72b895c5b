import Foundation
import NimbusCore
import NimbusTesting
import NimbusLLM
import Synchronization
import Testing

/// The behaviour every ``NimbusLLM/ChatModelDriver`` must have, stated once and run against each
/// adapter — the embedded memory model and every provider behind its spec-checked fake.
///
/// A check scripts what the backend answers next (a portable ``Exchange`` or a ``Failure``); the
/// adapter's test renders it in the vendor's wire format (JSON and streaming transcript) and the
/// check asserts the portable result:
///
/// ```swift
/// @Test(arguments: LLMConformance.suite.checks(supportedBy: capabilities))
/// func conformance(_ check: LLMConformance.Check) async throws {
///     let fake = try await OpenAIFake.start()
///     try await check.run(LLMConformance.Harness(model: fake.model, capabilities: [.responseMetadata, .rawErrors, .malformedBodies],
///                                                script: { fake.script($0) }))
/// }
/// ```
public enum LLMConformance {
    /// A reply to script, in portable terms.
    public struct Exchange: Sendable, Hashable {
        /// The response id the provider sends.
        public var id: String
        /// The model the provider names.
        public var model: String
        /// Reasoning shown before the text.
        public var reasoning: String?
        /// Reply text.
        public var text: String
        /// Tool calls.
        public var toolCalls: [ToolCall]
        /// Why it stopped.
        public var finishReason: FinishReason
        /// Token counts.
        public var usage: Usage

        /// Creates an exchange.
        public init(id: String = "resp_conformance_1", model: String = "conformance-model", reasoning: String? = nil, text: String = "",
                    toolCalls: [ToolCall] = [], finishReason: FinishReason = .stop, usage: Usage = Usage(inputTokens: 21, outputTokens: 7)) {
            self.id = id
            self.model = model
            self.reasoning = reasoning
            self.text = text
            self.toolCalls = toolCalls
            self.finishReason = finishReason
            self.usage = usage
        }
    }

    /// A failure to script.
    public enum Failure: Sendable, Hashable, CaseIterable {
        /// 429 with `Retry-After: 2`.
        case rateLimited
        /// 401.
        case unauthenticated
        /// 400, the prompt is too long.
        case contextLengthExceeded
        /// 400, an invalid request.
        case invalidRequest
        /// 529/503.
        case overloaded
        /// 500.
        case serverError
        /// A 200 whose body is not the vendor's JSON.
        case malformedBody
        /// A stream cut mid-event, without its end.
        case cutMidStream
    }

    /// What to answer next.
    public enum Scripted: Sendable, Hashable {
        /// A reply.
        case reply(Exchange)
        /// A failure.
        case failure(Failure)
    }

    /// How a check reaches the adapter under test.
    public struct Harness: Sendable {
        /// The model under test, with retries off so failures surface.
        public var model: ChatModel
        /// The optional behaviours the adapter has (``ConformanceCapability/responseMetadata``…): checks that
        /// need one it lacks are not run, and its tests report them as not supported.
        public var capabilities: Set<ConformanceCapability>
        /// Makes the backend answer the next call (streaming or not) with this.
        public var script: @Sendable (Scripted) async throws -> Void
        /// The usage the adapter reports for scripted usage (identity unless the provider cannot carry some counts).
        public var expectedUsage: @Sendable (Usage) -> Usage
        /// An image URL the adapter can use (adapters that download images point it at their fake).
        public var imageURL: String

        /// Creates a harness.
        public init(model: ChatModel, capabilities: Set<ConformanceCapability>, script: @escaping @Sendable (Scripted) async throws -> Void,
                    expectedUsage: @escaping @Sendable (Usage) -> Usage = { $0 }, imageURL: String = "https://example.com/cat.png") {
            self.model = model
            self.capabilities = capabilities
            self.script = script
            self.expectedUsage = expectedUsage
            self.imageURL = imageURL
        }
    }

    /// One named behaviour (the conformance kit's check over this harness); the agent loop's
    /// checks run on the same harness.
    public typealias Check = ConformanceCheck<Harness>

    static func check(_ name: String, needs: Set<ConformanceCapability> = [], _ body: @escaping @Sendable (Harness) async throws -> Void) -> Check {
        Check(name, needs: needs, body)
    }

    static let weather = ToolDefinition(name: "get_weather", description: "Current weather in a city",
                                        parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])
    static let time = ToolDefinition(name: "get_time", description: "Current time in a time zone",
                                     parameters: ["type": "object", "properties": ["zone": ["type": "string"]], "required": ["zone"]])

    static func request(_ text: String = "Say something short.") -> ChatRequest {
        ChatRequest(messages: [.system("You are terse."), .user(text)], maxTokens: 200)
    }

    /// Scripts the same exchange twice and returns the non-streaming and the streamed response.
    static func bothWays(_ harness: Harness, _ exchange: Exchange, request: ChatRequest) async throws -> (ChatResponse, ChatResponse, [ChatStreamEvent]) {
        try await harness.script(.reply(exchange))
        let whole = try await harness.model.chat(request)
        try await harness.script(.reply(exchange))
        var events: [ChatStreamEvent] = []
        var accumulator = ChatResponseAccumulator()
        for try await event in try await harness.model.stream(request) {
            events.append(event)
            accumulator.add(event)
        }
        var streamed = try accumulator.response()
        if !harness.capabilities.contains(.responseMetadata) { streamed.id = whole.id }   // ids are per call then
        return (whole, streamed, events)
    }

    static func expectMetadata(_ response: ChatResponse, _ exchange: Exchange, _ harness: Harness) {
        if harness.capabilities.contains(.responseMetadata) {
            #expect(response.id == exchange.id)
            #expect(response.model == exchange.model)
        } else {
            #expect(!response.id.isEmpty)
            #expect(!response.model.isEmpty)
        }
    }

    static func expectToolCalls(_ calls: [ToolCall], _ expected: [ToolCall], _ harness: Harness) throws {
        #expect(calls.map(\.name) == expected.map(\.name))
        #expect(try calls.map { try $0.parsedArguments() } == expected.map { try $0.parsedArguments() })
        if harness.capabilities.contains(.providerToolCallIDs) {
            #expect(calls.map(\.id) == expected.map(\.id))
        } else {
            #expect(calls.allSatisfy { !$0.id.isEmpty })
            #expect(Set(calls.map(\.id)).count == calls.count, "tool call ids must be unique")
        }
    }

    static func failure(_ harness: Harness, _ failure: Failure, streaming: Bool) async throws -> NimbusError {
        try await harness.script(.failure(failure))
        do {
            if streaming {
                for try await _ in try await harness.model.stream(request()) {}
            } else {
                _ = try await harness.model.chat(request())
            }
        } catch let error as NimbusError {
            return error
        }
        Issue.record("the scripted \(failure) did not fail the call")
        throw NimbusError(.internal, "no failure")
    }

    /// The suite: run `suite.checks(supportedBy: capabilities)`, and report `suite.unsupported(by: capabilities)`.
    public static let suite = ConformanceSuite<Harness>(domain: "llm", checks: checks)

    /// Every check.
    static let checks: [Check] = [
        check("a text reply has its text, finish reason, usage and metadata") { harness in
            let exchange = Exchange(text: "Hello there, traveller.", usage: Usage(inputTokens: 21, outputTokens: 7))
            try await harness.script(.reply(exchange))
            let response = try await harness.model.chat(request())
            #expect(response.text == "Hello there, traveller.")
            #expect(response.finishReason == .stop)
            #expect(response.usage == harness.expectedUsage(exchange.usage))
            #expect(response.toolCalls.isEmpty)
            #expect(response.message.role == .assistant)
            expectMetadata(response, exchange, harness)
        },
        check("a streamed text reply accumulates to the non-streaming response") { harness in
            let exchange = Exchange(text: "One, two, three — and a line\nbreak, with ünïcödé 🚀.", usage: Usage(inputTokens: 30, outputTokens: 16))
            let (whole, streamed, events) = try await bothWays(harness, exchange, request: request())
            #expect(streamed == whole)
            #expect(whole.text == exchange.text)
            let deltas = events.compactMap { if case .textDelta(let text) = $0 { text } else { nil } }
            #expect(deltas.joined() == exchange.text)
            #expect(events.last == .finish(.stop) || events.contains(.finish(.stop)))
            guard case .start? = events.first else { Issue.record("the first event must be .start, got \(String(describing: events.first))"); return }
        },
        check("parallel tool calls come back with names, ids and arguments, streamed or not") { harness in
            let calls = [ToolCall(id: "call_weather_1", name: "get_weather", arguments: #"{"city":"Paris"}"#),
                         ToolCall(id: "call_time_2", name: "get_time", arguments: #"{"zone":"Europe/Paris"}"#)]
            let exchange = Exchange(toolCalls: calls, finishReason: .toolCalls, usage: Usage(inputTokens: 80, outputTokens: 30))
            var request = request("Weather and time in Paris?")
            request.tools = [weather, time]
            request.toolChoice = .auto
            request.parallelToolCalls = true
            let (whole, streamed, _) = try await bothWays(harness, exchange, request: request)
            #expect(whole.finishReason == .toolCalls)
            try expectToolCalls(whole.toolCalls, calls, harness)
            #expect(streamed == whole)
        },
        check("a conversation with tool calls and their results is accepted") { harness in
            let call = ToolCall(id: "call_abc", name: "get_weather", arguments: #"{"city":"Paris"}"#)
            let request = ChatRequest(messages: [
                .system("You are terse."), .user("Weather in Paris?"),
                .assistant("", toolCalls: [call]),
                .tool(callID: "call_abc", name: "get_weather", #"{"temperature":18,"sky":"clear"}"#),
            ], tools: [weather], toolChoice: .tool("get_weather"))
            try await harness.script(.reply(Exchange(text: "18 °C and clear.")))
            let response = try await harness.model.chat(request)
            #expect(response.text == "18 °C and clear.")
        },
        check("a named tool choice, structured output and sampling settings are accepted") { harness in
            var request = request("Give me a city.")
            request.responseFormat = .jsonSchema(name: "city", schema: ["type": "object", "properties": ["name": ["type": "string"]],
                                                                       "required": ["name"], "additionalProperties": false])
            request.temperature = 0.2
            request.topP = 0.9
            request.stop = ["\n\n"]
            request.seed = 7
            let exchange = Exchange(text: #"{"name":"Lyon"}"#)
            try await harness.script(.reply(exchange))
            let response = try await harness.model.chat(request)
            #expect(try response.message.content.count == 1 && JSONValue.parse(Data(response.text.utf8)) == ["name": "Lyon"])
        },
        check("images by URL and by bytes are accepted") { harness in
            let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
            let request = ChatRequest(messages: [.user([.text("What is in these pictures?"),
                                                        .image(.url(harness.imageURL), detail: .low),
                                                        .image(.data(png, mediaType: "image/png"))])])
            try await harness.script(.reply(Exchange(text: "Two cats.")))
            #expect(try await harness.model.chat(request).text == "Two cats.")
        },
        check("length and content-filter finishes are normalized") { harness in
            for reason in harness.capabilities.contains(.contentFilterFinish) ? [FinishReason.length, .contentFilter] : [.length] {
                let exchange = Exchange(text: "Partial", finishReason: reason)
                let (whole, streamed, _) = try await bothWays(harness, exchange, request: request())
                #expect(whole.finishReason == reason)
                #expect(streamed == whole)
            }
        },
        check("an unknown finish reason decodes as .other, streamed or not") { harness in
            let exchange = Exchange(text: "Hmm", finishReason: .other("brand_new_reason"))
            let (whole, streamed, _) = try await bothWays(harness, exchange, request: request())
            #expect(whole.finishReason == .other("brand_new_reason"))
            #expect(streamed.finishReason == .other("brand_new_reason"))
        },
        check("cached-input and reasoning token counts are kept apart") { harness in
            let usage = Usage(inputTokens: 1200, outputTokens: 300, cachedInputTokens: 1000, reasoningTokens: 120)
            let exchange = Exchange(text: "Done.", usage: usage)
            let (whole, streamed, _) = try await bothWays(harness, exchange, request: request())
            #expect(whole.usage == harness.expectedUsage(usage))
            #expect(streamed.usage == whole.usage)
        },
        check("visible reasoning comes before the text, streamed or not", needs: [.reasoning]) { harness in
            let exchange = Exchange(reasoning: "The user wants brevity.", text: "Hi.")
            let (whole, streamed, _) = try await bothWays(harness, exchange, request: request())
            guard case .reasoning(let thought, _, _)? = whole.message.content.first else {
                Issue.record("expected a reasoning part first, got \(whole.message.content)"); return
            }
            #expect(thought == "The user wants brevity.")
            #expect(whole.text == "Hi.")
            #expect(streamed == whole)
        },
        check("a tool result without its call is refused before anything is sent") { harness in
            let request = ChatRequest(messages: [.user("hi"), .tool(callID: "call_orphan", "42")])
            await #expect(throws: NimbusError.self) { try await harness.model.chat(request) }
            do { _ = try await harness.model.chat(request) } catch let error as NimbusError { #expect(error.code == .invalidArgument) }
        },
        check("provider failures map to one taxonomy, streamed or not") { harness in
            let expected: [(Failure, LLMFailure.Kind, NimbusError.Code)] = [
                (.rateLimited, .rateLimited, .resourceExhausted),
                (.unauthenticated, .unauthenticated, .unauthenticated),
                (.contextLengthExceeded, .contextLengthExceeded, .invalidArgument),
                (.invalidRequest, .invalidRequest, .invalidArgument),
                (.overloaded, .overloaded, .unavailable),
                (.serverError, .unavailable, .unavailable),
            ]
            for streaming in [false, true] {
                for (failure, kind, code) in expected {
                    let error = try await Self.failure(harness, failure, streaming: streaming)
                    #expect(error.code == code, "\(failure) (streaming: \(streaming)) gave \(error)")
                    #expect(error.llmFailure?.kind == kind, "\(failure) (streaming: \(streaming)) gave \(error)")
                    if failure == .rateLimited { #expect(error.retryAfter == .seconds(2), "\(error)") }
                    if harness.capabilities.contains(.rawErrors) {
                        #expect(error.llmFailure?.rawBody?.isEmpty == false, "\(failure): the provider's body must stay reachable")
                    }
                }
            }
        },
        check("a malformed body is a clear dataLoss error, not a crash", needs: [.malformedBodies]) { harness in
            for streaming in [false, true] {
                let error = try await Self.failure(harness, .malformedBody, streaming: streaming)
                #expect(error.code == .dataLoss, "\(error)")
            }
        },
        check("a stream cut mid-reply fails instead of ending quietly") { harness in
            let error = try await Self.failure(harness, .cutMidStream, streaming: true)
            #expect([NimbusError.Code.dataLoss, .unavailable].contains(error.code), "\(error)")
        },
    ]
}

extension ConformanceCapability {
    /// Response id and model come from the provider as scripted.
    public static let responseMetadata: ConformanceCapability = "responseMetadata"
    /// Tool call ids come from the provider (else the adapter makes stable ones).
    public static let providerToolCallIDs: ConformanceCapability = "providerToolCallIDs"
    /// Visible reasoning (thinking blocks).
    public static let reasoning: ConformanceCapability = "reasoning"
    /// Errors carry the provider's raw body.
    public static let rawErrors: ConformanceCapability = "rawErrors"
    /// Malformed bodies can be scripted.
    public static let malformedBodies: ConformanceCapability = "malformedBodies"
    /// The provider has a content-filter finish reason (Ollama has none).
    public static let contentFilterFinish: ConformanceCapability = "contentFilterFinish"
}

extension LLMConformance {
    /// The state behind an adapter's conformance fake: scripted answers in order. (Spec departures
    /// are refused by the fake server's own check: `FakeHTTPServer.refuseRequests`.)
    public final class ScriptedBackend: Sendable {
        private let queue = Mutex<[Scripted]>([])

        /// An empty script.
        public init() {}

        /// Adds an answer.
        public func script(_ scripted: Scripted) { queue.withLock { $0.append(scripted) } }

        /// The next answer, if any is left.
        public func next() -> Scripted? { queue.withLock { $0.isEmpty ? nil : $0.removeFirst() } }
    }
}
