import Foundation
import NimbusCore
import NimbusLLM

extension AnthropicWire {
    // MARK: Portable → wire (the adapter)

    /// The wire request for a portable one. System messages go to the top-level `system`; tool results
    /// become `tool_result` blocks of one user turn; `maxTokens` defaults to `defaultMaxTokens`
    /// (Anthropic requires it) and grows by the thinking budget when the budget would not fit.
    /// - Throws: `invalidArgument` for content Anthropic does not take (audio) or tool arguments that are not JSON objects.
    public static func request(_ request: ChatRequest, model: String, stream: Bool, defaultMaxTokens: Int = 4096) throws -> MessagesRequest {
        var wire = MessagesRequest(model: model, messages: try messages(request.messages), maxTokens: request.maxTokens ?? defaultMaxTokens)
        let systems = request.messages.filter { $0.role == .system }
        if systems.contains(where: \.cacheBreakpoint) {
            wire.system = .array(systems.map { Block(type: "text", text: $0.text, cacheControl: $0.cacheBreakpoint ? .ephemeral : nil) })
        } else if let text = request.systemText {
            wire.system = .string(text)
        }
        if !request.tools.isEmpty {
            wire.tools = request.tools.map { Tool(name: $0.name, description: $0.description, inputSchema: $0.parameters, strict: $0.strict) }
        }
        let disableParallel: Bool? = request.parallelToolCalls == false ? true : nil
        wire.toolChoice = request.toolChoice.map {
            switch $0 {
            case .auto: ToolChoice(type: "auto", disableParallelToolUse: disableParallel)
            case .required: ToolChoice(type: "any", disableParallelToolUse: disableParallel)
            case .none: ToolChoice(type: "none")
            case .tool(let name): ToolChoice(type: "tool", name: name, disableParallelToolUse: disableParallel)
            }
        }
        if wire.toolChoice == nil, disableParallel != nil, !request.tools.isEmpty {
            wire.toolChoice = ToolChoice(type: "auto", disableParallelToolUse: true)
        }
        if let budget = request.reasoning?.resolvedBudget {
            let budget = max(1024, budget)
            wire.thinking = .init(type: "enabled", budgetTokens: budget)
            if wire.maxTokens <= budget { wire.maxTokens = budget + wire.maxTokens }
        } else {
            // Anthropic's range is 0...1; portable requests allow up to 2.
            wire.temperature = request.temperature.map { min($0, 1) }
            wire.topP = request.topP
        }
        if !request.stop.isEmpty { wire.stopSequences = request.stop }
        if let user = request.user { wire.metadata = .init(userId: user) }
        switch request.responseFormat {
        case .jsonSchema(_, let schema, _)?: wire.outputConfig = .init(format: .init(type: "json_schema", schema: schema))
        case .jsonObject?: wire.outputConfig = .init(format: .init(type: "json_schema", schema: ["type": "object"]))
        case .text?, nil: break
        }
        if stream { wire.stream = true }
        wire.extra = request.providerOptions
        return wire
    }

    static func messages(_ messages: [ChatMessage]) throws -> [Message] {
        var result: [Message] = []
        func append(_ role: String, _ blocks: [Block]) {
            guard !blocks.isEmpty else { return }
            // Consecutive turns of one role are one turn: tool results and the user's follow-up share it.
            if result.last?.role == role { result[result.count - 1].content += blocks } else { result.append(Message(role: role, content: blocks)) }
        }
        for (index, message) in messages.enumerated() {
            var blocks: [Block]
            switch message.role {
            case .system:
                continue
            case .user:
                blocks = try message.content.compactMap { try block($0, index: index) }
                append("user", withCache(blocks, message.cacheBreakpoint))
            case .assistant:
                blocks = try message.content.compactMap { try block($0, index: index) }
                for call in message.toolCalls {
                    let input = try call.parsedArguments()
                    guard input.objectValue != nil else {
                        throw NimbusError(.invalidArgument, "messages[\(index)]: the arguments of tool call \(call.id) must be a JSON object for Anthropic, not \(input.typeName)")
                    }
                    blocks.append(Block(type: "tool_use", id: call.id, name: call.name, input: input))
                }
                append("assistant", withCache(blocks, message.cacheBreakpoint))
            case .tool:
                let parts = try message.content.compactMap { try block($0, index: index) }
                let content: TextOrBlocks = parts.allSatisfy { $0.type == "text" }
                    ? .string(parts.compactMap(\.text).joined()) : .array(parts)
                let result = Block(type: "tool_result", toolUseId: message.toolCallID, content: content, isError: message.isError ? true : nil)
                append("user", withCache([result], message.cacheBreakpoint))
            }
        }
        return result
    }

    static func withCache(_ blocks: [Block], _ breakpoint: Bool) -> [Block] {
        guard breakpoint, !blocks.isEmpty else { return blocks }
        var blocks = blocks
        blocks[blocks.count - 1].cacheControl = .ephemeral
        return blocks
    }

    static func block(_ part: ContentPart, index: Int) throws -> Block? {
        switch part {
        case .text(let text):
            return text.isEmpty ? nil : Block(type: "text", text: text)
        case .image(let source, _):
            return Block(type: "image", source: Self.source(source))
        case .file(let source, _):
            return Block(type: "document", source: Self.source(source))
        case .audio:
            throw NimbusError(.invalidArgument, "messages[\(index)]: Anthropic does not accept audio input; transcribe it first")
        case .reasoning(let text, let signature, let redacted):
            if redacted { return Block(type: "redacted_thinking", data: signature ?? text) }
            // Thinking sent back without its signature is rejected; unsigned reasoning (from another provider) is dropped.
            guard let signature else { return nil }
            return Block(type: "thinking", thinking: text, signature: signature)
        }
    }

    static func source(_ source: MediaSource) -> Source {
        if let inline = source.inlineData {
            return Source(type: "base64", mediaType: inline.mediaType, data: inline.data.base64EncodedString())
        }
        return Source(type: "url", url: source.urlString)
    }

    /// The portable response of a wire response.
    public static func response(_ message: MessageResponse) -> ChatResponse {
        var parts: [ContentPart] = []
        var calls: [ToolCall] = []
        for block in message.content {
            switch block.type {
            case "text": parts.append(.text(block.text ?? ""))
            case "thinking": parts.append(.reasoning(block.thinking ?? "", signature: block.signature))
            case "redacted_thinking": parts.append(.reasoning("", signature: block.data, redacted: true))
            case "tool_use":
                calls.append(ToolCall(id: block.id ?? "toolu_\(calls.count)", name: block.name ?? "", arguments: (block.input ?? .object([:])).description))
            default: continue   // server tools' blocks (web search...) have no portable form
            }
        }
        return ChatResponse(id: message.id, model: message.model,
                            message: ChatMessage(role: .assistant, content: ContentPart.coalesced(parts), toolCalls: calls),
                            finishReason: finishReason(message.stopReason), usage: message.usage.portable)
    }

    /// Turns the Messages stream (`message_start`, `content_block_start/delta/stop`, `message_delta`,
    /// `message_stop`, `ping`, `error`) into portable events. Tool arguments are collected per block
    /// and sent whole, normalized, at the block's end, so a streamed reply equals the whole one.
    public struct StreamDecoder: Sendable {
        let provider: String
        private var usage = WireUsage()
        private var toolIndexes: [Int: Int] = [:]
        private var toolJSON: [Int: String] = [:]
        private var finish: FinishReason?
        /// Whether `message_stop` arrived.
        public private(set) var isDone = false

        /// Creates a decoder.
        public init(provider: String) { self.provider = provider }

        /// The events of one SSE event.
        /// - Throws: the provider's error for an `error` event; `dataLoss` for unreadable data.
        public mutating func decode(_ data: String, decoder: JSONDecoder) throws -> [ChatStreamEvent] {
            let event: StreamEvent
            do { event = try decoder.decode(StreamEvent.self, from: Data(data.utf8)) } catch {
                throw LLMFailure(kind: .malformedResponse, provider: provider, message: "unreadable stream event: \(error)", rawBody: data).nimbusError()
            }
            switch event.type {
            case "message_start":
                guard let message = event.message else { return [] }
                usage = message.usage
                return [.start(id: message.id, model: message.model)]
            case "content_block_start":
                guard let index = event.index, let block = event.contentBlock else { return [] }
                switch block.type {
                case "text":
                    return (block.text ?? "").isEmpty ? [] : [.textDelta(block.text ?? "")]
                case "thinking":
                    return (block.thinking ?? "").isEmpty ? [] : [.reasoningDelta(block.thinking ?? "")]
                case "redacted_thinking":
                    return []
                case "tool_use":
                    let toolIndex = toolIndexes.count
                    toolIndexes[index] = toolIndex
                    toolJSON[index] = ""
                    return [.toolCallDelta(ToolCallDelta(index: toolIndex, id: block.id, name: block.name))]
                default:
                    return []
                }
            case "content_block_delta":
                guard let index = event.index, let delta = event.delta else { return [] }
                switch delta.type {
                case "text_delta": return [.textDelta(delta.text ?? "")]
                case "thinking_delta": return [.reasoningDelta(delta.thinking ?? "")]
                case "signature_delta": return [.reasoningDelta("", signature: delta.signature)]
                case "input_json_delta":
                    toolJSON[index, default: ""] += delta.partialJson ?? ""
                    return []
                default: return []
                }
            case "content_block_stop":
                guard let index = event.index, let toolIndex = toolIndexes[index], let json = toolJSON.removeValue(forKey: index) else { return [] }
                let arguments: String
                if json.trimmingCharacters(in: .whitespaces).isEmpty { arguments = "{}" }
                else if let value = try? JSONValue.parse(Data(json.utf8)) { arguments = value.description }
                else { arguments = json }
                return [.toolCallDelta(ToolCallDelta(index: toolIndex, arguments: arguments))]
            case "message_delta":
                if let reason = event.delta?.stopReason { finish = finishReason(reason) }
                if let update = event.usage { usage = update.merged(over: usage) }
                return [.usage(usage.portable)]
            case "message_stop":
                isDone = true
                return [.finish(finish ?? .stop)]
            case "error":
                let detail = event.error ?? ErrorBody.Detail(type: "api_error", message: "stream error")
                throw AnthropicErrors.failure(status: nil, type: detail.type, message: detail.message, raw: data, provider: provider).nimbusError()
            default:
                return []   // ping and event types added later
            }
        }
    }

    // MARK: Wire → portable (the gateway)

    /// The portable request of a wire request (what the gateway's `/v1/messages` receives).
    /// - Throws: `invalidArgument` for content it cannot carry.
    public static func portable(_ wire: MessagesRequest) throws -> ChatRequest {
        var messages: [ChatMessage] = []
        if let system = wire.system {
            var message = ChatMessage.system(system.text)
            if case .array(let blocks) = system, blocks.contains(where: { $0.cacheControl != nil }) { message.cacheBreakpoint = true }
            messages.append(message)
        }
        for (index, message) in wire.messages.enumerated() {
            switch message.role {
            case "user":
                var parts: [ContentPart] = []
                for block in message.content {
                    if block.type == "tool_result" {
                        let text: String = switch block.content {
                        case .string(let text)?: text
                        case .array(let blocks)?: blocks.compactMap(\.text).joined()
                        case nil: ""
                        }
                        messages.append(ChatMessage(role: .tool, content: [.text(text)], toolCallID: block.toolUseId, isError: block.isError ?? false))
                    } else if let part = try portable(block, index: index) {
                        parts.append(part)
                    }
                }
                if !parts.isEmpty { messages.append(ChatMessage(role: .user, content: parts)) }
            case "assistant":
                var parts: [ContentPart] = []
                var calls: [ToolCall] = []
                for block in message.content {
                    if block.type == "tool_use" {
                        calls.append(ToolCall(id: block.id ?? "", name: block.name ?? "", arguments: (block.input ?? .object([:])).description))
                    } else if let part = try portable(block, index: index) {
                        parts.append(part)
                    }
                }
                messages.append(ChatMessage(role: .assistant, content: parts, toolCalls: calls))
            default:
                throw NimbusError(.invalidArgument, "messages[\(index)].role '\(message.role)' must be user or assistant")
            }
        }
        var request = ChatRequest(model: wire.model, messages: messages, maxTokens: wire.maxTokens)
        request.tools = (wire.tools ?? []).map { ToolDefinition(name: $0.name, description: $0.description, parameters: $0.inputSchema, strict: $0.strict) }
        if let choice = wire.toolChoice {
            switch choice.type {
            case "auto": request.toolChoice = .auto
            case "any": request.toolChoice = .required
            case "none": request.toolChoice = NimbusLLM.ToolChoice.none
            case "tool": request.toolChoice = .tool(choice.name ?? "")
            default: throw NimbusError(.invalidArgument, "tool_choice type '\(choice.type)' is not one of auto, any, tool, none")
            }
            if choice.disableParallelToolUse == true { request.parallelToolCalls = false }
        }
        request.temperature = wire.temperature
        request.topP = wire.topP
        request.stop = wire.stopSequences ?? []
        request.user = wire.metadata?.userId
        if let thinking = wire.thinking, thinking.type == "enabled" { request.reasoning = Reasoning(budgetTokens: thinking.budgetTokens) }
        if let format = wire.outputConfig?.format, format.type == "json_schema" {
            request.responseFormat = .jsonSchema(name: "output", schema: format.schema ?? ["type": "object"])
        }
        request.providerOptions = wire.extra
        do { try request.checkNumbers() } catch let error as NimbusError {
            throw NimbusError(.invalidArgument, error.message.replacingOccurrences(of: "maxTokens", with: "max_tokens")
                .replacingOccurrences(of: "the reasoning budget", with: "thinking.budget_tokens"))
        }
        return request
    }

    static func portable(_ block: Block, index: Int) throws -> ContentPart? {
        switch block.type {
        case "text": return .text(block.text ?? "")
        case "image", "document":
            guard let source = block.source else { throw NimbusError(.invalidArgument, "messages[\(index)]: an \(block.type) block needs a source") }
            let media: MediaSource
            if source.type == "base64", let data = source.data.flatMap({ Data(base64Encoded: $0) }) {
                media = .data(data, mediaType: source.mediaType ?? (block.type == "image" ? "image/png" : "application/pdf"))
            } else if let url = source.url {
                media = .url(url)
            } else {
                throw NimbusError(.invalidArgument, "messages[\(index)]: the \(block.type) source must be base64 data or a url")
            }
            return block.type == "image" ? .image(media) : .file(media)
        case "thinking": return .reasoning(block.thinking ?? "", signature: block.signature)
        case "redacted_thinking": return .reasoning("", signature: block.data, redacted: true)
        default: throw NimbusError(.invalidArgument, "messages[\(index)]: content block type '\(block.type)' is not supported by the gateway")
        }
    }

    /// The wire response of a portable response (what the gateway answers).
    public static func message(_ response: ChatResponse) -> MessageResponse {
        var blocks: [Block] = []
        for part in response.message.content {
            switch part {
            case .text(let text): blocks.append(Block(type: "text", text: text))
            case .reasoning(let text, let signature, let redacted):
                blocks.append(redacted ? Block(type: "redacted_thinking", data: signature ?? "") : Block(type: "thinking", thinking: text, signature: signature ?? ""))
            default: continue
            }
        }
        for call in response.toolCalls {
            blocks.append(Block(type: "tool_use", id: call.id, name: call.name, input: (try? call.parsedArguments()) ?? .object([:])))
        }
        return MessageResponse(id: response.id, content: blocks, model: response.model, stopReason: stopReason(response.finishReason),
                               usage: WireUsage(response.usage))
    }
}

extension AnthropicWire {
    /// Turns portable stream events into the Messages event sequence (what the gateway's
    /// `/v1/messages` streams): `message_start`, a `content_block_start`/`_delta`/`_stop` run per
    /// block, `message_delta` with the stop reason and output tokens, `message_stop`.
    public struct StreamEncoder: Sendable {
        private var id: String
        private var model: String
        private var open: (index: Int, kind: String, toolIndex: Int?)?
        private var nextIndex = 0
        private var usage = Usage.zero
        private var started = false

        /// Creates an encoder; `id` and `model` are replaced by a `.start` event's.
        public init(id: String, model: String) {
            self.id = id
            self.model = model
        }

        /// The events (`event` name and JSON data) for one portable event.
        public mutating func encode(_ event: ChatStreamEvent) -> [(event: String, data: JSONValue)] {
            var out: [(String, JSONValue)] = []
            switch event {
            case .start(let id, let model):
                if !id.isEmpty { self.id = id }
                if !model.isEmpty { self.model = model }
                out.append(messageStart())
            case .textDelta(let text):
                out += ensureStarted()
                out += openBlock("text", toolIndex: nil, start: ["type": "text", "text": ""])
                out.append(delta(["type": "text_delta", "text": .string(text)]))
            case .reasoningDelta(let text, let signature):
                out += ensureStarted()
                out += openBlock("thinking", toolIndex: nil, start: ["type": "thinking", "thinking": "", "signature": ""])
                if !text.isEmpty { out.append(delta(["type": "thinking_delta", "thinking": .string(text)])) }
                if let signature { out.append(delta(["type": "signature_delta", "signature": .string(signature)])) }
            case .toolCallDelta(let call):
                out += ensureStarted()
                if open?.kind != "tool_use" || open?.toolIndex != call.index {
                    out += closeBlock()
                    out += openBlock("tool_use", toolIndex: call.index,
                                     start: ["type": "tool_use", "id": .string(call.id ?? "toolu_\(call.index)"), "name": .string(call.name ?? ""), "input": [:]])
                }
                if !call.arguments.isEmpty { out.append(delta(["type": "input_json_delta", "partial_json": .string(call.arguments)])) }
            case .usage(let latest):
                usage = latest
            case .finish(let reason):
                out += ensureStarted()
                out += closeBlock()
                let wire = WireUsage(usage)
                out.append(("message_delta", ["type": "message_delta", "delta": ["stop_reason": .string(stopReason(reason)), "stop_sequence": .null],
                                               "usage": ["output_tokens": .number(Double(usage.outputTokens)), "input_tokens": .number(Double(wire.inputTokens ?? 0)),
                                                         "cache_creation_input_tokens": .number(Double(wire.cacheCreationInputTokens ?? 0)),
                                                         "cache_read_input_tokens": .number(Double(wire.cacheReadInputTokens ?? 0))]]))
                out.append(("message_stop", ["type": "message_stop"]))
            }
            return out
        }

        /// An `error` event.
        public static func error(type: String, message: String) -> (event: String, data: JSONValue) {
            ("error", ["type": "error", "error": ["type": .string(type), "message": .string(message)]])
        }

        private mutating func ensureStarted() -> [(String, JSONValue)] { started ? [] : [messageStart()] }

        private mutating func messageStart() -> (String, JSONValue) {
            started = true
            let wire = WireUsage(usage)
            return ("message_start", ["type": "message_start", "message": [
                "id": .string(id), "type": "message", "role": "assistant", "content": [], "model": .string(model),
                "stop_reason": .null, "stop_sequence": .null,
                "usage": ["input_tokens": .number(Double(wire.inputTokens ?? 0)), "output_tokens": 1,
                          "cache_creation_input_tokens": .number(Double(wire.cacheCreationInputTokens ?? 0)),
                          "cache_read_input_tokens": .number(Double(wire.cacheReadInputTokens ?? 0))],
            ]])
        }

        private mutating func openBlock(_ kind: String, toolIndex: Int?, start: JSONValue) -> [(String, JSONValue)] {
            if let open, open.kind == kind, open.toolIndex == toolIndex { return [] }
            var out = closeBlock()
            open = (nextIndex, kind, toolIndex)
            out.append(("content_block_start", ["type": "content_block_start", "index": .number(Double(nextIndex)), "content_block": start]))
            nextIndex += 1
            return out
        }

        private mutating func closeBlock() -> [(String, JSONValue)] {
            guard let current = open else { return [] }
            open = nil
            return [("content_block_stop", ["type": "content_block_stop", "index": .number(Double(current.index))])]
        }

        private func delta(_ delta: JSONValue) -> (String, JSONValue) {
            ("content_block_delta", ["type": "content_block_delta", "index": .number(Double(open?.index ?? 0)), "delta": delta])
        }
    }
}
