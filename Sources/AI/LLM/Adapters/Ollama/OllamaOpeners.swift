import AsyncHTTPClient
import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusHTTP
import NimbusLLM

extension OllamaChatModelDriver.Configuration {
    /// Settings from `ollama://[HOST[:PORT]]` (default `127.0.0.1:11434`; plain HTTP unless `tls=true`, as Ollama
    /// serves), with `keepAlive=5m`, `contextLength=8192`, `maxOutputTokens=2048`, `timeout`, `key=env:NAME` for a
    /// proxy that wants one, and `imageDownloads=true` (with `imageMaxBytes`, `imageMaxCount`) to fetch image URLs —
    /// off unless asked, because the server fetches what callers name (public addresses only, no redirects).
    public init(url: OpenURL, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        try url.options.validate(known: LLMURLOptions.common.union(["keepAlive", "contextLength", "maxOutputTokens", "imageDownloads",
                                                                    "imageMaxBytes", "imageMaxCount"]), for: "ollama://")
        let host = url.host.map { ($0.contains(":") ? "[\($0)]" : $0) + ":" + String(url.port ?? 11434) } ?? "127.0.0.1:11434"
        let scheme = try url.options.bool("tls") == true ? "https://" : "http://"
        self.init(baseURL: scheme + host + (url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path),
                  keepAlive: url.options.string("keepAlive"), contextLength: try url.options.int("contextLength"),
                  apiKey: try url.secret("key", environment: environment))
        if let timeout = try url.options.duration("timeout") { self.timeout = timeout }
        maxOutputTokens = try url.options.int("maxOutputTokens")
        if try url.options.bool("imageDownloads") == true {
            var policy = UntrustedURLFetcher.Policy()
            if let bytes = try url.options.int("imageMaxBytes") { policy.maxBytes = bytes }
            if let count = try url.options.int("imageMaxCount") { policy.maxFetches = count }
            imageDownloads = policy
        } else if url.options.string("imageMaxBytes") != nil || url.options.string("imageMaxCount") != nil {
            throw NimbusError(.invalidArgument, "ollama://: imageMaxBytes and imageMaxCount need imageDownloads=true")
        }
    }
}

extension URLOpenerRegistry where Resource == any ChatModelDriver {
    /// Adds `ollama://` (see ``OllamaChatModelDriver/Configuration/init(url:environment:)``).
    public func withOllama(environment: [String: String] = ProcessInfo.processInfo.environment,
                           httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) -> Self {
        var copy = self
        copy.register("ollama") { url in OllamaChatModelDriver(configuration: try .init(url: url, environment: environment), httpClient: httpClient) }
        return copy
    }
}

extension URLOpenerRegistry where Resource == any EmbeddingDriver {
    /// Adds `ollama://` embeddings (`/api/embed`).
    public func withOllama(environment: [String: String] = ProcessInfo.processInfo.environment,
                           httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) -> Self {
        var copy = self
        copy.register("ollama") { url in
            OllamaEmbeddingDriver(chat: OllamaChatModelDriver(configuration: try .init(url: url, environment: environment), httpClient: httpClient))
        }
        return copy
    }
}
