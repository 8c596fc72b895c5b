import NimbusCore
import NimbusEmail
import Synchronization

/// An outbox in memory: every email is kept, for tests and for local runs with no server.
///
/// ```swift
/// let outbox = MemoryEmailDriver()
/// try await EmailClient(driver: outbox).send(message)
/// outbox.sent.last?.document.header("Subject")
/// ```
public final class MemoryEmailDriver: EmailDriver {
    public let provider = "memory"
    private let state = Mutex<[OutgoingEmail]>([])
    private let refuse: @Sendable (EmailAddress) -> EmailReceipt.Rejection?

    /// Creates an outbox; `refuse` may turn recipients away (to exercise partial delivery).
    public init(refuse: @escaping @Sendable (EmailAddress) -> EmailReceipt.Rejection? = { _ in nil }) {
        self.refuse = refuse
    }

    /// What was sent, oldest first.
    public var sent: [OutgoingEmail] { state.withLock { $0 } }

    /// Empties the outbox.
    public func removeAll() { state.withLock { $0.removeAll() } }

    public func send(_ email: OutgoingEmail) async throws -> EmailReceipt {
        var accepted: [EmailAddress] = [], rejected: [EmailReceipt.Rejection] = []
        for recipient in email.recipients {
            if let rejection = refuse(recipient) { rejected.append(rejection) } else { accepted.append(recipient) }
        }
        if !accepted.isEmpty {
            var kept = email
            kept.recipients = accepted
            state.withLock { $0.append(kept) }
        }
        return EmailReceipt(messageID: email.document.messageID, providerMessageID: nil, provider: provider, accepted: accepted, rejected: rejected)
    }
}

extension URLOpenerRegistry where Resource == any EmailDriver {
    /// Adds `mem://`: an outbox in memory, volatile.
    public func withMemory() -> Self { withInProcess { MemoryEmailDriver() } }
}
