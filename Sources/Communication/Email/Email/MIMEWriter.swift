import Foundation
import NimbusCore

/// An RFC 5322 message as headers and a body, ready to sign (DKIM) and send.
public struct MIMEDocument: Sendable, Hashable {
    /// A header: its name and its value as written (folded lines joined by CRLF + space).
    public struct Header: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The headers, in order.
    public var headers: [Header]
    /// The body, CRLF line endings, 7-bit unless ``has8BitBody``.
    public var body: [UInt8]
    /// The `Message-ID` written (with angle brackets).
    public var messageID: String
    /// Whether the body holds raw UTF-8 (send with `BODY=8BITMIME`).
    public var has8BitBody: Bool
    /// Whether headers hold raw UTF-8 (a non-ASCII local part: send with `SMTPUTF8`).
    public var requiresSMTPUTF8: Bool

    /// Creates a document.
    public init(headers: [Header], body: [UInt8], messageID: String, has8BitBody: Bool = false, requiresSMTPUTF8: Bool = false) {
        self.headers = headers
        self.body = body
        self.messageID = messageID
        self.has8BitBody = has8BitBody
        self.requiresSMTPUTF8 = requiresSMTPUTF8
    }

    /// The first value of a header (names compare case-insensitively).
    public func header(_ name: String) -> String? { headers.first { $0.name.equalsIgnoringASCIICase(name) }?.value }

    /// The whole message: headers, a blank line, the body.
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(body.count + headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } + 2)
        for header in headers {
            out += header.name.utf8
            out += ": ".utf8
            out += header.value.utf8
            out += [13, 10]
        }
        out += [13, 10]
        out += body
        return out
    }
}

/// Writes an ``EmailMessage`` as MIME (RFC 2045–2049, 5322): `multipart/alternative` for text + HTML,
/// `multipart/related` for inline images, `multipart/mixed` for attachments; RFC 2047 encoded words for
/// non-ASCII headers, RFC 2231 file names, quoted-printable text and base64 files; no line over 998 bytes.
///
/// ```swift
/// let document = try MIMEWriter().write(message, date: Date())
/// try Data(document.bytes).write(to: URL(fileURLWithPath: "message.eml"))
/// ```
public struct MIMEWriter: Sendable {
    /// Options.
    public struct Options: Sendable, Hashable {
        /// Write UTF-8 text as `8bit` instead of quoted-printable (the server offers 8BITMIME).
        public var allow8Bit: Bool
        /// The domain after `@` in generated Message-IDs (the sender's domain when `nil`).
        public var messageIDDomain: String?

        /// Creates options.
        public init(allow8Bit: Bool = false, messageIDDomain: String? = nil) {
            self.allow8Bit = allow8Bit
            self.messageIDDomain = messageIDDomain
        }
    }

    /// The headers written from a message's fields (refused as extra headers).
    static let generatedHeaders: Set<String> = ["from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "mime-version",
                                                "content-type", "content-transfer-encoding", "list-unsubscribe", "list-unsubscribe-post", "dkim-signature"]

    /// The options.
    public var options: Options
    private let boundary: @Sendable () -> String

    /// Creates a writer; `boundary` makes each multipart boundary (random by default).
    public init(options: Options = Options(), boundary: @escaping @Sendable () -> String = { "=_nimbus_" + IDGenerator.shared.ulid().description }) {
        self.options = options
        self.boundary = boundary
    }

    /// Writes a message.
    /// - Throws: `invalidArgument` when the message does not validate (see ``EmailMessage/validate()``).
    public func write(_ message: EmailMessage, date: Date = Date()) throws -> MIMEDocument {
        try message.validate()
        let messageID = message.messageID.map { $0.hasPrefix("<") ? $0 : "<\($0)>" }
            ?? "<\(IDGenerator.shared.ulid().description.lowercased())@\(options.messageIDDomain ?? message.from.asciiDomain)>"
        var headers: [MIMEDocument.Header] = [
            .init("Date", Self.rfc5322Date(message.date ?? date)),
            .init("From", Self.addressList([message.from], headerName: "From")),
        ]
        if !message.replyTo.isEmpty { headers.append(.init("Reply-To", Self.addressList(message.replyTo, headerName: "Reply-To"))) }
        if !message.to.isEmpty { headers.append(.init("To", Self.addressList(message.to, headerName: "To"))) }
        if !message.cc.isEmpty { headers.append(.init("Cc", Self.addressList(message.cc, headerName: "Cc"))) }
        headers.append(.init("Subject", Self.unstructured(message.subject, headerName: "Subject")))
        headers.append(.init("Message-ID", messageID))
        if let unsubscribe = message.listUnsubscribe {
            let targets = [unsubscribe.url?.absoluteString, unsubscribe.mailto.map { $0.hasPrefix("mailto:") ? $0 : "mailto:" + $0 }].compactMap { $0 }
            if !targets.isEmpty { headers.append(.init("List-Unsubscribe", targets.map { "<\($0)>" }.joined(separator: ",\r\n "))) }
            if unsubscribe.oneClick {
                guard unsubscribe.url?.scheme?.lowercased() == "https" else {
                    throw NimbusError(.invalidArgument, "one-click unsubscribe (RFC 8058) needs an https URL in `listUnsubscribe.url`")
                }
                headers.append(.init("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
            }
        }
        for header in message.headers { headers.append(.init(header.name, Self.unstructured(header.value, headerName: header.name))) }
        headers.append(.init("MIME-Version", "1.0"))
        let root = structure(of: message)
        var body = [UInt8]()
        var has8Bit = false
        headers += render(root, into: &body, has8Bit: &has8Bit)
        let smtpUTF8 = ([message.from] + message.to + message.cc + message.replyTo).contains(where: \.requiresSMTPUTF8)
        return MIMEDocument(headers: headers, body: body, messageID: messageID, has8BitBody: has8Bit, requiresSMTPUTF8: smtpUTF8)
    }

    // MARK: Structure

    indirect enum Part {
        case text(String, subtype: String)
        case file(EmailMessage.Attachment)
        case multipart(subtype: String, [Part])
    }

    func structure(of message: EmailMessage) -> Part {
        var bodies: [Part] = []
        if let text = message.text { bodies.append(.text(text, subtype: "plain")) }
        if let html = message.html { bodies.append(.text(html, subtype: "html")) }
        var content: Part? = bodies.count > 1 ? .multipart(subtype: "alternative", bodies) : bodies.first
        let inline = message.html == nil ? [] : message.attachments.filter(\.isInline)
        let attached = message.attachments.filter { !(message.html != nil && $0.isInline) }
        if let body = content, !inline.isEmpty { content = .multipart(subtype: "related", [body] + inline.map(Part.file)) }
        if attached.isEmpty, let content { return content }
        return .multipart(subtype: "mixed", (content.map { [$0] } ?? []) + attached.map(Part.file))
    }

    /// Writes a part's body into `out` and returns its content headers.
    func render(_ part: Part, into out: inout [UInt8], has8Bit: inout Bool) -> [MIMEDocument.Header] {
        switch part {
        case .text(let text, let subtype):
            let normalized = Self.crlf(text)
            var headers = [MIMEDocument.Header("Content-Type", "text/\(subtype); charset=utf-8")]
            let bytes = Array(normalized.utf8)
            let ascii = bytes.allSatisfy { $0 < 0x80 && $0 != 0 }
            let shortLines = Self.longestLine(bytes) <= 998
            let boundaryLike = normalized.contains("=_nimbus_")
            if ascii && shortLines && !boundaryLike {
                headers.append(.init("Content-Transfer-Encoding", "7bit"))
                out += bytes
            } else if options.allow8Bit && shortLines && !boundaryLike && !bytes.contains(0) {
                headers.append(.init("Content-Transfer-Encoding", "8bit"))
                out += bytes
                has8Bit = true
            } else {
                headers.append(.init("Content-Transfer-Encoding", "quoted-printable"))
                out += Self.quotedPrintable(bytes)
            }
            return headers
        case .file(let attachment):
            var headers = [MIMEDocument.Header("Content-Type", "\(attachment.contentType); \(Self.parameter("name", attachment.filename, rfc2231: false))")]
            let disposition = attachment.isInline ? "inline" : "attachment"
            headers.append(.init("Content-Disposition", "\(disposition); \(Self.parameter("filename", attachment.filename, rfc2231: true))"))
            if let id = attachment.contentID { headers.append(.init("Content-ID", "<\(id)>")) }
            headers.append(.init("Content-Transfer-Encoding", "base64"))
            out += Self.base64Lines(attachment.data)
            return headers
        case .multipart(let subtype, let parts):
            let marker = boundary()
            for part in parts {
                out += "--\(marker)\r\n".utf8
                var partBody = [UInt8]()
                let headers = render(part, into: &partBody, has8Bit: &has8Bit)
                for header in headers { out += "\(header.name): \(header.value)\r\n".utf8 }
                out += [13, 10]
                out += partBody
                out += [13, 10]                                   // the CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1)
            }
            out += "--\(marker)--\r\n".utf8
            return [.init("Content-Type", "multipart/\(subtype);\r\n boundary=\"\(marker)\"")]
        }
    }

    // MARK: Headers

    /// `Wed, 26 Nov 2026 03:00:00 +0000`.
    public static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }

    /// An address list, one address per line when it would pass 78 characters.
    static func addressList(_ addresses: [EmailAddress], headerName: String) -> String {
        let rendered = addresses.map(mailbox)
        let oneLine = rendered.joined(separator: ", ")
        return headerName.count + 2 + oneLine.count <= 78 && !oneLine.contains("\r\n") ? oneLine : rendered.joined(separator: ",\r\n ")
    }

    /// `Name <local@domain>`: the name quoted or encoded as needed, the domain in ASCII.
    static func mailbox(_ address: EmailAddress) -> String {
        let spec = address.requiresSMTPUTF8 ? address.address : address.smtpAddress
        guard let name = address.name, !name.isEmpty else { return spec }
        let phrase = name.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 32 && $0.value != 127 }
            ? EmailAddress.quotedPhrase(name)
            : encodedWords(name).joined(separator: "\r\n ")
        return "\(phrase) <\(spec)>"
    }

    /// An unstructured value (Subject): folded at spaces when ASCII, RFC 2047 `B` words otherwise.
    static func unstructured(_ value: String, headerName: String) -> String {
        let printable = value.unicodeScalars.allSatisfy { ($0.isASCII && $0.value >= 32 && $0.value != 127) || $0 == "\t" }
        let words = value.split(separator: " ", omittingEmptySubsequences: false)
        if printable && !value.contains("=?") && words.allSatisfy({ $0.utf8.count < 900 }) {
            var lines: [String] = [], current = "", started = false, limit = 78 - headerName.count - 2
            for word in words {
                if !started {
                    current = String(word)
                    started = true
                } else if !current.isEmpty && current.utf8.count + 1 + word.utf8.count > limit {
                    lines.append(current)                         // the fold's space stands for the one between the words
                    current = String(word)
                    limit = 77
                } else {
                    current += " " + word
                }
            }
            lines.append(current)
            return lines.joined(separator: "\r\n ")
        }
        return encodedWords(value).joined(separator: "\r\n ")
    }

    /// RFC 2047 `=?UTF-8?B?…?=` words of at most 75 characters, never splitting a character.
    static func encodedWords(_ text: String) -> [String] {
        var words: [String] = [], chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45, !chunk.isEmpty {
                words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=") }
        return words
    }

    /// `name="value"`, or RFC 2231 `name*=utf-8''…` for non-ASCII values (an encoded word for `name=`).
    static func parameter(_ name: String, _ value: String, rfc2231: Bool) -> String {
        if value.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 32 && $0.value != 127 }) {
            return "\(name)=\(EmailAddress.quote(value))"
        }
        if !rfc2231 { return "\(name)=\"\(encodedWords(value).joined(separator: " "))\"" }
        let attributeChars = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~".utf8)
        var encoded = ""
        for byte in value.utf8 {
            if attributeChars.contains(byte) { encoded.append(Character(Unicode.Scalar(byte))) } else { encoded += String(format: "%%%02X", byte) }
        }
        return "\(name)*=utf-8''\(encoded)"
    }

    // MARK: Body encodings

    /// LF or CR alone become CRLF.
    static func crlf(_ text: String) -> String {
        guard text.contains("\n") || text.contains("\r") else { return text }
        return text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
    }

    static func longestLine(_ bytes: [UInt8]) -> Int {
        var longest = 0, current = 0
        for byte in bytes {
            if byte == 10 { longest = max(longest, current); current = 0 } else if byte != 13 { current += 1 }
        }
        return max(longest, current)
    }

    /// Quoted-printable (RFC 2045 §6.7) of CRLF text: lines of at most 76 characters with soft breaks,
    /// `=` and non-ASCII escaped, trailing spaces and tabs escaped.
    public static func quotedPrintable(_ bytes: [UInt8]) -> [UInt8] {
        let hex = Array("0123456789ABCDEF".utf8)
        var out = [UInt8](), line = 0
        out.reserveCapacity(bytes.count + bytes.count / 4)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 13, index + 1 < bytes.count, bytes[index + 1] == 10 {
                out += [13, 10]
                line = 0
                index += 2
                continue
            }
            let atLineEnd = index + 1 == bytes.count || (bytes[index + 1] == 13 && index + 2 < bytes.count && bytes[index + 2] == 10)
            let literal = (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=")) || ((byte == 32 || byte == 9) && !atLineEnd)
            let width = literal ? 1 : 3
            // Keep room for a soft break's '=' (the last character of a line may be 76th only at the line end).
            if line + width > (atLineEnd ? 76 : 75) {
                out += [UInt8(ascii: "="), 13, 10]
                line = 0
            }
            if literal { out.append(byte) } else { out += [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 15)]] }
            line += width
            index += 1
        }
        return out
    }

    /// Base64 in lines of 76 characters, each ending in CRLF.
    public static func base64Lines(_ bytes: [UInt8]) -> [UInt8] {
        let encoded = Array(Data(bytes).base64EncodedString().utf8)
        var out = [UInt8]()
        out.reserveCapacity(encoded.count + encoded.count / 38 + 2)
        var start = 0
        while start < encoded.count {
            let end = min(start + 76, encoded.count)
            out += encoded[start..<end]
            out += [13, 10]
            start = end
        }
        return out
    }
}
