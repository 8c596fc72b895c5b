import Crypto
import Foundation
import NimbusCaptcha
import NimbusCore
import Synchronization

/// The embedded captcha: a proof of work. The server hands out a signed, expiring challenge; the
/// browser finds a nonce whose SHA-256 with the challenge starts with `difficulty` zero bits (a
/// fraction of a second for one visitor, real cost for a bot making thousands of requests); the
/// server checks the signature, the expiry and the work, and accepts each solution once. The
/// difficulty rises with the rate of challenges, so a flood pays more per request.
///
/// ```swift
/// let pow = try ProofOfWorkCaptcha(configuration: .init(key: Secret(keyBytes)))
/// let challenge = pow.challenge()                      // send challenge.token and .difficulty to the page
/// // … the page computes the nonce (see docs/security.md for the 15 lines of JavaScript) …
/// try await Captcha(driver: pow).verify(solutionFromTheForm)
/// ```
///
/// No state is shared between instances except the key: behind a load balancer, give every
/// instance the same key and a shared replay store, or keep a visitor on one instance.
public final class ProofOfWorkCaptcha: CaptchaDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The HMAC key that signs challenges (32 bytes or more).
        public var key: Secret<[UInt8]>
        /// Leading zero bits required at normal load (18 ≈ 260 000 hashes, well under a second in a browser).
        public var baseDifficulty: Int
        /// The most the difficulty rises to under load.
        public var maximumDifficulty: Int
        /// How long a challenge may be solved and submitted.
        public var lifetime: Duration
        /// Challenges per minute that count as normal; each doubling above adds one bit.
        public var normalRatePerMinute: Int
        /// The hostname reported in verdicts.
        public var hostname: String?

        /// Creates settings.
        public init(key: Secret<[UInt8]>, baseDifficulty: Int = 18, maximumDifficulty: Int = 24, lifetime: Duration = .seconds(120),
                    normalRatePerMinute: Int = 120, hostname: String? = nil) {
            self.key = key
            self.baseDifficulty = baseDifficulty
            self.maximumDifficulty = maximumDifficulty
            self.lifetime = lifetime
            self.normalRatePerMinute = normalRatePerMinute
            self.hostname = hostname
        }
    }

    /// A challenge for the page.
    public struct Challenge: Sendable, Hashable, Codable {
        /// The signed challenge text.
        public var token: String
        /// The leading zero bits the solution's hash needs.
        public var difficulty: Int
        /// When the challenge stops being accepted.
        public var expiresAt: Date

        /// Creates a challenge (``ProofOfWorkCaptcha/challenge()`` makes signed ones).
        public init(token: String, difficulty: Int, expiresAt: Date) {
            self.token = token
            self.difficulty = difficulty
            self.expiresAt = expiresAt
        }
    }

    public let configuration: Configuration
    private let now: @Sendable () -> Date
    private struct State {
        var issued: [Date] = []            // times of the challenges of the last minute
        var used: [String: Date] = [:]     // challenge id → its expiry
    }
    private let state = Mutex(State())

    /// Creates the captcha.
    /// - Throws: `invalidArgument` for a key under 32 bytes or difficulties outside 1–40.
    public init(configuration: Configuration, now: @escaping @Sendable () -> Date = { Date() }) throws {
        guard configuration.key.reveal().count >= 32 else { throw NimbusError(.invalidArgument, "the proof-of-work key must be at least 32 bytes") }
        guard (1...40).contains(configuration.baseDifficulty), (configuration.baseDifficulty...40).contains(configuration.maximumDifficulty) else {
            throw NimbusError(.invalidArgument, "difficulties must satisfy 1 ≤ base ≤ maximum ≤ 40 bits")
        }
        self.configuration = configuration
        self.now = now
    }

    public var provider: String { "proof-of-work" }

    /// The difficulty a challenge issued now gets.
    public var currentDifficulty: Int {
        let rate = state.withLock { state in state.issued.filter { now().timeIntervalSince($0) < 60 }.count }
        return difficulty(forRate: rate)
    }

    func difficulty(forRate rate: Int) -> Int {
        let normal = max(1, configuration.normalRatePerMinute)
        guard rate > normal else { return configuration.baseDifficulty }
        let extra = Int(log2(Double(rate) / Double(normal)).rounded(.down)) + 1
        return min(configuration.maximumDifficulty, configuration.baseDifficulty + extra)
    }

    /// A fresh challenge.
    public func challenge() -> Challenge {
        let time = now()
        let rate = state.withLock { state -> Int in
            state.issued.removeAll { time.timeIntervalSince($0) >= 60 }
            state.issued.append(time)
            return state.issued.count - 1
        }
        let difficulty = difficulty(forRate: rate)
        let id = Base64URL.encode(SecureRandom.bytes(16))
        let expires = Int64((time.timeIntervalSince1970 + configuration.lifetime.nimbusSeconds).rounded(.up))
        let body = "pow1.\(id).\(expires).\(difficulty)"
        return Challenge(token: body + "." + signature(body), difficulty: difficulty, expiresAt: Date(timeIntervalSince1970: TimeInterval(expires)))
    }

    private func signature(_ body: String) -> String {
        Base64URL.encode(HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: configuration.key.reveal())))
    }

    /// Finds the nonce for a challenge (what the page does; here for tests and non-browser clients)
    /// and returns the solution token to submit.
    public static func solve(_ challenge: Challenge) -> String {
        var nonce: UInt64 = 0
        while !hasLeadingZeros(SHA256.hash(data: Array("\(challenge.token).\(nonce)".utf8)), challenge.difficulty) { nonce += 1 }
        return "\(challenge.token).\(nonce)"
    }

    static func hasLeadingZeros(_ digest: SHA256.Digest, _ bits: Int) -> Bool {
        var remaining = bits
        for byte in digest {
            if remaining <= 0 { return true }
            if remaining >= 8 {
                guard byte == 0 else { return false }
                remaining -= 8
            } else {
                return byte >> UInt8(8 - remaining) == 0
            }
        }
        return remaining <= 0
    }

    public func verify(_ token: String, remoteIP: String?) async throws -> CaptchaVerdict {
        func refused(_ code: String) -> CaptchaVerdict { CaptchaVerdict(success: false, hostname: configuration.hostname, errorCodes: [code]) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, parts[0] == "pow1", let expires = Int64(parts[2]), let difficulty = Int(parts[3]), UInt64(parts[5]) != nil,
              (1...40).contains(difficulty) else {
            return refused("invalid-input-response")
        }
        let body = parts[0...3].joined(separator: ".")
        guard ConstantTime.equals(Array(signature(body).utf8), Array(parts[4].utf8)) else { return refused("invalid-input-response") }
        let expiry = Date(timeIntervalSince1970: TimeInterval(expires))
        let time = now()
        guard time < expiry else { return refused("timeout-or-duplicate") }
        guard Self.hasLeadingZeros(SHA256.hash(data: Array(token.utf8)), difficulty) else { return refused("invalid-input-response") }
        let fresh = state.withLock { state -> Bool in
            state.used = state.used.filter { $0.value > time }
            guard state.used[parts[1]] == nil else { return false }
            state.used[parts[1]] = expiry
            return true
        }
        guard fresh else { return refused("timeout-or-duplicate") }
        return CaptchaVerdict(success: true, challengeTime: time, hostname: configuration.hostname, errorCodes: [])
    }
}

extension URLOpenerRegistry where Resource == any CaptchaDriver {
    /// Adds `pow://` (options `difficulty`, `max_difficulty`, `lifetime`, `hostname`; the key from
    /// `key=env:VAR` or `NIMBUS_POW_KEY`, base64, 32 bytes or more).
    public func withProofOfWork(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("pow") { url in
            try url.options.validate(known: ["key", "difficulty", "max_difficulty", "lifetime", "hostname"], for: "pow://")
            guard let text = try url.secret("key", environment: environment, defaults: ["NIMBUS_POW_KEY"]),
                  let key = Data(base64Encoded: text.reveal()) else {
                throw NimbusError(.failedPrecondition, "pow:// needs a base64 key of 32 bytes or more: set NIMBUS_POW_KEY or key=env:VARIABLE")
            }
            let base = try url.options.int("difficulty") ?? 18
            return try ProofOfWorkCaptcha(configuration: .init(key: Secret(Array(key)), baseDifficulty: base,
                                                               maximumDifficulty: try url.options.int("max_difficulty") ?? max(base, 24),
                                                               lifetime: try url.options.duration("lifetime") ?? .seconds(120),
                                                               hostname: url.options.string("hostname")))
        }
        return copy
    }
}
