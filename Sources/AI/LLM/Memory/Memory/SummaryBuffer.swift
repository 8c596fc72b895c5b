import Crypto
import Foundation
import NimbusCore
import NimbusLLM
import Synchronization

/// System messages, a model-written summary of the older turns, and the most recent whole units
/// verbatim within `recentTokens` — LangChain's summary-buffer memory, without its two classic bugs:
/// the cut between summary and verbatim part never falls inside a tool round, and the summary is
/// written incrementally (the previous summary plus the turns that newly aged out), cached by a
/// digest of the history it covers, so each turn costs at most one summarization call.
///
/// ```swift
/// let policy = SummaryBuffer(model: summarizer, recentTokens: 2_000, estimator: .forModel("gpt-4o"))
/// let memory = ConversationMemory(store: store, policy: policy)
/// ```
public struct SummaryBuffer: MemoryPolicy {
    /// The model that writes summaries (often a small, cheap one).
    public let model: ChatModel
    /// The model id sent in summarization requests (`nil`: the model's default).
    public var modelID: String?
    /// The budget for the verbatim recent part; the newest unit is always kept.
    public var recentTokens: Int
    /// How tokens are counted.
    public var estimator: TokenEstimator
    /// The longest summary asked for, in tokens.
    public var summaryTokens: Int
    /// The summarizer's instructions.
    public var instructions: String
    private let cache: SummaryCache

    /// The default instructions.
    public static let defaultInstructions = """
        You maintain a running summary of a conversation between a user and an assistant. Given the current summary \
        and the lines that follow it, write the updated summary: keep names, numbers, decisions, open questions, tool \
        results that later turns rely on, and the user's stated preferences. Write plain prose, no preamble.
        """

    /// Creates the policy.
    public init(model: ChatModel, modelID: String? = nil, recentTokens: Int, estimator: TokenEstimator = TokenEstimator(),
                summaryTokens: Int = 512, instructions: String = SummaryBuffer.defaultInstructions, cacheSize: Int = 1024) {
        self.model = model
        self.modelID = modelID
        self.recentTokens = max(1, recentTokens)
        self.estimator = estimator
        self.summaryTokens = max(16, summaryTokens)
        self.instructions = instructions
        self.cache = SummaryCache(capacity: cacheSize)
    }

    /// The heading of the summary message, which is a system message placed after the history's own.
    public static let summaryHeading = "Summary of the earlier conversation:"

    public func select(from history: [ChatMessage]) async throws -> [ChatMessage] {
        let units = ConversationUnits(history).units
        let system = units.filter { $0.first?.role == .system }.flatMap { $0 }
        let turns = units.filter { $0.first?.role != .system }
        var cut = turns.count, budget = recentTokens
        while cut > 0 {
            let cost = turns[cut - 1].reduce(0) { $0 + estimator.count($1) }
            guard cost <= budget || cut == turns.count else { break }
            budget -= cost
            cut -= 1
        }
        let recent = turns[cut...].flatMap { $0 }
        guard cut > 0 else { return system + recent }
        let summary = try await summarize(Array(turns[..<cut]))
        return system + [.system("\(Self.summaryHeading)\n\(summary)")] + recent
    }

    /// The summary of `older`, extending the longest prefix already summarized.
    private func summarize(_ older: [[ChatMessage]]) async throws -> String {
        var digests: [Digest] = []
        var running = Digest.empty
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for unit in older {
            running = running.extended(with: try encoder.encode(unit))
            digests.append(running)
        }
        var start = 0, previous = ""
        for index in stride(from: older.count - 1, through: 0, by: -1) {
            if let cached = cache.summary(for: digests[index]) {
                if index == older.count - 1 { return cached }
                start = index + 1
                previous = cached
                break
            }
        }
        let transcript = older[start...].flatMap { $0 }.map(Self.line).joined(separator: "\n")
        let prompt = """
            Current summary:
            \(previous.isEmpty ? "(none yet)" : previous)

            New lines of conversation:
            \(transcript)

            Updated summary:
            """
        let reply = try await model.chat(ChatRequest(model: modelID, messages: [.system(instructions), .user(prompt)], maxTokens: summaryTokens))
        let summary = reply.message.text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !summary.isEmpty else {
            throw NimbusError(.dataLoss, "the summarizer returned no text (finish: \(reply.finishReason)); the older turns were not summarized")
        }
        cache.store(summary, for: digests[older.count - 1])
        return summary
    }

    /// One message as a transcript line; tool calls and results are written out so the summary keeps them.
    static func line(_ message: ChatMessage) -> String {
        switch message.role {
        case .tool: return "tool result (\(message.toolCallID ?? "?"))\(message.isError ? " [error]" : ""): \(message.text)"
        case .assistant where !message.toolCalls.isEmpty:
            let calls = message.toolCalls.map { "\($0.name)(\($0.arguments)) [\($0.id)]" }.joined(separator: ", ")
            return message.text.isEmpty ? "assistant called: \(calls)" : "assistant: \(message.text)\nassistant called: \(calls)"
        default: return "\(message.role.rawValue): \(message.text)"
        }
    }
}

/// A SHA-256 chain over a history's units: equal digests mean equal prefixes.
struct Digest: Hashable, Sendable {
    let bytes: [UInt8]
    static let empty = Digest(bytes: [])
    func extended(with data: Data) -> Digest {
        var hasher = SHA256()
        hasher.update(data: bytes)
        hasher.update(data: data)
        return Digest(bytes: Array(hasher.finalize()))
    }
}

/// Summaries by the digest of what they cover, oldest evicted first.
final class SummaryCache: Sendable {
    private struct State {
        var summaries: [Digest: String] = [:]
        var order: [Digest] = []
    }
    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    func summary(for digest: Digest) -> String? { state.withLock { $0.summaries[digest] } }

    func store(_ summary: String, for digest: Digest) {
        state.withLock { state in
            if state.summaries.updateValue(summary, forKey: digest) == nil { state.order.append(digest) }
            while state.order.count > capacity { state.summaries[state.order.removeFirst()] = nil }
        }
    }
}
