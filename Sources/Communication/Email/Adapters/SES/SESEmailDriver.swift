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
    /// How the message goes to SES.
    public enum Content: Sendable, Hashable {
        /// The MIME text as written (and DKIM-signed) here: headers, inline images and attachments arrive as they are.
        case raw
        /// Subject, text and HTML only; SES writes the MIME (and signs with Easy DKIM). Attachments are refused.
        case simple
    }

    public let provider = "ses"
    /// The AWS client (region, credentials, endpoint).
    public let aws: AWSClient
    /// The configuration set (event publishing, IP pools); none when `nil`.
    public var configurationSet: String?
    /// Raw (default) or simple content.
    public var content: Content

    /// SES's limit on a raw message (40 MB, base64 included).
    public static let maxMessageBytes = 40 * 1024 * 1024

    /// Creates a driver.
    public init(aws: AWSClient, configurationSet: String? = nil, content: Content = .raw) {
        self.aws = aws
        self.configurationSet = configurationSet
        self.content = content
    }

    public func send(_ email: OutgoingEmail) async throws -> EmailReceipt {
        let raw = email.document.bytes
        guard (raw.count + 2) / 3 * 4 <= Self.maxMessageBytes else {
            throw NimbusError(.invalidArgument, "the message is \(raw.count) bytes; SES takes at most 40 MB once base64-encoded", retryable: false)
        }
        var request = AWS.SESv2.SendEmailRequest(content: try Self.content(email, mode: content),
                                                 configurationSetName: configurationSet,
                                                 destination: .init(toAddresses: email.recipients.map(\.smtpAddress)),
                                                 fromEmailAddress: email.message.from.smtpAddress)
        if content == .simple {
            // Simple content has no headers of its own: the envelope says who is who (Bcc stays out of every header).
            request.fromEmailAddress = (email.document.header("From") ?? email.message.from.smtpAddress).replacingOccurrences(of: "\r\n ", with: " ")
            request.destination = .init(bccAddresses: email.message.bcc.map(\.smtpAddress), ccAddresses: email.message.cc.map(\.smtpAddress),
                                        toAddresses: email.message.to.map(\.smtpAddress))
            if !email.message.replyTo.isEmpty { request.replyToAddresses = email.message.replyTo.map(\.smtpAddress) }
        }
        if email.envelopeFrom != email.message.from { request.feedbackForwardingEmailAddress = email.envelopeFrom.smtpAddress }
        let tags = try Self.tags(email.message)
        if !tags.isEmpty { request.emailTags = tags.map { .init(name: $0.name, value: $0.value) } }
        let response: AWS.SESv2.SendEmailResponse
        do {
            response = try await AWS.SESv2(client: aws).sendEmail(request, maxAttempts: 1)   // EmailClient retries: one layer
        } catch let error as NimbusError {
            throw Self.remap(error)
        }
        guard let messageID = response.messageId else {
            throw NimbusError(.dataLoss, "SES answered SendEmail without a MessageId; the message may have been sent (not retried)", retryable: false)
        }
        return EmailReceipt(messageID: email.document.messageID, providerMessageID: messageID, provider: provider, accepted: email.recipients)
    }

    /// The content: `Raw` (the MIME document, base64 on the wire) or `Simple` (subject and bodies, UTF-8).
    static func content(_ email: OutgoingEmail, mode: Content) throws -> AWS.SESv2.EmailContent {
        switch mode {
        case .raw:
            return .init(raw: .init(data: Data(email.document.bytes)))
        case .simple:
            guard email.message.attachments.isEmpty else {
                throw NimbusError(.invalidArgument, "SES simple content carries no attachments; send with content: .raw", retryable: false)
            }
            let body = AWS.SESv2.Body(html: email.message.html.map { .init(data: $0, charset: "UTF-8") },
                                      text: email.message.text.map { .init(data: $0, charset: "UTF-8") })
            return .init(simple: .init(body: body, subject: .init(data: email.message.subject, charset: "UTF-8")))
        }
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
    /// Adds `ses://?region=eu-west-1&configurationSet=NAME&content=simple&endpoint=http://127.0.0.1:5000&profile=P`.
    public func withSES() -> Self {
        var copy = self
        copy.register("ses") { url in
            let configuration = AWSClient.Configuration(url: url)
            let content: SESEmailDriver.Content = switch url.options.string("content") {
            case nil, "raw": .raw
            case "simple": .simple
            case let other?: throw NimbusError(.invalidArgument, "content must be raw or simple, not '\(other)'")
            }
            return SESEmailDriver(aws: AWSClient(configuration: configuration), configurationSet: url.options.string("configurationSet"), content: content)
        }
        return copy
    }
}

/// SES delivery events, as SNS delivers them (configuration-set event publishing, `eventType`, or identity
/// notifications, `notificationType`), read into ``EmailEvent``s — one per recipient for bounces, complaints and
/// deliveries. Verify the SNS message first (``SNSMessageVerifier``).
///
/// ```swift
/// let message = try await SNSMessageVerifier(topics: [sesEventsTopic]).verify(body: body)
/// for event in try SESEvents.parse(message.message) where event.kind.suppressesRecipient { suppress(event.recipient) }
/// ```
public enum SESEvents {
    /// Reads the JSON SES put in the SNS message.
    /// - Throws: `invalidArgument` when it is not an SES event.
    public static func parse(_ json: String) throws -> [EmailEvent] {
        guard let event = (try? JSONValue.parse(Array(json.utf8)))?.objectValue, let mail = event["mail"] else {
            throw NimbusError(.invalidArgument, "the SNS message is not an SES event (no mail object)")
        }
        guard let type = event["eventType"]?.stringValue ?? event["notificationType"]?.stringValue else {
            throw NimbusError(.invalidArgument, "the SES event has no eventType or notificationType")
        }
        let messageID = mail["messageId"]?.stringValue
        var metadata: [String: String] = [:], tags: [String] = []
        for (name, values) in mail["tags"]?.objectValue ?? [:] where !name.hasPrefix("ses:") {
            guard let value = values.arrayValue?.first?.stringValue else { continue }
            if value == "true" { tags.append(name) } else { metadata[name] = value }
        }
        tags.sort()
        func date(_ value: JSONValue?) -> Date {
            value?.stringValue.flatMap { Date(iso8601: $0) } ?? Date()
        }
        func make(_ kind: EmailEvent.Kind, _ recipient: String, at time: JSONValue?, reason: String? = nil, url: String? = nil, id: String? = nil) -> EmailEvent {
            EmailEvent(kind: kind, recipient: recipient, timestamp: date(time ?? mail["timestamp"]), providerMessageID: messageID, eventID: id,
                       reason: reason, url: url, tags: tags, metadata: metadata)
        }
        let destinations = mail["destination"]?.arrayValue?.compactMap(\.stringValue) ?? []
        switch type {
        case "Bounce":
            let bounce = event["bounce"]
            let permanent = bounce?["bounceType"]?.stringValue == "Permanent"
            return (bounce?["bouncedRecipients"]?.arrayValue ?? []).compactMap { recipient in
                recipient["emailAddress"]?.stringValue.map {
                    make(permanent ? .bounced : .deferred, $0, at: bounce?["timestamp"],
                         reason: recipient["diagnosticCode"]?.stringValue ?? bounce?["bounceSubType"]?.stringValue, id: bounce?["feedbackId"]?.stringValue)
                }
            }
        case "Complaint":
            let complaint = event["complaint"]
            return (complaint?["complainedRecipients"]?.arrayValue ?? []).compactMap { recipient in
                recipient["emailAddress"]?.stringValue.map {
                    make(.complained, $0, at: complaint?["timestamp"], reason: complaint?["complaintFeedbackType"]?.stringValue, id: complaint?["feedbackId"]?.stringValue)
                }
            }
        case "Delivery":
            let delivery = event["delivery"]
            return (delivery?["recipients"]?.arrayValue?.compactMap(\.stringValue) ?? destinations).map {
                make(.delivered, $0, at: delivery?["timestamp"], reason: delivery?["smtpResponse"]?.stringValue)
            }
        case "Send": return destinations.map { make(.processed, $0, at: mail["timestamp"]) }
        case "Reject": return destinations.map { make(.dropped, $0, at: mail["timestamp"], reason: event["reject"]?["reason"]?.stringValue) }
        case "Rendering Failure": return destinations.map { make(.dropped, $0, at: mail["timestamp"], reason: event["failure"]?["errorMessage"]?.stringValue) }
        case "DeliveryDelay":
            let delay = event["deliveryDelay"]
            return (delay?["delayedRecipients"]?.arrayValue ?? []).compactMap { recipient in
                recipient["emailAddress"]?.stringValue.map { make(.deferred, $0, at: delay?["timestamp"], reason: recipient["diagnosticCode"]?.stringValue) }
            }
        case "Open": return destinations.map { make(.opened, $0, at: event["open"]?["timestamp"]) }
        case "Click": return destinations.map { make(.clicked, $0, at: event["click"]?["timestamp"], url: event["click"]?["link"]?.stringValue) }
        case "Subscription":
            let unsubscribed = event["subscription"]?["newTopicPreferences"]?["unsubscribeAll"]?.boolValue == true
            return destinations.map { make(unsubscribed ? .unsubscribed : .resubscribed, $0, at: event["subscription"]?["timestamp"]) }
        default:
            return destinations.map { make(EmailEvent.Kind(rawValue: type.lowercased()), $0, at: mail["timestamp"]) }
        }
    }
}
