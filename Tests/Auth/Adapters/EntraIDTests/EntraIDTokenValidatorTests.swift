import Crypto
import CryptoExtras
import Foundation
import NimbusAuth
@testable import NimbusAuthEntraID
import NimbusCore
import NimbusTesting
import Synchronization
import Testing

/// Entra ID's rules, from Microsoft's identity platform documentation ("Access tokens", "Validate
/// tokens", "Multitenant apps"), against tokens signed by a local key served the way
/// `login.microsoftonline.com/{tenant}/discovery/v2.0/keys` serves its keys.
@Suite("Entra ID token validation (v1/v2 issuers, single- and multi-tenant)")
struct EntraIDTokenValidatorTests {
    static let contoso = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    static let fabrikam = "0b9f1a3e-1f2d-4c5b-9a8e-7d6c5b4a3f21"
    static let api = "api://orders"
    static let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let signing = Task<JWTKeySet, any Error> { try await JWTKeySet.pem(key.pemRepresentation, id: "entra-kid-1", algorithms: [.rs256]) }

    static func token(_ claims: [String: JSONValue], version: String = "2.0", tenant: String = contoso, issuer: String? = nil, expiresIn: Duration = .seconds(3600)) async throws -> String {
        var values: [String: JSONValue] = ["aud": .string(api), "tid": .string(tenant), "oid": "2c7b6e5d-0000-4000-8000-000000000001", "sub": "pairwise-sub",
                                           "ver": .string(version), "iss": .string(issuer ?? (version == "1.0" ? "https://sts.windows.net/\(tenant)/" : "https://login.microsoftonline.com/\(tenant)/v2.0")),
                                           "scp": "Orders.Read Orders.Write", "preferred_username": "ada@contoso.com", "name": "Ada", "azp": "client-app"]
        for (name, value) in claims { values[name] = value }
        values = values.filter { $0.value != .null }
        return try await signing.value.sign(JWTClaims(values), expiresIn: expiresIn)
    }

    static func validator(tenant: String = contoso, allowed: Set<String>? = nil, personal: Bool = false, versions: Set<String> = ["1.0", "2.0"]) async throws -> EntraIDTokenValidator {
        EntraIDTokenValidator(configuration: .init(tenant: tenant, audiences: [api, "00000000-1111-2222-3333-444444444444"], allowedTenants: allowed,
                                                   allowPersonalAccounts: personal, versions: versions), keys: try await signing.value)
    }

    static func reason(_ body: () async throws -> Void) async -> JWTRejection.Reason? {
        do { try await body(); return nil } catch let error as NimbusError { return (error.underlying as? JWTRejection)?.reason } catch { return nil }
    }

    @Test("a v2 user token reads as an identity: oid, tid, scopes, username; a v1 token with its sts.windows.net issuer too")
    func valid() async throws {
        let entra = try await Self.validator()
        let who = try await entra.validate(try await Self.token([:]))
        #expect(who.objectID == "2c7b6e5d-0000-4000-8000-000000000001" && who.tenantID == Self.contoso && who.version == "2.0")
        #expect(who.scopes == ["Orders.Read", "Orders.Write"] && who.username == "ada@contoso.com" && !who.isAppOnly && who.clientAppID == "client-app")
        let v1 = try await entra.validate(try await Self.token(["preferred_username": .null, "upn": "ada@contoso.com", "azp": .null, "appid": "client-app"], version: "1.0"))
        #expect(v1.version == "1.0" && v1.username == "ada@contoso.com" && v1.clientAppID == "client-app")
    }

    @Test("issuers must match the token's version and its own tenant")
    func issuers() async throws {
        let entra = try await Self.validator()
        #expect(await Self.reason { _ = try await entra.validate(try await Self.token([:], version: "2.0", issuer: "https://sts.windows.net/\(Self.contoso)/")) } == .wrongIssuer)
        #expect(await Self.reason { _ = try await entra.validate(try await Self.token([:], version: "1.0", issuer: "https://login.microsoftonline.com/\(Self.contoso)/v2.0")) } == .wrongIssuer)
        #expect(await Self.reason { _ = try await entra.validate(try await Self.token([:], issuer: "https://login.microsoftonline.com/\(Self.fabrikam)/v2.0")) } == .wrongIssuer)
        #expect(await Self.reason { _ = try await entra.validate(try await Self.token([:], issuer: "https://login.microsoftonline.com/common/v2.0")) } == .wrongIssuer)
        #expect(await Self.reason { _ = try await entra.validate(try await Self.token(["ver": "3.0"])) } == .wrongType)
        #expect(await Self.reason { _ = try await Self.validator(versions: ["2.0"]).validate(try await Self.token([:], version: "1.0")) } == .wrongType)
    }

    @Test("single-tenant apps refuse other tenants; multi-tenant apps apply their allow-list and the personal-account switch")
    func tenants() async throws {
        #expect(await Self.reason { _ = try await Self.validator().validate(try await Self.token([:], tenant: Self.fabrikam)) } == .wrongIssuer)
        let any = try await Self.validator(tenant: "organizations")
        _ = try await any.validate(try await Self.token([:], tenant: Self.fabrikam))
        let listed = try await Self.validator(tenant: "organizations", allowed: [Self.contoso])
        _ = try await listed.validate(try await Self.token([:], tenant: Self.contoso))
        #expect(await Self.reason { _ = try await listed.validate(try await Self.token([:], tenant: Self.fabrikam)) } == .wrongIssuer)
        let msa = EntraIDTokenValidator.personalAccountsTenant
        #expect(await Self.reason { _ = try await Self.validator(tenant: "common").validate(try await Self.token([:], tenant: msa)) } == .wrongIssuer)
        _ = try await Self.validator(tenant: "common", personal: true).validate(try await Self.token([:], tenant: msa))
    }

    @Test("another audience, an expired token, a forged signature, HS256 and a missing oid are refused")
    func attacks() async throws {
        let entra = try await Self.validator()
        #expect(await Self.reason { _ = try await entra.validate(try await Self.token(["aud": "api://someone-else"])) } == .wrongAudience)
        #expect(await Self.reason { _ = try await entra.validate(try await Self.token([:], expiresIn: .seconds(-3600))) } == .expired)
        var parts = try await Self.token([:]).split(separator: ".").map(String.init)
        var signature = Array(parts[2])
        signature[10] = signature[10] == "A" ? "B" : "A"
        parts[2] = String(signature)
        #expect(await Self.reason { _ = try await entra.validate(parts.joined(separator: ".")) } == .badSignature)
        let hmac = try await JWTKeySet.hmac(Secret(Array("0123456789abcdef0123456789abcdef".utf8)), id: "entra-kid-1")
        let forged = try hmac.sign(JWTClaims(["aud": .string(Self.api), "tid": .string(Self.contoso), "oid": "x", "sub": "x", "ver": "2.0",
                                              "iss": .string("https://login.microsoftonline.com/\(Self.contoso)/v2.0")]), expiresIn: .seconds(600))
        #expect(await Self.reason { _ = try await entra.validate(forged) } == .algorithmNotAllowed)
        #expect(await Self.reason { _ = try await entra.validate(try await Self.token(["oid": .null])) } == .missingClaim)
        #expect(await Self.reason { _ = try await entra.validate(try await Self.token(["tid": "not-a-guid", "iss": "https://login.microsoftonline.com/not-a-guid/v2.0"])) } == .missingClaim)
    }

    @Test("app-only tokens carry roles, not scopes; group overage is reported for Graph")
    func rolesAndGroups() async throws {
        let entra = try await Self.validator()
        let app = try await Self.token(["scp": .null, "preferred_username": .null, "name": .null, "roles": ["Orders.ReadWrite.All"], "idtyp": "app"])
        let identity = try await entra.validate(app, roles: ["Orders.ReadWrite.All"])
        #expect(identity.isAppOnly && identity.roles == ["Orders.ReadWrite.All"])
        await #expect(throws: NimbusError.self) { _ = try await entra.validate(app, requiringScopes: ["Orders.Read"]) }
        let denied = await #expect(throws: NimbusError.self) { _ = try await entra.validate(try await Self.token([:]), requiringScopes: ["Orders.Delete"]) }
        #expect(denied?.code == .permissionDenied && denied?.message.contains("Orders.Delete") == true)
        _ = try await entra.validate(try await Self.token([:]), requiringScopes: ["Orders.Read"])
        let overage = try await entra.validate(try await Self.token(["_claim_names": ["groups": "src1"], "_claim_sources": ["src1": ["endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"]]]))
        #expect(overage.groupsOverage && overage.groups.isEmpty)
        #expect(try await entra.validate(try await Self.token(["groups": ["g1", "g2"]])).groups == ["g1", "g2"])
    }

    @Test("keys come from the tenant's discovery/v2.0/keys, and a rotated kid is fetched")
    func discovery() async throws {
        let server = try await FakeHTTPServer.start()
        let jwks = { (kid: String, key: _RSA.Signing.PublicKey) -> JSONValue in
            let components = try! key.getKeyPrimitives()
            return ["keys": [["kty": "RSA", "use": "sig", "kid": .string(kid), "n": .string(Base64URL.encode(components.modulus)), "e": .string(Base64URL.encode(components.publicExponent))]]]
        }
        let rotated = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let served = Mutex(jwks("entra-kid-1", Self.key.publicKey))
        server.route(.GET, "/\(Self.contoso)/discovery/v2.0/keys") { _ in .json(200, served.withLock { $0 }) }
        let configuration = EntraIDTokenValidator.Configuration(tenant: Self.contoso, audiences: [Self.api], authority: server.baseURL)
        #expect(await (EntraIDTokenValidator(configuration: configuration).keys as? RemoteJWKS)?.url == "\(server.baseURL)/\(Self.contoso)/discovery/v2.0/keys")
        // The default cooldown (30 s) rate-limits refetches; this test rotates at once.
        let entra = EntraIDTokenValidator(configuration: configuration,
                                          keys: RemoteJWKS(url: "\(server.baseURL)/\(Self.contoso)/discovery/v2.0/keys", configuration: .init(cooldown: .zero)))
        _ = try await entra.validate(try await Self.token([:], issuer: "\(server.baseURL)/\(Self.contoso)/v2.0"))
        served.withLock { $0 = jwks("entra-kid-2", rotated.publicKey) }
        let next = try await JWTKeySet.pem(rotated.pemRepresentation, id: "entra-kid-2", algorithms: [.rs256])
        let token = try next.sign(JWTClaims(["aud": .string(Self.api), "tid": .string(Self.contoso), "oid": "o", "sub": "s", "ver": "2.0",
                                             "iss": .string("\(server.baseURL)/\(Self.contoso)/v2.0")]), expiresIn: .seconds(600))
        _ = try await entra.validate(token)
        #expect(server.requests.filter { $0.path.hasSuffix("/discovery/v2.0/keys") }.count == 2)
        await server.shutdown()
    }
}
