import NimbusCore
import Synchronization

/// A concurrency limit that finds itself: it grows while latency stays flat and shrinks when calls
/// queue up or fail, then refuses calls above it with `resourceExhausted` (Netflix's
/// concurrency-limits: `AIMDLimit` and `Gradient2Limit` with a simple limiter).
///
/// - ``Algorithm/aimd(_:)``: additive increase (+1 when the calls in flight reach half the limit and
///   one succeeds) and multiplicative decrease (× `backoffRatio` on a drop: an overload error or
///   a call slower than `timeout`). Simple and robust for a dependency that sheds load itself.
/// - ``Algorithm/gradient(_:)``: compares the recent latency with a long-term average; when the
///   recent one rises (queueing), the limit follows the ratio down; a small queue allowance lets it
///   probe upwards. No timeout to tune.
///
/// ```swift
/// let limit = AdaptiveConcurrencyLimit(name: "inventory", algorithm: .gradient(.init(initialLimit: 20, maxLimit: 200)))
/// let stock = try await limit.execute { try await inventory.reserve(items) }
/// ```
public final class AdaptiveConcurrencyLimit: ResilienceStrategy {
    /// How the limit moves.
    public enum Algorithm: Sendable {
        /// Additive increase, multiplicative decrease.
        case aimd(AIMD)
        /// The latency gradient (Gradient2).
        case gradient(Gradient)
    }

    /// AIMD settings.
    public struct AIMD: Sendable {
        /// The limit at start.
        public var initialLimit: Int
        /// The floor.
        public var minLimit: Int
        /// The ceiling.
        public var maxLimit: Int
        /// The factor applied on a drop (0.5...1).
        public var backoffRatio: Double
        /// A call at least this slow counts as a drop.
        public var timeout: Duration
        /// Creates settings; the defaults are Netflix's.
        public init(initialLimit: Int = 20, minLimit: Int = 20, maxLimit: Int = 200, backoffRatio: Double = 0.9, timeout: Duration = .seconds(5)) {
            self.initialLimit = initialLimit; self.minLimit = minLimit; self.maxLimit = maxLimit
            self.backoffRatio = min(1, max(0.5, backoffRatio)); self.timeout = timeout
        }
    }

    /// Gradient settings.
    public struct Gradient: Sendable {
        /// The limit at start.
        public var initialLimit: Int
        /// The floor.
        public var minLimit: Int
        /// The ceiling.
        public var maxLimit: Int
        /// How far one sample moves the limit (0...1).
        public var smoothing: Double
        /// Samples in the long-term latency average.
        public var longWindow: Int
        /// How much slower than the long-term average the recent latency may be before the limit falls.
        public var rttTolerance: Double
        /// Extra calls allowed above `limit × gradient`, so the limit can grow.
        public var queueSize: Int
        /// Creates settings; the defaults are Netflix's Gradient2Limit.
        public init(initialLimit: Int = 20, minLimit: Int = 20, maxLimit: Int = 200, smoothing: Double = 0.2,
                    longWindow: Int = 600, rttTolerance: Double = 1.5, queueSize: Int = 4) {
            self.initialLimit = initialLimit; self.minLimit = minLimit; self.maxLimit = maxLimit
            self.smoothing = min(1, max(0.01, smoothing)); self.longWindow = max(1, longWindow)
            self.rttTolerance = max(1, rttTolerance); self.queueSize = max(0, queueSize)
        }
    }

    /// The name in errors.
    public let name: String
    /// How the limit moves.
    public let algorithm: Algorithm
    /// Which errors are drops (overload signals) rather than ordinary failures.
    public let isDrop: @Sendable (any Error) -> Bool
    private let clock: NimbusClock
    private let state: Mutex<State>

    private struct State {
        var limit: Double
        var inFlight = 0
        var longRTT: Double?     // seconds, exponential average
    }

    /// The default drop signal: `resourceExhausted`, `unavailable` and `deadlineExceeded`.
    public static let defaultIsDrop: @Sendable (any Error) -> Bool = { error in
        guard let code = (error as? NimbusError)?.code else { return false }
        return code == .resourceExhausted || code == .unavailable || code == .deadlineExceeded
    }

    /// Creates the limiter; the clock is for tests.
    public init(name: String, algorithm: Algorithm = .gradient(.init()), isDrop: @escaping @Sendable (any Error) -> Bool = AdaptiveConcurrencyLimit.defaultIsDrop,
                clock: NimbusClock = .continuous) {
        self.name = name
        self.algorithm = algorithm
        self.isDrop = isDrop
        self.clock = clock
        let initial: Int
        switch algorithm {
        case .aimd(let settings): initial = min(max(settings.initialLimit, settings.minLimit), settings.maxLimit)
        case .gradient(let settings): initial = min(max(settings.initialLimit, settings.minLimit), settings.maxLimit)
        }
        self.state = Mutex(State(limit: Double(max(1, initial))))
    }

    /// The current limit.
    public var limit: Int { state.withLock { Int($0.limit) } }
    /// Calls in flight.
    public var inFlight: Int { state.withLock { $0.inFlight } }

    public func execute<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let admitted: (Bool, Int) = state.withLock { state in
            guard state.inFlight < max(1, Int(state.limit)) else { return (false, Int(state.limit)) }
            state.inFlight += 1
            return (true, state.inFlight)
        }
        guard admitted.0 else {
            throw NimbusError(.resourceExhausted, "'\(name)' is at its adaptive concurrency limit of \(admitted.1) calls; the dependency is saturated — retry later",
                              retryAfter: .milliseconds(100))
        }
        let start = clock.offset
        do {
            let value = try await operation()
            sample(rtt: clock.offset - start, inFlight: admitted.1, dropped: false)
            return value
        } catch {
            if error is CancellationError {
                state.withLock { $0.inFlight -= 1 }
            } else {
                sample(rtt: clock.offset - start, inFlight: admitted.1, dropped: isDrop(error))
            }
            throw error
        }
    }

    /// Feeds one call's latency to the algorithm and frees its slot.
    func sample(rtt: Duration, inFlight: Int, dropped: Bool) {
        let seconds = Double(rtt.components.seconds) + Double(rtt.components.attoseconds) / 1e18
        state.withLock { state in
            state.inFlight -= 1
            switch algorithm {
            case .aimd(let settings):
                if dropped || rtt >= settings.timeout {
                    state.limit = max(Double(settings.minLimit), (state.limit * settings.backoffRatio).rounded(.down))
                } else if Double(inFlight) * 2 >= state.limit {
                    state.limit = min(Double(settings.maxLimit), state.limit + 1)
                }
            case .gradient(let settings):
                if dropped {
                    state.limit = max(Double(settings.minLimit), state.limit * 0.9)
                    return
                }
                let long = state.longRTT.map { $0 + (seconds - $0) / Double(settings.longWindow) } ?? seconds
                // After a long stretch of slow calls the average decays faster, so the limit can recover.
                state.longRTT = long / seconds > 2 ? long * 0.95 : long
                // An application-limited service (few calls in flight) says nothing about the dependency.
                guard Double(inFlight) * 2 >= state.limit, seconds > 0 else { return }
                let gradient = max(0.5, min(1, settings.rttTolerance * long / seconds))
                var next = state.limit * gradient + Double(settings.queueSize)
                next = state.limit * (1 - settings.smoothing) + next * settings.smoothing
                state.limit = min(Double(settings.maxLimit), max(Double(settings.minLimit), next))
            }
        }
    }
}
