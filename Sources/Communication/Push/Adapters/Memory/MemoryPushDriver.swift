import Foundation
import NimbusCore
import NimbusPush
import Synchronization

/// Pushes kept in memory; tokens starting with `invalid` are reported dead (to exercise cleanup).
public final class MemoryPushDriver: PushDriver {
    public let provider = "memory"
    private let sentPushes = Mutex<[(token: String, notification: PushNotification)]>([])
    public init() {}
    public var sent: [(token: String, notification: PushNotification)] { sentPushes.withLock { $0 } }
    public func send(_ notification: PushNotification, to token: String) async throws -> PushResult {
        if token.hasPrefix("invalid") { return PushResult(token: token, outcome: .invalidToken(reason: "Unregistered", since: nil)) }
        sentPushes.withLock { $0.append((token, notification)) }
        return PushResult(token: token, outcome: .delivered(id: UUID().uuidString))
    }
}

extension URLOpenerRegistry where Resource == any PushDriver {
    /// Adds `mem://`: pushes kept in memory, volatile.
    public func withMemory() -> Self { withInProcess { MemoryPushDriver() } }
}
