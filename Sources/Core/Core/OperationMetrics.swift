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
