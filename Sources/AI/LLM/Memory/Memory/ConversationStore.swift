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
public protocol ConversationStore: Sendable {
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

/// Conversations in process memory, with per-conversation TTL on an injectable clock: the store of
/// tests and of single-instance services.
public actor MemoryConversationStore<C: Clock>: ConversationStore where C.Duration == Duration {
    private struct Entry {
        var messages: [ChatMessage]
        var ttl: Duration?
        var expires: C.Instant?
    }

    private var entries: [String: Entry] = [:]
    private let clock: C
    private let defaultTTL: Duration?

    /// Creates a store; conversations live `defaultTTL` after their last append unless set otherwise.
    public init(clock: C, defaultTTL: Duration? = nil) {
        self.clock = clock
        self.defaultTTL = defaultTTL
    }

    private func live(_ conversation: String) -> Entry? {
        guard let entry = entries[conversation] else { return nil }
        if let expires = entry.expires, clock.now >= expires {
            entries[conversation] = nil
            return nil
        }
        return entry
    }

    public func append(_ messages: [ChatMessage], to conversation: String) {
        var entry = live(conversation) ?? Entry(messages: [], ttl: defaultTTL, expires: nil)
        entry.messages += messages
        entry.expires = entry.ttl.map { clock.now.advanced(by: $0) }
        entries[conversation] = entry
    }

    public func messages(of conversation: String) -> [ChatMessage] { live(conversation)?.messages ?? [] }

    @discardableResult public func delete(_ conversation: String) -> Bool { entries.removeValue(forKey: conversation) != nil }

    public func setTimeToLive(_ ttl: Duration?, for conversation: String) {
        guard var entry = live(conversation) else { return }
        entry.ttl = ttl
        entry.expires = ttl.map { clock.now.advanced(by: $0) }
        entries[conversation] = entry
    }

    /// Conversations held (expired ones included until touched).
    public var count: Int { entries.count }
}

extension MemoryConversationStore where C == ContinuousClock {
    /// A store on the system's monotonic clock.
    public init(defaultTTL: Duration? = nil) { self.init(clock: ContinuousClock(), defaultTTL: defaultTTL) }
}
