import Foundation
import NimbusCore
import NimbusLLM
import Synchronization

/// A deterministic chat model that runs in memory: the embedded default of `nimbus serve` and the
/// model of tests. It answers from, in order, a script of queued replies, rules matched against the
/// request, or its built-in behaviour:
///
/// - a request that forces a tool (`toolChoice` `.required` or `.tool(name)`) gets a call to it, with
///   arguments built from the tool's schema;
/// - a request for JSON (`responseFormat`) gets a JSON value that fits the schema;
/// - a conversation that ends with tool results gets a reply quoting them;
/// - anything else is echoed: the reply is the last user message's text.
///
/// Usage is counted with ``TokenEstimator``; latency and failures (429 with Retry-After, 5xx,
/// timeouts, a stream cut mid-reply) can be scripted.
///
/// ```swift
/// let memory = ScriptedChatModelDriver()
/// memory.enqueue(.text("Paris."), .failure(.rateLimited(retryAfter: .seconds(1))))
/// memory.addRule(.lastUserMessageContains("weather"), reply: .toolCalls([ToolCall(id: "call_1", name: "get_weather", arguments: #"{"city":"Paris"}"#)]))
/// let model = ChatModel(driver: memory, configuration: .init(defaultModel: "memory"))
/// ```
public final class ScriptedChatModelDriver: ChatModelDriver, ModelListingDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The model ids it answers to (any other id is `modelNotFound`; empty accepts any id).
        public var models: [String]
        /// Delay before every reply (and between streamed chunks, divided among them).
        public var latency: Duration
        /// Words per streamed text delta.
        public var wordsPerChunk: Int
        /// How usage is counted.
        public var estimator: TokenEstimator
        /// How many of the latest requests ``ScriptedChatModelDriver/requests`` keeps (a server on the memory model runs for weeks).
        public var recordLimit: Int

        /// Creates settings.
        public init(models: [String] = ["memory"], latency: Duration = .zero, wordsPerChunk: Int = 1, estimator: TokenEstimator = TokenEstimator(),
                    recordLimit: Int = 1000) {
            self.models = models
            self.latency = latency
            self.wordsPerChunk = max(1, wordsPerChunk)
            self.estimator = estimator
            self.recordLimit = max(0, recordLimit)
        }
    }

    /// One scripted reply.
    public struct Reply: Sendable, Hashable {
        /// Reply text.
        public var text: String
        /// Visible reasoning before the text.
        public var reasoning: String?
        /// Tool calls.
        public var toolCalls: [ToolCall]
        /// The finish reason (default: `toolCalls` if there are calls, else `stop`).
        public var finishReason: FinishReason?
        /// Usage to report (default: estimated).
        public var usage: Usage?
        /// Fail instead of answering.
        public var failure: Failure?
        /// Extra delay for this reply.
        public var latency: Duration?

        /// Creates a reply.
        public init(text: String = "", reasoning: String? = nil, toolCalls: [ToolCall] = [], finishReason: FinishReason? = nil,
                    usage: Usage? = nil, failure: Failure? = nil, latency: Duration? = nil) {
            self.text = text
            self.reasoning = reasoning
            self.toolCalls = toolCalls
            self.finishReason = finishReason
            self.usage = usage
            self.failure = failure
            self.latency = latency
        }

        /// A text reply.
        public static func text(_ text: String) -> Reply { Reply(text: text) }
        /// A reply that calls tools.
        public static func toolCalls(_ calls: [ToolCall]) -> Reply { Reply(toolCalls: calls) }
        /// A failure.
        public static func failure(_ failure: Failure) -> Reply { Reply(failure: failure) }
    }

    /// A simulated provider failure.
    public enum Failure: Sendable, Hashable {
        /// 429 with an optional Retry-After.
        case rateLimited(retryAfter: Duration?)
        /// 401.
        case unauthenticated
        /// 400 context length exceeded.
        case contextLengthExceeded
        /// 400 refused by the safety system.
        case contentFiltered
        /// 400 invalid request.
        case invalidRequest(String)
        /// 529/503 overloaded.
        case overloaded
        /// 500.
        case serverError
        /// No answer within the time limit.
        case timeout
        /// A stream that stops halfway (non-streaming calls fail as `unavailable`).
        case cutMidStream
    }

    /// Which requests a rule answers.
    public struct Matcher: Sendable {
        let matches: @Sendable (ChatRequest) -> Bool
        /// A custom predicate.
        public init(_ matches: @escaping @Sendable (ChatRequest) -> Bool) { self.matches = matches }
        /// The last user message contains `text` (case-insensitive).
        public static func lastUserMessageContains(_ text: String) -> Matcher {
            Matcher { request in
                request.messages.last { $0.role == .user }?.text.range(of: text, options: .caseInsensitive) != nil
            }
        }
        /// The request is for this model.
        public static func model(_ id: String) -> Matcher { Matcher { $0.model == id } }
        /// Every request.
        public static let always = Matcher { _ in true }
    }

    private struct Rule: Sendable {
        let matcher: Matcher
        let reply: @Sendable (ChatRequest) -> Reply
    }

    private struct State {
        var script: [Reply] = []
        var rules: [Rule] = []
        var requests: [ChatRequest] = []
        var counter = 0
    }

    /// The settings.
    public let configuration: Configuration
    public let provider = "memory"
    private let state = Mutex(State())
    private let sleep: @Sendable (Duration) async throws -> Void

    /// Creates a model; `sleep` waits for simulated latency (inject a manual clock's sleep in tests).
    public init(configuration: Configuration = .init(),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.configuration = configuration
        self.sleep = sleep
    }

    /// Queues replies, answered in order before any rule.
    public func enqueue(_ replies: Reply...) { state.withLock { $0.script += replies } }

    /// Adds a rule; rules are tried in the order added.
    public func addRule(_ matcher: Matcher, reply: Reply) { addRule(matcher) { _ in reply } }

    /// Adds a rule whose reply depends on the request.
    public func addRule(_ matcher: Matcher, reply: @escaping @Sendable (ChatRequest) -> Reply) {
        state.withLock { $0.rules.append(Rule(matcher: matcher, reply: reply)) }
    }

    /// The latest requests received (at most `configuration.recordLimit`), oldest first.
    public var requests: [ChatRequest] { state.withLock { $0.requests } }

    /// Drops the script, the rules and the recorded requests.
    public func reset() { state.withLock { $0 = State() } }

    public func listModels() async throws -> [ModelDescriptor] {
        configuration.models.map { ModelDescriptor(id: $0, ownedBy: "nimbus", created: Date(timeIntervalSince1970: 1_735_689_600)) }
    }

    public func chat(_ request: ChatRequest) async throws -> ChatResponse {
        let (reply, id) = try take(request)
        try await sleep(for: reply)
        if let failure = reply.failure {
            if failure == .cutMidStream {
                throw NimbusError(.unavailable, "memory: the connection was closed before the reply was complete", underlying: LLMFailure(kind: .unavailable, provider: provider, message: "connection closed mid-reply"))
            }
            throw error(for: failure)
        }
        return response(to: request, reply: reply, id: id)
    }

    public func stream(_ request: ChatRequest) async throws -> ChatStream {
        let (reply, id) = try take(request)
        if let failure = reply.failure, failure != .cutMidStream {
            try await sleep(for: reply)
            throw error(for: failure)
        }
        let response = response(to: request, reply: reply, id: id)
        let chunks = Self.chunks(of: reply.text, wordsPerChunk: configuration.wordsPerChunk)
        let pause = (reply.latency ?? configuration.latency) / max(1, chunks.count + 1)
        let sleep = self.sleep
        return ChatStream { yield in
            await yield(.start(id: response.id, model: response.model))
            if pause > .zero { try await sleep(pause) }
            for part in response.message.content {
                if case .reasoning(let text, let signature, _) = part { await yield(.reasoningDelta(text, signature: signature)) }
            }
            let cutAfter = reply.failure == .cutMidStream ? chunks.count / 2 : nil
            for (index, chunk) in chunks.enumerated() {
                if let cutAfter, index >= cutAfter { return }
                try Task.checkCancellation()
                await yield(.textDelta(chunk))
                if pause > .zero { try await sleep(pause) }
            }
            if cutAfter != nil { return }
            for (index, call) in response.toolCalls.enumerated() {
                let split = call.arguments.index(call.arguments.startIndex, offsetBy: call.arguments.count / 2)
                await yield(.toolCallDelta(ToolCallDelta(index: index, id: call.id, name: call.name, arguments: String(call.arguments[..<split]))))
                await yield(.toolCallDelta(ToolCallDelta(index: index, arguments: String(call.arguments[split...]))))
            }
            await yield(.usage(response.usage))
            await yield(.finish(response.finishReason))
        }
    }

    // MARK: - Answers

    private func take(_ request: ChatRequest) throws -> (Reply, String) {
        let model = request.model ?? "memory"
        if !configuration.models.isEmpty, !configuration.models.contains(model) {
            throw LLMFailure(kind: .modelNotFound, provider: provider, status: 404,
                             message: "the memory model serves \(configuration.models.joined(separator: ", ")), not '\(model)'").nimbusError()
        }
        return state.withLock { state in
            state.requests.append(request)
            if state.requests.count > configuration.recordLimit { state.requests.removeFirst(state.requests.count - configuration.recordLimit) }
            state.counter += 1
            let id = "memory-\(state.counter)"
            if !state.script.isEmpty { return (state.script.removeFirst(), id) }
            if let rule = state.rules.first(where: { $0.matcher.matches(request) }) { return (rule.reply(request), id) }
            return (Self.builtInReply(to: request), id)
        }
    }

    private func sleep(for reply: Reply) async throws {
        let delay = reply.latency ?? configuration.latency
        if delay > .zero { try await sleep(delay) }
    }

    private func response(to request: ChatRequest, reply: Reply, id: String) -> ChatResponse {
        var content: [ContentPart] = []
        if let reasoning = reply.reasoning { content.append(.reasoning(reasoning)) }
        if !reply.text.isEmpty { content.append(.text(reply.text)) }
        let message = ChatMessage(role: .assistant, content: content, toolCalls: reply.toolCalls)
        let estimator = configuration.estimator
        let reasoningTokens = reply.reasoning.map { estimator.count($0) } ?? 0
        let usage = reply.usage ?? Usage(inputTokens: estimator.count(request),
                                         outputTokens: estimator.count(message) - estimator.tokensPerMessage + reasoningTokens,
                                         reasoningTokens: reasoningTokens)
        var finish = reply.finishReason ?? (reply.toolCalls.isEmpty ? .stop : .toolCalls)
        if let maxTokens = request.maxTokens, reply.finishReason == nil, usage.outputTokens > maxTokens { finish = .length }
        return ChatResponse(id: id, model: request.model ?? "memory", message: message, finishReason: finish, usage: usage)
    }

    private func error(for failure: Failure) -> NimbusError {
        switch failure {
        case .rateLimited(let retryAfter):
            return LLMFailure(kind: .rateLimited, provider: provider, status: 429, message: "rate limit reached (simulated)").nimbusError(retryAfter: retryAfter)
        case .unauthenticated:
            return LLMFailure(kind: .unauthenticated, provider: provider, status: 401, message: "invalid API key (simulated)").nimbusError()
        case .contextLengthExceeded:
            return LLMFailure(kind: .contextLengthExceeded, provider: provider, status: 400, providerCode: "context_length_exceeded", message: "the prompt is longer than the context window (simulated)").nimbusError()
        case .contentFiltered:
            return LLMFailure(kind: .contentFiltered, provider: provider, status: 400, providerCode: "content_filter", message: "the prompt was refused by the content filter (simulated)").nimbusError()
        case .invalidRequest(let message):
            return LLMFailure(kind: .invalidRequest, provider: provider, status: 400, message: message).nimbusError()
        case .overloaded:
            return LLMFailure(kind: .overloaded, provider: provider, status: 529, message: "overloaded (simulated)").nimbusError()
        case .serverError:
            return LLMFailure(kind: .unavailable, provider: provider, status: 500, message: "internal server error (simulated)").nimbusError()
        case .timeout:
            return LLMFailure(kind: .timeout, provider: provider, message: "no answer in time (simulated)").nimbusError()
        case .cutMidStream:
            return LLMFailure(kind: .unavailable, provider: provider, message: "connection closed mid-reply (simulated)").nimbusError()
        }
    }

    /// What the model says when nothing is scripted.
    static func builtInReply(to request: ChatRequest) -> Reply {
        let forced: ToolDefinition? = switch request.toolChoice {
        case .required?: request.tools.first
        case .tool(let name)?: request.tools.first { $0.name == name }
        default: nil
        }
        if let tool = forced {
            let arguments = JSONSchemaSample.value(for: tool.parameters).description
            return .toolCalls([ToolCall(id: "call_\(request.messages.count)_0", name: tool.name, arguments: arguments)])
        }
        switch request.responseFormat {
        case .jsonSchema(_, let schema, _)?: return .text(JSONSchemaSample.value(for: schema).description)
        case .jsonObject?: return .text(JSONValue.object(["reply": .string(lastUserText(request))]).description)
        default: break
        }
        if let last = request.messages.last, last.role == .tool {
            let results = request.messages.reversed().prefix { $0.role == .tool }.reversed()
            return .text("Tool results: " + results.map { "\($0.name ?? $0.toolCallID ?? "tool") → \($0.text)" }.joined(separator: "; "))
        }
        return .text(lastUserText(request))
    }

    private static func lastUserText(_ request: ChatRequest) -> String {
        request.messages.last { $0.role == .user }?.text ?? ""
    }

    static func chunks(of text: String, wordsPerChunk: Int) -> [String] {
        var chunks: [String] = []
        var current = ""
        var words = 0
        for character in text {
            if character == " ", !current.isEmpty, !current.hasSuffix(" ") {
                words += 1
                if words == wordsPerChunk {
                    chunks.append(current)
                    current = ""
                    words = 0
                }
            }
            current.append(character)
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }
}

/// Builds a small JSON value that fits a JSON Schema: required properties only, the first enum
/// value, minimal lengths and bounds.
enum JSONSchemaSample {
    static func value(for schema: JSONValue, depth: Int = 0) -> JSONValue {
        guard depth < 16, let object = schema.objectValue else { return .null }
        if let constant = object["const"] { return constant }
        if let options = object["enum"]?.arrayValue, let first = options.first { return first }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let first = object[key]?.arrayValue?.first { return value(for: first, depth: depth + 1) }
        }
        let type: String? = object["type"]?.stringValue ?? object["type"]?.arrayValue?.first { $0.stringValue != "null" }?.stringValue
        switch type ?? (object["properties"] != nil ? "object" : nil) {
        case "object"?:
            let properties = object["properties"]?.objectValue ?? [:]
            let required = object["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
            var members: [String: JSONValue] = [:]
            for name in required { members[name] = properties[name].map { value(for: $0, depth: depth + 1) } ?? .null }
            return .object(members)
        case "array"?:
            let count = Int(object["minItems"]?.numberValue ?? 0)
            return .array(Array(repeating: object["items"].map { value(for: $0, depth: depth + 1) } ?? .null, count: count))
        case "string"?:
            let length = Int(object["minLength"]?.numberValue ?? 0)
            return .string(String(repeating: "x", count: length))
        case "integer"?, "number"?:
            return .number(object["minimum"]?.numberValue ?? 0)
        case "boolean"?:
            return .bool(false)
        default:
            return .null
        }
    }
}
