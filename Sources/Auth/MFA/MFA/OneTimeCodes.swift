import Crypto
import Foundation
import NimbusCore

/// What redeeming a delivered code gave.
public enum OneTimeCodeOutcome: Sendable, Hashable {
    /// The code was right; it is used up.
    case accepted
    /// The code was wrong; `remaining` tries are left (0: the code is burnt).
    case wrong(remaining: Int)
    /// No live code for this account and purpose (never sent, expired, used or burnt).
    case none
}

/// Where delivered codes wait: only keyed digests, an expiry, and a try count — never the code.
/// Implementations must make ``redeem(_:digest:maxAttempts:now:)`` atomic per key, so two
/// parallel guesses cannot both be counted as the last allowed one, and a right code cannot be
/// redeemed twice.
public protocol OneTimeCodeStore: Sendable {
    /// Stores a new code for `key`, replacing a previous one, unless the previous one was issued
    /// less than `cooldown` ago (then returns `false` and changes nothing).
    func issue(_ key: String, digest: [UInt8], expires: Date, cooldown: Duration, now: Date) async throws -> Bool
    /// Redeems `digest` for `key`.
    func redeem(_ key: String, digest: [UInt8], maxAttempts: Int, now: Date) async throws -> OneTimeCodeOutcome
}

/// The codes of one process, in memory.
public actor MemoryOneTimeCodeStore: OneTimeCodeStore {
    private var codes: [String: (digest: [UInt8], expires: Date, issued: Date, attempts: Int)] = [:]

    /// An empty store.
    public init() {}

    public func issue(_ key: String, digest: [UInt8], expires: Date, cooldown: Duration, now: Date) -> Bool {
        if let previous = codes[key], previous.expires > now, now.timeIntervalSince(previous.issued) < cooldown.nimbusSeconds { return false }
        codes = codes.filter { $0.value.expires > now }
        codes[key] = (digest, expires, now, 0)
        return true
    }

    public func redeem(_ key: String, digest: [UInt8], maxAttempts: Int, now: Date) -> OneTimeCodeOutcome {
        guard let code = codes[key], code.expires > now else {
            codes[key] = nil
            return .none
        }
        if ConstantTime.equals(code.digest, digest) {
            codes[key] = nil
            return .accepted
        }
        let attempts = code.attempts + 1
        if attempts >= maxAttempts {
            codes[key] = nil
            return .wrong(remaining: 0)
        }
        codes[key]?.attempts = attempts
        return .wrong(remaining: maxAttempts - attempts)
    }
}

/// Where a code goes.
public enum OneTimeCodeDestination: Sendable, Hashable, CustomStringConvertible {
    /// An email address.
    case email(String)
    /// A phone number in E.164 (`+4915112345678`).
    case sms(String)

    /// The destination with most of it hidden, for messages and logs (`a***@example.com`, `+49*******678`).
    public var description: String {
        switch self {
        case .email(let address):
            let parts = address.split(separator: "@", maxSplits: 1)
            return parts.count == 2 ? "\(parts[0].prefix(1))***@\(parts[1])" : "***"
        case .sms(let number):
            return number.count > 6 ? "\(number.prefix(3))\(String(repeating: "*", count: number.count - 6))\(number.suffix(3))" : "***"
        }
    }
}

/// Email and SMS one-time codes: a fresh uniform code per request, delivered through a hook
/// (NimbusNotify's `Notifier` in `NimbusMFANotify`), kept only as an HMAC digest, valid for a few
/// minutes, single use, with a resend cooldown and a try limit after which the code is burnt.
///
/// ```swift
/// let codes = OneTimeCodes(store: RedisOneTimeCodeStore(redis), secret: pepper, deliver: .notifier(notifier, template: "sign-in-code"))
/// try await codes.send(to: .email("ada@example.com"), account: user.id, purpose: "sign-in")
/// try await codes.verify(codeFromForm, account: user.id, purpose: "sign-in")     // throws unless right, live and unused
/// ```
///
/// The digest is HMAC-SHA256 keyed with `secret`, so a leaked store does not give six-digit
/// codes away to an offline search; every process that verifies must share the same secret.
public struct OneTimeCodes: Sendable {
    /// Settings.
    public struct Configuration: Sendable {
        /// Digits per code (6–10).
        public var digits: Int
        /// How long a code is good for (10 minutes by default).
        public var lifetime: Duration
        /// The least time between two codes to the same account and purpose.
        public var resendCooldown: Duration
        /// Wrong tries before the code is burnt.
        public var maxAttempts: Int

        /// Creates settings.
        public init(digits: Int = 6, lifetime: Duration = .seconds(600), resendCooldown: Duration = .seconds(30), maxAttempts: Int = 5) {
            self.digits = digits
            self.lifetime = lifetime
            self.resendCooldown = resendCooldown
            self.maxAttempts = maxAttempts
        }
    }

    /// Sends one code: the destination, the code, its lifetime and a key that makes retries of
    /// one send idempotent.
    public typealias Delivery = @Sendable (_ destination: OneTimeCodeDestination, _ code: Secret<String>, _ lifetime: Duration, _ idempotencyKey: String) async throws -> Void

    /// The settings.
    public let configuration: Configuration
    /// The store.
    public let store: any OneTimeCodeStore
    private let secret: Secret<[UInt8]>
    private let deliver: Delivery
    private let now: @Sendable () -> Date

    /// Creates the sender; `secret` (32 bytes or more) keys the digests.
    /// - Throws: `invalidArgument` for a short secret or digits outside 6–10.
    public init(configuration: Configuration = .init(), store: any OneTimeCodeStore = MemoryOneTimeCodeStore(), secret: Secret<[UInt8]> = Secret(SecureRandom.bytes(32)),
                now: @escaping @Sendable () -> Date = { Date() }, deliver: @escaping Delivery) throws {
        guard secret.reveal().count >= 32 else { throw NimbusError(.invalidArgument, "the one-time code secret needs at least 32 bytes") }
        guard (6...10).contains(configuration.digits) else { throw NimbusError(.invalidArgument, "one-time codes have 6–10 digits") }
        self.configuration = configuration
        self.store = store
        self.secret = secret
        self.deliver = deliver
        self.now = now
    }

    /// The store key of an account and purpose (length-prefixed, so `a:b`/`c` and `b`/`c:a` differ).
    public static func key(_ account: String, _ purpose: String) -> String {
        "\(purpose.count):\(purpose):\(account)"
    }

    func digest(_ code: String, key: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("\(key)\u{0}\(code)".utf8), using: SymmetricKey(data: secret.reveal())))
    }

    /// A uniform code of `digits` digits.
    func freshCode() -> String { SecureRandom.digits(configuration.digits) }

    /// Makes a new code for `account` and `purpose` (`sign-in`, `change-email`…), replacing the
    /// previous one, and delivers it.
    /// - Throws: `resourceExhausted` (with `retryAfter`) inside the resend cooldown; the delivery's errors.
    public func send(to destination: OneTimeCodeDestination, account: String, purpose: String) async throws {
        let key = Self.key(account, purpose)
        let code = freshCode()
        let issuedAt = now()
        guard try await store.issue(key, digest: digest(code, key: key), expires: issuedAt.addingTimeInterval(configuration.lifetime.nimbusSeconds),
                                    cooldown: configuration.resendCooldown, now: issuedAt) else {
            throw NimbusError(.resourceExhausted, "a code was sent to \(destination) moments ago; wait before asking for another",
                              retryAfter: configuration.resendCooldown)
        }
        try await deliver(destination, Secret(code), configuration.lifetime, "otp-\(purpose)-\(account)-\(Int(issuedAt.timeIntervalSince1970 * 1000))")
    }

    /// Checks a code; a right one is used up.
    /// - Throws: `invalidArgument` for a malformed code; `unauthenticated` for a wrong, expired,
    ///   used or burnt one (the message says how many tries are left).
    public func verify(_ code: String, account: String, purpose: String) async throws {
        let digits = code.filter { $0 != " " && $0 != "-" }
        guard digits.count == configuration.digits, digits.allSatisfy(\.isASCIIDigitCharacter) else {
            throw NimbusError(.invalidArgument, "a code is \(configuration.digits) digits")
        }
        let key = Self.key(account, purpose)
        switch try await store.redeem(key, digest: digest(digits, key: key), maxAttempts: configuration.maxAttempts, now: now()) {
        case .accepted: return
        case .wrong(let remaining) where remaining > 0:
            throw NimbusError(.unauthenticated, "the code is wrong; \(remaining) tr\(remaining == 1 ? "y" : "ies") left")
        case .wrong:
            throw NimbusError(.unauthenticated, "the code is wrong and now void; ask for a new one")
        case .none:
            throw NimbusError(.unauthenticated, "no valid code: it expired, was used, or was never sent; ask for a new one")
        }
    }
}
