import Crypto
import Foundation
import NimbusAuth
import NimbusCore
import Testing

@Suite("JWT signing and verification")
struct JWTVerifierTests {
    let clock = TestClock()

    func claims(sub: String = "ada", lifetime: TimeInterval = 300, extra: [String: JSONValue] = [:]) -> JWTClaims {
        var claims = JWTClaims(extra)
        claims.subject = sub
        claims.issuer = "https://issuer.test"
        claims.audience = ["orders-api"]
        claims.issuedAt = clock.now
        claims.expiresAt = clock.now.addingTimeInterval(lifetime)
        return claims
    }

    func verifier(_ keys: any JWTKeyProvider, _ configure: (inout JWTVerifier.Configuration) -> Void = { _ in }) -> JWTVerifier {
        var configuration = JWTVerifier.Configuration(issuers: ["https://issuer.test"], audiences: ["orders-api"])
        configure(&configuration)
        let clock = clock
        return JWTVerifier(keys: keys, configuration: configuration, now: { clock.now })
    }

    @Test("ES256, RS256, PS256, EdDSA and HS256 tokens round-trip from a private key to its public JWKS")
    func roundTrips() async throws {
        let ec = TestKey.es256(id: "ec-1"), rsa = try TestKey.rsa(id: "rsa-1"), ed = TestKey.ed25519(id: "ed-1")
        let signing = try await JWTKeySet.jwk(ec.privateJWK) + JWTKeySet.pem(rsa.pem, id: "rsa-1") + JWTKeySet.jwk(ed.privateJWK)
        let published = try await JWTKeySet(jwks: TestKey.jwks([ec, rsa, ed]))
        let verify = verifier(published)
        for (kid, algorithm) in [("ec-1", JWSAlgorithm.es256), ("rsa-1", .rs256), ("rsa-1", .ps256), ("rsa-1", .rs512), ("ed-1", .eddsa)] {
            let token = try signing.sign(claims(), keyID: kid, algorithm: algorithm)
            let verified = try await verify.verify(token)
            #expect(verified.algorithm == algorithm)
            #expect(verified.keyID == kid)
            #expect(verified.claims.subject == "ada")
            #expect(verified.header["typ"] == "JWT")
        }
        let secret = try await JWTKeySet.hmac(Secret(Array(repeating: 7, count: 32)), id: "shared")
        let token = try secret.sign(claims())
        let verified = try await verifier(secret) { $0.algorithms = [.hs256] }.verify(token)
        #expect(verified.algorithm == .hs256)
    }

    @Test("alg none is refused in every spelling, even with no signature expected")
    func algNone() async throws {
        let keys = try await JWTKeySet(jwks: TestKey.jwks([.es256(id: "k")]))
        for spelling in ["none", "None", "NONE", "nOnE"] {
            let token = handmade(header: ["alg": .string(spelling), "typ": "JWT"], payload: .object(claims().values))
            #expect(await rejection { _ = try await verifier(keys).verify(token) } == .algorithmNotAllowed)
        }
    }

    @Test("HS/RS confusion: an HS256 token keyed with the RSA public key is refused, even if HS256 is allowed")
    func algorithmConfusion() async throws {
        let rsa = try TestKey.rsa(id: "rsa-1")
        let keys = try await JWTKeySet(jwks: TestKey.jwks([rsa]))
        // The attacker knows the public key and uses its bytes as an HMAC secret.
        let publicPEM = rsa.publicPEM
        let input = handmade(header: ["alg": "HS256", "kid": "rsa-1", "typ": "JWT"], payload: .object(claims().values))
        let signingInput = parts(input)[0] + "." + parts(input)[1]
        let forged = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: Array(publicPEM.utf8)))
        let token = signingInput + "." + Base64URL.encode(Array(forged))
        #expect(await rejection { _ = try await verifier(keys).verify(token) } == .algorithmNotAllowed)
        #expect(await rejection { _ = try await verifier(keys) { $0.algorithms = Set(JWSAlgorithm.allCases) }.verify(token) } == .algorithmNotAllowed)
        // An EC key never verifies an RSA algorithm either, and a JWK's own "alg" narrows its RSA family to one.
        let narrowed = try await JWTKeySet(jwks: TestKey.jwks([try TestKey.rsa(id: "only-rs256", alg: "RS256")]))
        #expect(narrowed.keys[0].algorithms == [.rs256])
        let signer = try await JWTKeySet.pem(rsa.pem, id: "only-rs256")
        let pss = try signer.sign(claims(), algorithm: .ps256)
        #expect(await rejection { _ = try await verifier(narrowed).verify(pss) } == .algorithmNotAllowed)
    }

    @Test("a changed payload, a signature from another key with the same kid, and a truncated signature are refused")
    func forgedSignatures() async throws {
        let real = TestKey.es256(id: "k"), impostor = TestKey.es256(id: "k")
        let keys = try await JWTKeySet(jwks: TestKey.jwks([real]))
        let token = try await JWTKeySet.jwk(real.privateJWK).sign(claims())
        _ = try await verifier(keys).verify(token)

        var tampered = claims()
        tampered.subject = "root"
        let swapped = parts(token)[0] + "." + Base64URL.encode(Array(JSONValue.object(tampered.values).description.utf8)) + "." + parts(token)[2]
        #expect(await rejection { _ = try await verifier(keys).verify(swapped) } == .badSignature)

        let foreign = try await JWTKeySet.jwk(impostor.privateJWK).sign(claims())
        #expect(await rejection { _ = try await verifier(keys).verify(foreign) } == .badSignature)

        let truncated = String(token.dropLast(4))
        #expect(await rejection { _ = try await verifier(keys).verify(truncated) } == .badSignature)
        let unsigned = parts(token)[0] + "." + parts(token)[1] + "."
        #expect(await rejection { _ = try await verifier(keys).verify(unsigned) } == .badSignature)
    }

    @Test("exp, nbf and iat are checked with the leeway; exp is required unless switched off; maxAge limits iat")
    func timeClaims() async throws {
        let key = TestKey.es256(id: "k")
        let signer = try await JWTKeySet.jwk(key.privateJWK)
        let keys = try await JWTKeySet(jwks: TestKey.jwks([key]))
        let verify = verifier(keys) { $0.leeway = .seconds(30) }

        let expiredLongAgo = try signer.sign(claims(lifetime: -31))
        #expect(await rejection { _ = try await verify.verify(expiredLongAgo) } == .expired)
        let expiredWithinLeeway = try signer.sign(claims(lifetime: -29))
        _ = try await verify.verify(expiredWithinLeeway)

        var noExpiry = claims()
        noExpiry.expiresAt = nil
        let eternal = try signer.sign(noExpiry)
        #expect(await rejection { _ = try await verify.verify(eternal) } == .expired)
        _ = try await verifier(keys) { $0.requireExpiration = false }.verify(eternal)

        var early = claims()
        early.notBefore = clock.now.addingTimeInterval(31)
        #expect(await rejection { _ = try await verify.verify(try signer.sign(early)) } == .notYetValid)
        early.notBefore = clock.now.addingTimeInterval(29)
        _ = try await verify.verify(try signer.sign(early))

        var future = claims()
        future.issuedAt = clock.now.addingTimeInterval(3600)
        #expect(await rejection { _ = try await verify.verify(try signer.sign(future)) } == .badIssuedAt)

        var old = claims(lifetime: 86_400)
        old.issuedAt = clock.now.addingTimeInterval(-7200)
        let aged = verifier(keys) { $0.maxAge = .seconds(3600); $0.leeway = .zero }
        #expect(await rejection { _ = try await aged.verify(try signer.sign(old)) } == .badIssuedAt)
        old.issuedAt = nil
        #expect(await rejection { _ = try await aged.verify(try signer.sign(old)) } == .missingClaim)

        var text = claims()
        text["exp"] = "tomorrow"
        #expect(await rejection { _ = try await verify.verify(try signer.sign(text)) } == .malformed)
    }

    @Test("iss, aud, required claims, typ and scopes are checked")
    func identityClaims() async throws {
        let key = TestKey.es256(id: "k")
        let signer = try await JWTKeySet.jwk(key.privateJWK)
        let keys = try await JWTKeySet(jwks: TestKey.jwks([key]))

        var other = claims()
        other.issuer = "https://evil.test"
        #expect(await rejection { _ = try await verifier(keys).verify(try signer.sign(other)) } == .wrongIssuer)
        other.issuer = nil
        #expect(await rejection { _ = try await verifier(keys).verify(try signer.sign(other)) } == .wrongIssuer)

        var audience = claims()
        audience.audience = ["billing-api"]
        #expect(await rejection { _ = try await verifier(keys).verify(try signer.sign(audience)) } == .wrongAudience)
        audience.audience = ["billing-api", "orders-api"]
        _ = try await verifier(keys).verify(try signer.sign(audience))
        audience.audience = []
        #expect(await rejection { _ = try await verifier(keys).verify(try signer.sign(audience)) } == .wrongAudience)

        let required = verifier(keys) { $0.requiredClaims = ["tenant"] }
        #expect(await rejection { _ = try await required.verify(try signer.sign(claims())) } == .missingClaim)
        _ = try await required.verify(try signer.sign(claims(extra: ["tenant": "acme"])))

        // An ID token (typ JWT) offered where an RFC 9068 access token is expected.
        let access = verifier(keys) { $0.expectedType = "at+jwt" }
        #expect(await rejection { _ = try await access.verify(try signer.sign(claims())) } == .wrongType)
        _ = try await access.verify(try signer.sign(claims(), type: "application/at+JWT"))

        let scoped = try signer.sign(claims(extra: ["scope": "orders:read orders:write"]))
        _ = try await verifier(keys).verify(scoped, requiring: ["orders:read"])
        do {
            _ = try await verifier(keys).verify(scoped, requiring: ["orders:read", "admin"])
            Issue.record("a missing scope was accepted")
        } catch let error as NimbusError {
            #expect(error.code == .permissionDenied)
            #expect(error.message.contains("admin"))
        }
        let listed = try signer.sign(claims(extra: ["scp": ["a", "b"]]))
        #expect(try await verifier(keys).verify(listed).claims.scopes == ["a", "b"])
    }

    @Test("crit: an extension the verifier does not understand is refused; an understood one passes; a malformed list is refused")
    func criticalHeaders() async throws {
        let key = TestKey.es256(id: "k")
        let signer = try await JWTKeySet.jwk(key.privateJWK)
        let keys = try await JWTKeySet(jwks: TestKey.jwks([key]))
        let unknown = try signer.sign(claims(), headers: ["crit": ["b64"], "b64": false])
        #expect(await rejection { _ = try await verifier(keys).verify(unknown) } == .unsupportedCriticalHeader)
        let understood = try signer.sign(claims(), headers: ["crit": ["tenant-binding"], "tenant-binding": "acme"])
        _ = try await verifier(keys) { $0.understoodCriticalHeaders = ["tenant-binding"] }.verify(understood)
        let absent = try signer.sign(claims(), headers: ["crit": ["tenant-binding"]])
        #expect(await rejection { _ = try await verifier(keys) { $0.understoodCriticalHeaders = ["tenant-binding"] }.verify(absent) }
                == .unsupportedCriticalHeader)
        let empty = try signer.sign(claims(), headers: ["crit": []])
        #expect(await rejection { _ = try await verifier(keys).verify(empty) } == .malformed)
    }

    @Test("malformed and oversized tokens get a clear refusal and never crash")
    func malformed() async throws {
        let key = TestKey.es256(id: "k")
        let keys = try await JWTKeySet(jwks: TestKey.jwks([key]))
        let verify = verifier(keys)
        for token in ["", "a.b", "a.b.c.d", "a.b.c.d.e", "!!!.e30.", "e30.e30.", "W10.e30.", "bnVsbA.e30.",
                      String(repeating: "a", count: 20_000) + ".e30.x"] {
            #expect(await rejection { _ = try await verify.verify(token) } == .malformed, "\(token.prefix(30))")
        }
        let notObject = handmade(header: ["alg": "ES256", "kid": "k"], payload: ["a", "b"])
        #expect(await rejection { _ = try await verify.verify(notObject) } != nil)
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcXYZ019-_.=+/ \u{0}é")
        for _ in 0..<2000 {
            let token = String((0..<Int.random(in: 0...80, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            #expect(await rejection { _ = try await verify.verify(token) } != nil)
        }
    }

    @Test("key selection: an unknown kid is refused; no kid picks the only key that fits, never one of several")
    func keySelection() async throws {
        let first = TestKey.es256(id: nil), second = TestKey.es256(id: nil)
        let one = try await JWTKeySet(jwks: TestKey.jwks([first]))
        let token = try await JWTKeySet.jwk(first.privateJWK).sign(claims())
        _ = try await verifier(one).verify(token)
        let two = try await JWTKeySet(jwks: TestKey.jwks([first, second]))
        #expect(await rejection { _ = try await verifier(two).verify(token) } == .unknownKey)
        let named = try await JWTKeySet.jwk(TestKey.es256(id: "elsewhere").privateJWK).sign(claims())
        #expect(await rejection { _ = try await verifier(one).verify(named) } == .unknownKey)
    }

    @Test("a JWKS with encryption keys and unknown key types keeps its signature keys; a document that is no JWKS is refused")
    func jwksParsing() async throws {
        let good = TestKey.es256(id: "sig")
        let document = TestKey.jwks([good], extra: [
            ["kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"],
            ["kty": "PQC", "kid": "future"],
            ["kty": "EC", "crv": "secp256k1", "kid": "k1", "x": "AA", "y": "AA"],
            ["kty": "EC", "crv": "P-256", "kid": "broken", "x": "AA", "y": "AA"],
        ])
        let keys = try await JWTKeySet(jwks: document)
        #expect(keys.keys.map(\.id) == ["sig"])
        #expect(keys.skipped.count == 4)
        for bad in ["[]", "{}", "{\"keys\": 3}", "not json"] {
            await #expect(throws: NimbusError.self) { _ = try await JWTKeySet(jwks: Array(bad.utf8)) }
        }
    }

    @Test("HMAC secrets shorter than the hash are refused; a public key cannot sign")
    func keyRules() async throws {
        await #expect(throws: NimbusError.self) { _ = try await JWTKeySet.hmac(Secret(Array(repeating: 1, count: 31))) }
        await #expect(throws: NimbusError.self) { _ = try await JWTKeySet.hmac(Secret(Array(repeating: 1, count: 63)), algorithm: .hs512) }
        let published = try await JWTKeySet(jwks: TestKey.jwks([TestKey.es256(id: "k")]))
        #expect(throws: NimbusError.self) { _ = try published.sign(claims()) }
    }
}

@Suite("Provider presets")
struct ProviderPresetTests {
    @Test("Apple's client secret is an ES256 JWT from the team to appleid.apple.com, at most 180 days long")
    func appleClientSecret() async throws {
        let key = P256.Signing.PrivateKey()
        let apple = try await AppleClientSecret(teamID: "TEAM123456", clientID: "com.example.web", keyID: "KEY1234567", privateKeyPEM: key.pemRepresentation)
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        let secret = try apple.make(lifetime: .seconds(86_400), now: now)
        let point = Array(key.publicKey.rawRepresentation)
        let published = try await JWTKeySet.jwk(["kty": "EC", "crv": "P-256", "kid": "KEY1234567",
                                                 "x": .string(Base64URL.encode(point[0..<32])), "y": .string(Base64URL.encode(point[32..<64]))])
        let verified = try await JWTVerifier(keys: published, configuration: .init(issuers: ["TEAM123456"], audiences: ["https://appleid.apple.com"]),
                                             now: { now }).verify(secret.reveal())
        #expect(verified.algorithm == .es256 && verified.keyID == "KEY1234567" && verified.claims.subject == "com.example.web")
        #expect(verified.claims.expiresAt == now.addingTimeInterval(86_400))
        #expect(throws: NimbusError.self) { _ = try apple.make(lifetime: .seconds(86_400 * 181)) }
        await #expect(throws: NimbusError.self) {
            _ = try await AppleClientSecret(teamID: "T", clientID: "c", keyID: "k", privateKeyPEM: key.publicKey.pemRepresentation)
        }
    }

    @Test("discovery refuses a document naming another issuer, a missing endpoint, and plain-http endpoints off loopback")
    func discoveryChecks() throws {
        let good: [String: JSONValue] = ["issuer": "https://id.example.com", "authorization_endpoint": "https://id.example.com/authorize",
                                         "token_endpoint": "https://id.example.com/token", "jwks_uri": "https://id.example.com/jwks",
                                         "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"]]
        let metadata = try OAuth2ProviderMetadata.parse(good, expectedIssuer: "https://id.example.com")
        #expect(metadata.isOpenIDProvider && metadata.codeChallengeMethods == ["S256"])
        var other = good
        other["issuer"] = "https://evil.example.com"
        #expect(throws: NimbusError.self) { _ = try OAuth2ProviderMetadata.parse(other, expectedIssuer: "https://id.example.com") }
        var missing = good
        missing["token_endpoint"] = nil
        #expect(throws: NimbusError.self) { _ = try OAuth2ProviderMetadata.parse(missing, expectedIssuer: "https://id.example.com") }
        var plain = good
        plain["token_endpoint"] = "http://id.example.com/token"
        #expect(throws: NimbusError.self) { _ = try OAuth2ProviderMetadata.parse(plain, expectedIssuer: "https://id.example.com") }
        #expect(OAuth2ProviderMetadata.microsoftIssuer(tenant: "contoso.onmicrosoft.com") == "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0")
        #expect(OAuth2ProviderMetadata.github.isOpenIDProvider == false)
    }
}
