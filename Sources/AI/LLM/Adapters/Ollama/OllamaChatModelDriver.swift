import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import NimbusLLM

/// The Ollama adapter: `/api/chat` with NDJSON streaming, tools, `format` with a JSON schema,
/// thinking, `keep_alive`, and `/api/tags` for the local models.
///
/// ```swift
/// let ollama = OllamaChatModelDriver(configuration: .init(baseURL: "http://127.0.0.1:11434", keepAlive: "10m"))
/// let model = ChatModel(driver: ollama, configuration: .init(defaultModel: "llama3.2"))
/// ```
public final class OllamaChatModelDriver: ChatModelDriver, ModelListingDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The server (`http://127.0.0.1:11434`).
        public var baseURL: String
        /// How long the model stays loaded after a call (`"5m"`, `"0"` to unload, `"-1"` to keep).
        public var keepAlive: String?
        /// Context window to ask for (`options.num_ctx`).
        public var contextLength: Int?
        /// A bearer token, for Ollama behind an authenticating proxy.
        public var apiKey: Secret<String>?
        /// Time limit of one call (a cold model load can take minutes).
        public var timeout: Duration
        /// The largest response accepted.
        public var maxResponseSize: Int
        /// The provider's name in metrics and errors.
        public var provider: String
        /// Download images given by `http(s)` URL and send their bytes (Ollama takes bytes only), under this
        /// policy (public addresses only, no redirects, size and count caps; see ``UntrustedURLFetcher``).
        /// `nil` (the default): off, and image URLs are refused — a caller's URL is fetched by your server.
        public var imageDownloads: UntrustedURLFetcher.Policy?
        /// The most tokens a reply may have (`options.num_predict`); a caller's `max_tokens` or `options` cannot raise it.
        public var maxOutputTokens: Int?

        /// Creates settings.
        public init(baseURL: String = "http://127.0.0.1:11434", keepAlive: String? = nil, contextLength: Int? = nil, apiKey: Secret<String>? = nil,
                    timeout: Duration = .seconds(600), maxResponseSize: Int = 32 * 1024 * 1024, provider: String = "ollama",
                    imageDownloads: UntrustedURLFetcher.Policy? = nil, maxOutputTokens: Int? = nil) {
            self.imageDownloads = imageDownloads
            self.maxOutputTokens = maxOutputTokens
            self.baseURL = baseURL
            self.keepAlive = keepAlive
            self.contextLength = contextLength
            self.apiKey = apiKey
            self.timeout = timeout
            self.maxResponseSize = maxResponseSize
            self.provider = provider
        }
    }

    /// The settings.
    public let configuration: Configuration
    /// The HTTP client.
    public let client: NimbusHTTPClient
    /// Fetches image URLs (its own client: no credentials, no redirects), when downloads are on.
    let imageFetcher: UntrustedURLFetcher?
    public var provider: String { configuration.provider }

    /// Creates an adapter.
    public init(configuration: Configuration = .init(), httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.configuration = configuration
        self.imageFetcher = configuration.imageDownloads.map { UntrustedURLFetcher(policy: $0) }
        self.client = NimbusHTTPClient(configuration: .init(
            service: configuration.provider, baseURL: configuration.baseURL, auth: configuration.apiKey.map { .bearer($0) },
            retry: .none, timeout: configuration.timeout, maxResponseSize: configuration.maxResponseSize
        ), httpClient: httpClient, logger: logger)
    }

    public func chat(_ request: ChatRequest) async throws -> ChatResponse {
        let response = try await send(request, stream: false)
        let body = try await response.collect(upTo: configuration.maxResponseSize)
        var decoder = OllamaStreamDecoder(provider: provider)
        var accumulator = ChatResponseAccumulator()
        for event in try decoder.decode(line: String(buffer: body)) { accumulator.add(event) }
        return try accumulator.response()
    }

    public func stream(_ request: ChatRequest) async throws -> ChatStream {
        let response = try await send(request, stream: true)
        let provider = self.provider
        if let mismatch = await response.contentTypeMismatch(expecting: "application/x-ndjson") {
            throw LLMFailure(kind: .malformedResponse, provider: provider, status: Int(response.status.code),
                             message: "expected application/x-ndjson, got '\(mismatch.found)'", rawBody: mismatch.body).nimbusError()
        }
        return ChatStream { yield in
            var decoder = OllamaStreamDecoder(provider: provider)
            var splitter = NDJSONLineSplitter()
            for try await chunk in response.body {
                for line in try splitter.feed(chunk) {
                    for event in try decoder.decode(line: String(decoding: line, as: UTF8.self)) { await yield(event) }
                    if decoder.isDone { return }
                }
            }
            if let last = splitter.finish() {
                for event in try decoder.decode(line: String(decoding: last, as: UTF8.self)) { await yield(event) }
            }
        }
    }

    public func listModels() async throws -> [ModelDescriptor] {
        struct Tags: Decodable { var models: [Model]?; struct Model: Decodable { var name: String; var modified_at: String? } }
        var request = NimbusHTTPRequest(.GET, "/api/tags", operation: "tags")
        request.timeout = .seconds(30)
        let provider = self.provider
        let tags = try await client.json(request, as: Tags.self, decoder: JSONDecoder()) { response, body in
            OllamaStreamDecoder.error(status: Int(response.status.code), raw: String(buffer: body), provider: provider)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return (tags.models ?? []).map { ModelDescriptor(id: $0.name, ownedBy: "library", created: $0.modified_at.flatMap(formatter.date(from:))) }
    }

    private func send(_ request: ChatRequest, stream: Bool) async throws -> NimbusHTTPResponse {
        let body = try OllamaRequestBuilder.build(try await downloadingImages(request), stream: stream, configuration: configuration)
        var http = NimbusHTTPRequest(.POST, "/api/chat", operation: "chat")
        try http.setJSON(body, encoder: JSONEncoder())
        http.safeToRetry = true
        let provider = self.provider
        return try await client.send(http) { response, body in
            OllamaStreamDecoder.error(status: Int(response.status.code), raw: String(buffer: body), provider: provider, retryAfter: response.retryAfter())
        }
    }

    /// The request with `http(s)` image URLs replaced by their bytes, fetched without credentials under
    /// ``Configuration/imageDownloads`` (when it is off, the request builder refuses image URLs).
    private func downloadingImages(_ request: ChatRequest) async throws -> ChatRequest {
        guard let fetcher = imageFetcher else { return request }
        let budget = fetcher.budget()
        var request = request
        for (messageIndex, message) in request.messages.enumerated() {
            for (partIndex, part) in message.content.enumerated() {
                guard case .image(.url(let url), let detail) = part, url.hasPrefix("http://") || url.hasPrefix("https://") else { continue }
                let image: UntrustedURLFetcher.Fetched
                do { image = try await fetcher.fetch(url, budget: budget) } catch let error as NimbusError {
                    throw NimbusError(error.code, "messages[\(messageIndex)]: \(error.message)", underlying: error)
                }
                request.messages[messageIndex].content[partIndex] = .image(.data(Data(image.bytes.readableBytesView), mediaType: image.mediaType ?? "image/png"), detail: detail)
            }
        }
        return request
    }
}

/// Portable request → `/api/chat` body.
enum OllamaRequestBuilder {
    static func build(_ request: ChatRequest, stream: Bool, configuration: OllamaChatModelDriver.Configuration) throws -> JSONValue {
        var callNames: [String: String] = [:]
        var messages: [JSONValue] = []
        for (index, message) in request.messages.enumerated() {
            var fields: [String: JSONValue] = ["role": .string(message.role.rawValue), "content": .string(message.text)]
            var images: [JSONValue] = []
            var thinking = ""
            for part in message.content {
                switch part {
                case .text: continue
                case .image(let source, _):
                    guard let inline = source.inlineData else {
                        throw NimbusError(.invalidArgument, "messages[\(index)]: Ollama takes images as bytes, not URLs; send the image inline (base64), or turn on imageDownloads=true for this deployment to have the server fetch public URLs")
                    }
                    images.append(.string(inline.data.base64EncodedString()))
                case .reasoning(let text, _, _): thinking += text
                case .file, .audio:
                    throw NimbusError(.invalidArgument, "messages[\(index)]: Ollama's chat API takes text and images only")
                }
            }
            if !images.isEmpty { fields["images"] = .array(images) }
            if !thinking.isEmpty { fields["thinking"] = .string(thinking) }
            if !message.toolCalls.isEmpty {
                fields["tool_calls"] = .array(try message.toolCalls.map { call in
                    callNames[call.id] = call.name
                    return ["function": ["name": .string(call.name), "arguments": try call.parsedArguments()]]
                })
            }
            if message.role == .tool, let name = message.name ?? message.toolCallID.flatMap({ callNames[$0] }) {
                fields["tool_name"] = .string(name)
            }
            messages.append(.object(fields))
        }
        var body: [String: JSONValue] = ["model": .string(request.model ?? ""), "messages": .array(messages), "stream": .bool(stream)]
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map { tool in
                var function: [String: JSONValue] = ["name": .string(tool.name), "parameters": tool.parameters]
                if let description = tool.description { function["description"] = .string(description) }
                return ["type": "function", "function": .object(function)]
            })
        }
        switch request.responseFormat {
        case .jsonSchema(_, let schema, _)?: body["format"] = schema
        case .jsonObject?: body["format"] = "json"
        case .text?, nil: break
        }
        var options: [String: JSONValue] = [:]
        if let temperature = request.temperature { options["temperature"] = .number(temperature) }
        if let topP = request.topP { options["top_p"] = .number(topP) }
        if let seed = request.seed { options["seed"] = .number(Double(seed)) }
        if let maxTokens = [request.maxTokens, configuration.maxOutputTokens].compactMap({ $0 }).min() { options["num_predict"] = .number(Double(maxTokens)) }
        if !request.stop.isEmpty { options["stop"] = .array(request.stop.map(JSONValue.string)) }
        if let contextLength = configuration.contextLength { options["num_ctx"] = .number(Double(contextLength)) }
        if !options.isEmpty { body["options"] = .object(options) }
        if let reasoning = request.reasoning {
            body["think"] = reasoning.effort.map { .string($0 == .minimal ? "low" : $0.rawValue) } ?? .bool(true)
        }
        if let keepAlive = configuration.keepAlive { body["keep_alive"] = .string(keepAlive) }
        // Provider options add fields, `options` members included, but never replace one set above: the
        // operator's `num_ctx` and `num_predict` cap stay.
        return JSONValue.object(body).addingMissing(request.providerOptions)
    }
}

/// `/api/chat` lines → portable events (a whole response is one line with `done: true`).
struct OllamaStreamDecoder {
    struct Line: Decodable {
        var model: String?
        var createdAt: String?
        var message: Message?
        var done: Bool?
        var doneReason: String?
        var promptEvalCount: Int?
        var evalCount: Int?
        var error: String?
        struct Message: Decodable {
            var content: String?
            var thinking: String?
            var toolCalls: [Call]?
            enum CodingKeys: String, CodingKey { case content, thinking, toolCalls = "tool_calls" }
        }
        struct Call: Decodable { var id: String?; var function: Function; struct Function: Decodable { var name: String; var arguments: JSONValue? } }
        enum CodingKeys: String, CodingKey {
            case model, message, done, error
            case createdAt = "created_at", doneReason = "done_reason", promptEvalCount = "prompt_eval_count", evalCount = "eval_count"
        }
    }

    let provider: String
    private var started = false
    private var calls = 0
    private(set) var isDone = false

    init(provider: String) { self.provider = provider }

    mutating func decode(line: String) throws -> [ChatStreamEvent] {
        let parsed: Line
        do { parsed = try JSONDecoder().decode(Line.self, from: Data(line.utf8)) } catch {
            throw LLMFailure(kind: .malformedResponse, provider: provider, message: "unreadable response line: \(error)", rawBody: line).nimbusError()
        }
        if let message = parsed.error { throw Self.error(status: nil, raw: line, provider: provider, message: message) }
        var events: [ChatStreamEvent] = []
        if !started {
            started = true
            events.append(.start(id: "ollama-\(parsed.createdAt ?? "")", model: parsed.model ?? ""))
        }
        if let thinking = parsed.message?.thinking, !thinking.isEmpty { events.append(.reasoningDelta(thinking)) }
        if let content = parsed.message?.content, !content.isEmpty { events.append(.textDelta(content)) }
        for call in parsed.message?.toolCalls ?? [] {
            let index = calls
            calls += 1
            events.append(.toolCallDelta(ToolCallDelta(index: index, id: call.id ?? "nimbus_call_\(index)", name: call.function.name,
                                                       arguments: (call.function.arguments ?? .object([:])).description)))
        }
        if parsed.done == true {
            isDone = true
            events.append(.usage(Usage(inputTokens: parsed.promptEvalCount ?? 0, outputTokens: parsed.evalCount ?? 0)))
            let reason: FinishReason = switch parsed.doneReason {
            case "stop"?, nil: calls > 0 ? .toolCalls : .stop
            case "length"?: .length
            case let other?: .other(other)
            }
            events.append(.finish(reason))
        }
        return events
    }

    /// Ollama's `{"error": "..."}` bodies → ``LLMFailure``.
    static func error(status: Int?, raw: String, provider: String, message: String? = nil, retryAfter: Duration? = nil) -> NimbusError {
        let text = message ?? (try? JSONValue.parse(Data(raw.utf8)))?["error"]?.stringValue ?? (raw.isEmpty ? "HTTP \(status ?? 0)" : String(raw.prefix(300)))
        let lowered = text.lowercased()
        var kind = status.map(LLMFailure.kind(forStatus:)) ?? .unavailable
        if lowered.contains("not found") && (lowered.contains("model") || status == 404) { kind = .modelNotFound }
        else if LLMFailure.mentionsContextLength(text) { kind = .contextLengthExceeded }
        else if lowered.contains("server busy") || lowered.contains("maximum pending requests") { kind = .overloaded }
        return LLMFailure(kind: kind, provider: provider, status: status, message: text, rawBody: raw).nimbusError(retryAfter: retryAfter)
    }
}
