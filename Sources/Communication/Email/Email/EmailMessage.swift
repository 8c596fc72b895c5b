import Foundation
import NimbusCore

/// An email to send: addresses, subject, a text and/or HTML body, attachments and inline images.
///
/// ```swift
/// var message = EmailMessage(from: try EmailAddress("Shop <shop@example.com>"),
///                            to: [try EmailAddress("zoe@example.org")],
///                            subject: "Your receipt — #1042",
///                            text: "Thanks for your order.",
///                            html: "<p>Thanks for your <b>order</b>.</p><img src=\"cid:logo\">")
/// message.attachments.append(.file(named: "receipt.pdf", contentType: "application/pdf", data: pdf))
/// message.attachments.append(.inline(id: "logo", named: "logo.png", contentType: "image/png", data: png))
/// message.listUnsubscribe = .init(mailto: "unsubscribe@example.com", url: URL(string: "https://example.com/u/42"), oneClick: true)
/// ```
public struct EmailMessage: Sendable, Hashable {
    /// The author.
    public var from: EmailAddress
    /// Primary recipients.
    public var to: [EmailAddress]
    /// Copied recipients.
    public var cc: [EmailAddress]
    /// Blind-copied recipients: in the envelope, never in the headers.
    public var bcc: [EmailAddress]
    /// Where replies go.
    public var replyTo: [EmailAddress]
    /// The subject (any Unicode; encoded as RFC 2047 words when needed).
    public var subject: String
    /// The plain-text body.
    public var text: String?
    /// The HTML body.
    public var html: String?
    /// Files attached and images referenced from the HTML as `cid:<id>`.
    public var attachments: [Attachment]
    /// More headers (`In-Reply-To`, `X-Entity-Ref-ID`...). Names and values are checked: no line breaks.
    public var headers: [(name: String, value: String)]
    /// Labels for the provider's analytics (SendGrid categories, SES tags); not written into the MIME text.
    public var tags: [String]
    /// Key-value data echoed back in provider events (SendGrid custom args, SES tags); not written into the MIME text.
    public var metadata: [String: String]
    /// `List-Unsubscribe` (and RFC 8058 one-click) for bulk mail.
    public var listUnsubscribe: ListUnsubscribe?
    /// The `Message-ID` to use; one is made when `nil`.
    public var messageID: String?
    /// The `Date`; the send time when `nil`.
    public var date: Date?

    /// Creates a message.
    public init(from: EmailAddress, to: [EmailAddress] = [], cc: [EmailAddress] = [], bcc: [EmailAddress] = [], replyTo: [EmailAddress] = [],
                subject: String, text: String? = nil, html: String? = nil, attachments: [Attachment] = [],
                headers: [(name: String, value: String)] = [], tags: [String] = [], metadata: [String: String] = [:],
                listUnsubscribe: ListUnsubscribe? = nil, messageID: String? = nil, date: Date? = nil) {
        self.from = from
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.replyTo = replyTo
        self.subject = subject
        self.text = text
        self.html = html
        self.attachments = attachments
        self.headers = headers
        self.tags = tags
        self.metadata = metadata
        self.listUnsubscribe = listUnsubscribe
        self.messageID = messageID
        self.date = date
    }

    /// Every envelope recipient: to, cc and bcc, each mailbox once, in that order.
    public var recipients: [EmailAddress] {
        var seen = Set<EmailAddress>()
        return (to + cc + bcc).filter { seen.insert($0).inserted }
    }

    /// Checks what every provider requires: a recipient, a body, well-formed headers and attachments.
    /// - Throws: `invalidArgument` saying what to fix.
    public func validate() throws {
        guard !recipients.isEmpty else { throw NimbusError(.invalidArgument, "the message has no recipient: add one to `to`, `cc` or `bcc`") }
        guard text != nil || html != nil || !attachments.isEmpty else {
            throw NimbusError(.invalidArgument, "the message has no body: set `text`, `html` or add an attachment")
        }
        guard !subject.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) else {
            throw NimbusError(.invalidArgument, "the subject has a line break (header injection is refused)")
        }
        for header in headers {
            guard !header.name.isEmpty, header.name.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 && $0 != ":" }) else {
                throw NimbusError(.invalidArgument, "'\(header.name)' is not a header name (printable ASCII without ':' or spaces)")
            }
            guard !header.value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                throw NimbusError(.invalidArgument, "the value of header '\(header.name)' has a line break (header injection is refused)")
            }
            guard !MIMEWriter.generatedHeaders.contains(header.name.lowercased()) else {
                throw NimbusError(.invalidArgument, "'\(header.name)' is written from the message's fields; set the field instead of the header")
            }
        }
        // Fields that reach a header: no control characters, no angle brackets or spaces where they delimit.
        func hasControl(_ text: String) -> Bool { text.unicodeScalars.contains { $0.value < 32 || $0.value == 127 } }
        if let id = messageID, id.isEmpty || hasControl(id) || id.unicodeScalars.contains(where: { $0 == "<" || $0 == ">" || $0 == " " }) {
            throw NimbusError(.invalidArgument, "the Message-ID '\(id.debugDescription)' must be id-left@id-right without '<', '>', spaces or control characters")
        }
        if let mailto = listUnsubscribe?.mailto, mailto.isEmpty || hasControl(mailto) || mailto.unicodeScalars.contains(where: { $0 == "<" || $0 == ">" || $0 == "," || $0 == " " }) {
            throw NimbusError(.invalidArgument, "the List-Unsubscribe mailto '\(mailto.debugDescription)' may not hold '<', '>', ',', spaces or control characters")
        }
        for attachment in attachments {
            guard !attachment.filename.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\"" }) else {
                throw NimbusError(.invalidArgument, "the attachment name '\(attachment.filename)' has a line break or a double quote")
            }
            guard attachment.contentType.split(separator: "/").count == 2, !attachment.contentType.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == ";" }) else {
                throw NimbusError(.invalidArgument, "'\(attachment.contentType)' is not a media type (type/subtype)")
            }
            if let id = attachment.contentID, id.unicodeScalars.contains(where: { $0 == "<" || $0 == ">" || $0 == " " || $0 == "\r" || $0 == "\n" }) {
                throw NimbusError(.invalidArgument, "the inline id '\(id)' may not hold '<', '>', spaces or line breaks")
            }
        }
    }

    public static func == (lhs: EmailMessage, rhs: EmailMessage) -> Bool {
        lhs.from == rhs.from && lhs.to == rhs.to && lhs.cc == rhs.cc && lhs.bcc == rhs.bcc && lhs.replyTo == rhs.replyTo
            && lhs.subject == rhs.subject && lhs.text == rhs.text && lhs.html == rhs.html && lhs.attachments == rhs.attachments
            && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
            && lhs.tags == rhs.tags && lhs.metadata == rhs.metadata && lhs.listUnsubscribe == rhs.listUnsubscribe
            && lhs.messageID == rhs.messageID && lhs.date == rhs.date
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(from)
        hasher.combine(to)
        hasher.combine(subject)
        hasher.combine(messageID)
    }

    /// A file attached, or an image shown inside the HTML.
    public struct Attachment: Sendable, Hashable {
        /// The file name shown to the reader.
        public var filename: String
        /// `application/pdf`, `image/png`...
        public var contentType: String
        /// The bytes.
        public var data: [UInt8]
        /// For inline parts: the id the HTML refers to as `cid:<id>`.
        public var contentID: String?

        /// Creates an attachment.
        public init(filename: String, contentType: String, data: [UInt8], contentID: String? = nil) {
            self.filename = filename
            self.contentType = contentType
            self.data = data
            self.contentID = contentID
        }

        /// A file attached to the message.
        public static func file(named filename: String, contentType: String, data: [UInt8]) -> Attachment {
            Attachment(filename: filename, contentType: contentType, data: data)
        }

        /// An image (or other part) the HTML shows with `<img src="cid:<id>">`.
        public static func inline(id: String, named filename: String, contentType: String, data: [UInt8]) -> Attachment {
            Attachment(filename: filename, contentType: contentType, data: data, contentID: id)
        }

        /// Whether the HTML shows it (it has a content id).
        public var isInline: Bool { contentID != nil }
    }

    /// `List-Unsubscribe` (RFC 2369) with one-click unsubscription (RFC 8058), which Gmail and Yahoo
    /// require of bulk senders.
    public struct ListUnsubscribe: Sendable, Hashable {
        /// `mailto:` target.
        public var mailto: String?
        /// HTTPS target.
        public var url: URL?
        /// Adds `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (needs an HTTPS `url`).
        public var oneClick: Bool

        /// Creates the header's targets.
        public init(mailto: String? = nil, url: URL? = nil, oneClick: Bool = false) {
            self.mailto = mailto
            self.url = url
            self.oneClick = oneClick
        }
    }
}
