import AsyncHTTPClient
import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusHTTP
import NimbusLLM

extension OpenAIChatModelDriver.Configuration {
    /// Settings from an adapter URL:
    /// - `openai://` — api.openai.com (`openai://HOST[:PORT][/PATH]` for a proxy of it); key `OPENAI_API_KEY`;
    ///   options `organization`, `project`;
    /// - `openai-compatible://HOST[:PORT][/PATH]` — vLLM, llama.cpp, LM Studio, a running `nimbus serve`
    ///   (path default `/v1`); no key unless `key=env:NAME`;
    /// - `azure-openai://RESOURCE.openai.azure.com?deployment=NAME&model=MODEL&apiVersion=2024-10-21` — key `AZURE_OPENAI_API_KEY`.
    ///
    /// Every scheme takes `key=env:NAME`, `timeout=30s` and `tls=false|true`; plain HTTP is used on loopback.
    public init(url: OpenURL, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let timeout = try url.options.duration("timeout")
        switch url.scheme {
        case "azure-openai":
            try url.options.validate(known: LLMURLOptions.common.union(["deployment", "model", "apiVersion"]), for: "azure-openai://")
            guard url.host != nil else { throw NimbusError(.invalidArgument, "azure-openai:// needs the resource host: azure-openai://RESOURCE.openai.azure.com?deployment=NAME") }
            var deployments: [String: String] = [:]
            if let model = url.options.string("model") { deployments[model] = url.options.string("deployment") ?? model }
            self = .azure(endpoint: try url.endpoint(default: "", defaultPath: ""),
                          apiKey: try url.secret("key", environment: environment, defaults: ["AZURE_OPENAI_API_KEY"]),
                          apiVersion: url.options.string("apiVersion") ?? "2024-10-21", deployments: deployments)
        case "openai-compatible":
            try url.options.validate(known: LLMURLOptions.common, for: "openai-compatible://")
            guard url.host != nil else { throw NimbusError(.invalidArgument, "openai-compatible:// needs the server: openai-compatible://127.0.0.1:8000/v1") }
            self = .compatible(baseURL: try url.endpoint(default: "", defaultPath: "/v1"), apiKey: try url.secret("key", environment: environment))
        default:
            try url.options.validate(known: LLMURLOptions.common.union(["organization", "project"]), for: "openai://")
            self.init(apiKey: try url.secret("key", environment: environment, defaults: ["OPENAI_API_KEY"]),
                      baseURL: try url.endpoint(default: "https://api.openai.com", defaultPath: "/v1"),
                      organization: url.options.string("organization"), project: url.options.string("project"))
        }
        if let timeout { self.timeout = timeout }
    }

    static let schemes = ["openai", "openai-compatible", "azure-openai"]
}

extension URLOpenerRegistry where Resource == any ChatModelDriver {
    /// Adds `openai://`, `openai-compatible://` and `azure-openai://` (see ``OpenAIChatModelDriver/Configuration/init(url:environment:)``).
    public func withOpenAI(environment: [String: String] = ProcessInfo.processInfo.environment,
                           httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) -> Self {
        var copy = self
        for scheme in OpenAIChatModelDriver.Configuration.schemes {
            copy.register(scheme) { url in OpenAIChatModelDriver(configuration: try .init(url: url, environment: environment), httpClient: httpClient) }
        }
        return copy
    }
}

extension URLOpenerRegistry where Resource == any EmbeddingDriver {
    /// Adds `openai://`, `openai-compatible://` and `azure-openai://` embeddings (`/v1/embeddings`).
    public func withOpenAI(environment: [String: String] = ProcessInfo.processInfo.environment,
                           httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) -> Self {
        var copy = self
        for scheme in OpenAIChatModelDriver.Configuration.schemes {
            copy.register(scheme) { url in OpenAIEmbeddingDriver(configuration: try .init(url: url, environment: environment), httpClient: httpClient) }
        }
        return copy
    }
}
