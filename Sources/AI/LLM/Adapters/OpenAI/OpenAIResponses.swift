import Foundation
import NimbusCore
import NimbusLLM

/// OpenAI's Responses API (`POST /v1/responses`) on the portable model: requests become a
/// ``ChatRequest``, replies and stream events become Response objects and `response.*` events, as
/// the official SDKs read them (`client.responses.create`, `stream=True`, `previous_response_id`).
/// What is served: text and image input, function tools and their outputs, structured output
/// (`text.format`), reasoning effort; hosted tools (web search, file search, computer use…) are refused
/// with a 400 that says so.
///
/// ```swift
/// let request = try OpenAIResponses.Request(json)
/// let reply = try await model.chat(request.chatRequest(history: earlier))
/// let body = OpenAIResponses.response(reply, to: request, id: "resp_1", createdAt: now)
/// ```
public enum OpenAIResponses {
    /// A parsed `CreateResponse` body.
    public struct Request: Sendable {
        /// The model asked for.
        public var model: String
        /// The new input, as messages (instructions are separate: they are not carried to a follow-up).
        public var input: [ChatMessage]
        /// `instructions`: a system message for this call only.
        public var instructions: String?
        /// The conversation to continue.
        public var previousResponseID: String?
        /// Whether to keep the response for `previous_response_id` and retrieval (default true).
        public var store: Bool
        /// Whether to stream events.
        public var stream: Bool
        /// The portable settings (tools, format, sampling, limits); `messages` is filled by ``chatRequest(history:)``.
        public var settings: ChatRequest
        /// Fields echoed in the response object as sent (`tools`, `tool_choice`, `text`, `metadata`…).
        public var echo: [String: JSONValue]

        /// Fields accepted and echoed but without effect on the portable request.
        static let accepted: Set<String> = ["include", "truncation", "service_tier", "user", "safety_identifier", "prompt_cache_key",
                                            "prompt_cache_retention", "background", "stream_options", "top_logprobs", "max_tool_calls"]
        static let known: Set<String> = accepted.union(["model", "input", "instructions", "previous_response_id", "store", "stream", "tools",
                                                        "tool_choice", "text", "temperature", "top_p", "max_output_tokens", "metadata",
                                                        "parallel_tool_calls", "reasoning"])

        /// Parses a request body.
        /// - Throws: `invalidArgument` naming the field: unknown fields, hosted tools, malformed items, numbers out of range.
        public init(_ body: JSONValue) throws {
            guard case .object(let fields) = body else { throw NimbusError(.invalidArgument, "the body must be a JSON object") }
            if let unknown = fields.keys.sorted().first(where: { !Self.known.contains($0) }) {
                throw NimbusError(.invalidArgument, "Unrecognized request argument supplied: \(unknown)")
            }
            guard let model = fields["model"]?.stringValue, !model.isEmpty else { throw NimbusError(.invalidArgument, "model is required") }
            if fields["background"]?.boolValue == true {
                throw NimbusError(.invalidArgument, "background: true is not supported; make the call and wait, or stream it")
            }
            self.model = model
            instructions = try Self.optional(fields["instructions"], "instructions") { $0.stringValue }
            previousResponseID = try Self.optional(fields["previous_response_id"], "previous_response_id") { $0.stringValue }
            store = try Self.optional(fields["store"], "store") { $0.boolValue } ?? true
            stream = try Self.optional(fields["stream"], "stream") { $0.boolValue } ?? false
            input = try Self.messages(fields["input"] ?? .array([]))
            var settings = ChatRequest(model: model, messages: [])
            settings.tools = try Self.tools(fields["tools"])
            settings.toolChoice = try Self.toolChoice(fields["tool_choice"])
            settings.parallelToolCalls = try Self.optional(fields["parallel_tool_calls"], "parallel_tool_calls") { $0.boolValue }
            settings.responseFormat = try Self.format(fields["text"])
            settings.temperature = try Self.optional(fields["temperature"], "temperature") { $0.numberValue }
            settings.topP = try Self.optional(fields["top_p"], "top_p") { $0.numberValue }
            if let limit = try Self.optional(fields["max_output_tokens"], "max_output_tokens", { $0.numberValue }) {
                guard limit == limit.rounded(), limit >= 1, limit <= Double(ChatRequest.maxTokensLimit) else {
                    throw NimbusError(.invalidArgument, "max_output_tokens must be an integer between 1 and \(ChatRequest.maxTokensLimit)")
                }
                settings.maxTokens = Int(limit)
            }
            if let effort = fields["reasoning"]?["effort"]?.stringValue, effort != "none" {
                guard let parsed = Reasoning.Effort(rawValue: effort) else {
                    throw NimbusError(.invalidArgument, "reasoning.effort must be one of none, minimal, low, medium, high, not '\(effort)'")
                }
                settings.reasoning = Reasoning(effort: parsed)
            }
            if case .object(let metadata)? = fields["metadata"] {
                settings.metadata = try metadata.mapValues { value in
                    guard let text = value.stringValue else { throw NimbusError(.invalidArgument, "metadata values must be strings") }
                    return text
                }
            }
            settings.user = fields["safety_identifier"]?.stringValue ?? fields["user"]?.stringValue
            self.settings = settings
            echo = fields.filter { ["tools", "tool_choice", "text", "metadata", "temperature", "top_p", "max_output_tokens", "parallel_tool_calls",
                                    "reasoning", "instructions", "previous_response_id", "store", "truncation", "user", "service_tier"].contains($0.key) }
        }

        /// The portable request: earlier turns, then this call's instructions and input.
        public func chatRequest(history: [ChatMessage]) throws -> ChatRequest {
            var request = settings
            request.messages = (instructions.map { [ChatMessage.system($0)] } ?? []) + history + input
            // A function_call_output names no function: take it from the call, which may be in an earlier response.
            var names: [String: String] = [:]
            for (index, message) in request.messages.enumerated() {
                for call in message.toolCalls { names[call.id] = call.name }
                if message.role == .tool, message.name == nil, let id = message.toolCallID { request.messages[index].name = names[id] }
            }
            guard !request.messages.isEmpty else { throw NimbusError(.invalidArgument, "input is empty: send text or input items") }
            try request.checkNumbers()
            return request
        }

        static func optional<T>(_ value: JSONValue?, _ name: String, _ read: (JSONValue) -> T?) throws -> T? {
            guard let value, value != .null else { return nil }
            guard let read = read(value) else { throw NimbusError(.invalidArgument, "\(name) has the wrong type") }
            return read
        }

        /// `input`: a string, or items (messages, function calls, function call outputs).
        static func messages(_ input: JSONValue) throws -> [ChatMessage] {
            if let text = input.stringValue { return [.user(text)] }
            guard let items = input.arrayValue else { throw NimbusError(.invalidArgument, "input must be a string or an array of items") }
            var messages: [ChatMessage] = []
            for (index, item) in items.enumerated() {
                let type = item["type"]?.stringValue ?? (item["role"] != nil ? "message" : "")
                switch type {
                case "message":
                    messages.append(try message(item, index: index))
                case "function_call":
                    guard let callID = item["call_id"]?.stringValue, let name = item["name"]?.stringValue, let arguments = item["arguments"]?.stringValue else {
                        throw NimbusError(.invalidArgument, "input[\(index)]: a function_call needs call_id, name and arguments")
                    }
                    let call = ToolCall(id: callID, name: name, arguments: arguments)
                    if let last = messages.last, last.role == .assistant, last.text.isEmpty || !last.toolCalls.isEmpty {
                        messages[messages.count - 1].toolCalls.append(call)
                    } else {
                        messages.append(.assistant("", toolCalls: [call]))
                    }
                case "function_call_output":
                    guard let callID = item["call_id"]?.stringValue else {
                        throw NimbusError(.invalidArgument, "input[\(index)]: a function_call_output needs call_id")
                    }
                    let output = try item["output"].map { try text(of: $0, index: index) } ?? ""
                    messages.append(.tool(callID: callID, output))
                case "reasoning":
                    continue   // the provider's own reasoning items are not replayed to other providers
                default:
                    throw NimbusError(.invalidArgument, "input[\(index)]: items of type '\(type)' are not supported; use messages, function_call and function_call_output")
                }
            }
            return messages
        }

        static func message(_ item: JSONValue, index: Int) throws -> ChatMessage {
            let role: ChatMessage.Role
            switch item["role"]?.stringValue {
            case "user": role = .user
            case "assistant": role = .assistant
            case "system", "developer": role = .system
            default: throw NimbusError(.invalidArgument, "input[\(index)].role must be user, assistant, system or developer")
            }
            if let text = item["content"]?.stringValue { return ChatMessage(role: role, content: [.text(text)]) }
            guard let parts = item["content"]?.arrayValue else { throw NimbusError(.invalidArgument, "input[\(index)].content must be a string or a list of parts") }
            let content: [ContentPart] = try parts.map { part in
                switch part["type"]?.stringValue {
                case "input_text", "output_text": return .text(part["text"]?.stringValue ?? "")
                case "refusal": return .text(part["refusal"]?.stringValue ?? "")
                case "input_image":
                    guard let url = part["image_url"]?.stringValue else {
                        throw NimbusError(.invalidArgument, "input[\(index)]: input_image needs image_url (file_id is not supported)")
                    }
                    let source = MediaSource.url(url).inlineData.map { MediaSource.data($0.data, mediaType: $0.mediaType) } ?? .url(url)
                    return .image(source, detail: part["detail"]?.stringValue.flatMap(ContentPart.ImageDetail.init(rawValue:)))
                case let other:
                    throw NimbusError(.invalidArgument, "input[\(index)]: content parts of type '\(other ?? "?")' are not supported; use input_text and input_image")
                }
            }
            return ChatMessage(role: role, content: content)
        }

        static func text(of output: JSONValue, index: Int) throws -> String {
            if let text = output.stringValue { return text }
            guard let parts = output.arrayValue else { throw NimbusError(.invalidArgument, "input[\(index)].output must be a string or text parts") }
            return parts.compactMap { $0["text"]?.stringValue }.joined()
        }

        static func tools(_ value: JSONValue?) throws -> [ToolDefinition] {
            guard let value, value != .null else { return [] }
            guard let tools = value.arrayValue else { throw NimbusError(.invalidArgument, "tools must be an array") }
            return try tools.enumerated().map { index, tool in
                guard tool["type"]?.stringValue == "function" else {
                    throw NimbusError(.invalidArgument, "tools[\(index)]: type '\(tool["type"]?.stringValue ?? "?")' is not supported here; use function tools")
                }
                guard let name = tool["name"]?.stringValue else { throw NimbusError(.invalidArgument, "tools[\(index)].name is required") }
                let parameters = tool["parameters"].flatMap { $0 == .null ? nil : $0 } ?? ["type": "object", "properties": .object([:])]
                return ToolDefinition(name: name, description: tool["description"]?.stringValue, parameters: parameters, strict: tool["strict"]?.boolValue)
            }
        }

        static func toolChoice(_ value: JSONValue?) throws -> ToolChoice? {
            guard let value, value != .null else { return nil }
            switch value.stringValue {
            case "auto": return .auto
            case "none": return ToolChoice.none
            case "required": return .required
            case nil:
                if value["type"]?.stringValue == "function", let name = value["name"]?.stringValue { return .tool(name) }
                if value["type"]?.stringValue == "allowed_tools" { return value["mode"]?.stringValue == "required" ? .required : .auto }
                throw NimbusError(.invalidArgument, "tool_choice must be auto, none, required or {\"type\": \"function\", \"name\": ...}")
            case let other?: throw NimbusError(.invalidArgument, "tool_choice '\(other)' is not one of auto, none, required")
            }
        }

        static func format(_ text: JSONValue?) throws -> ResponseFormat? {
            guard let format = text?["format"], format != .null else { return nil }
            switch format["type"]?.stringValue {
            case "text": return .text
            case "json_object": return .jsonObject
            case "json_schema":
                guard let name = format["name"]?.stringValue, let schema = format["schema"] else {
                    throw NimbusError(.invalidArgument, "text.format of type json_schema needs name and schema")
                }
                return .jsonSchema(name: name, schema: schema, strict: format["strict"]?.boolValue ?? false)
            default: throw NimbusError(.invalidArgument, "text.format.type must be text, json_object or json_schema")
            }
        }
    }

    // MARK: Responses

    /// The output items of a reply: reasoning, the message, then function calls.
    public static func output(_ reply: ChatResponse, itemID: String) -> [JSONValue] {
        var items: [JSONValue] = []
        let reasoning = reply.message.content.compactMap { if case .reasoning(let text, _, _) = $0 { text } else { nil } }.joined()
        if !reasoning.isEmpty { items.append(reasoningItem(id: "rs_\(itemID)", text: reasoning)) }
        if !reply.text.isEmpty || reply.toolCalls.isEmpty {
            items.append(messageItem(id: "msg_\(itemID)", text: reply.text, status: "completed"))
        }
        for (index, call) in reply.toolCalls.enumerated() {
            items.append(functionCallItem(id: "fc_\(itemID)_\(index)", callID: call.id, name: call.name, arguments: call.arguments, status: "completed"))
        }
        return items
    }

    /// The Response object for a finished reply (`status` from its finish reason).
    public static func response(_ reply: ChatResponse, to request: Request, id: String, createdAt: Int, completedAt: Int? = nil) -> JSONValue {
        object(request, id: id, createdAt: createdAt, status: status(reply.finishReason), output: output(reply, itemID: itemID(id)),
               usage: reply.usage, finishReason: reply.finishReason, completedAt: completedAt ?? createdAt)
    }

    static func itemID(_ responseID: String) -> String { responseID.hasPrefix("resp_") ? String(responseID.dropFirst(5)) : responseID }

    static func status(_ reason: FinishReason) -> String {
        switch reason {
        case .length, .contentFilter: "incomplete"
        case .error: "failed"
        default: "completed"
        }
    }

    /// A Response object with every field the spec requires.
    static func object(_ request: Request, id: String, createdAt: Int, status: String, output: [JSONValue], usage: Usage?,
                       finishReason: FinishReason?, completedAt: Int?, error: JSONValue = .null) -> JSONValue {
        var fields: [String: JSONValue] = [
            "id": .string(id), "object": "response", "created_at": .number(Double(createdAt)), "status": .string(status),
            "model": .string(request.model), "output": .array(output), "error": error,
            "incomplete_details": .null, "instructions": request.instructions.map(JSONValue.string) ?? .null,
            "tools": request.echo["tools"] ?? .array([]), "tool_choice": request.echo["tool_choice"] ?? "auto",
            "parallel_tool_calls": request.echo["parallel_tool_calls"] ?? true, "metadata": request.echo["metadata"] ?? .object([:]),
            "temperature": request.echo["temperature"] ?? 1, "top_p": request.echo["top_p"] ?? 1,
            "text": request.echo["text"] ?? ["format": ["type": "text"]], "max_output_tokens": request.echo["max_output_tokens"] ?? .null,
            "previous_response_id": request.previousResponseID.map(JSONValue.string) ?? .null, "store": .bool(request.store),
            "reasoning": request.echo["reasoning"] ?? .null, "truncation": request.echo["truncation"] ?? "disabled",
            "completed_at": status == "completed" ? completedAt.map { .number(Double($0)) } ?? .null : .null,
            "usage": usage.map(Self.usage) ?? .null,
        ]
        if let user = request.echo["user"] { fields["user"] = user }
        if let reason = finishReason, status == "incomplete" {
            fields["incomplete_details"] = ["reason": reason == .contentFilter ? "content_filter" : "max_output_tokens"]
        }
        return .object(fields)
    }

    static func usage(_ usage: Usage) -> JSONValue {
        ["input_tokens": .number(Double(usage.inputTokens)),
         "input_tokens_details": ["cached_tokens": .number(Double(usage.cachedInputTokens)), "cache_write_tokens": .number(Double(usage.cacheWriteInputTokens))],
         "output_tokens": .number(Double(usage.outputTokens)),
         "output_tokens_details": ["reasoning_tokens": .number(Double(usage.reasoningTokens))],
         "total_tokens": .number(Double(usage.totalTokens))]
    }

    static func messageItem(id: String, text: String?, status: String) -> JSONValue {
        ["type": "message", "id": .string(id), "status": .string(status), "role": "assistant",
         "content": .array(text.map { [textPart($0)] } ?? [])]
    }

    static func textPart(_ text: String) -> JSONValue {
        ["type": "output_text", "text": .string(text), "annotations": .array([]), "logprobs": .array([])]
    }

    static func functionCallItem(id: String, callID: String, name: String, arguments: String, status: String) -> JSONValue {
        ["type": "function_call", "id": .string(id), "call_id": .string(callID), "name": .string(name), "arguments": .string(arguments), "status": .string(status)]
    }

    static func reasoningItem(id: String, text: String) -> JSONValue {
        ["type": "reasoning", "id": .string(id), "summary": [["type": "summary_text", "text": .string(text)]]]
    }

    /// The conversation a stored response continues: the call's input and its reply (without instructions).
    public static func conversation(history: [ChatMessage], request: Request, reply: ChatResponse) -> [ChatMessage] {
        history + request.input + [reply.message]
    }

    // MARK: Streaming

    /// Turns portable stream events into `response.*` events, in the order the SDKs assemble them:
    /// `response.created`, `response.in_progress`, then per output item `output_item.added`, its
    /// deltas and `.done` events, and `response.completed` (or `.incomplete`/`.failed`) with the whole response.
    public struct StreamEncoder {
        let request: Request
        let id: String
        let createdAt: Int
        private var sequence = 0
        private var accumulator = ChatResponseAccumulator()
        private var output: [JSONValue] = []
        private var open: Open?
        private var reasoning = ""

        private enum Open {
            case message(index: Int, text: String)
            case call(index: Int, itemID: String, callID: String, name: String, arguments: String)
        }

        /// An encoder for the response `id`.
        public init(request: Request, id: String, createdAt: Int) {
            self.request = request
            self.id = id
            self.createdAt = createdAt
        }

        /// One event: its name and its body.
        public typealias Event = (name: String, data: JSONValue)

        /// The events that open the stream.
        public mutating func start() -> [Event] {
            let shell = OpenAIResponses.object(request, id: id, createdAt: createdAt, status: "in_progress", output: [], usage: nil, finishReason: nil, completedAt: nil)
            return [event("response.created", ["response": shell]), event("response.in_progress", ["response": shell])]
        }

        /// The events for one portable event.
        public mutating func encode(_ portable: ChatStreamEvent) -> [Event] {
            accumulator.add(portable)
            var events: [Event] = []
            switch portable {
            case .reasoningDelta(let text, _):
                reasoning += text
            case .textDelta(let text):
                if case .message(let index, let sofar)? = open {
                    open = .message(index: index, text: sofar + text)
                } else {
                    events += closeOpen()
                    events += flushReasoning()
                    let index = output.count
                    open = .message(index: index, text: text)
                    let itemID = "msg_\(itemID(id))"
                    events.append(event("response.output_item.added", ["output_index": .number(Double(index)),
                                                                      "item": OpenAIResponses.messageItem(id: itemID, text: nil, status: "in_progress")]))
                    events.append(event("response.content_part.added", ["item_id": .string(itemID), "output_index": .number(Double(index)),
                                                                         "content_index": 0, "part": OpenAIResponses.textPart("")]))
                }
                if case .message(let index, _)? = open {
                    events.append(event("response.output_text.delta", ["item_id": .string("msg_\(itemID(id))"), "output_index": .number(Double(index)),
                                                                       "content_index": 0, "delta": .string(text), "logprobs": .array([])]))
                }
            case .toolCallDelta(let delta):
                let callID = delta.id.flatMap { $0.isEmpty ? nil : $0 }
                if case .call(let index, let item, let existing, let name, let arguments)? = open, callID == nil || callID == existing {
                    open = .call(index: index, itemID: item, callID: existing, name: name, arguments: arguments + delta.arguments)
                } else {
                    events += closeOpen()
                    events += flushReasoning()
                    let index = output.count
                    let item = "fc_\(itemID(id))_\(delta.index)"
                    let call = callID ?? "call_\(itemID(id))_\(delta.index)"
                    open = .call(index: index, itemID: item, callID: call, name: delta.name ?? "", arguments: delta.arguments)
                    events.append(event("response.output_item.added", ["output_index": .number(Double(index)),
                                                                      "item": OpenAIResponses.functionCallItem(id: item, callID: call, name: delta.name ?? "", arguments: "", status: "in_progress")]))
                }
                if case .call(let index, let item, _, _, _)? = open, !delta.arguments.isEmpty {
                    events.append(event("response.function_call_arguments.delta", ["item_id": .string(item), "output_index": .number(Double(index)),
                                                                                  "delta": .string(delta.arguments)]))
                }
            case .start, .usage, .finish:
                break
            }
            return events
        }

        /// The closing events once the upstream ended; `error` when it failed.
        public mutating func finish(error: (code: String, message: String)? = nil) -> (events: [Event], reply: ChatResponse?) {
            var events = closeOpen() + flushReasoning()
            if let error {
                let failed = OpenAIResponses.object(request, id: id, createdAt: createdAt, status: "failed", output: output, usage: accumulator.usage,
                                                    finishReason: .error, completedAt: nil, error: ["code": .string(error.code), "message": .string(error.message)])
                events.append(event("response.failed", ["response": failed]))
                return (events, nil)
            }
            let reply = accumulator.partialResponse(finishReason: accumulator.isFinished ? (try? accumulator.response().finishReason) ?? .stop : .stop)
            let status = OpenAIResponses.status(reply.finishReason)
            let whole = OpenAIResponses.object(request, id: id, createdAt: createdAt, status: status, output: output, usage: reply.usage,
                                               finishReason: reply.finishReason, completedAt: Int(Date().timeIntervalSince1970))
            events.append(event(status == "incomplete" ? "response.incomplete" : "response.completed", ["response": whole]))
            return (events, reply)
        }

        private mutating func flushReasoning() -> [Event] {
            guard !reasoning.isEmpty else { return [] }
            let item = OpenAIResponses.reasoningItem(id: "rs_\(itemID(id))", text: reasoning)
            let index = output.count
            reasoning = ""
            output.append(item)
            return [event("response.output_item.added", ["output_index": .number(Double(index)), "item": ["type": "reasoning", "id": item["id"] ?? .null, "summary": .array([])]]),
                    event("response.output_item.done", ["output_index": .number(Double(index)), "item": item])]
        }

        private mutating func closeOpen() -> [Event] {
            defer { open = nil }
            switch open {
            case .message(let index, let text)?:
                let item = "msg_\(itemID(id))"
                let done = OpenAIResponses.messageItem(id: item, text: text, status: "completed")
                output.append(done)
                return [event("response.output_text.done", ["item_id": .string(item), "output_index": .number(Double(index)), "content_index": 0,
                                                            "text": .string(text), "logprobs": .array([])]),
                        event("response.content_part.done", ["item_id": .string(item), "output_index": .number(Double(index)), "content_index": 0,
                                                             "part": OpenAIResponses.textPart(text)]),
                        event("response.output_item.done", ["output_index": .number(Double(index)), "item": done])]
            case .call(let index, let item, let callID, let name, let arguments)?:
                let done = OpenAIResponses.functionCallItem(id: item, callID: callID, name: name, arguments: arguments, status: "completed")
                output.append(done)
                return [event("response.function_call_arguments.done", ["item_id": .string(item), "output_index": .number(Double(index)),
                                                                        "name": .string(name), "arguments": .string(arguments)]),
                        event("response.output_item.done", ["output_index": .number(Double(index)), "item": done])]
            case nil:
                return []
            }
        }

        private func itemID(_ id: String) -> String { OpenAIResponses.itemID(id) }

        private mutating func event(_ type: String, _ fields: [String: JSONValue]) -> Event {
            var body = fields
            body["type"] = .string(type)
            body["sequence_number"] = .number(Double(sequence))
            sequence += 1
            return (type, .object(body))
        }
    }
}
