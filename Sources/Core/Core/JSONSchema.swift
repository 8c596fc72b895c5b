import Foundation

/// JSON Schema as the LLM providers and MCP take it: derived from a `Decodable` type, and checked
/// against a value with errors a person (or a model) can act on.
///
/// ```swift
/// struct WeatherInput: Codable { var city: String; var unit: Unit?; enum Unit: String, Codable, CaseIterable { case c, f } }
/// let schema = try JSONSchema.derive(WeatherInput.self)
/// // {"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},
/// //  "required":["city"],"additionalProperties":false}
/// let problems = JSONSchema.validate(["city": 3], against: schema)   // ["/city: expected string, got number 3"]
/// ```
///
/// Derivation decodes the type once with a recording decoder, so it sees exactly the keys and types
/// the type's `init(from:)` asks for: `decode` makes a property required, `decodeIfPresent` optional.
/// String enums are listed when the enum is `CaseIterable`; a type can give its own schema with
/// ``JSONSchemaProviding`` and describe its properties with ``JSONSchemaDescribing``.
public enum JSONSchema {
    /// Derives the schema of `type`. - Throws: `invalidArgument` when the type's decoding cannot be
    /// followed (an enum that is not `CaseIterable`, a custom decoder that rejects placeholder values).
    public static func derive<T: Decodable>(_ type: T.Type) throws -> JSONValue {
        var reflector = Reflector()
        do { return try reflector.schema(of: type).json }
        catch let error as NimbusError { throw error }
        catch {
            throw NimbusError(.invalidArgument, "cannot derive a JSON Schema from \(T.self): \(error); make the type JSONSchemaProviding to give its schema",
                              underlying: error)
        }
    }

    /// Checks `value` against `schema` (the subset providers use: type, enum, const, properties,
    /// required, additionalProperties, items, min/max items and length, numeric bounds, multipleOf,
    /// pattern, formats date-time/date/uuid/email/uri, anyOf/oneOf/allOf/not, local `$ref`).
    /// - Returns: every violation, each starting with its JSON Pointer; empty when the value fits.
    public static func validate(_ value: JSONValue, against schema: JSONValue) -> [String] {
        var problems: [String] = []
        Validator(root: schema).check(value, schema, path: "", into: &problems)
        return problems
    }
}

/// A type that states its own schema (used instead of derivation).
public protocol JSONSchemaProviding {
    /// The schema of the type's JSON form.
    static var jsonSchema: JSONValue { get }
}

/// A type whose properties carry descriptions (by coding key), which tell the model what to send.
public protocol JSONSchemaDescribing {
    /// Descriptions by property name.
    static var schemaDescriptions: [String: String] { get }
}

// MARK: - Derivation

/// Markers that let derivation see through generic containers.
private protocol SchemaOptional { static var wrapped: any Decodable.Type { get } }
extension Optional: SchemaOptional where Wrapped: Decodable { static var wrapped: any Decodable.Type { Wrapped.self } }
private protocol SchemaSequence { static var element: any Decodable.Type { get }; static var unique: Bool { get } }
extension Array: SchemaSequence where Element: Decodable { static var element: any Decodable.Type { Element.self }; static var unique: Bool { false } }
extension Set: SchemaSequence where Element: Decodable { static var element: any Decodable.Type { Element.self }; static var unique: Bool { true } }
private protocol SchemaDictionary { static var value: any Decodable.Type { get } }
extension Dictionary: SchemaDictionary where Key == String, Value: Decodable { static var value: any Decodable.Type { Value.self } }

private struct Derived {
    var json: JSONValue
    var placeholder: Any
}

private struct Reflector {
    var inProgress: Set<ObjectIdentifier> = []

    mutating func schema(of type: any Decodable.Type) throws -> Derived {
        if let provider = type as? any JSONSchemaProviding.Type {
            return Derived(json: provider.jsonSchema, placeholder: try placeholderDecoding(type))
        }
        switch type {
        case is String.Type: return Derived(json: ["type": "string"], placeholder: "")
        case is Bool.Type: return Derived(json: ["type": "boolean"], placeholder: false)
        case is Int.Type: return Derived(json: ["type": "integer"], placeholder: 0 as Int)
        case is Int64.Type: return Derived(json: ["type": "integer"], placeholder: 0 as Int64)
        case is Int32.Type: return Derived(json: ["type": "integer"], placeholder: 0 as Int32)
        case is Int16.Type: return Derived(json: ["type": "integer"], placeholder: 0 as Int16)
        case is Int8.Type: return Derived(json: ["type": "integer"], placeholder: 0 as Int8)
        case is UInt.Type: return Derived(json: ["type": "integer", "minimum": 0], placeholder: 0 as UInt)
        case is UInt64.Type: return Derived(json: ["type": "integer", "minimum": 0], placeholder: 0 as UInt64)
        case is UInt32.Type: return Derived(json: ["type": "integer", "minimum": 0], placeholder: 0 as UInt32)
        case is UInt16.Type: return Derived(json: ["type": "integer", "minimum": 0], placeholder: 0 as UInt16)
        case is UInt8.Type: return Derived(json: ["type": "integer", "minimum": 0], placeholder: 0 as UInt8)
        case is Double.Type: return Derived(json: ["type": "number"], placeholder: 0 as Double)
        case is Float.Type: return Derived(json: ["type": "number"], placeholder: 0 as Float)
        case is Decimal.Type: return Derived(json: ["type": "number"], placeholder: Decimal(0))
        case is Date.Type: return Derived(json: ["type": "string", "format": "date-time"], placeholder: Date(timeIntervalSince1970: 0))
        case is URL.Type: return Derived(json: ["type": "string", "format": "uri"], placeholder: URL(string: "https://example.com")!)
        case is UUID.Type: return Derived(json: ["type": "string", "format": "uuid"], placeholder: UUID())
        case is Data.Type: return Derived(json: ["type": "string", "contentEncoding": "base64"], placeholder: Data())
        case is JSONValue.Type: return Derived(json: [:], placeholder: JSONValue.null)
        default: break
        }
        if let optional = type as? any SchemaOptional.Type {
            let inner = try schema(of: optional.wrapped)
            return Derived(json: inner.json, placeholder: try placeholderDecoding(type))
        }
        if let sequence = type as? any SchemaSequence.Type {
            var json: [String: JSONValue] = ["type": "array", "items": try schema(of: sequence.element).json]
            if sequence.unique { json["uniqueItems"] = true }
            return Derived(json: .object(json), placeholder: try placeholderDecoding(type))
        }
        if let dictionary = type as? any SchemaDictionary.Type {
            let value = try schema(of: dictionary.value).json
            return Derived(json: ["type": "object", "additionalProperties": value], placeholder: try placeholderDecoding(type))
        }
        if let values = enumValues(type) {
            let placeholder = try placeholderDecoding(type, enumValue: values.first)
            let json: JSONValue = values.allSatisfy { $0.stringValue != nil } ? ["type": "string", "enum": .array(values)]
                : values.allSatisfy { $0.numberValue != nil } ? ["type": "integer", "enum": .array(values)] : ["enum": .array(values)]
            return Derived(json: json, placeholder: placeholder)
        }
        let id = ObjectIdentifier(type)
        guard !inProgress.contains(id) else {
            throw NimbusError(.invalidArgument, "\(type) refers to itself; recursive types need JSONSchemaProviding")
        }
        inProgress.insert(id)
        defer { inProgress.remove(id) }
        let recorder = Recorder(reflector: self)
        let value = try type.init(from: recorder)
        var json = recorder.result()
        if let described = type as? any JSONSchemaDescribing.Type, case .object(var members) = json, case .object(var properties)? = members["properties"] {
            for (key, text) in described.schemaDescriptions {
                if case .object(var property)? = properties[key] {
                    property["description"] = .string(text)
                    properties[key] = .object(property)
                }
            }
            members["properties"] = .object(properties)
            json = .object(members)
        }
        return Derived(json: json, placeholder: value)
    }

    /// Decodes the type from a recorder so generic containers produce a value of the right type.
    func placeholderDecoding(_ type: any Decodable.Type, enumValue: JSONValue? = nil) throws -> Any {
        try type.init(from: Recorder(reflector: self, enumValue: enumValue))
    }

    /// The raw values of a `CaseIterable & RawRepresentable` enum.
    func enumValues(_ type: any Decodable.Type) -> [JSONValue]? {
        guard let iterable = type as? any CaseIterable.Type else { return nil }
        func cases<C: CaseIterable>(_ type: C.Type) -> [Any] { Array(type.allCases) }
        let values: [JSONValue] = cases(iterable).compactMap { value in
            guard let raw = (value as? any RawRepresentable)?.rawValue else { return nil }
            if let string = raw as? String { return .string(string) }
            if let int = raw as? Int { return .number(Double(int)) }
            return nil
        }
        return values.isEmpty ? nil : values
    }
}

/// A decoder that answers every request with a placeholder and writes down what was asked.
private final class Recorder: Decoder {
    var reflector: Reflector
    let enumValue: JSONValue?
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]
    var properties: [(key: String, schema: JSONValue, required: Bool)] = []
    var single: JSONValue?
    var items: JSONValue?

    init(reflector: Reflector, enumValue: JSONValue? = nil) {
        self.reflector = reflector
        self.enumValue = enumValue
    }

    func result() -> JSONValue {
        if let single { return single }
        if let items { return ["type": "array", "items": items] }
        var members: [String: JSONValue] = [:]
        for property in properties { members[property.key] = property.schema }
        return ["type": "object", "properties": .object(members),
                "required": .array(properties.filter(\.required).map { .string($0.key) }), "additionalProperties": false]
    }

    func property(_ key: String, _ type: any Decodable.Type, required: Bool) throws -> Any {
        let derived = try reflector.schema(of: type)
        if let index = properties.firstIndex(where: { $0.key == key }) {
            properties[index] = (key, derived.json, required || properties[index].required)
        } else {
            properties.append((key, derived.json, required))
        }
        return derived.placeholder
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Keyed<Key>(recorder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(recorder: self) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(recorder: self) }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let recorder: Recorder
        var codingPath: [any CodingKey] { recorder.codingPath }
        var allKeys: [Key] { [] }
        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            guard let value = try recorder.property(key.stringValue, type, required: true) as? T else {
                throw NimbusError(.invalidArgument, "no placeholder of type \(T.self) for '\(key.stringValue)'")
            }
            return value
        }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            try recorder.property(key.stringValue, type, required: false) as? T
        }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try recorder.property(key.stringValue, type, required: false) as? Bool }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try recorder.property(key.stringValue, type, required: false) as? String }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try recorder.property(key.stringValue, type, required: false) as? Double }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try recorder.property(key.stringValue, type, required: false) as? Float }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try recorder.property(key.stringValue, type, required: false) as? Int }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try recorder.property(key.stringValue, type, required: false) as? Int8 }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try recorder.property(key.stringValue, type, required: false) as? Int16 }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try recorder.property(key.stringValue, type, required: false) as? Int32 }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try recorder.property(key.stringValue, type, required: false) as? Int64 }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try recorder.property(key.stringValue, type, required: false) as? UInt }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try recorder.property(key.stringValue, type, required: false) as? UInt8 }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try recorder.property(key.stringValue, type, required: false) as? UInt16 }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try recorder.property(key.stringValue, type, required: false) as? UInt32 }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try recorder.property(key.stringValue, type, required: false) as? UInt64 }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            throw NimbusError(.invalidArgument, "nested containers ('\(key.stringValue)') cannot be derived; use a nested Decodable type")
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            throw NimbusError(.invalidArgument, "nested containers ('\(key.stringValue)') cannot be derived; use a nested Decodable type")
        }
        func superDecoder() throws -> any Decoder { recorder }
        func superDecoder(forKey key: Key) throws -> any Decoder { recorder }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let recorder: Recorder
        var codingPath: [any CodingKey] { recorder.codingPath }
        var count: Int? { 1 }
        var currentIndex = 0
        var isAtEnd: Bool { currentIndex >= 1 }
        mutating func decodeNil() throws -> Bool { false }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let derived = try recorder.reflector.schema(of: type)
            recorder.items = derived.json
            currentIndex += 1
            guard let value = derived.placeholder as? T else { throw NimbusError(.invalidArgument, "no placeholder of type \(T.self)") }
            return value
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            throw NimbusError(.invalidArgument, "nested containers in arrays cannot be derived; use a Decodable element type")
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            throw NimbusError(.invalidArgument, "nested containers in arrays cannot be derived; use a Decodable element type")
        }
        mutating func superDecoder() throws -> any Decoder { recorder }
    }

    struct Single: SingleValueDecodingContainer {
        let recorder: Recorder
        var codingPath: [any CodingKey] { recorder.codingPath }
        func decodeNil() -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            if let enumValue = recorder.enumValue {
                if T.self == String.self, let string = enumValue.stringValue { return string as! T }
                if T.self == Int.self, let number = enumValue.numberValue { return Int(number) as! T }
            }
            let derived = try recorder.reflector.schema(of: type)
            recorder.single = derived.json
            guard let value = derived.placeholder as? T else { throw NimbusError(.invalidArgument, "no placeholder of type \(T.self)") }
            return value
        }
    }
}

// MARK: - Validation

private struct Validator {
    let root: JSONValue

    func resolve(_ schema: JSONValue) -> JSONValue {
        guard let reference = schema["$ref"]?.stringValue, reference.hasPrefix("#") else { return schema }
        var node = root
        for token in reference.dropFirst().split(separator: "/") {
            let key = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard let next = node[key] else { return [:] }
            node = next
        }
        return node
    }

    static func describe(_ value: JSONValue) -> String {
        let text = value.description
        let shown = text.count > 60 ? String(text.prefix(57)) + "..." : text
        return value == .null ? "null" : "\(value.typeName) \(shown)"
    }

    func fits(_ value: JSONValue, type name: String) -> Bool {
        switch (name, value) {
        case ("string", .string), ("boolean", .bool), ("array", .array), ("object", .object), ("null", .null), ("number", .number): return true
        case ("integer", .number(let number)): return number.rounded() == number
        default: return false
        }
    }

    func check(_ value: JSONValue, _ rawSchema: JSONValue, path: String, into problems: inout [String]) {
        let schema = resolve(rawSchema)
        if schema == .bool(false) { problems.append("\(path.isEmpty ? "/" : path): no value is allowed here"); return }
        guard case .object(let keywords) = schema else { return }
        let at = path.isEmpty ? "/" : path
        if let type = keywords["type"] {
            let names = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue].compactMap { $0 }
            if !names.isEmpty, !names.contains(where: { fits(value, type: $0) }) {
                problems.append("\(at): expected \(names.joined(separator: " or ")), got \(Self.describe(value))")
                return
            }
        }
        if let allowed = keywords["enum"]?.arrayValue, !allowed.contains(value) {
            problems.append("\(at): must be one of \(allowed.map(\.description).joined(separator: ", ")), got \(Self.describe(value))")
        }
        if let constant = keywords["const"], constant != value {
            problems.append("\(at): must be \(constant.description), got \(Self.describe(value))")
        }
        switch value {
        case .object(let members): checkObject(members, keywords, path: path, into: &problems)
        case .array(let elements): checkArray(elements, keywords, path: path, into: &problems)
        case .string(let string): checkString(string, keywords, at: at, into: &problems)
        case .number(let number): checkNumber(number, keywords, at: at, into: &problems)
        default: break
        }
        if let all = keywords["allOf"]?.arrayValue {
            for schema in all { check(value, schema, path: path, into: &problems) }
        }
        if let any = keywords["anyOf"]?.arrayValue {
            let failures = any.map { branch -> [String] in var found: [String] = []; check(value, branch, path: path, into: &found); return found }
            if !failures.contains(where: \.isEmpty) {
                problems.append("\(at): matches none of the \(any.count) allowed shapes (closest: \(failures.min { $0.count < $1.count }?.joined(separator: "; ") ?? ""))")
            }
        }
        if let one = keywords["oneOf"]?.arrayValue {
            let matching = one.filter { branch in var found: [String] = []; check(value, branch, path: path, into: &found); return found.isEmpty }.count
            if matching != 1 { problems.append("\(at): must match exactly one of \(one.count) shapes, matches \(matching)") }
        }
        if let not = keywords["not"] {
            var found: [String] = []
            check(value, not, path: path, into: &found)
            if found.isEmpty { problems.append("\(at): must not match \(not.description)") }
        }
    }

    func checkObject(_ members: [String: JSONValue], _ keywords: [String: JSONValue], path: String, into problems: inout [String]) {
        let properties = keywords["properties"]?.objectValue ?? [:]
        for name in keywords["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil {
            problems.append("\(path)/\(name): required property is missing")
        }
        for (name, member) in members.sorted(by: { $0.key < $1.key }) {
            if let schema = properties[name] {
                check(member, schema, path: "\(path)/\(name)", into: &problems)
            } else if let additional = keywords["additionalProperties"] {
                if additional == .bool(false) {
                    problems.append("\(path)/\(name): unknown property (allowed: \(properties.keys.sorted().joined(separator: ", ")))")
                } else {
                    check(member, additional, path: "\(path)/\(name)", into: &problems)
                }
            }
        }
        if let minimum = keywords["minProperties"]?.numberValue, Double(members.count) < minimum {
            problems.append("\(path.isEmpty ? "/" : path): needs at least \(Int(minimum)) properties")
        }
    }

    func checkArray(_ elements: [JSONValue], _ keywords: [String: JSONValue], path: String, into problems: inout [String]) {
        let at = path.isEmpty ? "/" : path
        if let items = keywords["items"] {
            for (index, element) in elements.enumerated() { check(element, items, path: "\(path)/\(index)", into: &problems) }
        }
        if let minimum = keywords["minItems"]?.numberValue, Double(elements.count) < minimum {
            problems.append("\(at): needs at least \(Int(minimum)) items, has \(elements.count)")
        }
        if let maximum = keywords["maxItems"]?.numberValue, Double(elements.count) > maximum {
            problems.append("\(at): allows at most \(Int(maximum)) items, has \(elements.count)")
        }
        if keywords["uniqueItems"] == true, Set(elements).count != elements.count {
            problems.append("\(at): items must be unique")
        }
    }

    func checkString(_ string: String, _ keywords: [String: JSONValue], at: String, into problems: inout [String]) {
        if let minimum = keywords["minLength"]?.numberValue, Double(string.count) < minimum {
            problems.append("\(at): needs at least \(Int(minimum)) characters, has \(string.count)")
        }
        if let maximum = keywords["maxLength"]?.numberValue, Double(string.count) > maximum {
            problems.append("\(at): allows at most \(Int(maximum)) characters, has \(string.count)")
        }
        if let pattern = keywords["pattern"]?.stringValue, let regex = try? NSRegularExpression(pattern: pattern),
           regex.firstMatch(in: string, range: NSRange(string.startIndex..., in: string)) == nil {
            problems.append("\(at): must match the pattern \(pattern)")
        }
        if let format = keywords["format"]?.stringValue, !Self.matches(string, format: format) {
            problems.append("\(at): is not a valid \(format): \"\(string.prefix(60))\"")
        }
    }

    func checkNumber(_ number: Double, _ keywords: [String: JSONValue], at: String, into problems: inout [String]) {
        func shown(_ value: Double) -> String { value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value) }
        if let minimum = keywords["minimum"]?.numberValue, number < minimum { problems.append("\(at): must be ≥ \(shown(minimum)), got \(shown(number))") }
        if let maximum = keywords["maximum"]?.numberValue, number > maximum { problems.append("\(at): must be ≤ \(shown(maximum)), got \(shown(number))") }
        if let minimum = keywords["exclusiveMinimum"]?.numberValue, number <= minimum { problems.append("\(at): must be > \(shown(minimum)), got \(shown(number))") }
        if let maximum = keywords["exclusiveMaximum"]?.numberValue, number >= maximum { problems.append("\(at): must be < \(shown(maximum)), got \(shown(number))") }
        if let step = keywords["multipleOf"]?.numberValue, step > 0 {
            let ratio = number / step
            if abs(ratio - ratio.rounded()) > 1e-9 { problems.append("\(at): must be a multiple of \(shown(step)), got \(shown(number))") }
        }
    }

    static func matches(_ string: String, format: String) -> Bool {
        switch format {
        case "date-time":
            return Date(iso8601: string) != nil
        case "date":
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate]
            return string.count == 10 && formatter.date(from: string) != nil
        case "uuid": return UUID(uuidString: string) != nil
        case "email":
            let parts = string.split(separator: "@", omittingEmptySubsequences: false)
            return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !string.contains(" ")
        case "uri": return URL(string: string)?.scheme != nil
        default: return true
        }
    }
}
