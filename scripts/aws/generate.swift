// Generates typed Swift operations from the committed AWS models (run by hand, output committed):
//
//     swift scripts/aws/generate.swift
//
// Reads Sources/Core/AWS/Resources/Models/<service>/service-2.json and scripts/aws/generate.json
// (which operations of which service get typed inputs and outputs), and writes
// Sources/Core/AWS/Services/<Service>.swift: a struct per service (`AWS.S3(client:)`) with one
// method per selected operation, input/output structs with the model's member names as coding
// keys, open string enums (unknown values are kept, never a decoding failure), and the shapes they
// reach. The wire format is not generated here: the operations go through AWSClient.call, which
// binds members to URI, query, headers and body from the same model at run time (one serializer,
// checked against botocore for every operation), and validates required members, enums and ranges.
import Foundation

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let modelsDir = root.appendingPathComponent("Sources/Core/AWS/Resources/Models")
let outDir = root.appendingPathComponent("Sources/Core/AWS/Services")
let selection = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("scripts/aws/generate.json"))) as! [String: Any]
let services = selection["services"] as! [String: [String: Any]]
let provenance = try JSONSerialization.jsonObject(with: Data(contentsOf: modelsDir.appendingPathComponent("PROVENANCE.json"))) as! [String: Any]
let release = (provenance["wheel"] as? String) ?? "botocore"

let keywords: Set<String> = ["associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init", "inout", "internal",
                             "let", "open", "operator", "private", "protocol", "public", "rethrows", "static", "struct", "subscript", "typealias",
                             "var", "break", "case", "continue", "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in",
                             "repeat", "return", "switch", "where", "while", "as", "catch", "false", "is", "nil", "super", "self", "Self",
                             "throw", "throws", "true", "try", "Type", "Protocol", "any", "some"]

/// `SSECustomerKey` → `sseCustomerKey`, `Bucket` → `bucket`, `VPCId` → `vpcId`.
func lowerCamel(_ name: String) -> String {
    let cleaned = name.replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: ".", with: "_")
    let chars = Array(cleaned)
    var upperRun = 0
    while upperRun < chars.count, chars[upperRun].isUppercase { upperRun += 1 }
    let result: String
    if upperRun == 0 {
        result = cleaned
    } else if upperRun == 1 || upperRun == chars.count {
        result = String(chars[0..<max(1, upperRun == chars.count ? upperRun : 1)]).lowercased() + String(chars[(upperRun == chars.count ? upperRun : 1)...])
    } else {
        // keep the last capital of a run when a lowercase letter follows (`SSECustomer` → `sseCustomer`)
        let keep = chars[upperRun].isLetter ? upperRun - 1 : upperRun
        result = String(chars[0..<keep]).lowercased() + String(chars[keep...])
    }
    let identifier = result.first?.isNumber == true ? "_" + result : result
    return keywords.contains(identifier) ? "`\(identifier)`" : identifier
}

func upperCamel(_ name: String) -> String {
    let parts = name.split(whereSeparator: { !$0.isLetter && !$0.isNumber })
    let joined = parts.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    let identifier = joined.first?.isNumber == true ? "_" + joined : joined
    return keywords.contains(identifier) ? identifier + "_" : identifier
}

/// An enum value's case name: `eu-west-1` → `euWest1`, `STANDARD_IA` → `standardIa`, `aws:kms` → `awsKms`.
func caseName(_ value: String) -> String {
    let parts = value.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
    guard !parts.isEmpty else { return "_empty" }
    let allUpper = value.uppercased() == value
    var out = ""
    for (index, part) in parts.enumerated() {
        let word = allUpper ? part.lowercased() : part
        if index == 0 {
            out += lowerCamel(word).trimmingCharacters(in: CharacterSet(charactersIn: "`"))
        } else {
            out += word.prefix(1).uppercased() + word.dropFirst()
        }
    }
    if out.first?.isNumber == true { out = "_" + out }
    return keywords.contains(out) ? "`\(out)`" : out
}

func swiftString(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

struct Generator {
    let service: String
    let typeName: String
    let model: [String: Any]
    let shapes: [String: [String: Any]]
    let operations: [String: [String: Any]]
    var emitted: Set<String> = []
    var queue: [String] = []
    var output = ""

    init(service: String, typeName: String) throws {
        self.service = service
        self.typeName = typeName
        model = try JSONSerialization.jsonObject(with: Data(contentsOf: modelsDir.appendingPathComponent("\(service)/service-2.json"))) as! [String: Any]
        shapes = model["shapes"] as! [String: [String: Any]]
        operations = model["operations"] as! [String: [String: Any]]
    }

    func shape(_ name: String) -> [String: Any] { shapes[name]! }

    /// Whether a member is the streaming payload of its structure.
    func isStreamingPayload(_ structure: [String: Any], member: String) -> Bool {
        guard structure["payload"] as? String == member, let ref = (structure["members"] as? [String: [String: Any]])?[member],
              let target = shapes[ref["shape"] as! String] else { return false }
        return ["blob", "string"].contains(target["type"] as? String) && (ref["streaming"] as? Bool == true || target["streaming"] as? Bool == true)
    }

    func isEventStream(_ ref: [String: Any]) -> Bool {
        let target = shapes[ref["shape"] as! String] ?? [:]
        return target["eventstream"] as? Bool == true
    }

    /// The Swift type of a shape reference (queueing structures and enums for emission).
    mutating func swiftType(_ shapeName: String) -> String {
        let shape = shape(shapeName)
        switch shape["type"] as! String {
        case "structure":
            if shape["document"] as? Bool == true { return "JSONValue" }
            enqueue(shapeName)
            return upperCamel(shapeName)
        case "list":
            let member = (shape["member"] as! [String: Any])["shape"] as! String
            return "[\(swiftType(member))]"
        case "map":
            let value = (shape["value"] as! [String: Any])["shape"] as! String
            return "[Swift.String: \(swiftType(value))]"
        case "string":
            if shape["enum"] != nil { enqueue(shapeName); return upperCamel(shapeName) }
            return "Swift.String"
        case "integer": return "Swift.Int"
        case "long": return "Swift.Int64"
        case "float": return "Swift.Float"
        case "double": return "Swift.Double"
        case "boolean": return "Swift.Bool"
        case "timestamp": return "Foundation.Date"
        case "blob": return "Foundation.Data"
        default: return "JSONValue"
        }
    }

    mutating func enqueue(_ name: String) {
        if !emitted.contains(name) { emitted.insert(name); queue.append(name) }
    }

    /// Members reachable from a structure without passing through a list or map: a cycle among
    /// them would make an infinitely large struct, so such members are boxed.
    func directlyContains(_ from: String, _ target: String, seen: inout Set<String>) -> Bool {
        guard let members = shape(from)["members"] as? [String: [String: Any]] else { return false }
        for ref in members.values {
            let name = ref["shape"] as! String
            guard shape(name)["type"] as? String == "structure", shape(name)["document"] as? Bool != true else { continue }
            if name == target { return true }
            if seen.insert(name).inserted, directlyContains(name, target, seen: &seen) { return true }
        }
        return false
    }

    mutating func structure(_ name: String, role: String?) {
        let shape = shape(name)
        let members = (shape["members"] as? [String: [String: Any]] ?? [:]).sorted { $0.key < $1.key }
        let required = Set(shape["required"] as? [String] ?? [])
        let swiftName = upperCamel(name)
        var properties: [(swift: String, wire: String, type: String, required: Bool, payload: Bool)] = []
        for (member, ref) in members {
            if ref["location"] as? String == "statusCode" && role == "input" { continue }
            if isEventStream(ref) { continue }
            let payload = isStreamingPayload(shape, member: member)
            var type = payload ? "NIOCore.ByteBuffer" : swiftType(ref["shape"] as! String)
            var seen: Set<String> = []
            if self.shape(ref["shape"] as! String)["type"] as? String == "structure",
               (ref["shape"] as! String) == name || directlyContains(ref["shape"] as! String, name, seen: &seen) {
                type = "AWSIndirect<\(type)>"
            }
            properties.append((lowerCamel(member), member, type, required.contains(member) && !payload, payload))
        }
        let conformances: String = switch role {
        case "input": "AWSEncodableShape"
        case "output": "AWSDecodableShape"
        default: "Codable, Sendable, Hashable"
        }
        output += "\n    public struct \(swiftName): \(conformances) {\n"
        if properties.isEmpty && role == "input" {
            output += "        public init() {}\n    }\n"
            return
        }
        if properties.isEmpty {
            output += "    }\n"
            return
        }
        for property in properties {
            let optional = property.required ? "" : "?"
            output += "        public var \(property.swift): \(property.type)\(optional)\(property.payload ? " = nil" : "")\n"
        }
        if role != "output" {
            let parameters = properties.sorted { ($0.required ? 0 : 1, $0.swift) < ($1.required ? 0 : 1, $1.swift) }
                .map { "\($0.swift.trimmingCharacters(in: CharacterSet(charactersIn: "`"))): \($0.type)\($0.required ? "" : "? = nil")" }
            output += "\n        public init(\(parameters.joined(separator: ", "))) {\n"
            for property in properties {
                let bare = property.swift.trimmingCharacters(in: CharacterSet(charactersIn: "`"))
                output += "            self.\(bare) = \(property.swift)\n"
            }
            output += "        }\n"
        }
        if let payload = properties.first(where: \.payload) {
            if role == "input" {
                output += "\n        public var payload: NIOCore.ByteBuffer? { \(payload.swift) }\n"
            } else if role == "output" {
                output += "\n        public mutating func setPayload(_ bytes: NIOCore.ByteBuffer) { \(payload.swift) = bytes }\n"
            }
        }
        let coded = properties.filter { !$0.payload }
        output += "\n        enum CodingKeys: Swift.String, CodingKey {\n"
        for property in coded {
            output += "            case \(property.swift) = \(swiftString(property.wire))\n"
        }
        if coded.isEmpty { output += "            case _none\n" }   // only a payload
        output += "        }\n    }\n"
    }

    mutating func enumeration(_ name: String) {
        let values = shape(name)["enum"] as! [String]
        let swiftName = upperCamel(name)
        output += "\n    /// `\(name)`: an open set — a value this model does not list is kept as it came.\n"
        output += "    public struct \(swiftName): AWSOpenEnum {\n        public let rawValue: Swift.String\n"
        output += "        public init(rawValue: Swift.String) { self.rawValue = rawValue }\n"
        var used: Set<String> = []
        for value in values {
            var name = caseName(value)
            while !used.insert(name).inserted { name += "_" }
            output += "        public static let \(name) = Self(rawValue: \(swiftString(value)))\n"
        }
        output += "    }\n"
    }

    mutating func generate(selected: [String]) -> String {
        let metadata = model["metadata"] as! [String: Any]
        let protocolName = metadata["protocol"] as? String ?? ""
        var body = ""
        var roles: [String: String] = [:]
        for operationName in selected {
            guard let operation = operations[operationName] else { fatalError("\(service) has no operation \(operationName)") }
            if let input = (operation["input"] as? [String: Any])?["shape"] as? String { roles[input] = "input" }
            if let output = (operation["output"] as? [String: Any])?["shape"] as? String { roles[output] = roles[output] == nil ? "output" : "both" }
        }
        for operationName in selected {
            let operation = operations[operationName]!
            let http = operation["http"] as! [String: Any]
            let input = (operation["input"] as? [String: Any])?["shape"] as? String
            let outputShape = (operation["output"] as? [String: Any])?["shape"] as? String
            let method = lowerCamel(operationName)
            body += "\n    /// `\(operationName)`: `\(http["method"] as! String) \(http["requestUri"] as! String)`\(protocolName.hasPrefix("rest") ? "" : " (\(protocolName))").\n"
            let defaulted = input.map { (shape($0)["required"] as? [String] ?? []).isEmpty } ?? false
            let parameters = input.map { "_ input: \(upperCamel($0))\(defaulted ? " = .init()" : ""), " } ?? ""
            let returns = outputShape.map { " -> \(upperCamel($0))" } ?? ""
            body += "    \(outputShape == nil ? "" : "@discardableResult ")public func \(method)(\(parameters)maxAttempts: Swift.Int? = nil) async throws\(returns) {\n"
            let call = input == nil ? "try await client.perform(Self.modelName, \(swiftString(operationName)), maxAttempts: maxAttempts)"
                : "try await client.perform(Self.modelName, \(swiftString(operationName)), input, maxAttempts: maxAttempts)"
            body += outputShape == nil ? "        _ = \(call) as AWSNoOutput\n" : "        \(call)\n"
            body += "    }\n"
            if let input { enqueue(input) }
            if let outputShape { enqueue(outputShape) }
        }
        // The error codes the selected operations declare (exception shapes), for matching `AWSServiceError.code`.
        var errorNames: Set<String> = []
        for operationName in selected {
            for error in operations[operationName]!["errors"] as? [[String: Any]] ?? [] { errorNames.insert(error["shape"] as! String) }
        }
        if !errorNames.isEmpty {
            output += "\n    /// The errors these operations declare, as `AWSServiceError.code` carries them.\n    public enum ErrorCode {\n"
            for name in errorNames.sorted() {
                let code = ((shape(name)["error"] as? [String: Any])?["code"] as? String) ?? name
                output += "        public static let \(lowerCamel(name)) = \(swiftString(code))\n"
            }
            output += "    }\n"
        }
        while !queue.isEmpty {
            let next = queue.removeFirst()
            let shape = shape(next)
            if shape["type"] as? String == "string" { enumeration(next) } else {
                let role = roles[next]
                structure(next, role: role == "both" ? nil : role)
            }
        }
        let title = metadata["serviceFullName"] as? String ?? service
        return """
        // Generated by scripts/aws/generate.swift from the \(service) model of \(release) — do not edit.
        // Regenerate: swift scripts/aws/generate.swift (after scripts/aws/import-models).
        import Foundation
        import NIOCore
        import NimbusCore

        extension AWS {
            /// \(title) (`\(service)`, \(protocolName), \(metadata["apiVersion"] as? String ?? "")): typed operations over ``AWSClient``.
            ///
            /// Every operation of the model is also reachable untyped: `client.call(\(swiftString(service)), "Operation", input: [...])`.
            public struct \(typeName): AWSServiceAPI {
                public static let modelName = \(swiftString(service))
                public let client: AWSClient
                public init(client: AWSClient) { self.client = client }
            }
        }

        extension AWS.\(typeName) {\(body)\(output)}

        """
    }
}

try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
for (service, entry) in services.sorted(by: { $0.key < $1.key }) {
    var generator = try Generator(service: service, typeName: entry["type"] as! String)
    let text = generator.generate(selected: entry["operations"] as! [String])
    let file = outDir.appendingPathComponent("\(entry["type"] as! String).swift")
    try text.write(to: file, atomically: true, encoding: .utf8)
    print("wrote \(file.path) (\(text.split(separator: "\n").count) lines)")
}
