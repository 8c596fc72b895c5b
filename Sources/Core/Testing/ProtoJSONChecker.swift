import Foundation
import NimbusCore
import Testing

/// Checks JSON request bodies against protobuf message definitions, the way Google's REST APIs
/// (Gemini, Vertex AI, Cloud APIs) map protos to JSON: lowerCamelCase field names (the proto names
/// are accepted too), enums by name, 64-bit integers as numbers or strings, `google.protobuf.Struct`/
/// `Value` as any JSON, well-known types as strings, at most one member of each `oneof`, and fields
/// marked `(google.api.field_behavior) = REQUIRED` present.
///
/// ```swift
/// let checker = try ProtoJSONChecker(protoFiles: [contentProto, generativeServiceProto])
/// let mismatches = checker.check(try request.json(), message: "GenerateContentRequest", pathFields: ["model"])
/// ```
public struct ProtoJSONChecker: Sendable {
    /// A field of a message.
    struct Field: Sendable {
        var name: String
        var jsonName: String
        var type: String
        var repeated: Bool
        var mapValue: String?
        var oneof: String?
        var required: Bool
        var outputOnly: Bool
    }

    /// A message or an enum.
    struct Definition: Sendable {
        var fullName: String
        var fields: [Field]
        var enumValues: Set<String>?
    }

    private var definitions: [String: Definition] = [:]
    private var bySimpleName: [String: [String]] = [:]

    /// Parses `.proto` sources (their text).
    /// - Throws: `invalidArgument` when a file does not parse.
    public init(protoSources: [String]) throws {
        for source in protoSources {
            var parser = ProtoParser(tokens: ProtoParser.tokenize(source))
            for definition in try parser.parseFile() {
                definitions[definition.fullName] = definition
                bySimpleName[String(definition.fullName.split(separator: ".").last ?? ""), default: []].append(definition.fullName)
            }
        }
    }

    /// Parses `.proto` files.
    public init(protoFiles: [URL]) throws {
        try self.init(protoSources: protoFiles.map { try String(contentsOf: $0, encoding: .utf8) })
    }

    /// Parses the fixtures `<subdirectory>/<name>.proto` of a test bundle (`Bundle.module`).
    /// - Throws: `notFound` naming the first file the bundle lacks.
    public init(fixtures names: [String], in bundle: Bundle, subdirectory: String = "Fixtures/protos") throws {
        try self.init(protoFiles: names.map { name in
            guard let url = bundle.url(forResource: name, withExtension: "proto", subdirectory: subdirectory) else {
                throw NimbusError(.notFound, "\(subdirectory)/\(name).proto is missing from the test bundle")
            }
            return url
        })
    }

    /// Every departure of `json` from the message `message` (a simple or full name). `pathFields`
    /// are fields carried in the URL (not expected in the body).
    public func check(_ json: JSONValue, message: String, pathFields: Set<String> = []) -> [String] {
        guard let definition = resolve(message, scope: "") else { return ["no message named \(message) in the proto files"] }
        var mismatches: [String] = []
        check(json, definition: definition, at: "body", skipRequired: pathFields, into: &mismatches, depth: 0)
        return mismatches
    }

    /// Records a test issue for each mismatch.
    public func expectValid(_ json: JSONValue, message: String, pathFields: Set<String> = [], sourceLocation: SourceLocation = #_sourceLocation) {
        for mismatch in check(json, message: message, pathFields: pathFields) {
            Issue.record("departs from \(message): \(mismatch)", sourceLocation: sourceLocation)
        }
    }

    private func resolve(_ type: String, scope: String) -> Definition? {
        if type.hasPrefix(".") { return definitions[String(type.dropFirst())] }
        var parts = scope.split(separator: ".").map(String.init)
        while true {
            let candidate = (parts + [type]).joined(separator: ".")
            if let found = definitions[candidate] { return found }
            if parts.isEmpty { break }
            parts.removeLast()
        }
        let simple = String(type.split(separator: ".").last ?? "")
        if let names = bySimpleName[simple], names.count == 1 { return definitions[names[0]] }
        return bySimpleName[simple]?.lazy.compactMap { definitions[$0] }.first { $0.fullName.hasSuffix(type) }
    }

    private func check(_ json: JSONValue, definition: Definition, at path: String, skipRequired: Set<String>, into mismatches: inout [String], depth: Int) {
        guard depth < 64 else { return }
        guard case .object(let members) = json else {
            mismatches.append("\(path): expected an object (\(definition.fullName)), got \(json.typeName)")
            return
        }
        var oneofs: [String: [String]] = [:]
        for (key, value) in members.sorted(by: { $0.key < $1.key }) {
            guard let field = definition.fields.first(where: { $0.jsonName == key || $0.name == key }) else {
                mismatches.append("\(path).\(key): not a field of \(definition.fullName)")
                continue
            }
            if let oneof = field.oneof, value != .null { oneofs[oneof, default: []].append(key) }
            if field.outputOnly { mismatches.append("\(path).\(key): is output only") }
            let scope = definition.fullName
            if let mapValue = field.mapValue {
                guard case .object(let entries) = value else { mismatches.append("\(path).\(key): expected a map object"); continue }
                for (entryKey, entry) in entries { checkValue(entry, type: mapValue, scope: scope, at: "\(path).\(key).\(entryKey)", into: &mismatches, depth: depth) }
            } else if field.repeated {
                guard case .array(let items) = value else { mismatches.append("\(path).\(key): expected an array, got \(value.typeName)"); continue }
                for (index, item) in items.enumerated() { checkValue(item, type: field.type, scope: scope, at: "\(path).\(key)[\(index)]", into: &mismatches, depth: depth) }
            } else {
                checkValue(value, type: field.type, scope: scope, at: "\(path).\(key)", into: &mismatches, depth: depth)
            }
        }
        for (oneof, keys) in oneofs where keys.count > 1 {
            mismatches.append("\(path): \(keys.joined(separator: ", ")) are members of oneof \(oneof); set only one")
        }
        for field in definition.fields where field.required && !skipRequired.contains(field.name) {
            if members[field.jsonName] == nil && members[field.name] == nil { mismatches.append("\(path).\(field.jsonName): required field is missing") }
        }
    }

    private func checkValue(_ value: JSONValue, type: String, scope: String, at path: String, into mismatches: inout [String], depth: Int) {
        if value == .null { return }
        func expect(_ ok: Bool, _ what: String) { if !ok { mismatches.append("\(path): expected \(what) (\(type)), got \(value.typeName)") } }
        switch type {
        case "string": expect(value.stringValue != nil, "a string")
        case "bytes": expect(value.stringValue.map { Data(base64Encoded: $0) != nil || Base64URL.decode($0) != nil } ?? false, "base64 text")
        case "bool": expect(value.boolValue != nil, "a boolean")
        case "int32", "uint32", "sint32", "fixed32", "sfixed32":
            expect(value.numberValue.map { $0.rounded() == $0 } ?? false, "an integer")
        case "int64", "uint64", "sint64", "fixed64", "sfixed64":
            expect(value.numberValue.map { $0.rounded() == $0 } ?? (value.stringValue.flatMap { Int64($0) } != nil), "an integer or integer string")
        case "float", "double":
            expect(value.numberValue != nil || ["NaN", "Infinity", "-Infinity"].contains(value.stringValue ?? ""), "a number")
        case "google.protobuf.Value": return
        case "google.protobuf.Struct": expect(value.objectValue != nil, "an object")
        case "google.protobuf.ListValue": expect(value.arrayValue != nil, "an array")
        case "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask": expect(value.stringValue != nil, "a string")
        default:
            guard let definition = resolve(type, scope: scope) else { return }   // types from files not given: accepted
            if let values = definition.enumValues {
                if let name = value.stringValue { if !values.contains(name) { mismatches.append("\(path): '\(name)' is not a value of \(definition.fullName)") } }
                else { expect(value.numberValue != nil, "an enum name") }
            } else {
                check(value, definition: definition, at: path, skipRequired: [], into: &mismatches, depth: depth + 1)
            }
        }
    }
}

/// A small parser for the parts of proto3 that describe JSON shapes: messages, enums, fields,
/// maps, oneofs and field options. Services and options are skipped.
struct ProtoParser {
    var tokens: [String]
    var position = 0
    var package = ""

    static func tokenize(_ source: String) -> [String] {
        var tokens: [String] = []
        let scalars = Array(source.unicodeScalars)
        var index = 0
        func isIdentifier(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_" || scalar == "." }
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar.properties.isWhitespace { index += 1; continue }
            if scalar == "/", index + 1 < scalars.count, scalars[index + 1] == "/" {
                while index < scalars.count, scalars[index] != "\n" { index += 1 }
                continue
            }
            if scalar == "/", index + 1 < scalars.count, scalars[index + 1] == "*" {
                index += 2
                while index + 1 < scalars.count, !(scalars[index] == "*" && scalars[index + 1] == "/") { index += 1 }
                index += 2
                continue
            }
            if scalar == "\"" || scalar == "'" {
                var text = ""
                index += 1
                while index < scalars.count, scalars[index] != scalar {
                    if scalars[index] == "\\", index + 1 < scalars.count { index += 1 }
                    text.unicodeScalars.append(scalars[index])
                    index += 1
                }
                index += 1
                tokens.append("\"" + text)
                continue
            }
            if isIdentifier(scalar) || scalar == "-" {
                var text = String(scalar)
                index += 1
                while index < scalars.count, isIdentifier(scalars[index]) { text.unicodeScalars.append(scalars[index]); index += 1 }
                tokens.append(text)
                continue
            }
            tokens.append(String(scalar))
            index += 1
        }
        return tokens
    }

    var peek: String? { position < tokens.count ? tokens[position] : nil }

    mutating func next() throws -> String {
        guard position < tokens.count else { throw NimbusError(.invalidArgument, "proto: unexpected end of file") }
        defer { position += 1 }
        return tokens[position]
    }

    mutating func expect(_ token: String) throws {
        let found = try next()
        guard found == token else { throw NimbusError(.invalidArgument, "proto: expected '\(token)' but found '\(found)' at token \(position)") }
    }

    mutating func skipStatement() throws {
        var depth = 0
        while let token = peek {
            position += 1
            if token == "{" { depth += 1 }
            if token == "}" { depth -= 1; if depth == 0 { return } }
            if token == ";" && depth == 0 { return }
        }
    }

    mutating func parseFile() throws -> [ProtoJSONChecker.Definition] {
        var definitions: [ProtoJSONChecker.Definition] = []
        while let token = peek {
            switch token {
            case "package":
                position += 1
                package = try next()
                try expect(";")
            case "message":
                position += 1
                definitions += try parseMessage(scope: package)
            case "enum":
                position += 1
                definitions.append(try parseEnum(scope: package))
            default:
                try skipStatement()
            }
        }
        return definitions
    }

    mutating func parseEnum(scope: String) throws -> ProtoJSONChecker.Definition {
        let name = try next()
        try expect("{")
        var values: Set<String> = []
        while let token = peek, token != "}" {
            if token == "option" || token == "reserved" { try skipStatement(); continue }
            values.insert(try next())
            try skipStatement()
        }
        try expect("}")
        return .init(fullName: scope.isEmpty ? name : "\(scope).\(name)", fields: [], enumValues: values)
    }

    mutating func parseMessage(scope: String) throws -> [ProtoJSONChecker.Definition] {
        let name = try next()
        let fullName = scope.isEmpty ? name : "\(scope).\(name)"
        try expect("{")
        var fields: [ProtoJSONChecker.Field] = []
        var nested: [ProtoJSONChecker.Definition] = []
        try parseBody(fullName: fullName, oneof: nil, fields: &fields, nested: &nested)
        return [.init(fullName: fullName, fields: fields, enumValues: nil)] + nested
    }

    mutating func parseBody(fullName: String, oneof: String?, fields: inout [ProtoJSONChecker.Field], nested: inout [ProtoJSONChecker.Definition]) throws {
        while let token = peek, token != "}" {
            switch token {
            case "message":
                position += 1
                nested += try parseMessage(scope: fullName)
            case "enum":
                position += 1
                nested.append(try parseEnum(scope: fullName))
            case "oneof":
                position += 1
                let group = try next()
                try expect("{")
                try parseBody(fullName: fullName, oneof: group, fields: &fields, nested: &nested)
            case "option", "reserved", "extensions", ";":
                try skipStatement()
            default:
                fields.append(try parseField(oneof: oneof))
            }
        }
        try expect("}")
    }

    mutating func parseField(oneof: String?) throws -> ProtoJSONChecker.Field {
        var repeated = false
        var token = try next()
        if token == "repeated" { repeated = true; token = try next() } else if token == "optional" || token == "required" { token = try next() }
        var type = token
        var mapValue: String?
        if token == "map" {
            try expect("<")
            _ = try next()
            try expect(",")
            mapValue = try next()
            try expect(">")
            type = "map"
        }
        let name = try next()
        try expect("=")
        _ = try next()
        var options: [String] = []
        if peek == "[" {
            while let option = peek, option != "]" { options.append(option); position += 1 }
            try expect("]")
        }
        try expect(";")
        let behaviour = options.joined(separator: " ")
        return .init(name: name, jsonName: Self.lowerCamel(name), type: type, repeated: repeated, mapValue: mapValue, oneof: oneof,
                     required: behaviour.contains("field_behavior") && options.contains("REQUIRED"),
                     outputOnly: behaviour.contains("field_behavior") && options.contains("OUTPUT_ONLY") && !options.contains("OPTIONAL"))
    }

    static func lowerCamel(_ name: String) -> String {
        var result = ""
        var upper = false
        for character in name {
            if character == "_" { upper = true; continue }
            result.append(upper ? Character(character.uppercased()) : character)
            upper = false
        }
        return result
    }
}
