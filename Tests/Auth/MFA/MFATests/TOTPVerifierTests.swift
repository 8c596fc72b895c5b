import Foundation
import NimbusCore
import NimbusMFA
import NimbusTesting
import Synchronization
import Testing


@Suite("TOTP verification: drift window, replay, attempt limits")
struct TOTPVerifierTests {
    let clock = ManualDate(Date(timeIntervalSince1970: 1_790_000_010))
    let totp = try! TOTP(secret: OTPAuthURI.newSecret())

    func verifier(window: Int = 1, maxFailures: Int = 5) -> TOTPVerifier {
        let clock = clock
        return TOTPVerifier(configuration: .init(window: window, maxFailures: maxFailures), now: { clock.now })
    }

    func code(_ offset: Int) -> String { totp.code(step: UInt64(Int64(totp.step(at: clock.now)) + Int64(offset))) }

    @Test("the current code and one step either side are accepted; two steps away is not")
    func window() async throws {
        for offset in [-1, 0, 1] {
            try await verifier().verify(code(offset), with: totp, account: "ada-\(offset)")
        }
        for offset in [-2, 2] {
            await #expect(throws: NimbusError.self) { try await verifier().verify(code(offset), with: totp, account: "bob-\(offset)") }
        }
        // With a window of 0 only the current step counts.
        await #expect(throws: NimbusError.self) { try await verifier(window: 0).verify(code(-1), with: totp, account: "eve") }
    }

    @Test("a code is accepted once: replaying it, or an older step's code, is refused")
    func replay() async throws {
        let verifier = verifier()
        let step = try await verifier.verify(code(0), with: totp, account: "ada")
        #expect(step == totp.step(at: clock.now))
        do {
            try await verifier.verify(code(0), with: totp, account: "ada")
            Issue.record("a replayed code was accepted")
        } catch let error as NimbusError {
            #expect(error.code == .unauthenticated)
            #expect(error.message.contains("already used"))
        }
        await #expect(throws: NimbusError.self) { try await verifier.verify(code(-1), with: totp, account: "ada") }
        // Another account with the same secret is not affected, and the next step works.
        try await verifier.verify(code(0), with: totp, account: "bob")
        clock.advance(30)
        try await verifier.verify(code(0), with: totp, account: "ada")
    }

    @Test("after 5 wrong codes the account is locked, the right code included, with a retry-after; other accounts are not")
    func lockout() async throws {
        let verifier = verifier()
        let wrong = code(0) == "000000" ? "111111" : "000000"
        for _ in 0..<5 {
            do {
                try await verifier.verify(wrong, with: totp, account: "ada")
                Issue.record("a wrong code was accepted")
            } catch let error as NimbusError { #expect(error.code == .unauthenticated) }
        }
        do {
            try await verifier.verify(code(0), with: totp, account: "ada")
            Issue.record("a locked account accepted a code")
        } catch let error as NimbusError {
            #expect(error.code == .resourceExhausted)
            #expect((error.retryAfter ?? .zero) > .zero)
        }
        try await verifier.verify(code(0), with: totp, account: "bob")
    }

    @Test("a right code gives the account its attempts back")
    func successResets() async throws {
        let verifier = verifier(maxFailures: 3)
        let wrong = code(0) == "000000" ? "111111" : "000000"
        for round in 0..<3 {
            for _ in 0..<2 { await #expect(throws: NimbusError.self) { try await verifier.verify(wrong, with: totp, account: "ada") } }
            try await verifier.verify(code(0), with: totp, account: "ada")
            clock.advance(30)
            _ = round
        }
    }

    @Test("a burst of parallel guesses cannot get past the limit")
    func parallelGuesses() async throws {
        let verifier = verifier()
        let right = code(0)
        let accepted = try await withThrowingTaskGroup(of: Bool.self) { group in
            for guess in 0..<200 {
                let text = String(format: "%06d", guess)
                group.addTask { (try? await verifier.verify(text, with: totp, account: "target")) != nil }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        // At most 5 guesses were checked at all, so 200 guesses find the code only if it is among the checked ones.
        #expect(accepted <= 1)
        if !(0..<200).map({ String(format: "%06d", $0) }).contains(right) { #expect(accepted == 0) }
        await #expect(throws: NimbusError.self) { try await verifier.verify(right, with: totp, account: "target") }
    }

    @Test("input that is not a code of the right length is refused before any comparison")
    func malformed() async throws {
        for text in ["", "12345", "1234567", "12a456", "１２３４５６", "123 456 7"] {
            do {
                try await verifier().verify(text, with: totp, account: "ada")
                Issue.record("'\(text)' was accepted")
            } catch let error as NimbusError { #expect(error.code == .invalidArgument, "\(text)") }
        }
        try await verifier().verify(String(code(0).prefix(3)) + " " + String(code(0).suffix(3)), with: totp, account: "spaced")
    }
}

@Suite("otpauth URIs and recovery codes")
struct ProvisioningTests {
    @Test("a URI round-trips, with the issuer in the label and as a parameter")
    func roundTrip() throws {
        let uri = OTPAuthURI(secret: Secret(Array("12345678901234567890".utf8)), account: "ada@example.com", issuer: "Acme Co",
                             algorithm: .sha256, digits: 8, period: 60)
        #expect(uri.uri == "otpauth://totp/Acme%20Co:ada@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Co&algorithm=SHA256&digits=8&period=60")
        let parsed = try OTPAuthURI(parsing: uri.uri)
        #expect(parsed.account == "ada@example.com" && parsed.issuer == "Acme Co" && parsed.algorithm == .sha256 && parsed.digits == 8 && parsed.period == 60)
        #expect(parsed.secret.reveal() == Array("12345678901234567890".utf8))
        #expect(!uri.description.contains("GEZDGNBV"))
    }

    @Test("bad URIs are refused with the reason", arguments: [
        "https://totp/a?secret=GEZDGNBV", "otpauth://motp/a?secret=GEZDGNBV", "otpauth://totp/a", "otpauth://totp/a?secret=1111",
        "otpauth://totp/a?secret=GEZDGNBV&algorithm=MD5", "otpauth://totp/a?secret=GEZDGNBV&digits=4", "otpauth://totp/a?secret=GEZDGNBV&period=0",
        "otpauth://hotp/a?secret=GEZDGNBV", "otpauth://totp/Acme:a?secret=GEZDGNBV&issuer=Evil",
    ])
    func refusals(text: String) {
        #expect(throws: NimbusError.self) { _ = try OTPAuthURI(parsing: text) }
    }

    @Test("recovery codes: stored only hashed, each redeemable once, forgiving to type, never matching a near miss")
    func recoveryCodes() throws {
        var (codes, stored) = RecoveryCodes.generate(count: 10)
        #expect(Set(codes).count == 10)
        let storedText = String(decoding: try JSONEncoder().encode(stored), as: UTF8.self)
        for code in codes { #expect(!storedText.contains(code.replacingOccurrences(of: "-", with: ""))) }
        let typed = codes[3].uppercased().replacingOccurrences(of: "-", with: " ")
        let index = try #require(RecoveryCodes.match(typed, in: stored))
        #expect(index == 3)
        stored.remove(at: index)
        #expect(RecoveryCodes.match(codes[3], in: stored) == nil)
        var nearMiss = Array(codes[0])
        nearMiss[0] = nearMiss[0] == "a" ? "b" : "a"
        #expect(RecoveryCodes.match(String(nearMiss), in: stored) == nil)
        #expect(RecoveryCodes.match("", in: stored) == nil)
    }
}

@Suite("TOTP and otpauth URIs equal pyotp's", .requires(.authSDKs))
struct PyOTPCrossCheckTests {
    @Test("codes, and URIs in both directions, for each hash")
    func pyotp() async throws {
        let python = try Peer.authSDKs.url()
        for algorithm in OTPAlgorithm.allCases {
            let secret = OTPAuthURI.newSecret(for: algorithm)
            let uri = OTPAuthURI(secret: secret, account: "ada@example.com", issuer: "Acme", algorithm: algorithm, digits: 8, period: 45)
            let time = Int.random(in: 0...3_000_000_000)
            let script = """
            import sys, pyotp
            totp = pyotp.parse_uri(sys.argv[1])
            print(totp.at(int(sys.argv[2])))
            print(pyotp.TOTP(totp.secret, digits=8, digest=totp.digest, interval=45, issuer="Acme", name="ada@example.com").provisioning_uri())
            """
            let run = try await ProcessRunner.run(python, ["-c", script, uri.uri, "\(time)"])
            #expect(run.status == 0, "\(run.stderr)")
            let lines = run.stdout.split(separator: "\n").map(String.init)
            try #require(lines.count == 2)
            #expect(lines[0] == (try uri.totp()).code(at: Date(timeIntervalSince1970: TimeInterval(time))))
            let theirs = try OTPAuthURI(parsing: lines[1])
            #expect(theirs.secret.reveal() == secret.reveal())
            #expect(theirs.account == "ada@example.com" && theirs.issuer == "Acme" && theirs.algorithm == algorithm && theirs.digits == 8 && theirs.period == 45)
        }
    }
}
