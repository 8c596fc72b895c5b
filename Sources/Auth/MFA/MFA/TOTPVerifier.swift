import Crypto
import Foundation
import Logging
import NimbusCore
import NimbusRateLimit
import NimbusRateLimitMemory

/// Remembers the last time step accepted for each account, so a code is accepted once: RFC 6238
/// §5.2 says a verifier "MUST NOT accept the second attempt of the OTP after the successful
/// validation has been issued for the first OTP". Codes of earlier steps are refused too.
public protocol OTPReplayGuard: Sendable {
    /// Records `step` as used for `account` and returns `true`, unless `step` or a later step was
    /// already used for it (then returns `false` and records nothing). Must be atomic per account.
    func use(step: UInt64, for account: String) async throws -> Bool
}

/// The replay guard of one process: the last used step per account, in memory. Accounts whose last
/// step is older than `horizon` are dropped when the map grows past `capacity` (their codes are long expired).
public actor MemoryOTPReplayGuard: OTPReplayGuard {
    private var last: [String: (step: UInt64, at: Date)] = [:]
    private let capacity: Int
    private let horizon: TimeInterval
    private let now: @Sendable () -> Date

    /// A guard keeping up to `capacity` accounts' last steps (older ones than `horizon` are pruned first).
    public init(capacity: Int = 1_000_000, horizon: Duration = .seconds(600), now: @escaping @Sendable () -> Date = { Date() }) {
        self.capacity = max(1, capacity)
        self.horizon = horizon.nimbusSeconds
        self.now = now
    }

    public func use(step: UInt64, for account: String) -> Bool {
        if let previous = last[account], previous.step >= step { return false }
        if last.count >= capacity {
            let cutoff = now().addingTimeInterval(-horizon)
            last = last.filter { $0.value.at >= cutoff }
        }
        last[account] = (step, now())
        return true
    }
}

/// Checks TOTP codes the way an authentication service must: a window of steps for clock drift,
/// each code accepted once (``OTPReplayGuard``), and failed attempts limited per account through
/// NimbusRateLimit (5 per 15 minutes by default), so six digits cannot be guessed.
///
/// ```swift
/// let verifier = TOTPVerifier()
/// let totp = try TOTP(secret: user.totpSecret)
/// let step = try await verifier.verify("492039", with: totp, account: user.id)   // throws if refused
/// ```
public struct TOTPVerifier: Sendable {
    /// The verification rules.
    public struct Configuration: Sendable {
        /// Steps accepted before and after the current one (1 each by default: ±30 s).
        public var window: Int
        /// Failed attempts allowed per account before it is locked out for the rest of the period.
        public var maxFailures: Int
        /// The period failed attempts are counted over.
        public var failurePeriod: Duration

        /// Creates rules.
        public init(window: Int = 1, maxFailures: Int = 5, failurePeriod: Duration = .seconds(900)) {
            self.window = window
            self.maxFailures = maxFailures
            self.failurePeriod = failurePeriod
        }
    }

    /// The rules.
    public let configuration: Configuration
    /// The replay guard.
    public let replayGuard: any OTPReplayGuard
    /// The limiter of failed attempts.
    public let limiter: RateLimiter
    private let now: @Sendable () -> Date

    /// A verifier; by default with an in-memory replay guard and an in-memory rate limiter (one
    /// process). Several instances of a service share a Redis-backed `RateLimiter` and a shared guard.
    public init(configuration: Configuration = .init(), replayGuard: (any OTPReplayGuard)? = nil, limiter: RateLimiter? = nil,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.configuration = configuration
        self.replayGuard = replayGuard ?? MemoryOTPReplayGuard(now: now)
        self.limiter = limiter ?? RateLimiter(driver: MemoryRateLimitDriver())
        self.now = now
    }

    private var policy: RateLimitPolicy {
        .fixedWindow("otp-failures", limit: max(1, configuration.maxFailures), per: configuration.failurePeriod)
    }

    /// Verifies `code` for `account` and returns the time step it matched.
    /// - Throws: `resourceExhausted` (with `retryAfter`) while the account is locked out;
    ///   `unauthenticated` for a wrong code, or a code already used (the message tells which);
    ///   `invalidArgument` for text that is not a code of the right length.
    @discardableResult
    public func verify(_ code: String, with totp: TOTP, account: String) async throws -> UInt64 {
        let digits = code.filter { $0 != " " }
        guard digits.count == totp.hotp.digits, digits.allSatisfy(\.isASCIIDigitCharacter) else {
            throw NimbusError(.invalidArgument, "a code is \(totp.hotp.digits) digits")
        }
        // Every attempt is charged before it is checked (atomically, so a burst of parallel guesses
        // cannot slip past the limit); a right code gives the account its attempts back.
        let decision = try await limiter.acquire(account, policy: policy, cost: 1)
        guard decision.allowed else {
            throw NimbusError(.resourceExhausted, "too many wrong codes for this account; try again later",
                              retryAfter: decision.retryAfter ?? decision.states.first?.resetAfter)
        }
        let current = totp.step(at: now())
        var matched: UInt64?
        // Every step of the window is compared, in constant time, whatever matches first.
        for offset in -configuration.window...configuration.window {
            let step = Int64(current) + Int64(offset)
            guard step >= 0 else { continue }
            if ConstantTime.equals(Array(totp.code(step: UInt64(step)).utf8), Array(digits.utf8)), matched == nil { matched = UInt64(step) }
        }
        guard let step = matched else { throw NimbusError(.unauthenticated, "the code is wrong or expired") }
        guard try await replayGuard.use(step: step, for: account) else {
            throw NimbusError(.unauthenticated, "the code was already used; wait for the next one")
        }
        try await limiter.reset(account, policy: policy)
        return step
    }
}

extension Character {
    var isASCIIDigitCharacter: Bool { ("0"..."9").contains(self) && isASCII }
}
