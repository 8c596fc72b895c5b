import Foundation
import NimbusCore
import NimbusLLM

/// A conversation's history as units that are kept or dropped whole: a system message, a user
/// message, a plain assistant message, or an assistant message that calls tools **together with**
/// the tool results answering it. Trimming by units never leaves a tool result without its call,
/// nor a call without its results — the 400 that history trimming causes with every provider.
public struct ConversationUnits: Sendable, Hashable {
    /// The units, oldest first.
    public var units: [[ChatMessage]]

    /// Splits messages into units. Tool results that answer no call right before them are dropped
    /// (they would be refused anyway).
    public init(_ messages: [ChatMessage]) {
        var units: [[ChatMessage]] = []
        var index = 0
        while index < messages.count {
            let message = messages[index]
            if message.role == .assistant, !message.toolCalls.isEmpty {
                var unit = [message]
                var open = Set(message.toolCalls.map(\.id))
                index += 1
                while index < messages.count, messages[index].role == .tool, let id = messages[index].toolCallID, open.remove(id) != nil {
                    unit.append(messages[index])
                    index += 1
                }
                units.append(unit)
                continue
            }
            if message.role != .tool { units.append([message]) }
            index += 1
        }
        self.units = units
    }

    /// The messages, in order.
    public var messages: [ChatMessage] { units.flatMap { $0 } }
}

/// How much of a conversation goes to the model.
public protocol MemoryPolicy: Sendable {
    /// The messages to send, chosen from the whole history.
    func select(from history: [ChatMessage]) async throws -> [ChatMessage]
}

/// Everything, as stored (orphan tool results removed).
public struct FullBuffer: MemoryPolicy {
    /// Creates the policy.
    public init() {}
    public func select(from history: [ChatMessage]) async throws -> [ChatMessage] { ConversationUnits(history).messages }
}

/// System messages, plus the most recent messages up to `maxMessages` — counted in whole units, so a
/// tool call and its results stay together (the window may hold slightly fewer messages).
public struct SlidingWindow: MemoryPolicy {
    /// The most non-system messages kept.
    public var maxMessages: Int

    /// Creates the policy.
    public init(maxMessages: Int) { self.maxMessages = max(1, maxMessages) }

    public func select(from history: [ChatMessage]) async throws -> [ChatMessage] {
        let units = ConversationUnits(history).units
        let system = units.filter { $0.first?.role == .system }
        var kept: [[ChatMessage]] = []
        var count = 0
        for unit in units.reversed() where unit.first?.role != .system {
            guard count + unit.count <= maxMessages else { break }
            kept.insert(unit, at: 0)
            count += unit.count
        }
        return (system + kept).flatMap { $0 }
    }
}

/// System messages, plus the most recent whole units that fit `maxTokens` by a model-aware estimate
/// (reserve room for the reply yourself).
public struct TokenLimited: MemoryPolicy {
    /// The budget for the messages sent.
    public var maxTokens: Int
    /// How tokens are counted.
    public var estimator: TokenEstimator

    /// Creates the policy for a model (`TokenEstimator.forModel`).
    public init(maxTokens: Int, model: String) {
        self.init(maxTokens: maxTokens, estimator: .forModel(model))
    }

    /// Creates the policy.
    public init(maxTokens: Int, estimator: TokenEstimator) {
        self.maxTokens = max(1, maxTokens)
        self.estimator = estimator
    }

    public func select(from history: [ChatMessage]) async throws -> [ChatMessage] {
        let units = ConversationUnits(history).units
        let system = units.filter { $0.first?.role == .system }
        var budget = maxTokens - 3 - system.flatMap { $0 }.reduce(0) { $0 + estimator.count($1) }
        guard budget > 0 else {
            throw NimbusError(.invalidArgument, "the system messages alone need more than \(maxTokens) tokens; raise the budget or shorten them")
        }
        var kept: [[ChatMessage]] = []
        for unit in units.reversed() where unit.first?.role != .system {
            let cost = unit.reduce(0) { $0 + estimator.count($1) }
            guard cost <= budget else { break }
            kept.insert(unit, at: 0)
            budget -= cost
        }
        return (system + kept).flatMap { $0 }
    }
}

/// A conversation store and a policy: what services call to keep history and to build the
/// messages of the next request.
///
/// ```swift
/// let memory = ConversationMemory(store: MemoryConversationStore(), policy: TokenLimited(maxTokens: 8000, model: "gpt-4o"))
/// try await memory.append([.user(question)], to: sessionID)
/// let reply = try await model.chat(ChatRequest(messages: try await memory.context(for: sessionID)))
/// try await memory.append([reply.message], to: sessionID)
/// ```
public struct ConversationMemory: Sendable {
    /// Where histories are kept.
    public let store: any ConversationStore
    /// What is sent.
    public let policy: any MemoryPolicy

    /// Creates a memory.
    public init(store: any ConversationStore, policy: any MemoryPolicy) {
        self.store = store
        self.policy = policy
    }

    /// Adds messages to a conversation.
    public func append(_ messages: [ChatMessage], to conversation: String) async throws {
        try await store.append(messages, to: conversation)
    }

    /// The messages to send next for a conversation.
    public func context(for conversation: String) async throws -> [ChatMessage] {
        try await policy.select(from: store.messages(of: conversation))
    }
}
