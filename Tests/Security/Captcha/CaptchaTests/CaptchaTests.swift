import Foundation
import NimbusCaptcha
import NimbusCaptchaProofOfWork
import NimbusCore
import NimbusTesting
import Testing

@Suite("Captcha: the portable checks")
struct CaptchaTests {
    @Test("a service error code maps to a reason; success with the wrong host or action is refused")
    func reasons() async throws {
        struct Fixed: CaptchaDriver {
            let verdict: CaptchaVerdict
            var provider: String { "fixed" }
            func verify(_ token: String, remoteIP: String?) async throws -> CaptchaVerdict { verdict }
        }
        func reason(_ verdict: CaptchaVerdict, _ expectations: Captcha.Expectations = .init()) async -> CaptchaRejection.Reason? {
            do { try await Captcha(driver: Fixed(verdict: verdict), expectations: expectations).verify("t"); return nil }
            catch let rejection as CaptchaRejection { return rejection.reason } catch { return nil }
        }
        #expect(await reason(.init(success: false, errorCodes: ["timeout-or-duplicate"])) == .expiredOrDuplicate)
        #expect(await reason(.init(success: false, errorCodes: ["invalid-input-response"])) == .invalid)
        #expect(await reason(.init(success: true, hostname: "evil.example"), .init(hostnames: ["shop.example"])) == .wrongHostname)
        #expect(await reason(.init(success: true, action: "login"), .init(action: "signup")) == .wrongAction)
        #expect(await reason(.init(success: true, score: 0.1)) == .lowScore)
        #expect(await reason(.init(success: true, challengeTime: Date().addingTimeInterval(-600))) == .expiredOrDuplicate)
        #expect(await reason(.init(success: true, hostname: "shop.example", action: "signup", score: 0.7, errorCodes: []),
                             .init(hostnames: ["shop.example"], action: "signup")) == nil)
    }
}
