import Crypto
import Foundation
import NimbusAuth
import NimbusCore
import NimbusTesting
import Testing

@Suite("nimbus auth", .timeLimit(.minutes(2)))
struct AuthCLITests {
    @Test("totp code prints RFC 6238's values; verify accepts one step of drift and exits 1 beyond it; new makes a URI")
    func totp() async throws {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"    // "12345678901234567890"
        let code = try await Binary.run(["auth", "totp", "code", "--secret", secret, "--digits", "8", "--time", "1111111109"])
        #expect(code.stdout == "07081804\n", "\(code.output)")
        let sha512 = try await Binary.run(["auth", "totp", "code", "--secret",
                                           Base32.encode(Array("1234567890123456789012345678901234567890123456789012345678901234".utf8)),
                                           "--digits", "8", "--algorithm", "SHA512", "--time", "2000000000"])
        #expect(sha512.stdout == "38618901\n", "\(sha512.output)")
        let drift = try await Binary.run(["auth", "totp", "verify", "--secret", secret, "--digits", "8", "--time", "1111111139", "07081804"])
        #expect(drift.status == 0 && drift.stdout.contains("-1"), "\(drift.output)")
        let late = try await Binary.run(["auth", "totp", "verify", "--secret", secret, "--digits", "8", "--time", "1111111200", "07081804"])
        #expect(late.status == 1 && late.stderr.contains("invalid"), "\(late.output)")
        let new = try await Binary.run(["auth", "totp", "new", "--account", "ada@example.com", "--issuer", "Acme", "--json"])
        let json = try JSONValue.parse(Array(new.stdout.utf8))
        let uri = try #require(json["uri"]?.stringValue)
        #expect(uri.hasPrefix("otpauth://totp/Acme:ada@example.com?secret=\(json["secret"]?.stringValue ?? "?")&issuer=Acme"), "\(new.output)")
        let bad = try await Binary.run(["auth", "totp", "code", "--secret", "not base32!"])
        #expect(bad.status != 0 && bad.stderr.contains("base32"), "\(bad.output)")
    }

    @Test("jwt decode shows header and claims; jwt verify checks them against a JWKS file and exits 1 when refused")
    func jwt() async throws {
        let key = P256.Signing.PrivateKey()
        let point = Array(key.publicKey.rawRepresentation)
        let publicJWK: JSONValue = ["kty": "EC", "crv": "P-256", "kid": "cli", "x": .string(Base64URL.encode(point[0..<32])),
                                    "y": .string(Base64URL.encode(point[32..<64]))]
        let signer = try await JWTKeySet.pem(key.pemRepresentation, id: "cli")
        var claims = JWTClaims(["scope": "a b"])
        claims.subject = "ada"
        claims.issuer = "https://issuer.test"
        let token = try signer.sign(claims, expiresIn: .seconds(300))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString).json")
        try Data(JSONValue.object(["keys": [publicJWK]]).description.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }

        let decoded = try await Binary.run(["auth", "jwt", "decode", token])
        let json = try JSONValue.parse(Array(decoded.stdout.utf8))
        #expect(json["header"]?["kid"] == "cli" && json["claims"]?["sub"] == "ada", "\(decoded.output)")
        #expect(decoded.stderr.contains("not checked"))

        let verified = try await Binary.run(["auth", "jwt", "verify", "--jwks-file", file.path, "--issuer", "https://issuer.test", token])
        #expect(verified.status == 0 && verified.stdout.contains("\"ES256\""), "\(verified.output)")
        let wrongIssuer = try await Binary.run(["auth", "jwt", "verify", "--jwks-file", file.path, "--issuer", "https://other.test", token])
        #expect(wrongIssuer.status == 1 && wrongIssuer.stderr.contains("issuer"), "\(wrongIssuer.output)")
        let tampered = try await Binary.run(["auth", "jwt", "verify", "--jwks-file", file.path, String(token.dropLast(3)) + "AAA"])
        #expect(tampered.status == 1 && tampered.stderr.contains("signature"), "\(tampered.output)")
    }
}
