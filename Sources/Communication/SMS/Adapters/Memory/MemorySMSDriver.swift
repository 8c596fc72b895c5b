import NimbusCore
import NimbusSMS
import Synchronization

/// An SMS outbox in memory, for tests and local runs.
public final class MemorySMSDriver: SMSDriver {
    public let provider = "memory"
    private let outbox = Mutex<[SMSMessage]>([])

    public init() {}

    /// What was sent, oldest first.
    public var sent: [SMSMessage] { outbox.withLock { $0 } }

    public func send(_ message: SMSMessage) async throws -> SMSReceipt {
        let id = "MEM" + IDGenerator.shared.ulid().description
        outbox.withLock { $0.append(message) }
        return SMSReceipt(id: id, provider: provider, status: .delivered, segments: message.encoding.segments)
    }
}

extension URLOpenerRegistry where Resource == any SMSDriver {
    /// Adds `mem://`: an outbox in memory, volatile.
    public func withMemory() -> Self { withInProcess { MemorySMSDriver() } }
}
