import NimbusCore

/// Everything one chat call asks of a model, portable across providers.
///
/// ```swift
/// var request = ChatRequest(model: "gpt-4o-mini", messages: [.user("Weather in Paris?")])
/// request.tools = [weather]
/// request.toolChoice = .auto
/// request.maxTokens = 300
/// let response = try await model.chat(request)
/// ```
public struct ChatRequest: Sendable, Hashable {
    /// The model id; `nil` uses the ``ChatModel``'s default.
    public var model: String?
    /// The conversation so far.
    public var messages: [ChatMessage]
    /// Tools the model may call.
    public var tools: [ToolDefinition]
    /// Whether and which tool the model must call (`nil`: the provider's default, `auto` with tools).
    public var toolChoice: ToolChoice?
    /// Whether several tool calls may come in one reply (`nil`: the provider's default).
    public var parallelToolCalls: Bool?
    /// Text, any JSON object, or JSON that fits a schema.
    public var responseFormat: ResponseFormat?
    /// Sampling temperature (0...2).
    public var temperature: Double?
    /// Nucleus sampling (0...1).
    public var topP: Double?
    /// The most tokens to generate.
    public var maxTokens: Int?
    /// Sequences that end generation.
    public var stop: [String]
    /// A seed for reproducible sampling where the provider has it.
    public var seed: Int?
    /// Reasoning effort or a thinking budget, for reasoning models.
    public var reasoning: Reasoning?
    /// Key-value pairs passed to the provider where it stores them, and to logs and spend records.
    public var metadata: [String: String]
    /// An end-user id for the provider's abuse monitoring.
    public var user: String?
    /// Extra top-level fields merged into the provider's request body as is — the escape hatch for
    /// provider features the portable request does not name.
    public var providerOptions: [String: JSONValue]

    /// Creates a request.
    public init(model: String? = nil, messages: [ChatMessage], tools: [ToolDefinition] = [], toolChoice: ToolChoice? = nil,
                parallelToolCalls: Bool? = nil, responseFormat: ResponseFormat? = nil, temperature: Double? = nil,
                topP: Double? = nil, maxTokens: Int? = nil, stop: [String] = [], seed: Int? = nil, reasoning: Reasoning? = nil,
                metadata: [String: String] = [:], user: String? = nil, providerOptions: [String: JSONValue] = [:]) {
        self.model = model
        self.messages = messages
        self.tools = tools
        self.toolChoice = toolChoice
        self.parallelToolCalls = parallelToolCalls
        self.responseFormat = responseFormat
        self.temperature = temperature
        self.topP = topP
        self.maxTokens = maxTokens
        self.stop = stop
        self.seed = seed
        self.reasoning = reasoning
        self.metadata = metadata
        self.user = user
        self.providerOptions = providerOptions
    }

    /// The system messages' text joined by blank lines (providers with a top-level system field use this).
    public var systemText: String? {
        let parts = messages.filter { $0.role == .system }.map(\.text)
        return parts.isEmpty ? nil : parts.joined(separator: "\n\n")
    }

    /// Checks what every provider would reject, before anything is sent: an empty conversation,
    /// a tool result with no matching call before it (the provider's 400 after history trimming),
    /// out-of-range sampling settings, bad tool names, a named tool choice that is not offered.
    /// - Throws: `invalidArgument` saying what to fix.
    /// The largest `maxTokens` or reasoning budget a request may ask for (16,777,216): far above any
    /// model's output, far below where arithmetic on token counts could overflow.
    public static let maxTokensLimit = 1 << 24

    /// Checks the caller-supplied numbers alone (what a server does right after decoding, before
    /// any arithmetic on them): `maxTokens` and the reasoning budget within 1…``maxTokensLimit``.
    /// - Throws: `invalidArgument` naming the number.
    public func checkNumbers() throws {
        if let maxTokens, !(1...Self.maxTokensLimit).contains(maxTokens) {
            throw NimbusError(.invalidArgument, "maxTokens must be between 1 and \(Self.maxTokensLimit), not \(maxTokens)")
        }
        if let budget = reasoning?.budgetTokens, !(0...Self.maxTokensLimit).contains(budget) {
            throw NimbusError(.invalidArgument, "the reasoning budget must be between 0 and \(Self.maxTokensLimit) tokens, not \(budget)")
        }
    }

    public func validate() throws {
        guard !messages.isEmpty else { throw NimbusError(.invalidArgument, "a chat request needs at least one message") }
        if let temperature, !(0...2).contains(temperature) { throw NimbusError(.invalidArgument, "temperature \(temperature) is outside 0...2") }
        if let topP, !(0...1).contains(topP) { throw NimbusError(.invalidArgument, "topP \(topP) is outside 0...1") }
        try checkNumbers()
        var names = Set<String>()
        for tool in tools {
            guard Self.isValidToolName(tool.name) else {
                throw NimbusError(.invalidArgument, "tool name '\(tool.name)' must be 1 to 64 letters, digits, '_' or '-'")
            }
            guard names.insert(tool.name).inserted else { throw NimbusError(.invalidArgument, "tool '\(tool.name)' is defined twice") }
            guard tool.parameters.objectValue != nil else {
                throw NimbusError(.invalidArgument, "the parameters of tool '\(tool.name)' must be a JSON Schema object, not a \(tool.parameters.typeName)")
            }
        }
        if case .tool(let name)? = toolChoice, !names.contains(name) {
            throw NimbusError(.invalidArgument, "toolChoice names '\(name)', which is not among the request's tools (\(names.sorted().joined(separator: ", ")))")
        }
        if case .jsonSchema(let name, _, _)? = responseFormat, !Self.isValidToolName(name) {
            throw NimbusError(.invalidArgument, "response schema name '\(name)' must be 1 to 64 letters, digits, '_' or '-'")
        }
        var open = Set<String>()
        for (index, message) in messages.enumerated() {
            switch message.role {
            case .assistant:
                open = Set(message.toolCalls.map(\.id))
            case .tool:
                guard let id = message.toolCallID else {
                    throw NimbusError(.invalidArgument, "message \(index) is a tool result without toolCallID")
                }
                guard open.remove(id) != nil else {
                    throw NimbusError(.invalidArgument, "message \(index) answers tool call '\(id)', but no assistant message right before it made that call (was the history trimmed between a call and its result?)")
                }
            case .user, .system:
                open = []
            }
            if message.role != .assistant, !message.toolCalls.isEmpty {
                throw NimbusError(.invalidArgument, "message \(index) is a \(message.role.rawValue) message with tool calls; only assistant messages make calls")
            }
        }
    }

    static func isValidToolName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2D
        }
    }
}

/// The shape of the reply.
public enum ResponseFormat: Sendable, Hashable {
    /// Free text.
    case text
    /// Any JSON object.
    case jsonObject
    /// JSON that fits `schema`; `strict` asks the provider to guarantee it.
    case jsonSchema(name: String, schema: JSONValue, strict: Bool = true)
}

/// How hard a reasoning model thinks.
public struct Reasoning: Sendable, Hashable {
    /// Effort levels (OpenAI `reasoning_effort`, mapped to budgets elsewhere).
    public enum Effort: String, Sendable, Hashable, CaseIterable { case minimal, low, medium, high }
    /// The effort level, if given.
    public var effort: Effort?
    /// A token budget for thinking (Anthropic `thinking.budget_tokens`, Gemini `thinkingBudget`).
    public var budgetTokens: Int?

    /// Creates a setting.
    public init(effort: Effort? = nil, budgetTokens: Int? = nil) {
        self.effort = effort
        self.budgetTokens = budgetTokens
    }

    /// A budget for providers that take tokens: the explicit budget, else one derived from the effort.
    public var resolvedBudget: Int? {
        if let budgetTokens { return budgetTokens }
        switch effort {
        case .minimal?: return 1024
        case .low?: return 2048
        case .medium?: return 8192
        case .high?: return 24576
        case nil: return nil
        }
    }

    /// An effort for providers that take levels: the explicit effort, else one derived from the budget.
    public var resolvedEffort: Effort? {
        if let effort { return effort }
        guard let budgetTokens else { return nil }
        switch budgetTokens {
        case ..<1500: return .minimal
        case ..<4096: return .low
        case ..<16384: return .medium
        default: return .high
        }
    }
}
