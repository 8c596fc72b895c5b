import NimbusCore

/// How many calls (or units of cost: tokens, bytes) a key may spend per period, and by which algorithm.
///
/// ```swift
/// let perSecond = RateLimitPolicy.gcra("api", limit: 10, per: .seconds(1), burst: 20)
/// let perMinute = RateLimitPolicy.slidingWindow("rpm", limit: 600, per: .seconds(60))
/// let tokens    = RateLimitPolicy.tokenBucket("tpm", capacity: 100_000, refill: 100_000, per: .seconds(60))
/// let parsed    = try RateLimitPolicy.parse("gcra:100/1m;burst=20")
/// ```
public struct RateLimitPolicy: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The algorithms.
    public enum Algorithm: String, Sendable, Hashable, Codable, CaseIterable {
        /// A bucket of `burst` tokens refilled at `limit` per `period`; a call takes `cost` tokens.
        case tokenBucket = "token-bucket"
        /// The generic cell rate algorithm (redis-cell, Stripe): one timestamp per key; `limit` per
        /// `period` evenly spaced, with up to `burst` at once. Same admissions as the token bucket, less state.
        case gcra
        /// At most `limit` per calendar window of `period` (cheap; allows 2× at a window edge).
        case fixedWindow = "fixed-window"
        /// The current window's count plus the previous window's, weighted by how much of it still
        /// overlaps the last `period` (Cloudflare's approximation of a sliding log; no edge bursts).
        case slidingWindow = "sliding-window"
    }

    /// The policy's name: part of the storage key, and the name in the `RateLimit` headers (`rpm`, `api`).
    public var name: String
    /// The algorithm.
    public var algorithm: Algorithm
    /// Units per period.
    public var limit: Int
    /// The period.
    public var period: Duration
    /// The most units available at once (token bucket capacity, GCRA burst); windows use `limit`.
    public var burst: Int

    /// Creates a policy. Prefer the named constructors.
    public init(name: String, algorithm: Algorithm, limit: Int, period: Duration, burst: Int? = nil) {
        self.name = name
        self.algorithm = algorithm
        self.limit = limit
        self.period = period
        switch algorithm {
        case .tokenBucket, .gcra: self.burst = burst ?? limit
        case .fixedWindow, .slidingWindow: self.burst = limit
        }
    }

    /// A token bucket holding `capacity` tokens, refilled with `refill` tokens per `period`.
    public static func tokenBucket(_ name: String, capacity: Int, refill: Int, per period: Duration) -> RateLimitPolicy {
        RateLimitPolicy(name: name, algorithm: .tokenBucket, limit: refill, period: period, burst: capacity)
    }

    /// GCRA: `limit` per `period`, up to `burst` at once (default `limit`).
    public static func gcra(_ name: String, limit: Int, per period: Duration, burst: Int? = nil) -> RateLimitPolicy {
        RateLimitPolicy(name: name, algorithm: .gcra, limit: limit, period: period, burst: burst)
    }

    /// A fixed window of `limit` per `period`.
    public static func fixedWindow(_ name: String, limit: Int, per period: Duration) -> RateLimitPolicy {
        RateLimitPolicy(name: name, algorithm: .fixedWindow, limit: limit, period: period)
    }

    /// A sliding window of `limit` per `period`.
    public static func slidingWindow(_ name: String, limit: Int, per period: Duration) -> RateLimitPolicy {
        RateLimitPolicy(name: name, algorithm: .slidingWindow, limit: limit, period: period)
    }

    /// The period in microseconds (what drivers compute in).
    public var periodMicroseconds: Int64 { period.nimbusMicroseconds }

    /// The largest cost one call may ask for: more could never be admitted.
    public var maximumCost: Int { burst }

    /// Checks the numbers. - Throws: `invalidArgument` naming what is wrong.
    public func validate() throws {
        guard !name.isEmpty, name.count <= 64, name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || "-_.".unicodeScalars.contains($0)) }) else {
            throw NimbusError(.invalidArgument, "rate-limit policy name '\(name)' must be 1–64 characters of letters, digits, '-', '_' or '.'")
        }
        guard limit >= 1, limit <= 1_000_000_000 else {
            throw NimbusError(.invalidArgument, "rate-limit policy '\(name)': limit \(limit) must be between 1 and 1e9")
        }
        guard burst >= 1, burst <= 1_000_000_000 else {
            throw NimbusError(.invalidArgument, "rate-limit policy '\(name)': burst \(burst) must be between 1 and 1e9")
        }
        guard period >= .milliseconds(1), period <= .seconds(366 * 86_400) else {
            throw NimbusError(.invalidArgument, "rate-limit policy '\(name)': period \(period.nimbusFormatted) must be between 1ms and a year")
        }
    }

    /// `gcra:100/1m;burst=20` — the form `parse` reads and the CLI prints.
    public var description: String {
        let base = "\(algorithm.rawValue):\(limit)/\(period.nimbusFormatted)"
        let hasBurst = (algorithm == .tokenBucket || algorithm == .gcra) && burst != limit
        return hasBurst ? base + ";burst=\(burst)" : base
    }

    /// Parses `[ALGORITHM:]LIMIT/PERIOD[;burst=N]` (`100/1m`, `gcra:10/1s;burst=20`,
    /// `sliding-window:600/1m`); the algorithm defaults to GCRA, the name to `default`.
    public static func parse(_ text: String, name: String = "default") throws -> RateLimitPolicy {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var algorithm = Algorithm.gcra
        if let colon = rest.firstIndex(of: ":") {
            guard let named = Algorithm(rawValue: String(rest[..<colon])) else {
                throw NimbusError(.invalidArgument, "unknown rate-limit algorithm '\(rest[..<colon])'; use one of \(Algorithm.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            algorithm = named
            rest = rest[rest.index(after: colon)...]
        }
        var burst: Int?
        let parts = rest.split(separator: ";")
        for option in parts.dropFirst() {
            let pair = option.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0] == "burst", let value = Int(pair[1]) else {
                throw NimbusError(.invalidArgument, "rate-limit option '\(option)' is not burst=N")
            }
            burst = value
        }
        let rate = (parts.first ?? "").split(separator: "/", maxSplits: 1)
        guard rate.count == 2, let limit = Int(rate[0]), let period = Duration.nimbusParse(String(rate[1]).replacingOccurrences(of: "min", with: "m")) else {
            throw NimbusError(.invalidArgument, "rate limit '\(text)' is not LIMIT/PERIOD such as 100/1m or gcra:10/1s;burst=20")
        }
        let policy = RateLimitPolicy(name: name, algorithm: algorithm, limit: limit, period: period, burst: burst)
        try policy.validate()
        return policy
    }
}

/// One key's charge against one policy, as part of a decision.
public struct RateLimitRequest: Sendable, Hashable {
    /// Whose budget (`user:42`, `ip:203.0.113.9`, `key:abc`).
    public var key: String
    /// The policy.
    public var policy: RateLimitPolicy
    /// Units to take; `0` reads the state without taking anything.
    public var cost: Int

    /// Creates a request.
    public init(key: String, policy: RateLimitPolicy, cost: Int = 1) {
        self.key = key
        self.policy = policy
        self.cost = cost
    }
}

/// Where one policy stands after a decision.
public struct RateLimitState: Sendable, Hashable {
    /// The policy's name.
    public var policy: String
    /// Whether this policy alone would admit the call.
    public var allowed: Bool
    /// The policy's limit (the `q` of `RateLimit-Policy`).
    public var limit: Int
    /// Units left now (the `r` of `RateLimit`); after the charge when the decision admitted the call.
    public var remaining: Int
    /// Time until the quota is whole again (the `t` of `RateLimit`).
    public var resetAfter: Duration
    /// When this policy refused: the wait until the same call would be admitted.
    public var retryAfter: Duration?

    /// Creates a state.
    public init(policy: String, allowed: Bool, limit: Int, remaining: Int, resetAfter: Duration, retryAfter: Duration?) {
        self.policy = policy; self.allowed = allowed; self.limit = limit; self.remaining = remaining
        self.resetAfter = resetAfter; self.retryAfter = retryAfter
    }
}

/// The answer to one call: admitted (and charged against every policy) or refused (and charged against none).
public struct RateLimitDecision: Sendable, Hashable {
    /// Whether the call may proceed.
    public var allowed: Bool
    /// One state per request, in the order asked.
    public var states: [RateLimitState]

    /// Creates a decision.
    public init(allowed: Bool, states: [RateLimitState]) {
        self.allowed = allowed
        self.states = states
    }

    /// When refused: the longest wait among the refusing policies (the `Retry-After`).
    public var retryAfter: Duration? {
        guard !allowed else { return nil }
        return states.compactMap(\.retryAfter).max()
    }

    /// The state with the fewest units left (what a single `RateLimit` header reports).
    public var tightest: RateLimitState? {
        states.min { ($0.remaining, $1.resetAfter) < ($1.remaining, $0.resetAfter) }
    }
}

/// A slot of a concurrency limit, held until released or until its lease runs out (a crashed holder
/// cannot keep it forever).
public struct ConcurrencySlot: Sendable, Hashable {
    /// The limited key.
    public var key: String
    /// The slot's id.
    public var id: String

    /// Creates a slot.
    public init(key: String, id: String) { self.key = key; self.id = id }
}

/// Where a concurrency limit stands after an attempt to take a slot.
public struct ConcurrencyDecision: Sendable, Hashable {
    /// The slot, if one was free.
    public var slot: ConcurrencySlot?
    /// Slots in use (including the new one).
    public var inUse: Int
    /// When refused: the time until the oldest lease runs out at the latest.
    public var retryAfter: Duration?

    /// Creates a decision.
    public init(slot: ConcurrencySlot?, inUse: Int, retryAfter: Duration?) {
        self.slot = slot; self.inUse = inUse; self.retryAfter = retryAfter
    }
}
