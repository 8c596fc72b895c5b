import Crypto
import Foundation
import NimbusAuth
import NimbusCore
import NimbusGateway
import NimbusTesting
import Testing

@Suite("Gateway admin endpoints accept OIDC access tokens", .timeLimit(.minutes(2)))
struct GatewayAdminOIDCTests {
    @Test("a token with the admin scope administers; without it 403; expired, foreign or for another audience 401; the master key still works")
    func adminTokens() async throws {
        // The issuer: discovery and JWKS served locally, tokens signed with its key.
        let issuer = try await FakeHTTPServer.start()
        defer { Task { await issuer.shutdown() } }
        let key = P256.Signing.PrivateKey()
        let point = Array(key.publicKey.rawRepresentation)
        let jwks: JSONValue = ["keys": [["kty": "EC", "crv": "P-256", "kid": "admin-1", "x": .string(Base64URL.encode(point[0..<32])),
                                         "y": .string(Base64URL.encode(point[32..<64]))]]]
        issuer.route(.GET, "/.well-known/openid-configuration", reply: .json(200, [
            "issuer": .string(issuer.baseURL), "authorization_endpoint": .string(issuer.baseURL + "/authorize"),
            "token_endpoint": .string(issuer.baseURL + "/token"), "jwks_uri": .string(issuer.baseURL + "/jwks"),
            "id_token_signing_alg_values_supported": ["ES256"]]))
        issuer.route(.GET, "/jwks", reply: .json(200, jwks))
        let signer = try await JWTKeySet.pem(key.pemRepresentation, id: "admin-1")
        func token(scope: String, audience: String = "nimbus-gateway", lifetime: Double = 300, keys: JWTKeySet? = nil) throws -> String {
            var claims = JWTClaims(["scope": .string(scope)])
            claims.subject = "ops"
            claims.issuer = issuer.baseURL
            claims.audience = [audience]
            return try (keys ?? signer).sign(claims, expiresIn: .seconds(lifetime))
        }

        var configuration = testConfiguration()
        configuration.adminOIDC = .init(issuer: issuer.baseURL, audience: "nimbus-gateway")
        let rig = try await GatewayRig.start(configuration)
        defer { Task { await rig.shutdown() } }

        let admin = try token(scope: "openid nimbus:admin")
        let created = try await rig.call(.POST, "/key/generate", ["name": "from-oidc"], key: admin)
        #expect(created.status == 200 && created.body["key"]?.stringValue != nil, "\(created.body)")
        #expect(try await rig.call(.GET, "/v1/gateway/spend", key: admin).status == 200)
        #expect(try await rig.call(.POST, "/key/generate", ["name": "x"], key: try token(scope: "openid")).status == 403)
        let foreign = try await JWTKeySet.pem(P256.Signing.PrivateKey().pemRepresentation, id: "admin-1")
        for refused in [try token(scope: "nimbus:admin", lifetime: -3600), try token(scope: "nimbus:admin", audience: "other"),
                        try token(scope: "nimbus:admin", keys: foreign)] {
            #expect(try await rig.call(.POST, "/key/generate", ["name": "x"], key: refused).status == 401)
        }
        #expect(try await rig.call(.POST, "/key/generate", ["name": "master"], key: "sk-master-test").status == 200)
        // An admin token is not an API key for model calls.
        #expect(try await rig.call(.POST, "/v1/chat/completions", ["model": "memory", "messages": [["role": "user", "content": "hi"]]], key: admin).status == 401)
        // Discovery and the JWKS were fetched once each, for all of the above.
        #expect(issuer.requests.filter { $0.path == "/.well-known/openid-configuration" }.count == 1)
        #expect(issuer.requests.filter { $0.path == "/jwks" }.count == 1)
    }
}
