import NIOCore
import NimbusCore

/// A server reply: its code, its enhanced status code (RFC 3463) when given, and its lines.
public struct SMTPResponse: Sendable, Hashable, CustomStringConvertible {
    /// `250`, `354`, `550`...
    public var code: Int
    /// `2.1.5`, `5.7.8`... when the server sends them.
    public var enhancedCode: String?
    /// The text of each line, without the code.
    public var lines: [String]

    /// 2xx.
    public var isPositive: Bool { (200..<300).contains(code) }
    /// 3xx (`334` AUTH challenge, `354` start mail input).
    public var isIntermediate: Bool { (300..<400).contains(code) }
    /// 4xx: try again later.
    public var isTransient: Bool { (400..<500).contains(code) }
    /// 5xx: do not try again.
    public var isPermanent: Bool { code >= 500 }

    /// The text, lines joined by spaces.
    public var message: String { lines.joined(separator: " ") }

    /// `550 5.1.1 User unknown`.
    public var description: String { "\(fullCode) \(message)" }

    /// The code with the enhanced code, for receipts (`550 5.1.1`).
    var fullCode: String { enhancedCode.map { "\(code) \($0)" } ?? "\(code)" }
}

/// Splits the byte stream into replies: `250-…` lines continue, `250 …` ends (RFC 5321 §4.2). Lines
/// longer than `maxLineLength` or replies of more than `maxLines` lines are a protocol error, so a
/// broken or hostile server cannot make the client buffer without end.
///
/// ```swift
/// var parser = SMTPResponseParser()
/// while let reply = try parser.next(&buffer) { handle(reply) }   // nil: wait for more bytes
/// ```
public struct SMTPResponseParser: Sendable {
    /// The longest line accepted, in bytes.
    public var maxLineLength = 4096
    /// The most lines one reply may have.
    public var maxLines = 256
    private var pending: [String] = []
    private var pendingCode: Int?

    /// A parser with the default limits.
    public init() {}

    /// The next whole reply in `buffer` (its bytes consumed), `nil` when more bytes are needed.
    /// - Throws: `internal` for a malformed, over-long or inconsistent reply.
    public mutating func next(_ buffer: inout ByteBuffer) throws -> SMTPResponse? {
        while true {
            let view = buffer.readableBytesView
            guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if buffer.readableBytes > maxLineLength {
                    throw NimbusError(.internal, "the SMTP server sent a line longer than \(maxLineLength) bytes")
                }
                return nil
            }
            let length = newline - view.startIndex
            guard length <= maxLineLength else { throw NimbusError(.internal, "the SMTP server sent a line longer than \(maxLineLength) bytes") }
            var line = buffer.readString(length: length) ?? ""
            buffer.moveReaderIndex(forwardBy: 1)
            if line.hasSuffix("\r") { line.removeLast() }
            let utf8 = Array(line.utf8)
            guard utf8.count >= 3, utf8[0...2].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let code = Int(String(decoding: utf8[0...2], as: UTF8.self)),
                  (200..<600).contains(code) else {
                throw NimbusError(.internal, "the SMTP server sent a malformed reply line: '\(line.prefix(80))'")
            }
            if let pendingCode, pendingCode != code {
                throw NimbusError(.internal, "the SMTP server changed the reply code in a multi-line reply (\(pendingCode), then \(code))")
            }
            let separator = utf8.count > 3 ? utf8[3] : UInt8(ascii: " ")
            guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
                throw NimbusError(.internal, "the SMTP server sent a malformed reply line: '\(line.prefix(80))'")
            }
            pending.append(utf8.count > 4 ? String(decoding: utf8[4...], as: UTF8.self) : "")
            guard pending.count <= maxLines else { throw NimbusError(.internal, "the SMTP server sent a reply of more than \(maxLines) lines") }
            if separator == UInt8(ascii: "-") {
                pendingCode = code
                continue
            }
            var lines = pending
            pending = []
            pendingCode = nil
            var enhanced: String?
            // An enhanced status code starts the first line: class.subject.detail, class matching the reply's first digit.
            if let first = lines.first, let space = first.firstIndex(of: " ") ?? (first.isEmpty ? nil : first.endIndex) {
                let candidate = first[..<space]
                let parts = candidate.split(separator: ".", omittingEmptySubsequences: false)
                if parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }), parts[0] == Substring(String(code / 100)) {
                    let status = String(candidate)
                    enhanced = status
                    lines = lines.map { line in
                        line.hasPrefix(status + " ") ? String(line.dropFirst(status.count + 1)) : (line == status ? "" : line)
                    }
                }
            }
            return SMTPResponse(code: code, enhancedCode: enhanced, lines: lines)
        }
    }
}

/// The channel decoder over ``SMTPResponseParser``.
struct SMTPResponseDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPResponse
    var parser = SMTPResponseParser()

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let reply = try parser.next(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(reply))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
