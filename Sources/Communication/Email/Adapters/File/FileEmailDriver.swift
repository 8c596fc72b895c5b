import Foundation
import NimbusCore
import NimbusEmail

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

extension URLOpenerRegistry where Resource == any EmailDriver {
    /// Adds `file:///dir` (or `file://./dir`): one `.eml` file per message, persistent.
    public func withFile() -> Self {
        var copy = self
        copy.register("file") { url in
            try url.options.validate(known: [], for: "file://")
            let path = try url.localPath(example: "file:///var/mail/outbox or file://./outbox")
            return try FileEmailDriver(directory: URL(fileURLWithPath: path))
        }
        return copy
    }
}
