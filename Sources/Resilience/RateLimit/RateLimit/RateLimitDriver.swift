import NimbusCore

/// What a rate-limit backend implements: atomic decisions over several policies, and a
/// concurrency limit with leased slots. The portable ``RateLimiter`` validates and prefixes keys.
///
/// A decision must be **atomic across processes**: every process sharing the backend sees the
/// same state, and a batch of requests is admitted and charged as a whole or not at all.
/// ``RateLimitAlgorithms`` holds the arithmetic every driver uses (the Redis driver's script is the
/// same arithmetic in Lua), so all drivers admit exactly the same calls.
public protocol RateLimitDriver: NimbusDriver {
    /// Decides `requests` atomically (keys are already prefixed).
    func acquire(_ requests: [RateLimitRequest]) async throws -> RateLimitDecision

    /// Forgets the state of `key` under `policy` (its quota is whole again).
    func reset(key: String, policy: RateLimitPolicy) async throws

    /// Takes one of `limit` slots of `key`, leased for `lease`.
    func acquireSlot(key: String, limit: Int, lease: Duration) async throws -> ConcurrencyDecision

    /// Gives a slot back; returns whether it was still held.
    func releaseSlot(_ slot: ConcurrencySlot) async throws -> Bool
}

/// Where a driver reads "now": microseconds on a time line that every process sharing the state agrees on.
///
/// The Redis driver reads the server's clock by default (one clock for all processes); the memory
/// driver and tests use a `Clock`.
public struct RateLimitTime: Sendable {
    /// Microseconds now.
    public let microseconds: @Sendable () -> Int64

    /// Time from a closure.
    public init(microseconds: @escaping @Sendable () -> Int64) { self.microseconds = microseconds }

    /// Time since `clock`'s current instant, offset so that windows do not all start at zero.
    public static func clock<C: Clock<Duration>>(_ clock: C, startingAt start: Int64 = 1_700_000_000_000_000) -> RateLimitTime
    where C: Sendable, C.Instant: Sendable {
        let erased = NimbusClock(clock)
        return RateLimitTime { start + erased.offset.nimbusMicroseconds }
    }

    /// The process's continuous clock.
    public static let monotonic = RateLimitTime.clock(ContinuousClock())
}

/// One key's stored state under one policy: up to three numbers, read and written by the algorithms
/// (`a`/`b`/`c` are the Redis hash fields of the same names).
public struct RateLimitCell: Sendable, Hashable {
    /// GCRA: the theoretical arrival time; token bucket: tokens; windows: the window number.
    public var a: Double?
    /// Token bucket: the last refill time; windows: the current window's count.
    public var b: Double?
    /// Sliding window: the previous window's count.
    public var c: Double?

    /// Creates a cell.
    public init(a: Double? = nil, b: Double? = nil, c: Double? = nil) { self.a = a; self.b = b; self.c = c }
}

/// The arithmetic of the four algorithms, in microseconds, shared by every driver.
///
/// `decide` reads a cell and returns the state a charge of `cost` leads to, the cell to store if the
/// decision admits the call, and how long the stored cell matters (its expiry). The Redis driver's
/// Lua script performs the same operations in the same order on the same doubles.
public enum RateLimitAlgorithms {
    /// The outcome for one request.
    public struct Outcome: Sendable, Hashable {
        /// Whether this policy admits the charge.
        public var allowed: Bool
        /// Units left: after the charge if admitted, else now.
        public var remaining: Int64
        /// Microseconds until the quota is whole.
        public var resetAfter: Int64
        /// When refused: microseconds until the charge would be admitted.
        public var retryAfter: Int64?
        /// The cell to store if the whole decision admits the call.
        public var next: RateLimitCell
        /// Microseconds the stored cell must live.
        public var ttl: Int64

        /// Creates an outcome (drivers that compute it elsewhere, such as in a server-side script).
        public init(allowed: Bool, remaining: Int64, resetAfter: Int64, retryAfter: Int64?, next: RateLimitCell, ttl: Int64) {
            self.allowed = allowed; self.remaining = remaining; self.resetAfter = resetAfter
            self.retryAfter = retryAfter; self.next = next; self.ttl = ttl
        }
    }

    static let epsilon = 1e-9

    /// Decides one request at `now` (µs) given the stored `cell`.
    public static func decide(_ policy: RateLimitPolicy, cost: Int, cell: RateLimitCell, now: Int64) -> Outcome {
        let now = Double(now), period = Double(policy.periodMicroseconds), limit = Double(policy.limit)
        let burst = Double(policy.burst), cost = Double(cost)
        switch policy.algorithm {
        case .gcra:
            let interval = period / limit, tolerance = interval * burst
            let tat = max(cell.a ?? now, now)
            let newTAT = tat + cost * interval
            if newTAT - now <= tolerance + epsilon {
                return Outcome(allowed: true, remaining: floor64((now + tolerance - newTAT) / interval), resetAfter: ceil64(newTAT - now),
                               retryAfter: nil, next: RateLimitCell(a: newTAT), ttl: ceil64(newTAT - now))
            }
            return Outcome(allowed: false, remaining: max(0, floor64((now + tolerance - tat) / interval)), resetAfter: ceil64(tat - now),
                           retryAfter: ceil64(newTAT - tolerance - now), next: cell, ttl: 0)
        case .tokenBucket:
            let interval = period / limit
            let last = cell.b ?? now
            let tokens = min(burst, (cell.a ?? burst) + max(0, now - last) / interval)
            if tokens + epsilon >= cost {
                let left = tokens - cost
                return Outcome(allowed: true, remaining: floor64(left), resetAfter: ceil64((burst - left) * interval), retryAfter: nil,
                               next: RateLimitCell(a: left, b: now), ttl: ceil64((burst - left) * interval))
            }
            return Outcome(allowed: false, remaining: floor64(tokens), resetAfter: ceil64((burst - tokens) * interval),
                           retryAfter: ceil64((cost - tokens) * interval), next: cell, ttl: 0)
        case .fixedWindow:
            let window = (now / period).rounded(.down)
            let count = cell.a == window ? (cell.b ?? 0) : 0
            let end = (window + 1) * period - now
            if count + cost <= limit {
                return Outcome(allowed: true, remaining: Int64(limit - count - cost), resetAfter: ceil64(end), retryAfter: nil,
                               next: RateLimitCell(a: window, b: count + cost), ttl: ceil64(end))
            }
            return Outcome(allowed: false, remaining: Int64(max(0, limit - count)), resetAfter: ceil64(end), retryAfter: ceil64(end),
                           next: cell, ttl: 0)
        case .slidingWindow:
            let window = (now / period).rounded(.down)
            var current = 0.0, previous = 0.0
            if let stored = cell.a {
                if stored == window { current = cell.b ?? 0; previous = cell.c ?? 0 } else if stored == window - 1 { previous = cell.b ?? 0 }
            }
            let elapsed = (now - window * period) / period
            let estimate = previous * (1 - elapsed) + current
            if estimate + cost <= limit + epsilon {
                let after = current + cost
                let reset = (window + 2) * period - now
                return Outcome(allowed: true, remaining: max(0, floor64(limit - (previous * (1 - elapsed) + after))), resetAfter: ceil64(reset),
                               retryAfter: nil, next: RateLimitCell(a: window, b: after, c: previous), ttl: ceil64(reset))
            }
            let retry: Double
            if current + cost <= limit {
                // The previous window's weight must fall to what is left: previous × (1 − f) ≤ limit − current − cost.
                retry = ((1 - (limit - current - cost) / previous) - elapsed) * period
            } else {
                // Next window, where this window's count becomes the weighted one.
                retry = ((window + 1) * period - now) + (1 - (limit - cost) / current) * period
            }
            let reset = current > 0 ? (window + 2) * period - now : (previous > 0 ? (window + 1) * period - now : 0)
            return Outcome(allowed: false, remaining: max(0, floor64(limit - estimate)), resetAfter: ceil64(reset),
                           retryAfter: max(1, ceil64(retry)), next: cell, ttl: 0)
        }
    }

    static func floor64(_ value: Double) -> Int64 { Int64((value + epsilon).rounded(.down)) }
    static func ceil64(_ value: Double) -> Int64 { Int64(max(0, value - epsilon).rounded(.up)) }

    /// The portable state of one outcome.
    public static func state(_ outcome: Outcome, policy: RateLimitPolicy, charged: Bool, cost: Int) -> RateLimitState {
        // In a refused batch an admitting policy was not charged: its units are still there.
        let remaining = outcome.allowed && !charged ? outcome.remaining + Int64(cost) : outcome.remaining
        return RateLimitState(policy: policy.name, allowed: outcome.allowed, limit: policy.limit, remaining: Int(min(remaining, Int64(policy.burst))),
                              resetAfter: .microseconds(outcome.resetAfter), retryAfter: outcome.retryAfter.map { .microseconds($0) })
    }
}
