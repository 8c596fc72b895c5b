import Crypto
import Foundation
import NimbusCaptcha
import NimbusCaptchaConformance
import NimbusCaptchaProofOfWork
import NimbusCore
import NimbusTesting
import Testing

@Suite("Proof-of-work captcha")
struct ProofOfWorkTests {
    static let key = Secret(Array(repeating: UInt8(7), count: 32))

    @Test("conformance", arguments: CaptchaConformance.checks)
    func conformance(_ check: CaptchaConformance.Check) async throws {
        let pow = try ProofOfWorkCaptcha(configuration: .init(key: Self.key, baseDifficulty: 8))
        try await check.run(CaptchaConformance.Harness(makeDriver: { pow }, validToken: { ProofOfWorkCaptcha.solve(pow.challenge()) }))
    }

    @Test("the solution's hash has the leading zero bits; too little work, another key, an edited difficulty and expiry are refused")
    func refusals() async throws {
        let clock = ManualDate()
        let pow = try ProofOfWorkCaptcha(configuration: .init(key: Self.key, baseDifficulty: 10, lifetime: .seconds(60)), now: { clock.now })
        let captcha = Captcha(driver: pow, now: { clock.now })
        let challenge = pow.challenge()
        #expect(challenge.difficulty == 10)
        let solution = ProofOfWorkCaptcha.solve(challenge)
        let digest = Array(SHA256.hash(data: Array(solution.utf8)))
        #expect(digest[0] == 0 && digest[1] >> 6 == 0)
        // A nonce that does not do the work.
        var lazy = 0
        while Array(SHA256.hash(data: Array("\(challenge.token).\(lazy)".utf8)))[0] == 0 { lazy += 1 }
        await #expect(throws: CaptchaRejection.self) { try await captcha.verify("\(challenge.token).\(lazy)") }
        // The same challenge signed with another key.
        let other = try ProofOfWorkCaptcha(configuration: .init(key: Secret(Array(repeating: UInt8(8), count: 32)), baseDifficulty: 10), now: { clock.now })
        await #expect(throws: CaptchaRejection.self) { try await Captcha(driver: other).verify(solution) }
        // Lowering the difficulty in the token breaks its signature.
        var parts = challenge.token.split(separator: ".").map(String.init)
        parts[3] = "1"
        await #expect(throws: CaptchaRejection.self) { try await captcha.verify(ProofOfWorkCaptcha.solve(.init(token: parts.joined(separator: "."), difficulty: 1, expiresAt: challenge.expiresAt))) }
        // Solved in time but submitted after expiry.
        clock.advance(61)
        do {
            try await captcha.verify(solution)
            Issue.record("an expired solution was accepted")
        } catch let rejection as CaptchaRejection {
            #expect(rejection.reason == .expiredOrDuplicate)
        }
    }

    @Test("difficulty rises one bit per doubling of the challenge rate above normal, up to the maximum, and falls back after a quiet minute")
    func adaptive() throws {
        let clock = ManualDate()
        let pow = try ProofOfWorkCaptcha(configuration: .init(key: Self.key, baseDifficulty: 12, maximumDifficulty: 15, normalRatePerMinute: 10), now: { clock.now })
        var difficulties: [Int] = []
        for _ in 0..<100 { difficulties.append(pow.challenge().difficulty) }
        #expect(difficulties.prefix(11).allSatisfy { $0 == 12 })
        #expect(difficulties[11] == 13 && difficulties[20] == 14 && difficulties[40] == 15 && difficulties[99] == 15)
        clock.advance(61)
        #expect(pow.currentDifficulty == 12 && pow.challenge().difficulty == 12)
    }

    @Test("pow:// reads the key from the environment only and refuses short keys")
    func opener() async throws {
        let environment = ["NIMBUS_POW_KEY": Data(repeating: 1, count: 32).base64EncodedString(), "SHORT": Data(repeating: 1, count: 8).base64EncodedString()]
        let captcha = try await Captcha.open("pow://?difficulty=9&hostname=shop.example", openers: .captcha.withProofOfWork(environment: environment))
        let pow = try #require(captcha.driver(as: ProofOfWorkCaptcha.self))
        #expect(pow.configuration.baseDifficulty == 9)
        #expect(try await captcha.verify(ProofOfWorkCaptcha.solve(pow.challenge())).hostname == "shop.example")
        await #expect(throws: NimbusError.self) { _ = try await Captcha.open("pow://?key=env:SHORT", openers: .captcha.withProofOfWork(environment: environment)) }
        await #expect(throws: NimbusError.self) { _ = try await Captcha.open("pow://?key=c2VjcmV0", openers: .captcha.withProofOfWork(environment: environment)) }
    }
}
