import NimbusCore

/// What a provider said went wrong, normalized, with its raw error kept. Adapters throw it as the
/// `underlying` of a ``NimbusError`` (see ``nimbusError(retryAfter:)``); read it back with
/// ``NimbusCore/NimbusError/llmFailure``.
///
/// ```swift
/// do { _ = try await model.chat(request) }
/// catch let error as NimbusError where error.llmFailure?.kind == .contextLengthExceeded {
///     // trim the history or switch to a larger-context model
/// }
/// ```
public struct LLMFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure, the same for every provider.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// A missing, wrong or revoked key.
        public static let unauthenticated = Kind("unauthenticated")
        /// The key may not use this model or feature.
        public static let permissionDenied = Kind("permissionDenied")
        /// Too many requests or tokens per minute; wait `retryAfter`.
        public static let rateLimited = Kind("rateLimited")
        /// The account is out of credit or quota: retrying will not help.
        public static let quotaExceeded = Kind("quotaExceeded")
        /// The prompt plus the reply do not fit the model's context window.
        public static let contextLengthExceeded = Kind("contextLengthExceeded")
        /// A safety system refused the prompt.
        public static let contentFiltered = Kind("contentFiltered")
        /// The request is malformed or asks for something the model does not do.
        public static let invalidRequest = Kind("invalidRequest")
        /// The model does not exist (or is not deployed).
        public static let modelNotFound = Kind("modelNotFound")
        /// The provider is overloaded (Anthropic 529, 503).
        public static let overloaded = Kind("overloaded")
        /// The provider failed (5xx) or could not be reached.
        public static let unavailable = Kind("unavailable")
        /// No answer in time.
        public static let timeout = Kind("timeout")
        /// The provider answered something this adapter cannot read.
        public static let malformedResponse = Kind("malformedResponse")

        public var description: String { name }

        /// The portable error code for this kind.
        public var code: NimbusError.Code {
            switch self {
            case .unauthenticated: .unauthenticated
            case .permissionDenied: .permissionDenied
            case .rateLimited, .quotaExceeded: .resourceExhausted
            case .contextLengthExceeded, .invalidRequest: .invalidArgument
            case .contentFiltered: .failedPrecondition
            case .modelNotFound: .notFound
            case .overloaded, .unavailable: .unavailable
            case .timeout: .deadlineExceeded
            case .malformedResponse: .dataLoss
            default: .internal
            }
        }
    }

    /// The normalized kind.
    public var kind: Kind
    /// The provider (`openai`, `anthropic`...).
    public var provider: String
    /// The HTTP status, if the failure came as one.
    public var status: Int?
    /// The provider's error type (`invalid_request_error`, `overloaded_error`, `RESOURCE_EXHAUSTED`).
    public var providerType: String?
    /// The provider's error code (`context_length_exceeded`, `rate_limit_exceeded`).
    public var providerCode: String?
    /// The provider's message.
    public var message: String
    /// The provider's error body as received (truncated to 4 KiB).
    public var rawBody: String?

    /// Creates a failure.
    public init(kind: Kind, provider: String, status: Int? = nil, providerType: String? = nil, providerCode: String? = nil,
                message: String, rawBody: String? = nil) {
        self.kind = kind
        self.provider = provider
        self.status = status
        self.providerType = providerType
        self.providerCode = providerCode
        self.message = message
        self.rawBody = rawBody.map { String($0.prefix(4096)) }
    }

    public var description: String {
        var text = "\(provider) \(kind)"
        if let status { text += " (HTTP \(status))" }
        if let providerCode { text += " [\(providerCode)]" } else if let providerType { text += " [\(providerType)]" }
        return text + ": \(message)"
    }

    /// The ``NimbusError`` to throw: the kind's code, a message with what to do next, this failure as
    /// `underlying`, and the wait the provider asked for.
    public func nimbusError(retryAfter: Duration? = nil) -> NimbusError {
        let advice: String
        switch kind {
        case .unauthenticated: advice = "; check the API key"
        case .rateLimited: advice = "; slow down or retry later"
        case .quotaExceeded: advice = "; the account is out of quota or credit — retrying will not help"
        case .contextLengthExceeded: advice = "; shorten the conversation or use a model with a larger context window"
        case .modelNotFound: advice = "; check the model name (`nimbus llm models` lists them)"
        default: advice = ""
        }
        let retryable: Bool? = switch kind {
        case .quotaExceeded, .contentFiltered, .contextLengthExceeded: false
        case .rateLimited, .overloaded, .unavailable, .timeout: true
        default: nil
        }
        return NimbusError(kind.code, description + advice, underlying: self, retryAfter: retryAfter, retryable: retryable)
    }

    /// The kind a provider's HTTP status suggests when its body says nothing more specific.
    public static func kind(forStatus status: Int) -> Kind {
        switch status {
        case 401: .unauthenticated
        case 403: .permissionDenied
        case 404: .modelNotFound
        case 408, 504: .timeout
        case 413: .contextLengthExceeded
        case 429: .rateLimited
        case 503, 529: .overloaded
        case 400..<500: .invalidRequest
        default: .unavailable
        }
    }

    /// Whether a provider's message says the context window was exceeded (providers disagree on codes,
    /// and some only say so in words).
    public static func mentionsContextLength(_ message: String) -> Bool {
        let lowered = message.lowercased()
        return ["context_length_exceeded", "context length", "context window", "maximum context", "too many tokens",
                "prompt is too long", "input is too long", "exceeds the maximum number of tokens", "token count"]
            .contains { lowered.contains($0) }
    }
}

extension NimbusError {
    /// The provider failure behind this error, if an LLM adapter threw it.
    public var llmFailure: LLMFailure? { underlying as? LLMFailure }
}
