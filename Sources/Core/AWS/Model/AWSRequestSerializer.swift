import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP

/// An operation's input bound to HTTP the way its model says: URI labels (greedy `{Key+}` keeps
/// its slashes), query string, headers and header maps, the payload member or the body members,
/// and the host prefix — for the query, EC2, JSON, REST-JSON and REST-XML protocols.
///
/// The input is JSON named by the model's member names; timestamps are ISO 8601 strings or epoch
/// seconds, blobs base64 strings (or the `payload` bytes for a streaming body).
public struct AWSSerializedRequest: Sendable, Equatable {
    /// The HTTP method.
    public var method: String
    /// The percent-encoded path, without the query.
    public var path: String
    /// Query parameters, decoded, in order (the URI template's own first).
    public var query: [Pair]
    /// Headers, in order.
    public var headers: [Pair]
    /// The body.
    public var body: [UInt8]
    /// A streaming payload's bytes (S3 `Body`), sent as they are instead of `body`.
    public var payload: ByteBuffer?
    /// A prefix for the endpoint's host (`{AccountId}.`), filled from host labels.
    public var hostPrefix: String?

    /// A name and a value.
    public struct Pair: Sendable, Hashable, CustomStringConvertible {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) { self.name = name; self.value = value }
        public var description: String { "\(name)=\(value)" }
    }

    /// The query protocols' form parameters (the body, decoded), for tests and logs.
    public var formParameters: [Pair] {
        String(decoding: body, as: UTF8.self).split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String { text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text) }
            return Pair(decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }
}

/// Serializes operation inputs from a service model (botocore's serializers, written again in Swift).
public enum AWSRequestSerializer {
    /// Binds `input` to an HTTP request for `operation`. Validate first (``AWSInputValidator``).
    /// - Parameter payload: the bytes of a streaming payload member (S3 `Body`), instead of base64 in `input`.
    /// - Throws: `invalidArgument` when a value cannot be written (a URI label missing, a host label with
    ///   characters a host cannot hold, a blob that is not base64).
    public static func serialize(_ input: JSONValue, for operation: AWSOperationModel, in model: AWSServiceModel,
                                 payload: ByteBuffer? = nil) throws -> AWSSerializedRequest {
        var writer = Writer(model: model, operation: operation)
        let inputShape = try operation.input.map { try model.shape($0.shape) }
        var values = input.objectValue ?? [:]
        if let inputShape {
            // botocore's handler: an idempotency token left out is filled with a fresh UUID.
            for (name, ref) in inputShape.members where ref.serialization.idempotencyToken && values[name] == nil {
                values[name] = .string(UUID().uuidString.lowercased())
            }
        }
        var request = AWSSerializedRequest(method: operation.method, path: "/", query: [], headers: [], body: [], payload: nil, hostPrefix: nil)
        request.hostPrefix = try writer.hostPrefix(values, shape: inputShape)
        switch model.metadata.protocolName {
        case "query", "ec2":
            request.method = operation.method
            request.headers = [.init("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
            var pairs: [AWSSerializedRequest.Pair] = [.init("Action", operation.name), .init("Version", model.metadata.apiVersion)]
            if let inputShape { try writer.query(.object(values), shape: inputShape, prefix: "", into: &pairs) }
            request.body = Array(pairs.map { "\(AWSClient.formEscape($0.name))=\(AWSClient.formEscape($0.value))" }.joined(separator: "&").utf8)
        case "json":
            request.headers = [.init("X-Amz-Target", "\(model.metadata.targetPrefix ?? "").\(operation.name)"),
                               .init("Content-Type", "application/x-amz-json-\(model.metadata.jsonVersion ?? "1.0")")]
            if model.metadata.isQueryCompatible { request.headers.append(.init("x-amzn-query-mode", "true")) }
            let body = try inputShape.map { try writer.json(.object(values), shape: $0) } ?? [:]
            request.body = Array(body.description.utf8)
        default:
            try writer.rest(values, shape: inputShape, inputRef: operation.input, payload: payload, into: &request)
        }
        if model.metadata.serviceID == "Glacier" {
            // botocore's Glacier handlers: the API version on every request, and a payload's linear and tree hashes.
            request.headers.append(.init("x-amz-glacier-version", model.metadata.apiVersion))
            if let payload = request.payload {
                if !request.headers.contains(where: { $0.name.lowercased() == "x-amz-sha256-tree-hash" }) {
                    request.headers.append(.init("x-amz-sha256-tree-hash", GlacierTreeHash.hex(of: payload)))
                }
                request.headers.append(.init("x-amz-content-sha256", payload.withUnsafeReadableBytes { SigV4.sha256Hex($0) }))
            }
        }
        return request
    }

    struct Writer {
        let model: AWSServiceModel
        let operation: AWSOperationModel
        var isXML: Bool { model.metadata.protocolName == "rest-xml" }
        var isEC2: Bool { model.metadata.protocolName == "ec2" }

        func fail(_ message: String) -> NimbusError {
            NimbusError(.invalidArgument, "\(model.name) \(operation.name): \(message)")
        }

        // MARK: Host prefix

        func hostPrefix(_ values: [String: JSONValue], shape: AWSShape?) throws -> String? {
            guard var prefix = operation.hostPrefix else { return nil }
            for (name, ref) in shape?.members ?? [] where ref.serialization.hostLabel {
                guard let value = values[name].map(scalarText) else { throw fail("\(name) is required: it is part of the host name") }
                guard !value.isEmpty, value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }) else {
                    throw fail("\(name) '\(value)' cannot be part of a host name: use letters, digits, hyphens and periods only")
                }
                prefix = prefix.replacingOccurrences(of: "{\(name)}", with: value)
            }
            return prefix
        }

        // MARK: Scalars

        func scalarText(_ value: JSONValue) -> String {
            switch value {
            case .string(let text): text
            case .bool(let flag): flag ? "true" : "false"
            case .number(let number): AWSWireFormat.integerOrFloat(number)
            default: value.description
            }
        }

        func number(_ value: JSONValue, kind: AWSShape.Kind) -> String {
            guard let number = value.numberValue else { return scalarText(value) }
            switch kind {
            case .float, .double: return AWSWireFormat.pythonFloat(number)
            default: return AWSWireFormat.integerOrFloat(number)
            }
        }

        func timestamp(_ value: JSONValue, format: String?, default fallback: String) throws -> JSONValue {
            guard let instant = AWSWireFormat.instant(value) else { throw fail("'\(scalarText(value))' is not a timestamp (ISO 8601 or epoch seconds)") }
            switch (format ?? fallback).lowercased() {
            case "unixtimestamp": return .number(instant.timeIntervalSince1970)
            case "rfc822": return .string(AWSWireFormat.rfc822(instant))
            default: return .string(AWSWireFormat.iso8601(instant))
            }
        }

        // MARK: Query and EC2

        func query(_ value: JSONValue, shape: AWSShape, prefix: String, into pairs: inout [AWSSerializedRequest.Pair]) throws {
            switch shape.kind {
            case .structure:
                guard let members = value.objectValue else { return }
                for (name, ref) in shape.members {
                    guard let member = members[name], member != .null else { continue }
                    let wire = queryName(ref.serialization, default: name)
                    try query(member, shape: try model.shape(ref.shape), ref: ref, prefix: prefix.isEmpty ? wire : "\(prefix).\(wire)", into: &pairs)
                }
            default:
                try query(value, shape: shape, ref: nil, prefix: prefix, into: &pairs)
            }
        }

        func queryName(_ serialization: AWSSerialization, default name: String) -> String {
            guard isEC2 else { return serialization.name ?? name }
            if let queryName = serialization.queryName { return queryName }
            if let wire = serialization.name, let first = wire.first { return first.uppercased() + wire.dropFirst() }
            return name
        }

        func query(_ value: JSONValue, shape: AWSShape, ref: AWSShapeRef?, prefix: String, into pairs: inout [AWSSerializedRequest.Pair]) throws {
            let serialization = ref?.serialization ?? shape.serialization
            switch shape.kind {
            case .structure:
                try query(value, shape: shape, prefix: prefix, into: &pairs)
            case .list:
                guard let items = value.arrayValue, let memberRef = shape.member else { return }
                let element = try model.shape(memberRef.shape)
                if isEC2 {
                    for (index, item) in items.enumerated() { try query(item, shape: element, ref: memberRef, prefix: "\(prefix).\(index + 1)", into: &pairs) }
                    return
                }
                guard !items.isEmpty else { pairs.append(.init(prefix, "")); return }
                let listPrefix: String
                if serialization.flattened {
                    if let name = memberRef.serialization.name, !name.isEmpty {
                        listPrefix = (prefix.split(separator: ".").dropLast().map(String.init) + [name]).joined(separator: ".")
                    } else {
                        listPrefix = prefix
                    }
                } else {
                    listPrefix = "\(prefix).\(memberRef.serialization.name ?? "member")"
                }
                for (index, item) in items.enumerated() { try query(item, shape: element, ref: memberRef, prefix: "\(listPrefix).\(index + 1)", into: &pairs) }
            case .map:
                guard let entries = value.objectValue, let keyRef = shape.key, let valueRef = shape.value else { return }
                let base = serialization.flattened ? prefix : "\(prefix).entry"
                let keyShape = try model.shape(keyRef.shape), valueShape = try model.shape(valueRef.shape)
                for (index, key) in entries.keys.sorted().enumerated() {
                    try query(.string(key), shape: keyShape, ref: keyRef, prefix: "\(base).\(index + 1).\(keyRef.serialization.name ?? "key")", into: &pairs)
                    try query(entries[key]!, shape: valueShape, ref: valueRef, prefix: "\(base).\(index + 1).\(valueRef.serialization.name ?? "value")", into: &pairs)
                }
            case .timestamp:
                pairs.append(.init(prefix, scalarText(try timestamp(value, format: serialization.timestampFormat, default: "iso8601"))))
            case .boolean:
                pairs.append(.init(prefix, value.boolValue == true ? "true" : "false"))
            case .integer, .long, .float, .double:
                pairs.append(.init(prefix, number(value, kind: shape.kind)))
            case .blob, .string:
                pairs.append(.init(prefix, scalarText(value)))
            }
        }

        // MARK: JSON

        func json(_ value: JSONValue, shape: AWSShape) throws -> JSONValue {
            switch shape.kind {
            case .structure:
                if shape.isDocument { return value }
                guard let members = value.objectValue else { return value }
                var out: [String: JSONValue] = [:]
                for (name, ref) in shape.members {
                    guard let member = members[name], member != .null else { continue }
                    out[ref.serialization.name ?? name] = try json(member, shape: try model.shape(ref.shape), ref: ref)
                }
                return .object(out)
            default:
                return try json(value, shape: shape, ref: nil)
            }
        }

        func json(_ value: JSONValue, shape: AWSShape, ref: AWSShapeRef?) throws -> JSONValue {
            switch shape.kind {
            case .structure: return try json(value, shape: shape)
            case .list:
                guard let items = value.arrayValue, let memberRef = shape.member else { return value }
                let element = try model.shape(memberRef.shape)
                return .array(try items.map { try json($0, shape: element, ref: memberRef) })
            case .map:
                guard let entries = value.objectValue, let valueRef = shape.value else { return value }
                let valueShape = try model.shape(valueRef.shape)
                return .object(try entries.mapValues { try json($0, shape: valueShape, ref: valueRef) })
            case .timestamp:
                return try timestamp(value, format: (ref?.serialization ?? shape.serialization).timestampFormat, default: "unixtimestamp")
            default:
                return value
            }
        }

        // MARK: REST

        func rest(_ values: [String: JSONValue], shape: AWSShape?, inputRef: AWSShapeRef?, payload: ByteBuffer?, into request: inout AWSSerializedRequest) throws {
            let template = operation.requestURI
            let (pathTemplate, staticQuery) = template.split(separator: "?", maxSplits: 1).map(String.init).splitPair
            for item in staticQuery?.split(separator: "&") ?? [] {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                request.query.append(.init(String(parts[0]).removingPercentEncoding ?? String(parts[0]),
                                           parts.count > 1 ? String(parts[1]).removingPercentEncoding ?? String(parts[1]) : ""))
            }
            guard let shape else {
                request.path = pathTemplate
                return
            }
            var labels: [String: String] = [:]
            var bodyMembers: [(String, AWSShapeRef, JSONValue)] = []
            for (name, ref) in shape.members {
                guard let value = values[name], value != .null else { continue }
                let memberShape = try model.shape(ref.shape)
                let serialization = ref.serialization
                let wire = serialization.name ?? name
                switch serialization.location {
                case "uri":
                    labels[wire] = try uriValue(value, shape: memberShape, serialization: serialization)
                case "querystring":
                    if memberShape.kind == .map, let entries = value.objectValue {
                        for key in entries.keys.sorted() {
                            if let items = entries[key]?.arrayValue {
                                for item in items { request.query.append(.init(key, scalarText(item))) }
                            } else {
                                request.query.append(.init(key, scalarText(entries[key]!)))
                            }
                        }
                    } else if memberShape.kind == .list, let items = value.arrayValue, let memberRef = memberShape.member {
                        let element = try model.shape(memberRef.shape)
                        for item in items { request.query.append(.init(wire, try uriValue(item, shape: element, serialization: memberRef.serialization))) }
                    } else {
                        request.query.append(.init(wire, try uriValue(value, shape: memberShape, serialization: serialization)))
                    }
                case "header":
                    if memberShape.kind == .list, value.arrayValue?.isEmpty != false { continue }
                    request.headers.append(.init(wire, try headerValue(value, shape: memberShape, serialization: serialization)))
                case "headers":
                    for key in (value.objectValue ?? [:]).keys.sorted() { request.headers.append(.init(wire + key, scalarText(value[key]!))) }
                case "statusCode":
                    continue
                default:
                    bodyMembers.append((name, ref, value))
                }
            }
            request.path = try render(pathTemplate, labels: labels)
            let isStreamingPayload: Bool
            if let payloadName = shape.payload, let payloadRef = shape.member(payloadName) {
                let payloadShape = try model.shape(payloadRef.shape)
                isStreamingPayload = payloadShape.kind == .blob || payloadShape.kind == .string
                if isStreamingPayload {
                    if let payload {
                        request.payload = payload
                    } else if let value = values[payloadName], value != .null {
                        request.body = try payloadBytes(value, shape: payloadShape, member: payloadName)
                    }
                } else if let value = values[payloadName], value != .null {
                    request.body = try restBody(value, shape: payloadShape, ref: payloadRef, rootName: payloadRef.serialization.name ?? payloadName)
                } else if !isXML {
                    request.body = Array("{}".utf8)
                }
            } else {
                isStreamingPayload = false
                if !bodyMembers.isEmpty {
                    let object = JSONValue.object(Dictionary(bodyMembers.map { ($0.0, $0.2) }, uniquingKeysWith: { first, _ in first }))
                    request.body = try restBody(object, shape: shape, ref: inputRef, rootName: inputRef?.serialization.name ?? shape.serialization.name ?? shape.name)
                } else if !isXML, shape.members.contains(where: { $0.ref.serialization.location == nil }) {
                    request.body = Array("{}".utf8)
                }
            }
            if !isXML, !isStreamingPayload, !request.body.isEmpty, !request.headers.contains(where: { $0.name.lowercased() == "content-type" }) {
                request.headers.append(.init("Content-Type", "application/json"))
            }
        }

        func payloadBytes(_ value: JSONValue, shape: AWSShape, member: String) throws -> [UInt8] {
            guard let text = value.stringValue else { throw fail("\(member) must be a string") }
            if shape.kind == .string { return Array(text.utf8) }
            guard let data = Data(base64Encoded: text) else {
                throw fail("\(member) is a blob: give it as base64 (or pass the bytes as the call's payload)")
            }
            return Array(data)
        }

        func restBody(_ value: JSONValue, shape: AWSShape, ref: AWSShapeRef?, rootName: String) throws -> [UInt8] {
            if isXML {
                var xml = XMLWriter()
                try writeXML(value, shape: shape, ref: ref, name: rootName, into: &xml, parent: nil)
                return Array(xml.text.utf8)
            }
            return Array(try json(value, shape: shape, ref: ref).description.utf8)
        }

        func uriValue(_ value: JSONValue, shape: AWSShape, serialization: AWSSerialization) throws -> String {
            switch shape.kind {
            case .boolean: return value.boolValue == true ? "true" : "false"
            case .timestamp: return scalarText(try timestamp(value, format: serialization.timestampFormat, default: "iso8601"))
            case .integer, .long, .float, .double: return number(value, kind: shape.kind)
            default: return scalarText(value)
            }
        }

        func headerValue(_ value: JSONValue, shape: AWSShape, serialization: AWSSerialization) throws -> String {
            switch shape.kind {
            case .timestamp:
                guard let instant = AWSWireFormat.instant(value) else { throw fail("'\(scalarText(value))' is not a timestamp") }
                let whole = JSONValue.number(instant.timeIntervalSince1970.rounded(.down))
                return scalarText(try timestamp(whole, format: serialization.timestampFormat, default: "rfc822"))
            case .list:
                guard let items = value.arrayValue, let memberRef = shape.member else { return scalarText(value) }
                let element = try model.shape(memberRef.shape)
                return try items.filter { $0 != .null }.map { item -> String in
                    if element.kind == .string, let text = item.stringValue {
                        return text.contains("\"") || text.contains(",") ? "\"" + text.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : text
                    }
                    return try headerValue(item, shape: element, serialization: memberRef.serialization)
                }.joined(separator: ",")
            case .boolean: return value.boolValue == true ? "true" : "false"
            case .integer, .long, .float, .double: return number(value, kind: shape.kind)
            default:
                if serialization.jsonValue { return Data(AWSWireFormat.compactJSON(value).utf8).base64EncodedString() }
                return scalarText(value)
            }
        }

        func render(_ template: String, labels: [String: String]) throws -> String {
            var out = ""
            var rest = Substring(template)
            while let open = rest.firstIndex(of: "{") {
                out += rest[..<open]
                guard let close = rest[open...].firstIndex(of: "}") else { break }
                var label = String(rest[rest.index(after: open)..<close])
                let greedy = label.hasSuffix("+")
                if greedy { label.removeLast() }
                guard let value = labels[label] else { throw fail("\(label) is required: it is part of the path \(template)") }
                out += SigV4.uriEncode(value, keepSlash: greedy)
                rest = rest[rest.index(after: close)...]
            }
            return out + rest
        }

        // MARK: XML

        func writeXML(_ value: JSONValue, shape: AWSShape, ref: AWSShapeRef?, name: String, into xml: inout XMLWriter, parent: Int?) throws {
            let serialization = ref?.serialization ?? shape.serialization
            switch shape.kind {
            case .structure:
                let node = xml.open(name, parent: parent)
                xml.namespace(serialization.xmlNamespace, node: node)
                let members = value.objectValue ?? [:]
                for (memberName, memberRef) in shape.members {
                    guard let member = members[memberName], member != .null else { continue }
                    let wire = memberRef.serialization.name ?? memberName
                    if memberRef.serialization.xmlAttribute {
                        xml.attribute(wire, scalarText(member), node: node)
                        continue
                    }
                    try writeXML(member, shape: try model.shape(memberRef.shape), ref: memberRef, name: wire, into: &xml, parent: node)
                }
            case .list:
                guard let memberRef = shape.member else { return }
                let element = try model.shape(memberRef.shape)
                let listNode: Int?
                let elementName: String
                if serialization.flattened {
                    listNode = parent
                    elementName = name
                } else {
                    listNode = xml.open(name, parent: parent)
                    elementName = memberRef.serialization.name ?? "member"
                }
                if let listNode, !serialization.flattened { xml.namespace(serialization.xmlNamespace, node: listNode) }
                for item in value.arrayValue ?? [] { try writeXML(item, shape: element, ref: memberRef, name: elementName, into: &xml, parent: listNode) }
            case .map:
                guard let keyRef = shape.key, let valueRef = shape.value else { return }
                let keyShape = try model.shape(keyRef.shape), valueShape = try model.shape(valueRef.shape)
                var mapNode: Int?
                if !serialization.flattened {
                    mapNode = xml.open(name, parent: parent)
                    xml.namespace(serialization.xmlNamespace, node: mapNode!)
                }
                let entries = value.objectValue ?? [:]
                for key in entries.keys.sorted() {
                    let entry = serialization.flattened ? xml.open(name, parent: parent) : xml.open("entry", parent: mapNode)
                    try writeXML(.string(key), shape: keyShape, ref: keyRef, name: keyRef.serialization.name ?? "key", into: &xml, parent: entry)
                    try writeXML(entries[key]!, shape: valueShape, ref: valueRef, name: valueRef.serialization.name ?? "value", into: &xml, parent: entry)
                }
            default:
                let text: String = switch shape.kind {
                case .boolean: value.boolValue == true ? "true" : "false"
                case .timestamp: scalarText(try timestamp(value, format: serialization.timestampFormat, default: "iso8601"))
                case .integer, .long, .float, .double: number(value, kind: shape.kind)
                default: scalarText(value)
                }
                let node = xml.open(name, parent: parent)
                xml.text(text, node: node)
                xml.namespace(serialization.xmlNamespace, node: node)
            }
        }
    }
}

private extension Array where Element == String {
    var splitPair: (String, String?) { (first ?? "/", count > 1 ? self[1] : nil) }
}

/// A small XML tree written as ElementTree writes it (`<a />` when empty, attributes in insertion order).
struct XMLWriter {
    struct Node {
        var name: String
        var attributes: [(String, String)] = []
        var text = ""
        var children: [Int] = []
    }

    var nodes: [Node] = []
    var roots: [Int] = []

    mutating func open(_ name: String, parent: Int?) -> Int {
        nodes.append(Node(name: name))
        let index = nodes.count - 1
        if let parent { nodes[parent].children.append(index) } else { roots.append(index) }
        return index
    }

    mutating func attribute(_ name: String, _ value: String, node: Int) { nodes[node].attributes.append((name, value)) }

    mutating func text(_ text: String, node: Int) { nodes[node].text = text }

    mutating func namespace(_ namespace: (uri: String, prefix: String?)?, node: Int) {
        guard let namespace else { return }
        attribute(namespace.prefix.map { "xmlns:\($0)" } ?? "xmlns", namespace.uri, node: node)
    }

    var text: String {
        var out = ""
        func write(_ index: Int) {
            let node = nodes[index]
            out += "<" + node.name
            for (name, value) in node.attributes { out += " \(name)=\"\(XMLElement.escapeAttribute(value))\"" }
            if node.text.isEmpty && node.children.isEmpty { out += " />"; return }
            out += ">" + XMLElement.escape(node.text)
            for child in node.children { write(child) }
            out += "</\(node.name)>"
        }
        for root in roots.prefix(1) { write(root) }
        return out
    }

}

/// Formats the AWS models' scalars exactly as botocore writes them.
enum AWSWireFormat {
    /// `3` for integral values, else Python's float text.
    static func integerOrFloat(_ number: Double) -> String {
        if number.rounded() == number, abs(number) < 9.007e15 { return String(Int64(number)) }
        return pythonFloat(number)
    }

    /// Python's `str(float)`: `2.0`, `1.5`, `1e+20`.
    static func pythonFloat(_ number: Double) -> String {
        if number.isNaN { return "NaN" }
        if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
        if number.rounded() == number, abs(number) < 1e16 { return String(Int64(number)) + ".0" }
        return "\(number)"
    }

    /// Compact JSON with `,` and `:` separators.
    static func compactJSON(_ value: JSONValue) -> String { value.description }

    /// A timestamp from ISO 8601 text, an HTTP date or epoch seconds.
    static func instant(_ value: JSONValue) -> Date? {
        switch value {
        case .number(let seconds): return Date(timeIntervalSince1970: seconds)
        case .string(let text):
            if let date = Date(iso8601: text) { return date }
            if let seconds = Double(text) { return Date(timeIntervalSince1970: seconds) }
            return HTTPDate.parse(text)
        default: return nil
        }
    }

    /// `2024-01-02T03:04:05Z`, or with six fractional digits when the instant has them.
    static func iso8601(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        let whole = seconds.rounded(.down)
        let micros = Int(((seconds - whole) * 1_000_000).rounded())
        let components = Calendar.utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: whole))
        let base = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", components.year!, components.month!, components.day!,
                          components.hour!, components.minute!, components.second!)
        return micros > 0 && micros < 1_000_000 ? base + String(format: ".%06dZ", micros) : base + "Z"
    }

    /// `Tue, 02 Jan 2024 03:04:05 GMT`.
    static func rfc822(_ date: Date) -> String { HTTPDate.format(Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))) }
}

extension Calendar {
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}
