import Foundation
import NimbusCore
import NimbusMFA
import NimbusTesting
import Testing

@Suite("HOTP and TOTP")
struct OneTimePasswordTests {
    /// RFC 4226 appendix D: the secret "12345678901234567890", counters 0 to 9.
    @Test("HOTP equals RFC 4226's test values")
    func rfc4226() throws {
        let hotp = try HOTP(secret: Secret(Array("12345678901234567890".utf8)))
        let expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
        #expect((0..<10).map { hotp.code(counter: UInt64($0)) } == expected)
    }

    /// RFC 6238 appendix B: 8 digits, 30 s steps, one secret per hash.
    @Test("TOTP equals RFC 6238's test values for SHA-1, SHA-256 and SHA-512", arguments: [
        (OTPAlgorithm.sha1, "12345678901234567890", ["94287082", "07081804", "14050471", "89005924", "69279037", "65353130"]),
        (.sha256, "12345678901234567890123456789012", ["46119246", "68084774", "67062674", "91819424", "90698825", "77737706"]),
        (.sha512, "1234567890123456789012345678901234567890123456789012345678901234",
         ["90693936", "25091201", "99943326", "93441116", "38618901", "47863826"]),
    ])
    func rfc6238(algorithm: OTPAlgorithm, secret: String, expected: [String]) throws {
        let totp = try TOTP(secret: Secret(Array(secret.utf8)), digits: 8, algorithm: algorithm)
        let times: [TimeInterval] = [59, 1_111_111_109, 1_111_111_111, 1_234_567_890, 2_000_000_000, 20_000_000_000]
        #expect(times.map { totp.code(at: Date(timeIntervalSince1970: $0)) } == expected)
    }

    @Test("short secrets, digit counts outside 6–10 and periods under a second are refused")
    func refusals() {
        #expect(throws: NimbusError.self) { _ = try HOTP(secret: Secret(Array(repeating: 1, count: 15))) }
        #expect(throws: NimbusError.self) { _ = try HOTP(secret: Secret(Array(repeating: 1, count: 20)), digits: 5) }
        #expect(throws: NimbusError.self) { _ = try HOTP(secret: Secret(Array(repeating: 1, count: 20)), digits: 11) }
        #expect(throws: NimbusError.self) { _ = try TOTP(secret: Secret(Array(repeating: 1, count: 20)), period: .milliseconds(500)) }
    }

    @Test("base32: RFC 4648 vectors, forgiving input, refusal of bad characters and non-zero trailing bits")
    func base32() {
        let vectors = [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foob", "MZXW6YQ"), ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI")]
        for (plain, encoded) in vectors {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
            #expect(Base32.decode(encoded) == Array(plain.utf8))
        }
        #expect(Base32.encode(Array("f".utf8), padded: true) == "MY======")
        #expect(Base32.decode("MY======") == Array("f".utf8))
        #expect(Base32.decode("mzxw 6ytb-oi") == Array("foobar".utf8))
        #expect(Base32.decode("MZXW1") == nil)          // 1 is not base32
        #expect(Base32.decode("MZ") == nil)             // trailing bits not zero
        #expect(Base32.decode("MZX") == nil)            // impossible length
        #expect(Base32.decode("MY==MY") == nil)         // data after padding
    }
}

@Suite("One-time passwords equal oathtool's", .requires(.oathtool))
struct OathtoolCrossCheckTests {
    @Test("200 random secrets, hashes, digit counts, periods and times: every TOTP and HOTP code equals oathtool's")
    func randomCodes() async throws {
        let oathtool = try Peer.oathtool.url()
        var generator = SystemRandomNumberGenerator()
        for index in 0..<200 {
            let algorithm = OTPAlgorithm.allCases[index % 3]
            let secret = (0..<algorithm.recommendedSecretLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let digits = Int.random(in: 6...8, using: &generator)
            let period = [30, 60, 15][index % 3]
            let time = Int.random(in: 0...4_000_000_000, using: &generator)
            let totp = try TOTP(secret: Secret(secret), digits: digits, algorithm: algorithm, period: .seconds(period))
            let mode = algorithm == .sha1 ? "SHA1" : algorithm.rawValue
            let run = try await ProcessRunner.run(oathtool, ["--totp=\(mode)", "-b", "-d", "\(digits)", "-s", "\(period)s", "-N", "@\(time)",
                                                             Base32.encode(secret)])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == totp.code(at: Date(timeIntervalSince1970: TimeInterval(time))))
            if index % 10 == 0 {
                let counter = UInt64.random(in: 0...1_000_000, using: &generator)
                let hotp = try HOTP(secret: Secret(secret), digits: digits)
                let hex = secret.map { String(format: "%02x", $0) }.joined()
                let hotpRun = try await ProcessRunner.run(oathtool, ["--hotp", "-d", "\(digits)", "-c", "\(counter)", hex])
                #expect(hotpRun.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == hotp.code(counter: counter))
            }
        }
    }
}
