import AsyncHTTPClient
import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusHTTP
import NimbusLLM

extension GeminiChatModelDriver.Configuration {
    /// Settings from an adapter URL:
    /// - `gemini://` — the Gemini API (`gemini://HOST[:PORT][/PATH]` elsewhere; path default `/v1beta`), key
    ///   `GEMINI_API_KEY`, `GOOGLE_API_KEY` or `key=env:NAME`;
    /// - `vertex://?project=P&location=L` — Vertex AI (`vertex://HOST[:PORT]` for another endpoint), the OAuth
    ///   access token from `token=env:NAME` or `GOOGLE_OAUTH_ACCESS_TOKEN`.
    public init(url: OpenURL, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        if url.scheme == "vertex" {
            try url.options.validate(known: ["project", "location", "token", "timeout", "tls"], for: "vertex://")
            guard let project = url.options.string("project"), let location = url.options.string("location") else {
                throw NimbusError(.invalidArgument, "vertex:// needs project and location: vertex://?project=my-project&location=europe-west4")
            }
            guard let token = try url.secret("token", environment: environment, defaults: ["GOOGLE_OAUTH_ACCESS_TOKEN"]) else {
                throw NimbusError(.unauthenticated, "vertex:// needs an access token: token=env:NAME or GOOGLE_OAUTH_ACCESS_TOKEN")
            }
            self = .vertex(project: project, location: location, accessToken: { token },
                           baseURL: url.host == nil ? nil : try url.endpoint(default: "", defaultPath: ""))
        } else {
            try url.options.validate(known: LLMURLOptions.common, for: "gemini://")
            self.init(apiKey: try url.secret("key", environment: environment, defaults: ["GEMINI_API_KEY", "GOOGLE_API_KEY"]),
                      baseURL: try url.endpoint(default: "https://generativelanguage.googleapis.com", defaultPath: "/v1beta"))
        }
        if let timeout = try url.options.duration("timeout") { self.timeout = timeout }
    }
}

extension URLOpenerRegistry where Resource == any ChatModelDriver {
    /// Adds `gemini://` and `vertex://` (see ``GeminiChatModelDriver/Configuration/init(url:environment:)``).
    public func withGemini(environment: [String: String] = ProcessInfo.processInfo.environment,
                           httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) -> Self {
        var copy = self
        copy.register("gemini", "vertex") { url in GeminiChatModelDriver(configuration: try .init(url: url, environment: environment), httpClient: httpClient) }
        return copy
    }
}

extension URLOpenerRegistry where Resource == any EmbeddingDriver {
    /// Adds `gemini://` and `vertex://` embeddings.
    public func withGemini(environment: [String: String] = ProcessInfo.processInfo.environment,
                           httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) -> Self {
        var copy = self
        copy.register("gemini", "vertex") { url in
            GeminiEmbeddingDriver(chat: GeminiChatModelDriver(configuration: try .init(url: url, environment: environment), httpClient: httpClient))
        }
        return copy
    }
}
