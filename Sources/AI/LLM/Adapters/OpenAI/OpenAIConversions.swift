import Foundation
import NIOCore
import NimbusCore
import NimbusLLM

extension OpenAIWire {
    /// How a portable request is written for a particular server.
    public struct EncodingOptions: Sendable, Hashable {
        /// Which field carries the token limit: `max_completion_tokens` (OpenAI, Azure) or `max_tokens` (older compatible servers).
        public var maxTokensField: MaxTokensField
        /// The role of system messages: `system`, or `developer` for OpenAI's reasoning models.
        public var systemRole: String
        /// Ask for usage in the last stream chunk (`stream_options.include_usage`).
        public var includeUsageInStream: Bool

        /// Which field carries the token limit.
        public enum MaxTokensField: Sendable, Hashable { case maxCompletionTokens, maxTokens }

        /// Creates options.
        public init(maxTokensField: MaxTokensField = .maxCompletionTokens, systemRole: String = "system", includeUsageInStream: Bool = true) {
            self.maxTokensField = maxTokensField
            self.systemRole = systemRole
            self.includeUsageInStream = includeUsageInStream
        }
    }

    // MARK: Portable → wire (the adapter)

    /// The wire request for a portable one.
    public static func request(_ request: ChatRequest, model: String, stream: Bool, options: EncodingOptions = .init()) -> ChatCompletionRequest {
        var wire = ChatCompletionRequest(model: model, messages: request.messages.map { message($0, systemRole: options.systemRole) })
        if !request.tools.isEmpty {
            wire.tools = request.tools.map {
                Tool(type: "function", function: .init(name: $0.name, description: $0.description, parameters: $0.parameters, strict: $0.strict))
            }
        }
        wire.toolChoice = request.toolChoice.map {
            switch $0 {
            case .auto: .mode("auto")
            case .none: .mode("none")
            case .required: .mode("required")
            case .tool(let name): .function(name)
            }
        }
        if !request.tools.isEmpty { wire.parallelToolCalls = request.parallelToolCalls }
        wire.responseFormat = request.responseFormat.map {
            switch $0 {
            case .text: ResponseFormatValue(type: "text")
            case .jsonObject: ResponseFormatValue(type: "json_object")
            case .jsonSchema(let name, let schema, let strict):
                ResponseFormatValue(type: "json_schema", jsonSchema: .init(name: name, schema: schema, strict: strict))
            }
        }
        wire.temperature = request.temperature
        wire.topP = request.topP
        switch options.maxTokensField {
        case .maxCompletionTokens: wire.maxCompletionTokens = request.maxTokens
        case .maxTokens: wire.maxTokens = request.maxTokens
        }
        if !request.stop.isEmpty { wire.stop = request.stop.count == 1 ? .string(request.stop[0]) : .array(request.stop) }
        wire.seed = request.seed
        wire.reasoningEffort = request.reasoning?.resolvedEffort?.rawValue
        if !request.metadata.isEmpty { wire.metadata = request.metadata }
        wire.user = request.user
        if stream {
            wire.stream = true
            if options.includeUsageInStream { wire.streamOptions = .init(includeUsage: true) }
        }
        wire.extra = request.providerOptions
        return wire
    }

    static func message(_ message: ChatMessage, systemRole: String) -> Message {
        switch message.role {
        case .system:
            return Message(role: systemRole, content: .string(message.text))
        case .user:
            let parts = message.content.compactMap(part)
            if parts.count == 1, let text = parts[0].text, parts[0].type == "text" {
                return Message(role: "user", content: .string(text), name: message.name)
            }
            return Message(role: "user", content: .array(parts), name: message.name)
        case .assistant:
            let calls = message.toolCalls.map { WireToolCall(id: $0.id, type: "function", function: .init(name: $0.name, arguments: $0.arguments)) }
            let text = message.text
            return Message(role: "assistant", content: text.isEmpty && !calls.isEmpty ? nil : .string(text), toolCalls: calls.isEmpty ? nil : calls)
        case .tool:
            return Message(role: "tool", content: .string(message.text), toolCallId: message.toolCallID)
        }
    }

    static func part(_ part: ContentPart) -> Part? {
        switch part {
        case .text(let text):
            return .text(text)
        case .image(let source, let detail):
            return Part(type: "image_url", imageUrl: .init(url: source.urlString, detail: detail?.rawValue))
        case .audio(let data, let format):
            return Part(type: "input_audio", inputAudio: .init(data: data.base64EncodedString(), format: format))
        case .file(let source, let filename):
            if case .url(let url) = source, url.hasPrefix("file-") { return Part(type: "file", file: .init(fileId: url, filename: filename)) }
            return Part(type: "file", file: .init(fileData: source.urlString, filename: filename))
        case .reasoning:
            return nil
        }
    }

    /// The portable response of a wire response.
    /// - Throws: `dataLoss` when the response has no choice.
    public static func response(_ completion: ChatCompletion, provider: String) throws -> ChatResponse {
        guard let choice = completion.choices.first(where: { $0.index == 0 }) ?? completion.choices.first else {
            throw LLMFailure(kind: .malformedResponse, provider: provider, message: "the completion \(completion.id) has no choices").nimbusError()
        }
        var content: [ContentPart] = []
        if let reasoning = choice.message.reasoningContent, !reasoning.isEmpty { content.append(.reasoning(reasoning)) }
        var finish = finishReason(choice.finishReason)
        if let text = choice.message.content, !text.isEmpty { content.append(.text(text)) }
        else if let refusal = choice.message.refusal, !refusal.isEmpty {
            content.append(.text(refusal))
            if finish == .stop { finish = .contentFilter }
        }
        let calls = (choice.message.toolCalls ?? []).enumerated().map { index, call in
            ToolCall(id: call.id.isEmpty ? "call_\(index)" : call.id, name: call.function.name, arguments: call.function.arguments)
        }
        return ChatResponse(id: completion.id, model: completion.model,
                            message: ChatMessage(role: .assistant, content: ContentPart.coalesced(content), toolCalls: calls),
                            finishReason: finish, usage: completion.usage?.portable ?? .zero)
    }

    /// Turns stream chunks into portable events. Usage (OpenAI's last chunk) comes before `.finish`,
    /// which is sent at `[DONE]` or, for servers that omit it, at the end of the body.
    public struct StreamDecoder: Sendable {
        let provider: String
        private var started = false
        private var pendingFinish: FinishReason?
        private var refused = false
        private var sawText = false
        /// Whether `[DONE]` arrived.
        public private(set) var isDone = false

        /// Creates a decoder.
        public init(provider: String) { self.provider = provider }

        /// The events of one `data:` payload.
        /// - Throws: the provider's error when the stream carries one; `dataLoss` for unreadable chunks.
        public mutating func decode(_ data: String, decoder: JSONDecoder) throws -> [ChatStreamEvent] {
            if data == "[DONE]" {
                isDone = true
                return finish()
            }
            let bytes = Data(data.utf8)
            let chunk: ChatCompletionChunk
            do { chunk = try decoder.decode(ChatCompletionChunk.self, from: bytes) } catch {
                if let body = try? decoder.decode(ErrorBody.self, from: bytes) {
                    throw OpenAIErrors.failure(status: nil, body: body, raw: data, provider: provider).nimbusError()
                }
                throw LLMFailure(kind: .malformedResponse, provider: provider, message: "unreadable stream chunk: \(error)", rawBody: data).nimbusError()
            }
            var events: [ChatStreamEvent] = []
            if !started {
                started = true
                events.append(.start(id: chunk.id, model: chunk.model))
            }
            for choice in chunk.choices where choice.index == 0 {
                let delta = choice.delta
                if let reasoning = delta.reasoningContent, !reasoning.isEmpty { events.append(.reasoningDelta(reasoning)) }
                if let text = delta.content, !text.isEmpty {
                    sawText = true
                    events.append(.textDelta(text))
                }
                if let refusal = delta.refusal, !refusal.isEmpty, !sawText {
                    refused = true
                    events.append(.textDelta(refusal))
                }
                for call in delta.toolCalls ?? [] {
                    events.append(.toolCallDelta(ToolCallDelta(index: call.index, id: call.id, name: call.function?.name,
                                                               arguments: call.function?.arguments ?? "")))
                }
                if let reason = choice.finishReason { pendingFinish = finishReason(reason) }
            }
            if let usage = chunk.usage { events.append(.usage(usage.portable)) }
            return events
        }

        /// The final events when the body ends: `.finish` if a finish reason arrived and was not sent yet.
        public mutating func finish() -> [ChatStreamEvent] {
            guard var reason = pendingFinish else { return [] }
            pendingFinish = nil
            if refused, reason == .stop { reason = .contentFilter }
            return [.finish(reason)]
        }
    }

    // MARK: Wire → portable (the gateway)

    /// The portable request of a wire request (what the gateway receives).
    /// - Throws: `invalidArgument` naming the field that cannot be understood.
    public static func portable(_ wire: ChatCompletionRequest) throws -> ChatRequest {
        var request = ChatRequest(model: wire.model, messages: try wire.messages.enumerated().map { try portable($1, index: $0) })
        request.tools = try (wire.tools ?? []).map { tool in
            guard tool.type == "function" else { throw NimbusError(.invalidArgument, "tools: type '\(tool.type)' is not supported; use function tools") }
            return ToolDefinition(name: tool.function.name, description: tool.function.description,
                                  parameters: tool.function.parameters ?? ["type": "object", "properties": .object([:])], strict: tool.function.strict)
        }
        request.toolChoice = try wire.toolChoice.map {
            switch $0 {
            case .mode("auto"): .auto
            case .mode("none"): ToolChoice.none
            case .mode("required"): .required
            case .function(let name): .tool(name)
            case .mode(let other): throw NimbusError(.invalidArgument, "tool_choice '\(other)' is not one of auto, none, required")
            }
        }
        request.parallelToolCalls = wire.parallelToolCalls
        request.responseFormat = try wire.responseFormat.map { format in
            switch format.type {
            case "text": return .text
            case "json_object": return .jsonObject
            case "json_schema":
                guard let schema = format.jsonSchema else { throw NimbusError(.invalidArgument, "response_format json_schema needs a json_schema object") }
                return .jsonSchema(name: schema.name, schema: schema.schema ?? .object([:]), strict: schema.strict ?? false)
            default: throw NimbusError(.invalidArgument, "response_format type '\(format.type)' is not one of text, json_object, json_schema")
            }
        }
        request.temperature = wire.temperature
        request.topP = wire.topP
        request.maxTokens = wire.maxCompletionTokens ?? wire.maxTokens
        request.stop = wire.stop?.values ?? []
        request.seed = wire.seed
        if let effort = wire.reasoningEffort {
            guard let level = Reasoning.Effort(rawValue: effort) else {
                throw NimbusError(.invalidArgument, "reasoning_effort '\(effort)' is not one of minimal, low, medium, high")
            }
            request.reasoning = Reasoning(effort: level)
        }
        request.metadata = wire.metadata ?? [:]
        request.user = wire.user
        request.providerOptions = wire.extra
        do { try request.checkNumbers() } catch let error as NimbusError {
            throw NimbusError(.invalidArgument, error.message.replacingOccurrences(of: "maxTokens", with: wire.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens"))
        }
        return request
    }

    static func portable(_ message: Message, index: Int) throws -> ChatMessage {
        let parts: [ContentPart]
        switch message.content {
        case nil: parts = []
        case .string(let text)?: parts = [.text(text)]
        case .array(let wireParts)?: parts = try wireParts.map { try portable($0, index: index) }
        }
        switch message.role {
        case "system", "developer":
            return ChatMessage(role: .system, content: parts, name: message.name)
        case "user":
            return ChatMessage(role: .user, content: parts, name: message.name)
        case "assistant":
            let calls = (message.toolCalls ?? []).map { ToolCall(id: $0.id, name: $0.function.name, arguments: $0.function.arguments) }
            return ChatMessage(role: .assistant, content: parts, toolCalls: calls, name: message.name)
        case "tool":
            return ChatMessage(role: .tool, content: parts, toolCallID: message.toolCallId)
        default:
            throw NimbusError(.invalidArgument, "messages[\(index)].role '\(message.role)' is not one of system, developer, user, assistant, tool")
        }
    }

    static func portable(_ part: Part, index: Int) throws -> ContentPart {
        switch part.type {
        case "text":
            return .text(part.text ?? "")
        case "image_url":
            guard let image = part.imageUrl else { throw NimbusError(.invalidArgument, "messages[\(index)]: an image_url part needs image_url.url") }
            let source: MediaSource = MediaSource.url(image.url).inlineData.map { .data($0.data, mediaType: $0.mediaType) } ?? .url(image.url)
            return .image(source, detail: image.detail.flatMap(ContentPart.ImageDetail.init(rawValue:)))
        case "input_audio":
            guard let audio = part.inputAudio, let data = Data(base64Encoded: audio.data) else {
                throw NimbusError(.invalidArgument, "messages[\(index)]: an input_audio part needs base64 input_audio.data")
            }
            return .audio(data: data, format: audio.format)
        case "file":
            guard let file = part.file, let reference = file.fileData ?? file.fileId else {
                throw NimbusError(.invalidArgument, "messages[\(index)]: a file part needs file.file_data or file.file_id")
            }
            let source: MediaSource = MediaSource.url(reference).inlineData.map { .data($0.data, mediaType: $0.mediaType) } ?? .url(reference)
            return .file(source, filename: file.filename)
        case "refusal":
            return .text(part.refusal ?? "")
        default:
            throw NimbusError(.invalidArgument, "messages[\(index)]: content part type '\(part.type)' is not supported")
        }
    }

    /// The wire response of a portable response (what the gateway answers).
    public static func completion(_ response: ChatResponse, created: Int) -> ChatCompletion {
        completion([response], created: created)
    }

    /// The wire response for `n` > 1: one choice per response, in order, with their usage added up
    /// (each was a call of its own, prompt included).
    public static func completion(_ responses: [ChatResponse], created: Int) -> ChatCompletion {
        let choices = responses.enumerated().map { index, response -> ChatCompletion.Choice in
            let calls = response.toolCalls.map { WireToolCall(id: $0.id, type: "function", function: .init(name: $0.name, arguments: $0.arguments)) }
            var message = ResponseMessage(content: response.text.isEmpty && !calls.isEmpty ? nil : response.text, toolCalls: calls.isEmpty ? nil : calls)
            let reasoning = response.message.content.compactMap { if case .reasoning(let text, _, _) = $0 { text } else { nil } }.joined()
            if !reasoning.isEmpty { message.reasoningContent = reasoning }
            return .init(index: index, message: message, finishReason: wireFinishReason(response.finishReason))
        }
        let usage = responses.reduce(Usage.zero) { $0 + $1.usage }
        let first = responses.first
        return ChatCompletion(id: first?.id ?? "", object: "chat.completion", created: created, model: first?.model ?? "",
                              choices: choices, usage: WireUsage(usage), systemFingerprint: nil)
    }

    /// Turns portable stream events into chunks (what the gateway streams).
    public struct StreamEncoder: Sendable {
        private var id: String
        private var model: String
        private let created: Int
        private var sentRole = false
        private var toolIndexes: Set<Int> = []

        /// Creates an encoder; `id` and `model` are replaced by a `.start` event's.
        public init(id: String, model: String, created: Int) {
            self.id = id
            self.model = model
            self.created = created
        }

        /// The chunks for one event (most events give one; `.start` gives the role chunk).
        public mutating func encode(_ event: ChatStreamEvent) -> [ChatCompletionChunk] {
            switch event {
            case .start(let id, let model):
                if !id.isEmpty { self.id = id }
                if !model.isEmpty { self.model = model }
                sentRole = true
                return [chunk(ChatCompletionChunk.Delta(role: "assistant", content: ""))]
            case .textDelta(let text):
                return [chunk(ChatCompletionChunk.Delta(content: text))]
            case .reasoningDelta(let text, _):
                var delta = ChatCompletionChunk.Delta()
                delta.reasoningContent = text
                return text.isEmpty ? [] : [chunk(delta)]
            case .toolCallDelta(let call):
                let first = toolIndexes.insert(call.index).inserted
                let wire = ChatCompletionChunk.ToolCallChunk(index: call.index, id: call.id, type: first ? "function" : nil,
                                                             function: .init(name: call.name, arguments: call.arguments))
                return [chunk(ChatCompletionChunk.Delta(toolCalls: [wire]))]
            case .usage:
                return []
            case .finish(let reason):
                return [chunk(ChatCompletionChunk.Delta(), finishReason: wireFinishReason(reason))]
            }
        }

        /// The chunks for one event as Server-Sent Events (`data: {...}\n\n`), written directly for the
        /// frequent kinds (role, text, finish) and through `JSONEncoder` for the rest.
        public mutating func sse(_ event: ChatStreamEvent, encoder: JSONEncoder) throws -> ByteBuffer? {
            switch event {
            case .start, .textDelta, .finish:
                var buffer = ByteBuffer()
                for chunk in encode(event) {
                    let choice = chunk.choices.first
                    buffer.writeString("data: {\"id\":")
                    Self.writeJSONString(chunk.id, to: &buffer)
                    buffer.writeString(",\"object\":\"chat.completion.chunk\",\"created\":\(chunk.created),\"model\":")
                    Self.writeJSONString(chunk.model, to: &buffer)
                    buffer.writeString(",\"choices\":[{\"index\":0,\"delta\":{")
                    var first = true
                    if let role = choice?.delta.role {
                        buffer.writeString("\"role\":")
                        Self.writeJSONString(role, to: &buffer)
                        first = false
                    }
                    if let content = choice?.delta.content {
                        if !first { buffer.writeString(",") }
                        buffer.writeString("\"content\":")
                        Self.writeJSONString(content, to: &buffer)
                    }
                    buffer.writeString("},\"finish_reason\":")
                    if let reason = choice?.finishReason { Self.writeJSONString(reason, to: &buffer) } else { buffer.writeString("null") }
                    buffer.writeString("}]}\n\n")
                }
                return buffer.readableBytes > 0 ? buffer : nil
            default:
                var buffer = ByteBuffer()
                for chunk in encode(event) {
                    buffer.writeString("data: ")
                    buffer.writeBytes(try encoder.encode(chunk))
                    buffer.writeString("\n\n")
                }
                return buffer.readableBytes > 0 ? buffer : nil
            }
        }

        /// Writes `text` as a JSON string literal (RFC 8259 escapes).
        static func writeJSONString(_ text: String, to buffer: inout ByteBuffer) {
            buffer.writeInteger(UInt8(ascii: "\""))
            var start = text.utf8.startIndex
            let utf8 = text.utf8
            var index = start
            while index != utf8.endIndex {
                let byte = utf8[index]
                if byte == 0x22 || byte == 0x5C || byte < 0x20 {
                    buffer.writeBytes(utf8[start..<index])
                    switch byte {
                    case 0x22: buffer.writeString("\\\"")
                    case 0x5C: buffer.writeString("\\\\")
                    case 0x0A: buffer.writeString("\\n")
                    case 0x0D: buffer.writeString("\\r")
                    case 0x09: buffer.writeString("\\t")
                    default: buffer.writeString(String(format: "\\u%04x", byte))
                    }
                    start = utf8.index(after: index)
                }
                index = utf8.index(after: index)
            }
            buffer.writeBytes(utf8[start..<utf8.endIndex])
            buffer.writeInteger(UInt8(ascii: "\""))
        }

        /// The usage chunk sent last when the client asked for `stream_options.include_usage`.
        public func usageChunk(_ usage: Usage) -> ChatCompletionChunk {
            ChatCompletionChunk(id: id, object: "chat.completion.chunk", created: created, model: model, choices: [], usage: WireUsage(usage))
        }

        private func chunk(_ delta: ChatCompletionChunk.Delta, finishReason: String? = nil) -> ChatCompletionChunk {
            ChatCompletionChunk(id: id, object: "chat.completion.chunk", created: created, model: model,
                                choices: [.init(index: 0, delta: delta, finishReason: finishReason)], usage: nil)
        }
    }
}
