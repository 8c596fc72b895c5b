import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// Checks `value` against `schema`, a JSON Schema draft 2020-12 (it passes the whole required part of
    /// the official JSON-Schema-Test-Suite, remote references aside): every keyword of the applicator,
    /// validation and unevaluated vocabularies, `$ref`/`$dynamicRef`/`$anchor`/`$id` within the schema,
    /// boolean schemas. `format` is asserted for date-time, date, time, uuid, email, ipv4, ipv6 and uri
    /// unless `assertingFormats` is false (the draft's default treats it as an annotation only); other
    /// formats and unknown keywords never fail a value (see ``unknownKeywords(in:)``).
    /// - Returns: every violation, each starting with its JSON Pointer; empty when the value fits.
    public static func validate(_ value: JSONValue, against schema: JSONValue, assertingFormats: Bool = true) -> [String] {
        var problems: [String] = []
        let validator = Validator(root: schema, assertingFormats: assertingFormats)
        _ = validator.evaluate(value, schema, base: validator.rootBase, baseIsOwn: true, path: "", scope: [], depth: 0, into: &problems)
        return problems
    }

    /// The `$ref`s and `$dynamicRef`s of `schema` that point outside it (another document, the published
    /// meta-schemas), as absolute URIs: ``validate(_:against:assertingFormats:)`` does not fetch them and
    /// reports a value checked against one as a problem.
    public static func unresolvedReferences(in schema: JSONValue) -> [String] {
        let validator = Validator(root: schema, assertingFormats: false)
        return validator.references.filter { validator.target(of: $0.reference, base: $0.base) == nil }
            .map { Validator.resolve($0.reference, against: $0.base) }
    }

    /// The keywords of `schema` that draft 2020-12 does not define (a typo, another draft's keyword,
    /// a vendor extension), as JSON Pointers: they never fail a value, so a schema received from
    /// elsewhere (an MCP server's tool) is checked for them and they are reported, not silently ignored.
    public static func unknownKeywords(in schema: JSONValue) -> [String] {
        var found: [String] = []
        Validator.collectUnknown(schema, pointer: "", into: &found)
        return found
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

/// What a schema evaluation established about the instance, for `unevaluatedProperties/Items`.
private struct Annotations {
    var properties: Set<String> = []
    var allItems = false
    var itemPrefix = 0
    var containsIndices: Set<Int> = []

    mutating func merge(_ other: Annotations) {
        properties.formUnion(other.properties)
        allItems = allItems || other.allItems
        itemPrefix = max(itemPrefix, other.itemPrefix)
        containsIndices.formUnion(other.containsIndices)
    }
}

/// A draft 2020-12 evaluator: an index of the schema's resources (`$id`), anchors and dynamic anchors,
/// built once, then one pass over the instance that collects problems and annotations.
private struct Validator {
    let root: JSONValue
    let rootBase: String
    let assertingFormats: Bool
    /// Schema resources by absolute URI (no fragment).
    private(set) var resources: [String: JSONValue] = [:]
    /// `$anchor` and `$dynamicAnchor` targets by `uri#name`, with their base.
    private(set) var anchors: [String: (schema: JSONValue, base: String)] = [:]
    /// `$dynamicAnchor` names per resource.
    private(set) var dynamicAnchors: [String: Set<String>] = [:]
    /// Every `$ref` and `$dynamicRef`, with the base it resolves against.
    private(set) var references: [(reference: String, base: String)] = []

    static let maxDepth = 200
    static let defaultBase = "https://nimbus.invalid/schema.json"

    init(root: JSONValue, assertingFormats: Bool) {
        self.root = root
        self.assertingFormats = assertingFormats
        let base = root["$id"]?.stringValue.map { Self.withoutFragment(Self.resolve($0, against: Self.defaultBase)) } ?? Self.defaultBase
        rootBase = base
        resources[base] = root
        index(root, base: base)
    }

    // MARK: Index

    /// Keywords whose value is a schema, an array of schemas, or an object of schemas.
    static let schemaKeywords: Set<String> = ["items", "additionalProperties", "unevaluatedItems", "unevaluatedProperties", "not", "if", "then",
                                              "else", "contains", "propertyNames", "contentSchema"]
    static let schemaArrayKeywords: Set<String> = ["allOf", "anyOf", "oneOf", "prefixItems"]
    static let schemaMapKeywords: Set<String> = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]

    private mutating func index(_ node: JSONValue, base: String) {
        guard case .object(let keywords) = node else { return }
        var base = base
        if let id = keywords["$id"]?.stringValue {
            base = Self.withoutFragment(Self.resolve(id, against: base))
            resources[base] = node
        }
        if let anchor = keywords["$anchor"]?.stringValue { anchors["\(base)#\(anchor)"] = (node, base) }
        for keyword in ["$ref", "$dynamicRef"] { if let reference = keywords[keyword]?.stringValue { references.append((reference, base)) } }
        if let anchor = keywords["$dynamicAnchor"]?.stringValue {
            anchors["\(base)#\(anchor)"] = (node, base)
            dynamicAnchors[base, default: []].insert(anchor)
        }
        for (keyword, value) in keywords {
            if Self.schemaKeywords.contains(keyword) { index(value, base: base) }
            else if Self.schemaArrayKeywords.contains(keyword) { for item in value.arrayValue ?? [] { index(item, base: base) } }
            else if Self.schemaMapKeywords.contains(keyword) { for item in (value.objectValue ?? [:]).values { index(item, base: base) } }
        }
    }

    static func withoutFragment(_ uri: String) -> String {
        uri.firstIndex(of: "#").map { String(uri[..<$0]) } ?? uri
    }

    /// RFC 3986 reference resolution, as far as schemas use it.
    static func resolve(_ reference: String, against base: String) -> String {
        if reference.hasPrefix("#") { return withoutFragment(base) + reference }
        if let colon = reference.firstIndex(of: ":"), reference[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }),
           reference.first?.isLetter == true {
            return reference
        }
        guard let baseURL = URL(string: withoutFragment(base)), baseURL.scheme != "urn",
              let resolved = URL(string: reference, relativeTo: baseURL)?.absoluteURL.standardized.absoluteString else { return reference }
        return resolved
    }

    /// The schema a reference names, and its base URI; `nil` when it is not in this schema.
    func target(of reference: String, base: String) -> (schema: JSONValue, base: String)? {
        let uri = Self.resolve(reference, against: base)
        let resource = Self.withoutFragment(uri)
        let fragment = uri.firstIndex(of: "#").map { String(uri[uri.index(after: $0)...]) } ?? ""
        if fragment.isEmpty { return resources[resource].map { ($0, resource) } }
        if !fragment.hasPrefix("/") { return anchors["\(resource)#\(fragment)"] }
        guard var node = resources[resource] else { return nil }
        var nodeBase = resource
        for token in fragment.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            let key = (String(token).removingPercentEncoding ?? String(token)).replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let index = Int(key), let array = node.arrayValue {
                guard array.indices.contains(index) else { return nil }
                node = array[index]
            } else {
                guard let next = node[key] else { return nil }
                node = next
            }
            if let id = node["$id"]?.stringValue { nodeBase = Self.withoutFragment(Self.resolve(id, against: nodeBase)) }
        }
        return (node, nodeBase)
    }

    // MARK: Evaluation

    static func describe(_ value: JSONValue) -> String {
        let text = value.description
        let shown = text.count > 60 ? String(text.prefix(57)) + "..." : text
        return value == .null ? "null" : "\(value.typeName) \(shown)"
    }

    static func fits(_ value: JSONValue, type name: String) -> Bool {
        switch (name, value) {
        case ("string", .string), ("boolean", .bool), ("array", .array), ("object", .object), ("null", .null), ("number", .number): return true
        case ("integer", .number(let number)): return number.isFinite && number.rounded() == number
        default: return false
        }
    }

    /// Whether `value` fits `schema`, without keeping the problems.
    func passes(_ value: JSONValue, _ schema: JSONValue, base: String, path: String, scope: [String], depth: Int) -> (Bool, Annotations) {
        var found: [String] = []
        let annotations = evaluate(value, schema, base: base, path: path, scope: scope, depth: depth, into: &found)
        return (found.isEmpty, annotations)
    }

    /// Evaluates `schema` on `value`. `base` is the base URI around the schema; `baseIsOwn` says it already is
    /// the schema's own (a reference's target, the root), so its `$id` is not applied twice.
    func evaluate(_ value: JSONValue, _ schema: JSONValue, base: String, baseIsOwn: Bool = false, path: String, scope: [String], depth: Int,
                  into problems: inout [String]) -> Annotations {
        let at = path.isEmpty ? "/" : path
        if schema == .bool(false) { problems.append("\(at): no value is allowed here"); return Annotations() }
        guard case .object(let keywords) = schema else { return Annotations() }
        guard depth < Self.maxDepth else {
            problems.append("\(at): the schema nests deeper than \(Self.maxDepth) levels here (a $ref that loops on the same value)")
            return Annotations()
        }
        let start = problems.count
        var base = base
        var scope = scope
        if !baseIsOwn, let id = keywords["$id"]?.stringValue { base = Self.withoutFragment(Self.resolve(id, against: base)) }
        if scope.last != base { scope.append(base) }
        var annotations = Annotations()

        if let reference = keywords["$ref"]?.stringValue {
            if let (target, targetBase) = target(of: reference, base: base) {
                annotations.merge(evaluate(value, target, base: targetBase, baseIsOwn: true, path: path, scope: scope, depth: depth + 1, into: &problems))
            } else {
                problems.append("\(at): the schema's $ref \(reference) cannot be resolved (only references within the schema are followed)")
            }
        }
        if let reference = keywords["$dynamicRef"]?.stringValue {
            if var (target, targetBase) = target(of: reference, base: base) {
                let name = reference.firstIndex(of: "#").map { String(reference[reference.index(after: $0)...]) } ?? ""
                if !name.isEmpty, !name.hasPrefix("/"), target["$dynamicAnchor"]?.stringValue == name,
                   let outermost = scope.first(where: { dynamicAnchors[$0]?.contains(name) == true }),
                   let dynamic = anchors["\(outermost)#\(name)"] {
                    (target, targetBase) = dynamic
                }
                annotations.merge(evaluate(value, target, base: targetBase, baseIsOwn: true, path: path, scope: scope, depth: depth + 1, into: &problems))
            } else {
                problems.append("\(at): the schema's $dynamicRef \(reference) cannot be resolved")
            }
        }
        if let type = keywords["type"] {
            let names = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue].compactMap { $0 }
            if !names.isEmpty, !names.contains(where: { Self.fits(value, type: $0) }) {
                problems.append("\(at): expected \(names.joined(separator: " or ")), got \(Self.describe(value))")
                return annotations
            }
        }
        if let allowed = keywords["enum"]?.arrayValue, !allowed.contains(where: { Self.same($0, value) }) {
            problems.append("\(at): must be one of \(allowed.map(\.description).joined(separator: ", ")), got \(Self.describe(value))")
        }
        if let constant = keywords["const"], !Self.same(constant, value) {
            problems.append("\(at): must be \(constant.description), got \(Self.describe(value))")
        }
        switch value {
        case .object(let members):
            annotations.merge(checkObject(members, keywords, base: base, path: path, scope: scope, depth: depth, into: &problems))
        case .array(let elements):
            annotations.merge(checkArray(elements, keywords, base: base, path: path, scope: scope, depth: depth, into: &problems))
        case .string(let string): checkString(string, keywords, at: at, into: &problems)
        case .number(let number): checkNumber(number, keywords, at: at, into: &problems)
        default: break
        }
        for schema in keywords["allOf"]?.arrayValue ?? [] {
            annotations.merge(evaluate(value, schema, base: base, path: path, scope: scope, depth: depth + 1, into: &problems))
        }
        if let any = keywords["anyOf"]?.arrayValue {
            var failures: [[String]] = []
            for branch in any {   // every branch: each passing one adds its annotations
                var found: [String] = []
                let branchAnnotations = evaluate(value, branch, base: base, path: path, scope: scope, depth: depth + 1, into: &found)
                if found.isEmpty { annotations.merge(branchAnnotations) } else { failures.append(found) }
            }
            if failures.count == any.count {
                problems.append("\(at): matches none of the \(any.count) allowed shapes (closest: \(failures.min { $0.count < $1.count }?.joined(separator: "; ") ?? ""))")
            }
        }
        if let one = keywords["oneOf"]?.arrayValue {
            var matching = 0
            for branch in one {
                let (passed, branchAnnotations) = passes(value, branch, base: base, path: path, scope: scope, depth: depth + 1)
                if passed { matching += 1; annotations.merge(branchAnnotations) }
            }
            if matching != 1 { problems.append("\(at): must match exactly one of \(one.count) shapes, matches \(matching)") }
        }
        if let not = keywords["not"], passes(value, not, base: base, path: path, scope: scope, depth: depth + 1).0 {
            problems.append("\(at): must not match \(not.description)")
        }
        if let condition = keywords["if"] {
            let (holds, conditionAnnotations) = passes(value, condition, base: base, path: path, scope: scope, depth: depth + 1)
            if holds {
                annotations.merge(conditionAnnotations)
                if let then = keywords["then"] { annotations.merge(evaluate(value, then, base: base, path: path, scope: scope, depth: depth + 1, into: &problems)) }
            } else if let otherwise = keywords["else"] {
                annotations.merge(evaluate(value, otherwise, base: base, path: path, scope: scope, depth: depth + 1, into: &problems))
            }
        }
        // The unevaluated keywords come last: they see what every other keyword here (valid subschemas included) evaluated.
        if case .array(let elements) = value, let unevaluated = keywords["unevaluatedItems"], !annotations.allItems {
            for index in elements.indices where index >= annotations.itemPrefix && !annotations.containsIndices.contains(index) {
                _ = evaluate(elements[index], unevaluated, base: base, path: "\(path)/\(index)", scope: scope, depth: depth + 1, into: &problems)
            }
            annotations.allItems = true
        }
        if case .object(let members) = value, let unevaluated = keywords["unevaluatedProperties"] {
            for (name, member) in members.sorted(by: { $0.key < $1.key }) where !annotations.properties.contains(name) {
                if unevaluated == .bool(false) {
                    problems.append("\(path)/\(Self.escape(name)): unknown property (not evaluated by any keyword, and unevaluatedProperties is false)")
                } else {
                    _ = evaluate(member, unevaluated, base: base, path: "\(path)/\(Self.escape(name))", scope: scope, depth: depth + 1, into: &problems)
                }
                annotations.properties.insert(name)
            }
        }
        return problems.count == start ? annotations : Annotations()
    }

    /// JSON equality: numbers by value (1 == 1.0), strings by code points (Swift's `==` would take a
    /// composed "é" for "e" + combining accent), objects and arrays member by member.
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { key, value in y[key].map { same(value, $0) } ?? false }
        default: return a == b
        }
    }

    /// Duplicates by ``same(_:_:)``, in linear time for distinct values: hashing groups the candidates
    /// (Swift's equality is coarser), and only members of a group are compared pairwise.
    static func hasDuplicates(_ elements: [JSONValue]) -> Bool {
        Dictionary(grouping: elements, by: { $0 }).values.contains { group in
            group.count > 1 && group.indices.contains { i in group[(i + 1)...].contains { same(group[i], $0) } }
        }
    }

    static func escape(_ name: String) -> String { name.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }

    static func regex(_ pattern: String) -> NSRegularExpression? {
        // ECMA-262 classes that ICU reads differently: \d is ASCII digits only in ECMA.
        try? NSRegularExpression(pattern: pattern.replacingOccurrences(of: #"\d"#, with: "[0-9]"))
    }

    static func search(_ regex: NSRegularExpression, _ string: String) -> Bool {
        regex.firstMatch(in: string, range: NSRange(string.startIndex..., in: string)) != nil
    }

    func checkObject(_ members: [String: JSONValue], _ keywords: [String: JSONValue], base: String, path: String, scope: [String], depth: Int,
                     into problems: inout [String]) -> Annotations {
        var annotations = Annotations()
        let at = path.isEmpty ? "/" : path
        let properties = keywords["properties"]?.objectValue ?? [:]
        let patterns = (keywords["patternProperties"]?.objectValue ?? [:]).compactMap { pattern, schema in Self.regex(pattern).map { ($0, schema) } }
        for name in keywords["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil {
            problems.append("\(path)/\(Self.escape(name)): required property is missing")
        }
        for (name, member) in members.sorted(by: { $0.key < $1.key }) {
            let memberPath = "\(path)/\(Self.escape(name))"
            var matched = false
            if let schema = properties[name] {
                matched = true
                _ = evaluate(member, schema, base: base, path: memberPath, scope: scope, depth: depth + 1, into: &problems)
            }
            for (regex, schema) in patterns where Self.search(regex, name) {
                matched = true
                _ = evaluate(member, schema, base: base, path: memberPath, scope: scope, depth: depth + 1, into: &problems)
            }
            if matched {
                annotations.properties.insert(name)
            } else if let additional = keywords["additionalProperties"] {
                if additional == .bool(false) {
                    problems.append("\(memberPath): unknown property (allowed: \(properties.keys.sorted().joined(separator: ", ")))")
                } else {
                    _ = evaluate(member, additional, base: base, path: memberPath, scope: scope, depth: depth + 1, into: &problems)
                }
                annotations.properties.insert(name)
            }
            if let names = keywords["propertyNames"] {
                var found: [String] = []
                _ = evaluate(.string(name), names, base: base, path: memberPath, scope: scope, depth: depth + 1, into: &found)
                if !found.isEmpty { problems.append("\(memberPath): the property name is not allowed (\(found.joined(separator: "; ")))") }
            }
        }
        for (name, needed) in keywords["dependentRequired"]?.objectValue ?? [:] where members[name] != nil {
            for other in needed.arrayValue?.compactMap(\.stringValue) ?? [] where members[other] == nil {
                problems.append("\(path)/\(Self.escape(other)): required property is missing (because \(name) is present)")
            }
        }
        for (name, schema) in (keywords["dependentSchemas"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) where members[name] != nil {
            annotations.merge(evaluate(.object(members), schema, base: base, path: path, scope: scope, depth: depth + 1, into: &problems))
        }
        if let minimum = keywords["minProperties"]?.numberValue, Double(members.count) < minimum {
            problems.append("\(at): needs at least \(Int(minimum)) properties")
        }
        if let maximum = keywords["maxProperties"]?.numberValue, Double(members.count) > maximum {
            problems.append("\(at): allows at most \(Int(maximum)) properties, has \(members.count)")
        }
        return annotations
    }

    func checkArray(_ elements: [JSONValue], _ keywords: [String: JSONValue], base: String, path: String, scope: [String], depth: Int,
                    into problems: inout [String]) -> Annotations {
        var annotations = Annotations()
        let at = path.isEmpty ? "/" : path
        let prefix = keywords["prefixItems"]?.arrayValue ?? []
        for (index, schema) in prefix.enumerated() where index < elements.count {
            _ = evaluate(elements[index], schema, base: base, path: "\(path)/\(index)", scope: scope, depth: depth + 1, into: &problems)
        }
        annotations.itemPrefix = min(prefix.count, elements.count)
        if let items = keywords["items"] {
            for index in elements.indices where index >= prefix.count {
                _ = evaluate(elements[index], items, base: base, path: "\(path)/\(index)", scope: scope, depth: depth + 1, into: &problems)
            }
            annotations.allItems = true
        }
        if let contains = keywords["contains"] {
            for (index, element) in elements.enumerated()
            where passes(element, contains, base: base, path: "\(path)/\(index)", scope: scope, depth: depth + 1).0 {
                annotations.containsIndices.insert(index)
            }
            let count = annotations.containsIndices.count
            let minimum = keywords["minContains"]?.numberValue ?? 1
            if Double(count) < minimum {
                problems.append(minimum == 1 ? "\(at): needs an item matching \(contains.description)"
                                : "\(at): needs at least \(Int(minimum)) items matching \(contains.description), has \(count)")
            }
            if let maximum = keywords["maxContains"]?.numberValue, Double(count) > maximum {
                problems.append("\(at): allows at most \(Int(maximum)) items matching \(contains.description), has \(count)")
            }
        }
        if let minimum = keywords["minItems"]?.numberValue, Double(elements.count) < minimum {
            problems.append("\(at): needs at least \(Int(minimum)) items, has \(elements.count)")
        }
        if let maximum = keywords["maxItems"]?.numberValue, Double(elements.count) > maximum {
            problems.append("\(at): allows at most \(Int(maximum)) items, has \(elements.count)")
        }
        if keywords["uniqueItems"] == true, Self.hasDuplicates(elements) {
            problems.append("\(at): items must be unique")
        }
        return annotations
    }

    func checkString(_ string: String, _ keywords: [String: JSONValue], at: String, into problems: inout [String]) {
        let length = string.unicodeScalars.count   // JSON Schema counts code points
        if let minimum = keywords["minLength"]?.numberValue, Double(length) < minimum {
            problems.append("\(at): needs at least \(Int(minimum)) characters, has \(length)")
        }
        if let maximum = keywords["maxLength"]?.numberValue, Double(length) > maximum {
            problems.append("\(at): allows at most \(Int(maximum)) characters, has \(length)")
        }
        if let pattern = keywords["pattern"]?.stringValue, let regex = Self.regex(pattern), !Self.search(regex, string) {
            problems.append("\(at): must match the pattern \(pattern)")
        }
        if assertingFormats, let format = keywords["format"]?.stringValue, !Self.matches(string, format: format) {
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
            if !ratio.isFinite || abs(ratio - ratio.rounded()) > 1e-9 { problems.append("\(at): must be a multiple of \(shown(step)), got \(shown(number))") }
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
        case "time":
            return string.range(of: #"^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"#,
                                options: .regularExpression) != nil
        case "uuid": return UUID(uuidString: string) != nil
        case "email":
            let parts = string.split(separator: "@", omittingEmptySubsequences: false)
            return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !string.contains(" ")
        case "ipv4":
            let octets = string.split(separator: ".", omittingEmptySubsequences: false)
            return octets.count == 4 && octets.allSatisfy { octet in
                !octet.isEmpty && octet.count <= 3 && octet.allSatisfy(\.isASCII) && octet.allSatisfy(\.isNumber)
                    && (octet == "0" || octet.first != "0") && (Int(octet) ?? 256) <= 255
            }
        case "ipv6":
            var address = in6_addr()
            return !string.contains("%") && inet_pton(AF_INET6, string, &address) == 1
        case "uri": return URL(string: string)?.scheme != nil
        default: return true
        }
    }

    // MARK: Unknown keywords

    /// Every keyword draft 2020-12 defines (core, applicator, unevaluated, validation, format, content, meta-data), and `definitions`.
    static let knownKeywords: Set<String> = schemaKeywords.union(schemaArrayKeywords).union(schemaMapKeywords).union([
        "$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary", "$comment",
        "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
        "maxItems", "minItems", "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties", "required", "dependentRequired",
        "format", "contentEncoding", "contentMediaType", "title", "description", "default", "deprecated", "readOnly", "writeOnly", "examples",
    ])

    static func collectUnknown(_ node: JSONValue, pointer: String, into found: inout [String]) {
        guard case .object(let keywords) = node else { return }
        for (keyword, value) in keywords.sorted(by: { $0.key < $1.key }) {
            let here = "\(pointer)/\(escape(keyword))"
            if !knownKeywords.contains(keyword) { found.append(here); continue }
            if schemaKeywords.contains(keyword) { collectUnknown(value, pointer: here, into: &found) }
            else if schemaArrayKeywords.contains(keyword) {
                for (index, item) in (value.arrayValue ?? []).enumerated() { collectUnknown(item, pointer: "\(here)/\(index)", into: &found) }
            } else if schemaMapKeywords.contains(keyword) {
                for (name, item) in (value.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) { collectUnknown(item, pointer: "\(here)/\(escape(name))", into: &found) }
            }
        }
    }
}
