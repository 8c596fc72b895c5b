import AsyncHTTPClient
import Foundation
import NimbusCache
import NimbusCore
import NimbusEmbeddings
import NimbusHTTP
import NimbusLLM
import NimbusLLMAnthropic
import NimbusLLMGemini
import NimbusLLMScripted
import NimbusLLMOllama
import NimbusLLMOpenAI

/// Builds the router's deployments and the embedders from a ``GatewayConfiguration``.
enum GatewayProviders {
    /// One quick retry per deployment; the router fails over to the others.
    static let deploymentRetry = RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(200), maxDelay: .seconds(2))

    static func driver(_ deployment: GatewayConfiguration.Deployment, model name: String, httpClient: HTTPClient) throws -> any ChatModelDriver {
        let key = deployment.apiKey.map { Secret($0) }
        let timeout = deployment.timeoutSeconds.map { Duration.milliseconds(Int64($0 * 1000)) }
        switch deployment.provider {
        case "openai":
            var configuration = OpenAIChatModelDriver.Configuration(apiKey: key, baseURL: deployment.baseURL ?? "https://api.openai.com/v1")
            if let timeout { configuration.timeout = timeout }
            return OpenAIChatModelDriver(configuration: configuration, httpClient: httpClient)
        case "openai-compatible":
            guard let baseURL = deployment.baseURL else { throw missing("base_url", deployment, name) }
            var configuration = OpenAIChatModelDriver.Configuration.compatible(baseURL: baseURL, apiKey: key)
            if let timeout { configuration.timeout = timeout }
            return OpenAIChatModelDriver(configuration: configuration, httpClient: httpClient)
        case "azure":
            guard let endpoint = deployment.baseURL else { throw missing("base_url (the resource endpoint)", deployment, name) }
            var configuration = OpenAIChatModelDriver.Configuration.azure(endpoint: endpoint, apiKey: key, apiVersion: deployment.apiVersion ?? "2024-10-21",
                                                                    deployments: [deployment.model: deployment.deployment ?? deployment.model])
            if let timeout { configuration.timeout = timeout }
            return OpenAIChatModelDriver(configuration: configuration, httpClient: httpClient)
        case "anthropic":
            var configuration = AnthropicChatModelDriver.Configuration(apiKey: key, baseURL: deployment.baseURL ?? "https://api.anthropic.com")
            if let timeout { configuration.timeout = timeout }
            return AnthropicChatModelDriver(configuration: configuration, httpClient: httpClient)
        case "gemini":
            var configuration = GeminiChatModelDriver.Configuration(apiKey: key, baseURL: deployment.baseURL ?? "https://generativelanguage.googleapis.com/v1beta")
            if let timeout { configuration.timeout = timeout }
            return GeminiChatModelDriver(configuration: configuration, httpClient: httpClient)
        case "vertex":
            guard let project = deployment.project, let location = deployment.location, let token = deployment.accessToken else {
                throw missing("project, location and access_token", deployment, name)
            }
            var configuration = GeminiChatModelDriver.Configuration.vertex(project: project, location: location, accessToken: { Secret(token) }, baseURL: deployment.baseURL)
            return GeminiChatModelDriver(configuration: configuration, httpClient: httpClient)
        case "ollama":
            var configuration = OllamaChatModelDriver.Configuration(baseURL: deployment.baseURL ?? "http://127.0.0.1:11434", apiKey: key)
            if let timeout { configuration.timeout = timeout }
            return OllamaChatModelDriver(configuration: configuration, httpClient: httpClient)
        case "memory":
            return ScriptedChatModelDriver(configuration: .init(models: [], latency: .milliseconds(Int64(deployment.latencyMs ?? 0))))
        default:
            throw NimbusError(.invalidArgument, "model '\(name)': provider '\(deployment.provider)' is not one of openai, azure, openai-compatible, anthropic, gemini, vertex, ollama, memory")
        }
    }

    static func missing(_ what: String, _ deployment: GatewayConfiguration.Deployment, _ name: String) -> NimbusError {
        NimbusError(.invalidArgument, "model '\(name)': a \(deployment.provider) deployment needs \(what)")
    }

    static func router(_ configuration: GatewayConfiguration, cache: Cache?, httpClient: HTTPClient,
                       onCall: @escaping @Sendable (ChatRouter.CallRecord) -> Void) throws -> (ChatRouter, ModelCatalog) {
        var catalog = ModelCatalog.standard
        var deployments: [ChatRouter.Deployment] = []
        for model in configuration.models {
            for (index, deployment) in model.deployments.enumerated() {
                let driver = try driver(deployment, model: model.name, httpClient: httpClient)
                // The deployment's model owns its retries (one quick retry: the router fails over to other
                // deployments); adapters do not retry, and the gateway's model over the router does not either.
                let chat = ChatModel(driver: driver, configuration: .init(defaultModel: deployment.model, catalog: catalog, validatesRequests: false,
                                                                          retry: GatewayProviders.deploymentRetry))
                deployments.append(ChatRouter.Deployment(alias: model.name, model: chat, upstreamModel: deployment.model,
                                                         name: "\(model.name)#\(index) \(deployment.provider)/\(deployment.model)",
                                                         weight: deployment.weight ?? 1, requestsPerMinute: deployment.rpm, tokensPerMinute: deployment.tpm))
                if let input = model.inputCostPerMillion, let output = model.outputCostPerMillion {
                    catalog.register(ModelInfo(id: deployment.model, provider: deployment.provider, contextWindow: catalog.model(deployment.model)?.contextWindow ?? 128_000,
                                               pricing: .init(input: input, output: output)))
                }
            }
        }
        let strategy: ChatRouter.Strategy = switch configuration.routing {
        case "least_busy": .leastBusy
        case "lowest_latency": .lowestLatency
        default: .weighted
        }
        let router = ChatRouter(deployments: deployments, configuration: .init(
            strategy: strategy, fallbacks: configuration.fallbacks, contextWindowFallbacks: configuration.contextWindowFallbacks,
            cache: cache, cacheTTL: .seconds(configuration.cacheTTLSeconds), catalog: catalog, onCall: onCall))
        return (router, catalog)
    }

    static func embedders(_ configuration: GatewayConfiguration, httpClient: HTTPClient) throws -> [String: Embedder] {
        var result: [String: Embedder] = [:]
        for embedding in configuration.embeddings {
            let key = embedding.apiKey.map { Secret($0) }
            let driver: any EmbeddingDriver
            switch embedding.provider {
            case "openai":
                driver = OpenAIEmbeddingDriver(configuration: .init(apiKey: key, baseURL: embedding.baseURL ?? "https://api.openai.com/v1"), httpClient: httpClient)
            case "openai-compatible":
                guard let baseURL = embedding.baseURL else { throw NimbusError(.invalidArgument, "embedding '\(embedding.name)' needs base_url") }
                driver = OpenAIEmbeddingDriver(configuration: .compatible(baseURL: baseURL, apiKey: key), httpClient: httpClient)
            case "gemini":
                driver = GeminiEmbeddingDriver(chat: GeminiChatModelDriver(configuration: .init(apiKey: key, baseURL: embedding.baseURL ?? "https://generativelanguage.googleapis.com/v1beta"), httpClient: httpClient))
            case "ollama":
                driver = OllamaEmbeddingDriver(chat: OllamaChatModelDriver(configuration: .init(baseURL: embedding.baseURL ?? "http://127.0.0.1:11434"), httpClient: httpClient))
            case "hashing":
                driver = HashingEmbeddingDriver(dimensions: embedding.dimensions ?? 384)
            default:
                throw NimbusError(.invalidArgument, "embedding '\(embedding.name)': provider '\(embedding.provider)' is not one of openai, openai-compatible, gemini, ollama, hashing")
            }
            result[embedding.name] = Embedder(driver: driver, configuration: .init(defaultModel: embedding.model, dimensions: nil, normalize: false))
        }
        return result
    }
}
