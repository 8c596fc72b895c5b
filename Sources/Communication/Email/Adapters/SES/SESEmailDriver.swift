import Foundation
import NimbusAWS
import NimbusCore
import NimbusEmail

/// Email through Amazon SES v2 (`SendEmail`), on the shared AWS core (SigV4, credentials chain, endpoints,
/// retries). The message goes as raw MIME — so DKIM signatures, attachments, inline images and every
/// header arrive as written — with tags and metadata as SES message tags for event destinations.
///
/// ```swift
/// let aws = AWSClient(configuration: .init(region: "eu-west-1"))
/// let email = EmailClient(driver: SESEmailDriver(aws: aws, configurationSet: "transactional"))
/// try await email.send(message)
/// ```
public struct SESEmailDriver: EmailDriver {
    public let provider = "ses"
    /// The AWS client (region, credentials, endpoint).
    public let aws: AWSClient
    /// The configuration set (event publishing, IP pools); none when `nil`.
    public var configurationSet: String?

    /// SES's limit on a raw message (40 MB, base64 included).
    public static let maxMessageBytes = 40 * 1024 * 1024

    /// Creates a driver.
    public init(aws: AWSClient, configurationSet: String? = nil) {
        self.aws = aws
        self.configurationSet = configurationSet
    }

    public func send(_ email: OutgoingEmail) async throws -> EmailReceipt {
        let raw = email.document.bytes
        guard (raw.count + 2) / 3 * 4 <= Self.maxMessageBytes else {
            throw NimbusError(.invalidArgument, "the message is \(raw.count) bytes; SES takes at most 40 MB once base64-encoded", retryable: false)
        }
        var body: [String: JSONValue] = [
            "FromEmailAddress": .string(email.message.from.smtpAddress),
            "Destination": ["ToAddresses": .array(email.recipients.map { .string($0.smtpAddress) })],
            "Content": ["Raw": ["Data": .string(Data(raw).base64EncodedString())]],
        ]
        if email.envelopeFrom != email.message.from { body["FeedbackForwardingEmailAddress"] = .string(email.envelopeFrom.smtpAddress) }
        if let configurationSet { body["ConfigurationSetName"] = .string(configurationSet) }
        let tags = try Self.tags(email.message)
        if !tags.isEmpty { body["EmailTags"] = .array(tags.map { ["Name": .string($0.name), "Value": .string($0.value)] }) }
        let response: AWSClient.Response
        do {
            response = try await aws.rest(.ses, method: .POST, path: "/v2/email/outbound-emails", headers: [("Content-Type", "application/json")],
                                          body: Array(try JSONEncoder().encode(JSONValue.object(body))), operation: "SendEmail")
        } catch let error as NimbusError {
            throw Self.remap(error)
        }
        guard let messageID = try response.json()["MessageId"]?.stringValue else {
            throw NimbusError(.dataLoss, "SES answered SendEmail without a MessageId; the message may have been sent (not retried)", retryable: false)
        }
        return EmailReceipt(messageID: email.document.messageID, providerMessageID: messageID, provider: provider, accepted: email.recipients)
    }

    /// SES message tags: each metadata pair, and each tag as `<tag>=true`. Names and values may hold only
    /// ASCII letters, digits, `_`, `-`, `.` and `@` (SES's rule), at most 256 characters; at most 50 tags.
    static func tags(_ message: EmailMessage) throws -> [(name: String, value: String)] {
        let pairs = message.metadata.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } + message.tags.map { ($0, "true") }
        guard pairs.count <= 50 else { throw NimbusError(.invalidArgument, "SES takes at most 50 message tags; this message has \(pairs.count)") }
        for (name, value) in pairs {
            for text in [name, value] {
                guard !text.isEmpty, text.count <= 256, text.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.@".unicodeScalars.contains($0)) }) else {
                    throw NimbusError(.invalidArgument, "'\(text)' cannot be an SES tag name or value (ASCII letters, digits, '_', '-', '.', '@'; 1 to 256 characters)")
                }
            }
        }
        return pairs.map { (name: $0.0, value: $0.1) }
    }

    /// SES's own refusals: the account or sender is not allowed to send — fix the setup, do not retry.
    static func remap(_ error: NimbusError) -> NimbusError {
        guard let aws = error.underlying as? AWSServiceError else { return error }
        switch aws.code {
        case "MessageRejected", "MailFromDomainNotVerifiedException", "SendingPausedException", "AccountSuspendedException":
            var mapped = error
            mapped.code = .failedPrecondition
            mapped.retryable = false
            mapped.message = "SES refused the message (\(aws.code)): \(aws.message); verify the sender identity, or leave the SES sandbox"
            return mapped
        default:
            return error
        }
    }
}

extension URLOpenerRegistry where Resource == any EmailDriver {
    /// Adds `ses://?region=eu-west-1&configurationSet=NAME&endpoint=http://127.0.0.1:5000&profile=P`.
    public func withSES() -> Self {
        var copy = self
        copy.register("ses") { url in
            let configuration = AWSClient.Configuration(url: url)
            return SESEmailDriver(aws: AWSClient(configuration: configuration), configurationSet: url.options.string("configurationSet"))
        }
        return copy
    }
}
