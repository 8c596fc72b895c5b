/// Any `Clock<Duration>` behind one concrete type: time since an origin, and sleeping. Types that
/// keep a clock (breakers, lock keep-alives) store this instead of a generic parameter, so tests
/// drive them with a `ManualClock` and production uses the continuous clock.
///
/// ```swift
/// let clock = ManualClock()
/// let breaker = CircuitBreaker(name: "x", clock: NimbusClock(clock))
/// clock.advance(by: .seconds(30))                 // the breaker's open period is over
/// ```
public struct NimbusClock: Clock {
    /// An instant on this clock: time since its origin.
    public struct Instant: InstantProtocol, Sendable, Hashable, Comparable {
        /// Time since the origin.
        public var offset: Duration
        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private let elapsed: @Sendable () -> Duration
    private let sleeper: @Sendable (Duration) async throws -> Void

    /// Wraps `clock`; its current instant becomes this clock's origin.
    public init<C: Clock<Duration>>(_ clock: C) where C: Sendable, C.Instant: Sendable {
        let origin = clock.now
        self.elapsed = { origin.duration(to: clock.now) }
        self.sleeper = { try await clock.sleep(until: clock.now.advanced(by: $0), tolerance: nil) }
    }

    /// The process's continuous clock.
    public static let continuous = NimbusClock(ContinuousClock())

    public var now: Instant { Instant(offset: elapsed()) }
    public var minimumResolution: Duration { .nanoseconds(1) }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try await sleeper(deadline.offset - elapsed())
    }

    /// Sleeps for `duration`.
    public func sleep(_ duration: Duration) async throws { try await sleeper(duration) }

    /// Time since the origin.
    public var offset: Duration { elapsed() }
}
