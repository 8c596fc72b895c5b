import AsyncHTTPClient
import Foundation
import NimbusCore
import NimbusHTTP
import NimbusLLM

extension URLOpenerRegistry where Resource == any ChatModelDriver {
    /// Adds `anthropic://` (api.anthropic.com; `anthropic://HOST[:PORT]` for a proxy or a local server), key
    /// `ANTHROPIC_API_KEY` or `key=env:NAME`; options `version` (the `anthropic-version` header), `timeout`, `tls`.
    public func withAnthropic(environment: [String: String] = ProcessInfo.processInfo.environment,
                              httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) -> Self {
        var copy = self
        copy.register("anthropic") { url in
            try url.options.validate(known: LLMURLOptions.common.union(["version"]), for: "anthropic://")
            var configuration = AnthropicChatModelDriver.Configuration(
                apiKey: try url.secret("key", environment: environment, defaults: ["ANTHROPIC_API_KEY"]),
                baseURL: try url.endpoint(default: "https://api.anthropic.com", defaultPath: ""))
            if let version = url.options.string("version") { configuration.version = version }
            if let timeout = try url.options.duration("timeout") { configuration.timeout = timeout }
            return AnthropicChatModelDriver(configuration: configuration, httpClient: httpClient)
        }
        return copy
    }
}
