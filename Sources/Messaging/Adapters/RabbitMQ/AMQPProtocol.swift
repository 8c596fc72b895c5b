import Foundation
import NIOCore
import NimbusCore

// AMQP 0-9-1 as RabbitMQ speaks it: frames, field tables, methods and content headers.
// The method table below is the protocol's own (class and method ids, argument names and types, as in
// RabbitMQ's amqp-rabbitmq-0.9.1.json); a test checks it against that file, argument by argument.

/// A value in an AMQP field table, in RabbitMQ's dialect of the 0-9-1 field types.
public enum AMQPValue: Sendable, Hashable, CustomStringConvertible {
    case bool(Bool)
    case int8(Int8)
    case uint8(UInt8)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case float(Float)
    case double(Double)
    case decimal(scale: UInt8, value: UInt32)
    /// A long string (`S`); RabbitMQ's strings are UTF-8.
    case string(String)
    /// A byte array (`x`).
    case bytes([UInt8])
    case array([AMQPValue])
    /// Seconds since 1970 (`T`).
    case timestamp(UInt64)
    case table(AMQPTable)
    case void

    /// The value as text: strings as they are, numbers and booleans written out.
    public var text: String? {
        switch self {
        case .string(let value): value
        case .bool(let value): String(value)
        case .int8(let value): String(value)
        case .uint8(let value): String(value)
        case .int16(let value): String(value)
        case .uint16(let value): String(value)
        case .int32(let value): String(value)
        case .uint32(let value): String(value)
        case .int64(let value): String(value)
        case .timestamp(let value): String(value)
        case .float(let value): String(value)
        case .double(let value): String(value)
        case .bytes(let value): String(bytes: value, encoding: .utf8)
        case .decimal, .array, .table, .void: nil
        }
    }

    /// The value as an integer, if it is one.
    public var integer: Int64? {
        switch self {
        case .int8(let value): Int64(value)
        case .uint8(let value): Int64(value)
        case .int16(let value): Int64(value)
        case .uint16(let value): Int64(value)
        case .int32(let value): Int64(value)
        case .uint32(let value): Int64(value)
        case .int64(let value): value
        case .timestamp(let value): Int64(clamping: value)
        case .string(let value): Int64(value)
        default: nil
        }
    }

    public var description: String {
        switch self {
        case .array(let values): "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .table(let table): table.description
        case .void: "void"
        case .decimal(let scale, let value): "\(value)e-\(scale)"
        default: text ?? "?"
        }
    }
}

/// An AMQP field table: named values, in order (the order is kept on the wire).
public struct AMQPTable: Sendable, Hashable, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// The fields, in wire order.
    public var fields: [Field]

    /// One named value.
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: AMQPValue
        public init(_ name: String, _ value: AMQPValue) { self.name = name; self.value = value }
    }

    /// Creates a table.
    public init(_ fields: [Field] = []) { self.fields = fields }

    public init(dictionaryLiteral elements: (String, AMQPValue)...) {
        self.fields = elements.map { Field($0.0, $0.1) }
    }

    /// The value of the first field called `name`; setting replaces it (or appends).
    public subscript(name: String) -> AMQPValue? {
        get { fields.first { $0.name == name }?.value }
        set {
            if let index = fields.firstIndex(where: { $0.name == name }) {
                if let newValue { fields[index].value = newValue } else { fields.remove(at: index) }
            } else if let newValue {
                fields.append(Field(name, newValue))
            }
        }
    }

    public var isEmpty: Bool { fields.isEmpty }

    public var description: String { "{" + fields.map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "}" }
}

/// The type of a method argument (the protocol's domains, resolved).
public enum AMQPArgumentType: String, Sendable, Hashable {
    case bit, octet, short, long, longlong, shortstr, longstr, table, timestamp
}

/// A method argument's value.
public enum AMQPArgument: Sendable, Hashable {
    case bit(Bool)
    case octet(UInt8)
    case short(UInt16)
    case long(UInt32)
    case longlong(UInt64)
    case shortstr(String)
    case longstr([UInt8])
    case table(AMQPTable)
    case timestamp(UInt64)

    var type: AMQPArgumentType {
        switch self {
        case .bit: .bit
        case .octet: .octet
        case .short: .short
        case .long: .long
        case .longlong: .longlong
        case .shortstr: .shortstr
        case .longstr: .longstr
        case .table: .table
        case .timestamp: .timestamp
        }
    }

    static func zero(_ type: AMQPArgumentType) -> AMQPArgument {
        switch type {
        case .bit: .bit(false)
        case .octet: .octet(0)
        case .short: .short(0)
        case .long: .long(0)
        case .longlong: .longlong(0)
        case .shortstr: .shortstr("")
        case .longstr: .longstr([])
        case .table: .table([:])
        case .timestamp: .timestamp(0)
        }
    }
}

/// The shape of one method: ids, name, arguments, and whether it is a synchronous request or carries content.
public struct AMQPMethodSignature: Sendable, Hashable {
    /// `class.method`, as the specification names it (`basic.deliver`).
    public let name: String
    public let classID: UInt16
    public let methodID: UInt16
    /// The arguments, in wire order.
    public let arguments: [(name: String, type: AMQPArgumentType)]
    /// Whether the peer answers it with a `…-ok` method.
    public let synchronous: Bool
    /// Whether a content header and body frames follow it.
    public let content: Bool

    init(_ name: String, _ classID: UInt16, _ methodID: UInt16, _ arguments: String, synchronous: Bool = false, content: Bool = false) {
        self.name = name
        self.classID = classID
        self.methodID = methodID
        self.arguments = arguments.split(separator: ",").map { argument in
            let parts = argument.split(separator: " ")
            return (String(parts[1]), AMQPArgumentType(rawValue: String(parts[0]))!)
        }
        self.synchronous = synchronous
        self.content = content
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.classID == rhs.classID && lhs.methodID == rhs.methodID }
    public func hash(into hasher: inout Hasher) { hasher.combine(classID); hasher.combine(methodID) }

    /// The methods of the classes Nimbus speaks: connection, channel, exchange, queue, basic, confirm and tx.
    public static let all: [AMQPMethodSignature] = [
        .init("connection.start", 10, 10, "octet version-major, octet version-minor, table server-properties, longstr mechanisms, longstr locales", synchronous: true),
        .init("connection.start-ok", 10, 11, "table client-properties, shortstr mechanism, longstr response, shortstr locale"),
        .init("connection.secure", 10, 20, "longstr challenge", synchronous: true),
        .init("connection.secure-ok", 10, 21, "longstr response"),
        .init("connection.tune", 10, 30, "short channel-max, long frame-max, short heartbeat", synchronous: true),
        .init("connection.tune-ok", 10, 31, "short channel-max, long frame-max, short heartbeat"),
        .init("connection.open", 10, 40, "shortstr virtual-host, shortstr capabilities, bit insist", synchronous: true),
        .init("connection.open-ok", 10, 41, "shortstr known-hosts"),
        .init("connection.close", 10, 50, "short reply-code, shortstr reply-text, short class-id, short method-id", synchronous: true),
        .init("connection.close-ok", 10, 51, ""),
        .init("connection.blocked", 10, 60, "shortstr reason"),
        .init("connection.unblocked", 10, 61, ""),
        .init("connection.update-secret", 10, 70, "longstr new-secret, shortstr reason", synchronous: true),
        .init("connection.update-secret-ok", 10, 71, ""),
        .init("channel.open", 20, 10, "shortstr out-of-band", synchronous: true),
        .init("channel.open-ok", 20, 11, "longstr channel-id"),
        .init("channel.flow", 20, 20, "bit active", synchronous: true),
        .init("channel.flow-ok", 20, 21, "bit active"),
        .init("channel.close", 20, 40, "short reply-code, shortstr reply-text, short class-id, short method-id", synchronous: true),
        .init("channel.close-ok", 20, 41, ""),
        .init("exchange.declare", 40, 10, "short ticket, shortstr exchange, shortstr type, bit passive, bit durable, bit auto-delete, bit internal, bit nowait, table arguments", synchronous: true),
        .init("exchange.declare-ok", 40, 11, ""),
        .init("exchange.delete", 40, 20, "short ticket, shortstr exchange, bit if-unused, bit nowait", synchronous: true),
        .init("exchange.delete-ok", 40, 21, ""),
        .init("exchange.bind", 40, 30, "short ticket, shortstr destination, shortstr source, shortstr routing-key, bit nowait, table arguments", synchronous: true),
        .init("exchange.bind-ok", 40, 31, ""),
        .init("exchange.unbind", 40, 40, "short ticket, shortstr destination, shortstr source, shortstr routing-key, bit nowait, table arguments", synchronous: true),
        .init("exchange.unbind-ok", 40, 51, ""),
        .init("queue.declare", 50, 10, "short ticket, shortstr queue, bit passive, bit durable, bit exclusive, bit auto-delete, bit nowait, table arguments", synchronous: true),
        .init("queue.declare-ok", 50, 11, "shortstr queue, long message-count, long consumer-count"),
        .init("queue.bind", 50, 20, "short ticket, shortstr queue, shortstr exchange, shortstr routing-key, bit nowait, table arguments", synchronous: true),
        .init("queue.bind-ok", 50, 21, ""),
        .init("queue.purge", 50, 30, "short ticket, shortstr queue, bit nowait", synchronous: true),
        .init("queue.purge-ok", 50, 31, "long message-count"),
        .init("queue.delete", 50, 40, "short ticket, shortstr queue, bit if-unused, bit if-empty, bit nowait", synchronous: true),
        .init("queue.delete-ok", 50, 41, "long message-count"),
        .init("queue.unbind", 50, 50, "short ticket, shortstr queue, shortstr exchange, shortstr routing-key, table arguments", synchronous: true),
        .init("queue.unbind-ok", 50, 51, ""),
        .init("basic.qos", 60, 10, "long prefetch-size, short prefetch-count, bit global", synchronous: true),
        .init("basic.qos-ok", 60, 11, ""),
        .init("basic.consume", 60, 20, "short ticket, shortstr queue, shortstr consumer-tag, bit no-local, bit no-ack, bit exclusive, bit nowait, table arguments", synchronous: true),
        .init("basic.consume-ok", 60, 21, "shortstr consumer-tag"),
        .init("basic.cancel", 60, 30, "shortstr consumer-tag, bit nowait", synchronous: true),
        .init("basic.cancel-ok", 60, 31, "shortstr consumer-tag"),
        .init("basic.publish", 60, 40, "short ticket, shortstr exchange, shortstr routing-key, bit mandatory, bit immediate", content: true),
        .init("basic.return", 60, 50, "short reply-code, shortstr reply-text, shortstr exchange, shortstr routing-key", content: true),
        .init("basic.deliver", 60, 60, "shortstr consumer-tag, longlong delivery-tag, bit redelivered, shortstr exchange, shortstr routing-key", content: true),
        .init("basic.get", 60, 70, "short ticket, shortstr queue, bit no-ack", synchronous: true),
        .init("basic.get-ok", 60, 71, "longlong delivery-tag, bit redelivered, shortstr exchange, shortstr routing-key, long message-count", content: true),
        .init("basic.get-empty", 60, 72, "shortstr cluster-id"),
        .init("basic.ack", 60, 80, "longlong delivery-tag, bit multiple"),
        .init("basic.reject", 60, 90, "longlong delivery-tag, bit requeue"),
        .init("basic.recover-async", 60, 100, "bit requeue"),
        .init("basic.recover", 60, 110, "bit requeue", synchronous: true),
        .init("basic.recover-ok", 60, 111, ""),
        .init("basic.nack", 60, 120, "longlong delivery-tag, bit multiple, bit requeue"),
        .init("confirm.select", 85, 10, "bit nowait", synchronous: true),
        .init("confirm.select-ok", 85, 11, ""),
        .init("tx.select", 90, 10, "", synchronous: true),
        .init("tx.select-ok", 90, 11, ""),
        .init("tx.commit", 90, 20, "", synchronous: true),
        .init("tx.commit-ok", 90, 21, ""),
        .init("tx.rollback", 90, 30, "", synchronous: true),
        .init("tx.rollback-ok", 90, 31, ""),
    ]

    static let byID: [UInt32: AMQPMethodSignature] = Dictionary(uniqueKeysWithValues: all.map { (UInt32($0.classID) << 16 | UInt32($0.methodID), $0) })
    static let byName: [String: AMQPMethodSignature] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The signature called `name` (`queue.declare`).
    public static func named(_ name: String) -> AMQPMethodSignature {
        guard let signature = byName[name] else { preconditionFailure("no AMQP method \(name)") }
        return signature
    }
}

/// One method with its arguments.
///
/// ```swift
/// let declare = AMQPMethod("queue.declare", ["queue": .shortstr("orders"), "durable": .bit(true)])
/// ```
public struct AMQPMethod: Sendable, Hashable, CustomStringConvertible {
    public let signature: AMQPMethodSignature
    /// One value per argument of the signature, in its order.
    public var arguments: [AMQPArgument]

    /// Creates a method; arguments not given are zero (false, 0, empty).
    public init(_ name: String, _ values: [String: AMQPArgument] = [:]) {
        let signature = AMQPMethodSignature.named(name)
        for key in values.keys { precondition(signature.arguments.contains { $0.name == key }, "\(name) has no argument \(key)") }
        self.signature = signature
        self.arguments = signature.arguments.map { argument in
            let value = values[argument.name] ?? .zero(argument.type)
            precondition(value.type == argument.type, "\(name).\(argument.name) is a \(argument.type), not a \(value.type)")
            return value
        }
    }

    init(signature: AMQPMethodSignature, arguments: [AMQPArgument]) {
        self.signature = signature
        self.arguments = arguments
    }

    /// `class.method`.
    public var name: String { signature.name }

    /// The argument called `name`.
    public subscript(name: String) -> AMQPArgument? {
        signature.arguments.firstIndex { $0.name == name }.map { arguments[$0] }
    }

    public func string(_ name: String) -> String {
        switch self[name] {
        case .shortstr(let value): value
        case .longstr(let value): String(decoding: value, as: UTF8.self)
        default: ""
        }
    }

    public func integer(_ name: String) -> UInt64 {
        switch self[name] {
        case .octet(let value): UInt64(value)
        case .short(let value): UInt64(value)
        case .long(let value): UInt64(value)
        case .longlong(let value), .timestamp(let value): value
        default: 0
        }
    }

    public func flag(_ name: String) -> Bool {
        if case .bit(let value) = self[name] { return value }
        return false
    }

    public func table(_ name: String) -> AMQPTable {
        if case .table(let value) = self[name] { return value }
        return [:]
    }

    public var description: String { name }
}

/// The properties of a message (the `basic` class's content header).
public struct AMQPProperties: Sendable, Hashable {
    public var contentType: String?
    public var contentEncoding: String?
    public var headers: AMQPTable?
    /// 1 transient, 2 persistent.
    public var deliveryMode: UInt8?
    public var priority: UInt8?
    public var correlationID: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as text.
    public var expiration: String?
    public var messageID: String?
    /// Seconds since 1970.
    public var timestamp: UInt64?
    public var type: String?
    public var userID: String?
    public var appID: String?
    public var clusterID: String?

    public init(contentType: String? = nil, contentEncoding: String? = nil, headers: AMQPTable? = nil, deliveryMode: UInt8? = nil,
                priority: UInt8? = nil, correlationID: String? = nil, replyTo: String? = nil, expiration: String? = nil,
                messageID: String? = nil, timestamp: UInt64? = nil, type: String? = nil, userID: String? = nil, appID: String? = nil,
                clusterID: String? = nil) {
        self.contentType = contentType; self.contentEncoding = contentEncoding; self.headers = headers; self.deliveryMode = deliveryMode
        self.priority = priority; self.correlationID = correlationID; self.replyTo = replyTo; self.expiration = expiration
        self.messageID = messageID; self.timestamp = timestamp; self.type = type; self.userID = userID; self.appID = appID
        self.clusterID = clusterID
    }

    /// Persistent delivery (mode 2): the message is written to disk in durable queues.
    public static let persistent: UInt8 = 2
}

/// What travels in one frame.
public enum AMQPFrame: Sendable, Hashable {
    case method(channel: UInt16, AMQPMethod)
    case header(channel: UInt16, classID: UInt16, bodySize: UInt64, properties: AMQPProperties)
    case body(channel: UInt16, ByteBuffer)
    case heartbeat

    /// The channel it belongs to (0 for the connection).
    public var channel: UInt16 {
        switch self {
        case .method(let channel, _), .header(let channel, _, _, _), .body(let channel, _): channel
        case .heartbeat: 0
        }
    }
}

/// A protocol violation by the peer (or by bytes that are not AMQP): the connection cannot go on.
public struct AMQPFrameError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Reads and writes AMQP 0-9-1 frames.
public enum AMQPWire {
    /// What a client sends first: `AMQP` 0 0 9 1.
    public static let protocolHeader: [UInt8] = [0x41, 0x4D, 0x51, 0x50, 0, 0, 9, 1]
    static let frameEnd: UInt8 = 0xCE
    /// The smallest frame size every peer accepts (the spec's FRAME-MIN-SIZE).
    public static let minimumFrameSize = 4096

    // MARK: Writing

    /// Appends `frame`.
    public static func write(_ frame: AMQPFrame, into buffer: inout ByteBuffer) {
        switch frame {
        case .method(let channel, let method):
            writeFrame(type: 1, channel: channel, into: &buffer) { buffer in
                buffer.writeInteger(method.signature.classID)
                buffer.writeInteger(method.signature.methodID)
                writeArguments(method.arguments, into: &buffer)
            }
        case .header(let channel, let classID, let bodySize, let properties):
            writeFrame(type: 2, channel: channel, into: &buffer) { buffer in
                buffer.writeInteger(classID)
                buffer.writeInteger(UInt16(0))
                buffer.writeInteger(bodySize)
                writeProperties(properties, into: &buffer)
            }
        case .body(let channel, let body):
            writeFrame(type: 3, channel: channel, into: &buffer) { $0.writeImmutableBuffer(body) }
        case .heartbeat:
            writeFrame(type: 8, channel: 0, into: &buffer) { _ in }
        }
    }

    /// Appends a content-carrying method (`basic.publish`) with its header and body, the body split to fit `frameMax`.
    public static func writeContent(_ method: AMQPMethod, channel: UInt16, properties: AMQPProperties, body: ByteBuffer, frameMax: Int,
                                    into buffer: inout ByteBuffer) {
        write(.method(channel: channel, method), into: &buffer)
        write(.header(channel: channel, classID: method.signature.classID, bodySize: UInt64(body.readableBytes), properties: properties), into: &buffer)
        let chunk = max(1, frameMax - 8)
        var rest = body
        while let slice = rest.readSlice(length: min(chunk, rest.readableBytes)), slice.readableBytes > 0 {
            write(.body(channel: channel, slice), into: &buffer)
        }
    }

    static func writeFrame(type: UInt8, channel: UInt16, into buffer: inout ByteBuffer, _ payload: (inout ByteBuffer) -> Void) {
        buffer.writeInteger(type)
        buffer.writeInteger(channel)
        let sizeIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let start = buffer.writerIndex
        payload(&buffer)
        buffer.setInteger(UInt32(buffer.writerIndex - start), at: sizeIndex)
        buffer.writeInteger(frameEnd)
    }

    static func writeArguments(_ arguments: [AMQPArgument], into buffer: inout ByteBuffer) {
        var bits: UInt8 = 0, bitCount = 0
        func flushBits(_ buffer: inout ByteBuffer) {
            if bitCount > 0 { buffer.writeInteger(bits); bits = 0; bitCount = 0 }
        }
        for argument in arguments {
            if case .bit(let value) = argument {
                if bitCount == 8 { flushBits(&buffer) }
                if value { bits |= 1 << bitCount }
                bitCount += 1
                continue
            }
            flushBits(&buffer)
            switch argument {
            case .bit: break
            case .octet(let value): buffer.writeInteger(value)
            case .short(let value): buffer.writeInteger(value)
            case .long(let value): buffer.writeInteger(value)
            case .longlong(let value), .timestamp(let value): buffer.writeInteger(value)
            case .shortstr(let value): writeShortString(value, into: &buffer)
            case .longstr(let value):
                buffer.writeInteger(UInt32(value.count))
                buffer.writeBytes(value)
            case .table(let table): writeTable(table, into: &buffer)
            }
        }
        flushBits(&buffer)
    }

    /// A short string holds at most 255 bytes; longer text is cut at a character boundary (callers validate names first).
    static func writeShortString(_ value: String, into buffer: inout ByteBuffer) {
        var utf8 = Array(value.utf8)
        if utf8.count > 255 {
            utf8 = Array(utf8.prefix(255))
            while let last = utf8.last, last & 0xC0 == 0x80 { utf8.removeLast() }
            if let last = utf8.last, last >= 0xC0 { utf8.removeLast() }
        }
        buffer.writeInteger(UInt8(utf8.count))
        buffer.writeBytes(utf8)
    }

    public static func writeTable(_ table: AMQPTable, into buffer: inout ByteBuffer) {
        let sizeIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let start = buffer.writerIndex
        for field in table.fields {
            writeShortString(field.name, into: &buffer)
            writeValue(field.value, into: &buffer)
        }
        buffer.setInteger(UInt32(buffer.writerIndex - start), at: sizeIndex)
    }

    static func writeValue(_ value: AMQPValue, into buffer: inout ByteBuffer) {
        func tag(_ character: Character) { buffer.writeInteger(character.asciiValue!) }
        switch value {
        case .bool(let value): tag("t"); buffer.writeInteger(UInt8(value ? 1 : 0))
        case .int8(let value): tag("b"); buffer.writeInteger(value)
        case .uint8(let value): tag("B"); buffer.writeInteger(value)
        case .int16(let value): tag("s"); buffer.writeInteger(value)
        case .uint16(let value): tag("u"); buffer.writeInteger(value)
        case .int32(let value): tag("I"); buffer.writeInteger(value)
        case .uint32(let value): tag("i"); buffer.writeInteger(value)
        case .int64(let value): tag("l"); buffer.writeInteger(value)
        case .float(let value): tag("f"); buffer.writeInteger(value.bitPattern)
        case .double(let value): tag("d"); buffer.writeInteger(value.bitPattern)
        case .decimal(let scale, let value): tag("D"); buffer.writeInteger(scale); buffer.writeInteger(value)
        case .string(let value):
            tag("S")
            let utf8 = Array(value.utf8)
            buffer.writeInteger(UInt32(utf8.count))
            buffer.writeBytes(utf8)
        case .bytes(let value): tag("x"); buffer.writeInteger(UInt32(value.count)); buffer.writeBytes(value)
        case .array(let values):
            tag("A")
            let sizeIndex = buffer.writerIndex
            buffer.writeInteger(UInt32(0))
            let start = buffer.writerIndex
            for value in values { writeValue(value, into: &buffer) }
            buffer.setInteger(UInt32(buffer.writerIndex - start), at: sizeIndex)
        case .timestamp(let value): tag("T"); buffer.writeInteger(value)
        case .table(let table): tag("F"); writeTable(table, into: &buffer)
        case .void: tag("V")
        }
    }

    static let propertyOrder: [(flag: UInt16, type: AMQPArgumentType)] = [
        (1 << 15, .shortstr), (1 << 14, .shortstr), (1 << 13, .table), (1 << 12, .octet), (1 << 11, .octet), (1 << 10, .shortstr),
        (1 << 9, .shortstr), (1 << 8, .shortstr), (1 << 7, .shortstr), (1 << 6, .timestamp), (1 << 5, .shortstr), (1 << 4, .shortstr),
        (1 << 3, .shortstr), (1 << 2, .shortstr),
    ]

    static func writeProperties(_ properties: AMQPProperties, into buffer: inout ByteBuffer) {
        let values: [AMQPArgument?] = [
            properties.contentType.map { .shortstr($0) }, properties.contentEncoding.map { .shortstr($0) }, properties.headers.map { .table($0) },
            properties.deliveryMode.map { .octet($0) }, properties.priority.map { .octet($0) }, properties.correlationID.map { .shortstr($0) },
            properties.replyTo.map { .shortstr($0) }, properties.expiration.map { .shortstr($0) }, properties.messageID.map { .shortstr($0) },
            properties.timestamp.map { .timestamp($0) }, properties.type.map { .shortstr($0) }, properties.userID.map { .shortstr($0) },
            properties.appID.map { .shortstr($0) }, properties.clusterID.map { .shortstr($0) },
        ]
        var flags: UInt16 = 0
        for (index, value) in values.enumerated() where value != nil { flags |= propertyOrder[index].flag }
        buffer.writeInteger(flags)
        writeArguments(values.compactMap { $0 }, into: &buffer)
    }

    // MARK: Reading

    /// Reads one whole frame from `buffer`, or returns `nil` (consuming nothing) until it has arrived.
    /// - Throws: ``AMQPFrameError`` for a frame larger than `maximumSize`, a missing frame-end octet, an
    ///   unknown frame type or method, or arguments that do not fit their frame.
    public static func readFrame(_ buffer: inout ByteBuffer, maximumSize: Int) throws -> AMQPFrame? {
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let channel = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self),
              let size = buffer.getInteger(at: buffer.readerIndex + 3, as: UInt32.self) else { return nil }
        if type == 0x41 { throw AMQPFrameError("the server refused the protocol version (it answered with its own protocol header)") }
        guard Int(size) <= maximumSize else { throw AMQPFrameError("a frame of \(size) bytes is larger than the negotiated \(maximumSize)") }
        guard buffer.readableBytes >= 8 + Int(size) else { return nil }
        guard buffer.getInteger(at: buffer.readerIndex + 7 + Int(size), as: UInt8.self) == frameEnd else {
            throw AMQPFrameError("a frame does not end with the frame-end octet 0xCE")
        }
        buffer.moveReaderIndex(forwardBy: 7)
        var payload = buffer.readSlice(length: Int(size))!
        buffer.moveReaderIndex(forwardBy: 1)
        switch type {
        case 1:
            guard let classID = payload.readInteger(as: UInt16.self), let methodID = payload.readInteger(as: UInt16.self) else {
                throw AMQPFrameError("a method frame is shorter than its class and method ids")
            }
            guard let signature = AMQPMethodSignature.byID[UInt32(classID) << 16 | UInt32(methodID)] else {
                throw AMQPFrameError("unknown method \(classID).\(methodID)")
            }
            let arguments = try readArguments(signature.arguments.map(\.type), from: &payload, in: signature.name)
            guard payload.readableBytes == 0 else { throw AMQPFrameError("\(signature.name) has \(payload.readableBytes) bytes after its arguments") }
            return .method(channel: channel, AMQPMethod(signature: signature, arguments: arguments))
        case 2:
            guard let classID = payload.readInteger(as: UInt16.self), payload.readInteger(as: UInt16.self) != nil,
                  let bodySize = payload.readInteger(as: UInt64.self) else { throw AMQPFrameError("a content header frame is too short") }
            return .header(channel: channel, classID: classID, bodySize: bodySize, properties: try readProperties(from: &payload))
        case 3:
            return .body(channel: channel, payload)
        case 8:
            return .heartbeat
        default:
            throw AMQPFrameError("unknown frame type \(type)")
        }
    }

    static func readArguments(_ types: [AMQPArgumentType], from buffer: inout ByteBuffer, in what: String) throws -> [AMQPArgument] {
        var arguments: [AMQPArgument] = []
        var bits: UInt8 = 0, bitIndex = 8
        for type in types {
            if type == .bit {
                if bitIndex == 8 {
                    guard let byte = buffer.readInteger(as: UInt8.self) else { throw AMQPFrameError("\(what) is cut short") }
                    bits = byte; bitIndex = 0
                }
                arguments.append(.bit(bits & (1 << bitIndex) != 0))
                bitIndex += 1
                continue
            }
            bitIndex = 8
            switch type {
            case .bit: break
            case .octet: arguments.append(.octet(try read(&buffer, what)))
            case .short: arguments.append(.short(try read(&buffer, what)))
            case .long: arguments.append(.long(try read(&buffer, what)))
            case .longlong: arguments.append(.longlong(try read(&buffer, what)))
            case .timestamp: arguments.append(.timestamp(try read(&buffer, what)))
            case .shortstr: arguments.append(.shortstr(try readShortString(&buffer, what)))
            case .longstr:
                let length: UInt32 = try read(&buffer, what)
                guard let bytes = buffer.readBytes(length: Int(length)) else { throw AMQPFrameError("\(what) is cut short") }
                arguments.append(.longstr(bytes))
            case .table: arguments.append(.table(try readTable(&buffer, what, depth: 0)))
            }
        }
        return arguments
    }

    static func read<T: FixedWidthInteger>(_ buffer: inout ByteBuffer, _ what: String) throws -> T {
        guard let value = buffer.readInteger(as: T.self) else { throw AMQPFrameError("\(what) is cut short") }
        return value
    }

    static func readShortString(_ buffer: inout ByteBuffer, _ what: String) throws -> String {
        let length: UInt8 = try read(&buffer, what)
        guard let text = buffer.readString(length: Int(length)) else { throw AMQPFrameError("\(what) is cut short") }
        return text
    }

    static let maximumNesting = 32

    static func readTable(_ buffer: inout ByteBuffer, _ what: String, depth: Int) throws -> AMQPTable {
        guard depth < maximumNesting else { throw AMQPFrameError("\(what) nests tables more than \(maximumNesting) deep") }
        let size: UInt32 = try read(&buffer, what)
        guard var slice = buffer.readSlice(length: Int(size)) else { throw AMQPFrameError("a table in \(what) is longer than its frame") }
        var table = AMQPTable()
        while slice.readableBytes > 0 {
            let name = try readShortString(&slice, what)
            table.fields.append(.init(name, try readValue(&slice, what, depth: depth)))
        }
        return table
    }

    static func readValue(_ buffer: inout ByteBuffer, _ what: String, depth: Int) throws -> AMQPValue {
        let tag: UInt8 = try read(&buffer, what)
        switch Character(Unicode.Scalar(tag)) {
        case "t": return .bool(try read(&buffer, what) as UInt8 != 0)
        case "b": return .int8(try read(&buffer, what))
        case "B": return .uint8(try read(&buffer, what))
        case "s": return .int16(try read(&buffer, what))
        case "u": return .uint16(try read(&buffer, what))
        case "I": return .int32(try read(&buffer, what))
        case "i": return .uint32(try read(&buffer, what))
        case "l": return .int64(try read(&buffer, what))
        case "f": return .float(Float(bitPattern: try read(&buffer, what)))
        case "d": return .double(Double(bitPattern: try read(&buffer, what)))
        case "D": return .decimal(scale: try read(&buffer, what), value: try read(&buffer, what))
        case "S", "x":
            let length: UInt32 = try read(&buffer, what)
            guard let bytes = buffer.readBytes(length: Int(length)) else { throw AMQPFrameError("a string in \(what) is longer than its table") }
            return tag == UInt8(ascii: "S") ? .string(String(decoding: bytes, as: UTF8.self)) : .bytes(bytes)
        case "A":
            guard depth < maximumNesting else { throw AMQPFrameError("\(what) nests arrays more than \(maximumNesting) deep") }
            let size: UInt32 = try read(&buffer, what)
            guard var slice = buffer.readSlice(length: Int(size)) else { throw AMQPFrameError("an array in \(what) is longer than its table") }
            var values: [AMQPValue] = []
            while slice.readableBytes > 0 { values.append(try readValue(&slice, what, depth: depth + 1)) }
            return .array(values)
        case "T": return .timestamp(try read(&buffer, what))
        case "F": return .table(try readTable(&buffer, what, depth: depth + 1))
        case "V": return .void
        default: throw AMQPFrameError("unknown field type '\(Character(Unicode.Scalar(tag)))' (0x\(String(tag, radix: 16))) in \(what)")
        }
    }

    static func readProperties(from buffer: inout ByteBuffer) throws -> AMQPProperties {
        let flags: UInt16 = try read(&buffer, "a content header")
        guard flags & 1 == 0 else { throw AMQPFrameError("a content header continues its property flags (not used by basic)") }
        var properties = AMQPProperties()
        var values: [AMQPArgument?] = []
        for (flag, type) in propertyOrder {
            values.append(flags & flag != 0 ? try readArguments([type], from: &buffer, in: "a content header")[0] : nil)
        }
        func string(_ index: Int) -> String? { if case .shortstr(let value) = values[index] { return value }; return nil }
        func octet(_ index: Int) -> UInt8? { if case .octet(let value) = values[index] { return value }; return nil }
        properties.contentType = string(0)
        properties.contentEncoding = string(1)
        if case .table(let table) = values[2] { properties.headers = table }
        properties.deliveryMode = octet(3)
        properties.priority = octet(4)
        properties.correlationID = string(5)
        properties.replyTo = string(6)
        properties.expiration = string(7)
        properties.messageID = string(8)
        if case .timestamp(let value) = values[9] { properties.timestamp = value }
        properties.type = string(10)
        properties.userID = string(11)
        properties.appID = string(12)
        properties.clusterID = string(13)
        return properties
    }
}

/// Splits the byte stream into frames (for a NIO pipeline).
struct AMQPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = AMQPFrame
    let maximumSize: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try AMQPWire.readFrame(&buffer, maximumSize: maximumSize) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }
}
