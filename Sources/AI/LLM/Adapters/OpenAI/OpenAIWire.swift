import Foundation
import NimbusCore
import NimbusLLM

/// The Chat Completions wire format (OpenAI's OpenAPI spec, `POST /chat/completions`), in both
/// directions: the adapter encodes requests and decodes responses; the gateway decodes requests
/// and encodes responses. Fields this version does not know are ignored on decode, and unknown
/// enum values are kept as strings.
public enum OpenAIWire {
    // MARK: Requests

    /// `CreateChatCompletionRequest`, the fields Nimbus speaks; anything else travels in `extra`.
    public struct ChatCompletionRequest: Codable, Sendable {
        public var model: String
        public var messages: [Message]
        public var tools: [Tool]?
        public var toolChoice: ToolChoiceValue?
        public var parallelToolCalls: Bool?
        public var responseFormat: ResponseFormatValue?
        public var temperature: Double?
        public var topP: Double?
        public var maxTokens: Int?
        public var maxCompletionTokens: Int?
        public var stop: StopValue?
        public var seed: Int?
        public var reasoningEffort: String?
        public var metadata: [String: String]?
        public var user: String?
        public var stream: Bool?
        public var streamOptions: StreamOptions?
        /// Choices to generate (the gateway fans out; adapters send one request per choice).
        public var n: Int?
        /// Top-level fields not named above (provider options on encode; unknown fields on decode).
        public var extra: [String: JSONValue]

        public struct StreamOptions: Codable, Sendable, Hashable {
            public var includeUsage: Bool?
            public init(includeUsage: Bool?) { self.includeUsage = includeUsage }
            enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
        }

        static let known: Set<String> = ["model", "messages", "tools", "tool_choice", "parallel_tool_calls", "response_format", "temperature",
                                         "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "reasoning_effort", "metadata",
                                         "user", "stream", "stream_options", "n"]

        public init(model: String, messages: [Message]) {
            self.model = model
            self.messages = messages
            self.extra = [:]
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyCodingKey.self)
            model = try container.decode(String.self, forKey: AnyCodingKey("model"))
            messages = try container.decode([Message].self, forKey: AnyCodingKey("messages"))
            tools = try container.decodeIfPresent([Tool].self, forKey: AnyCodingKey("tools"))
            toolChoice = try container.decodeIfPresent(ToolChoiceValue.self, forKey: AnyCodingKey("tool_choice"))
            parallelToolCalls = try container.decodeIfPresent(Bool.self, forKey: AnyCodingKey("parallel_tool_calls"))
            responseFormat = try container.decodeIfPresent(ResponseFormatValue.self, forKey: AnyCodingKey("response_format"))
            temperature = try container.decodeIfPresent(Double.self, forKey: AnyCodingKey("temperature"))
            topP = try container.decodeIfPresent(Double.self, forKey: AnyCodingKey("top_p"))
            maxTokens = try container.decodeIfPresent(Int.self, forKey: AnyCodingKey("max_tokens"))
            maxCompletionTokens = try container.decodeIfPresent(Int.self, forKey: AnyCodingKey("max_completion_tokens"))
            stop = try container.decodeIfPresent(StopValue.self, forKey: AnyCodingKey("stop"))
            seed = try container.decodeIfPresent(Int.self, forKey: AnyCodingKey("seed"))
            reasoningEffort = try container.decodeIfPresent(String.self, forKey: AnyCodingKey("reasoning_effort"))
            metadata = try container.decodeIfPresent([String: String].self, forKey: AnyCodingKey("metadata"))
            user = try container.decodeIfPresent(String.self, forKey: AnyCodingKey("user"))
            stream = try container.decodeIfPresent(Bool.self, forKey: AnyCodingKey("stream"))
            streamOptions = try container.decodeIfPresent(StreamOptions.self, forKey: AnyCodingKey("stream_options"))
            n = try container.decodeIfPresent(Int.self, forKey: AnyCodingKey("n"))
            var extra: [String: JSONValue] = [:]
            for key in container.allKeys where !Self.known.contains(key.stringValue) {
                extra[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
            }
            self.extra = extra
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: AnyCodingKey.self)
            try container.encode(model, forKey: AnyCodingKey("model"))
            try container.encode(messages, forKey: AnyCodingKey("messages"))
            try container.encodeIfPresent(tools, forKey: AnyCodingKey("tools"))
            try container.encodeIfPresent(toolChoice, forKey: AnyCodingKey("tool_choice"))
            try container.encodeIfPresent(parallelToolCalls, forKey: AnyCodingKey("parallel_tool_calls"))
            try container.encodeIfPresent(responseFormat, forKey: AnyCodingKey("response_format"))
            try container.encodeIfPresent(temperature, forKey: AnyCodingKey("temperature"))
            try container.encodeIfPresent(topP, forKey: AnyCodingKey("top_p"))
            try container.encodeIfPresent(maxTokens, forKey: AnyCodingKey("max_tokens"))
            try container.encodeIfPresent(maxCompletionTokens, forKey: AnyCodingKey("max_completion_tokens"))
            try container.encodeIfPresent(stop, forKey: AnyCodingKey("stop"))
            try container.encodeIfPresent(seed, forKey: AnyCodingKey("seed"))
            try container.encodeIfPresent(reasoningEffort, forKey: AnyCodingKey("reasoning_effort"))
            try container.encodeIfPresent(metadata, forKey: AnyCodingKey("metadata"))
            try container.encodeIfPresent(user, forKey: AnyCodingKey("user"))
            try container.encodeIfPresent(stream, forKey: AnyCodingKey("stream"))
            try container.encodeIfPresent(streamOptions, forKey: AnyCodingKey("stream_options"))
            try container.encodeIfPresent(n, forKey: AnyCodingKey("n"))
            for (key, value) in extra where !Self.known.contains(key) {
                try container.encode(value, forKey: AnyCodingKey(key))
            }
        }
    }

    /// One message of a request (`ChatCompletionRequestMessage`).
    public struct Message: Codable, Sendable, Hashable {
        public var role: String
        public var content: MessageContent?
        public var name: String?
        public var toolCalls: [WireToolCall]?
        public var toolCallId: String?
        public var refusal: String?

        public init(role: String, content: MessageContent?, name: String? = nil, toolCalls: [WireToolCall]? = nil, toolCallId: String? = nil) {
            self.role = role
            self.content = content
            self.name = name
            self.toolCalls = toolCalls
            self.toolCallId = toolCallId
        }

        enum CodingKeys: String, CodingKey {
            case role, content, name, refusal
            case toolCalls = "tool_calls", toolCallId = "tool_call_id"
        }
    }

    /// A message's content: a string or an array of parts.
    public typealias MessageContent = StringOrArray<Part>

    /// A content part: `text`, `image_url`, `input_audio`, `file`, `refusal`.
    public struct Part: Codable, Sendable, Hashable {
        public var type: String
        public var text: String?
        public var imageUrl: ImageURL?
        public var inputAudio: InputAudio?
        public var file: FilePart?
        public var refusal: String?

        public struct ImageURL: Codable, Sendable, Hashable { public var url: String; public var detail: String? }
        public struct InputAudio: Codable, Sendable, Hashable { public var data: String; public var format: String }
        public struct FilePart: Codable, Sendable, Hashable {
            public var fileData: String?
            public var fileId: String?
            public var filename: String?
            enum CodingKeys: String, CodingKey { case fileData = "file_data", fileId = "file_id", filename }
        }

        enum CodingKeys: String, CodingKey {
            case type, text, file, refusal
            case imageUrl = "image_url", inputAudio = "input_audio"
        }

        static func text(_ text: String) -> Part { Part(type: "text", text: text) }
    }

    /// A tool call in a message or a response.
    public struct WireToolCall: Codable, Sendable, Hashable {
        public var id: String
        public var type: String
        public var function: Function
        public struct Function: Codable, Sendable, Hashable { public var name: String; public var arguments: String }
    }

    /// A tool definition (`ChatCompletionTool`).
    public struct Tool: Codable, Sendable, Hashable {
        public var type: String
        public var function: Function
        public struct Function: Codable, Sendable, Hashable {
            public var name: String
            public var description: String?
            public var parameters: JSONValue?
            public var strict: Bool?
        }
    }

    /// `"auto"`, `"none"`, `"required"` or `{"type":"function","function":{"name":...}}`.
    public enum ToolChoiceValue: Codable, Sendable, Hashable {
        case mode(String)
        case function(String)

        struct Named: Codable { var type: String; var function: Name; struct Name: Codable { var name: String } }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let mode = try? container.decode(String.self) { self = .mode(mode) } else { self = .function(try container.decode(Named.self).function.name) }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .mode(let mode): try container.encode(mode)
            case .function(let name): try container.encode(Named(type: "function", function: .init(name: name)))
            }
        }
    }

    /// `{"type":"text"}`, `{"type":"json_object"}` or `{"type":"json_schema","json_schema":{...}}`.
    public struct ResponseFormatValue: Codable, Sendable, Hashable {
        public var type: String
        public var jsonSchema: Schema?
        public struct Schema: Codable, Sendable, Hashable {
            public var name: String
            public var description: String?
            public var schema: JSONValue?
            public var strict: Bool?
        }
        enum CodingKeys: String, CodingKey { case type, jsonSchema = "json_schema" }
    }

    /// `stop`: a string or an array of strings.
    public typealias StopValue = StringOrArray<String>

    // MARK: Responses

    /// `CreateChatCompletionResponse`.
    public struct ChatCompletion: Codable, Sendable {
        public var id: String
        public var object: String
        public var created: Int
        public var model: String
        public var choices: [Choice]
        public var usage: WireUsage?
        public var systemFingerprint: String?

        public struct Choice: Codable, Sendable {
            public var index: Int
            public var message: ResponseMessage
            public var finishReason: String?
            public var logprobs: JSONValue?

            public init(index: Int, message: ResponseMessage, finishReason: String?) {
                self.index = index
                self.message = message
                self.finishReason = finishReason
            }

            enum CodingKeys: String, CodingKey { case index, message, logprobs, finishReason = "finish_reason" }

            public func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(index, forKey: .index)
                try container.encode(message, forKey: .message)
                try container.encode(logprobs ?? .null, forKey: .logprobs)
                try container.encode(finishReason, forKey: .finishReason)
            }
        }

        enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage, systemFingerprint = "system_fingerprint" }
    }

    /// `ChatCompletionResponseMessage`.
    public struct ResponseMessage: Codable, Sendable {
        public var role: String
        public var content: String?
        public var refusal: String?
        public var toolCalls: [WireToolCall]?
        /// Reasoning text from OpenAI-compatible servers (DeepSeek, vLLM, Groq).
        public var reasoningContent: String?

        public init(role: String = "assistant", content: String?, refusal: String? = nil, toolCalls: [WireToolCall]? = nil) {
            self.role = role
            self.content = content
            self.refusal = refusal
            self.toolCalls = toolCalls
        }

        enum CodingKeys: String, CodingKey {
            case role, content, refusal
            case toolCalls = "tool_calls", reasoningContent = "reasoning_content"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(role, forKey: .role)
            try container.encode(content, forKey: .content)
            try container.encode(refusal, forKey: .refusal)
            try container.encodeIfPresent(toolCalls, forKey: .toolCalls)
            try container.encodeIfPresent(reasoningContent, forKey: .reasoningContent)
        }
    }

    /// `CompletionUsage`.
    public struct WireUsage: Codable, Sendable, Hashable {
        public var promptTokens: Int
        public var completionTokens: Int
        public var totalTokens: Int
        public var promptTokensDetails: PromptDetails?
        public var completionTokensDetails: CompletionDetails?

        public struct PromptDetails: Codable, Sendable, Hashable {
            public var cachedTokens: Int?
            enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
        }
        public struct CompletionDetails: Codable, Sendable, Hashable {
            public var reasoningTokens: Int?
            enum CodingKeys: String, CodingKey { case reasoningTokens = "reasoning_tokens" }
        }

        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
            case promptTokensDetails = "prompt_tokens_details", completionTokensDetails = "completion_tokens_details"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            promptTokens = try container.decodeIfPresent(Int.self, forKey: .promptTokens) ?? 0
            completionTokens = try container.decodeIfPresent(Int.self, forKey: .completionTokens) ?? 0
            totalTokens = try container.decodeIfPresent(Int.self, forKey: .totalTokens) ?? promptTokens + completionTokens
            promptTokensDetails = try container.decodeIfPresent(PromptDetails.self, forKey: .promptTokensDetails)
            completionTokensDetails = try container.decodeIfPresent(CompletionDetails.self, forKey: .completionTokensDetails)
        }

        /// The wire form of portable usage.
        public init(_ usage: Usage) {
            promptTokens = usage.inputTokens
            completionTokens = usage.outputTokens
            totalTokens = usage.totalTokens
            promptTokensDetails = PromptDetails(cachedTokens: usage.cachedInputTokens)
            completionTokensDetails = CompletionDetails(reasoningTokens: usage.reasoningTokens)
        }

        /// The portable usage (OpenAI's prompt tokens include cached ones; completion tokens include reasoning).
        public var portable: Usage {
            Usage(inputTokens: promptTokens, outputTokens: completionTokens, cachedInputTokens: promptTokensDetails?.cachedTokens ?? 0,
                  reasoningTokens: completionTokensDetails?.reasoningTokens ?? 0)
        }
    }

    /// `CreateChatCompletionStreamResponse`.
    public struct ChatCompletionChunk: Codable, Sendable {
        public var id: String
        public var object: String
        public var created: Int
        public var model: String
        public var choices: [ChunkChoice]
        public var usage: WireUsage?

        public struct ChunkChoice: Codable, Sendable {
            public var index: Int
            public var delta: Delta
            public var finishReason: String?

            enum CodingKeys: String, CodingKey { case index, delta, finishReason = "finish_reason" }

            public init(index: Int, delta: Delta, finishReason: String?) {
                self.index = index
                self.delta = delta
                self.finishReason = finishReason
            }

            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                index = try container.decodeIfPresent(Int.self, forKey: .index) ?? 0
                delta = try container.decodeIfPresent(Delta.self, forKey: .delta) ?? Delta()
                finishReason = try container.decodeIfPresent(String.self, forKey: .finishReason)
            }

            public func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(index, forKey: .index)
                try container.encode(delta, forKey: .delta)
                try container.encode(finishReason, forKey: .finishReason)
            }
        }

        public struct Delta: Codable, Sendable {
            public var role: String?
            public var content: String?
            public var refusal: String?
            public var toolCalls: [ToolCallChunk]?
            public var reasoningContent: String?

            public init(role: String? = nil, content: String? = nil, refusal: String? = nil, toolCalls: [ToolCallChunk]? = nil) {
                self.role = role
                self.content = content
                self.refusal = refusal
                self.toolCalls = toolCalls
            }

            enum CodingKeys: String, CodingKey {
                case role, content, refusal
                case toolCalls = "tool_calls", reasoningContent = "reasoning_content"
            }
        }

        public struct ToolCallChunk: Codable, Sendable {
            public var index: Int
            public var id: String?
            public var type: String?
            public var function: FunctionChunk?
            public struct FunctionChunk: Codable, Sendable { public var name: String?; public var arguments: String? }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: AnyCodingKey.self)
            try container.encode(id, forKey: AnyCodingKey("id"))
            try container.encode(object, forKey: AnyCodingKey("object"))
            try container.encode(created, forKey: AnyCodingKey("created"))
            try container.encode(model, forKey: AnyCodingKey("model"))
            try container.encode(choices, forKey: AnyCodingKey("choices"))
            if let usage { try container.encode(usage, forKey: AnyCodingKey("usage")) }
        }
    }

    /// `ErrorResponse`.
    public struct ErrorBody: Codable, Sendable {
        public var error: Detail
        public struct Detail: Codable, Sendable {
            public var message: String
            public var type: String?
            public var param: String?
            public var code: String?

            public init(message: String, type: String?, param: String? = nil, code: String? = nil) {
                self.message = message
                self.type = type
                self.param = param
                self.code = code
            }

            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                message = try container.decodeIfPresent(String.self, forKey: .message) ?? ""
                type = try container.decodeIfPresent(String.self, forKey: .type)
                param = try container.decodeIfPresent(String.self, forKey: .param)
                // `code` is a string in the spec, but some compatible servers send numbers.
                if let text = try? container.decodeIfPresent(String.self, forKey: .code) { code = text }
                else if let number = try? container.decodeIfPresent(Int.self, forKey: .code) { code = String(number) }
                else { code = nil }
            }

            public func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(message, forKey: .message)
                try container.encode(type, forKey: .type)
                try container.encode(param, forKey: .param)
                try container.encode(code, forKey: .code)
            }

            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }
        public init(error: Detail) { self.error = error }
    }

    /// `ListModelsResponse`.
    public struct ModelList: Codable, Sendable {
        public var object: String
        public var data: [Model]
        public struct Model: Codable, Sendable {
            public var id: String
            public var object: String
            public var created: Int
            public var ownedBy: String
            enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by" }
            public init(id: String, object: String = "model", created: Int, ownedBy: String) {
                self.id = id; self.object = object; self.created = created; self.ownedBy = ownedBy
            }
            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                id = try container.decode(String.self, forKey: .id)
                object = try container.decodeIfPresent(String.self, forKey: .object) ?? "model"
                created = try container.decodeIfPresent(Int.self, forKey: .created) ?? 0
                ownedBy = try container.decodeIfPresent(String.self, forKey: .ownedBy) ?? ""
            }
        }
        public init(data: [Model]) { self.object = "list"; self.data = data }
    }

    // MARK: Finish reasons

    /// The portable finish reason of a wire value (`function_call` counts as tool calls).
    public static func finishReason(_ raw: String?) -> FinishReason {
        switch raw {
        case "stop"?: .stop
        case "length"?: .length
        case "tool_calls"?, "function_call"?: .toolCalls
        case "content_filter"?: .contentFilter
        case nil: .stop
        case let other?: .other(other)
        }
    }

    /// The wire value of a portable finish reason.
    public static func wireFinishReason(_ reason: FinishReason) -> String {
        switch reason {
        case .stop: "stop"
        case .length: "length"
        case .toolCalls: "tool_calls"
        case .contentFilter: "content_filter"
        case .error: "stop"
        case .other(let raw): raw
        }
    }
}
