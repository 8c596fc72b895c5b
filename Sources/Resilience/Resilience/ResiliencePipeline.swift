import NimbusCore

/// One step of a ``ResiliencePipeline``: runs an operation with some protection around it (a timeout,
/// retries, a circuit breaker, a bulkhead, hedging, an adaptive limit).
///
/// Strategies are values or `Sendable` classes shared by every caller of one dependency: a breaker or
/// a bulkhead counts *all* calls to that dependency, so make one per dependency and keep it.
public protocol ResilienceStrategy: Sendable {
    /// Runs `operation` under this strategy's protection.
    func execute<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T
}

/// Strategies composed in order, the first one outermost (Polly v8's resilience pipeline).
///
/// The usual order, outside in: a total timeout, retries, a circuit breaker, a bulkhead or adaptive
/// limit, and a per-attempt timeout — so each retry is counted by the breaker and bounded on its own.
///
/// ```swift
/// let breaker = CircuitBreaker(name: "payments", configuration: .init(failureRateThreshold: 0.5))
/// let pipeline = ResiliencePipeline([
///     Timeout(.seconds(10)),                                   // whole call, retries included
///     Retry(RetryPolicy(maxAttempts: 3)),
///     breaker,
///     Bulkhead(name: "payments", configuration: .init(maxConcurrentCalls: 32)),
///     Timeout(.seconds(2)),                                    // each attempt
/// ])
/// let receipt = try await pipeline.execute(fallback: { _ in .queued }) { try await payments.charge(order) }
/// ```
public struct ResiliencePipeline: ResilienceStrategy {
    /// The strategies, outermost first.
    public let strategies: [any ResilienceStrategy]

    /// Composes `strategies`, the first one outermost.
    public init(_ strategies: [any ResilienceStrategy]) { self.strategies = strategies }

    /// A pipeline that adds nothing.
    public static let empty = ResiliencePipeline([])

    public func execute<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        var wrapped = operation
        for strategy in strategies.reversed() {
            let inner = wrapped
            wrapped = { try await strategy.execute(inner) }
        }
        return try await wrapped()
    }

    /// Runs `operation` through the pipeline; when it fails with an error `shouldFallBack` accepts,
    /// returns `fallback(error)` instead (a cached value, a default, a degraded answer).
    /// Cancellation of the caller is never replaced by a fallback.
    public func execute<T: Sendable>(
        fallback: @Sendable (any Error) async throws -> T,
        when shouldFallBack: @Sendable (any Error) -> Bool = { _ in true },
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        do {
            return try await execute(operation)
        } catch {
            if error is CancellationError || Task.isCancelled || !shouldFallBack(error) { throw error }
            return try await fallback(error)
        }
    }
}

/// Retries through a ``RetryPolicy`` (exponential backoff with jitter, `Retry-After`, an optional
/// shared ``RetryBudget``) — the same policy type every Nimbus client uses.
///
/// ```swift
/// let retry = Retry(RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(50)), budget: RetryBudget())
/// ```
public struct Retry: ResilienceStrategy {
    /// When and how long to wait.
    public let policy: RetryPolicy
    /// A bucket shared by the callers of one dependency, or `nil`.
    public let budget: RetryBudget?
    let clock: NimbusClock

    /// Creates the strategy; the clock is for tests.
    public init(_ policy: RetryPolicy, budget: RetryBudget? = nil, clock: NimbusClock = .continuous) {
        self.policy = policy
        self.budget = budget
        self.clock = clock
    }

    public func execute<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await policy.run(clock: clock, budget: budget) { _ in try await operation() }
    }
}

/// Bounds how long an operation may take: after `duration` it is cancelled and `deadlineExceeded` is
/// thrown. Cancellation is cooperative (the operation's awaits throw `CancellationError`); the
/// strategy returns once the operation has stopped, so nothing keeps running behind the caller.
///
/// ```swift
/// let answer = try await Timeout(.seconds(2)).execute { try await search.query(q) }
/// ```
public struct Timeout: ResilienceStrategy {
    /// The limit.
    public let duration: Duration
    let clock: NimbusClock

    /// Creates the strategy; the clock is for tests.
    public init(_ duration: Duration, clock: NimbusClock = .continuous) {
        self.duration = duration
        self.clock = clock
    }

    private enum Outcome<T: Sendable>: Sendable { case value(T), timedOut }

    public func execute<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let duration = self.duration, clock = self.clock
        return try await withThrowingTaskGroup(of: Outcome<T>.self) { group in
            group.addTask { .value(try await operation()) }
            group.addTask {
                try await clock.sleep(duration)
                return .timedOut
            }
            defer { group.cancelAll() }
            // The first child to finish decides; an error from the operation is the caller's error.
            guard let first = try await group.next() else { throw CancellationError() }
            switch first {
            case .value(let value):
                return value
            case .timedOut:
                group.cancelAll()
                throw NimbusError(.deadlineExceeded, "the operation did not finish within \(duration.nimbusFormatted); it was cancelled — raise the timeout or make the call cheaper")
            }
        }
    }
}

