import Foundation
import MCP
import NimbusCore
import NimbusLLM
import NimbusLLMTools

/// Conversions between MCP's types and Nimbus' portable ones.
enum MCPConversions {
    static func json(_ value: Value) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
    }

    static func value(_ json: JSONValue) throws -> Value {
        try JSONDecoder().decode(Value.self, from: JSONEncoder().encode(json))
    }

    /// An MCP result's content as portable content parts.
    static func parts(_ content: [MCP.Tool.Content]) -> [ContentPart] {
        content.map { item -> ContentPart in
            switch item {
            case .text(let text, _, _): return .text(text)
            case .image(let data, let mimeType, _, _):
                guard let bytes = Data(base64Encoded: data) else { return .text("[an image the server sent with invalid base64]") }
                return .image(.data(bytes, mediaType: mimeType))
            case .audio(let data, let mimeType, _, _):
                guard let bytes = Data(base64Encoded: data) else { return .text("[audio the server sent with invalid base64]") }
                return .audio(data: bytes, format: mimeType.replacingOccurrences(of: "audio/", with: ""))
            case .resource(let resource, _, _):
                if let text = resource.text { return .text(text) }
                return .text("[resource \(resource.uri)\(resource.mimeType.map { " (\($0))" } ?? "")]")
            case .resourceLink(let uri, let name, _, let description, _, _):
                return .text("[\(name)](\(uri))\(description.map { ": \($0)" } ?? "")")
            }
        }
    }

    /// Portable content parts as an MCP result's content.
    static func content(_ parts: [ContentPart]) -> [MCP.Tool.Content] {
        parts.map { part -> MCP.Tool.Content in
            switch part {
            case .text(let text): return .text(text: text, annotations: nil, _meta: nil)
            case .image(.data(let data, let mediaType), _): return .image(data: data.base64EncodedString(), mimeType: mediaType, annotations: nil, _meta: nil)
            case .image(.url(let url), _): return .resourceLink(uri: url, name: "image")
            case .audio(let data, let format): return .audio(data: data.base64EncodedString(), mimeType: "audio/\(format)", annotations: nil, _meta: nil)
            case .file(let source, let filename): return .resourceLink(uri: source.urlString, name: filename ?? "file")
            case .reasoning(let text, _, _): return .text(text: text, annotations: nil, _meta: nil)
            }
        }
    }
}
