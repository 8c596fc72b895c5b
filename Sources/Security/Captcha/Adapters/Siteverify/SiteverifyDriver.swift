import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCaptcha
import NimbusCore
import NimbusHTTP

/// hCaptcha, reCAPTCHA (v2 and v3) and Cloudflare Turnstile: the three share the `siteverify`
/// protocol — a form POST of `secret`, `response` and `remoteip` answered with
/// `{"success", "challenge_ts", "hostname", "error-codes", …}` — and differ in endpoint and extras
/// (hCaptcha's `sitekey`, reCAPTCHA's `score`/`action`, Turnstile's `idempotency_key`/`action`).
///
/// ```swift
/// let turnstile = SiteverifyDriver(vendor: .turnstile, secret: Secret(env["TURNSTILE_SECRET"]!))
/// let verdict = try await Captcha(driver: turnstile).verify(token, remoteIP: ip)
/// ```
///
/// A wrong or missing secret throws `unauthenticated` (a configuration error, not a bad token);
/// 429 and 5xx throw `unavailable` with the service's Retry-After. Turnstile requests carry an
/// `idempotency_key`, so they are retried safely; the others are sent once (a token is single-use).
public struct SiteverifyDriver: CaptchaDriver {
    /// The services.
    public enum Vendor: String, Sendable, CaseIterable {
        case hcaptcha, recaptcha, turnstile

        /// The public endpoint.
        public var endpoint: String {
            switch self {
            case .hcaptcha: "https://api.hcaptcha.com/siteverify"
            case .recaptcha: "https://www.google.com/recaptcha/api/siteverify"
            case .turnstile: "https://challenges.cloudflare.com/turnstile/v0/siteverify"
            }
        }

        /// The environment variable the secret is read from by default.
        public var secretVariable: String {
            switch self {
            case .hcaptcha: "HCAPTCHA_SECRET"
            case .recaptcha: "RECAPTCHA_SECRET"
            case .turnstile: "TURNSTILE_SECRET"
            }
        }
    }

    public let vendor: Vendor
    /// The URL requests go to (the vendor's endpoint, or a fake in tests).
    public let endpoint: String
    /// hCaptcha only: the site key the token must belong to (recommended by hCaptcha).
    public let siteKey: String?
    private let secret: Secret<String>
    private let http: NimbusHTTPClient

    /// Creates a driver.
    public init(vendor: Vendor, secret: Secret<String>, endpoint: String? = nil, siteKey: String? = nil, timeout: Duration = .seconds(10),
                httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.vendor = vendor
        self.secret = secret
        self.siteKey = siteKey
        self.endpoint = endpoint ?? vendor.endpoint
        let retry: RetryPolicy = vendor == .turnstile ? RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(200), maxDelay: .seconds(2)) : .none
        http = NimbusHTTPClient(configuration: .init(service: vendor.rawValue, defaultHeaders: ["User-Agent": "Nimbus/\(NimbusVersion.current)"],
                                                     retry: retry, timeout: timeout),
                                httpClient: httpClient, logger: logger)
    }

    public var provider: String { vendor.rawValue }

    struct Answer: Decodable {
        var success: Bool?
        var challenge_ts: String?
        var hostname: String?
        var action: String?
        var score: Double?
        var errorCodes: [String]?
        enum CodingKeys: String, CodingKey {
            case success, challenge_ts, hostname, action, score
            case errorCodes = "error-codes"
        }
    }

    public func verify(_ token: String, remoteIP: String?) async throws -> CaptchaVerdict {
        var fields: [(String, String)] = [("secret", secret.reveal()), ("response", token)]
        if let remoteIP, !remoteIP.isEmpty { fields.append(("remoteip", remoteIP)) }
        if vendor == .hcaptcha, let siteKey { fields.append(("sitekey", siteKey)) }
        var request = NimbusHTTPRequest(.POST, endpoint, operation: "siteverify")
        if vendor == .turnstile {
            // Turnstile dedupes a retried verification by this key instead of answering timeout-or-duplicate.
            let key = UUID().uuidString.lowercased()
            fields.append(("idempotency_key", key))
            request.idempotencyKey = key
            request.safeToRetry = true
        }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = ByteBuffer(string: fields.map { "\(FormEncoder.escape($0.0))=\(FormEncoder.escape($0.1))" }.joined(separator: "&"))
        let response = try await http.send(request)
        let body = try await response.collect(upTo: 64 * 1024)
        guard response.isSuccess else {
            throw response.error("\(vendor.rawValue) siteverify answered HTTP \(response.status.code)")
        }
        let answer: Answer
        do { answer = try JSONDecoder().decode(Answer.self, from: Data(body.readableBytesView)) } catch {
            throw NimbusError(.internal, "\(vendor.rawValue) siteverify answered something that is not its JSON verdict: \(String(decoding: body.readableBytesView.prefix(200), as: UTF8.self))")
        }
        guard let success = answer.success else { throw NimbusError(.internal, "\(vendor.rawValue) siteverify answered without \"success\"") }
        let codes = answer.errorCodes ?? []
        if codes.contains("missing-input-secret") || codes.contains("invalid-input-secret") || codes.contains("sitekey-secret-mismatch") {
            throw NimbusError(.unauthenticated, "\(vendor.rawValue) refused the secret key (\(codes.joined(separator: ", "))); check \(vendor.secretVariable)")
        }
        if codes.contains("internal-error") {
            throw NimbusError(.unavailable, "\(vendor.rawValue) had an internal error verifying the token; try again", retryable: vendor == .turnstile)
        }
        return CaptchaVerdict(success: success, challengeTime: answer.challenge_ts.flatMap(Self.date), hostname: answer.hostname,
                              action: answer.action, score: answer.score, errorCodes: codes)
    }

    /// `challenge_ts`: ISO 8601 (hCaptcha and Turnstile write milliseconds and `Z`, reCAPTCHA an offset without a colon).
    static func date(_ text: String) -> Date? {
        if let date = Date(iso8601: text) { return date }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ssZ"
        return formatter.date(from: text)
    }
}

extension URLOpenerRegistry where Resource == any CaptchaDriver {
    /// Adds `hcaptcha://`, `recaptcha://` and `turnstile://`: the secret from `secret=env:VAR` or the
    /// vendor's default variable (`HCAPTCHA_SECRET`, `RECAPTCHA_SECRET`, `TURNSTILE_SECRET`); a host
    /// points at another endpoint (a fake: `turnstile://127.0.0.1:8080`); `sitekey=` for hCaptcha.
    public func withSiteverify(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        for vendor in SiteverifyDriver.Vendor.allCases {
            copy.register(vendor.rawValue) { url in
                try url.options.validate(known: ["secret", "sitekey", "tls"], for: "\(vendor.rawValue)://")
                guard let secret = try url.secret("secret", environment: environment, defaults: [vendor.secretVariable]) else {
                    throw NimbusError(.failedPrecondition, "\(vendor.rawValue):// needs a secret key: set \(vendor.secretVariable) or secret=env:VARIABLE")
                }
                let endpoint = (url.host ?? "").isEmpty ? vendor.endpoint : try url.endpoint(default: vendor.endpoint, defaultPath: "/siteverify")
                return SiteverifyDriver(vendor: vendor, secret: secret, endpoint: endpoint, siteKey: url.options.string("sitekey"))
            }
        }
        return copy
    }
}
