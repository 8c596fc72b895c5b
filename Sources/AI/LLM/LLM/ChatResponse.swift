import NimbusCore

/// A model's reply: the assistant message (content parts and tool calls), why it stopped, and
/// what it used.
public struct ChatResponse: Sendable, Hashable, Codable {
    /// The provider's response id.
    public var id: String
    /// The model that answered (as the provider names it, often a dated version).
    public var model: String
    /// The reply, ready to append to the conversation.
    public var message: ChatMessage
    /// Why generation stopped.
    public var finishReason: FinishReason
    /// Token counts.
    public var usage: Usage

    /// Creates a response.
    public init(id: String, model: String, message: ChatMessage, finishReason: FinishReason, usage: Usage) {
        self.id = id
        self.model = model
        self.message = message
        self.finishReason = finishReason
        self.usage = usage
    }

    /// The reply's text.
    public var text: String { message.text }
    /// The tool calls the model asks for.
    public var toolCalls: [ToolCall] { message.toolCalls }
}

/// Why a model stopped, normalized across providers. Unknown provider values are kept in `other`.
public enum FinishReason: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A natural end or a stop sequence.
    case stop
    /// The token limit (`max_tokens`, `length`, `MAX_TOKENS`).
    case length
    /// The model wants tool results.
    case toolCalls
    /// A safety system withheld or cut the reply (`content_filter`, `refusal`, `SAFETY`...).
    case contentFilter
    /// The provider reported an error mid-reply.
    case error
    /// A value this version does not know, verbatim.
    case other(String)

    public var description: String {
        switch self {
        case .stop: "stop"
        case .length: "length"
        case .toolCalls: "tool_calls"
        case .contentFilter: "content_filter"
        case .error: "error"
        case .other(let raw): raw
        }
    }

    /// Parses the portable spelling (`stop`, `length`, `tool_calls`, `content_filter`, `error`).
    public init(portable raw: String) {
        switch raw {
        case "stop": self = .stop
        case "length": self = .length
        case "tool_calls": self = .toolCalls
        case "content_filter": self = .contentFilter
        case "error": self = .error
        default: self = .other(raw)
        }
    }

    public init(from decoder: any Decoder) throws { self.init(portable: try decoder.singleValueContainer().decode(String.self)) }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Token counts of one call, normalized so that cost is computed the same way for every provider:
/// `inputTokens` counts every prompt token, cached ones included (`cachedInputTokens` and
/// `cacheWriteInputTokens` are parts of it); `outputTokens` counts every generated token, reasoning
/// included (`reasoningTokens` is part of it).
public struct Usage: Sendable, Hashable, Codable {
    /// All prompt tokens.
    public var inputTokens: Int
    /// All generated tokens.
    public var outputTokens: Int
    /// Prompt tokens read from the provider's cache (billed at the cached price).
    public var cachedInputTokens: Int
    /// Prompt tokens written to the cache (Anthropic bills them above the input price).
    public var cacheWriteInputTokens: Int
    /// Generated tokens spent on reasoning.
    public var reasoningTokens: Int

    /// Creates counts.
    public init(inputTokens: Int = 0, outputTokens: Int = 0, cachedInputTokens: Int = 0, cacheWriteInputTokens: Int = 0, reasoningTokens: Int = 0) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedInputTokens = cachedInputTokens
        self.cacheWriteInputTokens = cacheWriteInputTokens
        self.reasoningTokens = reasoningTokens
    }

    /// No tokens.
    public static let zero = Usage()

    /// Input plus output.
    public var totalTokens: Int { inputTokens + outputTokens }

    /// Adds counts (for a conversation's or a key's totals).
    public static func + (lhs: Usage, rhs: Usage) -> Usage {
        Usage(inputTokens: lhs.inputTokens + rhs.inputTokens, outputTokens: lhs.outputTokens + rhs.outputTokens,
              cachedInputTokens: lhs.cachedInputTokens + rhs.cachedInputTokens,
              cacheWriteInputTokens: lhs.cacheWriteInputTokens + rhs.cacheWriteInputTokens,
              reasoningTokens: lhs.reasoningTokens + rhs.reasoningTokens)
    }
}
