import Foundation
import NimbusCore
import NimbusHTTP
import OpenAPIKit
import Testing
import Yams

/// OpenAPIKit's schema type (NimbusCore has a `JSONSchema` namespace too).
typealias JSONSchema = OpenAPIKit.JSONSchema

/// Checks requests an adapter sent against the vendor's published OpenAPI document: that the
/// operation exists, that required path, query and header parameters are there, and that the
/// JSON or form body matches the operation's schema (types, required and unknown properties,
/// enums, lengths, bounds, `oneOf`/`anyOf`/`allOf`, `nullable`, `$ref`s). Every mismatch is
/// reported, not just the first.
///
/// **Unknown properties are mismatches** unless the schema allows them (`additionalProperties`
/// `true` or a schema); properties declared by another part of an `allOf` count as known, and an
/// object schema that declares no properties at all is free-form. A misspelled field fails.
///
/// ```swift
/// let spec = try OpenAPIRequestChecker(contentsOf: Bundle.module.url(forResource: "openai-extract", withExtension: "json", subdirectory: "Fixtures")!)
/// // ... the adapter calls the FakeHTTPServer ...
/// spec.expectValid(server.requests[0])
/// ```
/// OpenAPI 3.0 documents (Stripe, Twilio) are converted to 3.1 on load. Form bodies
/// (`application/x-www-form-urlencoded`, deep-object style) are decoded into nested values whose
/// leaves are strings, and a string leaf is accepted where the schema wants a number, an
/// integer or a boolean it spells.
public struct OpenAPIRequestChecker: @unchecked Sendable {
    /// One way a request departs from the document.
    public struct Mismatch: Sendable, Hashable, CustomStringConvertible {
        /// Where: `operation`, `query.limit`, `header.OpenAI-Beta`, `body.messages[0].role`.
        public var location: String
        /// What is wrong.
        public var message: String
        public var description: String { "\(location): \(message)" }
    }

    /// The document, in its 3.1 form.
    public let document: OpenAPI.Document
    /// The path prefix of the first server (`/v1` for `https://api.openai.com/v1`), stripped from request paths.
    public let serverPathPrefix: String
    /// Path parameters that may span several segments when they end a template (Vault's `{path}`
    /// in `/{mount}/data/{path}` is `db/password`); every other parameter is one segment.
    public var multiSegmentParameters: Set<String> = []

    /// Loads a JSON or YAML document, OpenAPI 3.0 or 3.1.
    public init(contentsOf url: URL) throws {
        try self.init(data: try Data(contentsOf: url), isYAML: url.pathExtension == "yaml" || url.pathExtension == "yml")
    }

    /// Parses a document.
    public init(data: Data, isYAML: Bool = false) throws {
        struct VersionProbe: Decodable { var openapi: String }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            isYAML ? try YAMLDecoder().decode(T.self, from: data) : try JSONDecoder().decode(T.self, from: data)
        }
        do {
            let version = try decode(VersionProbe.self).openapi
            if version.hasPrefix("3.0") {
                document = try OpenAPI30.convert(data, isYAML: isYAML)
            } else {
                document = try decode(OpenAPI.Document.self)
            }
        } catch {
            throw NimbusError(.invalidArgument, "not an OpenAPI 3.0/3.1 document: \(error)", underlying: error)
        }
        let serverPath = document.servers.first.flatMap { URL(string: $0.urlTemplate.absoluteString)?.path } ?? ""
        serverPathPrefix = serverPath == "/" ? "" : serverPath.trimmingSuffix("/")
    }

    /// The operation for a method and concrete path, with its path template.
    public func operation(method: String, path: String) -> (template: String, item: OpenAPI.PathItem, operation: OpenAPI.Operation)? {
        var relative = path
        if !serverPathPrefix.isEmpty, relative.hasPrefix(serverPathPrefix) { relative = String(relative.dropFirst(serverPathPrefix.count)) }
        let segments = relative.split(separator: "/").map(String.init)
        let slashed = relative.count > 1 && relative.hasSuffix("/")
        // The most specific template wins: first one whose trailing slash agrees (Vault's `/metadata/{path}/`
        // lists, `/metadata/{path}` reads), then the one with more literal segments (`/secrets/{name}/versions`
        // before `/secrets/{name}/{version}`).
        func rank(_ path: OpenAPI.Path) -> (Int, Int) {
            (path.trailingSlash == slashed ? 0 : 1, -path.components.filter { !$0.hasPrefix("{") }.count)
        }
        let ordered = document.paths.sorted { rank($0.key) < rank($1.key) }
        for (template, entry) in ordered {
            guard let aligned = align(template.components, segments),
                  zip(template.components, aligned).allSatisfy({ Self.match(pattern: $0, segment: $1) != nil }),
                  let item = document.components[entry],
                  let operation = item.endpoints.first(where: { $0.method.rawValue.uppercased() == method.uppercased() })?.operation
            else { continue }
            return ("/" + template.components.joined(separator: "/"), item, operation)
        }
        return nil
    }

    /// A checker for a committed spec extract, `Fixtures/<name>.json` in a test bundle — loaded once
    /// per test process when kept in a `static let`.
    public static func fixture(_ name: String, in bundle: Bundle) -> Result<OpenAPIRequestChecker, any Error> {
        Result {
            guard let url = bundle.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
                throw NimbusError(.notFound, "Fixtures/\(name).json is missing from the test bundle")
            }
            return try OpenAPIRequestChecker(contentsOf: url)
        }
    }

    /// Every mismatch between `request` and the document.
    public func check(_ request: FakeHTTPServer.CapturedRequest) -> [Mismatch] {
        guard let (template, item, operation) = operation(method: request.method, path: request.path) else {
            return [Mismatch(location: "operation", message: "\(request.method) \(request.path) is not an operation of \(document.info.title)")]
        }
        var mismatches: [Mismatch] = []
        let parameters = (item.parameters + operation.parameters).compactMap { document.components[$0] }
        for parameter in parameters {
            let value: String?
            switch parameter.location {
            case .query: value = request.queryItem(parameter.name) ?? request.query.first { $0.0.hasPrefix(parameter.name + "[") }.map { _ in "" }
            case .header: value = request.header(parameter.name)
            case .path: value = pathValue(template: template, path: request.path, name: parameter.name)
            case .cookie, .querystring: continue
            }
            guard let value else {
                if parameter.required { mismatches.append(Mismatch(location: "\(parameter.location.rawValue).\(parameter.name)", message: "required parameter is missing")) }
                continue
            }
            if case .a(let context) = parameter.schemaOrContent, let schema = resolve(context.schema), !value.isEmpty {
                var validator = SchemaValidator(components: document.components, stringlyTyped: true)
                // An array parameter: comma-separated in one value (`form`, explode false: `$select=id,mail`),
                // or the parameter repeated (explode true, the `form` default).
                let candidate: JSONValue
                if case .array = schema.value, parameter.location == .query {
                    let exploded = context.explode
                    let values = exploded ? request.query.filter { $0.0 == parameter.name }.map(\.1) : value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                    candidate = .array(values.map(JSONValue.string))
                } else {
                    candidate = .string(value)
                }
                validator.validate(candidate, against: schema, at: "\(parameter.location.rawValue).\(parameter.name)")
                mismatches += validator.mismatches
            }
        }
        let known = Set(parameters.filter { $0.location == .query }.map(\.name))
        for (name, _) in request.query {
            let base = name.split(separator: "[").first.map(String.init) ?? name
            if !known.contains(base) { mismatches.append(Mismatch(location: "query.\(name)", message: "not a parameter of this operation")) }
        }

        guard let body = operation.requestBody.flatMap({ document.components[$0] }) else {
            if request.body.readableBytes > 0 && request.method != "GET" {
                mismatches.append(Mismatch(location: "body", message: "the operation takes no body, but \(request.body.readableBytes) bytes were sent"))
            }
            return mismatches
        }
        guard request.body.readableBytes > 0 else {
            if body.required { mismatches.append(Mismatch(location: "body", message: "required body is missing")) }
            return mismatches
        }
        let contentType = request.header("content-type")?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard let (_, entry) = body.content.first(where: { $0.key.rawValue.lowercased() == contentType }) else {
            let accepted = body.content.keys.map(\.rawValue).joined(separator: ", ")
            mismatches.append(Mismatch(location: "header.Content-Type", message: "'\(contentType)' is not accepted (accepted: \(accepted))"))
            return mismatches
        }
        guard let content = document.components[entry], let schema = content.schema else { return mismatches }
        let value: JSONValue
        let isForm = contentType == "application/x-www-form-urlencoded"
        do {
            if isForm { value = try FormDecoder.decode(request.bodyText) }
            else if contentType.hasSuffix("json") { value = try request.json() }
            else { return mismatches }   // multipart and binary bodies: parameter checks only
        } catch {
            mismatches.append(Mismatch(location: "body", message: "does not parse as \(contentType): \(error)"))
            return mismatches
        }
        var validator = SchemaValidator(components: document.components, stringlyTyped: isForm)
        validator.validate(value, against: schema, at: "body")
        return mismatches + validator.mismatches
    }

    /// Records a test issue for each mismatch.
    public func expectValid(_ request: FakeHTTPServer.CapturedRequest, sourceLocation: SourceLocation = #_sourceLocation) {
        for mismatch in check(request) {
            Issue.record("\(request.method) \(request.path) departs from \(document.info.title): \(mismatch)", sourceLocation: sourceLocation)
        }
    }

    private func resolve(_ schema: Either<OpenAPI.Reference<JSONSchema>, JSONSchema>) -> JSONSchema? {
        document.components[schema]
    }

    private func pathValue(template: String, path: String, name: String) -> String? {
        var relative = path
        if !serverPathPrefix.isEmpty, relative.hasPrefix(serverPathPrefix) { relative = String(relative.dropFirst(serverPathPrefix.count)) }
        let patterns = template.split(separator: "/").map(String.init)
        guard let segments = align(patterns, relative.split(separator: "/").map(String.init)) else { return nil }
        for (pattern, segment) in zip(patterns, segments) {
            if let value = Self.match(pattern: pattern, segment: segment)?[name] { return value }
        }
        return nil
    }

    /// The request's segments lined up with the template's: one each, except that a final
    /// multi-segment parameter takes all that remain (joined by `/`). `nil` when the counts cannot line up.
    private func align(_ patterns: [String], _ segments: [String]) -> [String]? {
        if let last = patterns.last, last.hasPrefix("{"), last.hasSuffix("}"), multiSegmentParameters.contains(String(last.dropFirst().dropLast())),
           segments.count >= patterns.count {
            let fixed = patterns.count - 1
            return Array(segments.prefix(fixed)) + [segments.dropFirst(fixed).map { $0.removingPercentEncoding ?? $0 }.joined(separator: "/")]
        }
        return patterns.count == segments.count ? segments : nil
    }

    /// Matches one path segment against a template segment: literal, `{name}`, or a placeholder with literal
    /// text around it (`{Sid}.json`). Returns the placeholder's decoded value, or `nil` when it does not match.
    static func match(pattern: String, segment: String) -> [String: String]? {
        let decoded = segment.removingPercentEncoding ?? segment
        guard let open = pattern.firstIndex(of: "{"), let close = pattern[open...].firstIndex(of: "}") else {
            return pattern == decoded ? [:] : nil
        }
        let prefix = String(pattern[..<open]), suffix = String(pattern[pattern.index(after: close)...])
        let name = String(pattern[pattern.index(after: open)..<close])
        guard decoded.hasPrefix(prefix), decoded.hasSuffix(suffix), decoded.count > prefix.count + suffix.count else { return nil }
        return [name: String(decoded.dropFirst(prefix.count).dropLast(suffix.count))]
    }
}

/// JSON Schema validation over OpenAPIKit's schema model, collecting every mismatch.
struct SchemaValidator {
    let components: OpenAPI.Components
    /// Form and parameter values arrive as strings: accept "12" for integers, "true" for booleans.
    let stringlyTyped: Bool
    var mismatches: [OpenAPIRequestChecker.Mismatch] = []
    private var depth = 0

    init(components: OpenAPI.Components, stringlyTyped: Bool) {
        self.components = components
        self.stringlyTyped = stringlyTyped
    }

    mutating func fail(_ location: String, _ message: String) {
        mismatches.append(.init(location: location, message: message))
    }

    /// Whether `value` matches, without recording anything.
    func matches(_ value: JSONValue, _ schema: JSONSchema, at location: String, siblings: Siblings = .none) -> Bool {
        var probe = self
        probe.mismatches = []
        probe.validate(value, against: schema, at: location, siblings: siblings)
        return probe.mismatches.isEmpty
    }

    /// The property names a schema declares (through references and compositions), or `nil` when it
    /// allows any property.
    func declaredProperties(_ schema: JSONSchema, depth: Int = 0) -> Set<String>? {
        guard depth < 16 else { return nil }
        switch schema.value {
        case .object(_, let context):
            switch context.additionalProperties {
            case .some(.a(true)), .some(.b): return nil
            case .some(.a(false)): return Set(context.properties.keys)
            case .none: return context.properties.isEmpty ? nil : Set(context.properties.keys)
            }
        case .reference(let reference, _):
            guard let target = try? components.lookup(reference) else { return nil }
            return declaredProperties(target, depth: depth + 1)
        case .all(let parts, _), .one(let parts, _), .any(let parts, _):
            var names: Set<String> = []
            for part in parts {
                guard let declared = declaredProperties(part, depth: depth + 1) else { return nil }
                names.formUnion(declared)
            }
            return names
        case .fragment:
            return nil
        default:
            return []
        }
    }

    /// Property names that an enclosing `allOf` declares in its other parts, so that a part does not
    /// call them unknown; `open` when some part allows any property.
    struct Siblings {
        var names: Set<String> = []
        var open = false
        static let none = Siblings()
    }

    mutating func validate(_ value: JSONValue, against schema: JSONSchema, at location: String, siblings: Siblings = .none) {
        depth += 1
        defer { depth -= 1 }
        guard depth < 64 else { return }   // recursive schemas: stop, do not loop
        if value == .null {
            if schema.nullable { return }
            switch schema.value {
            case .null, .fragment, .reference, .all, .one, .any, .not: break
            default: fail(location, "is null, but the schema does not allow null"); return
            }
        }
        if let allowed = schema.allowedValues, !allowed.isEmpty {
            let options = allowed.compactMap { try? JSONValue(encoding: $0) }
            let candidate: [JSONValue] = stringlyTyped ? [value] + coerced(value) : [value]
            if !options.isEmpty && !candidate.contains(where: options.contains) {
                fail(location, "\(value) is not one of \(options.map(\.description).joined(separator: ", "))")
                return
            }
        }
        switch schema.value {
        case .null:
            if value != .null { fail(location, "must be null, is \(value.typeName)") }
        case .boolean:
            if case .bool = value { return }
            if stringlyTyped, case .string(let text) = value, text == "true" || text == "false" { return }
            fail(location, "must be a boolean, is \(value.typeName)")
        case .integer(_, let context):
            guard let number = number(value), number.rounded() == number else { fail(location, "must be an integer, is \(describe(value))"); return }
            if let minimum = context.minimum, number < Double(minimum.value) || (minimum.exclusive && number == Double(minimum.value)) {
                fail(location, "\(Int64(number)) is below the minimum \(minimum.value)")
            }
            if let maximum = context.maximum, number > Double(maximum.value) || (maximum.exclusive && number == Double(maximum.value)) {
                fail(location, "\(Int64(number)) is above the maximum \(maximum.value)")
            }
        case .number(_, let context):
            guard let number = number(value) else { fail(location, "must be a number, is \(describe(value))"); return }
            if let minimum = context.minimum, number < minimum.value || (minimum.exclusive && number == minimum.value) { fail(location, "\(number) is below the minimum \(minimum.value)") }
            if let maximum = context.maximum, number > maximum.value || (maximum.exclusive && number == maximum.value) { fail(location, "\(number) is above the maximum \(maximum.value)") }
        case .string(_, let context):
            guard case .string(let text) = value else { fail(location, "must be a string, is \(value.typeName)"); return }
            if text.count < context.minLength { fail(location, "is shorter than \(context.minLength) characters") }
            if let maximum = context.maxLength, text.count > maximum { fail(location, "is longer than \(maximum) characters") }
        case .object(_, let context):
            guard case .object(let members) = value else {
                // An empty form value ("") or an array decoded from indexes is not an object.
                fail(location, "must be an object, is \(value.typeName)")
                return
            }
            for name in context.requiredProperties where members[name] == nil {
                fail("\(location).\(name)", "required property is missing")
            }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let property = context.properties[name] {
                    validate(member, against: property, at: "\(location).\(name)")
                } else {
                    switch context.additionalProperties {
                    case .some(.a(true)): break
                    case .some(.b(let extra)): validate(member, against: extra, at: "\(location).\(name)")
                    case .some(.a(false)):
                        fail("\(location).\(name)", "is not a property of this object (the schema forbids others)")
                    case .none:
                        // Unknown properties are errors unless the schema allows them: a misspelled field
                        // must not pass. An object that declares no properties at all is free-form.
                        if context.properties.isEmpty || siblings.open || siblings.names.contains(name) { break }
                        fail("\(location).\(name)", "is not a property of this object (known: \(context.properties.keys.sorted().joined(separator: ", ")))")
                    }
                }
            }
        case .array(_, let context):
            guard case .array(let elements) = value else { fail(location, "must be an array, is \(value.typeName)"); return }
            if elements.count < context.minItems { fail(location, "has \(elements.count) items, fewer than \(context.minItems)") }
            if let maximum = context.maxItems, elements.count > maximum { fail(location, "has \(elements.count) items, more than \(maximum)") }
            if let items = context.items {
                for (index, element) in elements.enumerated() { validate(element, against: items, at: "\(location)[\(index)]") }
            }
        case .all(let schemas, _):
            var union = siblings
            for part in schemas {
                if let names = declaredProperties(part) { union.names.formUnion(names) } else { union.open = true }
            }
            for part in schemas { validate(value, against: part, at: location, siblings: union) }
        case .one(let schemas, _):
            let count = schemas.filter { matches(value, $0, at: location, siblings: siblings) }.count
            if count != 1 {
                fail(location, count == 0 ? "matches none of the \(schemas.count) oneOf alternatives\(closest(value, schemas, location, siblings))"
                                          : "matches \(count) oneOf alternatives, exactly one is allowed")
            }
        case .any(let schemas, _):
            if !schemas.contains(where: { matches(value, $0, at: location, siblings: siblings) }) {
                fail(location, "matches none of the \(schemas.count) anyOf alternatives\(closest(value, schemas, location, siblings))")
            }
        case .not(let negated, _):
            if matches(value, negated, at: location) { fail(location, "matches a schema it must not match") }
        case .reference(let reference, _):
            guard let target = try? components.lookup(reference) else {
                fail(location, "the document's reference \(reference.absoluteString) does not resolve")
                return
            }
            validate(value, against: target, at: location, siblings: siblings)
        case .fragment:
            break
        }
    }

    /// The mismatches of the alternative that came closest, to make a oneOf/anyOf failure readable.
    private func closest(_ value: JSONValue, _ schemas: [JSONSchema], _ location: String, _ siblings: Siblings) -> String {
        let attempts = schemas.map { schema -> [OpenAPIRequestChecker.Mismatch] in
            var probe = self
            probe.mismatches = []
            probe.validate(value, against: schema, at: location, siblings: siblings)
            return probe.mismatches
        }
        guard let best = attempts.min(by: { $0.count < $1.count }), !best.isEmpty else { return "" }
        return " (closest: \(best.prefix(3).map(\.description).joined(separator: "; ")))"
    }

    private func number(_ value: JSONValue) -> Double? {
        switch value {
        case .number(let number): return number
        case .string(let text) where stringlyTyped: return Double(text)
        default: return nil
        }
    }

    private func coerced(_ value: JSONValue) -> [JSONValue] {
        guard case .string(let text) = value else { return [] }
        var result: [JSONValue] = []
        if let number = Double(text) { result.append(.number(number)) }
        if text == "true" || text == "false" { result.append(.bool(text == "true")) }
        return result
    }

    private func describe(_ value: JSONValue) -> String {
        if case .string(let text) = value { return "the string \"\(text.prefix(40))\"" }
        return value.typeName
    }
}
