import Foundation
import NimbusCore
import NimbusLLM
import Yams

/// The gateway's settings: which model names it serves and from where, fallbacks, routing, caching,
/// keys, budgets and limits. Read from YAML (or JSON); any string value may be `env:NAME` to take it
/// from the environment, so keys never sit in the file.
///
/// ```yaml
/// models:
///   - name: smart
///     deployments:
///       - { provider: openai, model: gpt-4o, api_key: env:OPENAI_API_KEY, weight: 3, rpm: 500 }
///       - { provider: anthropic, model: claude-sonnet-4-20250514, api_key: env:ANTHROPIC_API_KEY }
///   - name: local
///     deployments:
///       - { provider: ollama, model: llama3.2, base_url: "http://127.0.0.1:11434" }
/// embeddings:
///   - { name: embed, provider: openai, model: text-embedding-3-small, api_key: env:OPENAI_API_KEY }
/// fallbacks: { smart: [local] }
/// routing: least_busy
/// master_key: env:NIMBUS_GATEWAY_MASTER_KEY
/// ```
/// With no file, the gateway serves the embedded memory model as `memory` and the offline hashing
/// embedder as `nimbus-hashing-384`, and asks for no key.
public struct GatewayConfiguration: Decodable, Sendable {
    /// One deployment of a model name.
    public struct Deployment: Decodable, Sendable {
        /// Where the model is served, as a chat-model URL (`openai://`, `openai-compatible://127.0.0.1:8000/v1`,
        /// `azure-openai://RES.openai.azure.com?deployment=D&model=M`, `anthropic://`, `gemini://`,
        /// `vertex://?project=P&location=L`, `ollama://`, `mem://?latency=50ms`), keys as `key=env:NAME`.
        /// Without it, `provider` and the fields below describe the deployment.
        public var url: String?
        /// `openai`, `azure`, `openai-compatible`, `anthropic`, `gemini`, `vertex`, `ollama`, `memory`
        /// (with `url`, its scheme when left out).
        public var provider: String
        /// The upstream model id (Azure: the model name; the deployment name goes in `deployment`).
        public var model: String
        /// The provider's base URL, when not the default.
        public var baseURL: String?
        /// The API key (write `env:NAME`); a `Secret`, so it never reaches logs or descriptions.
        public var apiKey: Secret<String>?
        /// Azure: the deployment name and API version.
        public var deployment: String?
        public var apiVersion: String?
        /// Vertex AI: project and location; the access token from `access_token` (write `env:NAME`), else Application Default Credentials.
        public var project: String?
        public var location: String?
        public var accessToken: Secret<String>?
        /// Share of traffic.
        public var weight: Double?
        /// Requests and tokens per minute this deployment may take.
        public var rpm: Int?
        public var tpm: Int?
        /// Per-call time limit in seconds.
        public var timeoutSeconds: Double?
        /// Memory model: fixed latency in milliseconds (for load tests).
        public var latencyMs: Int?
        /// Embedding deployments: vector length.
        public var dimensions: Int?
        /// Request fields the gateway does not know that this deployment forwards to its provider
        /// (`[logit_bias, top_k]`); the rest are dropped. Empty by default: a caller cannot reach
        /// provider parameters the operator did not choose.
        public var passThrough: [String]?

        enum CodingKeys: String, CodingKey {
            case url, provider, model, deployment, project, location, weight, rpm, tpm, dimensions
            case baseURL = "base_url", apiKey = "api_key", apiVersion = "api_version", accessToken = "access_token"
            case timeoutSeconds = "timeout_seconds", latencyMs = "latency_ms", passThrough = "pass_through"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            url = try container.decodeIfPresent(String.self, forKey: .url)
            provider = try GatewayConfiguration.provider(try container.decodeIfPresent(String.self, forKey: .provider), url: url,
                                                         key: CodingKeys.provider, in: container.codingPath, what: "a deployment")
            model = try container.decode(String.self, forKey: .model)
            baseURL = try container.decodeIfPresent(String.self, forKey: .baseURL)
            apiKey = try container.decodeIfPresent(Secret<String>.self, forKey: .apiKey)
            deployment = try container.decodeIfPresent(String.self, forKey: .deployment)
            apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion)
            project = try container.decodeIfPresent(String.self, forKey: .project)
            location = try container.decodeIfPresent(String.self, forKey: .location)
            accessToken = try container.decodeIfPresent(Secret<String>.self, forKey: .accessToken)
            weight = try container.decodeIfPresent(Double.self, forKey: .weight)
            rpm = try container.decodeIfPresent(Int.self, forKey: .rpm)
            tpm = try container.decodeIfPresent(Int.self, forKey: .tpm)
            timeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .timeoutSeconds)
            latencyMs = try container.decodeIfPresent(Int.self, forKey: .latencyMs)
            dimensions = try container.decodeIfPresent(Int.self, forKey: .dimensions)
            passThrough = try container.decodeIfPresent([String].self, forKey: .passThrough)
        }

        /// Creates a deployment.
        public init(provider: String, model: String, baseURL: String? = nil, apiKey: Secret<String>? = nil, weight: Double? = nil, rpm: Int? = nil,
                    tpm: Int? = nil, latencyMs: Int? = nil, dimensions: Int? = nil, passThrough: [String]? = nil) {
            self.passThrough = passThrough
            self.provider = provider
            self.model = model
            self.baseURL = baseURL
            self.apiKey = apiKey
            self.weight = weight
            self.rpm = rpm
            self.tpm = tpm
            self.latencyMs = latencyMs
            self.dimensions = dimensions
        }
    }

    /// A model name and where it is served from.
    public struct Model: Decodable, Sendable {
        /// The name clients ask for.
        public var name: String
        /// Where it is served from.
        public var deployments: [Deployment]
        /// Input/output USD per million tokens, overriding the catalogue (negotiated prices, private models).
        public var inputCostPerMillion: Decimal?
        public var outputCostPerMillion: Decimal?

        enum CodingKeys: String, CodingKey {
            case name, deployments
            case inputCostPerMillion = "input_cost_per_million", outputCostPerMillion = "output_cost_per_million"
        }

        /// Creates a model.
        public init(name: String, deployments: [Deployment]) {
            self.name = name
            self.deployments = deployments
        }
    }

    /// An embedding model name.
    public struct EmbeddingModel: Decodable, Sendable {
        public var name: String
        /// Where it is served, as an embeddings URL (`openai://`, `openai-compatible://HOST/v1`, `gemini://`,
        /// `ollama://`, `hashing://?dimensions=384`); without it, `provider` and the fields below.
        public var url: String?
        public var provider: String
        public var model: String
        public var baseURL: String?
        public var apiKey: Secret<String>?
        public var dimensions: Int?

        enum CodingKeys: String, CodingKey { case name, url, provider, model, dimensions, baseURL = "base_url", apiKey = "api_key" }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            url = try container.decodeIfPresent(String.self, forKey: .url)
            provider = try GatewayConfiguration.provider(try container.decodeIfPresent(String.self, forKey: .provider), url: url,
                                                         key: CodingKeys.provider, in: container.codingPath, what: "an embedding model")
            model = try container.decode(String.self, forKey: .model)
            baseURL = try container.decodeIfPresent(String.self, forKey: .baseURL)
            apiKey = try container.decodeIfPresent(Secret<String>.self, forKey: .apiKey)
            dimensions = try container.decodeIfPresent(Int.self, forKey: .dimensions)
        }

        /// Creates an embedding model.
        public init(name: String, provider: String, model: String, baseURL: String? = nil, apiKey: Secret<String>? = nil, dimensions: Int? = nil) {
            self.name = name
            self.provider = provider
            self.model = model
            self.baseURL = baseURL
            self.apiKey = apiKey
            self.dimensions = dimensions
        }
    }

    /// A deployment's provider: the one written, else its URL's scheme.
    static func provider(_ written: String?, url: String?, key: any CodingKey, in path: [any CodingKey], what: String) throws -> String {
        if let written { return written }
        if let url, let scheme = url.split(separator: ":").first, !scheme.isEmpty { return String(scheme) }
        throw DecodingError.keyNotFound(key, .init(codingPath: path, debugDescription: "\(what) needs url (or provider)"))
    }

    /// Chat model names.
    public var models: [Model]
    /// Embedding model names.
    public var embeddings: [EmbeddingModel]
    /// Model name → model names to try when all its deployments fail with transient errors.
    public var fallbacks: [String: [String]]
    /// Model name → larger-context model names to try when the context window is exceeded.
    public var contextWindowFallbacks: [String: [String]]
    /// `weighted`, `least_busy` or `lowest_latency`.
    public var routing: String
    /// Exact-match response cache: `mem://` or `redis://...` (`nil`: off).
    public var cacheURL: String?
    /// How long cached responses live, in seconds.
    public var cacheTTLSeconds: Int
    /// The admin key that creates virtual keys (write `env:NAME`). With no master key and no virtual
    /// keys, the gateway asks for no key at all.
    public var masterKey: Secret<String>?
    /// Where keys and the spend log live (`sqlite://PATH`; relative paths are under the state directory).
    public var databaseURL: String
    /// The largest request body accepted, in bytes.
    public var maxRequestBytes: Int
    /// Spend records kept in memory while the writer catches up; beyond this, detail rows are dropped
    /// and counted (key totals stay exact).
    public var spendLogQueueSize: Int
    /// How often each instance reloads keys and budgets from the database, in seconds: a key created,
    /// revoked or charged on one instance takes effect on the others within this time.
    public var keySyncSeconds: Double
    /// Output tokens a call is assumed to produce when it sets no `max_tokens`, for the budget
    /// reservation made when it is admitted (released when the call is accounted).
    public var reservedOutputTokens: Int
    /// Where per-key `rpm`/`tpm` limits are counted: `mem://` (this instance) or `redis://…` (shared by
    /// every replica, exact across them).
    public var rateLimitURL: String
    /// Streams one key may hold open at once (`nil`: no limit); the next gets 429.
    public var maxStreamsPerKey: Int?
    /// A bearer token `/metrics` requires (write `env:NAME`; `nil`: open, as Prometheus scrapes usually are on a private port).
    public var metricsToken: Secret<String>?
    /// An OpenID Connect issuer whose access tokens may call the admin endpoints, besides the master key.
    public var adminOIDC: AdminOIDC?

    /// Who, besides the master key holder, may administer the gateway: bearers of an access token
    /// (a JWT) from `issuer` that grants `scope` (and names `audience`, if set).
    public struct AdminOIDC: Sendable, Codable, Equatable {
        /// The issuer; its keys come from `jwks_url`, or from its discovery document.
        public var issuer: String
        /// The audience the token must name (`nil`: any).
        public var audience: String?
        /// The scope the token must grant.
        public var scope: String
        /// The JWKS URL (`nil`: discovered from the issuer).
        public var jwksURL: String?

        enum CodingKeys: String, CodingKey { case issuer, audience, scope, jwksURL = "jwks_url" }

        /// Creates the rule.
        public init(issuer: String, audience: String? = nil, scope: String = "nimbus:admin", jwksURL: String? = nil) {
            self.issuer = issuer
            self.audience = audience
            self.scope = scope
            self.jwksURL = jwksURL
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            issuer = try container.decode(String.self, forKey: .issuer)
            audience = try container.decodeIfPresent(String.self, forKey: .audience)
            scope = try container.decodeIfPresent(String.self, forKey: .scope) ?? "nimbus:admin"
            jwksURL = try container.decodeIfPresent(String.self, forKey: .jwksURL)
        }
    }

    enum CodingKeys: String, CodingKey {
        case models, embeddings, fallbacks, routing
        case contextWindowFallbacks = "context_window_fallbacks", cacheURL = "cache_url", cacheTTLSeconds = "cache_ttl_seconds"
        case masterKey = "master_key", databaseURL = "database_url", maxRequestBytes = "max_request_bytes", spendLogQueueSize = "spend_log_queue_size"
        case keySyncSeconds = "key_sync_seconds", reservedOutputTokens = "reserved_output_tokens", maxStreamsPerKey = "max_streams_per_key"
        case metricsToken = "metrics_token", rateLimitURL = "rate_limit_url", adminOIDC = "admin_oidc"
    }

    /// Creates settings.
    public init(models: [Model] = [], embeddings: [EmbeddingModel] = [], fallbacks: [String: [String]] = [:],
                contextWindowFallbacks: [String: [String]] = [:], routing: String = "weighted", cacheURL: String? = nil,
                cacheTTLSeconds: Int = 3600, masterKey: Secret<String>? = nil, databaseURL: String = "sqlite://gateway.sqlite",
                maxRequestBytes: Int = 8 * 1024 * 1024, spendLogQueueSize: Int = 10_000, keySyncSeconds: Double = 5,
                reservedOutputTokens: Int = 1024, maxStreamsPerKey: Int? = 64, metricsToken: Secret<String>? = nil,
                rateLimitURL: String = "mem://", adminOIDC: AdminOIDC? = nil) {
        self.models = models
        self.embeddings = embeddings
        self.fallbacks = fallbacks
        self.contextWindowFallbacks = contextWindowFallbacks
        self.routing = routing
        self.cacheURL = cacheURL
        self.cacheTTLSeconds = cacheTTLSeconds
        self.masterKey = masterKey
        self.databaseURL = databaseURL
        self.maxRequestBytes = maxRequestBytes
        self.spendLogQueueSize = spendLogQueueSize
        self.keySyncSeconds = keySyncSeconds
        self.reservedOutputTokens = reservedOutputTokens
        self.maxStreamsPerKey = maxStreamsPerKey
        self.metricsToken = metricsToken
        self.rateLimitURL = rateLimitURL
        self.adminOIDC = adminOIDC
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        models = try container.decodeIfPresent([Model].self, forKey: .models) ?? []
        embeddings = try container.decodeIfPresent([EmbeddingModel].self, forKey: .embeddings) ?? []
        fallbacks = try container.decodeIfPresent([String: [String]].self, forKey: .fallbacks) ?? [:]
        contextWindowFallbacks = try container.decodeIfPresent([String: [String]].self, forKey: .contextWindowFallbacks) ?? [:]
        routing = try container.decodeIfPresent(String.self, forKey: .routing) ?? "weighted"
        cacheURL = try container.decodeIfPresent(String.self, forKey: .cacheURL)
        cacheTTLSeconds = try container.decodeIfPresent(Int.self, forKey: .cacheTTLSeconds) ?? 3600
        masterKey = try container.decodeIfPresent(Secret<String>.self, forKey: .masterKey)
        databaseURL = try container.decodeIfPresent(String.self, forKey: .databaseURL) ?? "sqlite://gateway.sqlite"
        maxRequestBytes = try container.decodeIfPresent(Int.self, forKey: .maxRequestBytes) ?? 8 * 1024 * 1024
        spendLogQueueSize = try container.decodeIfPresent(Int.self, forKey: .spendLogQueueSize) ?? 10_000
        keySyncSeconds = try container.decodeIfPresent(Double.self, forKey: .keySyncSeconds) ?? 5
        reservedOutputTokens = try container.decodeIfPresent(Int.self, forKey: .reservedOutputTokens) ?? 1024
        maxStreamsPerKey = container.contains(.maxStreamsPerKey) ? try container.decodeIfPresent(Int.self, forKey: .maxStreamsPerKey) : 64
        metricsToken = try container.decodeIfPresent(Secret<String>.self, forKey: .metricsToken)
        rateLimitURL = try container.decodeIfPresent(String.self, forKey: .rateLimitURL) ?? "mem://"
        adminOIDC = try container.decodeIfPresent(AdminOIDC.self, forKey: .adminOIDC)
    }

    /// The embedded defaults: the memory model as `memory` and the hashing embedder, no keys.
    public static let embedded = GatewayConfiguration(
        models: [Model(name: "memory", deployments: [Deployment(provider: "memory", model: "memory")])],
        embeddings: [EmbeddingModel(name: "nimbus-hashing-384", provider: "hashing", model: "nimbus-hashing-384", dimensions: 384)])

    /// Reads YAML or JSON settings, with `env:NAME` values taken from `environment`.
    /// - Throws: `invalidArgument` naming the file and what is wrong; `failedPrecondition` for a missing environment variable.
    public static func load(file: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatewayConfiguration {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw NimbusError(.invalidArgument, "cannot read the gateway configuration \(file): \(error)", underlying: error)
        }
        return try parse(text, source: file, environment: environment)
    }

    /// Parses YAML or JSON settings.
    public static func parse(_ text: String, source: String = "configuration", environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatewayConfiguration {
        var configuration: GatewayConfiguration
        do { configuration = try YAMLDecoder().decode(GatewayConfiguration.self, from: text) } catch {
            throw NimbusError(.invalidArgument, "\(source) is not a valid gateway configuration: \(error)", underlying: error)
        }
        try configuration.resolveEnvironment(environment)
        try configuration.validate()
        return configuration
    }

    mutating func resolveEnvironment(_ environment: [String: String]) throws {
        func resolve(_ value: String?, _ what: String) throws -> String? {
            guard let value, value.hasPrefix("env:") else { return value }
            let name = String(value.dropFirst(4))
            guard let found = environment[name], !found.isEmpty else {
                throw NimbusError(.failedPrecondition, "\(what) refers to the environment variable \(name), which is not set")
            }
            return found
        }
        func resolve(_ value: Secret<String>?, _ what: String) throws -> Secret<String>? {
            try resolve(value?.reveal(), what).map { Secret($0) }
        }
        for (m, model) in models.enumerated() {
            for (d, deployment) in model.deployments.enumerated() {
                let place = "models[\(model.name)].deployments[\(d)]"
                models[m].deployments[d].apiKey = try resolve(deployment.apiKey, "\(place).api_key")
                models[m].deployments[d].accessToken = try resolve(deployment.accessToken, "\(place).access_token")
                models[m].deployments[d].baseURL = try resolve(deployment.baseURL, "\(place).base_url")
            }
        }
        for (e, embedding) in embeddings.enumerated() {
            embeddings[e].apiKey = try resolve(embedding.apiKey, "embeddings[\(embedding.name)].api_key")
            embeddings[e].baseURL = try resolve(embedding.baseURL, "embeddings[\(embedding.name)].base_url")
        }
        masterKey = try resolve(masterKey, "master_key")
        metricsToken = try resolve(metricsToken, "metrics_token")
        cacheURL = try resolve(cacheURL, "cache_url")
        rateLimitURL = try resolve(rateLimitURL, "rate_limit_url") ?? rateLimitURL
        databaseURL = try resolve(databaseURL, "database_url") ?? databaseURL
    }

    /// The shortest master key accepted: a guessable admin key is worse than none.
    public static let minimumMasterKeyLength = 12

    /// Whether serving on `host` is safe with these settings: a gateway reachable from other machines
    /// needs a master key (or the operator's explicit `allowUnauthenticated`).
    /// - Throws: `failedPrecondition` saying how to fix it.
    public func checkExposure(host: String, allowUnauthenticated: Bool) throws {
        guard !OpenURL.isLoopback(host), masterKey == nil, !allowUnauthenticated else { return }
        throw NimbusError(.failedPrecondition, "serving on \(host) without a master key lets anyone on the network spend your providers' money: "
                          + "set master_key in the gateway configuration (e.g. master_key: env:NIMBUS_GATEWAY_MASTER_KEY), "
                          + "listen on 127.0.0.1, or pass --allow-unauthenticated if that is really what you want")
    }

    func validate() throws {
        if let masterKey = masterKey?.reveal(), masterKey.trimmingCharacters(in: .whitespacesAndNewlines).count < Self.minimumMasterKeyLength {
            throw NimbusError(.invalidArgument, "master_key is \(masterKey.isEmpty ? "empty" : "too short"); use at least \(Self.minimumMasterKeyLength) characters "
                              + "(e.g. the output of: openssl rand -hex 24)")
        }
        let names = models.map(\.name) + embeddings.map(\.name)
        if let duplicate = Dictionary(grouping: names, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw NimbusError(.invalidArgument, "model name '\(duplicate)' is defined twice")
        }
        for model in models where model.deployments.isEmpty {
            throw NimbusError(.invalidArgument, "model '\(model.name)' has no deployments")
        }
        let known = Set(models.map(\.name))
        for (name, targets) in fallbacks.merging(contextWindowFallbacks, uniquingKeysWith: +) {
            for target in [name] + targets where !known.contains(target) {
                throw NimbusError(.invalidArgument, "fallbacks name '\(target)', which is not a configured model (\(known.sorted().joined(separator: ", ")))")
            }
        }
        guard ["weighted", "least_busy", "lowest_latency"].contains(routing) else {
            throw NimbusError(.invalidArgument, "routing '\(routing)' is not one of weighted, least_busy, lowest_latency")
        }
        guard maxRequestBytes > 0, spendLogQueueSize > 0 else {
            throw NimbusError(.invalidArgument, "max_request_bytes and spend_log_queue_size must be positive")
        }
        guard keySyncSeconds >= 0.1, keySyncSeconds <= 3600, (0...ChatRequest.maxTokensLimit).contains(reservedOutputTokens) else {
            throw NimbusError(.invalidArgument, "key_sync_seconds must be between 0.1 and 3600 and reserved_output_tokens between 0 and \(ChatRequest.maxTokensLimit)")
        }
        if let maxStreamsPerKey, maxStreamsPerKey < 1 {
            throw NimbusError(.invalidArgument, "max_streams_per_key must be at least 1 (leave it out, or null, for no limit)")
        }
        if let token = metricsToken?.reveal(), token.count < Self.minimumMasterKeyLength {
            throw NimbusError(.invalidArgument, "metrics_token is too short; use at least \(Self.minimumMasterKeyLength) characters")
        }
    }
}
