import Foundation
import NimbusCore
import NimbusLLM

/// A conversation's stored form, for export and import.
public struct Conversation: Sendable, Hashable, Codable {
    /// Its id.
    public var id: String
    /// Its messages, oldest first.
    public var messages: [ChatMessage]

    /// Creates a conversation.
    public init(id: String, messages: [ChatMessage]) {
        self.id = id
        self.messages = messages
    }
}

/// Where conversation histories live, keyed by conversation id. Appends to one conversation are
/// safe from concurrent callers: each append lands whole and in some order.
public protocol ConversationStore: NimbusDriver {
    /// Adds messages at the end (creating the conversation).
    func append(_ messages: [ChatMessage], to conversation: String) async throws
    /// All messages, oldest first (empty for an unknown or expired conversation).
    func messages(of conversation: String) async throws -> [ChatMessage]
    /// Removes a conversation. - Returns: whether it existed.
    @discardableResult func delete(_ conversation: String) async throws -> Bool
    /// Sets how long a conversation lives after its last append (`nil`: forever).
    func setTimeToLive(_ ttl: Duration?, for conversation: String) async throws
}

extension ConversationStore {
    /// The conversation, for export.
    public func export(_ conversation: String) async throws -> Conversation {
        Conversation(id: conversation, messages: try await messages(of: conversation))
    }

    /// Replaces a conversation with an exported one.
    public func importConversation(_ conversation: Conversation) async throws {
        try await delete(conversation.id)
        try await append(conversation.messages, to: conversation.id)
    }
}

extension ConversationMemory {
    /// The conversation-store openers, empty: adapter modules add their schemes — `.withMemory()`
    /// (`mem://`), `.withSQLite()` (`sqlite://PATH`), `.withRedis()`, `.withPostgres()` — each taking
    /// `ttl=24h` (how long a conversation lives after its last append).
    public static var openers: URLOpenerRegistry<any ConversationStore> { URLOpenerRegistry(domain: "conversation store") }

    /// Opens a store by URL and puts `policy` over it.
    ///
    /// ```swift
    /// let memory = try await ConversationMemory.open("sqlite://./.nimbus/conversations.sqlite?ttl=24h",
    ///                                                openers: ConversationMemory.openers.withSQLite(), policy: SlidingWindow(maxMessages: 20))
    /// ```
    public static func open(_ url: String, openers: URLOpenerRegistry<any ConversationStore>, policy: any MemoryPolicy) async throws -> ConversationMemory {
        ConversationMemory(store: try await openers.open(url), policy: policy)
    }
}
