import AsyncHTTPClient
import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusGCP
import NimbusHTTP
import NimbusLLM

extension GeminiChatModelDriver.Configuration {
    /// Settings from an adapter URL:
    /// - `gemini://` — the Gemini API (`gemini://HOST[:PORT][/PATH]` elsewhere; path default `/v1beta`), key
    ///   `GEMINI_API_KEY`, `GOOGLE_API_KEY` or `key=env:NAME`;
    /// - `vertex://?project=P&location=L` — Vertex AI (`vertex://HOST[:PORT]` for another endpoint). Tokens come
    ///   from NimbusGCP credentials, refreshed before they expire: `credentials=PATH` (a service-account or
    ///   authorized-user JSON file), else Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, the
    ///   gcloud file, the metadata server on GCE/GKE/Cloud Run). A fixed token (`token=env:NAME` or
    ///   `GOOGLE_OAUTH_ACCESS_TOKEN`) is used as given. `project` defaults to the credentials' project.
    public init(url: OpenURL, environment: [String: String] = ProcessInfo.processInfo.environment,
                httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) throws {
        if url.scheme == "vertex" {
            try url.options.validate(known: ["project", "location", "token", "credentials", "timeout", "tls"], for: "vertex://")
            let scopes = ["https://www.googleapis.com/auth/cloud-platform"]
            let accessToken: @Sendable () async throws -> Secret<String>
            var credentialsProject: String?
            if let token = try url.secret("token", environment: environment, defaults: ["GOOGLE_OAUTH_ACCESS_TOKEN"]) {
                accessToken = { token }
            } else {
                let source: any GCPTokenSource
                if let path = url.options.string("credentials") {
                    guard let data = FileManager.default.contents(atPath: path) else {
                        throw NimbusError(.invalidArgument, "vertex://: the credentials file \(path) cannot be read")
                    }
                    (source, credentialsProject) = try ApplicationDefaultCredentials.parse(data, path: path, scopes: scopes, httpClient: httpClient)
                } else {
                    let found = try ApplicationDefaultCredentials(scopes: scopes, environment: environment, httpClient: httpClient)
                    (source, credentialsProject) = (found, found.projectID)
                }
                let cache = AccessTokenCache { try await source.fetchToken() }
                accessToken = { try await cache.current() }
            }
            guard let project = url.options.string("project") ?? credentialsProject, let location = url.options.string("location") else {
                throw NimbusError(.invalidArgument, "vertex:// needs project and location: vertex://?project=my-project&location=europe-west4")
            }
            self = .vertex(project: project, location: location, accessToken: accessToken,
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
        copy.register("gemini", "vertex") { url in
            GeminiChatModelDriver(configuration: try .init(url: url, environment: environment, httpClient: httpClient), httpClient: httpClient)
        }
        return copy
    }
}

extension URLOpenerRegistry where Resource == any EmbeddingDriver {
    /// Adds `gemini://` and `vertex://` embeddings.
    public func withGemini(environment: [String: String] = ProcessInfo.processInfo.environment,
                           httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) -> Self {
        var copy = self
        copy.register("gemini", "vertex") { url in
            GeminiEmbeddingDriver(chat: GeminiChatModelDriver(configuration: try .init(url: url, environment: environment, httpClient: httpClient), httpClient: httpClient))
        }
        return copy
    }
}
