import Foundation
import NimbusCore
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

/// The local development inbox: one `.eml` file per message in a directory (open them with any mail
/// program). Files are written whole, then renamed, so a reader never sees half a message.
public struct FileEmailDriver: EmailDriver {
    public let provider = "file"
    /// The directory.
    public let directory: URL

    /// Creates the outbox (and its directory).
    public init(directory: URL) throws {
        self.directory = directory
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw NimbusError(.permissionDenied, "cannot create the email outbox \(directory.path): \(error.localizedDescription)")
        }
    }

    public func send(_ email: OutgoingEmail) async throws -> EmailReceipt {
        var bytes = Array("X-Nimbus-Envelope-From: \(email.envelopeFrom.smtpAddress)\r\n".utf8)
        bytes += "X-Nimbus-Envelope-To: \(email.recipients.map(\.smtpAddress).joined(separator: ", "))\r\n".utf8
        bytes += email.document.bytes
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let name = "\(stamp)-\(IDGenerator.shared.ulid().description.lowercased()).eml"
        let temporary = directory.appendingPathComponent(".\(name).tmp")
        do {
            try Data(bytes).write(to: temporary)
            try FileManager.default.moveItem(at: temporary, to: directory.appendingPathComponent(name))
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw NimbusError(.unavailable, "cannot write \(name) into \(directory.path): \(error.localizedDescription)", retryable: false)
        }
        return EmailReceipt(messageID: email.document.messageID, providerMessageID: name, provider: provider, accepted: email.recipients)
    }

    /// The `.eml` files, oldest first.
    public func messages() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "eml" && !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }
}
