import CoreMetrics
import Foundation
import Logging
import NimbusCore
import Tracing

/// What an LLM provider adapter implements: one call and one streamed call. Everything that must
/// be the same for every provider — validation, the default model, errors, metrics, traces and
/// cost — lives in ``ChatModel``.
public protocol ChatModelDriver: NimbusDriver {
    /// Answers a validated request whose `model` is set.
    func chat(_ request: ChatRequest) async throws -> ChatResponse
    /// Streams the answer to a validated request whose `model` is set. The stream must end with a
    /// `.finish` event, or throw; cancelling its consumer must cancel the provider call.
    func stream(_ request: ChatRequest) async throws -> ChatStream
}

/// An optional capability: listing the models a provider serves.
public protocol ModelListingDriver: Sendable {
    /// The models the provider serves to this account.
    func listModels() async throws -> [ModelDescriptor]
}

/// A model a provider serves.
public struct ModelDescriptor: Sendable, Hashable, Codable {
    /// The id to put in ``ChatRequest/model``.
    public var id: String
    /// Who serves it (`openai`, `library` for Ollama).
    public var ownedBy: String
    /// When it was created, if the provider says.
    public var created: Date?

    /// Creates a descriptor.
    public init(id: String, ownedBy: String, created: Date? = nil) {
        self.id = id
        self.ownedBy = ownedBy
        self.created = created
    }
}

/// A chat model: the portable type services call, over any provider's driver.
///
/// ```swift
/// let model = ChatModel(driver: OpenAIChatModelDriver(configuration: .init(apiKey: key)),
///                       configuration: .init(defaultModel: "gpt-4o-mini"))
/// let reply = try await model.chat([.user("Say hi")])
/// print(reply.text, reply.usage, model.cost(of: reply) ?? 0)
/// ```
public final class ChatModel: PortableClient {
    /// Settings that apply whatever the provider.
    public struct Configuration: Sendable {
        /// The model used when a request names none.
        public var defaultModel: String
        /// Capabilities and prices, for cost accounting.
        public var catalog: ModelCatalog
        /// Check requests before sending (see ``ChatRequest/validate()``).
        public var validatesRequests: Bool
        /// Where request, token and cost metrics go.
        public var metricsFactory: any MetricsFactory
        /// Retries of retryable failures (429 after its `Retry-After`, 5xx, dropped connections) —
        /// the only retries on the path: adapters make one request per call. A stream is retried
        /// only while opening, never after its first event.
        public var retry: RetryPolicy
        /// The model names metrics may carry as labels; any other is recorded as `unknown` (a server
        /// passes its configured names, so callers' made-up names cannot create series). `nil`: every name.
        public var metricModels: Set<String>?

        /// Creates settings.
        public init(defaultModel: String, catalog: ModelCatalog = .standard, validatesRequests: Bool = true,
                    metricsFactory: any MetricsFactory = MetricsSystem.factory,
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(8)),
                    metricModels: Set<String>? = nil) {
            self.defaultModel = defaultModel
            self.catalog = catalog
            self.validatesRequests = validatesRequests
            self.metricsFactory = metricsFactory
            self.retry = retry
            self.metricModels = metricModels
        }
    }

    private let driver: any ChatModelDriver
    /// The settings.
    public let configuration: Configuration
    private let logger: Logger

    /// Creates a model over a driver.
    public init(driver: any ChatModelDriver, configuration: Configuration, logger: Logger = Logger(label: "nimbus.llm")) {
        self.driver = driver
        self.configuration = configuration
        self.logger = logger
    }

    /// The provider's name.
    public var provider: String { driver.provider }

    /// The driver as its concrete type, for provider features the portable API does not name.
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// A model over the same driver with other settings (another default model, say).
    public func reconfigured(_ change: (inout Configuration) -> Void) -> ChatModel {
        var configuration = self.configuration
        change(&configuration)
        return ChatModel(driver: driver, configuration: configuration, logger: logger)
    }

    /// Releases the driver (its HTTP client, where it owns one).
    public func close() async throws { try await driver.close() }

    /// Answers a conversation with the default settings.
    public func chat(_ messages: [ChatMessage]) async throws -> ChatResponse {
        try await chat(ChatRequest(messages: messages))
    }

    /// Answers a request.
    /// - Throws: `NimbusError`; provider failures carry an ``LLMFailure`` (`error.llmFailure`).
    public func chat(_ request: ChatRequest) async throws -> ChatResponse {
        let request = try prepare(request)
        let model = request.model ?? configuration.defaultModel
        let started = ContinuousClock.now
        return try await withSpan("chat \(model)", ofKind: .client) { span in
            span.attributes["gen_ai.system"] = provider
            span.attributes["gen_ai.operation.name"] = "chat"
            span.attributes["gen_ai.request.model"] = model
            do {
                let response = try await configuration.retry.run { _ in try await driver.chat(request) }
                record(model: model, usage: response.usage, outcome: "ok", started: started, span: span)
                span.attributes["gen_ai.response.finish_reasons"] = [response.finishReason.description]
                return response
            } catch {
                let error = NimbusError.wrap(error, "\(provider) chat with \(model)")
                record(model: model, usage: nil, outcome: error.code.description, started: started, span: span)
                span.recordError(error)
                throw error
            }
        }
    }

    /// Streams the answer to a request. Breaking out of the loop cancels the provider call; usage and
    /// cost are recorded when the stream finishes.
    public func stream(_ request: ChatRequest) async throws -> ChatStream {
        let request = try prepare(request)
        let model = request.model ?? configuration.defaultModel
        let started = ContinuousClock.now
        let upstream: ChatStream
        do { upstream = try await configuration.retry.run { _ in try await driver.stream(request) } } catch {
            let error = NimbusError.wrap(error, "\(provider) stream with \(model)")
            record(model: model, usage: nil, outcome: error.code.description, started: started, span: nil)
            throw error
        }
        return ChatStream(observing: upstream) { StreamRecorder(model: self, modelID: model, started: started) }
    }

    /// Records a stream's usage and outcome when it ends, and turns a stream that ends without a
    /// finish event into `dataLoss`.
    final class StreamRecorder: ChatStreamObserver {
        let model: ChatModel
        let modelID: String
        let started: ContinuousClock.Instant
        var usage: Usage?
        var sawFinish = false

        init(model: ChatModel, modelID: String, started: ContinuousClock.Instant) {
            self.model = model
            self.modelID = modelID
            self.started = started
        }

        func observe(_ event: ChatStreamEvent) throws {
            switch event {
            case .usage(let latest): usage = latest
            case .finish: sawFinish = true
            default: break
            }
        }

        func finished() throws {
            try Task.checkCancellation()
            guard sawFinish else {
                let error = NimbusError(.dataLoss, "\(model.provider) ended the stream before the model finished (the connection was cut mid-reply); the partial reply is not complete")
                model.record(model: modelID, usage: usage, outcome: error.code.description, started: started, span: nil)
                throw error
            }
            model.record(model: modelID, usage: usage, outcome: "ok", started: started, span: nil)
        }

        func failed(_ error: any Error) -> any Error {
            let error = NimbusError.wrap(error, "\(model.provider) stream with \(modelID)")
            model.record(model: modelID, usage: usage, outcome: error.code.description, started: started, span: nil)
            return error
        }
    }

    /// The models the provider serves. - Throws: `unimplemented` if the adapter cannot list them.
    public func models() async throws -> [ModelDescriptor] {
        guard let lister = driver as? any ModelListingDriver else {
            throw NimbusError(.unimplemented, "the \(provider) adapter cannot list models")
        }
        do { return try await lister.listModels() } catch { throw NimbusError.wrap(error, "\(provider) list models") }
    }

    /// The cost of a response in US dollars, from the catalog (`nil` if the model's price is unknown).
    public func cost(of response: ChatResponse) -> Decimal? {
        configuration.catalog.cost(of: response.usage, model: response.model)
    }

    private func prepare(_ request: ChatRequest) throws -> ChatRequest {
        var request = request
        if request.model == nil || request.model?.isEmpty == true { request.model = configuration.defaultModel }
        if configuration.validatesRequests { try request.validate() }
        return request
    }

    func record(model: String, usage: Usage?, outcome: String, started: ContinuousClock.Instant, span: (any Span)?) {
        let factory = configuration.metricsFactory
        let label = configuration.metricModels.map { $0.contains(model) ? model : "unknown" } ?? model
        let dimensions = [("provider", provider), ("model", label)]
        Counter(label: "nimbus_llm_requests_total", dimensions: dimensions + [("outcome", outcome)], factory: factory).increment()
        Timer(label: "nimbus_llm_request_duration_seconds", dimensions: dimensions, factory: factory)
            .recordNanoseconds((ContinuousClock.now - started).nimbusNanoseconds)
        guard let usage else { return }
        for (kind, count) in [("input", usage.inputTokens), ("output", usage.outputTokens), ("cached_input", usage.cachedInputTokens),
                              ("reasoning", usage.reasoningTokens)] where count > 0 {
            Counter(label: "nimbus_llm_tokens_total", dimensions: dimensions + [("kind", kind)], factory: factory).increment(by: count)
        }
        if let cost = configuration.catalog.cost(of: usage, model: model), cost > 0 {
            FloatingPointCounter(label: "nimbus_llm_cost_usd_total", dimensions: dimensions, factory: factory)
                .increment(by: NSDecimalNumber(decimal: cost).doubleValue)
        }
        span?.attributes["gen_ai.usage.input_tokens"] = usage.inputTokens
        span?.attributes["gen_ai.usage.output_tokens"] = usage.outputTokens
        logger.debug("llm call", metadata: ["provider": "\(provider)", "model": "\(model)", "outcome": "\(outcome)",
                                           "input_tokens": "\(usage.inputTokens)", "output_tokens": "\(usage.outputTokens)"])
    }
}
