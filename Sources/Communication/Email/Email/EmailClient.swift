import Foundation
import Logging
import NimbusCore

/// What a driver is handed: the message, its MIME form (DKIM-signed when configured) and the envelope.
public struct OutgoingEmail: Sendable {
    /// The message as the caller wrote it (API providers such as SendGrid send its fields).
    public var message: EmailMessage
    /// The MIME text (SMTP, SES raw and the file outbox send it byte for byte).
    public var document: MIMEDocument
    /// The envelope sender (`MAIL FROM`, the bounce address).
    public var envelopeFrom: EmailAddress
    /// The envelope recipients: to, cc and bcc.
    public var recipients: [EmailAddress]

    /// Creates an outgoing email.
    public init(message: EmailMessage, document: MIMEDocument, envelopeFrom: EmailAddress, recipients: [EmailAddress]) {
        self.message = message
        self.document = document
        self.envelopeFrom = envelopeFrom
        self.recipients = recipients
    }
}

/// What a send achieved: the message's id, and recipient by recipient, accepted or refused.
public struct EmailReceipt: Sendable, Hashable, Codable {
    /// A recipient the provider refused.
    public struct Rejection: Sendable, Hashable, Codable {
        /// The recipient.
        public var recipient: EmailAddress
        /// The provider's code (`550`, `5.1.1`, an API error code).
        public var code: String
        /// The provider's words.
        public var message: String
        /// Whether trying again later may work (SMTP 4xx).
        public var temporary: Bool

        /// Creates a rejection.
        public init(recipient: EmailAddress, code: String, message: String, temporary: Bool) {
            self.recipient = recipient
            self.code = code
            self.message = message
            self.temporary = temporary
        }
    }

    /// The `Message-ID` header (with angle brackets).
    public var messageID: String
    /// The provider's own id (SMTP queue id, SES MessageId, SendGrid X-Message-Id).
    public var providerMessageID: String?
    /// `smtp`, `ses`, `sendgrid`, `memory`, `file`.
    public var provider: String
    /// Recipients taken.
    public var accepted: [EmailAddress]
    /// Recipients refused.
    public var rejected: [Rejection]

    /// Creates a receipt.
    public init(messageID: String, providerMessageID: String? = nil, provider: String, accepted: [EmailAddress], rejected: [Rejection] = []) {
        self.messageID = messageID
        self.providerMessageID = providerMessageID
        self.provider = provider
        self.accepted = accepted
        self.rejected = rejected
    }
}

/// What an email provider does. Errors are `NimbusError`s; a retryable one must mean the message was
/// not taken (so that sending again cannot deliver it twice).
public protocol EmailDriver: NimbusDriver {
    /// Sends one email.
    func send(_ email: OutgoingEmail) async throws -> EmailReceipt
}

/// Sends email through any driver: validates, writes MIME, signs with DKIM, retries what may be retried,
/// and reports recipient by recipient.
///
/// ```swift
/// let email = EmailClient(driver: try await EmailClient.openers.withSMTP().open("smtp://user:pass@smtp.example.com:587"),
///                         configuration: .init(dkim: signer))
/// let receipt = try await email.send(message)
/// receipt.rejected          // recipients the server refused (the others got it)
/// ```
public struct EmailClient: PortableClient {
    /// Settings.
    public struct Configuration: Sendable {
        /// Signs every message that goes out as MIME (SMTP, SES raw, files).
        public var dkim: DKIMSigner?
        /// The envelope sender (bounce address); the From address when `nil`.
        public var envelopeFrom: EmailAddress?
        /// The MIME writer's options.
        public var mime: MIMEWriter.Options
        /// Retries of errors that say the message was not taken (4xx, 429, dropped connections before DATA).
        public var retry: RetryPolicy

        /// Creates a configuration.
        public init(dkim: DKIMSigner? = nil, envelopeFrom: EmailAddress? = nil, mime: MIMEWriter.Options = .init(),
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(10))) {
            self.dkim = dkim
            self.envelopeFrom = envelopeFrom
            self.mime = mime
            self.retry = retry
        }
    }

    private let driver: any EmailDriver
    /// The settings.
    public let configuration: Configuration
    private let logger: Logger
    private let now: @Sendable () -> Date

    /// Creates a client.
    public init(driver: any EmailDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.email"),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.driver = driver
        self.configuration = configuration
        self.logger = logger
        self.now = now
    }

    /// `smtp`, `ses`, `sendgrid`, `memory`, `file`.
    public var provider: String { driver.provider }

    /// The driver as `T`, for provider calls the portable API does not name (SendGrid templates…).
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// Closes the driver's connections (an SMTP pool). Call it before the process exits.
    public func close() async throws { try await driver.close() }

    /// Opens the driver that `url`'s scheme names (`mem://`, `file:///var/mail/outbox`, `smtp://…`).
    public static func open(_ url: String, openers: URLOpenerRegistry<any EmailDriver>, configuration: Configuration = .init()) async throws -> EmailClient {
        EmailClient(driver: try await openers.open(url), configuration: configuration)
    }

    /// Renders a message as the client would send it (MIME, DKIM-signed when configured).
    public func render(_ message: EmailMessage) throws -> OutgoingEmail {
        let date = now()
        var document = try MIMEWriter(options: configuration.mime).write(message, date: date)
        if let dkim = configuration.dkim { document = try dkim.sign(document, at: date) }
        return OutgoingEmail(message: message, document: document, envelopeFrom: configuration.envelopeFrom ?? message.from,
                             recipients: message.recipients)
    }

    /// Sends a message.
    /// - Returns: the receipt; some recipients may be in ``EmailReceipt/rejected``.
    /// - Throws: `invalidArgument` for a bad message; `failedPrecondition` when every recipient was refused;
    ///   the driver's error otherwise (after retries).
    @discardableResult
    public func send(_ message: EmailMessage) async throws -> EmailReceipt {
        let outgoing = try render(message)
        let receipt = try await configuration.retry.run { attempt in
            if attempt > 1 { logger.info("email: retrying", metadata: ["attempt": "\(attempt)", "message-id": "\(outgoing.document.messageID)"]) }
            return try await driver.send(outgoing)
        }
        if receipt.accepted.isEmpty {
            let reasons = receipt.rejected.map { "\($0.recipient.address): \($0.code) \($0.message)" }.joined(separator: "; ")
            throw NimbusError(.failedPrecondition, "\(driver.provider) refused every recipient: \(reasons)",
                              retryable: receipt.rejected.allSatisfy(\.temporary) && !receipt.rejected.isEmpty)
        }
        logger.info("email: sent", metadata: ["provider": "\(driver.provider)", "message-id": "\(receipt.messageID)",
                                              "accepted": "\(receipt.accepted.count)", "rejected": "\(receipt.rejected.count)"])
        return receipt
    }

    /// The email domain's openers, empty: adapter modules add their schemes (`.withMemory()`, `.withFile()`, `.withSMTP()`…).
    public static var openers: URLOpenerRegistry<any EmailDriver> { URLOpenerRegistry<any EmailDriver>.email }
}

extension URLOpenerRegistry where Resource == any EmailDriver {
    /// An empty registry for the email domain.
    public static var email: URLOpenerRegistry<any EmailDriver> { URLOpenerRegistry(domain: "email") }
}
