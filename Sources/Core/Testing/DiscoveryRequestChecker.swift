import Foundation
import NimbusCore
import Testing

/// Checks requests against a Google API Discovery document (or an extract of one made by
/// `scripts/discovery-extract`): the method is found by HTTP method and `flatPath`, query
/// parameters must be the method's or the document's global ones, and the JSON body must match the
/// request schema — unknown fields, wrong types and values outside an enum are mismatches, the way
/// Google's ESF refuses them.
///
/// ```swift
/// let checker = try DiscoveryRequestChecker(fixture: "identitytoolkit-v1", in: .module)
/// server.refuseRequests(failing: { checker.check($0) }) { problems in .json(400, …) }
/// ```
public struct DiscoveryRequestChecker: Sendable {
    struct Method: Sendable {
        let id: String
        let httpMethod: String
        let segments: [String]
        let parameters: [String: JSONValue]
        let request: String?
    }

    let methods: [Method]
    let global: [String: JSONValue]
    let schemas: [String: JSONValue]
    /// The path the document's methods are relative to (`/` for `https://identitytoolkit.googleapis.com/`).
    public let basePath: String

    /// Reads a document.
    public init(document: JSONValue) throws {
        guard case .object(let schemas)? = document["schemas"] else { throw NimbusError(.invalidArgument, "not a Discovery document: no schemas") }
        self.schemas = schemas
        global = document["parameters"]?.objectValue ?? [:]
        basePath = "/" + (document["servicePath"]?.stringValue ?? "")
        var methods: [Method] = []
        func walk(_ node: JSONValue?) {
            for (_, method) in node?["methods"]?.objectValue ?? [:] {
                guard let path = method["flatPath"]?.stringValue ?? method["path"]?.stringValue, let verb = method["httpMethod"]?.stringValue else { continue }
                methods.append(Method(id: method["id"]?.stringValue ?? path, httpMethod: verb, segments: path.split(separator: "/").map(String.init),
                                      parameters: method["parameters"]?.objectValue ?? [:], request: method["request"]?["$ref"]?.stringValue))
            }
            for (_, resource) in node?["resources"]?.objectValue ?? [:] { walk(resource) }
        }
        walk(document)
        self.methods = methods
    }

    /// Reads `Fixtures/<name>.json` of a test bundle.
    public init(fixture name: String, in bundle: Bundle) throws {
        guard let url = bundle.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
            throw NimbusError(.notFound, "Fixtures/\(name).json is missing from the test bundle")
        }
        try self.init(document: try JSONValue.parse(Array(try Data(contentsOf: url))))
    }

    /// Whether one template segment (`{projectsId}`, `accounts:signUp`, `{+name}`) matches one path segment.
    static func matches(_ template: String, _ segment: String) -> Bool {
        guard let open = template.firstIndex(of: "{"), let close = template.firstIndex(of: "}") else { return template == segment }
        let prefix = template[..<open], suffix = template[template.index(after: close)...]
        return segment.hasPrefix(prefix) && segment.hasSuffix(suffix) && segment.count > prefix.count + suffix.count
    }

    func method(for request: FakeHTTPServer.CapturedRequest) -> Method? {
        var path = request.path
        // Media uploads go to `/upload` + the service path (the document's `mediaUpload` protocols).
        if basePath.count > 1, path.hasPrefix("/upload" + basePath) { path = String(path.dropFirst("/upload".count)) }
        if basePath.count > 1, path.hasPrefix(basePath) { path = "/" + path.dropFirst(basePath.count) }
        let segments = path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
        return methods.first { method in
            method.httpMethod == request.method && method.segments.count == segments.count && zip(method.segments, segments).allSatisfy(Self.matches)
        }
    }

    /// Every departure of `request` from the document.
    public func check(_ request: FakeHTTPServer.CapturedRequest) -> [String] {
        guard let method = method(for: request) else { return ["\(request.method) \(request.path) is not a method of the document"] }
        var problems: [String] = []
        for (name, _) in request.query {
            guard let parameter = method.parameters[name] ?? global[name] else { problems.append("query.\(name) is not a parameter of \(method.id)"); continue }
            if parameter["location"]?.stringValue == "path" { problems.append("query.\(name) belongs in the path of \(method.id)") }
        }
        guard let schema = method.request else {
            if request.body.readableBytes > 0 { problems.append("\(method.id) takes no body") }
            return problems
        }
        let contentType = request.header("content-type") ?? ""
        let body: JSONValue
        if contentType.lowercased().hasPrefix("multipart/related") {
            // A multipart media upload: the first part is the resource, as JSON; the second the bytes.
            guard let metadata = Self.firstPart(of: request.bodyText, contentType: contentType) else {
                return problems + ["the multipart body of \(method.id) has no JSON first part"]
            }
            body = metadata
        } else {
            guard contentType.lowercased().hasPrefix("application/json") else { return problems + ["the body of \(method.id) is not sent as application/json"] }
            guard let json = try? request.json() else { return problems + ["the body of \(method.id) is not JSON"] }
            body = json
        }
        validate(body, against: ["$ref": .string(schema)], at: "body", into: &problems, depth: 0)
        return problems
    }

    /// The JSON of the first part of a `multipart/related` body.
    static func firstPart(of body: String, contentType: String) -> JSONValue? {
        guard let range = contentType.range(of: "boundary=") else { return nil }
        let boundary = "--" + contentType[range.upperBound...].trimmingCharacters(in: CharacterSet(charactersIn: "\" ;"))
        let parts = body.components(separatedBy: boundary)
        guard parts.count > 2, let split = parts[1].range(of: "\r\n\r\n") else { return nil }
        return try? JSONValue.parse(Array(parts[1][split.upperBound...].utf8))
    }

    func validate(_ value: JSONValue, against schema: JSONValue, at location: String, into problems: inout [String], depth: Int) {
        guard depth < 24 else { return }
        if let ref = schema["$ref"]?.stringValue {
            guard let resolved = schemas[ref] else { problems.append("\(location): unknown schema \(ref)"); return }
            validate(value, against: resolved, at: location, into: &problems, depth: depth + 1)
            return
        }
        switch schema["type"]?.stringValue {
        case "object":
            guard case .object(let fields) = value else { problems.append("\(location): expected an object"); return }
            if let properties = schema["properties"]?.objectValue {
                for (name, field) in fields {
                    guard let property = properties[name] else { problems.append("\(location).\(name): not a field of the schema"); continue }
                    validate(field, against: property, at: "\(location).\(name)", into: &problems, depth: depth + 1)
                }
            } else if let additional = schema["additionalProperties"] {
                for (name, field) in fields { validate(field, against: additional, at: "\(location).\(name)", into: &problems, depth: depth + 1) }
            }
        case "array":
            guard case .array(let items) = value else { problems.append("\(location): expected an array"); return }
            if let item = schema["items"] { for (index, element) in items.enumerated() { validate(element, against: item, at: "\(location)[\(index)]", into: &problems, depth: depth + 1) } }
        case "string":
            // int64/uint64 and bytes travel as strings; google-datetime and google-duration too.
            guard let text = value.stringValue else { problems.append("\(location): expected a string"); return }
            if let allowed = schema["enum"]?.arrayValue?.compactMap(\.stringValue), !allowed.contains(text) {
                problems.append("\(location): \"\(text.prefix(40))\" is not one of \(allowed.joined(separator: ", "))")
            }
            if ["int64", "uint64"].contains(schema["format"]?.stringValue), Int64(text) == nil, UInt64(text) == nil {
                problems.append("\(location): \"\(text.prefix(40))\" is not a \(schema["format"]!.stringValue!)")
            }
        case "boolean":
            if value.boolValue == nil { problems.append("\(location): expected a boolean") }
        case "integer", "number":
            if value.numberValue == nil { problems.append("\(location): expected a number") }
        case "any", nil:
            break
        default:
            break
        }
    }
}
