import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NimbusAuth
import NimbusCore
import Testing

@Suite("JWT bearer middleware")
struct JWTAuthMiddlewareTests {
    @Test("no token and bad tokens get 401 invalid_token; missing scopes and roles 403 insufficient_scope; a good token reaches the handler")
    func middleware() async throws {
        let key = TestKey.es256(id: "k")
        let signer = try await JWTKeySet.jwk(key.privateJWK)
        let verifier = JWTVerifier(keys: try await JWTKeySet(jwks: TestKey.jwks([key])), configuration: .init(issuers: ["https://issuer.test"]))
        let router = Router(context: JWTAuthContext.self)
        router.group("orders")
            .add(middleware: JWTAuthMiddleware(verifier: verifier, scopes: ["orders:read"], roles: ["clerk"], rolesClaim: "realm_access.roles"))
            .get { _, context in "hello \(context.token?.claims.subject ?? "?")" }
        func token(_ extra: [String: JSONValue], lifetime: Double = 300) throws -> String {
            var claims = JWTClaims(extra)
            claims.subject = "ada"
            claims.issuer = "https://issuer.test"
            return try signer.sign(claims, expiresIn: .seconds(lifetime))
        }
        let good = try token(["scope": "orders:read", "realm_access": ["roles": ["clerk"]]])
        let noRole = try token(["scope": "orders:read"])
        let noScope = try token(["realm_access": ["roles": ["clerk"]]])
        let expired = try signer.sign(JWTClaims(["sub": "ada", "iss": "https://issuer.test", "exp": 1000]))

        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/orders", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer realm=\"nimbus\"") == true)
            }
            for bad in [expired, "garbage", String(good.dropLast(2)) + "AA"] {
                try await client.execute(uri: "/orders", method: .get, headers: [.authorization: "Bearer \(bad)"]) { response in
                    #expect(response.status == .unauthorized)
                    #expect(response.headers[.wwwAuthenticate]?.contains("error=\"invalid_token\"") == true)
                    #expect(!String(buffer: response.body).contains(bad))
                }
            }
            for lacking in [noRole, noScope] {
                try await client.execute(uri: "/orders", method: .get, headers: [.authorization: "Bearer \(lacking)"]) { response in
                    #expect(response.status == .forbidden)
                    #expect(response.headers[.wwwAuthenticate]?.contains("error=\"insufficient_scope\", ") == true)
                }
            }
            try await client.execute(uri: "/orders", method: .get, headers: [.authorization: "Bearer \(good)"]) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "hello ada")
            }
        }
    }
}
