import NIOCore

/// Decodes RESP2 and RESP3 replies from a byte stream, one ``RESPValue`` per top-level reply.
///
/// Incomplete input waits for more bytes; anything that breaks the protocol (an unknown type
/// byte, a bad length, a missing `\r\n`, a bulk string over ``maximumBulkLength``) throws
/// ``RedisProtocolError/malformed(_:)``, after which the connection must be closed.
public struct RESPDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = RESPValue

    /// The largest bulk string accepted (Redis' own `proto-max-bulk-len` default: 512 MiB).
    public var maximumBulkLength: Int
    /// The largest number of elements in one aggregate.
    public var maximumAggregateLength: Int
    /// How deep aggregates may nest.
    public var maximumDepth: Int

    /// Creates a decoder with Redis' own limits.
    public init(maximumBulkLength: Int = 512 * 1024 * 1024, maximumAggregateLength: Int = 1 << 24, maximumDepth: Int = 64) {
        self.maximumBulkLength = maximumBulkLength
        self.maximumAggregateLength = maximumAggregateLength
        self.maximumDepth = maximumDepth
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try parse(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(value))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// Parses one complete value from the front of `buffer`, or returns `nil` and leaves the buffer
    /// untouched when it holds only part of one.
    public func parse(from buffer: inout ByteBuffer) throws -> RESPValue? {
        // Parsing only moves the reader index, so an incomplete value is undone by moving it back.
        let start = buffer.readerIndex
        guard let value = try parseValue(&buffer, depth: 0) else {
            buffer.moveReaderIndex(to: start)
            return nil
        }
        return value
    }

    private func parseValue(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue? {
        guard depth <= maximumDepth else { throw RedisProtocolError.malformed("aggregates nested deeper than \(maximumDepth)") }
        guard let type = buffer.readInteger(as: UInt8.self) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return try readLine(&buffer).map { .simpleString($0) }
        case UInt8(ascii: "-"):
            return try readLine(&buffer).map { .error(RedisServerError(message: String(buffer: $0))) }
        case UInt8(ascii: ":"):
            return try readIntegerLine(&buffer, "integer").map { .integer($0) }
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            guard let length = try readIntegerLine(&buffer, "bulk length") else { return nil }
            if length == -1 && type == UInt8(ascii: "$") { return .null }
            guard length >= 0 else { throw RedisProtocolError.malformed("negative bulk length \(length)") }
            guard length <= maximumBulkLength else {
                throw RedisProtocolError.malformed("bulk string of \(length) bytes is over the \(maximumBulkLength)-byte limit")
            }
            guard buffer.readableBytes >= Int(length) + 2 else { return nil }
            guard var payload = buffer.readSlice(length: Int(length)) else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                throw RedisProtocolError.malformed("bulk string of \(length) bytes is not followed by CRLF")
            }
            switch type {
            case UInt8(ascii: "!"): return .error(RedisServerError(message: String(buffer: payload)))
            case UInt8(ascii: "="):
                guard length >= 4, let format = payload.readString(length: 3), payload.readInteger(as: UInt8.self) == UInt8(ascii: ":") else {
                    throw RedisProtocolError.malformed("verbatim string without a 3-letter format and ':'")
                }
                return .verbatimString(format: format, payload)
            default: return .bulkString(payload)
            }
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            guard let count = try readIntegerLine(&buffer, "aggregate length") else { return nil }
            if count == -1 && type == UInt8(ascii: "*") { return .null }
            guard let elements = try parseElements(&buffer, count: count, depth: depth) else { return nil }
            switch type {
            case UInt8(ascii: "~"): return .set(elements)
            case UInt8(ascii: ">"): return .push(elements)
            default: return .array(elements)
            }
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let count = try readIntegerLine(&buffer, "map length") else { return nil }
            guard count >= 0, count <= maximumAggregateLength / 2 else { throw RedisProtocolError.malformed("bad map length \(count)") }
            guard let flat = try parseElements(&buffer, count: count * 2, depth: depth) else { return nil }
            let entries = stride(from: 0, to: flat.count, by: 2).map { RESPValue.MapEntry(key: flat[$0], value: flat[$0 + 1]) }
            if type == UInt8(ascii: "%") { return .map(entries) }
            guard let value = try parseValue(&buffer, depth: depth + 1) else { return nil }
            return .attributed(attributes: entries, value: value)
        case UInt8(ascii: "_"):
            guard let line = try readLine(&buffer) else { return nil }
            guard line.readableBytes == 0 else { throw RedisProtocolError.malformed("null with a payload") }
            return .null
        case UInt8(ascii: "#"):
            guard let line = try readLine(&buffer) else { return nil }
            switch String(buffer: line) {
            case "t": return .boolean(true)
            case "f": return .boolean(false)
            case let other: throw RedisProtocolError.malformed("boolean '\(other)' is neither t nor f")
            }
        case UInt8(ascii: ","):
            guard let line = try readLine(&buffer) else { return nil }
            let text = String(buffer: line)
            switch text {
            case "inf": return .double(.infinity)
            case "-inf": return .double(-.infinity)
            case "nan", "-nan": return .double(.nan)
            default:
                guard let value = Double(text) else { throw RedisProtocolError.malformed("double '\(text)' does not parse") }
                return .double(value)
            }
        case UInt8(ascii: "("):
            guard let line = try readLine(&buffer) else { return nil }
            let text = String(buffer: line)
            let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
                throw RedisProtocolError.malformed("big number '\(text)' is not decimal digits")
            }
            return .bigNumber(text)
        default:
            throw RedisProtocolError.malformed("unknown RESP type byte 0x\(String(type, radix: 16)); the peer is not speaking RESP or the stream is out of sync")
        }
    }

    private func parseElements(_ buffer: inout ByteBuffer, count: Int64, depth: Int) throws -> [RESPValue]? {
        guard count >= 0 else { throw RedisProtocolError.malformed("negative aggregate length \(count)") }
        guard count <= maximumAggregateLength else { throw RedisProtocolError.malformed("aggregate of \(count) elements is over the limit") }
        var elements: [RESPValue] = []
        elements.reserveCapacity(Int(min(count, 1024)))
        for _ in 0..<count {
            guard let element = try parseValue(&buffer, depth: depth + 1) else { return nil }
            elements.append(element)
        }
        return elements
    }

    /// Reads up to the next CRLF; `nil` if there is none yet. A bare CR or LF inside a line is an error.
    private func readLine(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > 64 * 1024 { throw RedisProtocolError.malformed("a line longer than 64 KiB without CRLF") }
            return nil
        }
        guard lf > view.startIndex, view[lf - 1] == UInt8(ascii: "\r") else {
            throw RedisProtocolError.malformed("line ends in LF without CR")
        }
        let length = lf - 1 - view.startIndex
        let line = buffer.readSlice(length: length)
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    /// Reads a CRLF-terminated decimal integer straight from the buffer's bytes (the hot path of
    /// every bulk string, array and integer reply), consuming it; `nil` if the line is incomplete.
    private func readIntegerLine(_ buffer: inout ByteBuffer, _ what: String) throws -> Int64? {
        let parsed: (value: Int64, consumed: Int)? = try buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            var negative = false
            var value: Int64 = 0
            var digits = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                    let (times, o1) = value.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times.addingReportingOverflow(Int64(byte &- UInt8(ascii: "0")))
                    guard !o1, !o2 else { throw RedisProtocolError.malformed("\(what) overflows 64 bits") }
                    value = sum
                    digits += 1
                } else if byte == 13 {
                    guard index + 1 < bytes.count else { return nil }
                    guard bytes[index + 1] == 10 else { throw RedisProtocolError.malformed("\(what) line has CR without LF") }
                    guard digits > 0 else { throw RedisProtocolError.malformed("empty \(what)") }
                    return (negative ? -value : value, index + 2)
                } else if index == 0 && (byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")) {
                    negative = byte == UInt8(ascii: "-")
                } else if byte == 10 {
                    throw RedisProtocolError.malformed("line ends in LF without CR")
                } else {
                    let end = bytes[index...].firstIndex(of: 13) ?? min(bytes.count, index + 32)
                    throw RedisProtocolError.malformed("\(what) '\(String(decoding: bytes[0..<end], as: UTF8.self))' is not an integer")
                }
                index += 1
                if index > 32 { throw RedisProtocolError.malformed("\(what) line is too long") }
            }
            return nil
        }
        guard let parsed else { return nil }
        buffer.moveReaderIndex(forwardBy: parsed.consumed)
        return parsed.value
    }
}

/// Encodes commands as RESP arrays of bulk strings — the only form servers accept from clients.
public enum RESPEncoder {
    /// Appends `command` to `buffer`, sizing the buffer once and writing the bytes in one pass.
    public static func encode(_ command: RedisCommand, into buffer: inout ByteBuffer) {
        var size = 1 + digitCount(command.arguments.count) + 2
        for argument in command.arguments { size += 1 + digitCount(argument.readableBytes) + 2 + argument.readableBytes + 2 }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            guard let base = raw.baseAddress else { return 0 }
            var offset = writeHeader(UInt8(ascii: "*"), command.arguments.count, to: base)
            for argument in command.arguments {
                offset += writeHeader(UInt8(ascii: "$"), argument.readableBytes, to: base + offset)
                argument.withUnsafeReadableBytes { bytes in
                    if let source = bytes.baseAddress { (base + offset).copyMemory(from: source, byteCount: bytes.count) }
                }
                offset += argument.readableBytes
                base.storeBytes(of: 13, toByteOffset: offset, as: UInt8.self)
                base.storeBytes(of: 10, toByteOffset: offset + 1, as: UInt8.self)
                offset += 2
            }
            return offset
        }
    }

    /// The number of decimal digits of a non-negative `value`.
    static func digitCount(_ value: Int) -> Int {
        var count = 1
        var rest = value
        while rest >= 10 { rest /= 10; count += 1 }
        return count
    }

    /// Writes `<type><decimal>\r\n` at `pointer`; returns the bytes written.
    @inline(__always)
    static func writeHeader(_ type: UInt8, _ value: Int, to pointer: UnsafeMutableRawPointer) -> Int {
        pointer.storeBytes(of: type, as: UInt8.self)
        let digits = digitCount(value)
        var rest = value
        for index in stride(from: digits, through: 1, by: -1) {
            pointer.storeBytes(of: UInt8(ascii: "0") + UInt8(rest % 10), toByteOffset: index, as: UInt8.self)
            rest /= 10
        }
        pointer.storeBytes(of: 13, toByteOffset: digits + 1, as: UInt8.self)
        pointer.storeBytes(of: 10, toByteOffset: digits + 2, as: UInt8.self)
        return digits + 3
    }
}

/// One command: its name and arguments, each a binary-safe string.
///
/// ```swift
/// let command = RedisCommand("SET", "greeting", "hello", "PX", "5000")
/// ```
public struct RedisCommand: Sendable, Hashable, CustomStringConvertible {
    /// The name and the arguments, in wire order.
    public var arguments: [ByteBuffer]

    /// Creates a command from text arguments.
    public init(_ name: String, _ arguments: String...) {
        self.arguments = ([name] + arguments).map { ByteBuffer(string: $0) }
    }

    /// Creates a command from a name and binary arguments.
    public init(_ name: String, arguments: [ByteBuffer]) {
        self.arguments = [ByteBuffer(string: name)] + arguments
    }

    /// The command's name, upper-cased (`GET`).
    public var name: String { arguments.first.map { String(buffer: $0).uppercased() } ?? "" }

    /// The name and the first argument (usually the key); values are left out so they never reach logs.
    public var description: String {
        arguments.count > 1 ? "\(name) \(String(buffer: arguments[1]))" : name
    }
}
