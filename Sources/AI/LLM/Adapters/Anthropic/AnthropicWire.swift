import Foundation
import NimbusCore
import NimbusLLM

/// The Messages API wire format (`POST /v1/messages`), in both directions: the adapter encodes
/// requests and decodes responses and stream events; the gateway's `/v1/messages` decodes
/// requests and encodes responses. Unknown block types and fields are ignored on decode.
public enum AnthropicWire {
    /// `CreateMessageParams`, the fields Nimbus speaks; anything else travels in `extra`.
    public struct MessagesRequest: Codable, Sendable {
        public var model: String
        public var messages: [Message]
        public var maxTokens: Int
        public var system: TextOrBlocks?
        public var tools: [Tool]?
        public var toolChoice: ToolChoice?
        public var temperature: Double?
        public var topP: Double?
        public var stopSequences: [String]?
        public var metadata: Metadata?
        public var thinking: Thinking?
        public var outputConfig: OutputConfig?
        public var stream: Bool?
        public var extra: [String: JSONValue] = [:]

        public struct Metadata: Codable, Sendable, Hashable {
            public var userId: String?
            enum CodingKeys: String, CodingKey { case userId = "user_id" }
        }
        public struct Thinking: Codable, Sendable, Hashable {
            public var type: String
            public var budgetTokens: Int?
            enum CodingKeys: String, CodingKey { case type, budgetTokens = "budget_tokens" }
        }
        public struct OutputConfig: Codable, Sendable, Hashable {
            public var format: Format?
            public var effort: String?
            public struct Format: Codable, Sendable, Hashable { public var type: String; public var schema: JSONValue? }
        }

        static let known: Set<String> = ["model", "messages", "max_tokens", "system", "tools", "tool_choice", "temperature", "top_p",
                                         "stop_sequences", "metadata", "thinking", "output_config", "stream"]

        public init(model: String, messages: [Message], maxTokens: Int) {
            self.model = model
            self.messages = messages
            self.maxTokens = maxTokens
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyCodingKey.self)
            model = try container.decode(String.self, forKey: AnyCodingKey("model"))
            messages = try container.decode([Message].self, forKey: AnyCodingKey("messages"))
            maxTokens = try container.decode(Int.self, forKey: AnyCodingKey("max_tokens"))
            system = try container.decodeIfPresent(TextOrBlocks.self, forKey: AnyCodingKey("system"))
            tools = try container.decodeIfPresent([Tool].self, forKey: AnyCodingKey("tools"))
            toolChoice = try container.decodeIfPresent(ToolChoice.self, forKey: AnyCodingKey("tool_choice"))
            temperature = try container.decodeIfPresent(Double.self, forKey: AnyCodingKey("temperature"))
            topP = try container.decodeIfPresent(Double.self, forKey: AnyCodingKey("top_p"))
            stopSequences = try container.decodeIfPresent([String].self, forKey: AnyCodingKey("stop_sequences"))
            metadata = try container.decodeIfPresent(Metadata.self, forKey: AnyCodingKey("metadata"))
            thinking = try container.decodeIfPresent(Thinking.self, forKey: AnyCodingKey("thinking"))
            outputConfig = try container.decodeIfPresent(OutputConfig.self, forKey: AnyCodingKey("output_config"))
            stream = try container.decodeIfPresent(Bool.self, forKey: AnyCodingKey("stream"))
            for key in container.allKeys where !Self.known.contains(key.stringValue) {
                extra[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: AnyCodingKey.self)
            try container.encode(model, forKey: AnyCodingKey("model"))
            try container.encode(messages, forKey: AnyCodingKey("messages"))
            try container.encode(maxTokens, forKey: AnyCodingKey("max_tokens"))
            try container.encodeIfPresent(system, forKey: AnyCodingKey("system"))
            try container.encodeIfPresent(tools, forKey: AnyCodingKey("tools"))
            try container.encodeIfPresent(toolChoice, forKey: AnyCodingKey("tool_choice"))
            try container.encodeIfPresent(temperature, forKey: AnyCodingKey("temperature"))
            try container.encodeIfPresent(topP, forKey: AnyCodingKey("top_p"))
            try container.encodeIfPresent(stopSequences, forKey: AnyCodingKey("stop_sequences"))
            try container.encodeIfPresent(metadata, forKey: AnyCodingKey("metadata"))
            try container.encodeIfPresent(thinking, forKey: AnyCodingKey("thinking"))
            try container.encodeIfPresent(outputConfig, forKey: AnyCodingKey("output_config"))
            try container.encodeIfPresent(stream, forKey: AnyCodingKey("stream"))
            for (key, value) in extra where !Self.known.contains(key) { try container.encode(value, forKey: AnyCodingKey(key)) }
        }
    }

    /// `system`, or a tool result's `content`: a string or blocks (blocks carry `cache_control`).
    public typealias TextOrBlocks = StringOrArray<Block>

    /// An input message: `user` or `assistant`, content a string or blocks.
    public struct Message: Codable, Sendable, Hashable {
        public var role: String
        public var content: [Block]

        public init(role: String, content: [Block]) {
            self.role = role
            self.content = content
        }

        enum CodingKeys: String, CodingKey { case role, content }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            role = try container.decode(String.self, forKey: .role)
            if let text = try? container.decode(String.self, forKey: .content) { content = [Block(type: "text", text: text)] }
            else { content = try container.decode([Block].self, forKey: .content) }
        }
    }

    /// Any content block (`text`, `image`, `document`, `tool_use`, `tool_result`, `thinking`,
    /// `redacted_thinking`...): the type and whichever fields it has.
    public struct Block: Codable, Sendable, Hashable {
        public var type: String
        public var text: String?
        public var source: Source?
        public var id: String?
        public var name: String?
        public var input: JSONValue?
        public var toolUseId: String?
        public var content: TextOrBlocks?
        public var isError: Bool?
        public var thinking: String?
        public var signature: String?
        public var data: String?
        public var cacheControl: CacheControl?

        public init(type: String, text: String? = nil, source: Source? = nil, id: String? = nil, name: String? = nil, input: JSONValue? = nil,
                    toolUseId: String? = nil, content: TextOrBlocks? = nil, isError: Bool? = nil, thinking: String? = nil,
                    signature: String? = nil, data: String? = nil, cacheControl: CacheControl? = nil) {
            self.type = type; self.text = text; self.source = source; self.id = id; self.name = name; self.input = input
            self.toolUseId = toolUseId; self.content = content; self.isError = isError; self.thinking = thinking
            self.signature = signature; self.data = data; self.cacheControl = cacheControl
        }

        enum CodingKeys: String, CodingKey {
            case type, text, source, id, name, input, content, thinking, signature, data
            case toolUseId = "tool_use_id", isError = "is_error", cacheControl = "cache_control"
        }
    }

    /// `{"type": "ephemeral"}`.
    public struct CacheControl: Codable, Sendable, Hashable {
        public var type: String
        public var ttl: String?
        public static let ephemeral = CacheControl(type: "ephemeral")
    }

    /// An image or document source: `base64` (`media_type`, `data`), `url`, or `text`.
    public struct Source: Codable, Sendable, Hashable {
        public var type: String
        public var mediaType: String?
        public var data: String?
        public var url: String?
        enum CodingKeys: String, CodingKey { case type, data, url, mediaType = "media_type" }
    }

    /// A tool definition.
    public struct Tool: Codable, Sendable, Hashable {
        public var name: String
        public var description: String?
        public var inputSchema: JSONValue
        public var strict: Bool?
        public var cacheControl: CacheControl?
        enum CodingKeys: String, CodingKey { case name, description, strict, inputSchema = "input_schema", cacheControl = "cache_control" }
    }

    /// `{"type": "auto"|"any"|"tool"|"none", "name"?, "disable_parallel_tool_use"?}`.
    public struct ToolChoice: Codable, Sendable, Hashable {
        public var type: String
        public var name: String?
        public var disableParallelToolUse: Bool?
        enum CodingKeys: String, CodingKey { case type, name, disableParallelToolUse = "disable_parallel_tool_use" }
    }

    /// A `Message` response.
    public struct MessageResponse: Codable, Sendable {
        public var id: String
        public var type: String
        public var role: String
        public var content: [Block]
        public var model: String
        public var stopReason: String?
        public var stopSequence: String?
        public var usage: WireUsage

        enum CodingKeys: String, CodingKey {
            case id, type, role, content, model, usage
            case stopReason = "stop_reason", stopSequence = "stop_sequence"
        }

        public init(id: String, content: [Block], model: String, stopReason: String?, usage: WireUsage) {
            self.id = id; self.type = "message"; self.role = "assistant"; self.content = content; self.model = model
            self.stopReason = stopReason; self.usage = usage
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(String.self, forKey: .id)
            type = try container.decodeIfPresent(String.self, forKey: .type) ?? "message"
            role = try container.decodeIfPresent(String.self, forKey: .role) ?? "assistant"
            content = try container.decode([Block].self, forKey: .content)
            model = try container.decode(String.self, forKey: .model)
            stopReason = try container.decodeIfPresent(String.self, forKey: .stopReason)
            stopSequence = try container.decodeIfPresent(String.self, forKey: .stopSequence)
            usage = try container.decodeIfPresent(WireUsage.self, forKey: .usage) ?? WireUsage()
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(type, forKey: .type)
            try container.encode(role, forKey: .role)
            try container.encode(content, forKey: .content)
            try container.encode(model, forKey: .model)
            try container.encode(stopReason, forKey: .stopReason)
            try container.encode(stopSequence, forKey: .stopSequence)
            try container.encode(usage, forKey: .usage)
        }
    }

    /// Usage: `input_tokens` excludes cache reads and writes.
    public struct WireUsage: Codable, Sendable, Hashable {
        public var inputTokens: Int?
        public var outputTokens: Int?
        public var cacheCreationInputTokens: Int?
        public var cacheReadInputTokens: Int?

        public init(inputTokens: Int? = nil, outputTokens: Int? = nil, cacheCreationInputTokens: Int? = nil, cacheReadInputTokens: Int? = nil) {
            self.inputTokens = inputTokens
            self.outputTokens = outputTokens
            self.cacheCreationInputTokens = cacheCreationInputTokens
            self.cacheReadInputTokens = cacheReadInputTokens
        }

        /// The wire form of portable usage.
        public init(_ usage: Usage) {
            inputTokens = max(0, usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteInputTokens)
            outputTokens = usage.outputTokens
            cacheCreationInputTokens = usage.cacheWriteInputTokens
            cacheReadInputTokens = usage.cachedInputTokens
        }

        enum CodingKeys: String, CodingKey {
            case inputTokens = "input_tokens", outputTokens = "output_tokens"
            case cacheCreationInputTokens = "cache_creation_input_tokens", cacheReadInputTokens = "cache_read_input_tokens"
        }

        /// Portable usage: input counts every prompt token, cached ones included.
        public var portable: Usage {
            let read = cacheReadInputTokens ?? 0, written = cacheCreationInputTokens ?? 0
            return Usage(inputTokens: (inputTokens ?? 0) + read + written, outputTokens: outputTokens ?? 0,
                         cachedInputTokens: read, cacheWriteInputTokens: written)
        }

        /// Later counts over earlier ones (a `message_delta` refines `message_start`).
        func merged(over earlier: WireUsage) -> WireUsage {
            WireUsage(inputTokens: inputTokens ?? earlier.inputTokens, outputTokens: outputTokens ?? earlier.outputTokens,
                      cacheCreationInputTokens: cacheCreationInputTokens ?? earlier.cacheCreationInputTokens,
                      cacheReadInputTokens: cacheReadInputTokens ?? earlier.cacheReadInputTokens)
        }
    }

    /// One streaming event's data (every event type in one shape).
    public struct StreamEvent: Codable, Sendable {
        public var type: String
        public var message: MessageResponse?
        public var index: Int?
        public var contentBlock: Block?
        public var delta: Delta?
        public var usage: WireUsage?
        public var error: ErrorBody.Detail?

        public struct Delta: Codable, Sendable {
            public var type: String?
            public var text: String?
            public var partialJson: String?
            public var thinking: String?
            public var signature: String?
            public var stopReason: String?
            public var stopSequence: String?
            enum CodingKeys: String, CodingKey {
                case type, text, thinking, signature
                case partialJson = "partial_json", stopReason = "stop_reason", stopSequence = "stop_sequence"
            }
        }

        enum CodingKeys: String, CodingKey { case type, message, index, delta, usage, error, contentBlock = "content_block" }

        public init(type: String, message: MessageResponse? = nil, index: Int? = nil, contentBlock: Block? = nil, delta: Delta? = nil,
                    usage: WireUsage? = nil, error: ErrorBody.Detail? = nil) {
            self.type = type; self.message = message; self.index = index; self.contentBlock = contentBlock
            self.delta = delta; self.usage = usage; self.error = error
        }
    }

    /// `{"type": "error", "error": {"type", "message"}, "request_id"}`.
    public struct ErrorBody: Codable, Sendable {
        public var type: String
        public var error: Detail
        public var requestId: String?
        public struct Detail: Codable, Sendable {
            public var type: String
            public var message: String
            public init(type: String, message: String) { self.type = type; self.message = message }
        }
        enum CodingKeys: String, CodingKey { case type, error, requestId = "request_id" }
        public init(error: Detail, requestId: String? = nil) { self.type = "error"; self.error = error; self.requestId = requestId }
    }

    /// `GET /v1/models`.
    public struct ModelList: Codable, Sendable {
        public var data: [Model]
        public var hasMore: Bool?
        public var lastId: String?
        public struct Model: Codable, Sendable {
            public var id: String
            public var displayName: String?
            public var createdAt: String?
            enum CodingKeys: String, CodingKey { case id, displayName = "display_name", createdAt = "created_at" }
        }
        enum CodingKeys: String, CodingKey { case data, hasMore = "has_more", lastId = "last_id" }
    }

    // MARK: Stop reasons

    /// The portable finish reason of a `stop_reason`.
    public static func finishReason(_ raw: String?) -> FinishReason {
        switch raw {
        case "end_turn"?, "stop_sequence"?, nil: .stop
        case "max_tokens"?, "model_context_window_exceeded"?: .length
        case "tool_use"?: .toolCalls
        case "refusal"?: .contentFilter
        case let other?: .other(other)
        }
    }

    /// The `stop_reason` of a portable finish reason.
    public static func stopReason(_ reason: FinishReason) -> String {
        switch reason {
        case .stop, .error: "end_turn"
        case .length: "max_tokens"
        case .toolCalls: "tool_use"
        case .contentFilter: "refusal"
        case .other(let raw): raw
        }
    }
}

extension StringOrArray where Element == AnthropicWire.Block {
    /// The text: the string, or the text blocks joined by blank lines.
    var text: String {
        switch self {
        case .string(let text): text
        case .array(let blocks): blocks.compactMap(\.text).joined(separator: "\n\n")
        }
    }
}
