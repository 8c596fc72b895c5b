import Foundation
import NimbusCaptcha
import NimbusCaptchaConformance
import NimbusCaptchaSiteverify
import NimbusCore
import NimbusTesting
import Testing
import Synchronization

@Suite("hCaptcha, reCAPTCHA and Turnstile siteverify (fakes with the documented answers)", .timeLimit(.minutes(2)))
struct SiteverifyTests {
    @Test("conformance", arguments: SiteverifyDriver.Vendor.allCases.flatMap { vendor in CaptchaConformance.checks.map { (vendor, $0) } })
    func conformance(vendor: SiteverifyDriver.Vendor, check: CaptchaConformance.Check) async throws {
        let fake = try await SiteverifyFake(vendor: vendor)
        try await check.run(CaptchaConformance.Harness(makeDriver: { fake.driver() }, validToken: { fake.issue() }))
        await fake.server.shutdown()
    }

    @Test("hostname, action, score and age are checked against the expectations", arguments: SiteverifyDriver.Vendor.allCases)
    func expectations(vendor: SiteverifyDriver.Vendor) async throws {
        let fake = try await SiteverifyFake(vendor: vendor)
        let captcha = Captcha(driver: fake.driver(), expectations: .init(hostnames: ["shop.example"], action: vendor == .hcaptcha ? nil : "signup", minimumScore: 0.5))
        func reason(_ token: String) async -> CaptchaRejection.Reason? {
            do { try await captcha.verify(token); return nil } catch let rejection as CaptchaRejection { return rejection.reason } catch { return nil }
        }
        #expect(await reason(fake.issue()) == nil)
        #expect(await reason(fake.issue("other-host")) == .wrongHostname)
        #expect(await reason(fake.issue("old")) == .expiredOrDuplicate)
        #expect(await reason(fake.issue("low")) == (vendor == .turnstile ? nil : .lowScore))
        let other = Captcha(driver: fake.driver(), expectations: .init(action: "login"))
        if vendor != .hcaptcha {
            do { try await other.verify(fake.issue()); Issue.record("another action was accepted") } catch let rejection as CaptchaRejection { #expect(rejection.reason == .wrongAction) }
        }
        await fake.server.shutdown()
    }

    @Test("the request is the documented form: secret, response, remoteip (+ sitekey, + idempotency_key); the secret never appears in errors", arguments: SiteverifyDriver.Vendor.allCases)
    func wire(vendor: SiteverifyDriver.Vendor) async throws {
        let fake = try await SiteverifyFake(vendor: vendor)
        let token = fake.issue()
        try await Captcha(driver: fake.driver()).verify(token, remoteIP: "203.0.113.7")
        let request = try #require(fake.server.requests.last)
        let form = try request.form()
        #expect(form["secret"]?.stringValue == SiteverifyFake.secret && form["response"]?.stringValue == token && form["remoteip"]?.stringValue == "203.0.113.7")
        #expect((form["sitekey"] != nil) == (vendor == .hcaptcha) && (form["idempotency_key"] != nil) == (vendor == .turnstile))
        do {
            try await Captcha(driver: fake.driver(secret: "wrong-secret-value")).verify(fake.issue())
            Issue.record("a wrong secret was accepted")
        } catch let error as NimbusError {
            #expect(error.code == .unauthenticated && !error.message.contains("wrong-secret-value"))
        }
        await fake.server.shutdown()
    }

    @Test("429 and 5xx are unavailable with Retry-After; a body that is not the verdict is an internal error; Turnstile retries with the same idempotency key")
    func failures() async throws {
        let fake = try await SiteverifyFake(vendor: .recaptcha)
        fake.server.route(.POST, "/siteverify", replies: [.json(429, #"{"error":"rate"}"#, headers: [("Retry-After", "7")]), .text(502, "<html>bad gateway</html>"),
                                                           .text(200, "<html>not json</html>")])
        let captcha = Captcha(driver: fake.driver())
        do { try await captcha.verify(fake.issue()); Issue.record("429 accepted") } catch let error as NimbusError {
            #expect(error.code == .resourceExhausted || error.code == .unavailable)
            #expect(error.retryAfter == .seconds(7))
        }
        do { try await captcha.verify(fake.issue()); Issue.record("502 accepted") } catch let error as NimbusError { #expect(error.code == .unavailable) }
        do { try await captcha.verify(fake.issue()); Issue.record("HTML accepted") } catch let error as NimbusError { #expect(error.code == .internal) }
        await fake.server.shutdown()

        let turnstile = try await SiteverifyFake(vendor: .turnstile)
        let answers = Counter()
        turnstile.server.route(.POST, "/siteverify") { request in
            if answers.next() == 0 { return .text(500, "oops") }
            return try turnstile.answer(request)
        }
        #expect(try await Captcha(driver: turnstile.driver()).verify(turnstile.issue()).success)
        let keys = try turnstile.server.requests.map { try $0.form()["idempotency_key"]?.stringValue }
        #expect(keys.count == 2 && keys[0] != nil && keys[0] == keys[1])
        await turnstile.server.shutdown()
    }

    @Test("the URL openers read the secret from the environment, never from the URL")
    func openers() async throws {
        let environment = ["TURNSTILE_SECRET": "s1", "MY_SECRET": "s2"]
        let captcha = try await Captcha.open("turnstile://", openers: .captcha.withSiteverify(environment: environment))
        #expect(captcha.driver(as: SiteverifyDriver.self)?.endpoint == "https://challenges.cloudflare.com/turnstile/v0/siteverify")
        let local = try await Captcha.open("hcaptcha://127.0.0.1:9999?secret=env:MY_SECRET&sitekey=abc", openers: .captcha.withSiteverify(environment: environment))
        #expect(local.driver(as: SiteverifyDriver.self)?.endpoint == "http://127.0.0.1:9999/siteverify")
        await #expect(throws: NimbusError.self) { _ = try await Captcha.open("recaptcha://", openers: .captcha.withSiteverify(environment: environment)) }
        await #expect(throws: NimbusError.self) { _ = try await Captcha.open("recaptcha://?secret=literal", openers: .captcha.withSiteverify(environment: environment)) }
    }
}

final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int {
        value.withLock { count in
            defer { count += 1 }
            return count
        }
    }
}
