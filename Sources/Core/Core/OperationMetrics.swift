import Logging
import Metrics

/// The counters and timer of a portable type's operations, made once per operation rather than
/// looked up on every call: `nimbus_<domain>_operations_total{driver, operation, result}` and
/// `nimbus_<domain>_duration_seconds{driver, operation}`.
///
/// Dimensions are only the driver's provider name and the fixed operation names, never
/// caller-supplied strings, so the number of series is bounded.
///
/// ```swift
/// let metrics = OperationMetrics(domain: "cache", driver: driver.provider, operations: ["get", "set"])
/// metrics.record("get", ok: true, since: start)
/// ```
public struct OperationMetrics: Sendable {
    private let counters: [String: (ok: Counter, error: Counter)]
    private let timers: [String: Timer]

    /// Makes the metrics of `operations` for one driver of `domain`.
    public init(domain: String, driver: String, operations: [String]) {
        var counters: [String: (ok: Counter, error: Counter)] = [:]
        var timers: [String: Timer] = [:]
        for operation in operations {
            counters[operation] = (
                Counter(label: "nimbus_\(domain)_operations_total", dimensions: [("driver", driver), ("operation", operation), ("result", "ok")]),
                Counter(label: "nimbus_\(domain)_operations_total", dimensions: [("driver", driver), ("operation", operation), ("result", "error")])
            )
            timers[operation] = Timer(label: "nimbus_\(domain)_duration_seconds", dimensions: [("driver", driver), ("operation", operation)])
        }
        self.counters = counters
        self.timers = timers
    }

    /// Counts one call of `operation` and records how long it took; unknown operations are ignored.
    public func record(_ operation: String, ok: Bool, since start: ContinuousClock.Instant) {
        if let pair = counters[operation] { (ok ? pair.ok : pair.error).increment() }
        timers[operation]?.recordNanoseconds((ContinuousClock.now - start).nimbusNanoseconds)
    }
}

/// The one way a portable type runs a driver call: refuse it after `close()`, retry it under a
/// policy, wrap its errors once, log failed attempts (at debug), count and time it.
///
/// ```swift
/// let calls = PortableCalls(domain: "cache", provider: driver.provider, operations: ["get"], logger: logger)
/// let value = try await calls.run("get", retry: configuration.retry, closed: isClosed) { try await driver.get(keys) }
/// ```
public struct PortableCalls: Sendable {
    /// The domain (`cache`, `messaging`): the metric names' middle and the errors' prefix.
    public let domain: String
    /// The driver's provider name.
    public let provider: String
    private let metrics: OperationMetrics
    private let logger: Logger

    /// Makes the calls of one driver.
    public init(domain: String, provider: String, operations: [String], logger: Logger) {
        self.domain = domain
        self.provider = provider
        self.metrics = OperationMetrics(domain: domain, driver: provider, operations: operations)
        self.logger = logger
    }

    /// Runs `body` under `retry` (`.none` for calls that are not idempotent).
    /// - Throws: `failedPrecondition` when `closed`; otherwise the body's error, wrapped as a `NimbusError`.
    public func run<T: Sendable>(_ operation: String, retry: RetryPolicy, closed: Bool, _ body: @Sendable () async throws -> T) async throws -> T {
        guard !closed else { throw NimbusError(.failedPrecondition, "\(domain) (\(provider)) is closed; open a new one") }
        let start = ContinuousClock.now
        do {
            let value = try await retry.run { attempt in
                do { return try await body() }
                catch {
                    let wrapped = NimbusError.wrap(error, "\(domain) \(operation) on \(provider)")
                    if attempt > 1 || wrapped.isRetryable {
                        logger.debug("\(domain) call failed", metadata: ["operation": "\(operation)", "attempt": "\(attempt)", "error": "\(wrapped)"])
                    }
                    throw wrapped
                }
            }
            metrics.record(operation, ok: true, since: start)
            return value
        } catch {
            metrics.record(operation, ok: false, since: start)
            throw error
        }
    }
}
