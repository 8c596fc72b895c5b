import Foundation
import NimbusCore
import NimbusHTTP
import Testing

/// Checks requests against a Swagger 2.0 description in Microsoft's AutoRest form — Azure Storage's
/// data-plane specs — where one path carries many operations told apart by their query and header
/// values. The keys of `x-ms-paths` are `/{containerName}/{blob}?comp=block`; what actually tells
/// the operations apart are the **required parameters with a single enum value** (`comp=block`,
/// `restype=container`, `x-ms-blob-type: BlockBlob`, `x-ms-lease-action: acquire`). A request
/// matches the operation whose such parameters it all carries, whose required parameters are all
/// there and whose query names are all known; among several, the one with the most such parameters.
///
/// Then, as ``OpenAPIRequestChecker`` does for OpenAPI documents, every mismatch is reported:
/// - a required parameter missing; a value of the wrong type (`integer`, `boolean`, `byte` =
///   base64, `date-time-rfc1123`), outside its `enum`, `minimum` or length bounds;
/// - a query parameter the operation does not have;
/// - **an `x-ms-` header the operation does not have** (a misspelled header fails), except those
///   under an `x-ms-header-collection-prefix` (metadata, `x-ms-meta-*`) and `x-ms-date`, which the
///   description leaves to the authorization policy;
/// - an XML body whose root element, child elements or leaf values depart from the body schema
///   (elements named by `xml.name`, arrays wrapped or not as `xml.wrapped` says, required properties).
///
/// `pattern` is not checked on path parameters: Azure's description gives `{blob}` a pattern far
/// narrower than the names the service accepts (any UTF-8 up to 1024 characters).
///
/// ```swift
/// let spec = try SwaggerRequestChecker.fixture("azure-blob-2024-08-04", in: .module).get()
/// server.refuseRequests(failing: { spec.check($0).map(\.description) }) { problems in .text(400, problems.joined(separator: "; ")) }
/// ```
public struct SwaggerRequestChecker: Sendable {
    public typealias Mismatch = OpenAPIRequestChecker.Mismatch

    /// One operation: a method on a path template, with its parameters resolved.
    public struct Operation: Sendable {
        /// `operationId` (`BlockBlob_Upload`).
        public var id: String
        public var method: String
        /// The `x-ms-paths` key, discriminator included.
        public var key: String
        var segments: [String]
        var parameters: [Parameter]

        /// The required single-value parameters that tell this operation apart from its neighbours.
        var discriminators: [Parameter] {
            parameters.filter { $0.required && $0.enumValues?.count == 1 && $0.location != "body" && $0.name.lowercased() != "x-ms-version" }
        }
    }

    struct Parameter: Sendable {
        var name: String
        var location: String
        var required: Bool
        var definition: JSONValue
        var enumValues: [String]? { definition["enum"]?.arrayValue?.compactMap(\.stringValue) }
        var collectionPrefix: String? { definition["x-ms-header-collection-prefix"]?.stringValue?.lowercased() }
    }

    /// `info.title`.
    public let title: String
    /// The operations, in document order.
    public let operations: [Operation]
    let definitions: [String: JSONValue]
    /// Path parameters that may span several segments when they end a template (`{blob}` in `/{containerName}/{blob}`).
    public var multiSegmentParameters: Set<String> = ["blob"]
    /// A path prefix stripped from request paths first (an emulator's `/devstoreaccount1`).
    public var pathPrefix: String = ""

    /// Parses a Swagger 2.0 document (operations under `paths` and `x-ms-paths`).
    public init(data: Data) throws {
        let document: JSONValue
        do { document = try JSONValue.parse(data) } catch { throw NimbusError(.invalidArgument, "not a JSON document: \(error)", underlying: error) }
        guard document["swagger"]?.stringValue == "2.0" else { throw NimbusError(.invalidArgument, "not a Swagger 2.0 document") }
        title = document["info"]?["title"]?.stringValue ?? "the API"
        definitions = document["definitions"]?.objectValue ?? [:]
        let shared = document["parameters"]?.objectValue ?? [:]
        func resolve(_ parameter: JSONValue) -> Parameter? {
            var parameter = parameter
            if let ref = parameter["$ref"]?.stringValue, let name = ref.split(separator: "/").last { parameter = shared[String(name)] ?? .null }
            guard let name = parameter["name"]?.stringValue, let location = parameter["in"]?.stringValue else { return nil }
            return Parameter(name: name, location: location, required: parameter["required"]?.boolValue ?? false, definition: parameter)
        }
        var operations: [Operation] = []
        let paths = (document["paths"]?.objectValue ?? [:]).merging(document["x-ms-paths"]?.objectValue ?? [:]) { first, _ in first }
        for (key, item) in paths.sorted(by: { $0.key < $1.key }) {
            let template = key.split(separator: "?", maxSplits: 1).first.map(String.init) ?? key
            let common = (item["parameters"]?.arrayValue ?? []).compactMap(resolve)
            for (method, operation) in item.objectValue ?? [:] where method != "parameters" {
                let own = (operation["parameters"]?.arrayValue ?? []).compactMap(resolve)
                operations.append(Operation(id: operation["operationId"]?.stringValue ?? "\(method) \(key)", method: method.uppercased(), key: key,
                                            segments: template.split(separator: "/").map(String.init), parameters: common + own))
            }
        }
        self.operations = operations
    }

    /// Loads a document.
    public init(contentsOf url: URL) throws { try self.init(data: try Data(contentsOf: url)) }

    /// A checker for `Fixtures/<name>.json` in a test bundle (keep it in a `static let`).
    public static func fixture(_ name: String, in bundle: Bundle) -> Result<SwaggerRequestChecker, any Error> {
        Result {
            guard let url = bundle.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
                throw NimbusError(.notFound, "Fixtures/\(name).json is missing from the test bundle")
            }
            return try SwaggerRequestChecker(contentsOf: url)
        }
    }

    /// The operation `request` is, or `nil`.
    public func operation(for request: FakeHTTPServer.CapturedRequest) -> Operation? {
        var path = request.path
        if !pathPrefix.isEmpty, path.hasPrefix(pathPrefix) { path = String(path.dropFirst(pathPrefix.count)) }
        let segments = path.dropFirst(path.hasPrefix("/") ? 1 : 0).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let concrete = segments == [""] ? [] : segments
        var best: (operation: Operation, problems: [Mismatch], score: Int)?
        for operation in operations where operation.method == request.method.uppercased() && pathValues(operation, concrete) != nil {
            guard operation.discriminators.allSatisfy({ value(of: $0, in: request) == $0.enumValues?.first }) else { continue }
            let problems = check(request, as: operation)
            let score = operation.discriminators.count
            if best == nil || problems.count < best!.problems.count || (problems.count == best!.problems.count && score > best!.score) {
                best = (operation, problems, score)
            }
        }
        return best?.operation
    }

    /// Every mismatch between `request` and the document.
    public func check(_ request: FakeHTTPServer.CapturedRequest) -> [Mismatch] {
        if let operation = operation(for: request) { return check(request, as: operation) }
        let told = request.query.filter { ["comp", "restype"].contains($0.0) }.map { "\($0.0)=\($0.1)" }
            + request.headers.filter { ["x-ms-blob-type", "x-ms-lease-action"].contains($0.0.lowercased()) }.map { "\($0.0): \($0.1)" }
        return [Mismatch(location: "operation", message: "\(request.method) \(request.path)\(told.isEmpty ? "" : " with " + told.joined(separator: ", ")) is not an operation of \(title)")]
    }

    /// Records a test issue for each mismatch.
    public func expectValid(_ request: FakeHTTPServer.CapturedRequest, sourceLocation: SourceLocation = #_sourceLocation) {
        for mismatch in check(request) {
            Issue.record("\(request.method) \(request.path) departs from \(title): \(mismatch)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Parameters

    func check(_ request: FakeHTTPServer.CapturedRequest, as operation: Operation) -> [Mismatch] {
        var mismatches: [Mismatch] = []
        var path = request.path
        if !pathPrefix.isEmpty, path.hasPrefix(pathPrefix) { path = String(path.dropFirst(pathPrefix.count)) }
        let concrete = path.dropFirst(path.hasPrefix("/") ? 1 : 0).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let values = pathValues(operation, concrete == [""] ? [] : concrete) ?? [:]
        for parameter in operation.parameters where parameter.location != "body" {
            let location = "\(parameter.location).\(parameter.name)"
            let found = parameter.location == "path" ? values[parameter.name] : value(of: parameter, in: request)
            guard let found else {
                if parameter.required { mismatches.append(Mismatch(location: location, message: "required parameter is missing")) }
                continue
            }
            mismatches += validate(found, parameter.definition, at: location, checkPattern: parameter.location != "path")
        }
        let queryNames = Set(operation.parameters.filter { $0.location == "query" }.map(\.name))
        for (name, _) in request.query where !queryNames.contains(name) {
            mismatches.append(Mismatch(location: "query.\(name)", message: "not a parameter of \(operation.id)"))
        }
        let headers = operation.parameters.filter { $0.location == "header" }
        let headerNames = Set(headers.map { $0.name.lowercased() })
        let prefixes = headers.compactMap(\.collectionPrefix)
        for (name, _) in request.headers {
            let lower = name.lowercased()
            guard lower.hasPrefix("x-ms-"), lower != "x-ms-date", !headerNames.contains(lower), !prefixes.contains(where: { lower.hasPrefix($0) }) else { continue }
            mismatches.append(Mismatch(location: "header.\(name)", message: "not a parameter of \(operation.id)"))
        }
        mismatches += checkBody(request, operation)
        return mismatches
    }

    func value(of parameter: Parameter, in request: FakeHTTPServer.CapturedRequest) -> String? {
        switch parameter.location {
        case "query": request.queryItem(parameter.name)
        case "header": request.header(parameter.name)
        default: nil
        }
    }

    /// The path parameters of `segments` under `operation`'s template, or `nil` when it does not match.
    func pathValues(_ operation: Operation, _ segments: [String]) -> [String: String]? {
        var values: [String: String] = [:]
        for (index, pattern) in operation.segments.enumerated() {
            guard index < segments.count else { return nil }
            if pattern.hasPrefix("{") && pattern.hasSuffix("}") {
                let name = String(pattern.dropFirst().dropLast())
                if index == operation.segments.count - 1, multiSegmentParameters.contains(name) {
                    let rest = segments[index...].joined(separator: "/")
                    guard !rest.isEmpty else { return nil }
                    values[name] = rest.removingPercentEncoding ?? rest
                    return values
                }
                guard !segments[index].isEmpty else { return nil }
                values[name] = segments[index].removingPercentEncoding ?? segments[index]
            } else if pattern != segments[index] {
                return nil
            }
        }
        return segments.count == operation.segments.count ? values : nil
    }

    func validate(_ value: String, _ definition: JSONValue, at location: String, checkPattern: Bool) -> [Mismatch] {
        var mismatches: [Mismatch] = []
        let type = definition["type"]?.stringValue ?? "string"
        if type == "array" {
            let items = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            for (index, item) in items.enumerated() {
                mismatches += validate(item, definition["items"] ?? [:], at: "\(location)[\(index)]", checkPattern: checkPattern)
            }
            return mismatches
        }
        switch (type, definition["format"]?.stringValue) {
        case ("integer", _), ("number", _):
            guard let number = Double(value), type == "number" || Int64(value) != nil else {
                return [Mismatch(location: location, message: "'\(value.prefix(40))' is not an \(type)")]
            }
            if let minimum = definition["minimum"]?.numberValue, number < minimum { mismatches.append(Mismatch(location: location, message: "\(value) is below the minimum \(minimum)")) }
            if let maximum = definition["maximum"]?.numberValue, number > maximum { mismatches.append(Mismatch(location: location, message: "\(value) is above the maximum \(maximum)")) }
        case ("boolean", _):
            if value != "true" && value != "false" { mismatches.append(Mismatch(location: location, message: "'\(value.prefix(40))' is not true or false")) }
        case ("string", "byte"):
            if Data(base64Encoded: value) == nil { mismatches.append(Mismatch(location: location, message: "'\(value.prefix(40))' is not base64")) }
        case ("string", "date-time-rfc1123"):
            if HTTPDate.parse(value) == nil { mismatches.append(Mismatch(location: location, message: "'\(value.prefix(40))' is not an RFC 1123 date")) }
        case ("string", "date-time"):
            if Date(iso8601: value) == nil { mismatches.append(Mismatch(location: location, message: "'\(value.prefix(40))' is not an ISO 8601 date-time")) }
        default:
            break
        }
        if let allowed = definition["enum"]?.arrayValue?.compactMap(\.stringValue), !allowed.contains(value) {
            mismatches.append(Mismatch(location: location, message: "'\(value.prefix(60))' is not one of \(allowed.joined(separator: ", "))"))
        }
        if let maximum = definition["maxLength"]?.numberValue, value.count > Int(maximum) {
            mismatches.append(Mismatch(location: location, message: "longer than \(Int(maximum)) characters"))
        }
        if let minimum = definition["minLength"]?.numberValue, value.count < Int(minimum) {
            mismatches.append(Mismatch(location: location, message: "shorter than \(Int(minimum)) characters"))
        }
        if checkPattern, let pattern = definition["pattern"]?.stringValue, value.range(of: pattern, options: .regularExpression) == nil {
            mismatches.append(Mismatch(location: location, message: "'\(value.prefix(60))' does not match \(pattern)"))
        }
        return mismatches
    }

    // MARK: Bodies

    func checkBody(_ request: FakeHTTPServer.CapturedRequest, _ operation: Operation) -> [Mismatch] {
        guard let body = operation.parameters.first(where: { $0.location == "body" }) else {
            return request.body.readableBytes > 0 ? [Mismatch(location: "body", message: "\(operation.id) takes no body, but \(request.body.readableBytes) bytes were sent")] : []
        }
        let schema = resolve(body.definition["schema"] ?? [:])
        guard schema.definition["format"]?.stringValue != "file" else { return [] }   // bytes, as they are (an empty object too)
        guard request.body.readableBytes > 0 else { return body.required ? [Mismatch(location: "body", message: "required body is missing")] : [] }
        let element: XMLElement
        do { element = try XMLElement.parse(Data(request.body.readableBytesView)) } catch {
            return [Mismatch(location: "body", message: "is not XML: \(error)")]
        }
        let rootName = schema.definition["xml"]?["name"]?.stringValue ?? schema.name ?? body.name
        guard element.name == rootName else { return [Mismatch(location: "body", message: "the root element is <\(element.name)>, not <\(rootName)>")] }
        return validate(element, schema.definition, at: "body")
    }

    func resolve(_ schema: JSONValue) -> (definition: JSONValue, name: String?) {
        guard let ref = schema["$ref"]?.stringValue, let name = ref.split(separator: "/").last.map(String.init) else { return (schema, nil) }
        return (definitions[name] ?? [:], name)
    }

    /// The element name a property (or an array's item) is written as.
    func elementName(_ property: JSONValue, default name: String) -> String {
        if let explicit = property["xml"]?["name"]?.stringValue { return explicit }
        let resolved = resolve(property)
        return resolved.definition["xml"]?["name"]?.stringValue ?? resolved.name ?? name
    }

    func validate(_ element: XMLElement, _ schema: JSONValue, at location: String) -> [Mismatch] {
        let (definition, _) = resolve(schema)
        let type = definition["type"]?.stringValue ?? (definition["properties"] != nil ? "object" : "string")
        guard type == "object" else {
            guard element.children.isEmpty else { return [Mismatch(location: location, message: "is a \(type) but has child elements")] }
            return validate(element.text, definition, at: location, checkPattern: true)
        }
        let properties = (definition["properties"]?.objectValue ?? [:]).filter { $0.value["xml"]?["attribute"]?.boolValue != true }
        var mismatches: [Mismatch] = []
        var seen: Set<String> = []
        for child in element.children {
            let match = properties.first { name, property in
                let resolved = resolve(property).definition
                if resolved["type"]?.stringValue == "array", resolved["xml"]?["wrapped"]?.boolValue != true, property["xml"]?["wrapped"]?.boolValue != true {
                    return elementName(resolved["items"] ?? [:], default: name) == child.name
                }
                return elementName(property, default: name) == child.name
            }
            guard let (name, property) = match else {
                mismatches.append(Mismatch(location: "\(location).\(child.name)", message: "not a property of this body"))
                continue
            }
            seen.insert(name)
            let resolved = resolve(property).definition
            if resolved["type"]?.stringValue == "array" {
                let items = resolved["items"] ?? [:]
                let wrapped = resolved["xml"]?["wrapped"]?.boolValue == true || property["xml"]?["wrapped"]?.boolValue == true
                for item in wrapped ? child.children : [child] {
                    let itemName = elementName(items, default: name)
                    if item.name != itemName { mismatches.append(Mismatch(location: "\(location).\(child.name).\(item.name)", message: "expected <\(itemName)>")) }
                    mismatches += validate(item, items, at: "\(location).\(child.name)")
                }
            } else {
                mismatches += validate(child, property, at: "\(location).\(child.name)")
            }
        }
        for required in definition["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where !seen.contains(required) {
            if properties[required] != nil { mismatches.append(Mismatch(location: "\(location).\(required)", message: "required property is missing")) }
        }
        return mismatches
    }
}
