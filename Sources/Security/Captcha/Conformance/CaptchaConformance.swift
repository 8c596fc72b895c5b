import Foundation
import NimbusCaptcha
import NimbusCore
import NimbusTesting
import Testing

/// The behaviour every ``CaptchaDriver`` must have behind ``Captcha``, run against each one:
///
/// ```swift
/// @Test(arguments: CaptchaConformance.checks)
/// func conformance(_ check: CaptchaConformance.Check) async throws {
///     try await check.run(CaptchaConformance.Harness(makeDriver: { pow }, validToken: { ProofOfWorkCaptcha.solve(pow.challenge()) }))
/// }
/// ```
public enum CaptchaConformance {
    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes the driver (one per check).
        public var makeDriver: @Sendable () async throws -> any CaptchaDriver
        /// A token the service accepts once (a solved challenge, a fake's good token).
        public var validToken: @Sendable () async throws -> String
        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any CaptchaDriver, validToken: @escaping @Sendable () async throws -> String) {
            self.makeDriver = makeDriver
            self.validToken = validToken
        }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    /// Counts the calls that reach the driver.
    struct Counting: CaptchaDriver {
        let inner: any CaptchaDriver
        let counter: CallCounter
        var provider: String { inner.provider }
        func verify(_ token: String, remoteIP: String?) async throws -> CaptchaVerdict {
            counter.record()
            return try await inner.verify(token, remoteIP: remoteIP)
        }
    }

    static func reason(_ body: () async throws -> Void) async -> CaptchaRejection.Reason? {
        do {
            try await body()
            return nil
        } catch let rejection as CaptchaRejection {
            return rejection.reason
        } catch {
            Issue.record("expected a CaptchaRejection, got \(error)")
            return nil
        }
    }

    /// Every check.
    public static let checks: [Check] = [
        Check("a valid token verifies") { harness in
            let captcha = Captcha(driver: try await harness.makeDriver())
            #expect(try await captcha.verify(try await harness.validToken(), remoteIP: "203.0.113.7").success)
        },
        Check("a token is accepted once: the second time it is expired-or-duplicate") { harness in
            let captcha = Captcha(driver: try await harness.makeDriver())
            let token = try await harness.validToken()
            try await captcha.verify(token)
            #expect(await reason { try await captcha.verify(token) } == .expiredOrDuplicate)
        },
        Check("a forged token is refused as invalid") { harness in
            let captcha = Captcha(driver: try await harness.makeDriver())
            var token = try await harness.validToken()
            let last = token.removeLast()
            token.append(last == "A" ? "B" : "A")
            #expect(await reason { try await captcha.verify(token) } == .invalid)
            #expect(await reason { try await captcha.verify("0.garbage") } == .invalid)
        },
        Check("missing, oversized and non-ASCII tokens are refused before the service is asked") { harness in
            let counter = CallCounter()
            let captcha = Captcha(driver: Counting(inner: try await harness.makeDriver(), counter: counter))
            for token in [nil, "", String(repeating: "a", count: 5000), "tok en", "tökén"] as [String?] {
                #expect(await reason { try await captcha.verify(token) } == .malformed)
            }
            #expect(counter.count == 0)
        },
    ]
}
