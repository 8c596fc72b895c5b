import Crypto
import Foundation
@testable import NimbusAuthCognito
import NimbusCore
import NimbusTesting
import Testing

@Suite("Cognito SRP (USER_SRP_AUTH)", .timeLimit(.minutes(2)))
struct CognitoSRPTests {
    static let poolID = "eu-west-1_AbCdEf123"

    /// The server side of SRP-6a as Cognito runs it, written from RFC 5054 and the client's
    /// conventions: verifier v = g^x, B = k·v + g^b, S = (A·v^u)^b.
    struct Server {
        let salt: [UInt8]
        let verifier: SRPInteger
        let secret: SRPInteger
        let publicValue: SRPInteger

        init(poolName: String, userID: String, password: String) {
            salt = SecureRandom.bytes(16)
            let inner = Array(SHA256.hash(data: Array("\(poolName)\(userID):\(password)".utf8)))
            let x = SRPInteger(bytes: Array(SHA256.hash(data: CognitoSRP.padded(SRPInteger(bytes: salt)) + inner)))
            verifier = CognitoSRP.field.power(CognitoSRP.generator, x)
            secret = SRPInteger(bytes: SecureRandom.bytes(64))
            let kv = CognitoSRP.field.product(CognitoSRP.multiplier.remainder(CognitoSRP.prime), verifier)
            publicValue = (kv + CognitoSRP.field.power(CognitoSRP.generator, secret)).remainder(CognitoSRP.prime)
        }

        func expectedSignature(clientPublicHex: String, poolName: String, userID: String, block: [UInt8], timestamp: String) -> String {
            let clientPublic = SRPInteger(hex: clientPublicHex)!
            let u = SRPInteger(bytes: Array(SHA256.hash(data: CognitoSRP.padded(clientPublic) + CognitoSRP.padded(publicValue))))
            let premaster = CognitoSRP.field.power(CognitoSRP.field.product(clientPublic, CognitoSRP.field.power(verifier, u)), secret)
            let prk = HMAC<SHA256>.authenticationCode(for: CognitoSRP.padded(premaster), using: SymmetricKey(data: CognitoSRP.padded(u)))
            let key = Array(HMAC<SHA256>.authenticationCode(for: Array("Caldera Derived Key".utf8) + [1], using: SymmetricKey(data: Data(prk))).prefix(16))
            let message = Array(poolName.utf8) + Array(userID.utf8) + block + Array(timestamp.utf8)
            return Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))).base64EncodedString()
        }
    }

    @Test("a server holding only the verifier accepts the client's claim, and refuses it for a wrong password")
    func agreesWithServer() throws {
        let userID = "8f2b6c3e-1111-4a2b-9c3d-0123456789ab"
        let server = Server(poolName: "AbCdEf123", userID: userID, password: "Correct-Horse-9!")
        let block = SecureRandom.bytes(48)
        let timestamp = CognitoSRP.timestamp(Date(timeIntervalSince1970: 1_796_000_000))
        let client = CognitoSRP(poolID: Self.poolID)
        let claim = try client.passwordClaim(userIDForSRP: userID, password: "Correct-Horse-9!", saltHex: Self.hex(server.salt),
                                             serverPublicHex: server.publicValue.hex, secretBlock: Data(block).base64EncodedString(), timestamp: timestamp)
        let expected = server.expectedSignature(clientPublicHex: client.publicValueHex, poolName: "AbCdEf123", userID: userID, block: block, timestamp: timestamp)
        #expect(claim == expected)
        let wrong = try client.passwordClaim(userIDForSRP: userID, password: "Correct-Horse-9?", saltHex: Self.hex(server.salt),
                                             serverPublicHex: server.publicValue.hex, secretBlock: Data(block).base64EncodedString(), timestamp: timestamp)
        #expect(wrong != expected)
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.hexString }

    @Test("server values outside the group, a non-hex salt and an empty secret block abort the sign-in")
    func refusals() throws {
        let client = CognitoSRP(poolID: Self.poolID)
        let block = Data(SecureRandom.bytes(16)).base64EncodedString()
        func claim(b: String, salt: String = "00ab", block: String = block) throws {
            _ = try client.passwordClaim(userIDForSRP: "u", password: "p", saltHex: salt, serverPublicHex: b, secretBlock: block, timestamp: "t")
        }
        for bad in ["0", "00", CognitoSRP.groupPrimeHex, CognitoSRP.groupPrimeHex + "00", "zz", ""] {
            let error = #expect(throws: NimbusError.self) { try claim(b: bad) }
            #expect(error?.code == .unauthenticated, "B = \(bad.prefix(10))")
        }
        #expect(throws: NimbusError.self) { try claim(b: "1234", salt: "not hex") }
        #expect(throws: NimbusError.self) { try claim(b: "1234", block: "***") }
        _ = try claim(b: "1234")
    }

    @Test("the timestamp is Cognito's: English names, day not padded, UTC")
    func timestamp() {
        #expect(CognitoSRP.timestamp(Date(timeIntervalSince1970: 1_796_000_000)) == "Mon Nov 30 00:53:20 UTC 2026")
        #expect(CognitoSRP.timestamp(Date(timeIntervalSince1970: 1_796_634_303)) == "Mon Dec 7 09:05:03 UTC 2026")
    }

    @Test("the arithmetic: (a·b) mod N and a^e mod N match schoolbook results")
    func arithmetic() {
        let field = SRPModulus(SRPInteger(1_000_003))
        #expect(field.power(SRPInteger(2), SRPInteger(1_000_002)) == SRPInteger(1))            // Fermat
        #expect(field.power(SRPInteger(123_456), SRPInteger(789)).limbs == [Self.modPow(123_456, 789, 1_000_003)])
        #expect(field.product(SRPInteger(999_999), SRPInteger(888_888)).limbs == [UInt64(999_999 * 888_888 % 1_000_003)])
        let big = SRPInteger(hex: "1" + String(repeating: "0", count: 40))!
        #expect((big * big).remainder(big) == SRPInteger(limbs: []))
        #expect(((big + SRPInteger(5)) - big) == SRPInteger(5))
        #expect(SRPInteger(hex: "00ff")!.bytes == [0xff] && CognitoSRP.padded(SRPInteger(hex: "ff")!) == [0, 0xff] && CognitoSRP.padded(SRPInteger(hex: "7f")!) == [0x7f])
    }

    static func modPow(_ base: UInt64, _ exponent: UInt64, _ modulus: UInt64) -> UInt64 {
        var result: UInt64 = 1, base = base % modulus, exponent = exponent
        while exponent > 0 {
            if exponent & 1 == 1 { result = result * base % modulus }
            base = base * base % modulus
            exponent >>= 1
        }
        return result
    }
}

@Suite("Cognito SRP agrees with pycognito", .requires(.authSDKs), .timeLimit(.minutes(2)))
struct CognitoSRPCrossCheckTests {
    @Test("A, the HKDF key, the claim signature and the timestamp are byte-equal to pycognito's on random vectors")
    func vectors() async throws {
        var vectors: [JSONValue] = [], clients: [CognitoSRP] = []
        var expected: [(key: String, signature: String, publicHex: String, timestamp: String)] = []
        for index in 0..<3 {
            let smallA = SecureRandom.bytes(128)
            let client = CognitoSRP(poolID: "us-east-1_Pool\(index)x", ephemeralSecret: smallA)
            let serverPublic = CognitoSRP.field.power(CognitoSRP.generator, SRPInteger(bytes: SecureRandom.bytes(64)))
            let salt = CognitoSRPTests.hex(SecureRandom.bytes(16))
            let block = Data(SecureRandom.bytes(200)).base64EncodedString()
            let unix = 1_790_000_000 + index * 86_400 * 17
            let timestamp = CognitoSRP.timestamp(Date(timeIntervalSince1970: TimeInterval(unix)))
            let userID = UUID().uuidString.lowercased()
            let password = "pässword-\(index)-\(UUID().uuidString.prefix(4))"
            let key = try client.authenticationKey(userIDForSRP: userID, password: Secret(password), saltHex: salt, serverPublicHex: serverPublic.hex)
            let signature = try client.passwordClaim(userIDForSRP: userID, password: Secret(password), saltHex: salt, serverPublicHex: serverPublic.hex,
                                                     secretBlock: block, timestamp: timestamp)
            vectors.append(["poolId": .string("us-east-1_Pool\(index)x"), "userIdForSrp": .string(userID), "password": .string(password),
                            "smallA": .string(CognitoSRPTests.hex(smallA)), "srpB": .string(serverPublic.hex), "salt": .string(salt),
                            "secretBlock": .string(block), "timestamp": .string(timestamp), "unixTime": .number(Double(unix))])
            clients.append(client)
            expected.append((CognitoSRPTests.hex(key), signature, client.publicValueHex, timestamp))
        }
        let python = try Peer.authSDKs.url()
        let script = (Peer.packageRoot() ?? ".") + "/scripts/auth/cognito-srp-oracle"
        let run = try await ProcessRunner.run(python, [script], input: Array(JSONValue.array(vectors).description.utf8))
        #expect(run.status == 0, "\(run.stderr)")
        let answers = try #require(try JSONValue.parse(Array(run.stdout.utf8)).arrayValue)
        try #require(answers.count == expected.count)
        for (answer, mine) in zip(answers, expected) {
            #expect(answer["srpA"]?.stringValue == mine.publicHex)
            #expect(answer["hkdf"]?.stringValue == mine.key)
            #expect(answer["signature"]?.stringValue == mine.signature)
            #expect(answer["timestamp"]?.stringValue == mine.timestamp)
        }
    }
}
