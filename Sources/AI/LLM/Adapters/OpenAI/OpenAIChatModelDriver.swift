import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import NimbusLLM

/// The OpenAI Chat Completions adapter — also Azure OpenAI and any OpenAI-compatible server
/// (vLLM, Groq, Together, LM Studio...).
///
/// ```swift
/// let openAI = OpenAIChatModelDriver(configuration: .init(apiKey: Secret(key)))
/// let model = ChatModel(driver: openAI, configuration: .init(defaultModel: "gpt-4o-mini"))
///
/// let azure = OpenAIChatModelDriver(configuration: .azure(endpoint: "https://contoso.openai.azure.com",
///     apiKey: Secret(azureKey), apiVersion: "2024-10-21", deployments: ["gpt-4o": "prod-gpt4o"]))
///
/// let groq = OpenAIChatModelDriver(configuration: .compatible(baseURL: "https://api.groq.com/openai/v1",
///     apiKey: Secret(groqKey), provider: "groq"))
/// ```
public final class OpenAIChatModelDriver: ChatModelDriver, ModelListingDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// Which server dialect to speak.
        public enum Flavor: Sendable, Hashable {
            /// api.openai.com: bearer key, `OpenAI-Organization`/`OpenAI-Project` headers.
            case openAI
            /// Azure OpenAI: `api-key` header, `/deployments/{deployment}/...?api-version=`.
            case azure(apiVersion: String, deployments: [String: String])
            /// Any OpenAI-compatible server: bearer key if given.
            case compatible
        }

        /// The provider's name in metrics and errors.
        public var provider: String
        /// The API key (sent as `Authorization: Bearer`, or `api-key` for Azure).
        public var apiKey: Secret<String>?
        /// The base URL up to and including `/v1` (Azure: the resource endpoint + `/openai`).
        public var baseURL: String
        /// The dialect.
        public var flavor: Flavor
        /// `OpenAI-Organization`.
        public var organization: String?
        /// `OpenAI-Project`.
        public var project: String?
        /// How requests are written.
        public var encoding: OpenAIWire.EncodingOptions
        /// Time limit of one call, streaming included (OpenAI's SDKs use 10 minutes).
        public var timeout: Duration
        /// The largest response accepted.
        public var maxResponseSize: Int
        /// Extra headers on every request.
        public var headers: [(String, String)]

        /// Settings for api.openai.com (or a proxy of it).
        public init(apiKey: Secret<String>?, baseURL: String = "https://api.openai.com/v1", organization: String? = nil, project: String? = nil,
                    provider: String = "openai", flavor: Flavor = .openAI, encoding: OpenAIWire.EncodingOptions = .init(),
                    timeout: Duration = .seconds(600),
                    maxResponseSize: Int = 32 * 1024 * 1024, headers: [(String, String)] = []) {
            self.provider = provider
            self.apiKey = apiKey
            self.baseURL = baseURL
            self.flavor = flavor
            self.organization = organization
            self.project = project
            self.encoding = encoding
            self.timeout = timeout
            self.maxResponseSize = maxResponseSize
            self.headers = headers
        }

        /// Settings for Azure OpenAI: `endpoint` is `https://{resource}.openai.azure.com`; `deployments`
        /// maps model names to deployment names (a model with no entry is used as the deployment name).
        public static func azure(endpoint: String, apiKey: Secret<String>?, apiVersion: String = "2024-10-21",
                                 deployments: [String: String] = [:]) -> Configuration {
            let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            return Configuration(apiKey: apiKey, baseURL: base.hasSuffix("/openai") ? base : base + "/openai", provider: "azure",
                                 flavor: .azure(apiVersion: apiVersion, deployments: deployments))
        }

        /// Settings for an OpenAI-compatible server; its older versions read `max_tokens`.
        public static func compatible(baseURL: String, apiKey: Secret<String>? = nil, provider: String = "openai-compatible") -> Configuration {
            Configuration(apiKey: apiKey, baseURL: baseURL, provider: provider, flavor: .compatible,
                          encoding: .init(maxTokensField: .maxTokens))
        }
    }

    /// The settings.
    public let configuration: Configuration
    /// The HTTP client (for escape-hatch calls to other endpoints).
    public let client: NimbusHTTPClient
    public var provider: String { configuration.provider }

    /// Creates an adapter; `httpClient` defaults to the shared transport.
    public init(configuration: Configuration, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.configuration = configuration
        var headers = HTTPHeaders(configuration.headers)
        if let organization = configuration.organization { headers.add(name: "OpenAI-Organization", value: organization) }
        if let project = configuration.project { headers.add(name: "OpenAI-Project", value: project) }
        let auth: AuthMiddleware? = configuration.apiKey.map { key in
            if case .azure = configuration.flavor { return .header("api-key", key) }
            return .bearer(key)
        }
        self.client = NimbusHTTPClient(configuration: .init(
            service: configuration.provider, baseURL: configuration.baseURL, defaultHeaders: headers, auth: auth,
            retry: .none, timeout: configuration.timeout, maxResponseSize: configuration.maxResponseSize
        ), httpClient: httpClient, logger: logger)
    }

    public func chat(_ request: ChatRequest) async throws -> ChatResponse {
        let model = request.model ?? ""
        let response = try await send(request, model: model, stream: false)
        let body = try await response.collect(upTo: configuration.maxResponseSize)
        let completion: OpenAIWire.ChatCompletion
        do { completion = try JSONDecoder().decode(OpenAIWire.ChatCompletion.self, from: Data(body.readableBytesView)) } catch {
            throw LLMFailure(kind: .malformedResponse, provider: provider, status: Int(response.status.code),
                             message: "the chat completion could not be read: \(error)", rawBody: String(buffer: body)).nimbusError()
        }
        return try OpenAIWire.response(completion, provider: provider)
    }

    public func stream(_ request: ChatRequest) async throws -> ChatStream {
        let model = request.model ?? ""
        let response = try await send(request, model: model, stream: true)
        let provider = self.provider
        if let mismatch = await response.contentTypeMismatch(expecting: "text/event-stream") {
            throw LLMFailure(kind: .malformedResponse, provider: provider, status: Int(response.status.code),
                             message: "expected text/event-stream, got '\(mismatch.found)'", rawBody: mismatch.body).nimbusError()
        }
        return ChatStream { yield in
            var decoder = OpenAIWire.StreamDecoder(provider: provider)
            let json = JSONDecoder()
            for try await event in ServerSentEventStream(response.body) {
                if event.data.isEmpty { continue }
                for portable in try decoder.decode(event.data, decoder: json) { await yield(portable) }
                if decoder.isDone { return }
            }
            for portable in decoder.finish() { await yield(portable) }
        }
    }

    public func listModels() async throws -> [ModelDescriptor] {
        var request = NimbusHTTPRequest(.GET, path("models", model: nil), operation: "models.list")
        request.timeout = .seconds(30)
        let provider = self.provider
        let list = try await client.json(request, as: OpenAIWire.ModelList.self, decoder: JSONDecoder()) { response, body in
            OpenAIErrors.error(for: response, body: body, provider: provider)
        }
        return list.data.map { ModelDescriptor(id: $0.id, ownedBy: $0.ownedBy, created: $0.created > 0 ? Date(timeIntervalSince1970: TimeInterval($0.created)) : nil) }
    }

    /// The URL of an operation (`chat/completions`, `embeddings`, `models`) for a model, per flavor.
    public func path(_ operation: String, model: String?) -> String {
        switch configuration.flavor {
        case .openAI, .compatible:
            return "/" + operation
        case .azure(let apiVersion, let deployments):
            guard let model else { return "/\(operation)?api-version=\(apiVersion)" }
            let deployment = deployments[model] ?? model
            let escaped = deployment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? deployment
            return "/deployments/\(escaped)/\(operation)?api-version=\(apiVersion)"
        }
    }

    private func send(_ request: ChatRequest, model: String, stream: Bool) async throws -> NimbusHTTPResponse {
        let wire = OpenAIWire.request(request, model: model, stream: stream, options: configuration.encoding)
        var http = NimbusHTTPRequest(.POST, path("chat/completions", model: model), operation: "chat.completions.create")
        try http.setJSON(wire, encoder: JSONEncoder())
        if stream { http.headers.replaceOrAdd(name: "Accept", value: "text/event-stream") }
        http.safeToRetry = true
        let provider = self.provider
        return try await client.send(http) { response, body in OpenAIErrors.error(for: response, body: body, provider: provider) }
    }
}
