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

    /// The variables a deployment's own key and token are handed over in (their values come from
    /// the configuration, already resolved): the opener reads them like any `key=env:NAME`.
    static let keyVariable = "NIMBUS_DEPLOYMENT_API_KEY", tokenVariable = "NIMBUS_DEPLOYMENT_ACCESS_TOKEN"

    /// The chat-model openers the gateway wires: every LLM adapter it links.
    static func chatOpeners(environment: [String: String], httpClient: HTTPClient) -> URLOpenerRegistry<any ChatModelDriver> {
        ChatModel.openers.withOpenAI(environment: environment, httpClient: httpClient).withAnthropic(environment: environment, httpClient: httpClient)
            .withGemini(environment: environment, httpClient: httpClient).withOllama(environment: environment, httpClient: httpClient).withMemory()
    }

    /// The embeddings openers the gateway wires.
    static func embeddingOpeners(environment: [String: String], httpClient: HTTPClient) -> URLOpenerRegistry<any EmbeddingDriver> {
        Embedder.openers.withOpenAI(environment: environment, httpClient: httpClient).withGemini(environment: environment, httpClient: httpClient)
            .withOllama(environment: environment, httpClient: httpClient).withHashing()
    }

    static func driver(_ deployment: GatewayConfiguration.Deployment, model name: String, httpClient: HTTPClient) async throws -> any ChatModelDriver {
        var environment = ProcessInfo.processInfo.environment
        environment[keyVariable] = deployment.apiKey?.reveal()
        environment[tokenVariable] = deployment.accessToken?.reveal()
        do {
            return try await chatOpeners(environment: environment, httpClient: httpClient).open(try url(of: deployment, model: name))
        } catch let error as NimbusError {
            throw NimbusError(error.code, "model '\(name)': \(error.message)", underlying: error)
        }
    }

    /// A deployment as a chat-model URL: its `url`, or one written from `provider` and its fields.
    static func url(of deployment: GatewayConfiguration.Deployment, model name: String) throws -> String {
        if let url = deployment.url { return url }
        var options: [(String, String)] = []
        if deployment.apiKey != nil { options.append(("key", "env:\(keyVariable)")) }
        if let timeout = deployment.timeoutSeconds { options.append(("timeout", "\(timeout)s")) }
        let scheme: String
        var base = deployment.baseURL
        switch deployment.provider {
        case "openai": scheme = "openai"
        case "openai-compatible":
            guard base != nil else { throw missing("base_url", deployment, name) }
            scheme = "openai-compatible"
        case "azure":
            guard base != nil else { throw missing("base_url (the resource endpoint)", deployment, name) }
            scheme = "azure-openai"
            options += [("model", deployment.model), ("deployment", deployment.deployment ?? deployment.model),
                        ("apiVersion", deployment.apiVersion ?? "2024-10-21")]
        case "anthropic": scheme = "anthropic"
        case "gemini": scheme = "gemini"
        case "vertex":
            guard let project = deployment.project, let location = deployment.location else {
                throw missing("project and location", deployment, name)
            }
            scheme = "vertex"
            // Without access_token, the adapter takes tokens from Application Default Credentials.
            options = options.filter { $0.0 != "key" } + [("project", project), ("location", location)]
                + (deployment.accessToken == nil ? [] : [("token", "env:\(tokenVariable)")])
        case "ollama": scheme = "ollama"
        case "memory":
            scheme = "mem"
            base = nil
            options = [("latency", "\(deployment.latencyMs ?? 0)ms"), ("models", "")]
        default:
            throw NimbusError(.invalidArgument, "model '\(name)': provider '\(deployment.provider)' is not one of openai, azure, openai-compatible, anthropic, gemini, vertex, ollama, memory (or give a url)")
        }
        return scheme + "://" + (try authority(of: base, into: &options)) + query(options)
    }

    /// `HOST[:PORT][/PATH]` of a legacy `base_url`, with `tls` saying what its scheme said where the
    /// URL's own rule (plain HTTP on loopback only) would differ; a bare host keeps its root path.
    static func authority(of base: String?, into options: inout [(String, String)]) throws -> String {
        guard let base else { return "" }
        guard let components = URLComponents(string: base), let host = components.host, let scheme = components.scheme else {
            throw NimbusError(.invalidArgument, "base_url '\(base)' is not a URL")
        }
        let loopback = OpenURL.isLoopback(host)
        if scheme == "http", !loopback { options.append(("tls", "false")) }
        if scheme == "https", loopback { options.append(("tls", "true")) }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        return (host.contains(":") ? "[\(host)]" : host) + (components.port.map { ":\($0)" } ?? "") + path
    }

    static func query(_ options: [(String, String)]) -> String {
        guard !options.isEmpty else { return "" }
        var components = URLComponents()
        components.queryItems = options.map { URLQueryItem(name: $0.0, value: $0.1) }
        return "?" + (components.percentEncodedQuery ?? "")
    }

    static func missing(_ what: String, _ deployment: GatewayConfiguration.Deployment, _ name: String) -> NimbusError {
        NimbusError(.invalidArgument, "model '\(name)': a \(deployment.provider) deployment needs \(what)")
    }

    static func router(_ configuration: GatewayConfiguration, cache: Cache?, httpClient: HTTPClient,
                       onCall: @escaping @Sendable (ChatRouter.CallRecord) -> Void) async throws -> (ChatRouter, ModelCatalog) {
        var catalog = ModelCatalog.standard
        var deployments: [ChatRouter.Deployment] = []
        for model in configuration.models {
            for (index, deployment) in model.deployments.enumerated() {
                let driver = try await driver(deployment, model: model.name, httpClient: httpClient)
                // The deployment's model owns its retries (one quick retry: the router fails over to other
                // deployments); adapters do not retry, and the gateway's model over the router does not either.
                let chat = ChatModel(driver: driver, configuration: .init(defaultModel: deployment.model, catalog: catalog, validatesRequests: false,
                                                                          retry: GatewayProviders.deploymentRetry))
                deployments.append(ChatRouter.Deployment(alias: model.name, model: chat, upstreamModel: deployment.model,
                                                         name: "\(model.name)#\(index) \(deployment.provider)/\(deployment.model)",
                                                         weight: deployment.weight ?? 1, requestsPerMinute: deployment.rpm, tokensPerMinute: deployment.tpm,
                                                         allowedProviderOptions: Set(deployment.passThrough ?? [])))
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
            cache: cache, cacheTTL: .seconds(configuration.cacheTTLSeconds), catalog: catalog, onCall: onCall,
            cachePartition: { Gateway.currentKey ?? "master-or-open" }))   // one cache per virtual key
        return (router, catalog)
    }

    static func embedders(_ configuration: GatewayConfiguration, httpClient: HTTPClient) async throws -> [String: Embedder] {
        var result: [String: Embedder] = [:]
        for embedding in configuration.embeddings {
            var environment = ProcessInfo.processInfo.environment
            environment[keyVariable] = embedding.apiKey?.reveal()
            let driver: any EmbeddingDriver
            do {
                driver = try await embeddingOpeners(environment: environment, httpClient: httpClient).open(try url(of: embedding))
            } catch let error as NimbusError {
                throw NimbusError(error.code, "embedding '\(embedding.name)': \(error.message)", underlying: error)
            }
            result[embedding.name] = Embedder(driver: driver, configuration: .init(defaultModel: embedding.model, dimensions: nil, normalize: false))
        }
        return result
    }

    /// An embedding model as an embeddings URL: its `url`, or one written from `provider` and its fields.
    static func url(of embedding: GatewayConfiguration.EmbeddingModel) throws -> String {
        if let url = embedding.url { return url }
        var options: [(String, String)] = embedding.apiKey == nil ? [] : [("key", "env:\(keyVariable)")]
        switch embedding.provider {
        case "openai", "gemini", "ollama":
            return embedding.provider + "://" + (try authority(of: embedding.baseURL, into: &options)) + query(options)
        case "openai-compatible":
            guard embedding.baseURL != nil else { throw NimbusError(.invalidArgument, "embedding '\(embedding.name)' needs base_url") }
            return "openai-compatible://" + (try authority(of: embedding.baseURL, into: &options)) + query(options)
        case "hashing":
            return "hashing://?dimensions=\(embedding.dimensions ?? 384)"
        default:
            throw NimbusError(.invalidArgument, "embedding '\(embedding.name)': provider '\(embedding.provider)' is not one of openai, openai-compatible, gemini, ollama, hashing (or give a url)")
        }
    }
}
