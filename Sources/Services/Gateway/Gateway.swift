import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import NimbusAuth
import NimbusCache
import NimbusCacheMemory
import NimbusCacheRedis
import NimbusCore
import NimbusEmbeddings
import NimbusHTTP
import NimbusLLM
import NimbusLLMAnthropic
import NimbusLLMOpenAI
import NimbusRateLimit
import NimbusRateLimitMemory
import NimbusRateLimitRedis
import NimbusServer
import ServiceLifecycle
import Synchronization

/// The llm-gateway: an OpenAI-compatible (`/v1/chat/completions`, `/v1/embeddings`, `/v1/models`)
/// and Anthropic-compatible (`/v1/messages`) HTTP API in front of the ``NimbusLLM/ChatRouter``,
/// with virtual keys (model allow-lists, rpm/tpm limits, USD budgets), a spend log in SQLite written
/// off the request path, Prometheus metrics and an `x-nimbus-overhead-ms` header.
///
/// ```swift
/// let gateway = try await Gateway(configuration: .embedded, stateDirectory: ".nimbus")
/// let app = try NimbusServer.application(configuration: .init(port: 8080), metrics: registry, modules: [gateway])
/// ```
public final class Gateway: NimbusServerModule {
    public let name = "llm-gateway"
    /// The settings.
    public let configuration: GatewayConfiguration
    /// The router behind the chat endpoints.
    public let router: ChatRouter
    /// Keys and the spend log.
    public let store: GatewayStore
    let chat: ChatModel
    let embedders: [String: Embedder]
    /// The model names metrics may carry (configured chat and embedding models); any other is "unknown".
    let metricModels: Set<String>
    /// Per-key requests- and tokens-per-minute limits (`rate_limit_url`: in memory, or Redis shared by replicas).
    let limits: RateLimiter
    let streams = StreamLimiter()
    let logger: Logger
    let writer: SpendLogWriter
    let metricsFactory: any MetricsFactory
    private let postgresRunner: Task<Void, Never>?
    /// Verifies admin access tokens (``GatewayConfiguration/adminOIDC``).
    let adminTokens: AdminTokens?

    /// The key of the request being served, for spend records written by the router.
    @TaskLocal static var currentKey: String?
    @TaskLocal static var currentRoute = ""

    /// The gateway's own upstream transport: up to 1024 HTTP/1 connections per provider host, so
    /// upstream calls never queue behind a small pool under load.
    public static let transport: HTTPClient = NimbusHTTPClient.makeTransport(connectTimeout: .seconds(10), connectionsPerHost: 1024)

    /// Builds the gateway; creates its SQLite database under `stateDirectory` unless the configuration names another path.
    /// - Throws: `invalidArgument` for a bad configuration; `unavailable` when the database or cache cannot be opened.
    public init(configuration: GatewayConfiguration, stateDirectory: String, httpClient: HTTPClient = Gateway.transport,
                metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger = Logger(label: "nimbus.gateway")) async throws {
        self.configuration = configuration
        self.logger = logger
        self.metricsFactory = metricsFactory
        let database: any GatewayDatabase
        var runner: Task<Void, Never>?
        if configuration.databaseURL.hasPrefix("sqlite://") {
            var path = String(configuration.databaseURL.dropFirst("sqlite://".count))
            if !path.hasPrefix("/") { path = stateDirectory + "/" + path }
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            database = try SQLiteGatewayDatabase(path: path)
        } else if configuration.databaseURL.hasPrefix("postgres://") || configuration.databaseURL.hasPrefix("postgresql://") {
            let postgres = try PostgresGatewayDatabase(url: configuration.databaseURL)
            // The pool must run before the store migrates; it runs as a gateway service from then on.
            runner = Task { await postgres.client.run() }
            database = postgres
        } else {
            throw NimbusError(.invalidArgument, "database_url '\(Redaction.url(configuration.databaseURL))' is not supported; use sqlite://PATH or postgres://...")
        }
        self.postgresRunner = runner
        let store: GatewayStore
        do { store = try await GatewayStore(database: database, queueCapacity: configuration.spendLogQueueSize) } catch {
            runner?.cancel()
            throw error
        }
        self.store = store
        self.limits = try await RateLimiter.open(configuration.rateLimitURL, openers: URLOpenerRegistry.rateLimit.withMemory().withRedis(),
                                                 configuration: .init(keyPrefix: "nimbus-gateway:ratelimit:", onBackendFailure: .allow),
                                                 logger: logger)
        var cache: Cache?
        if let url = configuration.cacheURL {
            cache = try await Cache.open(url, openers: URLOpenerRegistry.cache.withMemory().withRedis())
        }
        let (router, catalog) = try await GatewayProviders.router(configuration, cache: cache, httpClient: httpClient) { record in
            Gateway.recordCall(record, store: store, metricsFactory: metricsFactory)
        }
        self.router = router
        let metricModels = Set(configuration.models.map(\.name) + configuration.embeddings.map(\.name))
        self.metricModels = metricModels
        self.chat = ChatModel(driver: router, configuration: .init(defaultModel: configuration.models.first?.name ?? "memory", catalog: catalog,
                                                                   metricsFactory: metricsFactory, retry: .none,   // each deployment retries; the router fails over
                                                                   metricModels: metricModels))
        self.embedders = try await GatewayProviders.embedders(configuration, httpClient: httpClient)
        self.writer = SpendLogWriter(store: store, keySync: .milliseconds(Int(configuration.keySyncSeconds * 1000)))
        self.adminTokens = configuration.adminOIDC.map { AdminTokens($0, httpClient: httpClient, logger: logger) }
    }

    public var services: [any Service] {
        [writer] + (postgresRunner.map { [TaskStopper(task: $0)] } ?? [])
    }

    public func isReady() async -> Bool { !router.deployments.isEmpty || !embedders.isEmpty }

    static func recordCall(_ record: ChatRouter.CallRecord, store: GatewayStore, metricsFactory: any MetricsFactory) {
        let usage = record.usage ?? .zero
        store.record(SpendRecord(at: Date(), keyID: currentKey, route: currentRoute, model: record.alias, deployment: record.deployment,
                                 provider: record.provider, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens,
                                 cachedTokens: usage.cachedInputTokens, reasoningTokens: usage.reasoningTokens, cost: record.cost ?? 0,
                                 latencyMilliseconds: record.latency.nimbusSeconds * 1000, outcome: record.outcome, cached: record.cached))
        let dimensions = [("model", record.alias), ("provider", record.provider)]
        if usage.inputTokens > 0 { Counter(label: "nimbus_gateway_tokens_total", dimensions: dimensions + [("kind", "input")], factory: metricsFactory).increment(by: usage.inputTokens) }
        if usage.outputTokens > 0 { Counter(label: "nimbus_gateway_tokens_total", dimensions: dimensions + [("kind", "output")], factory: metricsFactory).increment(by: usage.outputTokens) }
        if let cost = record.cost, cost > 0 {
            FloatingPointCounter(label: "nimbus_gateway_cost_usd_total", dimensions: dimensions, factory: metricsFactory).increment(by: NSDecimalNumber(decimal: cost).doubleValue)
        }
    }

    // MARK: Routes

    public func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("/v1/chat/completions") { request, _ in await self.chatCompletions(request) }
        router.post("/chat/completions") { request, _ in await self.chatCompletions(request) }
        router.post("/v1/embeddings") { request, _ in await self.embeddings(request) }
        router.get("/v1/models") { request, _ in self.models(request) }
        router.post("/v1/messages") { request, _ in await self.messages(request) }
        router.post("/v1/messages/count_tokens") { request, _ in await self.countTokens(request) }
        router.post("/v1/responses") { request, _ in await self.responses(request) }
        router.get("/v1/responses/:id") { request, context in await self.storedResponse(request, id: context.parameters.get("id") ?? "", delete: false) }
        router.delete("/v1/responses/:id") { request, context in await self.storedResponse(request, id: context.parameters.get("id") ?? "", delete: true) }
        let openAPI = ByteBuffer(string: GatewayOpenAPI.document(chatModels: self.router.aliases, embeddingModels: embedders.keys.sorted()).description)
        router.get("/openapi.json") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: openAPI)) }
        router.post("/key/generate") { request, _ in await self.generateKey(request) }
        router.get("/key/info") { request, _ in self.keyInfo(request) }
        router.post("/key/delete") { request, _ in await self.deleteKey(request) }
        router.get("/v1/gateway/spend") { request, _ in await self.spend(request) }
    }

    /// Who is calling.
    enum Caller {
        case anonymous
        case master
        case key(VirtualKey)

        var keyID: String? { if case .key(let key) = self { key.id } else { nil } }
        func allows(_ model: String) -> Bool { if case .key(let key) = self { key.allows(model) } else { true } }
    }

    func authenticate(_ request: Request) -> Result<Caller, GatewayError> {
        let header = request.headers[.authorization].map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : $0 }
        let secret = header ?? request.headers[.xAPIKey] ?? request.headers[.azureAPIKey]
        if let master = configuration.masterKey, let secret, master.matches(secret) {
            return .success(.master)
        }
        if let secret, let key = store.key(secret: secret) { return .success(.key(key)) }
        if configuration.masterKey == nil && !store.hasKeys { return .success(.anonymous) }
        return .failure(GatewayError(status: .unauthorized, type: "invalid_request_error", code: "invalid_api_key",
                                     message: secret == nil ? "no API key: send Authorization: Bearer <key>" : "invalid API key"))
    }

    /// Token counts added without ever trapping: negatives count as nothing, overflow saturates.
    static func sum(_ values: Int...) -> Int { sum(values) }

    /// ``sum(_:)-(Int...)`` of an array.
    static func sum(_ values: [Int]) -> Int {
        values.reduce(0) { total, value in
            let (result, overflow) = total.addingReportingOverflow(max(0, value))
            return overflow ? Int.max : result
        }
    }

    /// What an admitted call holds until it has been accounted: its budget reservation and, for a
    /// stream, its slot. Released when the call's spend is recorded (or when dropped, on any other path).
    struct Admission: Sendable {
        var leases: [Lease] = []
        func release() { for lease in leases { lease.release() } }
    }

    /// Admission for a model call: model allowed, budget left once calls under way are counted
    /// (their estimated cost is reserved), a stream slot free, within rate limits.
    func admit(_ caller: Caller, model: String, estimatedTokens: Int, estimatedCost: Decimal?, stream: Bool = false) async -> Result<Admission, GatewayError> {
        guard caller.allows(model) else {
            return .failure(GatewayError(status: .forbidden, type: "permission_error", code: "model_not_allowed", message: "this key may not use model '\(model)'"))
        }
        guard case .key(let key) = caller else { return .success(Admission()) }
        var admission = Admission()
        switch store.reserve(keyID: key.id, cost: estimatedCost ?? 0) {
        case .admitted(let lease): admission.leases.append(lease)
        case .overBudget(let spent, let reserved, let budget):
            let held = reserved > 0 ? " (with $\(reserved) reserved by its calls under way)" : ""
            return .failure(GatewayError(status: .badRequest, type: "budget_exceeded", code: "budget_exceeded",
                                         message: "this key has spent $\(spent)\(held) of its $\(budget) budget"))
        }
        if stream, let limit = configuration.maxStreamsPerKey {
            guard let slot = streams.acquire(key.id, limit: limit) else {
                admission.release()
                return .failure(GatewayError(status: .tooManyRequests, type: "rate_limit_error", code: "too_many_streams",
                                             message: "this key has \(limit) streams open, its limit; finish or close one and retry", retryAfter: .seconds(1)))
            }
            admission.leases.append(slot)
        }
        if let wait = await rateLimitWait(key: key, tokens: estimatedTokens) {
            admission.release()
            return .failure(GatewayError(status: .tooManyRequests, type: "rate_limit_error", code: "rate_limit_exceeded",
                                         message: "this key's rate limit is reached; retry in \(Int(wait.nimbusSeconds.rounded(.up))) s", retryAfter: wait))
        }
        return .success(admission)
    }

    /// Charges one request and `tokens` against the key's `rpm` (a sliding window) and `tpm` (a token
    /// bucket refilled over a minute) together; `nil` if admitted, else how long to wait. A call larger
    /// than the whole `tpm` is charged the whole bucket, so it passes only when the bucket is full.
    /// The limiter fails open: with its Redis down, calls are admitted and a warning is logged.
    func rateLimitWait(key: VirtualKey, tokens: Int) async -> Duration? {
        var charges: [RateLimitRequest] = []
        if let rpm = key.rpm, rpm > 0 {
            charges.append(RateLimitRequest(key: key.id, policy: .slidingWindow("rpm", limit: min(rpm, 1_000_000_000), per: .seconds(60))))
        }
        if let tpm = key.tpm, tpm > 0 {
            let capacity = min(tpm, 1_000_000_000)
            charges.append(RateLimitRequest(key: key.id, policy: .tokenBucket("tpm", capacity: capacity, refill: capacity, per: .seconds(60)),
                                            cost: min(max(0, tokens), capacity)))
        }
        guard !charges.isEmpty else { return nil }
        do {
            let decision = try await limits.acquire(charges)
            return decision.allowed ? nil : (decision.retryAfter ?? .seconds(1))
        } catch {
            logger.error("rate limit check failed; admitting", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The estimate a chat call is admitted and reserved on: the prompt, plus `max_tokens` or the configured default output.
    func chatEstimate(_ request: ChatRequest, model: String) -> (tokens: Int, cost: Decimal?) {
        let input = TokenEstimator.forModel(model).count(request)
        let output = request.maxTokens ?? configuration.reservedOutputTokens
        return (Self.sum(input, request.maxTokens ?? 0), router.highestCost(of: Usage(inputTokens: input, outputTokens: output), alias: model))
    }

    /// Authenticates the caller, reads the body within the size limit and decodes it.
    func accept<T>(_ request: Request, decode: (Data) throws -> T) async -> Result<(Caller, T), GatewayError> {
        let caller: Caller
        switch authenticate(request) { case .success(let value): caller = value; case .failure(let error): return .failure(error) }
        let body: ByteBuffer
        switch await readBody(request) { case .success(let value): body = value; case .failure(let error): return .failure(error) }
        do { return .success((caller, try decode(Data(body.readableBytesView)))) } catch {
            return .failure(GatewayError(status: .badRequest, type: "invalid_request_error", code: nil, message: "invalid request body: \(Self.describe(error))"))
        }
    }

    func readBody(_ request: Request) async -> Result<ByteBuffer, GatewayError> {
        do { return .success(try await request.body.collect(upTo: configuration.maxRequestBytes)) } catch {
            return .failure(GatewayError(status: .contentTooLarge, type: "invalid_request_error", code: "request_too_large",
                                         message: "the request body is over the \(configuration.maxRequestBytes)-byte limit"))
        }
    }

    // MARK: OpenAI: chat completions

    func chatCompletions(_ request: Request) async -> Response {
        let started = ContinuousClock.now
        let caller: Caller, wire: OpenAIWire.ChatCompletionRequest, portable: ChatRequest
        switch await accept(request, decode: { data in
            let wire = try JSONDecoder().decode(OpenAIWire.ChatCompletionRequest.self, from: data)
            return (wire, try OpenAIWire.portable(wire))
        }) {
        case .success(let accepted): (caller, (wire, portable)) = accepted
        case .failure(let error): return error.openAI()
        }
        let model = wire.model
        let choices = wire.n ?? 1
        guard (1...Self.maxChoices).contains(choices), choices == 1 || wire.stream != true else {
            let message = choices == 1 || !(1...Self.maxChoices).contains(choices)
                ? "n must be between 1 and \(Self.maxChoices), not \(choices)"
                : "n > 1 is not supported with stream: true here; stream one choice per request, or leave stream out"
            return count(GatewayError(status: .badRequest, type: "invalid_request_error", code: "invalid_value", message: message, param: "n").openAI(),
                         route: "chat", model: model, started: started)
        }
        var estimate = chatEstimate(portable, model: model)
        estimate = (Self.sum(Array(repeating: estimate.tokens, count: choices)), estimate.cost.map { $0 * Decimal(choices) })
        let admission: Admission
        switch await admit(caller, model: model, estimatedTokens: estimate.tokens, estimatedCost: estimate.cost, stream: wire.stream == true) {
        case .success(let admitted): admission = admitted
        case .failure(let refusal): return count(refusal.openAI(), route: "chat", model: model, started: started)
        }
        return await Gateway.$currentKey.withValue(caller.keyID) {
            await Gateway.$currentRoute.withValue("chat.completions") {
                let upstreamStart = ContinuousClock.now
                if wire.stream == true {
                    do {
                        let stream = try await chat.stream(portable)
                        let overhead = (ContinuousClock.now - started) - (ContinuousClock.now - upstreamStart)
                        return count(streamOpenAI(stream, model: model, includeUsage: wire.streamOptions?.includeUsage == true, overhead: overhead,
                                                  keyID: caller.keyID, admission: admission),
                                     route: "chat", model: model, started: started)
                    } catch {
                        admission.release()
                        return count(GatewayError(error).openAI(), route: "chat", model: model, started: started)
                    }
                }
                defer { admission.release() }
                do {
                    // n > 1: one call per choice, side by side (each accounted as its own call); n = 1 needs no child task.
                    let responses = choices == 1 ? [try await chat.chat(portable)] : try await withThrowingTaskGroup(of: (Int, ChatResponse).self) { group in
                        for index in 0..<choices { group.addTask { (index, try await self.chat.chat(portable)) } }
                        return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }.sorted { $0.key < $1.key }.map(\.value)
                    }
                    let upstream = ContinuousClock.now - upstreamStart
                    let completion = OpenAIWire.completion(responses, created: Int(Date().timeIntervalSince1970))
                    let data = try JSONEncoder().encode(completion)
                    let overhead = (ContinuousClock.now - started) - upstream
                    return count(Self.json(data, overhead: overhead), route: "chat", model: model, started: started, overhead: overhead)
                } catch {
                    return count(GatewayError(error).openAI(), route: "chat", model: model, started: started)
                }
            }
        }
    }

    func streamOpenAI(_ stream: ChatStream, model: String, includeUsage: Bool, overhead: Duration, keyID: String?, admission: Admission) -> Response {
        let created = Int(Date().timeIntervalSince1970)
        return Self.streamed(keyID: keyID, route: "chat.completions", admission: admission, overhead: overhead) { writer in
            var encoder = OpenAIWire.StreamEncoder(id: "chatcmpl-\(IDGenerator.shared.ulid())", model: model, created: created)
            let json = JSONEncoder()
            var usage: Usage?
            do {
                for try await event in stream {
                    if case .usage(let latest) = event { usage = latest }
                    if let bytes = try encoder.sse(event, encoder: json) { try await writer.write(bytes) }
                }
                if includeUsage, let usage { try await writer.write(Self.sse(try json.encode(encoder.usageChunk(usage)))) }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            } catch {
                // The client has the status already: the error goes in the stream, as OpenAI does.
                let failure = GatewayError(error)
                try? await writer.write(Self.sse(try json.encode(failure.openAIBody)))
            }
        }
    }

    /// A streamed answer. `write` runs after the handler has returned, with the caller's key and route
    /// set again (the spend record, made when the stream ends, needs them); however it ends (the client
    /// gone included) the stream is accounted first, then the admission released.
    static func streamed(keyID: String?, route: String, admission: Admission, overhead: Duration,
                         _ write: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void) -> Response {
        let body = ResponseBody { writer in
            try await Gateway.$currentKey.withValue(keyID) {
                try await Gateway.$currentRoute.withValue(route) {
                    defer { admission.release() }
                    try await write(&writer)
                    try await writer.finish(nil)
                }
            }
        }
        return Response(status: .ok, headers: streamHeaders(overhead: overhead), body: body)
    }

    // MARK: Anthropic: messages

    func messages(_ request: Request) async -> Response {
        let started = ContinuousClock.now
        let caller: Caller, wire: AnthropicWire.MessagesRequest, portable: ChatRequest
        switch await accept(request, decode: { data in
            let wire = try JSONDecoder().decode(AnthropicWire.MessagesRequest.self, from: data)
            return (wire, try AnthropicWire.portable(wire))
        }) {
        case .success(let accepted): (caller, (wire, portable)) = accepted
        case .failure(let error): return error.anthropic()
        }
        let model = wire.model
        let estimate = chatEstimate(portable, model: model)
        let admission: Admission
        switch await admit(caller, model: model, estimatedTokens: estimate.tokens, estimatedCost: estimate.cost, stream: wire.stream == true) {
        case .success(let admitted): admission = admitted
        case .failure(let refusal): return count(refusal.anthropic(), route: "messages", model: model, started: started)
        }
        return await Gateway.$currentKey.withValue(caller.keyID) {
            await Gateway.$currentRoute.withValue("messages") {
                let upstreamStart = ContinuousClock.now
                do {
                    if wire.stream == true {
                        let stream = try await chat.stream(portable)
                        let overhead = (ContinuousClock.now - started) - (ContinuousClock.now - upstreamStart)
                        return count(streamAnthropic(stream, model: model, overhead: overhead, keyID: caller.keyID, admission: admission),
                                     route: "messages", model: model, started: started)
                    }
                    defer { admission.release() }
                    let response = try await chat.chat(portable)
                    let upstream = ContinuousClock.now - upstreamStart
                    let data = try JSONEncoder().encode(AnthropicWire.message(response))
                    let overhead = (ContinuousClock.now - started) - upstream
                    return count(Self.json(data, overhead: overhead), route: "messages", model: model, started: started, overhead: overhead)
                } catch {
                    admission.release()
                    return count(GatewayError(error).anthropic(), route: "messages", model: model, started: started)
                }
            }
        }
    }

    func streamAnthropic(_ stream: ChatStream, model: String, overhead: Duration, keyID: String?, admission: Admission) -> Response {
        Self.streamed(keyID: keyID, route: "messages", admission: admission, overhead: overhead) { writer in
            var encoder = AnthropicWire.StreamEncoder(id: "msg_\(IDGenerator.shared.ulid())", model: model)
            do {
                for try await event in stream {
                    for (name, data) in encoder.encode(event) {
                        try await writer.write(ByteBuffer(string: "event: \(name)\ndata: \(data.description)\n\n"))
                    }
                }
            } catch {
                let failure = GatewayError(error)
                let (name, data) = AnthropicWire.StreamEncoder.error(type: failure.anthropicType, message: failure.message)
                try? await writer.write(ByteBuffer(string: "event: \(name)\ndata: \(data.description)\n\n"))
            }
        }
    }

    // MARK: Anthropic: count tokens

    /// `POST /v1/messages/count_tokens`: the prompt's size by the model's token estimator (the same
    /// count admission and budgets use); nothing is sent upstream or billed.
    func countTokens(_ request: Request) async -> Response {
        let caller: Caller, wire: AnthropicWire.MessagesRequest, portable: ChatRequest
        switch await accept(request, decode: { data in
            // The same body as /v1/messages without max_tokens, which this call does not take.
            var body = try JSONValue.parse(data)
            if case .object(var fields) = body, fields["max_tokens"] == nil { fields["max_tokens"] = 1; body = .object(fields) }
            let wire = try JSONDecoder().decode(AnthropicWire.MessagesRequest.self, from: Data(body.description.utf8))
            return (wire, try AnthropicWire.portable(wire))
        }) {
        case .success(let accepted): (caller, (wire, portable)) = accepted
        case .failure(let error): return error.anthropic()
        }
        guard caller.allows(wire.model) else {
            return GatewayError(status: .forbidden, type: "permission_error", code: "model_not_allowed", message: "this key may not use model '\(wire.model)'").anthropic()
        }
        let tokens = TokenEstimator.forModel(wire.model).count(portable)
        return Self.json(Data(JSONValue.object(["input_tokens": .number(Double(tokens))]).description.utf8), overhead: nil)
    }

    // MARK: OpenAI: responses

    /// How long stored responses are kept for `previous_response_id` and retrieval (OpenAI keeps them 30 days).
    static let responseRetention: TimeInterval = 30 * 24 * 3600

    func responses(_ request: Request) async -> Response {
        let started = ContinuousClock.now
        let caller: Caller, parsed: OpenAIResponses.Request
        switch await accept(request, decode: { try OpenAIResponses.Request(try JSONValue.parse($0)) }) {
        case .success(let accepted): (caller, parsed) = accepted
        case .failure(let error): return error.openAI()
        }
        let model = parsed.model
        var history: [ChatMessage] = []
        if let previous = parsed.previousResponseID {
            switch await loadResponse(previous, for: caller) {
            case .success(let stored):
                do { history = try JSONDecoder().decode([ChatMessage].self, from: Data(stored.conversation.utf8)) } catch {
                    return GatewayError(status: .internalServerError, type: "api_error", code: nil, message: "the stored response \(previous) cannot be read: \(error)").openAI()
                }
            case .failure(let error): return count(error.openAI(), route: "responses", model: model, started: started)
            }
        }
        let portable: ChatRequest
        do { portable = try parsed.chatRequest(history: history) } catch {
            return count(GatewayError(status: .badRequest, type: "invalid_request_error", code: nil, message: Self.describe(error)).openAI(),
                         route: "responses", model: model, started: started)
        }
        let estimate = chatEstimate(portable, model: model)
        let admission: Admission
        switch await admit(caller, model: model, estimatedTokens: estimate.tokens, estimatedCost: estimate.cost, stream: parsed.stream) {
        case .success(let admitted): admission = admitted
        case .failure(let refusal): return count(refusal.openAI(), route: "responses", model: model, started: started)
        }
        let id = "resp_\(IDGenerator.shared.ulid())"
        let createdAt = Int(Date().timeIntervalSince1970)
        return await Gateway.$currentKey.withValue(caller.keyID) {
            await Gateway.$currentRoute.withValue("responses") {
                let upstreamStart = ContinuousClock.now
                if parsed.stream {
                    do {
                        let stream = try await chat.stream(portable)
                        let overhead = (ContinuousClock.now - started) - (ContinuousClock.now - upstreamStart)
                        return count(streamResponses(stream, request: parsed, history: history, id: id, createdAt: createdAt, overhead: overhead,
                                                     keyID: caller.keyID, admission: admission),
                                     route: "responses", model: model, started: started)
                    } catch {
                        admission.release()
                        return count(GatewayError(error).openAI(), route: "responses", model: model, started: started)
                    }
                }
                defer { admission.release() }
                do {
                    let reply = try await chat.chat(portable)
                    let upstream = ContinuousClock.now - upstreamStart
                    let body = OpenAIResponses.response(reply, to: parsed, id: id, createdAt: createdAt, completedAt: Int(Date().timeIntervalSince1970))
                    if parsed.store {
                        try await saveResponse(id: id, keyID: caller.keyID, body: body, conversation: OpenAIResponses.conversation(history: history, request: parsed, reply: reply))
                    }
                    let overhead = (ContinuousClock.now - started) - upstream
                    return count(Self.json(Data(body.description.utf8), overhead: overhead), route: "responses", model: model, started: started, overhead: overhead)
                } catch {
                    return count(GatewayError(error).openAI(), route: "responses", model: model, started: started)
                }
            }
        }
    }

    func streamResponses(_ stream: ChatStream, request: OpenAIResponses.Request, history: [ChatMessage], id: String, createdAt: Int, overhead: Duration,
                         keyID: String?, admission: Admission) -> Response {
        Self.streamed(keyID: keyID, route: "responses", admission: admission, overhead: overhead) { writer in
            var encoder = OpenAIResponses.StreamEncoder(request: request, id: id, createdAt: createdAt)
            func send(_ events: [OpenAIResponses.StreamEncoder.Event]) async throws {
                for (name, data) in events { try await writer.write(ByteBuffer(string: "event: \(name)\ndata: \(data.description)\n\n")) }
            }
            do {
                try await send(encoder.start())
                for try await event in stream { try await send(encoder.encode(event)) }
                let (events, reply) = encoder.finish()
                if request.store, let reply, let completed = events.last?.data["response"] {
                    try await self.saveResponse(id: id, keyID: keyID, body: completed, conversation: OpenAIResponses.conversation(history: history, request: request, reply: reply))
                }
                try await send(events)
            } catch {
                // The status line is sent: the failure goes in the stream, as OpenAI does.
                let failure = GatewayError(error)
                try? await send(encoder.finish(error: (failure.code ?? failure.type, failure.message)).events)
            }
        }
    }

    func saveResponse(id: String, keyID: String?, body: JSONValue, conversation: [ChatMessage]) async throws {
        let messages = String(decoding: try JSONEncoder().encode(conversation), as: UTF8.self)
        try await store.database.saveResponse(StoredResponse(id: id, keyID: keyID, createdAt: Date(), body: body.description, conversation: messages),
                                              expiringBefore: Date().addingTimeInterval(-Self.responseRetention))
    }

    /// A stored response the caller may read: its own key's (the master key reads all).
    func loadResponse(_ id: String, for caller: Caller) async -> Result<StoredResponse, GatewayError> {
        let notFound = GatewayError(status: .notFound, type: "invalid_request_error", code: "previous_response_not_found",
                                    message: "Response with id '\(id)' not found.", param: "previous_response_id")
        guard id.hasPrefix("resp_"), id.count <= 64 else { return .failure(notFound) }
        do {
            guard let stored = try await store.database.loadResponse(id: id) else { return .failure(notFound) }
            if case .master = caller { return .success(stored) }
            guard stored.keyID == caller.keyID, stored.createdAt > Date().addingTimeInterval(-Self.responseRetention) else { return .failure(notFound) }
            return .success(stored)
        } catch {
            return .failure(GatewayError(error))
        }
    }

    /// `GET` and `DELETE /v1/responses/{id}`.
    func storedResponse(_ request: Request, id: String, delete: Bool) async -> Response {
        let caller: Caller
        switch authenticate(request) { case .success(let value): caller = value; case .failure(let error): return error.openAI() }
        switch await loadResponse(id, for: caller) {
        case .failure(var error):
            error.param = nil
            error.code = nil
            return error.openAI()
        case .success(let stored):
            guard delete else { return Self.json(Data(stored.body.utf8), overhead: nil) }
            do { _ = try await store.database.deleteResponse(id: id) } catch { return GatewayError(error).openAI() }
            return Self.json(Data(JSONValue.object(["id": .string(id), "object": "response.deleted", "deleted": true]).description.utf8), overhead: nil)
        }
    }

    // MARK: Embeddings and models

    func embeddings(_ request: Request) async -> Response {
        let started = ContinuousClock.now
        let caller: Caller, parsed: EmbeddingRequest
        switch await accept(request, decode: { try JSONDecoder().decode(EmbeddingRequest.self, from: $0) }) {
        case .success(let accepted): (caller, parsed) = accepted
        case .failure(let error): return error.openAI()
        }
        guard let embedder = embedders[parsed.model] else {
            return GatewayError(status: .notFound, type: "invalid_request_error", code: "model_not_found",
                                message: "the embedding model '\(parsed.model)' does not exist; available: \(embedders.keys.sorted().joined(separator: ", "))").openAI()
        }
        guard case .texts(let texts) = parsed.input else { return GatewayError(status: .badRequest, type: "invalid_request_error", code: nil, message: "bad input").openAI() }
        guard (1...Self.maxEmbeddingInputs).contains(texts.count) else {
            return count(GatewayError(status: .badRequest, type: "invalid_request_error", code: "invalid_value",
                                      message: "input has \(texts.count) items; send 1 to \(Self.maxEmbeddingInputs) per request (OpenAI's limit)").openAI(),
                         route: "embeddings", model: parsed.model, started: started)
        }
        if let dimensions = parsed.dimensions, !(1...Self.maxEmbeddingDimensions).contains(dimensions) {
            return count(GatewayError(status: .badRequest, type: "invalid_request_error", code: "invalid_value",
                                      message: "dimensions must be between 1 and \(Self.maxEmbeddingDimensions), not \(dimensions)").openAI(),
                         route: "embeddings", model: parsed.model, started: started)
        }
        let estimatedTokens = texts.reduce(0) { Self.sum($0, TokenEstimator().count($1)) }
        let estimatedCost = ModelCatalog.standard.cost(of: Usage(inputTokens: estimatedTokens), model: embedder.configuration.defaultModel)
        let admission: Admission
        switch await admit(caller, model: parsed.model, estimatedTokens: estimatedTokens, estimatedCost: estimatedCost) {
        case .success(let admitted): admission = admitted
        case .failure(let refusal): return count(refusal.openAI(), route: "embeddings", model: parsed.model, started: started)
        }
        defer { admission.release() }
        do {
            let upstreamStart = ContinuousClock.now
            let result = try await embedder.embedWithUsage(texts, dimensions: parsed.dimensions)
            let upstream = ContinuousClock.now - upstreamStart
            let base64 = parsed.encodingFormat == "base64"
            let data: [JSONValue] = result.vectors.enumerated().map { index, vector in
                ["object": "embedding", "index": .number(Double(index)), "embedding": base64 ? .string(Self.base64(vector)) : .array(vector.map { .number(Double($0)) })]
            }
            let tokens = result.inputTokens > 0 ? result.inputTokens : texts.reduce(0) { $0 + TokenEstimator().count($1) }
            let cost = ModelCatalog.standard.cost(of: Usage(inputTokens: tokens), model: embedder.configuration.defaultModel) ?? 0
            store.record(SpendRecord(at: Date(), keyID: caller.keyID, route: "embeddings", model: parsed.model, deployment: embedder.provider,
                                     provider: embedder.provider, inputTokens: tokens, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0,
                                     cost: cost, latencyMilliseconds: upstream.nimbusSeconds * 1000, outcome: "ok", cached: false))
            let response: JSONValue = ["object": "list", "data": .array(data), "model": .string(parsed.model),
                                       "usage": ["prompt_tokens": .number(Double(tokens)), "total_tokens": .number(Double(tokens))]]
            let overhead = (ContinuousClock.now - started) - upstream
            return count(Self.json(Data(response.description.utf8), overhead: overhead), route: "embeddings", model: parsed.model, started: started, overhead: overhead)
        } catch {
            return count(GatewayError(error).openAI(), route: "embeddings", model: parsed.model, started: started)
        }
    }

    /// The most choices (`n`) one chat call may ask for; each is a call upstream.
    static let maxChoices = 8

    /// OpenAI's cap on inputs per embeddings request.
    static let maxEmbeddingInputs = 2048
    /// The largest vector length a caller may ask for.
    static let maxEmbeddingDimensions = 65_536

    struct EmbeddingRequest: Decodable {
        var model: String
        var input: Input
        var dimensions: Int?
        var encodingFormat: String?
        enum CodingKeys: String, CodingKey { case model, input, dimensions, encodingFormat = "encoding_format" }
        enum Input: Decodable {
            case texts([String])
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let one = try? container.decode(String.self) { self = .texts([one]) }
                else if let many = try? container.decode([String].self) { self = .texts(many) }
                else { throw DecodingError.dataCorruptedError(in: container, debugDescription: "input must be a string or an array of strings (token arrays are not supported)") }
            }
        }
    }

    func models(_ request: Request) -> Response {
        let caller: Caller
        switch authenticate(request) { case .success(let value): caller = value; case .failure(let error): return error.openAI() }
        let names = (router.aliases + embedders.keys.sorted()).filter { caller.allows($0) }
        let list = OpenAIWire.ModelList(data: names.map { OpenAIWire.ModelList.Model(id: $0, created: 1_735_689_600, ownedBy: "nimbus") })
        return Self.json((try? JSONEncoder().encode(list)) ?? Data(), overhead: nil)
    }

    // MARK: Admin

    /// The master key, or an access token of the admin issuer granting the admin scope.
    func requireMaster(_ request: Request) async -> GatewayError? {
        if case .success(.master) = authenticate(request) { return nil }
        if let adminTokens, let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
           case let token = String(header.dropFirst(7)), token.split(separator: ".").count == 3 {
            do {
                _ = try await adminTokens.verify(token)
                return nil
            } catch let error as NimbusError where error.code == .permissionDenied {
                return GatewayError(status: .forbidden, type: "permission_error", code: "insufficient_scope", message: "the token lacks the admin scope")
            } catch let error as NimbusError where error.code == .unauthenticated {
                return GatewayError(status: .unauthorized, type: "invalid_request_error", code: "invalid_api_key",
                                    message: "the admin token was refused (\((error.underlying as? JWTRejection)?.reason.rawValue ?? "invalid"))")
            } catch {
                logger.warning("admin token check failed", metadata: ["error": "\(error)"])
                return GatewayError(status: .serviceUnavailable, type: "api_error", code: nil, message: "the admin token issuer cannot be reached")
            }
        }
        return GatewayError(status: .unauthorized, type: "invalid_request_error", code: "invalid_api_key",
                            message: adminTokens == nil ? "this call needs the master key" : "this call needs the master key or an admin access token")
    }

    func generateKey(_ request: Request) async -> Response {
        if let refusal = await requireMaster(request) { return refusal.openAI() }
        struct Body: Decodable {
            var name: String?
            var models: [String]?
            var rpm: Int?
            var tpm: Int?
            var maxBudget: Decimal?
            enum CodingKeys: String, CodingKey { case name, models, rpm, tpm, maxBudget = "max_budget" }
        }
        let body: ByteBuffer
        switch await readBody(request) { case .success(let value): body = value; case .failure(let error): return error.openAI() }
        do {
            let parsed = body.readableBytes == 0 ? Body() : try JSONDecoder().decode(Body.self, from: Data(body.readableBytesView))
            let (key, secret) = try await store.createKey(name: parsed.name ?? "key", models: parsed.models ?? [], rpm: parsed.rpm, tpm: parsed.tpm, maxBudget: parsed.maxBudget)
            let response: JSONValue = ["key": .string(secret), "key_id": .string(key.id), "name": .string(key.name),
                                       "models": .array(key.models.map(JSONValue.string)), "rpm": key.rpm.map { .number(Double($0)) } ?? .null,
                                       "tpm": key.tpm.map { .number(Double($0)) } ?? .null, "max_budget": key.maxBudget.map { .string("\($0)") } ?? .null]
            return Self.json(Data(response.description.utf8), overhead: nil)
        } catch {
            return GatewayError(status: .badRequest, type: "invalid_request_error", code: nil, message: "cannot create the key: \(Self.describe(error))").openAI()
        }
    }

    func keyInfo(_ request: Request) -> Response {
        let caller: Caller
        switch authenticate(request) { case .success(let value): caller = value; case .failure(let error): return error.openAI() }
        let id = request.uri.queryParameters.get("key_id") ?? caller.keyID
        if case .key(let key) = caller, id != key.id {
            return GatewayError(status: .forbidden, type: "permission_error", code: nil, message: "a key may only read its own info").openAI()
        }
        guard let id, let key = store.key(id: id) else {
            return GatewayError(status: .notFound, type: "invalid_request_error", code: nil, message: "no such key").openAI()
        }
        let response: JSONValue = ["key_id": .string(key.id), "name": .string(key.name), "models": .array(key.models.map(JSONValue.string)),
                                   "spent": .string("\(key.spent)"), "max_budget": key.maxBudget.map { .string("\($0)") } ?? .null,
                                   "rpm": key.rpm.map { .number(Double($0)) } ?? .null, "tpm": key.tpm.map { .number(Double($0)) } ?? .null]
        return Self.json(Data(response.description.utf8), overhead: nil)
    }

    func deleteKey(_ request: Request) async -> Response {
        if let refusal = await requireMaster(request) { return refusal.openAI() }
        let body: ByteBuffer
        switch await readBody(request) { case .success(let value): body = value; case .failure(let error): return error.openAI() }
        guard let id = (try? JSONValue.parse(Data(body.readableBytesView)))?["key_id"]?.stringValue else {
            return GatewayError(status: .badRequest, type: "invalid_request_error", code: nil, message: "send {\"key_id\": \"vk_...\"}").openAI()
        }
        do {
            let removed = try await store.revokeKey(id: id)
            return Self.json(Data(JSONValue.object(["deleted": .bool(removed), "key_id": .string(id)]).description.utf8), overhead: nil)
        } catch {
            return GatewayError(error).openAI()
        }
    }

    func spend(_ request: Request) async -> Response {
        if let refusal = await requireMaster(request) { return refusal.openAI() }
        do {
            try await store.flush()
            let rows = try await store.spendByKey().map { row -> JSONValue in
                ["key_id": row.keyID.map(JSONValue.string) ?? .null, "requests": .number(Double(row.requests)),
                 "input_tokens": .number(Double(row.inputTokens)), "output_tokens": .number(Double(row.outputTokens)), "cost": .string("\(row.cost)")]
            }
            return Self.json(Data(JSONValue.object(["keys": .array(rows), "dropped_records": .number(Double(store.droppedRecords))]).description.utf8), overhead: nil)
        } catch {
            return GatewayError(error).openAI()
        }
    }

    // MARK: Helpers

    func count(_ response: Response, route: String, model: String, started: ContinuousClock.Instant, overhead: Duration? = nil) -> Response {
        // Only configured names become label values: a caller's made-up model must not create a series.
        let label = metricModels.contains(model) ? model : "unknown"
        let dimensions = [("route", route), ("model", label), ("status", String(response.status.code))]
        Counter(label: "nimbus_gateway_requests_total", dimensions: dimensions, factory: metricsFactory).increment()
        Timer(label: "nimbus_gateway_request_duration_seconds", dimensions: [("route", route)], factory: metricsFactory).recordNanoseconds((ContinuousClock.now - started).nimbusNanoseconds)
        if let overhead { Timer(label: "nimbus_gateway_overhead_seconds", dimensions: [("route", route)], factory: metricsFactory).recordNanoseconds(max(0, overhead.nimbusNanoseconds)) }
        return response
    }

    static func json(_ data: Data, overhead: Duration?) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let overhead { headers[.nimbusOverhead] = overheadText(overhead) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func streamHeaders(overhead: Duration) -> HTTPFields {
        [.contentType: "text/event-stream", .cacheControl: "no-cache", .nimbusOverhead: overheadText(overhead)]
    }

    static func overheadText(_ duration: Duration) -> String {
        String(format: "%.3f", max(0, duration.nimbusSeconds * 1000))
    }

    static func sse(_ data: Data) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(data.count + 8)
        buffer.writeString("data: ")
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        return buffer
    }

    static func base64(_ vector: [Float]) -> String {
        var data = Data(capacity: vector.count * 4)
        for value in vector { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data.base64EncodedString()
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? NimbusError { return error.message }
        if let error = error as? DecodingError {
            switch error {
            case .keyNotFound(let key, let context): return "missing field '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                let path = context.codingPath.map(\.stringValue).joined(separator: ".")
                return (path.isEmpty ? "" : "'\(path)': ") + context.debugDescription
            @unknown default: return "\(error)"
            }
        }
        return "\(error)"
    }
}

/// Cancels a background task (the PostgreSQL pool) at graceful shutdown, a moment after it began so
/// that the spend writer's last flush still has its connections.
struct TaskStopper: Service {
    let task: Task<Void, Never>

    func run() async throws {
        try? await gracefulShutdown()
        try? await Task.sleep(for: .milliseconds(200))
        task.cancel()
    }
}

/// Streams open per key, against the key's limit.
final class StreamLimiter: Sendable {
    private let open = Mutex<[String: Int]>([:])

    /// A slot for one more stream of `key`, given back when the lease is released; `nil` at the limit.
    func acquire(_ key: String, limit: Int) -> Lease? {
        let admitted = open.withLock { open -> Bool in
            guard open[key, default: 0] < limit else { return false }
            open[key, default: 0] += 1
            return true
        }
        guard admitted else { return nil }
        return Lease { [weak self] in
            self?.open.withLock { open in
                let left = (open[key] ?? 1) - 1
                open[key] = left > 0 ? left : nil
            }
        }
    }
}

extension HTTPField.Name {
    /// Anthropic's key header.
    static let xAPIKey = HTTPField.Name("x-api-key")!
    /// Azure OpenAI's key header.
    static let azureAPIKey = HTTPField.Name("api-key")!
    /// Time the gateway added to a call, in milliseconds.
    static let nimbusOverhead = HTTPField.Name("x-nimbus-overhead-ms")!
}

/// The admin issuer's tokens: its keys found once (by discovery unless `jwks_url` is given), then
/// verified like any JWT, with the admin scope required.
actor AdminTokens {
    let rule: GatewayConfiguration.AdminOIDC
    private let http: NimbusHTTPClient
    private var verifier: JWTVerifier?

    init(_ rule: GatewayConfiguration.AdminOIDC, httpClient: HTTPClient, logger: Logger) {
        self.rule = rule
        self.http = NimbusHTTPClient(configuration: .init(service: "admin-oidc", timeout: .seconds(10)), httpClient: httpClient, logger: logger)
    }

    func verify(_ token: String) async throws -> VerifiedJWT {
        try await current().verify(token, requiring: [rule.scope])
    }

    private func current() async throws -> JWTVerifier {
        if let verifier { return verifier }
        let jwksURL: String
        if let configured = rule.jwksURL { jwksURL = configured } else {
            guard let discovered = try await OAuth2ProviderMetadata.discover(issuer: rule.issuer, http: http).jwksURI else {
                throw NimbusError(.failedPrecondition, "admin_oidc issuer \(rule.issuer) publishes no jwks_uri")
            }
            jwksURL = discovered
        }
        let made = JWTVerifier(keys: RemoteJWKS(url: jwksURL, http: http),
                               configuration: .init(issuers: [rule.issuer], audiences: rule.audience.map { [$0] } ?? []))
        verifier = made
        return made
    }
}
