import Foundation
import NimbusCore
import NimbusLLM
import NimbusLLMMemory

/// Conversations in process memory, with per-conversation TTL on an injectable clock: the store of
/// tests and of single-instance services.
public actor MemoryConversationStore<C: Clock>: ConversationStore where C.Duration == Duration {
    public nonisolated var provider: String { "memory" }

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

extension URLOpenerRegistry where Resource == any ConversationStore {
    /// Adds `mem://?ttl=24h`: conversations in process memory, volatile.
    public func withMemory() -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: ["ttl"], for: "mem://")
            return MemoryConversationStore(defaultTTL: try url.options.duration("ttl"))
        }
        return copy
    }
}
