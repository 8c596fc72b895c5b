import Foundation
import NIOCore
import NimbusCore

/// What a NATS server sends (the client protocol, <https://docs.nats.io/reference/reference-protocols/nats-protocol>).
public enum NATSServerOperation: Sendable, Hashable {
    /// `INFO {json}`: the server's settings, on connect and when the cluster changes.
    case info(ByteBuffer)
    /// `MSG` or `HMSG`: a message for subscription `sid`.
    case message(NATSMessage)
    /// `PING`: answer with `PONG`.
    case ping
    /// `PONG`: the answer to our `PING`.
    case pong
    /// `+OK` (verbose mode only).
    case ok
    /// `-ERR 'text'`.
    case error(String)
}

/// A message delivered on a subscription.
public struct NATSMessage: Sendable, Hashable {
    /// The subject it was published to.
    public var subject: String
    /// The subscription id it came in on.
    public var sid: String
    /// Where to reply, if the publisher asked for one.
    public var replyTo: String?
    /// Its headers (`HMSG`), in order; empty for `MSG`.
    public var headers: [(String, String)] { headerFields.map { ($0.name, $0.value) } }
    /// The status line of a header block (`503` no responders, `404` no messages, `408` timeout...), if any.
    public var status: Int?
    /// The status line's description, if any.
    public var statusDescription: String?
    /// The payload.
    public var payload: ByteBuffer
    var headerFields: [HeaderField]

    struct HeaderField: Sendable, Hashable {
        var name: String
        var value: String
    }

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headerFields.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// Splits the byte stream from a NATS server into operations. Bounded: a control line longer
/// than 4 KiB or a payload larger than `maximumPayload` closes the connection with an error.
struct NATSOperationDecoder: ByteToMessageDecoder {
    typealias InboundOut = NATSServerOperation
    static let maximumControlLine = 4096
    let maximumPayload: Int

    init(maximumPayload: Int = 64 << 20) { self.maximumPayload = maximumPayload }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let operation = try Self.parse(&buffer, maximumPayload: maximumPayload) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(operation))
        return .continue
    }

    /// One operation from the front of `buffer`, consuming it; `nil` when more bytes are needed.
    static func parse(_ buffer: inout ByteBuffer, maximumPayload: Int) throws -> NATSServerOperation? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > maximumControlLine { throw NATSProtocolError("a control line of more than \(maximumControlLine) bytes") }
            return nil
        }
        let lineLength = newline - view.startIndex
        guard lineLength <= maximumControlLine else { throw NATSProtocolError("a control line of \(lineLength) bytes") }
        var lineEnd = newline
        if lineEnd > view.startIndex, view[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
        let line = String(decoding: view[view.startIndex..<lineEnd], as: UTF8.self)
        let lineBytes = lineLength + 1
        let (word, rest) = split(line)
        switch word.uppercased() {
        case "PING": buffer.moveReaderIndex(forwardBy: lineBytes); return .ping
        case "PONG": buffer.moveReaderIndex(forwardBy: lineBytes); return .pong
        case "+OK": buffer.moveReaderIndex(forwardBy: lineBytes); return .ok
        case "-ERR":
            buffer.moveReaderIndex(forwardBy: lineBytes)
            return .error(rest.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "'")))
        case "INFO":
            buffer.moveReaderIndex(forwardBy: lineBytes)
            return .info(ByteBuffer(string: rest))
        case "MSG", "HMSG":
            let fields = rest.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            let headered = word.uppercased() == "HMSG"
            let sizes = headered ? 2 : 1
            guard fields.count == 2 + sizes || fields.count == 3 + sizes else { throw NATSProtocolError("a malformed \(word) line: \(line.prefix(120))") }
            guard let total = Int(fields[fields.count - 1]), total >= 0, total <= maximumPayload else {
                throw NATSProtocolError("a \(word) size of \(fields[fields.count - 1]) (the limit is \(maximumPayload) bytes)")
            }
            let headerLength = headered ? Int(fields[fields.count - 2]) : 0
            guard let headerLength, headerLength >= 0, headerLength <= total else { throw NATSProtocolError("a malformed \(word) header size: \(line.prefix(120))") }
            guard buffer.readableBytes >= lineBytes + total + 2 else { return nil }
            buffer.moveReaderIndex(forwardBy: lineBytes)
            guard var block = buffer.readSlice(length: total), let trailer = buffer.readBytes(length: 2), trailer == [13, 10] else {
                throw NATSProtocolError("a \(word) payload not followed by CRLF")
            }
            var message = NATSMessage(subject: fields[0], sid: fields[1], replyTo: fields.count == 3 + sizes ? fields[2] : nil,
                                      status: nil, statusDescription: nil, payload: ByteBuffer(), headerFields: [])
            if headered {
                guard let headerBlock = block.readString(length: headerLength) else { throw NATSProtocolError("a truncated header block") }
                try parseHeaders(headerBlock, into: &message)
            }
            message.payload = block
            return .message(message)
        default:
            throw NATSProtocolError("an unknown operation '\(word.prefix(20))'")
        }
    }

    private static func split(_ line: String) -> (String, String) {
        guard let space = line.firstIndex(where: { $0 == " " || $0 == "\t" }) else { return (line, "") }
        return (String(line[..<space]), String(line[line.index(after: space)...]))
    }

    /// `NATS/1.0[ status[ description]]` then `Name: value` lines.
    static func parseHeaders(_ block: String, into message: inout NATSMessage) throws {
        var lines = block.components(separatedBy: "\r\n")
        guard let first = lines.first, first.hasPrefix("NATS/1.0") else { throw NATSProtocolError("a header block that does not start with NATS/1.0") }
        lines.removeFirst()
        let status = first.dropFirst("NATS/1.0".count).trimmingCharacters(in: .whitespaces)
        if !status.isEmpty {
            let parts = status.split(separator: " ", maxSplits: 1)
            message.status = Int(parts[0])
            message.statusDescription = parts.count > 1 ? String(parts[1]) : nil
        }
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw NATSProtocolError("a header line without ':'") }
            message.headerFields.append(.init(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
    }
}

/// The server broke the protocol; the connection is closed since it can no longer be trusted.
struct NATSProtocolError: Error, Sendable, CustomStringConvertible {
    let detail: String
    init(_ detail: String) { self.detail = detail }
    var description: String { "the NATS server sent \(detail)" }
}

/// Encodes what the client sends.
enum NATSEncoder {
    /// `PUB`/`HPUB subject [reply] [hdr] size\r\n[headers]payload\r\n`, written byte by byte (no
    /// intermediate strings: this runs once per published message).
    static func publish(subject: String, replyTo: String?, headers: [(String, String)], payload: ByteBuffer, into buffer: inout ByteBuffer) {
        if headers.isEmpty {
            buffer.writeStaticString("PUB ")
            buffer.writeString(subject)
            if let replyTo { buffer.writeInteger(UInt8(ascii: " ")); buffer.writeString(replyTo) }
            buffer.writeInteger(UInt8(ascii: " "))
            writeDecimal(payload.readableBytes, into: &buffer)
        } else {
            var headerLength = 12   // "NATS/1.0\r\n" and the closing "\r\n"
            for (name, value) in headers { headerLength += name.utf8.count + value.utf8.count + 4 }
            buffer.writeStaticString("HPUB ")
            buffer.writeString(subject)
            if let replyTo { buffer.writeInteger(UInt8(ascii: " ")); buffer.writeString(replyTo) }
            buffer.writeInteger(UInt8(ascii: " "))
            writeDecimal(headerLength, into: &buffer)
            buffer.writeInteger(UInt8(ascii: " "))
            writeDecimal(headerLength + payload.readableBytes, into: &buffer)
            buffer.writeStaticString("\r\nNATS/1.0")
            for (name, value) in headers {
                buffer.writeStaticString("\r\n")
                buffer.writeString(name)
                buffer.writeStaticString(": ")
                buffer.writeString(value)
            }
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        buffer.writeImmutableBuffer(payload)
        buffer.writeStaticString("\r\n")
    }

    /// A non-negative integer in decimal, without a `String`.
    static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        if value < 10 { buffer.writeInteger(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value)); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0, rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            while rest > 0, count < 20 { raw[19 - count] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10); rest /= 10; count += 1 }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(20 - count)...]))
        }
    }

    /// Whether `text` can travel as a subject or reply token (no whitespace, not empty).
    static func isSubject(_ text: String) -> Bool {
        !text.isEmpty && !text.utf8.contains { $0 <= 32 || $0 == 127 }
    }
}
