import Foundation
import NimbusAuth
import NimbusAuthConformance
@testable import NimbusAuthLocal
import NimbusCore
import NimbusTesting
import Synchronization
import Testing

@Suite("Embedded user pool (mem://)", .timeLimit(.minutes(2)))
struct LocalUserPoolTests {
    /// scrypt at N = 2^10 keeps the suite fast; the format and checks are the same as at 2^14.
    static let fast = LocalUserPoolDriver.Configuration(scryptCostExponent: 10)

    @Test("conformance", arguments: UserPoolConformance.checks)
    func conformance(_ check: UserPoolConformance.Check) async throws {
        try await check.run(UserPoolConformance.Harness { try await LocalUserPoolDriver(configuration: Self.fast) })
    }

    final class Inbox: Sendable {
        let codes = Mutex<[String: String]>([:])
        var delivery: LocalUserPoolDriver.CodeDelivery { { user, code in self.codes.withLock { $0[user.username] = code.reveal() } } }
        func code(_ username: String) -> String? { codes.withLock { $0[username] } }
    }

    @Test("a sign-up is confirmed by the delivered code only; wrong codes burn it after five tries")
    func confirmationCodes() async throws {
        let inbox = Inbox()
        let pool = UserPool(driver: try await LocalUserPoolDriver(configuration: Self.fast, deliver: inbox.delivery))
        try await pool.signUp("ada", password: UserPoolConformance.password, attributes: ["email": "ada@example.com"])
        let code = try #require(inbox.code("ada"))
        #expect(code.count == 6 && code.allSatisfy(\.isNumber))
        let wrong = code == "000000" ? "111111" : "000000"
        await #expect(throws: NimbusError.self) { try await pool.confirmSignUp("ada", code: wrong) }
        try await pool.confirmSignUp("ada", code: code)
        #expect(try await pool.user("ada").status == .confirmed)
        await #expect(throws: NimbusError.self) { try await pool.confirmSignUp("ada", code: code) }   // single use

        try await pool.signUp("bob", password: UserPoolConformance.password)
        let bobCode = try #require(inbox.code("bob"))
        for _ in 0..<5 { await #expect(throws: NimbusError.self) { try await pool.confirmSignUp("bob", code: bobCode == "999999" ? "123456" : "999999") } }
        let burnt = await #expect(throws: NimbusError.self) { try await pool.confirmSignUp("bob", code: bobCode) }
        #expect(burnt?.message.contains("tried too often") == true)
        try await pool.driver(as: LocalUserPoolDriver.self)!.resendConfirmationCode("bob")
        let second = try #require(inbox.code("bob"))
        try await pool.confirmSignUp("bob", code: second)
    }

    @Test("a code expires")
    func codeExpiry() async throws {
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let inbox = Inbox()
        let driver = try await LocalUserPoolDriver(configuration: Self.fast, now: { clock.withLock { $0 } }, deliver: inbox.delivery)
        let pool = UserPool(driver: driver, now: { clock.withLock { $0 } })
        try await pool.signUp("cy", password: UserPoolConformance.password)
        clock.withLock { $0 += 86_401 }
        await #expect(throws: NimbusError.self) { try await pool.confirmSignUp("cy", code: inbox.code("cy")!) }
    }

    @Test("five wrong passwords lock the account for 1 s, doubling with each further failure; the right password then works")
    func lockout() async throws {
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let driver = try await LocalUserPoolDriver(configuration: Self.fast, now: { clock.withLock { $0 } })
        let pool = UserPool(driver: driver, now: { clock.withLock { $0 } })
        try await pool.createUser("dee", temporaryPassword: "Temporary-Pa55!")
        try await pool.setPassword("dee", password: UserPoolConformance.password)
        for _ in 0..<5 {
            let error = await #expect(throws: NimbusError.self) { _ = try await pool.signIn("dee", password: "Wrong-Pa55word!") }
            #expect(error?.code == .unauthenticated)
        }
        let locked = await #expect(throws: NimbusError.self) { _ = try await pool.signIn("dee", password: UserPoolConformance.password) }
        #expect(locked?.code == .resourceExhausted)
        clock.withLock { $0 += 1.5 }
        await #expect(throws: NimbusError.self) { _ = try await pool.signIn("dee", password: "Wrong-Pa55word!") }   // sixth failure: 2 s
        clock.withLock { $0 += 1.5 }
        let stillLocked = await #expect(throws: NimbusError.self) { _ = try await pool.signIn("dee", password: UserPoolConformance.password) }
        #expect(stillLocked?.code == .resourceExhausted)
        clock.withLock { $0 += 1 }
        _ = try await pool.signIn("dee", password: UserPoolConformance.password).tokens()
    }

    @Test("the password policy lists every rule a password breaks")
    func policy() async throws {
        let pool = UserPool(driver: try await LocalUserPoolDriver(configuration: Self.fast))
        let error = await #expect(throws: NimbusError.self) { try await pool.signUp("eve", password: "short") }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("at least 8 characters") == true && error?.message.contains("an uppercase letter") == true
                && error?.message.contains("a digit") == true && error?.message.contains("a symbol") == true)
        #expect(error?.message.contains("short") == false)
        let tooLong = await #expect(throws: NimbusError.self) { try await pool.signUp("eve", password: Secret(String(repeating: "Aa1!", count: 65))) }
        #expect(tooLong?.code == .invalidArgument)
        await #expect(throws: NimbusError.self) { try await pool.signUp("", password: UserPoolConformance.password) }
        await #expect(throws: NimbusError.self) { try await pool.signUp("bad\u{0}name", password: UserPoolConformance.password) }
    }

    @Test("passwords are stored as scrypt hashes with a fresh salt, never in the clear")
    func storage() async throws {
        let driver = try await LocalUserPoolDriver(configuration: Self.fast)
        let first = try await driver.hash(UserPoolConformance.password), second = try await driver.hash(UserPoolConformance.password)
        #expect(first.hasPrefix("scrypt$10$") && first != second)
        #expect(!first.contains(UserPoolConformance.password.reveal()))
        #expect(try await driver.matches(UserPoolConformance.password, first))
        #expect(try await driver.matches("Conformance-Pa55?", first) == false)
    }

    @Test("tokens of another pool, expired tokens and tokens for another client are refused")
    func foreignTokens() async throws {
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let one = UserPool(driver: try await LocalUserPoolDriver(configuration: Self.fast, now: { clock.withLock { $0 } }), now: { clock.withLock { $0 } })
        var otherConfiguration = Self.fast
        otherConfiguration.clientID = "other-client"
        let other = UserPool(driver: try await LocalUserPoolDriver(configuration: otherConfiguration, now: { clock.withLock { $0 } }), now: { clock.withLock { $0 } })
        try await one.createUser("fay", temporaryPassword: "Temporary-Pa55!")
        try await one.setPassword("fay", password: UserPoolConformance.password)
        let tokens = try await one.signIn("fay", password: UserPoolConformance.password).tokens()
        let wrongKey = await #expect(throws: NimbusError.self) { _ = try await other.verify(tokens.accessToken.reveal(), use: .access) }
        #expect((wrongKey?.underlying as? JWTRejection)?.reason == .unknownKey || (wrongKey?.underlying as? JWTRejection)?.reason == .badSignature)
        clock.withLock { $0 += 3600 + 31 }
        let expired = await #expect(throws: NimbusError.self) { _ = try await one.verify(tokens.accessToken.reveal(), use: .access) }
        #expect((expired?.underlying as? JWTRejection)?.reason == .expired)
    }

    @Test("mem:// options")
    func opener() async throws {
        let pool = try await UserPool.open("mem://?client_id=web&min_length=12", openers: .userPools.withLocal())
        let driver = try #require(pool.driver(as: LocalUserPoolDriver.self))
        #expect(driver.configuration.clientID == "web" && driver.configuration.passwordPolicy.minimumLength == 12)
        await #expect(throws: NimbusError.self) { _ = try await UserPool.open("mem://?colour=blue", openers: .userPools.withLocal()) }
    }
}
