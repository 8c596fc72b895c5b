import Foundation

/// Any JSON value, for payloads whose shape is only known at run time (tool arguments,
/// vendor extensions, form bodies, schema checks).
///
/// ```swift
/// let value: JSONValue = ["model": "gpt-4o", "n": 2, "stream": true]
/// let data = try JSONEncoder().encode(value)
/// ```
public enum JSONValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else if let value = try? container.decode([String: JSONValue].self) { self = .object(value) }
        else { throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value") }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if value.rounded() == value, abs(value) < 9.007e15 { try container.encode(Int64(value)) } else { try container.encode(value) }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Decodes JSON bytes. - Throws: `invalidArgument` with the parser's reason.
    public static func parse(_ data: some DataProtocol) throws -> JSONValue {
        do { return try JSONDecoder().decode(JSONValue.self, from: Data(data)) }
        catch { throw NimbusError(.invalidArgument, "malformed JSON: \(error)", underlying: error) }
    }

    /// Converts any `Encodable` value through JSON.
    public init(encoding value: some Encodable, encoder: JSONEncoder = JSONEncoder()) throws {
        self = try JSONDecoder().decode(JSONValue.self, from: try encoder.encode(value))
    }

    /// Decodes this value as `T`.
    public func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(T.self, from: try JSONEncoder().encode(self))
    }

    /// Compact JSON text with sorted keys.
    public var description: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "<invalid JSON>"
    }

    /// The JSON type name: `null`, `boolean`, `number`, `string`, `array`, `object`.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// The member `key` of an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// The string, if this is one.
    public var stringValue: String? { if case .string(let v) = self { v } else { nil } }
    /// The number, if this is one.
    public var numberValue: Double? { if case .number(let v) = self { v } else { nil } }
    /// The boolean, if this is one.
    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    /// The elements, if this is an array.
    public var arrayValue: [JSONValue]? { if case .array(let v) = self { v } else { nil } }
    /// The members, if this is an object.
    public var objectValue: [String: JSONValue]? { if case .object(let v) = self { v } else { nil } }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

/// A coding key for any string: for types whose JSON has open-ended keys (a vendor request with
/// pass-through fields, a map decoded field by field).
public struct AnyCodingKey: CodingKey, Hashable, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }
    /// A key for `string`.
    public init(_ string: String) { stringValue = string }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

/// A JSON field that is either a string or an array — OpenAI's `content` and `stop`, Anthropic's
/// `system` and tool-result `content` — decoded as whichever it is and written back the same way.
public enum StringOrArray<Element: Codable & Sendable & Hashable>: Codable, Sendable, Hashable {
    /// The string form.
    case string(String)
    /// The array form.
    case array([Element])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) { self = .string(text) } else { self = .array(try container.decode([Element].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text): try container.encode(text)
        case .array(let elements): try container.encode(elements)
        }
    }
}

extension StringOrArray where Element == String {
    /// The strings, one or many.
    public var values: [String] {
        switch self {
        case .string(let value): [value]
        case .array(let values): values
        }
    }
}

extension JSONValue {
    /// This object with `extra`'s members added where it has none; a member that is an object on both
    /// sides gets the same treatment one level down. Nothing already set is replaced — for caller-supplied
    /// provider options, which may add to a request but never override what the adapter or operator set.
    ///
    /// ```swift
    /// let body: JSONValue = ["model": "m", "options": ["num_ctx": 4096]]
    /// body.addingMissing(["model": "other", "options": ["num_ctx": 1, "top_k": 5]])
    /// // ["model": "m", "options": ["num_ctx": 4096, "top_k": 5]]
    /// ```
    public func addingMissing(_ extra: [String: JSONValue]) -> JSONValue {
        guard case .object(var members) = self else { return self }
        for (key, value) in extra {
            switch (members[key], value) {
            case (nil, _): members[key] = value
            case (.object?, .object(let nested)): members[key] = members[key]?.addingMissing(nested)
            default: continue
            }
        }
        return .object(members)
    }
}
