import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import NimbusLLM

/// The Anthropic Messages API adapter.
///
/// ```swift
/// let claude = AnthropicChatModelDriver(configuration: .init(apiKey: Secret(key)))
/// let model = ChatModel(driver: claude, configuration: .init(defaultModel: "claude-sonnet-4-20250514"))
/// var request = ChatRequest(messages: [.system(longPolicy), .user("Summarize.")])
/// request.messages[0].cacheBreakpoint = true          // cache_control on the system prompt
/// request.reasoning = Reasoning(budgetTokens: 4000)  // extended thinking
/// ```
public final class AnthropicChatModelDriver: ChatModelDriver, ModelListingDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The API key (`x-api-key`).
        public var apiKey: Secret<String>?
        /// `https://api.anthropic.com`, or a proxy.
        public var baseURL: String
        /// The `anthropic-version` header.
        public var version: String
        /// `anthropic-beta` features, if any.
        public var betas: [String]
        /// `max_tokens` when a request sets none (Anthropic requires one).
        public var defaultMaxTokens: Int
        /// Time limit of one call, streaming included.
        public var timeout: Duration
        /// The largest response accepted.
        public var maxResponseSize: Int
        /// The provider's name in metrics and errors.
        public var provider: String

        /// Creates settings.
        public init(apiKey: Secret<String>?, baseURL: String = "https://api.anthropic.com", version: String = "2023-06-01", betas: [String] = [],
                    defaultMaxTokens: Int = 4096, timeout: Duration = .seconds(600),
                    maxResponseSize: Int = 32 * 1024 * 1024, provider: String = "anthropic") {
            self.apiKey = apiKey
            self.baseURL = baseURL
            self.version = version
            self.betas = betas
            self.defaultMaxTokens = defaultMaxTokens
            self.timeout = timeout
            self.maxResponseSize = maxResponseSize
            self.provider = provider
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
        var headers: HTTPHeaders = ["anthropic-version": configuration.version]
        if !configuration.betas.isEmpty { headers.add(name: "anthropic-beta", value: configuration.betas.joined(separator: ",")) }
        self.client = NimbusHTTPClient(configuration: .init(
            service: configuration.provider, baseURL: configuration.baseURL, defaultHeaders: headers,
            auth: configuration.apiKey.map { .header("x-api-key", $0) }, retry: .none,
            timeout: configuration.timeout, maxResponseSize: configuration.maxResponseSize
        ), httpClient: httpClient, logger: logger)
    }

    public func chat(_ request: ChatRequest) async throws -> ChatResponse {
        let response = try await send(request, stream: false)
        let body = try await response.collect(upTo: configuration.maxResponseSize)
        do {
            return AnthropicWire.response(try JSONDecoder().decode(AnthropicWire.MessageResponse.self, from: Data(body.readableBytesView)))
        } catch {
            throw LLMFailure(kind: .malformedResponse, provider: provider, status: Int(response.status.code),
                             message: "the message could not be read: \(error)", rawBody: String(buffer: body)).nimbusError()
        }
    }

    public func stream(_ request: ChatRequest) async throws -> ChatStream {
        let response = try await send(request, stream: true)
        let provider = self.provider
        if let mismatch = await response.contentTypeMismatch(expecting: "text/event-stream") {
            throw LLMFailure(kind: .malformedResponse, provider: provider, status: Int(response.status.code),
                             message: "expected text/event-stream, got '\(mismatch.found)'", rawBody: mismatch.body).nimbusError()
        }
        return ChatStream { yield in
            var decoder = AnthropicWire.StreamDecoder(provider: provider)
            let json = JSONDecoder()
            for try await event in ServerSentEventStream(response.body) where !event.data.isEmpty {
                for portable in try decoder.decode(event.data, decoder: json) { await yield(portable) }
                if decoder.isDone { return }
            }
        }
    }

    public func listModels() async throws -> [ModelDescriptor] {
        var request = NimbusHTTPRequest(.GET, "/v1/models?limit=1000", operation: "models.list")
        request.timeout = .seconds(30)
        let provider = self.provider
        let list = try await client.json(request, as: AnthropicWire.ModelList.self, decoder: JSONDecoder()) { response, body in
            AnthropicErrors.error(for: response, body: body, provider: provider)
        }
        let formatter = ISO8601DateFormatter()
        return list.data.map { ModelDescriptor(id: $0.id, ownedBy: "anthropic", created: $0.createdAt.flatMap(formatter.date(from:))) }
    }

    private func send(_ request: ChatRequest, stream: Bool) async throws -> NimbusHTTPResponse {
        let wire = try AnthropicWire.request(request, model: request.model ?? "", stream: stream, defaultMaxTokens: configuration.defaultMaxTokens)
        var http = NimbusHTTPRequest(.POST, "/v1/messages", operation: "messages.create")
        try http.setJSON(wire, encoder: JSONEncoder())
        if stream { http.headers.replaceOrAdd(name: "Accept", value: "text/event-stream") }
        http.safeToRetry = true
        let provider = self.provider
        return try await client.send(http) { response, body in AnthropicErrors.error(for: response, body: body, provider: provider) }
    }
}

/// Anthropic's error bodies (`{"type":"error","error":{"type","message"}}`) → ``LLMFailure``.
enum AnthropicErrors {
    static func failure(status: Int?, type: String?, message: String, raw: String, provider: String) -> LLMFailure {
        var kind: LLMFailure.Kind
        switch type {
        case "authentication_error"?: kind = .unauthenticated
        case "permission_error"?: kind = .permissionDenied
        case "billing_error"?: kind = .quotaExceeded
        case "not_found_error"?: kind = .modelNotFound
        case "rate_limit_error"?: kind = .rateLimited
        case "overloaded_error"?: kind = .overloaded
        case "timeout_error"?: kind = .timeout
        case "request_too_large"?: kind = .contextLengthExceeded
        case "api_error"?: kind = .unavailable
        case "invalid_request_error"?: kind = LLMFailure.mentionsContextLength(message) ? .contextLengthExceeded : .invalidRequest
        default: kind = status.map(LLMFailure.kind(forStatus:)) ?? .unavailable
        }
        return LLMFailure(kind: kind, provider: provider, status: status, providerType: type, message: message, rawBody: raw)
    }

    static func error(for response: NimbusHTTPResponse, body: ByteBuffer, provider: String) -> NimbusError {
        let raw = String(buffer: body)
        let decoded = try? JSONDecoder().decode(AnthropicWire.ErrorBody.self, from: Data(raw.utf8))
        let message = decoded?.error.message ?? (raw.isEmpty ? "HTTP \(response.status.code) with an empty body" : String(raw.prefix(300)))
        return failure(status: Int(response.status.code), type: decoded?.error.type, message: message, raw: raw, provider: provider)
            .nimbusError(retryAfter: response.retryAfter())
    }
}
