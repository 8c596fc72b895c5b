import Crypto
import Foundation
import NimbusAuth
import NimbusCore
import NimbusTesting
import Testing

/// The same tokens through Nimbus and authlib (scripts/auth/authlib-oracle): what one accepts the
/// other accepts, and what one refuses the other refuses.
@Suite("JWT verification agrees with authlib", .requires(.authSDKs))
struct AuthlibCrossCheckTests {
    let now = 1_790_000_000

    func oracle(_ arguments: [String], input: String? = nil) async throws -> JSONValue {
        let python = try Peer.authSDKs.url()
        let script = (Peer.packageRoot() ?? ".") + "/scripts/auth/authlib-oracle"
        let run = try await ProcessRunner.run(python, [script] + arguments, input: input.map { Array($0.utf8) })
        #expect(run.status == 0, "\(run.stderr)")
        return try JSONValue.parse(Array(run.stdout.utf8))
    }

    @Test("tokens authlib signs (RS256, PS256, ES256, ES384, EdDSA) verify in Nimbus with authlib's JWKS")
    func authlibSigns() async throws {
        let signed = try await oracle(["sign", "\(now)"])
        let keys = try await JWTKeySet(jwks: Array(try #require(signed["jwks"]).description.utf8))
        #expect(keys.keys.count == 5 && keys.skipped.isEmpty, "\(keys.skipped)")
        let now = now
        let verifier = JWTVerifier(keys: keys, configuration: .init(issuers: ["https://issuer.test"], audiences: ["orders-api"]),
                                   now: { Date(timeIntervalSince1970: TimeInterval(now)) })
        let tokens = try #require(signed["tokens"]?.arrayValue)
        #expect(tokens.count == 5)
        for (index, entry) in tokens.enumerated() {
            let token = try #require(entry["token"]?.stringValue)
            let verified = try await verifier.verify(token)
            #expect(verified.algorithm.rawValue == entry["alg"]?.stringValue)
            #expect(verified.claims.subject == "user-\(index)")
            // One changed byte in the payload: refused.
            var parts = token.split(separator: ".").map(String.init)
            parts[1] = Base64URL.encode(Array(#"{"sub":"root","iss":"https://issuer.test","aud":"orders-api","exp":9999999999}"#.utf8))
            #expect(await rejection { _ = try await verifier.verify(parts.joined(separator: ".")) } == .badSignature)
        }
    }

    @Test("authlib accepts the tokens Nimbus signs, and refuses the same attack tokens Nimbus refuses")
    func nimbusSigns() async throws {
        let ec = TestKey.es256(id: "ec"), rsa = try TestKey.rsa(id: "rsa"), ed = TestKey.ed25519(id: "ed")
        let p384 = P384.Signing.PrivateKey()
        let point = Array(p384.publicKey.rawRepresentation)
        let p384JWK: JSONValue = ["kty": "EC", "crv": "P-384", "kid": "p384", "x": .string(Base64URL.encode(point[0..<48])),
                                  "y": .string(Base64URL.encode(point[48..<96]))]
        let signing = try await JWTKeySet.jwk(ec.privateJWK) + JWTKeySet.pem(rsa.pem, id: "rsa") + JWTKeySet.jwk(ed.privateJWK)
            + JWTKeySet.pem(p384.pemRepresentation, id: "p384")
        let jwks: JSONValue = ["keys": .array([ec.publicJWK, rsa.publicJWK, ed.publicJWK, p384JWK])]
        let date = Date(timeIntervalSince1970: TimeInterval(now))

        func claims(lifetime: TimeInterval = 300, audience: String = "orders-api") -> JWTClaims {
            var claims = JWTClaims(["sub": "ada", "iss": "https://issuer.test"])
            claims.audience = [audience]
            claims.issuedAt = date
            claims.expiresAt = date.addingTimeInterval(lifetime)
            return claims
        }
        var cases: [(name: String, token: String, valid: Bool)] = []
        for (kid, algorithm) in [("ec", JWSAlgorithm.es256), ("rsa", .rs256), ("rsa", .ps256), ("rsa", .rs512), ("ed", .eddsa), ("p384", .es384)] {
            cases.append(("\(algorithm.rawValue)", try signing.sign(claims(), keyID: kid, algorithm: algorithm), true))
        }
        let good = try signing.sign(claims(), keyID: "ec")
        let goodParts = good.split(separator: ".").map(String.init)
        cases.append(("expired", try signing.sign(claims(lifetime: -3600), keyID: "ec"), false))
        cases.append(("wrong audience", try signing.sign(claims(audience: "billing-api"), keyID: "ec"), false))
        cases.append(("alg none", handmade(header: ["alg": "none", "kid": "ec"], payload: .object(claims().values)), false))
        cases.append(("tampered", goodParts[0] + "." + Base64URL.encode(Array(#"{"sub":"root"}"#.utf8)) + "." + goodParts[2], false))
        let confusion = handmade(header: ["alg": "HS256", "kid": "rsa"], payload: .object(claims().values))
        let input = confusion.split(separator: ".").prefix(2).joined(separator: ".")
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(rsa.publicPEM.utf8)))
        cases.append(("HS256 keyed with the RSA public key", input + "." + Base64URL.encode(Array(mac)), false))

        let results = try await oracle(["verify", "\(now)"], input: JSONValue.object(["jwks": jwks, "tokens": .array(cases.map { .string($0.token) })]).description)
        let answers = try #require(results.arrayValue)
        try #require(answers.count == cases.count)
        let keys = try await JWTKeySet(jwks: Array(jwks.description.utf8))
        let verifier = JWTVerifier(keys: keys, configuration: .init(issuers: ["https://issuer.test"], audiences: ["orders-api"]), now: { date })
        for (index, item) in cases.enumerated() {
            let authlibValid = answers[index]["valid"] == true
            let nimbusValid = (try? await verifier.verify(item.token)) != nil
            #expect(authlibValid == item.valid, "authlib on \(item.name): \(answers[index])")
            #expect(nimbusValid == item.valid, "Nimbus on \(item.name)")
        }
    }
}
