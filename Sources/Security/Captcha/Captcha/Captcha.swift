import Foundation
import Logging
import NimbusCore
import Synchronization

/// What a captcha service said about a token.
public struct CaptchaVerdict: Sendable, Hashable {
    /// Whether the service accepted the token.
    public var success: Bool
    /// When the challenge was solved.
    public var challengeTime: Date?
    /// The site the challenge was solved on.
    public var hostname: String?
    /// The action the page declared (reCAPTCHA v3, Turnstile).
    public var action: String?
    /// A score from 0 (bot) to 1 (human) where the service gives one (reCAPTCHA v3, hCaptcha Enterprise).
    public var score: Double?
    /// The service's error codes (`invalid-input-response`, `timeout-or-duplicate`, …).
    public var errorCodes: [String]

    /// Creates a verdict.
    public init(success: Bool, challengeTime: Date? = nil, hostname: String? = nil, action: String? = nil, score: Double? = nil, errorCodes: [String] = []) {
        self.success = success
        self.challengeTime = challengeTime
        self.hostname = hostname
        self.action = action
        self.score = score
        self.errorCodes = errorCodes
    }
}

/// Why a captcha token was refused.
public struct CaptchaRejection: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reasons.
    public enum Reason: String, Sendable, Hashable {
        /// Empty, oversized or malformed token.
        case malformed
        /// The service (or the proof of work) says the token is not valid.
        case invalid
        /// The token was already used, or is too old.
        case expiredOrDuplicate
        /// Solved on another hostname.
        case wrongHostname
        /// Solved for another action.
        case wrongAction
        /// The score is below the minimum.
        case lowScore
    }
    public var reason: Reason
    public var message: String
    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }
    public var description: String { "captcha rejected (\(reason.rawValue)): \(message)" }
}

/// What a captcha service implements: turning a token into a verdict. Vendor errors about the
/// secret (`invalid-input-secret`) are configuration errors and throw `NimbusError`; a bad token is
/// a verdict with `success == false`.
public protocol CaptchaDriver: NimbusDriver {
    /// Asks the service about `token`.
    func verify(_ token: String, remoteIP: String?) async throws -> CaptchaVerdict
}

extension URLOpenerRegistry where Resource == any CaptchaDriver {
    /// An empty registry for captcha services; adapters add their schemes.
    public static var captcha: URLOpenerRegistry<any CaptchaDriver> { URLOpenerRegistry(domain: "captcha") }
}

/// Verifies captcha tokens from any service and checks what the service alone does not:
/// the hostname, the action, the minimum score and the age of the challenge.
///
/// ```swift
/// let captcha = try await Captcha.open("turnstile://", openers: .captcha.withSiteverify(),
///                                      expectations: .init(hostnames: ["shop.example"], action: "signup"))
/// try await captcha.verify(form["cf-turnstile-response"], remoteIP: request.remoteAddress)
/// ```
public final class Captcha: PortableClient {
    /// What a valid token must also satisfy.
    public struct Expectations: Sendable {
        /// The hostnames the challenge may be solved on (empty: any).
        public var hostnames: Set<String>
        /// The action the page must have declared (nil: any).
        public var action: String?
        /// The lowest acceptable score where the service gives one (reCAPTCHA v3's default advice: 0.5).
        public var minimumScore: Double
        /// The oldest acceptable challenge (tokens are single-use and short-lived; 5 minutes).
        public var maximumAge: Duration
        /// The longest token accepted before asking the service (Turnstile's limit is 2048).
        public var maximumTokenLength: Int

        /// Creates expectations.
        public init(hostnames: Set<String> = [], action: String? = nil, minimumScore: Double = 0.5, maximumAge: Duration = .seconds(300),
                    maximumTokenLength: Int = 4096) {
            self.hostnames = hostnames
            self.action = action
            self.minimumScore = minimumScore
            self.maximumAge = maximumAge
            self.maximumTokenLength = maximumTokenLength
        }
    }

    /// The expectations.
    public let expectations: Expectations
    private let driver: any CaptchaDriver
    private let calls: PortableCalls
    private let closed = Atomic<Bool>(false)
    private let now: @Sendable () -> Date

    /// Wraps a driver.
    public init(driver: some CaptchaDriver, expectations: Expectations = .init(), logger: Logger = Logger(label: "nimbus.captcha"),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.driver = driver
        self.expectations = expectations
        self.now = now
        calls = PortableCalls(domain: "captcha", provider: driver.provider, operations: ["verify"], logger: logger)
    }

    /// Opens the driver `url`'s scheme names.
    public static func open(_ url: String, openers: URLOpenerRegistry<any CaptchaDriver>, expectations: Expectations = .init()) async throws -> Captcha {
        Captcha(driver: try await openers.open(url), expectations: expectations)
    }

    public var provider: String { driver.provider }
    public func driver<T>(as type: T.Type) -> T? { driver as? T }
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try await driver.close()
    }

    /// Verifies `token` (the form field the widget filled in) and returns the service's verdict.
    /// - Throws: ``CaptchaRejection`` when the token is refused; `NimbusError` when the service
    ///   cannot be asked (unavailable, or a misconfigured secret).
    @discardableResult
    public func verify(_ token: String?, remoteIP: String? = nil) async throws -> CaptchaVerdict {
        guard let token, !token.isEmpty else { throw CaptchaRejection(.malformed, "no captcha token was sent") }
        guard token.utf8.count <= expectations.maximumTokenLength, token.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw CaptchaRejection(.malformed, "the token is not a short ASCII string")
        }
        // Tokens are single-use: a retry could only ever report a duplicate, so the call is made once.
        let verdict = try await calls.run("verify", retry: .none, closed: closed.load(ordering: .relaxed)) {
            try await self.driver.verify(token, remoteIP: remoteIP)
        }
        guard verdict.success else {
            if verdict.errorCodes.contains("timeout-or-duplicate") || verdict.errorCodes.contains("already-seen-response") {
                throw CaptchaRejection(.expiredOrDuplicate, "the token was already used or has expired (\(verdict.errorCodes.joined(separator: ", ")))")
            }
            throw CaptchaRejection(.invalid, "the service refused the token (\(verdict.errorCodes.joined(separator: ", ")))")
        }
        if !expectations.hostnames.isEmpty, !expectations.hostnames.contains(verdict.hostname ?? "") {
            throw CaptchaRejection(.wrongHostname, "solved on \(verdict.hostname ?? "an unknown host"), not \(expectations.hostnames.sorted().joined(separator: ", "))")
        }
        if let action = expectations.action, verdict.action != action {
            throw CaptchaRejection(.wrongAction, "solved for action \(verdict.action ?? "(none)"), expected \(action)")
        }
        if let score = verdict.score, score < expectations.minimumScore {
            throw CaptchaRejection(.lowScore, "score \(score) is below \(expectations.minimumScore)")
        }
        if let time = verdict.challengeTime, now().timeIntervalSince(time) > expectations.maximumAge.nimbusSeconds {
            throw CaptchaRejection(.expiredOrDuplicate, "the challenge was solved at \(time), longer ago than \(expectations.maximumAge)")
        }
        return verdict
    }
}
