import Crypto
import Foundation
import Logging
import NIOCore
import NimbusCache
import NimbusCore
import Synchronization

/// A chat model over several deployments, the way an LLM gateway routes: each model name (an alias)
/// maps to deployments (a provider, its upstream model, a weight, limits); a call goes to one healthy
/// deployment, moves on to the next when one fails with a transient error, then to fallback models
/// (to a larger-context model when the context window is exceeded). Failing deployments cool down;
/// per-deployment requests- and tokens-per-minute limits are kept; exact repeats can be answered from
/// a cache; every call reports its usage and cost.
///
/// ```swift
/// let router = ChatRouter(deployments: [
///     .init(alias: "smart", model: openAI, upstreamModel: "gpt-4o", weight: 3, requestsPerMinute: 500),
///     .init(alias: "smart", model: azure, upstreamModel: "gpt-4o", weight: 1),
///     .init(alias: "big", model: gemini, upstreamModel: "gemini-2.5-pro"),
/// ], configuration: .init(fallbacks: ["smart": ["big"]], contextWindowFallbacks: ["smart": ["big"]]))
/// let model = ChatModel(driver: router, configuration: .init(defaultModel: "smart"))
/// ```
public final class ChatRouter: ChatModelDriver, ModelListingDriver {
    /// One place a model name can be served from.
    public struct Deployment: Sendable {
        /// The model name clients ask for.
        public var alias: String
        /// The provider's chat model.
        public var model: ChatModel
        /// The model id sent upstream.
        public var upstreamModel: String
        /// A name for metrics and logs (`openai/gpt-4o#0`).
        public var name: String
        /// Share of traffic under weighted routing.
        public var weight: Double
        /// Requests per minute this deployment may take (`nil`: no limit).
        public var requestsPerMinute: Int?
        /// Tokens per minute this deployment may take (`nil`: no limit).
        public var tokensPerMinute: Int?
        /// The ``ChatRequest/providerOptions`` this deployment forwards (`nil`: all). A server that routes
        /// untrusted callers' requests sets it, so unknown fields reach the provider only where the operator allowed them.
        public var allowedProviderOptions: Set<String>?

        /// Creates a deployment.
        public init(alias: String, model: ChatModel, upstreamModel: String, name: String? = nil, weight: Double = 1,
                    requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, allowedProviderOptions: Set<String>? = nil) {
            self.allowedProviderOptions = allowedProviderOptions
            self.alias = alias
            self.model = model
            self.upstreamModel = upstreamModel
            self.name = name ?? "\(model.provider)/\(upstreamModel)"
            self.weight = max(0, weight)
            self.requestsPerMinute = requestsPerMinute
            self.tokensPerMinute = tokensPerMinute
        }
    }

    /// How a deployment is chosen among the healthy ones.
    public enum Strategy: Sendable, Hashable {
        /// At random, in proportion to weight.
        case weighted
        /// The one with the fewest calls in flight.
        case leastBusy
        /// The one with the lowest recent latency (moving average); untried ones first.
        case lowestLatency
    }

    /// What happened in one routed call, for spend logs and metrics.
    public struct CallRecord: Sendable {
        /// The model name asked for.
        public var alias: String
        /// The deployment that answered (or failed last).
        public var deployment: String
        /// The provider.
        public var provider: String
        /// The upstream model.
        public var upstreamModel: String
        /// Tokens used (`nil` when the call failed before any answer).
        public var usage: Usage?
        /// US dollars, from the catalog (`nil` when the price is unknown).
        public var cost: Decimal?
        /// Time from routing to the answer (the end of the stream for streams).
        public var latency: Duration
        /// Whether the answer came from the cache.
        public var cached: Bool
        /// `ok` or the error code.
        public var outcome: String
        /// Deployments tried before this one.
        public var attempts: Int
    }

    /// Settings.
    public struct Configuration: Sendable {
        /// How deployments are chosen.
        public var strategy: Strategy
        /// Other model names to try, in order, when every deployment of a name failed with a transient error.
        public var fallbacks: [String: [String]]
        /// Larger-context model names to try when the context window was exceeded.
        public var contextWindowFallbacks: [String: [String]]
        /// Failures within a minute that put a deployment in cooldown.
        public var allowedFailures: Int
        /// How long a failing deployment is left alone (a provider's Retry-After wins when longer).
        public var cooldown: Duration
        /// The longest the router waits for a cooling-down deployment when all are cooling down.
        public var maxWait: Duration
        /// Exact-match response cache (`nil`: none).
        public var cache: Cache?
        /// Whose cache a call reads and writes (a server passes the caller's key id): callers never get
        /// each other's cached answers, so no one replays another's prompts. `nil`: one shared cache.
        public var cachePartition: (@Sendable () -> String?)?
        /// How long cached responses live.
        public var cacheTTL: Duration
        /// Prices for cost accounting.
        public var catalog: ModelCatalog
        /// Called after every routed call (off the caller's path: keep it quick, hand off to a queue).
        public var onCall: (@Sendable (CallRecord) -> Void)?

        /// Creates settings.
        public init(strategy: Strategy = .weighted, fallbacks: [String: [String]] = [:], contextWindowFallbacks: [String: [String]] = [:],
                    allowedFailures: Int = 3, cooldown: Duration = .seconds(30), maxWait: Duration = .seconds(5), cache: Cache? = nil,
                    cacheTTL: Duration = .seconds(3600), catalog: ModelCatalog = .standard, onCall: (@Sendable (CallRecord) -> Void)? = nil,
                    cachePartition: (@Sendable () -> String?)? = nil) {
            self.strategy = strategy
            self.fallbacks = fallbacks
            self.contextWindowFallbacks = contextWindowFallbacks
            self.allowedFailures = max(1, allowedFailures)
            self.cooldown = cooldown
            self.maxWait = maxWait
            self.cache = cache
            self.cacheTTL = cacheTTL
            self.cachePartition = cachePartition
            self.catalog = catalog
            self.onCall = onCall
        }
    }

    struct Health {
        var inFlight = 0
        var latency: Double?
        var failures: [ContinuousClock.Instant] = []
        var coolingUntil: ContinuousClock.Instant?
        var windowStart: ContinuousClock.Instant?
        var windowRequests = 0
        var windowTokens = 0
    }

    /// The deployments, in configuration order.
    public let deployments: [Deployment]
    /// The settings.
    public let configuration: Configuration
    public var provider: String { "router" }
    private let health: Mutex<[Health]>
    private let random: @Sendable () -> Double
    private let now: @Sendable () -> ContinuousClock.Instant
    private let sleep: @Sendable (Duration) async throws -> Void
    private let logger: Logger

    /// Creates a router; `random`, `now` and `sleep` are for tests.
    public init(deployments: [Deployment], configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.llm.router"),
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.deployments = deployments
        self.configuration = configuration
        self.health = Mutex(Array(repeating: Health(), count: deployments.count))
        self.random = random
        self.now = now
        self.sleep = sleep
        self.logger = logger
    }

    /// Calls under way per deployment name (a stream counts until it is accounted for: finished,
    /// failed, or abandoned by its consumer).
    public var inFlight: [String: Int] {
        health.withLock { health in
            deployments.indices.reduce(into: [:]) { counts, index in counts[deployments[index].name, default: 0] += health[index].inFlight }
        }
    }

    /// The most a call to `alias` with these token counts can cost on any of its deployments, at the
    /// catalog's prices (`nil`: no deployment of it has a price).
    public func highestCost(of usage: Usage, alias: String) -> Decimal? {
        deployments.filter { $0.alias == alias }.compactMap { configuration.catalog.cost(of: usage, model: $0.upstreamModel) }.max()
    }

    /// The model names served, sorted.
    public var aliases: [String] { Array(Set(deployments.map(\.alias))).sorted() }

    public func listModels() async throws -> [ModelDescriptor] {
        aliases.map { alias in ModelDescriptor(id: alias, ownedBy: deployments.first { $0.alias == alias }?.model.provider ?? "nimbus") }
    }

    // MARK: Calls

    public func chat(_ request: ChatRequest) async throws -> ChatResponse {
        let started = now()
        let alias = request.model ?? ""
        let key = configuration.cache.map { _ in Self.cacheKey(request, partition: configuration.cachePartition?() ?? nil) }
        if let cache = configuration.cache, let key, let hit = try? await cache.get(key, as: ChatResponse.self) {
            report(alias: alias, deployment: nil, usage: hit.usage, started: started, cached: true, outcome: "ok", attempts: 0)
            return hit
        }
        let response: ChatResponse = try await route(request) { deployment, upstream in
            try await deployment.model.chat(upstream)
        } usage: { $0.usage }
        if let cache = configuration.cache, let key, response.finishReason != .error {
            do { try await cache.set(key, response, ttl: configuration.cacheTTL) } catch {
                logger.warning("response cache write failed", metadata: ["error": "\(error)"])
            }
        }
        return response
    }

    public func stream(_ request: ChatRequest) async throws -> ChatStream {
        let started = now()
        let alias = request.model ?? ""
        let key = configuration.cache.map { _ in Self.cacheKey(request, partition: configuration.cachePartition?() ?? nil) }
        if let cache = configuration.cache, let key, let hit = try? await cache.get(key, as: ChatResponse.self) {
            report(alias: alias, deployment: nil, usage: hit.usage, started: started, cached: true, outcome: "ok", attempts: 0)
            return ChatStream { yield in for event in Self.events(replaying: hit) { await yield(event) } }
        }
        // Fallback is possible until the upstream answered with a stream; after that, errors pass through.
        var chosen: Int?
        var attempts = 0
        let upstream: ChatStream = try await route(request, reportSuccess: false) { deployment, upstream in
            chosen = self.deployments.firstIndex { $0.name == deployment.name && $0.alias == deployment.alias }
            attempts += 1
            return try await deployment.model.stream(upstream)
        } usage: { _ in nil }
        let accounting = StreamAccounting(router: self, alias: alias, index: chosen, started: started, attempts: attempts - 1, cacheKey: key,
                                          inputEstimate: TokenEstimator.forModel(alias).count(request))
        return ChatStream(observing: upstream) { accounting }
    }

    /// Accounts for a routed stream exactly once, however it ends: deployment health (the in-flight
    /// count included), the call record, the cache. A consumer that stops early (a client that
    /// disconnected) is billed for the prompt and for what it received, with outcome `cancelled`;
    /// a stream dropped without being read is accounted the same way when it is released.
    final class StreamAccounting: ChatStreamObserver, Sendable {
        let router: ChatRouter
        let alias: String
        let index: Int?
        let started: ContinuousClock.Instant
        let attempts: Int
        let cacheKey: String?
        let inputEstimate: Int
        private struct State { var accumulator = ChatResponseAccumulator(); var settled = false }
        private let state = Mutex(State())

        init(router: ChatRouter, alias: String, index: Int?, started: ContinuousClock.Instant, attempts: Int, cacheKey: String?, inputEstimate: Int) {
            self.router = router
            self.alias = alias
            self.index = index
            self.started = started
            self.attempts = attempts
            self.cacheKey = cacheKey
            self.inputEstimate = inputEstimate
        }

        deinit { abandoned() }

        func observe(_ event: ChatStreamEvent) throws { state.withLock { $0.accumulator.add(event) } }

        /// The events so far, once: `nil` when the stream was already accounted for.
        private func settle() -> ChatResponseAccumulator? {
            state.withLock { state in
                guard !state.settled else { return nil }
                state.settled = true
                return state.accumulator
            }
        }

        func finished() throws {
            guard let accumulator = settle() else { return }
            let response: ChatResponse
            do { response = try accumulator.response() } catch {
                throw account(error, accumulator)
            }
            if let index { router.finished(index, tokens: response.usage.totalTokens, started: started, failure: nil) }
            router.report(alias: alias, deployment: index, usage: response.usage, started: started, cached: false, outcome: "ok", attempts: attempts)
            if let cache = router.configuration.cache, let cacheKey {
                let ttl = router.configuration.cacheTTL
                Task { try? await cache.set(cacheKey, response, ttl: ttl) }
            }
        }

        func failed(_ error: any Error) -> any Error {
            guard let accumulator = settle() else { return NimbusError.wrap(error, "stream from \(alias)") }
            return account(error, accumulator)
        }

        private func account(_ error: any Error, _ accumulator: ChatResponseAccumulator) -> any Error {
            let error = NimbusError.wrap(error, "stream from \(alias)")
            let usage = billable(accumulator)
            if let index { router.finished(index, tokens: usage.totalTokens, started: started, failure: error) }
            router.report(alias: alias, deployment: index, usage: usage, started: started, cached: false, outcome: error.code.description, attempts: attempts)
            return error
        }

        func abandoned() {
            guard let accumulator = settle() else { return }
            let usage = billable(accumulator)
            if let index { router.finished(index, tokens: usage.totalTokens, started: started, failure: nil, measured: false) }
            router.report(alias: alias, deployment: index, usage: usage, started: started, cached: false, outcome: "cancelled", attempts: attempts)
        }

        /// The provider's counts when they arrived; otherwise the prompt estimate and what was generated so far.
        private func billable(_ accumulator: ChatResponseAccumulator) -> Usage {
            var usage = accumulator.usage
            if usage.inputTokens == 0 { usage.inputTokens = inputEstimate }
            if usage.outputTokens == 0 {
                let partial = accumulator.partialResponse(finishReason: .stop)
                let estimator = TokenEstimator.forModel(alias)
                usage.outputTokens = estimator.count(partial.message.text) + partial.toolCalls.reduce(0) { $0 + estimator.count($1.name + $1.arguments) }
            }
            return usage
        }
    }

    /// Tries deployments of the alias, then its fallbacks, until one answers.
    private func route<T>(_ request: ChatRequest, reportSuccess: Bool = true,
                          _ call: (Deployment, ChatRequest) async throws -> T, usage: (T) -> Usage?) async throws -> T {
        let alias = request.model ?? ""
        guard deployments.contains(where: { $0.alias == alias }) else {
            throw LLMFailure(kind: .modelNotFound, provider: provider, status: 404,
                             message: "no deployment serves '\(alias)'; configured models: \(aliases.joined(separator: ", "))").nimbusError()
        }
        let started = now()
        var queue = [alias]
        var visited = Set<String>()
        var lastError: NimbusError?
        var attempts = 0
        var contextFallbackQueued = false
        while !queue.isEmpty {
            let current = queue.removeFirst()
            guard visited.insert(current).inserted else { continue }
            var tried = Set<Int>()
            while let index = try await pick(alias: current, excluding: tried, estimate: TokenEstimator.forModel(current).count(request)) {
                tried.insert(index)
                let deployment = deployments[index]
                var upstream = request
                upstream.model = deployment.upstreamModel
                if let allowed = deployment.allowedProviderOptions { upstream.providerOptions = upstream.providerOptions.filter { allowed.contains($0.key) } }
                attempts += 1
                begin(index)
                do {
                    let result = try await call(deployment, upstream)
                    if reportSuccess {
                        let used = usage(result)
                        finished(index, tokens: used?.totalTokens ?? 0, started: started, failure: nil)
                        report(alias: alias, deployment: index, usage: used, started: started, cached: false, outcome: "ok", attempts: attempts - 1)
                    }
                    return result
                } catch {
                    let error = NimbusError.wrap(error, "\(deployment.name)")
                    finished(index, tokens: 0, started: started, failure: error)
                    lastError = error
                    logger.info("deployment failed", metadata: ["deployment": "\(deployment.name)", "alias": "\(current)", "error": "\(error.code)"])
                    if error.llmFailure?.kind == .contextLengthExceeded {
                        if !contextFallbackQueued { queue = (configuration.contextWindowFallbacks[current] ?? []) + queue; contextFallbackQueued = true }
                        break
                    }
                    guard Self.shouldFailOver(error) else {
                        report(alias: alias, deployment: index, usage: nil, started: started, cached: false, outcome: error.code.description, attempts: attempts - 1)
                        throw error
                    }
                }
            }
            if lastError?.llmFailure?.kind != .contextLengthExceeded { queue += configuration.fallbacks[current] ?? [] }
        }
        let error = lastError ?? LLMFailure(kind: .unavailable, provider: provider,
                                            message: "every deployment of '\(alias)' is cooling down or at its rate limit")
            .nimbusError(retryAfter: soonestAvailability(alias))
        report(alias: alias, deployment: nil, usage: nil, started: started, cached: false, outcome: error.code.description, attempts: attempts)
        throw error
    }

    /// Errors worth another deployment: transient ones and per-deployment problems (bad key, missing model).
    static func shouldFailOver(_ error: NimbusError) -> Bool {
        if let kind = error.llmFailure?.kind {
            return [.rateLimited, .overloaded, .unavailable, .timeout, .unauthenticated, .permissionDenied, .modelNotFound, .malformedResponse, .quotaExceeded]
                .contains(kind)
        }
        return error.isRetryable || error.code == .unauthenticated
    }

    // MARK: Choosing

    /// A healthy deployment of `alias` not yet tried; waits up to `maxWait` if all are cooling down.
    private func pick(alias: String, excluding tried: Set<Int>, estimate: Int) async throws -> Int? {
        let candidates = deployments.indices.filter { deployments[$0].alias == alias && !tried.contains($0) }
        guard !candidates.isEmpty else { return nil }
        let (choice, wait) = choose(candidates, estimate: estimate)
        if let choice { return choice }
        guard let wait, wait <= configuration.maxWait, tried.isEmpty else { return nil }
        try await sleep(wait)
        return choose(candidates, estimate: estimate).0
    }

    private func choose(_ candidates: [Int], estimate: Int) -> (Int?, Duration?) {
        let instant = now()
        return health.withLock { health -> (Int?, Duration?) in
            var ready: [Int] = []
            var soonest: Duration?
            for index in candidates {
                var state = health[index]
                if let start = state.windowStart, instant - start >= .seconds(60) { state.windowStart = nil; state.windowRequests = 0; state.windowTokens = 0 }
                state.failures.removeAll { instant - $0 >= .seconds(60) }
                health[index] = state
                if let until = state.coolingUntil, until > instant {
                    soonest = min(soonest ?? (until - instant), until - instant)
                    continue
                }
                let deployment = deployments[index]
                if let rpm = deployment.requestsPerMinute, state.windowRequests >= rpm {
                    soonest = min(soonest ?? .seconds(60), .seconds(60) - (instant - (state.windowStart ?? instant)))
                    continue
                }
                if let tpm = deployment.tokensPerMinute, state.windowTokens + estimate > tpm, state.windowRequests > 0 {
                    soonest = min(soonest ?? .seconds(60), .seconds(60) - (instant - (state.windowStart ?? instant)))
                    continue
                }
                ready.append(index)
            }
            guard !ready.isEmpty else { return (nil, soonest) }
            switch configuration.strategy {
            case .leastBusy:
                return (ready.min { health[$0].inFlight < health[$1].inFlight }, nil)
            case .lowestLatency:
                if let untried = ready.first(where: { health[$0].latency == nil }) { return (untried, nil) }
                return (ready.min { (health[$0].latency ?? 0) < (health[$1].latency ?? 0) }, nil)
            case .weighted:
                let total = ready.reduce(0) { $0 + deployments[$1].weight }
                guard total > 0 else { return (ready.first, nil) }
                var point = random() * total
                for index in ready {
                    point -= deployments[index].weight
                    if point < 0 { return (index, nil) }
                }
                return (ready.last, nil)
            }
        }
    }

    private func begin(_ index: Int) {
        let instant = now()
        health.withLock { health in
            if health[index].windowStart == nil { health[index].windowStart = instant }
            health[index].windowRequests += 1
            health[index].inFlight += 1
        }
    }

    /// Ends a call on deployment `index`; `measured: false` leaves its latency estimate alone (a call the consumer abandoned).
    func finished(_ index: Int, tokens: Int, started: ContinuousClock.Instant, failure: NimbusError?, measured: Bool = true) {
        let instant = now()
        let cooldown = configuration.cooldown, allowed = configuration.allowedFailures
        health.withLock { health in
            var state = health[index]
            state.inFlight = max(0, state.inFlight - 1)
            state.windowTokens += tokens
            if let failure {
                guard Self.shouldFailOver(failure) else { health[index] = state; return }
                state.failures.append(instant)
                if let retryAfter = failure.retryAfter, failure.llmFailure?.kind == .rateLimited || failure.code == .resourceExhausted {
                    state.coolingUntil = instant + max(retryAfter, .zero)
                } else if [.unauthenticated, .permissionDenied, .notFound].contains(failure.code) || state.failures.count >= allowed {
                    state.coolingUntil = instant + cooldown
                    state.failures.removeAll()
                }
            } else if measured {
                let seconds = (instant - started).nimbusSeconds
                state.latency = state.latency.map { 0.8 * $0 + 0.2 * seconds } ?? seconds
                state.failures.removeAll()
            }
            health[index] = state
        }
    }

    func report(alias: String, deployment index: Int?, usage: Usage?, started: ContinuousClock.Instant, cached: Bool, outcome: String, attempts: Int) {
        guard let onCall = configuration.onCall else { return }
        let deployment = index.map { deployments[$0] }
        let model = deployment?.upstreamModel ?? alias
        let cost = cached ? Decimal(0) : usage.flatMap { configuration.catalog.cost(of: $0, model: model) }
        onCall(CallRecord(alias: alias, deployment: deployment?.name ?? "cache", provider: deployment?.model.provider ?? "cache",
                          upstreamModel: model, usage: usage, cost: cost, latency: now() - started, cached: cached, outcome: outcome, attempts: attempts))
    }

    /// How long until a deployment of `alias` is out of cooldown or its rate window (at least a second).
    func soonestAvailability(_ alias: String) -> Duration {
        let instant = now()
        let waits = health.withLock { health in
            deployments.indices.filter { deployments[$0].alias == alias }.map { index -> Duration in
                var wait = Duration.zero
                if let until = health[index].coolingUntil, until > instant { wait = until - instant }
                if let start = health[index].windowStart, deployments[index].requestsPerMinute.map({ health[index].windowRequests >= $0 }) ?? false {
                    wait = max(wait, .seconds(60) - (instant - start))
                }
                return wait
            }
        }
        return max(.seconds(1), waits.min() ?? configuration.cooldown)
    }

    /// Whether a deployment is cooling down now (for readiness and tests).
    public func isCoolingDown(_ name: String) -> Bool {
        let instant = now()
        return health.withLock { health in
            deployments.indices.contains { deployments[$0].name == name && (health[$0].coolingUntil.map { $0 > instant } ?? false) }
        }
    }

    // MARK: Cache

    /// The cache key of a request: the SHA-256 of its canonical JSON (model, messages, tools, settings).
    static func cacheKey(_ request: ChatRequest, partition: String? = nil) -> String {
        var fields: [String: JSONValue] = ["model": .string(request.model ?? "")]
        if let partition { fields["partition"] = .string(partition) }
        fields["messages"] = (try? JSONValue(encoding: request.messages)) ?? .null
        fields["tools"] = (try? JSONValue(encoding: request.tools)) ?? .null
        fields["toolChoice"] = (try? JSONValue(encoding: request.toolChoice)) ?? .null
        fields["settings"] = .array([request.temperature.map(JSONValue.number) ?? .null, request.topP.map(JSONValue.number) ?? .null,
                                     request.maxTokens.map { .number(Double($0)) } ?? .null, .array(request.stop.map(JSONValue.string)),
                                     request.seed.map { .number(Double($0)) } ?? .null, .string("\(String(describing: request.responseFormat))"),
                                     .string("\(String(describing: request.reasoning))"), .object(request.providerOptions)])
        let digest = SHA256.hash(data: Data(JSONValue.object(fields).description.utf8))
        return "llm:response:" + digest.hexString
    }

    /// The events that replay a whole response as a stream.
    static func events(replaying response: ChatResponse) -> [ChatStreamEvent] {
        var events: [ChatStreamEvent] = [.start(id: response.id, model: response.model)]
        for part in response.message.content {
            switch part {
            case .text(let text): events.append(.textDelta(text))
            case .reasoning(let text, let signature, _): events.append(.reasoningDelta(text, signature: signature))
            default: continue
            }
        }
        for (index, call) in response.toolCalls.enumerated() {
            events.append(.toolCallDelta(ToolCallDelta(index: index, id: call.id, name: call.name, arguments: call.arguments)))
        }
        events.append(.usage(response.usage))
        events.append(.finish(response.finishReason))
        return events
    }
}
