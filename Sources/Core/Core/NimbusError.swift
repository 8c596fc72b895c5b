/// The one error type every Nimbus module throws.
///
/// Adapters map their vendor's errors to a ``Code`` once, keep the vendor's raw error in
/// ``underlying``, and set ``retryAfter`` when the vendor said how long to wait. Callers
/// branch on ``code`` and never on vendor strings.
///
/// ```swift
/// do {
///     try await cache.set("k", value)
/// } catch let error as NimbusError where error.code == .unavailable {
///     logger.warning("cache down, serving without it", metadata: ["error": "\(error)"])
/// }
/// ```
public struct NimbusError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure this is, independent of the vendor.
    public var code: Code
    /// A sentence for humans: what failed and, where it helps, what to do next.
    public var message: String
    /// The vendor's or the transport's raw error, kept for diagnosis and `as(_:)`-style escape hatches.
    public var underlying: (any Error & Sendable)?
    /// How long the peer asked us to wait before trying again (a `Retry-After` header, a rate-limit reset).
    public var retryAfter: Duration?
    /// An explicit retry verdict; `nil` lets ``isRetryable`` decide from ``code``.
    public var retryable: Bool?

    /// Creates an error.
    public init(
        _ code: Code,
        _ message: String,
        underlying: (any Error & Sendable)? = nil,
        retryAfter: Duration? = nil,
        retryable: Bool? = nil
    ) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.retryAfter = retryAfter
        self.retryable = retryable
    }

    /// Whether trying the same call again may succeed.
    ///
    /// `unavailable`, `deadlineExceeded` and `resourceExhausted` are transient by default; anything
    /// the caller must fix first (bad arguments, credentials, missing resources) is not.
    public var isRetryable: Bool {
        if let retryable { return retryable }
        switch code {
        case .unavailable, .deadlineExceeded, .resourceExhausted: return true
        default: return retryAfter != nil
        }
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let retryAfter { text += " (retry after \(retryAfter.nimbusFormatted))" }
        if let underlying {
            let detail = String(describing: underlying)
            if !message.contains(detail) { text += " [underlying: \(detail)]" }
        }
        return text
    }

    public var debugDescription: String {
        "NimbusError(code: \(code), message: \(message.debugDescription), retryAfter: \(retryAfter.map { "\($0)" } ?? "nil"), underlying: \(underlying.map { String(reflecting: $0) } ?? "nil"))"
    }

    /// Wraps any error once: a `NimbusError` passes through unchanged, cancellation becomes
    /// ``Code/canceled``, anything else becomes ``Code/internal`` with the original kept as `underlying`.
    public static func wrap(_ error: any Error, _ context: @autoclosure () -> String) -> NimbusError {
        if let error = error as? NimbusError { return error }
        if error is CancellationError { return NimbusError(.canceled, "\(context()): the task was cancelled", underlying: error) }
        return NimbusError(.internal, "\(context()): \(error)", underlying: error)
    }
}

extension NimbusError {
    /// The portable error taxonomy (the gRPC/gocloud set). A struct so that codes can be added later
    /// without breaking exhaustive `switch`es in user code.
    public struct Code: Hashable, Sendable, CustomStringConvertible, Codable {
        private enum Base: String, Sendable, Codable, CaseIterable {
            case notFound, alreadyExists, invalidArgument, failedPrecondition, permissionDenied, unauthenticated
            case resourceExhausted, deadlineExceeded, unavailable, canceled, unimplemented, `internal`, dataLoss
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The resource does not exist. Check the name or id, or create it first.
        public static let notFound = Code(.notFound)
        /// The resource exists already. Use another name, or read the existing one.
        public static let alreadyExists = Code(.alreadyExists)
        /// The caller sent something invalid. Fix the arguments; retrying will not help.
        public static let invalidArgument = Code(.invalidArgument)
        /// The system is not in the state the call needs (closed client, version conflict).
        public static let failedPrecondition = Code(.failedPrecondition)
        /// The credentials are valid but not allowed to do this.
        public static let permissionDenied = Code(.permissionDenied)
        /// The credentials are missing, invalid or expired.
        public static let unauthenticated = Code(.unauthenticated)
        /// A quota or rate limit was hit, or a size limit was exceeded.
        public static let resourceExhausted = Code(.resourceExhausted)
        /// The call did not finish in time.
        public static let deadlineExceeded = Code(.deadlineExceeded)
        /// The peer could not be reached or answered that it is temporarily down.
        public static let unavailable = Code(.unavailable)
        /// The caller cancelled the call.
        public static let canceled = Code(.canceled)
        /// The adapter or peer does not support this operation.
        public static let unimplemented = Code(.unimplemented)
        /// A bug or an unexpected answer: report it.
        public static let `internal` = Code(.internal)
        /// Data was lost or corrupted.
        public static let dataLoss = Code(.dataLoss)

        /// Every code, in declaration order.
        public static var allCases: [Code] { Base.allCases.map(Code.init) }

        /// The code's name, as written in Swift (`notFound`).
        public var description: String { base.rawValue }

        /// Parses a code from its name.
        public init?(name: String) {
            guard let base = Base(rawValue: name) else { return nil }
            self.base = base
        }

        public init(from decoder: any Decoder) throws {
            let name = try decoder.singleValueContainer().decode(String.self)
            guard let base = Base(rawValue: name) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown NimbusError code \(name)"))
            }
            self.base = base
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(base.rawValue)
        }
    }
}

extension Duration {
    /// A short human form: `250ms`, `2s`, `1.5s`, `3m`.
    public var nimbusFormatted: String {
        let (seconds, attoseconds) = components
        let millis = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if millis < 1000 { return "\(millis)ms" }
        if millis % 60_000 == 0 { return "\(millis / 60_000)m" }
        if millis % 1000 == 0 { return "\(millis / 1000)s" }
        return "\(Double(millis) / 1000)s"
    }

    /// The duration in whole milliseconds, rounded down.
    public var nimbusMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// The duration in whole microseconds, rounded down.
    public var nimbusMicroseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }

    /// The duration in whole nanoseconds, saturating at `Int64.max`.
    public var nimbusNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : scaled + attoseconds / 1_000_000_000
    }

    /// The duration in seconds as a `Double`.
    public var nimbusSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
