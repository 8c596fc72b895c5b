import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import NimbusLLM

/// The Google Gemini adapter: the Gemini API with an API key, or Vertex AI with OAuth tokens.
///
/// ```swift
/// let gemini = GeminiChatModelDriver(configuration: .init(apiKey: Secret(key)))
/// let model = ChatModel(driver: gemini, configuration: .init(defaultModel: "gemini-2.5-flash"))
///
/// let vertex = GeminiChatModelDriver(configuration: .vertex(project: "acme-prod", location: "europe-west4",
///                                                     accessToken: { try await gcpCredentials.accessToken() }))
/// ```
public final class GeminiChatModelDriver: ChatModelDriver, ModelListingDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// How calls are authorized.
        public enum Authorization: Sendable {
            /// A Gemini API key (`x-goog-api-key`).
            case apiKey(Secret<String>)
            /// An OAuth access token per call (Vertex AI; NimbusGCP's credentials provide it).
            case accessToken(@Sendable () async throws -> Secret<String>)
            /// Nothing (a proxy adds credentials).
            case none
        }

        /// The base URL before `/models/{model}:generateContent`.
        public var baseURL: String
        /// Credentials.
        public var authorization: Authorization
        /// Time limit of one call, streaming included.
        public var timeout: Duration
        /// The largest response accepted.
        public var maxResponseSize: Int
        /// Safety settings sent with every request (`[{"category": ..., "threshold": ...}]`).
        public var safetySettings: [JSONValue]
        /// The provider's name in metrics and errors.
        public var provider: String

        /// Settings for the Gemini API (generativelanguage.googleapis.com).
        public init(apiKey: Secret<String>?, baseURL: String = "https://generativelanguage.googleapis.com/v1beta", timeout: Duration = .seconds(600),
                    maxResponseSize: Int = 32 * 1024 * 1024, safetySettings: [JSONValue] = [], provider: String = "gemini") {
            self.baseURL = baseURL
            self.authorization = apiKey.map { .apiKey($0) } ?? .none
            self.timeout = timeout
            self.maxResponseSize = maxResponseSize
            self.safetySettings = safetySettings
            self.provider = provider
        }

        /// Settings for Vertex AI in a project and region (`global` uses the global endpoint).
        public static func vertex(project: String, location: String, accessToken: @escaping @Sendable () async throws -> Secret<String>,
                                  baseURL: String? = nil) -> Configuration {
            let host = location == "global" ? "https://aiplatform.googleapis.com" : "https://\(location)-aiplatform.googleapis.com"
            var configuration = Configuration(apiKey: nil, baseURL: (baseURL ?? host) + "/v1/projects/\(project)/locations/\(location)/publishers/google",
                                              provider: "vertex-ai")
            configuration.authorization = .accessToken(accessToken)
            return configuration
        }
    }

    /// The settings.
    public let configuration: Configuration
    /// The HTTP client.
    public let client: NimbusHTTPClient
    public var provider: String { configuration.provider }

    /// Creates an adapter.
    public init(configuration: Configuration, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.configuration = configuration
        let auth: AuthMiddleware? = switch configuration.authorization {
        case .apiKey(let key): .header("x-goog-api-key", key)
        case .accessToken(let token): AuthMiddleware { [("Authorization", try await token().map { "Bearer \($0)" })] }
        case .none: nil
        }
        self.client = NimbusHTTPClient(configuration: .init(
            service: configuration.provider, baseURL: configuration.baseURL, auth: auth, retry: .none,
            timeout: configuration.timeout, maxResponseSize: configuration.maxResponseSize
        ), httpClient: httpClient, logger: logger)
    }

    public func chat(_ request: ChatRequest) async throws -> ChatResponse {
        let model = request.model ?? ""
        let response = try await send(request, path: "\(modelPath(model)):generateContent", operation: "models.generateContent")
        let body = try await response.collect(upTo: configuration.maxResponseSize)
        let decoded: GeminiWire.GenerateContentResponse
        do { decoded = try JSONDecoder().decode(GeminiWire.GenerateContentResponse.self, from: Data(body.readableBytesView)) } catch {
            throw LLMFailure(kind: .malformedResponse, provider: provider, status: Int(response.status.code),
                             message: "the response could not be read: \(error)", rawBody: String(buffer: body)).nimbusError()
        }
        var accumulator = ChatResponseAccumulator()
        var decoder = GeminiStreamDecoder(provider: provider, model: model)
        for event in try decoder.decode(decoded, raw: String(buffer: body)) + decoder.finish() { accumulator.add(event) }
        return try accumulator.response()
    }

    public func stream(_ request: ChatRequest) async throws -> ChatStream {
        let model = request.model ?? ""
        let response = try await send(request, path: "\(modelPath(model)):streamGenerateContent?alt=sse", operation: "models.streamGenerateContent")
        let provider = self.provider
        if let mismatch = await response.contentTypeMismatch(expecting: "text/event-stream") {
            throw LLMFailure(kind: .malformedResponse, provider: provider, status: Int(response.status.code),
                             message: "expected text/event-stream, got '\(mismatch.found)'", rawBody: mismatch.body).nimbusError()
        }
        return ChatStream { yield in
            var decoder = GeminiStreamDecoder(provider: provider, model: model)
            let json = JSONDecoder()
            for try await event in ServerSentEventStream(response.body) where !event.data.isEmpty {
                let chunk: GeminiWire.GenerateContentResponse
                do { chunk = try json.decode(GeminiWire.GenerateContentResponse.self, from: Data(event.data.utf8)) } catch {
                    if let body = try? json.decode(GeminiWire.ErrorBody.self, from: Data(event.data.utf8)) {
                        throw GeminiErrors.failure(status: body.error.code, body: body, raw: event.data, provider: provider).nimbusError()
                    }
                    throw LLMFailure(kind: .malformedResponse, provider: provider, message: "unreadable stream chunk: \(error)", rawBody: event.data).nimbusError()
                }
                for portable in try decoder.decode(chunk, raw: event.data) { await yield(portable) }
            }
            for portable in decoder.finish() { await yield(portable) }
        }
    }

    public func listModels() async throws -> [ModelDescriptor] {
        struct ModelList: Decodable { var models: [Model]?; struct Model: Decodable { var name: String } }
        var request = NimbusHTTPRequest(.GET, "/models?pageSize=1000", operation: "models.list")
        request.timeout = .seconds(30)
        let provider = self.provider
        let list = try await client.json(request, as: ModelList.self, decoder: JSONDecoder()) { response, body in
            GeminiErrors.error(for: response, body: body, provider: provider)
        }
        return (list.models ?? []).map { ModelDescriptor(id: $0.name.hasPrefix("models/") ? String($0.name.dropFirst(7)) : $0.name, ownedBy: "google") }
    }

    /// `/models/{model}` (a full `models/...` or `tunedModels/...` name is kept).
    func modelPath(_ model: String) -> String {
        let name = model.contains("/") ? model : "models/\(model)"
        return "/" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)
    }

    private func send(_ request: ChatRequest, path: String, operation: String) async throws -> NimbusHTTPResponse {
        // Provider options add fields (generationConfig extras included) but never replace what the request built.
        let body = try JSONValue(encoding: GeminiRequestBuilder.build(request, safetySettings: configuration.safetySettings))
            .addingMissing(request.providerOptions)
        var http = NimbusHTTPRequest(.POST, path, operation: operation)
        try http.setJSON(body, encoder: JSONEncoder())
        http.safeToRetry = true
        let provider = self.provider
        return try await client.send(http) { response, body in GeminiErrors.error(for: response, body: body, provider: provider) }
    }
}

/// Portable request → `GenerateContentRequest`.
enum GeminiRequestBuilder {
    static func build(_ request: ChatRequest, safetySettings: [JSONValue]) throws -> GeminiWire.GenerateContentRequest {
        var contents: [GeminiWire.Content] = []
        var callNames: [String: String] = [:]
        func append(_ role: String, _ parts: [GeminiWire.Part]) {
            guard !parts.isEmpty else { return }
            if contents.last?.role == role { contents[contents.count - 1].parts += parts } else { contents.append(.init(role: role, parts: parts)) }
        }
        for (index, message) in request.messages.enumerated() {
            switch message.role {
            case .system:
                continue
            case .user:
                append("user", try message.content.compactMap { try part($0, index: index) })
            case .assistant:
                var parts = try message.content.compactMap { try part($0, index: index) }
                for call in message.toolCalls {
                    callNames[call.id] = call.name
                    parts.append(GeminiWire.Part(functionCall: .init(id: call.id.hasPrefix("nimbus_") ? nil : call.id, name: call.name,
                                                                     args: try call.parsedArguments())))
                }
                append("model", parts)
            case .tool:
                guard let name = message.name ?? message.toolCallID.flatMap({ callNames[$0] }) else {
                    throw NimbusError(.invalidArgument, "messages[\(index)]: Gemini needs the tool's name for a tool result; set ChatMessage.name")
                }
                let text = message.text
                let parsed = try? JSONValue.parse(Data(text.utf8))
                let response: JSONValue
                if let parsed, parsed.objectValue != nil { response = parsed } else { response = [message.isError ? "error" : "output": parsed ?? .string(text)] }
                let id = message.toolCallID.flatMap { $0.hasPrefix("nimbus_") ? nil : $0 }
                append("user", [GeminiWire.Part(functionResponse: .init(id: id, name: name, response: response))])
            }
        }
        var wire = GeminiWire.GenerateContentRequest(contents: contents)
        if let system = request.systemText { wire.systemInstruction = .init(role: nil, parts: [.init(text: system)]) }
        if !request.tools.isEmpty {
            wire.tools = [.init(functionDeclarations: request.tools.map { .init(name: $0.name, description: $0.description ?? "", parametersJsonSchema: $0.parameters) })]
        }
        wire.toolConfig = request.toolChoice.map {
            switch $0 {
            case .auto: .init(functionCallingConfig: .init(mode: "AUTO"))
            case .none: .init(functionCallingConfig: .init(mode: "NONE"))
            case .required: .init(functionCallingConfig: .init(mode: "ANY"))
            case .tool(let name): .init(functionCallingConfig: .init(mode: "ANY", allowedFunctionNames: [name]))
            }
        }
        var config = GeminiWire.GenerationConfig()
        config.stopSequences = request.stop.isEmpty ? nil : request.stop
        config.maxOutputTokens = request.maxTokens
        config.temperature = request.temperature
        config.topP = request.topP
        config.seed = request.seed
        switch request.responseFormat {
        case .jsonSchema(_, let schema, _)?: config.responseMimeType = "application/json"; config.responseJsonSchema = schema
        case .jsonObject?: config.responseMimeType = "application/json"
        case .text?, nil: break
        }
        if let budget = request.reasoning?.resolvedBudget { config.thinkingConfig = .init(includeThoughts: true, thinkingBudget: budget) }
        if !config.isEmpty { wire.generationConfig = config }
        if !safetySettings.isEmpty { wire.safetySettings = safetySettings }
        return wire
    }

    static func part(_ part: ContentPart, index: Int) throws -> GeminiWire.Part? {
        switch part {
        case .text(let text):
            return text.isEmpty ? nil : .init(text: text)
        case .image(let source, _), .file(let source, _):
            if let inline = source.inlineData { return .init(inlineData: .init(mimeType: inline.mediaType, data: inline.data.base64EncodedString())) }
            return .init(fileData: .init(mimeType: mimeType(for: source.urlString), fileUri: source.urlString))
        case .audio(let data, let format):
            return .init(inlineData: .init(mimeType: "audio/\(format)", data: data.base64EncodedString()))
        case .reasoning(let text, let signature, _):
            guard let signature else { return nil }
            return .init(text: text, thought: true, thoughtSignature: signature)
        }
    }

    static func mimeType(for url: String) -> String? {
        let lowered = url.lowercased()
        for (suffix, type) in [(".png", "image/png"), (".jpg", "image/jpeg"), (".jpeg", "image/jpeg"), (".webp", "image/webp"),
                               (".gif", "image/gif"), (".pdf", "application/pdf"), (".mp3", "audio/mp3"), (".wav", "audio/wav")] where lowered.hasSuffix(suffix) {
            return type
        }
        return nil
    }
}

/// `GenerateContentResponse` chunks → portable events. The whole response is read the same way,
/// as one chunk, so both paths agree. Function calls without an id get `nimbus_call_<index>`.
struct GeminiStreamDecoder {
    let provider: String
    let model: String
    private var started = false
    private var calls = 0
    private var usage: Usage?
    private var finishReason: String?

    init(provider: String, model: String) {
        self.provider = provider
        self.model = model
    }

    mutating func decode(_ chunk: GeminiWire.GenerateContentResponse, raw: String) throws -> [ChatStreamEvent] {
        var events: [ChatStreamEvent] = []
        if !started {
            if chunk.candidates?.isEmpty ?? true, let blocked = chunk.promptFeedback?.blockReason {
                throw LLMFailure(kind: .contentFiltered, provider: provider, status: 200, providerCode: blocked,
                                 message: "the prompt was blocked (\(blocked))", rawBody: raw).nimbusError()
            }
            started = true
            events.append(.start(id: chunk.responseId ?? "", model: chunk.modelVersion ?? model))
        }
        if let candidate = chunk.candidates?.first(where: { ($0.index ?? 0) == 0 }) {
            for part in candidate.content?.parts ?? [] {
                if let call = part.functionCall {
                    let index = calls
                    calls += 1
                    events.append(.toolCallDelta(ToolCallDelta(index: index, id: call.id ?? "nimbus_call_\(index)", name: call.name,
                                                               arguments: (call.args ?? .object([:])).description)))
                } else if let text = part.text {
                    if part.thought == true { events.append(.reasoningDelta(text, signature: part.thoughtSignature)) }
                    else if !text.isEmpty { events.append(.textDelta(text)) }
                }
            }
            if let reason = candidate.finishReason { finishReason = reason }
        }
        if let metadata = chunk.usageMetadata { usage = metadata.portable }
        return events
    }

    /// The usage and finish events, once the last chunk has been read.
    mutating func finish() -> [ChatStreamEvent] {
        guard let finish = finishReason else { return [] }
        finishReason = nil
        return (usage.map { [.usage($0)] } ?? []) + [.finish(GeminiWire.finishReason(finish, hasCalls: calls > 0))]
    }
}

/// Google's error bodies (`google.rpc.Status`) → ``LLMFailure``.
enum GeminiErrors {
    static func failure(status: Int?, body: GeminiWire.ErrorBody?, raw: String, provider: String) -> LLMFailure {
        let rpcStatus = body?.error.status
        let message = body?.error.message ?? (raw.isEmpty ? "HTTP \(status ?? 0) with an empty body" : String(raw.prefix(300)))
        let reasons = (body?.error.details ?? []).compactMap { $0["reason"]?.stringValue }
        var kind: LLMFailure.Kind
        switch rpcStatus {
        case "UNAUTHENTICATED"?: kind = .unauthenticated
        case "PERMISSION_DENIED"?: kind = .permissionDenied
        case "NOT_FOUND"?: kind = .modelNotFound
        case "RESOURCE_EXHAUSTED"?: kind = .rateLimited
        case "UNAVAILABLE"?: kind = .overloaded
        case "INTERNAL"?, "UNKNOWN"?: kind = .unavailable
        case "DEADLINE_EXCEEDED"?: kind = .timeout
        case "INVALID_ARGUMENT"?, "FAILED_PRECONDITION"?, "OUT_OF_RANGE"?:
            kind = LLMFailure.mentionsContextLength(message) ? .contextLengthExceeded : .invalidRequest
        default: kind = status.map(LLMFailure.kind(forStatus:)) ?? .unavailable
        }
        if reasons.contains("API_KEY_INVALID") || message.contains("API key not valid") { kind = .unauthenticated }
        return LLMFailure(kind: kind, provider: provider, status: status, providerType: rpcStatus, providerCode: reasons.first, message: message, rawBody: raw)
    }

    /// `RetryInfo.retryDelay` (`"2s"`, `"1.5s"`) from the details, else `Retry-After`.
    static func retryDelay(_ body: GeminiWire.ErrorBody?) -> Duration? {
        for detail in body?.error.details ?? [] where detail["@type"]?.stringValue?.hasSuffix("google.rpc.RetryInfo") == true {
            if let text = detail["retryDelay"]?.stringValue, text.hasSuffix("s"), let seconds = Double(text.dropLast()) {
                return .milliseconds(Int64(seconds * 1000))
            }
        }
        return nil
    }

    static func error(for response: NimbusHTTPResponse, body: ByteBuffer, provider: String) -> NimbusError {
        let raw = String(buffer: body)
        let decoded = try? JSONDecoder().decode(GeminiWire.ErrorBody.self, from: Data(raw.utf8))
        return failure(status: Int(response.status.code), body: decoded, raw: raw, provider: provider)
            .nimbusError(retryAfter: retryDelay(decoded) ?? response.retryAfter())
    }
}
