import Synchronization

/// When and how long to wait before trying a failed call again.
///
/// Exponential backoff with *full jitter* (the delay is drawn uniformly from `0...min(maxDelay,
/// baseDelay × 2^(attempt-1))`), a cap on attempts, and an optional shared ``RetryBudget`` so a
/// failing dependency is not hammered by every caller at once (the AWS SDKs' "standard" mode).
/// A `retryAfter` on the error (a `Retry-After` header) replaces the computed delay.
///
/// ```swift
/// let policy = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(100), maxDelay: .seconds(5))
/// let value = try await policy.run { attempt in
///     try await client.fetch()
/// }
/// ```
public struct RetryPolicy: Sendable {
    /// Attempts in all, the first one included. `1` turns retries off.
    public var maxAttempts: Int
    /// The backoff unit: the upper bound of the first retry's delay.
    public var baseDelay: Duration
    /// The largest computed backoff.
    public var maxDelay: Duration
    /// The longest `retryAfter` the policy will wait for; a peer asking for more ends the retries,
    /// and the error (with its `retryAfter`) reaches the caller, who can schedule the call later.
    public var maxRetryAfter: Duration
    /// How the delay is randomised.
    public var jitter: Jitter
    /// Which errors are worth another attempt. Defaults to ``NimbusError/isRetryable``.
    public var isRetryable: @Sendable (any Error) -> Bool

    /// Creates a policy.
    public init(
        maxAttempts: Int = 3,
        baseDelay: Duration = .milliseconds(100),
        maxDelay: Duration = .seconds(20),
        maxRetryAfter: Duration = .seconds(60),
        jitter: Jitter = .full,
        isRetryable: @escaping @Sendable (any Error) -> Bool = RetryPolicy.defaultIsRetryable
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
        self.jitter = jitter
        self.isRetryable = isRetryable
    }

    /// No retries at all.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// `NimbusError.isRetryable`; any other error is not retried.
    public static let defaultIsRetryable: @Sendable (any Error) -> Bool = { error in
        (error as? NimbusError)?.isRetryable ?? false
    }

    /// How a computed backoff is randomised.
    public struct Jitter: Sendable {
        let apply: @Sendable (Duration) -> Duration
        /// Creates a jitter from a function of the backoff's upper bound.
        public init(_ apply: @escaping @Sendable (Duration) -> Duration) { self.apply = apply }
        /// Uniform in `0...bound` (AWS's "full jitter"): spreads retries of many callers best.
        public static let full = Jitter { bound in
            let nanos = max(0, bound.nimbusMilliseconds * 1_000_000)
            return .nanoseconds(Int64.random(in: 0...nanos))
        }
        /// No randomness: always the bound. For tests and for single callers.
        public static let none = Jitter { $0 }
    }

    /// The delay before retry number `retry` (1 for the first retry), before jitter.
    public func backoffBound(forRetry retry: Int) -> Duration {
        let exponent = min(max(retry - 1, 0), 32)
        let bound = baseDelay * (1 << exponent)
        return bound > maxDelay ? maxDelay : bound
    }

    /// What the policy decides after a failed attempt.
    public enum Decision: Sendable, Equatable {
        /// Wait this long, then try again.
        case retry(after: Duration)
        /// Give up and surface the error.
        case giveUp
    }

    /// Decides whether attempt number `attempt` (1-based) that failed with `error` is retried.
    public func decide(after error: any Error, attempt: Int) -> Decision {
        guard attempt < maxAttempts, !(error is CancellationError), isRetryable(error) else { return .giveUp }
        if let retryAfter = (error as? NimbusError)?.retryAfter {
            return retryAfter > maxRetryAfter ? .giveUp : .retry(after: retryAfter)
        }
        return .retry(after: jitter.apply(backoffBound(forRetry: attempt)))
    }

    /// Runs `operation` until it succeeds, the policy gives up, the budget is empty or the task is
    /// cancelled. The closure receives the 1-based attempt number.
    public func run<T: Sendable, C: Clock<Duration>>(
        clock: C,
        budget: RetryBudget? = nil,
        _ operation: (Int) async throws -> T
    ) async throws -> T {
        var attempt = 1
        var lastRetryCost = 0
        while true {
            try Task.checkCancellation()
            do {
                let value = try await operation(attempt)
                budget?.recordSuccess(refunding: lastRetryCost)
                return value
            } catch {
                guard case .retry(let delay) = decide(after: error, attempt: attempt) else { throw error }
                if let budget {
                    let cost = budget.cost(of: error)
                    guard budget.withdraw(cost) else { throw error }
                    lastRetryCost = cost
                }
                try await clock.sleep(for: delay)
                attempt += 1
            }
        }
    }

    /// ``run(clock:budget:_:)`` on the continuous clock.
    public func run<T: Sendable>(budget: RetryBudget? = nil, _ operation: (Int) async throws -> T) async throws -> T {
        try await run(clock: ContinuousClock(), budget: budget, operation)
    }
}

/// A token bucket shared by the callers of one dependency: each retry withdraws tokens, each
/// success puts some back, and when the bucket is empty nobody retries (only first attempts go
/// out) until successes refill it. This is the AWS SDKs' "standard" retry quota.
public final class RetryBudget: Sendable {
    /// The bucket's settings.
    public struct Configuration: Sendable {
        /// Tokens when full (AWS: 500).
        public var capacity: Int
        /// Tokens one retry costs (AWS: 5).
        public var retryCost: Int
        /// Tokens one retry after a timeout costs (AWS: 10).
        public var timeoutRetryCost: Int
        /// Tokens a success without any retry adds back (AWS: 1).
        public var successIncrement: Int
        /// Creates the settings; the defaults are the AWS SDKs'.
        public init(capacity: Int = 500, retryCost: Int = 5, timeoutRetryCost: Int = 10, successIncrement: Int = 1) {
            self.capacity = capacity
            self.retryCost = retryCost
            self.timeoutRetryCost = timeoutRetryCost
            self.successIncrement = successIncrement
        }
    }

    private let configuration: Configuration
    private let tokens: Mutex<Int>

    /// Creates a full bucket.
    public init(_ configuration: Configuration = .init()) {
        self.configuration = configuration
        self.tokens = Mutex(configuration.capacity)
    }

    /// Tokens left.
    public var available: Int { tokens.withLock { $0 } }

    func cost(of error: any Error) -> Int {
        (error as? NimbusError)?.code == .deadlineExceeded ? configuration.timeoutRetryCost : configuration.retryCost
    }

    /// Takes `cost` tokens if there are that many; returns whether it did.
    public func withdraw(_ cost: Int) -> Bool {
        tokens.withLock { value in
            guard value >= cost else { return false }
            value -= cost
            return true
        }
    }

    /// Records a successful call: refunds the cost of the retry that succeeded, or adds the
    /// success increment when no retry was needed.
    public func recordSuccess(refunding cost: Int) {
        tokens.withLock { value in
            value = min(configuration.capacity, value + (cost > 0 ? cost : configuration.successIncrement))
        }
    }
}
