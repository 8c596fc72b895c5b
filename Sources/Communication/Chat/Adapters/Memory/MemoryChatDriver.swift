import NimbusChat
import NimbusCore
import Synchronization

/// Posts kept in memory, for tests and local runs.
public final class MemoryChatDriver: ChatDriver {
    public let provider = "memory"
    private let posts = Mutex<[ChatPost]>([])
    public init() {}
    public var posted: [ChatPost] { posts.withLock { $0 } }
    public func post(_ message: ChatPost) async throws -> ChatReceipt {
        let count = posts.withLock { $0.append(message); return $0.count }
        return ChatReceipt(messageID: String(count), channel: message.channel, provider: provider)
    }
}

extension URLOpenerRegistry where Resource == any ChatDriver {
    /// Adds `mem://`: posts kept in memory, volatile.
    public func withMemory() -> Self { withInProcess { MemoryChatDriver() } }
}
