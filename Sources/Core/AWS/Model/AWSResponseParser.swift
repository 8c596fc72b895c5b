import Foundation
import NimbusCore
import NimbusHTTP

/// Reads an operation's answer into JSON named by the output shape's member names, the way its
/// protocol writes it: query and EC2 XML (result wrappers, `member`/`item` lists, flattened lists,
/// `entry` maps), JSON, and REST (status code, headers, header maps, payload member or body).
///
/// Numbers and booleans come back typed; timestamps as ISO 8601 text; blobs as base64; a streaming
/// payload (S3 `GetObject`'s `Body`) is left out of the JSON and handed over as bytes.
public enum AWSResponseParser {
    /// Whether a successful answer's body is the operation's streaming payload (S3 `GetObject`), which the caller keeps as bytes.
    public static func streamsPayload(_ operation: AWSOperationModel, in model: AWSServiceModel) -> Bool {
        guard !["query", "ec2", "json"].contains(model.metadata.protocolName), let outputRef = operation.output, let shape = model.shapes[outputRef.shape],
              let payloadName = shape.payload, let payloadRef = shape.member(payloadName), let payloadShape = try? model.shape(payloadRef.shape),
              payloadShape.kind == .blob || payloadShape.kind == .string else { return false }
        return payloadRef.serialization.streaming || payloadShape.serialization.streaming
    }

    /// Parses a successful answer.
    /// - Returns: the output, and the streaming payload's name when the body is that payload.
    /// - Throws: `dataLoss` when the body is not the JSON or XML the protocol promises.
    public static func parse(status: Int, headers: [(String, String)], body: [UInt8], for operation: AWSOperationModel,
                             in model: AWSServiceModel) throws -> (output: JSONValue, streamingMember: String?) {
        guard let outputRef = operation.output, let shape = model.shapes[outputRef.shape] else { return ([:], nil) }
        let reader = Reader(model: model, operation: operation)
        switch model.metadata.protocolName {
        case "query", "ec2":
            guard !body.isEmpty else { return ([:], nil) }
            var node = try reader.xml(body)
            if let wrapper = outputRef.serialization.resultWrapper {
                node = node[wrapper] ?? XMLElement(name: wrapper, text: "", children: [])
            }
            return (try reader.value(node, shape: shape, ref: outputRef), nil)
        case "json":
            guard !body.isEmpty else { return ([:], nil) }
            return (try reader.json(try reader.jsonBody(body), shape: shape, ref: outputRef), nil)
        default:
            var output: [String: JSONValue] = [:]
            var streaming: String?
            for (name, ref) in shape.members {
                let memberShape = try model.shape(ref.shape)
                switch ref.serialization.location {
                case "statusCode": output[name] = .number(Double(status))
                case "header":
                    let wire = ref.serialization.name ?? name
                    if let value = headers.header(wire) { output[name] = try reader.header(value, shape: memberShape, ref: ref) }
                case "headers":
                    let prefix = (ref.serialization.name ?? "").lowercased()
                    var map: [String: JSONValue] = [:]
                    for (headerName, value) in headers where headerName.lowercased().hasPrefix(prefix) {
                        map[String(headerName.dropFirst(prefix.count))] = .string(value)
                    }
                    if !map.isEmpty { output[name] = .object(map) }
                default: break
                }
            }
            if let payloadName = shape.payload, let payloadRef = shape.member(payloadName) {
                let payloadShape = try model.shape(payloadRef.shape)
                if payloadShape.kind == .blob || payloadShape.kind == .string {
                    if payloadRef.serialization.streaming || payloadShape.serialization.streaming {
                        streaming = payloadName
                    } else if !body.isEmpty {
                        output[payloadName] = payloadShape.kind == .blob ? .string(Data(body).base64EncodedString()) : .string(String(decoding: body, as: UTF8.self))
                    }
                } else if !body.isEmpty, !payloadShape.serialization.eventStream {
                    output[payloadName] = model.metadata.protocolName == "rest-xml"
                        ? try reader.value(try reader.xml(body), shape: payloadShape, ref: payloadRef)
                        : try reader.json(try reader.jsonBody(body), shape: payloadShape, ref: payloadRef)
                }
            } else if !body.isEmpty {
                let bodyValue = model.metadata.protocolName == "rest-xml"
                    ? try reader.value(try reader.xml(body), shape: shape, ref: outputRef)
                    : try reader.json(try reader.jsonBody(body), shape: shape, ref: outputRef)
                for (name, value) in bodyValue.objectValue ?? [:] where output[name] == nil { output[name] = value }
            }
            return (.object(output), streaming)
        }
    }

    struct Reader {
        let model: AWSServiceModel
        let operation: AWSOperationModel

        func xml(_ body: [UInt8]) throws -> XMLElement {
            do { return try XMLElement.parse(body) } catch {
                throw NimbusError(.dataLoss, "\(model.name) \(operation.name) answered a body that is not XML: \(String(decoding: body.prefix(200), as: UTF8.self))",
                                  underlying: error)
            }
        }

        func jsonBody(_ body: [UInt8]) throws -> JSONValue {
            do { return try JSONValue.parse(body) } catch {
                throw NimbusError(.dataLoss, "\(model.name) \(operation.name) answered a body that is not JSON: \(String(decoding: body.prefix(200), as: UTF8.self))",
                                  underlying: error)
            }
        }

        // MARK: XML

        func value(_ node: XMLElement, shape: AWSShape, ref: AWSShapeRef?) throws -> JSONValue {
            switch shape.kind {
            case .structure:
                var out: [String: JSONValue] = [:]
                for (name, memberRef) in shape.members {
                    let memberShape = try model.shape(memberRef.shape)
                    let wire = memberRef.serialization.name ?? name
                    if memberRef.serialization.xmlAttribute { continue }
                    if memberShape.kind == .list, memberRef.serialization.flattened || memberShape.serialization.flattened {
                        let items = node.all(wire)
                        if !items.isEmpty, let elementRef = memberShape.member {
                            let element = try model.shape(elementRef.shape)
                            out[name] = .array(try items.map { try value($0, shape: element, ref: elementRef) })
                        }
                    } else if memberShape.kind == .map, memberRef.serialization.flattened || memberShape.serialization.flattened {
                        let entries = node.all(wire)
                        if !entries.isEmpty { out[name] = try map(entries, shape: memberShape) }
                    } else if let child = node[wire] {
                        out[name] = try value(child, shape: memberShape, ref: memberRef)
                    }
                }
                return .object(out)
            case .list:
                guard let elementRef = shape.member else { return [] }
                let element = try model.shape(elementRef.shape)
                let elementName = elementRef.serialization.name ?? "member"
                return .array(try node.all(elementName).map { try value($0, shape: element, ref: elementRef) })
            case .map:
                return try map(node.all("entry"), shape: shape)
            default:
                return try scalar(node.text, shape: shape, ref: ref)
            }
        }

        func map(_ entries: [XMLElement], shape: AWSShape) throws -> JSONValue {
            guard let keyRef = shape.key, let valueRef = shape.value else { return [:] }
            let valueShape = try model.shape(valueRef.shape)
            var out: [String: JSONValue] = [:]
            for entry in entries {
                let key = entry[keyRef.serialization.name ?? "key"]?.text ?? ""
                out[key] = try entry[valueRef.serialization.name ?? "value"].map { try value($0, shape: valueShape, ref: valueRef) } ?? .null
            }
            return .object(out)
        }

        func scalar(_ text: String, shape: AWSShape, ref: AWSShapeRef?) throws -> JSONValue {
            switch shape.kind {
            case .boolean: return .bool(text.lowercased() == "true")
            case .integer, .long, .float, .double:
                guard let number = Double(text.trimmingCharacters(in: .whitespaces)) else {
                    throw NimbusError(.dataLoss, "\(model.name) \(operation.name) answered '\(text)' where \(shape.name) wants a number")
                }
                return .number(number)
            case .timestamp: return timestamp(.string(text))
            default: return .string(text)
            }
        }

        func header(_ text: String, shape: AWSShape, ref: AWSShapeRef) throws -> JSONValue {
            switch shape.kind {
            case .list:
                guard let elementRef = shape.member else { return .string(text) }
                let element = try model.shape(elementRef.shape)
                return .array(try Self.splitHeaderList(text).map { try header($0, shape: element, ref: elementRef) })
            case .string where ref.serialization.jsonValue:
                guard let data = Data(base64Encoded: text), let parsed = try? JSONValue.parse(data) else { return .string(text) }
                return parsed
            default: return try scalar(text, shape: shape, ref: ref)
            }
        }

        /// A comma-separated header list, with quoted items kept whole.
        static func splitHeaderList(_ text: String) -> [String] {
            var items: [String] = []
            var current = "", quoted = false, escaped = false
            for character in text {
                if escaped { current.append(character); escaped = false; continue }
                switch character {
                case "\\" where quoted: escaped = true
                case "\"": quoted.toggle()
                case "," where !quoted: items.append(current.trimmingCharacters(in: .whitespaces)); current = ""
                default: current.append(character)
                }
            }
            items.append(current.trimmingCharacters(in: .whitespaces))
            return items
        }

        // MARK: JSON

        func json(_ value: JSONValue, shape: AWSShape, ref: AWSShapeRef?) throws -> JSONValue {
            switch shape.kind {
            case .structure:
                guard !shape.isDocument, let members = value.objectValue else { return value }
                var out: [String: JSONValue] = [:]
                for (name, memberRef) in shape.members where memberRef.serialization.location == nil {
                    guard let member = members[memberRef.serialization.name ?? name], member != .null else { continue }
                    out[name] = try json(member, shape: try model.shape(memberRef.shape), ref: memberRef)
                }
                return .object(out)
            case .list:
                guard let items = value.arrayValue, let elementRef = shape.member else { return value }
                let element = try model.shape(elementRef.shape)
                return .array(try items.map { try json($0, shape: element, ref: elementRef) })
            case .map:
                guard let entries = value.objectValue, let valueRef = shape.value else { return value }
                let valueShape = try model.shape(valueRef.shape)
                return .object(try entries.mapValues { try json($0, shape: valueShape, ref: valueRef) })
            case .timestamp: return timestamp(value)
            default: return value
            }
        }

        func timestamp(_ value: JSONValue) -> JSONValue {
            guard let instant = AWSWireFormat.instant(value) else { return value }
            return .string(AWSWireFormat.iso8601(instant))
        }
    }
}
