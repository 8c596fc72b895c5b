/// A fast, deterministic token estimate for budgeting (history trimming, context assembly, the memory
/// model's usage) without a provider's tokenizer. It counts a run of letters or digits as
/// `length / charactersPerToken` tokens (rounded, at least one), each punctuation mark or symbol as one, and each
/// CJK character as one; whitespace is free. Real tokenizers differ by a few percent on English prose;
/// leave headroom.
///
/// ```swift
/// let estimator = TokenEstimator.forModel("claude-sonnet-4")
/// let tokens = estimator.count(messages: history)
/// ```
public struct TokenEstimator: Sendable, Hashable {
    /// Average characters per token of a word (about 4 for OpenAI's o200k and Gemini, 3.5 for Claude).
    public var charactersPerToken: Double
    /// Tokens each message costs beyond its text (role markers and separators).
    public var tokensPerMessage: Int

    /// Creates an estimator.
    public init(charactersPerToken: Double = 4, tokensPerMessage: Int = 4) {
        self.charactersPerToken = max(1, charactersPerToken)
        self.tokensPerMessage = tokensPerMessage
    }

    /// The estimator for a model family, by its id.
    public static func forModel(_ model: String) -> TokenEstimator {
        let id = model.lowercased()
        if id.contains("claude") { return TokenEstimator(charactersPerToken: 3.5, tokensPerMessage: 5) }
        if id.contains("gemini") || id.contains("gemma") { return TokenEstimator(charactersPerToken: 4, tokensPerMessage: 4) }
        if id.contains("llama") || id.contains("mistral") || id.contains("qwen") { return TokenEstimator(charactersPerToken: 3.8, tokensPerMessage: 4) }
        return TokenEstimator()
    }

    /// Tokens in a text.
    public func count(_ text: String) -> Int {
        var tokens = 0
        var run = 0
        func endRun() {
            if run > 0 { tokens += max(1, Int((Double(run) / charactersPerToken).rounded())) }
            run = 0
        }
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if (0x3040...0x30FF).contains(value) || (0x3400...0x9FFF).contains(value) || (0xAC00...0xD7AF).contains(value) {
                endRun(); tokens += 1
            } else if scalar.properties.isAlphabetic || (0x30...0x39).contains(value) {
                run += 1
            } else if scalar.properties.isWhitespace {
                endRun()
            } else {
                endRun(); tokens += 1
            }
        }
        endRun()
        return tokens
    }

    /// Tokens of one message: its text, reasoning, tool calls and a per-message overhead (images count 85, as OpenAI's low detail).
    public func count(_ message: ChatMessage) -> Int {
        var tokens = tokensPerMessage
        for part in message.content {
            switch part {
            case .text(let text): tokens += count(text)
            case .reasoning(let text, _, _): tokens += count(text)
            case .image: tokens += 85
            case .file, .audio: tokens += 258
            }
        }
        for call in message.toolCalls { tokens += count(call.name) + count(call.arguments) + 3 }
        return tokens
    }

    /// Tokens of a conversation, plus the 3 that prime the reply.
    public func count(messages: [ChatMessage]) -> Int {
        messages.reduce(3) { $0 + count($1) }
    }

    /// Tokens of a request: messages and tool definitions.
    public func count(_ request: ChatRequest) -> Int {
        var tokens = count(messages: request.messages)
        for tool in request.tools { tokens += count(tool.name) + count(tool.description ?? "") + count(tool.parameters.description) }
        return tokens
    }
}
