import NimbusCore
import Synchronization

/// Stops calling a dependency that is failing, so it can recover and callers fail fast
/// (resilience4j's circuit breaker).
///
/// - **Closed**: calls go through; outcomes are recorded in a sliding window — the last *n* calls
///   (``Configuration/Window/count(_:)``) or the last *n* seconds (``Configuration/Window/time(_:)``).
///   Once the window holds ``Configuration/minimumCalls`` outcomes and the failure rate or the
///   slow-call rate reaches its threshold, the breaker opens.
/// - **Open**: calls fail at once with `unavailable` and a `retryAfter` of the time left, for
///   ``Configuration/openDuration``.
/// - **Half-open**: then ``Configuration/halfOpenProbes`` calls are let through; when they have all
///   finished, the breaker closes if their rates are under the thresholds, else opens again.
///
/// Which errors count as failures is ``Configuration/isFailure``: by default every error except
/// cancellation and the caller's own mistakes (`invalidArgument`, `notFound`, `alreadyExists`,
/// `failedPrecondition`, `permissionDenied`, `unauthenticated`) — a 404 says nothing about the
/// dependency's health.
///
/// ```swift
/// let breaker = CircuitBreaker(name: "geo", configuration: .init(
///     window: .count(20), minimumCalls: 10, failureRateThreshold: 0.5,
///     slowCallDuration: .seconds(2), openDuration: .seconds(30), halfOpenProbes: 3,
///     onEvent: { event in logger.info("\(event)") }))
/// let place = try await breaker.execute { try await geo.lookup(ip) }
/// ```
public final class CircuitBreaker: ResilienceStrategy {
    /// The breaker's settings.
    public struct Configuration: Sendable {
        /// What the failure and slow-call rates are computed over.
        public enum Window: Sendable, Equatable {
            /// The last `n` calls.
            case count(Int)
            /// The calls of the last `n` whole seconds.
            case time(seconds: Int)
        }
        /// The sliding window.
        public var window: Window
        /// Outcomes the window must hold before a rate can open the breaker.
        public var minimumCalls: Int
        /// Failure rate (0...1) at or above which the breaker opens.
        public var failureRateThreshold: Double
        /// Slow-call rate (0...1) at or above which the breaker opens; `1` with no slow calls never trips.
        public var slowCallRateThreshold: Double
        /// A call that takes at least this long is slow (whether it succeeded or not).
        public var slowCallDuration: Duration
        /// How long the breaker stays open before letting probes through.
        public var openDuration: Duration
        /// Calls let through while half-open; their outcomes decide.
        public var halfOpenProbes: Int
        /// Which errors count as failures of the dependency.
        public var isFailure: @Sendable (any Error) -> Bool
        /// Called for every state change and rejected call (on the caller's task; keep it short).
        public var onEvent: (@Sendable (Event) -> Void)?

        /// Creates settings; the defaults are resilience4j's.
        public init(window: Window = .count(100), minimumCalls: Int = 100, failureRateThreshold: Double = 0.5,
                    slowCallRateThreshold: Double = 1, slowCallDuration: Duration = .seconds(60),
                    openDuration: Duration = .seconds(60), halfOpenProbes: Int = 10,
                    isFailure: @escaping @Sendable (any Error) -> Bool = CircuitBreaker.defaultIsFailure,
                    onEvent: (@Sendable (Event) -> Void)? = nil) {
            self.window = window; self.minimumCalls = minimumCalls; self.failureRateThreshold = failureRateThreshold
            self.slowCallRateThreshold = slowCallRateThreshold; self.slowCallDuration = slowCallDuration
            self.openDuration = openDuration; self.halfOpenProbes = halfOpenProbes; self.isFailure = isFailure; self.onEvent = onEvent
        }
    }

    /// The breaker's state.
    public enum State: String, Sendable, Equatable, CustomStringConvertible {
        /// Calls go through.
        case closed
        /// Calls are refused.
        case open
        /// A few probe calls go through.
        case halfOpen = "half-open"
        /// Forced open by an operator until ``reset()``.
        case forcedOpen = "forced-open"
        public var description: String { rawValue }
    }

    /// Something the breaker did.
    public enum Event: Sendable, Equatable, CustomStringConvertible {
        /// The state changed; `failureRate` and `slowCallRate` are the rates that caused it, if any.
        case transition(from: State, to: State, failureRate: Double?, slowCallRate: Double?)
        /// A call was refused because the breaker is open.
        case rejected(State)

        public var description: String {
            switch self {
            case .transition(let from, let to, let failure, let slow):
                let rates = [failure.map { "failure rate \(Int(($0 * 100).rounded()))%" }, slow.map { "slow-call rate \(Int(($0 * 100).rounded()))%" }]
                    .compactMap { $0 }.joined(separator: ", ")
                return "\(from) → \(to)" + (rates.isEmpty ? "" : " (\(rates))")
            case .rejected(let state): return "call rejected (\(state))"
            }
        }
    }

    /// The rates of the current window.
    public struct Metrics: Sendable, Equatable {
        /// Outcomes in the window.
        public var calls: Int
        /// Failed outcomes in the window.
        public var failures: Int
        /// Slow outcomes in the window.
        public var slowCalls: Int
        /// `failures / calls`, or `nil` below the minimum number of calls.
        public var failureRate: Double?
        /// `slowCalls / calls`, or `nil` below the minimum number of calls.
        public var slowCallRate: Double?
    }

    /// The default ``Configuration/isFailure``: not cancellation, not the caller's own mistakes.
    public static let defaultIsFailure: @Sendable (any Error) -> Bool = { error in
        if error is CancellationError { return false }
        guard let code = (error as? NimbusError)?.code else { return true }
        switch code {
        case .invalidArgument, .notFound, .alreadyExists, .failedPrecondition, .permissionDenied, .unauthenticated, .canceled: return false
        default: return true
        }
    }

    /// The name in errors and events (`payments`, `geo-api`).
    public let name: String
    /// The settings.
    public let configuration: Configuration
    private let clock: NimbusClock
    private let state: Mutex<Machine>

    /// Creates a closed breaker; the clock is for tests.
    public init(name: String, configuration: Configuration = .init(), clock: NimbusClock = .continuous) {
        self.name = name
        var configuration = configuration
        configuration.minimumCalls = max(1, configuration.minimumCalls)
        configuration.halfOpenProbes = max(1, configuration.halfOpenProbes)
        self.configuration = configuration
        self.clock = clock
        self.state = Mutex(Machine(window: OutcomeWindow(configuration.window)))
    }

    /// The current state (an open breaker whose period is over reads as half-open).
    public var currentState: State {
        let now = clock.offset
        return state.withLock { machine in
            if machine.state == .open, let until = machine.openUntil, now >= until { return .halfOpen }
            return machine.state
        }
    }

    /// The closed-state window's counts and rates.
    public var metrics: Metrics {
        let now = clock.offset
        return state.withLock { machine in
            let counts = machine.window.counts(now: now)
            return rates(counts)
        }
    }

    public func execute<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let permit = try acquirePermission()
        let start = clock.offset
        do {
            let value = try await operation()
            record(permit, failed: false, duration: clock.offset - start)
            return value
        } catch {
            if configuration.isFailure(error) {
                record(permit, failed: true, duration: clock.offset - start)
            } else {
                release(permit)
            }
            throw error
        }
    }

    /// A call the breaker let through: report its outcome with ``record(_:failed:duration:)`` or give it
    /// back with ``release(_:)``. For callers that cannot wrap the call in ``execute(_:)``.
    public struct Permit: Sendable {
        let generation: Int
        let halfOpen: Bool
    }

    /// Asks to make one call. - Throws: `unavailable` with a `retryAfter` while the breaker is open.
    public func acquirePermission() throws -> Permit {
        let now = clock.offset
        var events: [Event] = []
        let result: Result<Permit, NimbusError> = state.withLock { machine in
            switch machine.state {
            case .closed:
                return .success(Permit(generation: machine.generation, halfOpen: false))
            case .forcedOpen:
                events.append(.rejected(.forcedOpen))
                return .failure(NimbusError(.unavailable, "circuit breaker '\(name)' is forced open by an operator; call reset() to close it"))
            case .open:
                if let until = machine.openUntil, now < until {
                    events.append(.rejected(.open))
                    return .failure(NimbusError(.unavailable, "circuit breaker '\(name)' is open after repeated failures; calls resume in \((until - now).nimbusFormatted)",
                                                retryAfter: until - now))
                }
                events.append(machine.moveTo(.halfOpen, now: now))
                fallthrough
            case .halfOpen:
                guard machine.probesStarted < configuration.halfOpenProbes else {
                    events.append(.rejected(.halfOpen))
                    return .failure(NimbusError(.unavailable, "circuit breaker '\(name)' is half-open and its \(configuration.halfOpenProbes) probe calls are under way; try again shortly",
                                                retryAfter: .seconds(1)))
                }
                machine.probesStarted += 1
                return .success(Permit(generation: machine.generation, halfOpen: true))
            }
        }
        emit(events)
        return try result.get()
    }

    /// Reports the outcome of a permitted call.
    public func record(_ permit: Permit, failed: Bool, duration: Duration) {
        let now = clock.offset
        let slow = duration >= configuration.slowCallDuration
        var events: [Event] = []
        state.withLock { machine in
            // An outcome from before the last state change says nothing about the current state.
            guard permit.generation == machine.generation else { return }
            if permit.halfOpen {
                machine.probes.append((failed, slow))
                guard machine.probes.count >= configuration.halfOpenProbes else { return }
                let counts = OutcomeWindow.Counts(calls: machine.probes.count, failures: machine.probes.filter(\.0).count,
                                                  slow: machine.probes.filter(\.1).count)
                let rates = rates(counts, minimum: 1)
                if trips(rates) {
                    events.append(machine.moveTo(.open, now: now, until: now + configuration.openDuration, rates: rates))
                } else {
                    events.append(machine.moveTo(.closed, now: now, rates: rates))
                }
            } else if machine.state == .closed {
                machine.window.record(failed: failed, slow: slow, now: now)
                let rates = rates(machine.window.counts(now: now))
                if trips(rates) {
                    events.append(machine.moveTo(.open, now: now, until: now + configuration.openDuration, rates: rates))
                }
            }
        }
        emit(events)
    }

    /// Gives back a permit whose call ended in an error that is not a failure (it frees a half-open probe).
    public func release(_ permit: Permit) {
        guard permit.halfOpen else { return }
        state.withLock { machine in
            if permit.generation == machine.generation, machine.probesStarted > 0 { machine.probesStarted -= 1 }
        }
    }

    /// Opens the breaker until ``reset()`` (an operator's switch).
    public func forceOpen() {
        let now = clock.offset
        let event = state.withLock { $0.moveTo(.forcedOpen, now: now) }
        emit([event])
    }

    /// Closes the breaker and clears its window.
    public func reset() {
        let now = clock.offset
        let event = state.withLock { $0.moveTo(.closed, now: now) }
        emit([event])
    }

    private func rates(_ counts: OutcomeWindow.Counts, minimum: Int? = nil) -> Metrics {
        let enough = counts.calls >= (minimum ?? configuration.minimumCalls)
        return Metrics(calls: counts.calls, failures: counts.failures, slowCalls: counts.slow,
                       failureRate: enough ? Double(counts.failures) / Double(counts.calls) : nil,
                       slowCallRate: enough ? Double(counts.slow) / Double(counts.calls) : nil)
    }

    private func trips(_ metrics: Metrics) -> Bool {
        if let failure = metrics.failureRate, failure >= configuration.failureRateThreshold { return true }
        if let slow = metrics.slowCallRate, slow > 0, slow >= configuration.slowCallRateThreshold { return true }
        return false
    }

    private func emit(_ events: [Event]) {
        guard let onEvent = configuration.onEvent else { return }
        for event in events { onEvent(event) }
    }

    private struct Machine {
        var state: State = .closed
        var generation = 0
        var openUntil: Duration?
        var probesStarted = 0
        var probes: [(Bool, Bool)] = []
        var window: OutcomeWindow

        mutating func moveTo(_ next: State, now: Duration, until: Duration? = nil, rates: Metrics? = nil) -> Event {
            let previous = state
            state = next
            generation += 1
            openUntil = until
            probesStarted = 0
            probes = []
            window.clear()
            return .transition(from: previous, to: next, failureRate: rates?.failureRate, slowCallRate: rates?.slowCallRate)
        }
    }
}

/// The closed state's sliding window: a ring of the last n outcomes, or per-second buckets of the last n seconds.
struct OutcomeWindow {
    struct Counts { var calls = 0, failures = 0, slow = 0 }
    private struct Bucket { var second: Int64 = -1; var counts = Counts() }

    private let kind: CircuitBreaker.Configuration.Window
    private var ring: [(Bool, Bool)] = []
    private var next = 0
    private var ringCounts = Counts()
    private var buckets: [Bucket] = []

    init(_ kind: CircuitBreaker.Configuration.Window) {
        switch kind {
        case .count(let n): self.kind = .count(max(1, n))
        case .time(let seconds): self.kind = .time(seconds: max(1, seconds))
        }
        if case .time(let seconds) = self.kind { buckets = Array(repeating: Bucket(), count: seconds) }
    }

    mutating func record(failed: Bool, slow: Bool, now: Duration) {
        switch kind {
        case .count(let size):
            if ring.count < size {
                ring.append((failed, slow))
            } else {
                let (oldFailed, oldSlow) = ring[next]
                ringCounts.calls -= 1
                if oldFailed { ringCounts.failures -= 1 }
                if oldSlow { ringCounts.slow -= 1 }
                ring[next] = (failed, slow)
            }
            ringCounts.calls += 1
            if failed { ringCounts.failures += 1 }
            if slow { ringCounts.slow += 1 }
            next = (next + 1) % size
        case .time(let seconds):
            let second = now.components.seconds
            let index = Int(second % Int64(seconds))
            if buckets[index].second != second { buckets[index] = Bucket(second: second) }
            buckets[index].counts.calls += 1
            if failed { buckets[index].counts.failures += 1 }
            if slow { buckets[index].counts.slow += 1 }
        }
    }

    func counts(now: Duration) -> Counts {
        switch kind {
        case .count:
            return ringCounts
        case .time(let seconds):
            let current = now.components.seconds
            var total = Counts()
            for bucket in buckets where bucket.second >= 0 && current - bucket.second < Int64(seconds) {
                total.calls += bucket.counts.calls
                total.failures += bucket.counts.failures
                total.slow += bucket.counts.slow
            }
            return total
        }
    }

    mutating func clear() {
        ring = []
        next = 0
        ringCounts = Counts()
        for index in buckets.indices { buckets[index] = Bucket() }
    }
}
