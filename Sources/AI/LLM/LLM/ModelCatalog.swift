import Foundation
import NimbusCore

/// What a model can do and what it costs.
public struct ModelInfo: Sendable, Hashable, Codable {
    /// What a model accepts and produces.
    public struct Capabilities: OptionSet, Sendable, Hashable, Codable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// Image input.
        public static let vision = Capabilities(rawValue: 1 << 0)
        /// Tool calling.
        public static let tools = Capabilities(rawValue: 1 << 1)
        /// Output constrained by a JSON Schema.
        public static let jsonSchema = Capabilities(rawValue: 1 << 2)
        /// Reasoning effort or thinking budget.
        public static let reasoning = Capabilities(rawValue: 1 << 3)
        /// Document (PDF) input.
        public static let files = Capabilities(rawValue: 1 << 4)
        /// Audio input.
        public static let audio = Capabilities(rawValue: 1 << 5)
        /// Prompt caching.
        public static let promptCaching = Capabilities(rawValue: 1 << 6)
        /// An embedding model (no chat).
        public static let embeddings = Capabilities(rawValue: 1 << 7)
    }

    /// US dollars per million tokens, exact.
    public struct Pricing: Sendable, Hashable, Codable {
        /// Uncached prompt tokens.
        public var input: Decimal
        /// Generated tokens.
        public var output: Decimal
        /// Prompt tokens read from the cache (`nil`: billed as input).
        public var cachedInput: Decimal?
        /// Prompt tokens written to the cache (`nil`: billed as input).
        public var cacheWrite: Decimal?
        /// Reasoning tokens (`nil`: billed as output, as every current provider does).
        public var reasoning: Decimal?

        /// Creates prices.
        public init(input: Decimal, output: Decimal, cachedInput: Decimal? = nil, cacheWrite: Decimal? = nil, reasoning: Decimal? = nil) {
            self.input = input
            self.output = output
            self.cachedInput = cachedInput
            self.cacheWrite = cacheWrite
            self.reasoning = reasoning
        }

        /// The cost of one call in US dollars: cached and cache-write tokens at their own prices and
        /// never also at the input price; reasoning tokens at the reasoning price if there is one.
        public func cost(of usage: Usage) -> Decimal {
            let million = Decimal(1_000_000)
            let cached = Decimal(usage.cachedInputTokens), written = Decimal(usage.cacheWriteInputTokens)
            let plainInput = Decimal(max(0, usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteInputTokens))
            var total = plainInput * input + cached * (cachedInput ?? input) + written * (cacheWrite ?? input)
            if let reasoning {
                total += Decimal(max(0, usage.outputTokens - usage.reasoningTokens)) * output + Decimal(usage.reasoningTokens) * reasoning
            } else {
                total += Decimal(usage.outputTokens) * output
            }
            return total / million
        }
    }

    /// The model id (`gpt-4o-mini`).
    public var id: String
    /// The provider (`openai`).
    public var provider: String
    /// The context window in tokens.
    public var contextWindow: Int
    /// The most tokens one reply may have.
    public var maxOutputTokens: Int?
    /// What it can do.
    public var capabilities: Capabilities
    /// What it costs (`nil`: unknown or free).
    public var pricing: Pricing?

    /// Creates an entry.
    public init(id: String, provider: String, contextWindow: Int, maxOutputTokens: Int? = nil, capabilities: Capabilities = [], pricing: Pricing? = nil) {
        self.id = id
        self.provider = provider
        self.contextWindow = contextWindow
        self.maxOutputTokens = maxOutputTokens
        self.capabilities = capabilities
        self.pricing = pricing
    }
}

/// Models' capabilities and prices, looked up by id — exact, then by the longest known prefix so that
/// dated versions (`gpt-4o-2024-08-06`, `claude-sonnet-4-20250514`) find their family.
///
/// ```swift
/// let cost = ModelCatalog.standard.cost(of: response.usage, model: response.model)   // Decimal dollars
/// ```
public struct ModelCatalog: Sendable {
    private var entries: [String: ModelInfo]

    /// A catalog of the given models.
    public init(_ models: [ModelInfo] = []) {
        entries = Dictionary(models.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// Adds or replaces a model (for private deployments and negotiated prices).
    public mutating func register(_ model: ModelInfo) { entries[model.id] = model }

    /// The catalog with `model` added or replaced.
    public func registering(_ model: ModelInfo) -> ModelCatalog {
        var copy = self
        copy.register(model)
        return copy
    }

    /// All models, sorted by id.
    public var models: [ModelInfo] { entries.values.sorted { $0.id < $1.id } }

    /// The entry for `id`: exact, else the longest id that `id` starts with followed by `-` or `@`
    /// (a provider prefix such as `openai/` is ignored).
    public func model(_ id: String) -> ModelInfo? {
        let bare = id.split(separator: "/").last.map(String.init) ?? id
        if let exact = entries[bare] { return exact }
        var best: ModelInfo?
        for (key, info) in entries where bare.hasPrefix(key) {
            let next = bare[bare.index(bare.startIndex, offsetBy: key.count)]
            guard next == "-" || next == "@" else { continue }
            if key.count > (best?.id.count ?? 0) { best = info }
        }
        return best
    }

    /// The cost of a call in US dollars, or `nil` when the model's price is unknown.
    public func cost(of usage: Usage, model: String) -> Decimal? {
        self.model(model)?.pricing?.cost(of: usage)
    }

    /// List prices as published by the providers (US dollars per million tokens; check them against
    /// your contract and override with ``register(_:)``).
    public static let standard = ModelCatalog(builtInModels)

    private static func price(_ input: String, _ output: String, cached: String? = nil, write: String? = nil) -> ModelInfo.Pricing {
        ModelInfo.Pricing(input: Decimal(string: input) ?? 0, output: Decimal(string: output) ?? 0,
                          cachedInput: cached.flatMap { Decimal(string: $0) }, cacheWrite: write.flatMap { Decimal(string: $0) })
    }

    private static let chat: ModelInfo.Capabilities = [.tools, .jsonSchema]
    private static let builtInModels: [ModelInfo] = [
        // OpenAI (platform.openai.com/docs/pricing)
        ModelInfo(id: "gpt-4o", provider: "openai", contextWindow: 128_000, maxOutputTokens: 16_384, capabilities: chat.union([.vision, .promptCaching]), pricing: price("2.50", "10", cached: "1.25")),
        ModelInfo(id: "gpt-4o-mini", provider: "openai", contextWindow: 128_000, maxOutputTokens: 16_384, capabilities: chat.union([.vision, .promptCaching]), pricing: price("0.15", "0.60", cached: "0.075")),
        ModelInfo(id: "gpt-4.1", provider: "openai", contextWindow: 1_047_576, maxOutputTokens: 32_768, capabilities: chat.union([.vision, .files, .promptCaching]), pricing: price("2", "8", cached: "0.50")),
        ModelInfo(id: "gpt-4.1-mini", provider: "openai", contextWindow: 1_047_576, maxOutputTokens: 32_768, capabilities: chat.union([.vision, .files, .promptCaching]), pricing: price("0.40", "1.60", cached: "0.10")),
        ModelInfo(id: "gpt-4.1-nano", provider: "openai", contextWindow: 1_047_576, maxOutputTokens: 32_768, capabilities: chat.union([.vision, .promptCaching]), pricing: price("0.10", "0.40", cached: "0.025")),
        ModelInfo(id: "o3", provider: "openai", contextWindow: 200_000, maxOutputTokens: 100_000, capabilities: chat.union([.vision, .reasoning, .promptCaching]), pricing: price("2", "8", cached: "0.50")),
        ModelInfo(id: "o3-mini", provider: "openai", contextWindow: 200_000, maxOutputTokens: 100_000, capabilities: chat.union([.reasoning, .promptCaching]), pricing: price("1.10", "4.40", cached: "0.55")),
        ModelInfo(id: "o4-mini", provider: "openai", contextWindow: 200_000, maxOutputTokens: 100_000, capabilities: chat.union([.vision, .reasoning, .promptCaching]), pricing: price("1.10", "4.40", cached: "0.275")),
        ModelInfo(id: "text-embedding-3-small", provider: "openai", contextWindow: 8191, capabilities: [.embeddings], pricing: price("0.02", "0")),
        ModelInfo(id: "text-embedding-3-large", provider: "openai", contextWindow: 8191, capabilities: [.embeddings], pricing: price("0.13", "0")),
        // Anthropic (docs.anthropic.com/en/docs/about-claude/pricing): cache writes 1.25x input, reads 0.1x.
        ModelInfo(id: "claude-opus-4", provider: "anthropic", contextWindow: 200_000, maxOutputTokens: 32_000, capabilities: [.tools, .vision, .files, .reasoning, .promptCaching], pricing: price("15", "75", cached: "1.50", write: "18.75")),
        ModelInfo(id: "claude-sonnet-4", provider: "anthropic", contextWindow: 200_000, maxOutputTokens: 64_000, capabilities: [.tools, .vision, .files, .reasoning, .promptCaching], pricing: price("3", "15", cached: "0.30", write: "3.75")),
        ModelInfo(id: "claude-3-7-sonnet", provider: "anthropic", contextWindow: 200_000, maxOutputTokens: 64_000, capabilities: [.tools, .vision, .files, .reasoning, .promptCaching], pricing: price("3", "15", cached: "0.30", write: "3.75")),
        ModelInfo(id: "claude-3-5-sonnet", provider: "anthropic", contextWindow: 200_000, maxOutputTokens: 8192, capabilities: [.tools, .vision, .files, .promptCaching], pricing: price("3", "15", cached: "0.30", write: "3.75")),
        ModelInfo(id: "claude-3-5-haiku", provider: "anthropic", contextWindow: 200_000, maxOutputTokens: 8192, capabilities: [.tools, .vision, .promptCaching], pricing: price("0.80", "4", cached: "0.08", write: "1")),
        // Google (ai.google.dev/gemini-api/docs/pricing), prompts up to 200k tokens.
        ModelInfo(id: "gemini-2.5-pro", provider: "gemini", contextWindow: 1_048_576, maxOutputTokens: 65_536, capabilities: chat.union([.vision, .files, .audio, .reasoning, .promptCaching]), pricing: price("1.25", "10", cached: "0.31")),
        ModelInfo(id: "gemini-2.5-flash", provider: "gemini", contextWindow: 1_048_576, maxOutputTokens: 65_536, capabilities: chat.union([.vision, .files, .audio, .reasoning, .promptCaching]), pricing: price("0.30", "2.50", cached: "0.075")),
        ModelInfo(id: "gemini-2.0-flash", provider: "gemini", contextWindow: 1_048_576, maxOutputTokens: 8192, capabilities: chat.union([.vision, .files, .audio, .promptCaching]), pricing: price("0.10", "0.40", cached: "0.025")),
        ModelInfo(id: "text-embedding-004", provider: "gemini", contextWindow: 2048, capabilities: [.embeddings], pricing: price("0", "0")),
        ModelInfo(id: "gemini-embedding-001", provider: "gemini", contextWindow: 2048, capabilities: [.embeddings], pricing: price("0.15", "0")),
        // The embedded memory model: free.
        ModelInfo(id: "memory", provider: "memory", contextWindow: 128_000, maxOutputTokens: 16_384, capabilities: chat.union([.vision, .reasoning]), pricing: price("0", "0")),
    ]
}
