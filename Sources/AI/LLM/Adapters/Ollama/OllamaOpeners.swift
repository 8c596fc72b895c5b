import AsyncHTTPClient
import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusHTTP
import NimbusLLM

extension OllamaChatModelDriver.Configuration {
    /// Settings from `ollama://[HOST[:PORT]]` (default `127.0.0.1:11434`; plain HTTP unless `tls=true`, as Ollama
    /// serves), with `keepAlive=5m`, `contextLength=8192`, `timeout`, and `key=env:NAME` for a proxy that wants one.
    public init(url: OpenURL, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        try url.options.validate(known: LLMURLOptions.common.union(["keepAlive", "contextLength"]), for: "ollama://")
        let host = url.host.map { ($0.contains(":") ? "[\($0)]" : $0) + ":" + String(url.port ?? 11434) } ?? "127.0.0.1:11434"
        let scheme = try url.options.bool("tls") == true ? "https://" : "http://"
        self.init(baseURL: scheme + host + (url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path),
                  keepAlive: url.options.string("keepAlive"), contextLength: try url.options.int("contextLength"),
                  apiKey: try url.secret("key", environment: environment))
        if let timeout = try url.options.duration("timeout") { self.timeout = timeout }
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
