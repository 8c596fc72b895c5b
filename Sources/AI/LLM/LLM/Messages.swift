import Foundation
import NimbusCore

/// One turn of a conversation: who speaks, what they say (content parts), and the tool calls
/// an assistant made or the tool result this message carries.
///
/// ```swift
/// let history: [ChatMessage] = [
///     .system("You answer in one sentence."),
///     .user("What is the boiling point of water at sea level?"),
/// ]
/// ```
public struct ChatMessage: Sendable, Hashable, Codable {
    /// Who speaks.
    public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
        /// Instructions for the model (OpenAI's `system`/`developer`, Anthropic's top-level `system`, Gemini's `systemInstruction`).
        case system
        /// The end user.
        case user
        /// The model.
        case assistant
        /// The result of a tool call, answering ``ChatMessage/toolCallID``.
        case tool
    }

    /// Who speaks.
    public var role: Role
    /// What is said, in order.
    public var content: [ContentPart]
    /// The calls an assistant message asks for (empty otherwise).
    public var toolCalls: [ToolCall]
    /// For a `tool` message: the id of the call it answers.
    public var toolCallID: String?
    /// For a `tool` message: the tool's name (Gemini needs it); optional participant name otherwise.
    public var name: String?
    /// Whether the tool result reports a failure (Anthropic's `is_error`).
    public var isError: Bool
    /// Marks the end of this message as a prompt-cache breakpoint (Anthropic `cache_control`; other providers cache automatically).
    public var cacheBreakpoint: Bool

    /// Creates a message.
    public init(role: Role, content: [ContentPart], toolCalls: [ToolCall] = [], toolCallID: String? = nil,
                name: String? = nil, isError: Bool = false, cacheBreakpoint: Bool = false) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.name = name
        self.isError = isError
        self.cacheBreakpoint = cacheBreakpoint
    }

    /// A system message.
    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: .system, content: [.text(text)]) }
    /// A user message of text.
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: .user, content: [.text(text)]) }
    /// A user message of several parts (text and images, say).
    public static func user(_ parts: [ContentPart]) -> ChatMessage { ChatMessage(role: .user, content: parts) }
    /// An assistant message, with the tool calls it made.
    public static func assistant(_ text: String, toolCalls: [ToolCall] = []) -> ChatMessage {
        ChatMessage(role: .assistant, content: text.isEmpty ? [] : [.text(text)], toolCalls: toolCalls)
    }
    /// A tool result answering the call `id`.
    public static func tool(callID: String, name: String? = nil, _ text: String, isError: Bool = false) -> ChatMessage {
        ChatMessage(role: .tool, content: [.text(text)], toolCallID: callID, name: name, isError: isError)
    }

    /// The text parts joined (reasoning left out).
    public var text: String {
        content.compactMap { if case .text(let text) = $0 { text } else { nil } }.joined()
    }

    private enum CodingKeys: String, CodingKey { case role, content, toolCalls, toolCallID, name, isError, cacheBreakpoint }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(Role.self, forKey: .role)
        content = try container.decodeIfPresent([ContentPart].self, forKey: .content) ?? []
        toolCalls = try container.decodeIfPresent([ToolCall].self, forKey: .toolCalls) ?? []
        toolCallID = try container.decodeIfPresent(String.self, forKey: .toolCallID)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        isError = try container.decodeIfPresent(Bool.self, forKey: .isError) ?? false
        cacheBreakpoint = try container.decodeIfPresent(Bool.self, forKey: .cacheBreakpoint) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(role, forKey: .role)
        try container.encode(content, forKey: .content)
        if !toolCalls.isEmpty { try container.encode(toolCalls, forKey: .toolCalls) }
        try container.encodeIfPresent(toolCallID, forKey: .toolCallID)
        try container.encodeIfPresent(name, forKey: .name)
        if isError { try container.encode(true, forKey: .isError) }
        if cacheBreakpoint { try container.encode(true, forKey: .cacheBreakpoint) }
    }
}

/// One piece of a message's content.
public enum ContentPart: Sendable, Hashable, Codable {
    /// Text.
    case text(String)
    /// An image, by URL or inline bytes.
    case image(MediaSource, detail: ImageDetail? = nil)
    /// A document (PDF...), where the provider accepts files.
    case file(MediaSource, filename: String? = nil)
    /// Audio input, where the provider accepts it (`wav`, `mp3`).
    case audio(data: Data, format: String)
    /// The model's visible reasoning (Anthropic thinking blocks, with the signature that must be sent back;
    /// `redacted` blocks carry only opaque data).
    case reasoning(String, signature: String? = nil, redacted: Bool = false)

    /// How closely the model looks at an image (OpenAI's `detail`).
    public enum ImageDetail: String, Sendable, Hashable, Codable { case auto, low, high }

    private enum CodingKeys: String, CodingKey { case type, text, source, detail, filename, data, format, signature, redacted }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "text": self = .text(try container.decode(String.self, forKey: .text))
        case "image": self = .image(try container.decode(MediaSource.self, forKey: .source),
                                    detail: try container.decodeIfPresent(ImageDetail.self, forKey: .detail))
        case "file": self = .file(try container.decode(MediaSource.self, forKey: .source),
                                  filename: try container.decodeIfPresent(String.self, forKey: .filename))
        case "audio": self = .audio(data: try container.decode(Data.self, forKey: .data), format: try container.decode(String.self, forKey: .format))
        case "reasoning": self = .reasoning(try container.decode(String.self, forKey: .text),
                                            signature: try container.decodeIfPresent(String.self, forKey: .signature),
                                            redacted: try container.decodeIfPresent(Bool.self, forKey: .redacted) ?? false)
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown content part type '\(type)'; expected text, image, file, audio or reasoning")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .text(let text):
            try container.encode("text", forKey: .type); try container.encode(text, forKey: .text)
        case .image(let source, let detail):
            try container.encode("image", forKey: .type); try container.encode(source, forKey: .source)
            try container.encodeIfPresent(detail, forKey: .detail)
        case .file(let source, let filename):
            try container.encode("file", forKey: .type); try container.encode(source, forKey: .source)
            try container.encodeIfPresent(filename, forKey: .filename)
        case .audio(let data, let format):
            try container.encode("audio", forKey: .type); try container.encode(data, forKey: .data); try container.encode(format, forKey: .format)
        case .reasoning(let text, let signature, let redacted):
            try container.encode("reasoning", forKey: .type); try container.encode(text, forKey: .text)
            try container.encodeIfPresent(signature, forKey: .signature)
            if redacted { try container.encode(true, forKey: .redacted) }
        }
    }

    /// Joins adjacent text parts and adjacent unsigned reasoning parts, so a streamed reply and a
    /// whole reply compare equal whatever the chunking.
    public static func coalesced(_ parts: [ContentPart]) -> [ContentPart] {
        var result: [ContentPart] = []
        for part in parts {
            switch (result.last, part) {
            case (.text(let previous)?, .text(let next)):
                result[result.count - 1] = .text(previous + next)
            case (.reasoning(let previous, nil, false)?, .reasoning(let next, let signature, false)):
                result[result.count - 1] = .reasoning(previous + next, signature: signature)
            case (_, .text(let text)) where text.isEmpty:
                continue
            default:
                result.append(part)
            }
        }
        return result
    }
}

/// Where media comes from: a URL the provider fetches, or bytes sent inline.
public enum MediaSource: Sendable, Hashable, Codable {
    /// A URL (`https:` or a `data:` URL).
    case url(String)
    /// Inline bytes with their media type (`image/png`, `application/pdf`).
    case data(Data, mediaType: String)

    /// The source as a `data:` URL when it is inline, else its URL.
    public var urlString: String {
        switch self {
        case .url(let url): url
        case .data(let data, let mediaType): "data:\(mediaType);base64,\(data.base64EncodedString())"
        }
    }

    /// Bytes and media type, decoding a `data:` URL; `nil` for a remote URL.
    public var inlineData: (data: Data, mediaType: String)? {
        switch self {
        case .data(let data, let mediaType): return (data, mediaType)
        case .url(let url):
            guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else { return nil }
            let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
            guard header.hasSuffix(";base64"), let data = Data(base64Encoded: String(url[url.index(after: comma)...])) else { return nil }
            return (data, String(header.dropLast(7)))
        }
    }
}

/// A tool the model may call: a name, what it does, and its arguments as a JSON Schema.
///
/// ```swift
/// let weather = ToolDefinition(name: "get_weather", description: "Current weather for a city",
///     parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])
/// ```
public struct ToolDefinition: Sendable, Hashable, Codable {
    /// The name the model calls (`^[a-zA-Z0-9_-]{1,64}$`).
    public var name: String
    /// What the tool does and when to use it.
    public var description: String?
    /// A JSON Schema (an object schema) of the arguments.
    public var parameters: JSONValue
    /// Ask for strict schema adherence where the provider has it (OpenAI `strict`).
    public var strict: Bool?

    /// Creates a tool definition.
    public init(name: String, description: String? = nil,
                parameters: JSONValue = ["type": "object", "properties": .object([:])], strict: Bool? = nil) {
        self.name = name
        self.description = description
        self.parameters = parameters
        self.strict = strict
    }
}

/// Whether and which tool the model must call.
public enum ToolChoice: Sendable, Hashable, Codable {
    /// The model decides.
    case auto
    /// No tool calls.
    case none
    /// At least one tool call.
    case required
    /// This tool.
    case tool(String)
}

/// A call the model asks for: its id (which the tool result answers), the tool, and the
/// arguments as the JSON text the model wrote.
public struct ToolCall: Sendable, Hashable, Codable {
    /// The provider's call id (`call_...`, `toolu_...`); generated where the provider has none (Gemini, Ollama).
    public var id: String
    /// The tool's name.
    public var name: String
    /// The arguments, a JSON object as text (kept verbatim: models sometimes write invalid JSON).
    public var arguments: String

    /// Creates a call.
    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }

    /// The arguments parsed. - Throws: `invalidArgument` naming the tool when they are not valid JSON.
    public func parsedArguments() throws -> JSONValue {
        let text = arguments.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return .object([:]) }
        do { return try JSONValue.parse(Data(text.utf8)) } catch {
            throw NimbusError(.invalidArgument, "the arguments of tool call \(id) to \(name) are not valid JSON: \(error)", underlying: error)
        }
    }

    /// The arguments decoded into `T`. - Throws: `invalidArgument` naming the tool and the mismatch.
    public func decodeArguments<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        let text = arguments.trimmingCharacters(in: .whitespacesAndNewlines)
        do { return try decoder.decode(T.self, from: Data((text.isEmpty ? "{}" : text).utf8)) } catch {
            throw NimbusError(.invalidArgument, "the arguments of tool call \(id) to \(name) do not fit \(T.self): \(error)", underlying: error)
        }
    }
}
