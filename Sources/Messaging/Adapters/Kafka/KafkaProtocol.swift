import Foundation
import NIOCore
import NimbusCore

// The Kafka wire protocol, driven by Apache Kafka's own message definitions: a schema per message
// (generated into KafkaSchemas.swift), one interpreter that writes and reads any version of any of
// them — classic or "flexible" (compact strings, arrays and tagged fields) — and the primitives.

/// A range of message versions, as the definitions write them: `0+`, `3-5`, `7`, `none`.
public struct KafkaVersions: Sendable, Hashable, CustomStringConvertible {
    public let lowest: Int16
    public let highest: Int16

    public init(_ text: String) {
        if text == "none" {
            (lowest, highest) = (1, 0)
        } else if text.hasSuffix("+") {
            (lowest, highest) = (Int16(text.dropLast()) ?? 0, .max)
        } else if let dash = text.firstIndex(of: "-") {
            (lowest, highest) = (Int16(text[..<dash]) ?? 0, Int16(text[text.index(after: dash)...]) ?? 0)
        } else {
            (lowest, highest) = (Int16(text) ?? 0, Int16(text) ?? 0)
        }
    }

    public func contains(_ version: Int16) -> Bool { version >= lowest && version <= highest }
    public var isNone: Bool { lowest > highest }
    public var description: String { isNone ? "none" : highest == .max ? "\(lowest)+" : lowest == highest ? "\(lowest)" : "\(lowest)-\(highest)" }
}

/// The type of a field.
public indirect enum KafkaFieldType: Sendable, Hashable {
    case bool, int8, int16, int32, int64, uint16, uint32, float64, string, bytes, uuid, records
    case array(KafkaFieldType)
    case structure(String, [KafkaField])
}

/// One field of a message definition.
public struct KafkaField: Sendable, Hashable {
    public let name: String
    public let type: KafkaFieldType
    public let versions: KafkaVersions
    public let nullableVersions: KafkaVersions
    public let taggedVersions: KafkaVersions
    public let tag: Int?
    /// The default as the definition writes it (`-1`, `null`, `true`), if it gives one.
    public let defaultValue: String?

    public init(_ name: String, _ type: KafkaFieldType, _ versions: String, nullable: String = "none", tagged: String = "none", tag: Int? = nil,
                default defaultValue: String? = nil) {
        self.name = name
        self.type = type
        self.versions = KafkaVersions(versions)
        self.nullableVersions = KafkaVersions(nullable)
        self.taggedVersions = KafkaVersions(tagged)
        self.tag = tag
        self.defaultValue = defaultValue
    }
}

/// A message definition: a request, a response, or an embedded structure (the consumer protocol's).
public struct KafkaSchema: Sendable, Hashable {
    public let name: String
    public let apiKey: Int16?
    public let validVersions: KafkaVersions
    public let flexibleVersions: KafkaVersions
    public let fields: [KafkaField]

    public init(_ name: String, apiKey: Int?, valid: String, flexible: String, _ fields: [KafkaField]) {
        self.name = name
        self.apiKey = apiKey.map { Int16($0) }
        self.validVersions = KafkaVersions(valid)
        self.flexibleVersions = KafkaVersions(flexible)
        self.fields = fields
    }

    /// Writes `value` as version `version` of this message.
    /// - Throws: `invalidArgument` for a version the message does not have, or a value of the wrong type.
    public func encode(_ value: KafkaStruct, version: Int16, into buffer: inout ByteBuffer) throws {
        guard validVersions.contains(version) else {
            throw NimbusError(.invalidArgument, "\(name) has no version \(version) (valid: \(validVersions))")
        }
        try KafkaCodec(version: version, flexible: flexibleVersions.contains(version)).write(value, fields, into: &buffer, path: name)
    }

    /// Reads version `version` of this message.
    /// - Throws: ``KafkaProtocolError`` when the bytes do not hold one.
    public func decode(_ buffer: inout ByteBuffer, version: Int16) throws -> KafkaStruct {
        guard validVersions.contains(version) else { throw KafkaProtocolError("\(name) has no version \(version)") }
        return try KafkaCodec(version: version, flexible: flexibleVersions.contains(version)).read(fields, from: &buffer, path: name)
    }
}

/// Bytes that are not the Kafka message they should be.
public struct KafkaProtocolError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A field's value.
public indirect enum KafkaValue: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)
    case bytes(ByteBuffer)
    case uuid(UUID)
    case array([KafkaValue])
    case structure(KafkaStruct)
    case null

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: KafkaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, KafkaValue)...) { self = .structure(KafkaStruct(Dictionary(elements) { _, last in last })) }
    public init(nilLiteral: ()) { self = .null }

    public var int: Int64? { if case .int(let value) = self { return value }; return nil }
    public var string: String? { if case .string(let value) = self { return value }; return nil }
    public var bool: Bool? { if case .bool(let value) = self { return value }; return nil }
    public var bytes: ByteBuffer? { if case .bytes(let value) = self { return value }; return nil }
    public var uuid: UUID? { if case .uuid(let value) = self { return value }; return nil }
    public var array: [KafkaValue] { if case .array(let value) = self { return value }; return [] }
    public var structure: KafkaStruct { if case .structure(let value) = self { return value }; return KafkaStruct() }
    public var isNull: Bool { self == .null }
}

/// The values of a message or structure, by field name; fields not set take their defaults.
public struct KafkaStruct: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    public var values: [String: KafkaValue]

    public init(_ values: [String: KafkaValue] = [:]) { self.values = values }
    public init(dictionaryLiteral elements: (String, KafkaValue)...) { self.values = Dictionary(elements) { _, last in last } }

    public subscript(name: String) -> KafkaValue? {
        get { values[name] }
        set { values[name] = newValue }
    }

    public func int(_ name: String) -> Int64 { values[name]?.int ?? 0 }
    public func string(_ name: String) -> String? { values[name]?.string }
    public func bool(_ name: String) -> Bool { values[name]?.bool ?? false }
    public func bytes(_ name: String) -> ByteBuffer? { values[name]?.bytes }
    public func array(_ name: String) -> [KafkaStruct] { (values[name]?.array ?? []).map(\.structure) }
}

/// Writes and reads fields for one version.
struct KafkaCodec {
    let version: Int16
    let flexible: Bool

    // MARK: Writing

    func write(_ value: KafkaStruct, _ fields: [KafkaField], into buffer: inout ByteBuffer, path: String) throws {
        // A misspelt field would silently take its default: names are checked (as the definitions spell them, `timeoutMs` included).
        for name in value.values.keys where !fields.contains(where: { $0.name == name }) {
            throw NimbusError(.invalidArgument, "\(path) has no field '\(name)' (fields: \(fields.map(\.name).joined(separator: ", ")))")
        }
        var tagged: [(Int, KafkaField, KafkaValue)] = []
        for field in fields where field.versions.contains(version) {
            let given = value[field.name]
            if flexible, field.taggedVersions.contains(version), let tag = field.tag {
                // A tagged field is written only when it differs from its default.
                if let given, given != defaultValue(field) { tagged.append((tag, field, given)) }
                continue
            }
            try write(given ?? defaultValue(field), field: field, type: field.type, into: &buffer, path: path + "." + field.name)
        }
        if flexible {
            KafkaPrimitives.writeUnsignedVarint(UInt32(tagged.count), into: &buffer)
            for (tag, field, given) in tagged.sorted(by: { $0.0 < $1.0 }) {
                var body = ByteBuffer()
                try write(given, field: field, type: field.type, into: &body, path: path + "." + field.name)
                KafkaPrimitives.writeUnsignedVarint(UInt32(tag), into: &buffer)
                KafkaPrimitives.writeUnsignedVarint(UInt32(body.readableBytes), into: &buffer)
                buffer.writeBuffer(&body)
            }
        }
    }

    func write(_ value: KafkaValue, field: KafkaField, type: KafkaFieldType, into buffer: inout ByteBuffer, path: String) throws {
        func wrong() -> NimbusError { NimbusError(.invalidArgument, "\(path) must be a \(type.kindName), not \(value)") }
        if value == .null {
            guard field.nullableVersions.contains(version) else { throw NimbusError(.invalidArgument, "\(path) cannot be null in version \(version)") }
            switch type {
            case .string:
                if flexible { KafkaPrimitives.writeUnsignedVarint(0, into: &buffer) } else { buffer.writeInteger(Int16(-1)) }
            case .bytes, .records, .array:
                if flexible { KafkaPrimitives.writeUnsignedVarint(0, into: &buffer) } else { buffer.writeInteger(Int32(-1)) }
            case .structure: buffer.writeInteger(Int8(-1))
            default: throw wrong()
            }
            return
        }
        switch type {
        case .bool: guard case .bool(let flag) = value else { throw wrong() }; buffer.writeInteger(UInt8(flag ? 1 : 0))
        case .int8: buffer.writeInteger(Int8(truncatingIfNeeded: try integer(value, wrong)))
        case .int16: buffer.writeInteger(Int16(truncatingIfNeeded: try integer(value, wrong)))
        case .int32: buffer.writeInteger(Int32(truncatingIfNeeded: try integer(value, wrong)))
        case .int64: buffer.writeInteger(try integer(value, wrong))
        case .uint16: buffer.writeInteger(UInt16(truncatingIfNeeded: try integer(value, wrong)))
        case .uint32: buffer.writeInteger(UInt32(truncatingIfNeeded: try integer(value, wrong)))
        case .float64:
            let number: Double
            switch value { case .float(let x): number = x; case .int(let x): number = Double(x); default: throw wrong() }
            buffer.writeInteger(number.bitPattern)
        case .string:
            guard case .string(let text) = value else { throw wrong() }
            let utf8 = Array(text.utf8)
            if flexible { KafkaPrimitives.writeUnsignedVarint(UInt32(utf8.count + 1), into: &buffer) }
            else {
                guard utf8.count <= Int16.max else { throw NimbusError(.invalidArgument, "\(path) is longer than 32767 bytes") }
                buffer.writeInteger(Int16(utf8.count))
            }
            buffer.writeBytes(utf8)
        case .bytes, .records:
            guard case .bytes(let bytes) = value else { throw wrong() }
            if flexible { KafkaPrimitives.writeUnsignedVarint(UInt32(bytes.readableBytes + 1), into: &buffer) }
            else { buffer.writeInteger(Int32(bytes.readableBytes)) }
            buffer.writeImmutableBuffer(bytes)
        case .uuid:
            guard case .uuid(let uuid) = value else { throw wrong() }
            withUnsafeBytes(of: uuid.uuid) { buffer.writeBytes($0) }
        case .array(let element):
            guard case .array(let items) = value else { throw wrong() }
            if flexible { KafkaPrimitives.writeUnsignedVarint(UInt32(items.count + 1), into: &buffer) }
            else { buffer.writeInteger(Int32(items.count)) }
            let itemField = KafkaField(field.name, element, "0+")
            for (index, item) in items.enumerated() {
                try write(item, field: itemField, type: element, into: &buffer, path: "\(path)[\(index)]")
            }
        case .structure(_, let members):
            guard case .structure(let inner) = value else { throw wrong() }
            if field.nullableVersions.contains(version) { buffer.writeInteger(Int8(1)) }
            try write(inner, members, into: &buffer, path: path)
        }
    }

    private func integer(_ value: KafkaValue, _ wrong: () -> NimbusError) throws -> Int64 {
        guard case .int(let number) = value else { throw wrong() }
        return number
    }

    /// The value a field takes when none is given.
    func defaultValue(_ field: KafkaField) -> KafkaValue {
        if field.defaultValue == "null", field.nullableVersions.contains(version) { return .null }
        switch field.type {
        case .bool: return .bool(field.defaultValue == "true")
        case .int8, .int16, .int32, .int64, .uint16, .uint32:
            guard let text = field.defaultValue else { return .int(0) }
            if text.hasPrefix("0x") { return .int(Int64(text.dropFirst(2), radix: 16) ?? 0) }
            return .int(Int64(text) ?? 0)
        case .float64: return .float(Double(field.defaultValue ?? "0") ?? 0)
        case .string: return .string(field.defaultValue == "null" ? "" : field.defaultValue ?? "")
        case .bytes, .records: return .bytes(ByteBuffer())
        case .uuid: return .uuid(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        case .array: return .array([])
        case .structure: return .structure(KafkaStruct())
        }
    }

    // MARK: Reading

    func read(_ fields: [KafkaField], from buffer: inout ByteBuffer, path: String) throws -> KafkaStruct {
        var result = KafkaStruct()
        var taggedFields: [Int: KafkaField] = [:]
        for field in fields where field.versions.contains(version) {
            if flexible, field.taggedVersions.contains(version), let tag = field.tag {
                taggedFields[tag] = field
                result[field.name] = defaultValue(field)
                continue
            }
            result[field.name] = try read(field: field, type: field.type, from: &buffer, path: path + "." + field.name)
        }
        if flexible {
            let count = try KafkaPrimitives.readUnsignedVarint(&buffer, path)
            var previous = -1
            for _ in 0..<count {
                let tag = Int(try KafkaPrimitives.readUnsignedVarint(&buffer, path))
                let size = Int(try KafkaPrimitives.readUnsignedVarint(&buffer, path))
                guard tag > previous else { throw KafkaProtocolError("\(path): tagged fields out of order (\(tag) after \(previous))") }
                previous = tag
                guard var slice = buffer.readSlice(length: size) else { throw KafkaProtocolError("\(path): tagged field \(tag) is cut short") }
                if let field = taggedFields[tag] {   // unknown tags are skipped, as the protocol says
                    result[field.name] = try read(field: field, type: field.type, from: &slice, path: path + "." + field.name)
                }
            }
        }
        return result
    }

    func read(field: KafkaField, type: KafkaFieldType, from buffer: inout ByteBuffer, path: String) throws -> KafkaValue {
        func take<T: FixedWidthInteger>(_: T.Type) throws -> T {
            guard let value = buffer.readInteger(as: T.self) else { throw KafkaProtocolError("\(path) is cut short") }
            return value
        }
        switch type {
        case .bool: return .bool(try take(UInt8.self) != 0)
        case .int8: return .int(Int64(try take(Int8.self)))
        case .int16: return .int(Int64(try take(Int16.self)))
        case .int32: return .int(Int64(try take(Int32.self)))
        case .int64: return .int(try take(Int64.self))
        case .uint16: return .int(Int64(try take(UInt16.self)))
        case .uint32: return .int(Int64(try take(UInt32.self)))
        case .float64: return .float(Double(bitPattern: try take(UInt64.self)))
        case .uuid:
            guard let bytes = buffer.readBytes(length: 16) else { throw KafkaProtocolError("\(path) is cut short") }
            return .uuid(UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9], bytes[10],
                                     bytes[11], bytes[12], bytes[13], bytes[14], bytes[15])))
        case .string:
            let length = flexible ? Int(try KafkaPrimitives.readUnsignedVarint(&buffer, path)) - 1 : Int(try take(Int16.self))
            if length < 0 { return try null(field, path) }
            guard let text = buffer.readString(length: length) else { throw KafkaProtocolError("\(path): a string of \(length) bytes is cut short") }
            return .string(text)
        case .bytes, .records:
            let length = flexible ? Int(try KafkaPrimitives.readUnsignedVarint(&buffer, path)) - 1 : Int(try take(Int32.self))
            if length < 0 { return try null(field, path) }
            guard let bytes = buffer.readSlice(length: length) else { throw KafkaProtocolError("\(path): \(length) bytes are cut short") }
            return .bytes(bytes)
        case .array(let element):
            let count = flexible ? Int(try KafkaPrimitives.readUnsignedVarint(&buffer, path)) - 1 : Int(try take(Int32.self))
            if count < 0 { return try null(field, path) }
            // Every element takes at least one byte: a count beyond what is left is a lie, not an allocation.
            guard count <= buffer.readableBytes else { throw KafkaProtocolError("\(path): an array of \(count) elements in \(buffer.readableBytes) bytes") }
            let itemField = KafkaField(field.name, element, "0+")
            var items: [KafkaValue] = []
            items.reserveCapacity(count)
            for index in 0..<count { items.append(try read(field: itemField, type: element, from: &buffer, path: "\(path)[\(index)]")) }
            return .array(items)
        case .structure(_, let members):
            if field.nullableVersions.contains(version) {
                if try take(Int8.self) < 0 { return .null }
            }
            return .structure(try read(members, from: &buffer, path: path))
        }
    }

    private func null(_ field: KafkaField, _ path: String) throws -> KafkaValue {
        guard field.nullableVersions.contains(version) else { throw KafkaProtocolError("\(path) is null, which version \(version) does not allow") }
        return .null
    }
}

extension KafkaFieldType {
    var kindName: String {
        switch self {
        case .array: "array"
        case .structure(let name, _): "structure (\(name))"
        default: "\(self)"
        }
    }
}

/// Kafka's variable-length integers (unsigned, and zigzag-signed for records).
public enum KafkaPrimitives {
    public static func writeUnsignedVarint(_ value: UInt32, into buffer: inout ByteBuffer) {
        var value = value
        while value >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.writeInteger(UInt8(value))
    }

    public static func readUnsignedVarint(_ buffer: inout ByteBuffer, _ what: String) throws -> UInt32 {
        var result: UInt32 = 0
        for shift in stride(from: 0, through: 28, by: 7) {
            guard let byte = buffer.readInteger(as: UInt8.self) else { throw KafkaProtocolError("\(what): a varint is cut short") }
            result |= UInt32(byte & 0x7F) << UInt32(shift)
            if byte & 0x80 == 0 { return result }
        }
        throw KafkaProtocolError("\(what): a varint is longer than 5 bytes")
    }

    /// A zigzag varint (records' lengths, deltas and counts).
    public static func writeVarint(_ value: Int64, into buffer: inout ByteBuffer) {
        var zigzag = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        while zigzag >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: zigzag) | 0x80)
            zigzag >>= 7
        }
        buffer.writeInteger(UInt8(zigzag))
    }

    public static func readVarint(_ buffer: inout ByteBuffer, _ what: String) throws -> Int64 {
        var result: UInt64 = 0
        for shift in stride(from: 0, through: 63, by: 7) {
            guard let byte = buffer.readInteger(as: UInt8.self) else { throw KafkaProtocolError("\(what): a varint is cut short") }
            result |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte & 0x80 == 0 { return Int64(bitPattern: result >> 1) ^ -Int64(bitPattern: result & 1) }
        }
        throw KafkaProtocolError("\(what): a varint is longer than 10 bytes")
    }

    /// The bytes a zigzag varint of `value` takes.
    public static func varintSize(_ value: Int64) -> Int {
        var zigzag = UInt64(bitPattern: (value << 1) ^ (value >> 63)), size = 1
        while zigzag >= 0x80 { zigzag >>= 7; size += 1 }
        return size
    }
}

/// Request and response headers and framing.
public enum KafkaFraming {
    /// Writes a whole request: size, header (v1, or v2 for flexible versions), body.
    public static func writeRequest(_ schema: KafkaSchema, _ body: KafkaStruct, version: Int16, correlationID: Int32, clientID: String?,
                                    into buffer: inout ByteBuffer) throws {
        guard let apiKey = schema.apiKey else { throw NimbusError(.invalidArgument, "\(schema.name) is not a request") }
        let sizeIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        buffer.writeInteger(apiKey)
        buffer.writeInteger(version)
        buffer.writeInteger(correlationID)
        if let clientID {
            let utf8 = Array(clientID.utf8)
            buffer.writeInteger(Int16(utf8.count))
            buffer.writeBytes(utf8)
        } else {
            buffer.writeInteger(Int16(-1))
        }
        if schema.flexibleVersions.contains(version) { KafkaPrimitives.writeUnsignedVarint(0, into: &buffer) }
        try schema.encode(body, version: version, into: &buffer)
        buffer.setInteger(Int32(buffer.writerIndex - sizeIndex - 4), at: sizeIndex)
    }

    /// Whether a response uses header v1 (with tagged fields): flexible versions, except ApiVersions (always v0).
    public static func responseHeaderIsFlexible(_ schema: KafkaSchema, version: Int16) -> Bool {
        schema.apiKey != 18 && schema.flexibleVersions.contains(version)
    }

    /// Reads a response's correlation id (and, for flexible headers, skips its tagged fields).
    public static func readResponseHeader(_ buffer: inout ByteBuffer, flexible: Bool) throws -> Int32 {
        guard let correlationID = buffer.readInteger(as: Int32.self) else { throw KafkaProtocolError("a response header is cut short") }
        if flexible {
            let count = try KafkaPrimitives.readUnsignedVarint(&buffer, "response header")
            for _ in 0..<count {
                _ = try KafkaPrimitives.readUnsignedVarint(&buffer, "response header")
                let size = try KafkaPrimitives.readUnsignedVarint(&buffer, "response header")
                guard buffer.readSlice(length: Int(size)) != nil else { throw KafkaProtocolError("a response header's tagged field is cut short") }
            }
        }
        return correlationID
    }
}
