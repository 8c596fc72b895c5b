import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NimbusAuth
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

@Suite("OpenID Connect against glewlwyd", .requires(.glewlwyd), .serialized, .timeLimit(.minutes(3)))
struct GlewlwydTests {
    let redirect = "http://127.0.0.1:8999/callback"

    func client(confidential: Bool = false) async throws -> OAuth2Client {
        let issuer = try Peer.glewlwyd.url()
        let configuration = OAuth2Client.Configuration(
            clientID: confidential ? "nimbus-confidential" : "nimbus-public",
            authentication: confidential ? .clientSecretBasic("nimbus-client-secret-1") : .none, redirectURI: redirect)
        return try await OAuth2Client.discover(issuer: issuer, configuration: configuration)
    }

    func signedInBrowser(consentTo clientID: String, scopes: [String]) async throws -> GlewlwydBrowser {
        var browser = try GlewlwydBrowser()
        try await browser.signIn("ada", "ada-password-1")
        try await browser.consent(clientID, scopes: scopes)
        return browser
    }

    @Test("discovery checks the issuer; the code flow with PKCE S256, state and nonce gives a validated ID token and a working access token")
    func codeFlow() async throws {
        let client = try await client()
        #expect(client.provider.codeChallengeMethods == ["S256"])
        let request = try client.authorizationRequest(scopes: ["openid", "orders"])
        #expect(request.url.contains("code_challenge_method=S256") && !request.url.contains(request.codeVerifier))
        let browser = try await signedInBrowser(consentTo: "nimbus-public", scopes: ["openid", "orders"])
        let callback = try await browser.authorize(request.url)
        #expect(callback.hasPrefix(redirect))
        let tokens = try await client.exchangeCode(callbackURL: callback, for: request)
        let claims = try #require(tokens.idTokenClaims)
        #expect(claims.issuer == client.provider.issuer && claims.audience.contains("nimbus-public") && claims["nonce"]?.stringValue == request.nonce)
        #expect(tokens.scopes.isSuperset(of: ["openid", "orders"]))
        #expect(tokens.refreshToken != nil)
        // The access token is a JWT (RFC 9068) that a resource server verifies with the same JWKS.
        let resource = JWTVerifier(keys: RemoteJWKS(url: try #require(client.provider.jwksURI)),
                                   configuration: .init(issuers: [client.provider.issuer], expectedType: "at+jwt"))
        let access = try await resource.verify(tokens.accessToken.reveal(), requiring: ["orders"])
        #expect(access.claims.subject == claims.subject)
        let info = try await client.userInfo(accessToken: tokens.accessToken, expectedSubject: claims.subject)
        #expect(info.subject == claims.subject)
        // The code is single-use: a second exchange is refused.
        await #expect(throws: NimbusError.self) { _ = try await client.exchangeCode(callbackURL: callback, for: request) }
    }

    @Test("refresh tokens rotate; replaying a used one is refused and revokes its family; revocation and introspection agree")
    func refreshAndRevoke() async throws {
        let client = try await client(confidential: true)
        let request = try client.authorizationRequest(scopes: ["openid", "orders"])
        let browser = try await signedInBrowser(consentTo: "nimbus-confidential", scopes: ["openid", "orders"])
        let tokens = try await client.exchangeCode(callbackURL: try await browser.authorize(request.url), for: request)
        let first = try #require(tokens.refreshToken)
        let refreshed = try await client.refresh(first, previous: tokens.idTokenClaims)
        let second = try #require(refreshed.refreshToken)
        #expect(second.reveal() != first.reveal())
        #expect(try await client.introspect(refreshed.accessToken).active)
        try await client.revoke(refreshed.accessToken, hint: "access_token")
        #expect(try await client.introspect(refreshed.accessToken).active == false)
        let third = try #require(try await client.refresh(second).refreshToken)
        // A used refresh token comes back (stolen and replayed): refused, and the server revokes the
        // whole family, so the legitimate holder's current token stops working too (RFC 9700 §4.14.2).
        do {
            _ = try await client.refresh(first)
            Issue.record("a used refresh token was accepted")
        } catch let error as NimbusError {
            #expect([.unauthenticated, .permissionDenied].contains(error.code), "\(error)")
        }
        await #expect(throws: NimbusError.self) { _ = try await client.refresh(third) }
        let logout = try client.logoutURL(idTokenHint: tokens.idToken, postLogoutRedirectURI: "http://127.0.0.1:8999/bye", state: "s")
        #expect(logout.hasPrefix(try #require(client.provider.endSessionEndpoint)) && logout.contains("id_token_hint="))
    }

    @Test("client credentials give the confidential client a token; a wrong secret is invalid_client")
    func clientCredentials() async throws {
        let client = try await client(confidential: true)
        let tokens = try await client.clientCredentials(scopes: ["orders"])
        #expect(tokens.scopes.contains("orders") && tokens.idToken == nil)
        let wrong = try OAuth2Client(provider: client.provider, configuration: .init(clientID: "nimbus-confidential",
                                                                                      authentication: .clientSecretPost("not-the-secret")))
        do {
            _ = try await wrong.clientCredentials(scopes: ["orders"])
            Issue.record("a wrong client secret was accepted")
        } catch let error as NimbusError {
            #expect([.unauthenticated, .permissionDenied].contains(error.code), "\(error)")
            #expect(!error.description.contains("not-the-secret"))
        }
    }

    @Test("private_key_jwt: the client proves itself with a signed assertion, no shared secret; a foreign key is refused")
    func privateKeyJWT() async throws {
        let provider = try await client().provider
        let file = try #require(Peer.setting("NIMBUS_PEER_GLEWLWYD_CLIENT_JWKS_FILE"))
        let document = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        let keys = try await JWTKeySet.jwk(try #require(document["keys"]?.arrayValue?.first))
        let client = try OAuth2Client(provider: provider, configuration: .init(clientID: "nimbus-jwt", authentication: .privateKeyJWT(keys)))
        let tokens = try await client.clientCredentials(scopes: ["orders"])
        #expect(tokens.scopes.contains("orders"))
        let impostor = try await JWTKeySet.pem(P256.Signing.PrivateKey().pemRepresentation, id: "nimbus-client-1")
        let forged = try OAuth2Client(provider: provider, configuration: .init(clientID: "nimbus-jwt", authentication: .privateKeyJWT(impostor)))
        await #expect(throws: NimbusError.self) { _ = try await forged.clientCredentials(scopes: ["orders"]) }
    }

    @Test("glewlwyd rotates its signing key: tokens with the new kid verify after one JWKS refetch; old tokens still verify")
    func keyRotation() async throws {
        let client = try await client(confidential: true)
        let jwks = RemoteJWKS(url: try #require(client.provider.jwksURI), configuration: .init(cooldown: .zero))
        let verifier = JWTVerifier(keys: jwks, configuration: .init(issuers: [client.provider.issuer]))
        let before = try await client.clientCredentials(scopes: ["orders"])
        let oldKid = try await verifier.verify(before.accessToken.reveal()).keyID
        let fetchesBefore = await jwks.fetchCount

        // The new key goes first (glewlwyd signs with the first), the previous one stays for tokens already out.
        let file = try #require(Peer.setting("NIMBUS_PEER_GLEWLWYD_JWKS_FILE"))
        let current = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        let key = P256.Signing.PrivateKey()
        let point = Array(key.publicKey.rawRepresentation)
        let kid = "glewlwyd-\(UUID().uuidString.prefix(8))"
        let newKey: JSONValue = ["kty": "EC", "crv": "P-256", "kid": .string(kid), "alg": "ES256", "use": "sig",
                                 "x": .string(Base64URL.encode(point[0..<32])), "y": .string(Base64URL.encode(point[32..<64])),
                                 "d": .string(Base64URL.encode(key.rawRepresentation))]
        let rotated: JSONValue = ["keys": .array([newKey] + (current["keys"]?.arrayValue?.prefix(1) ?? []))]
        var admin = try GlewlwydBrowser()
        try await admin.signIn("admin", "password")
        let plugin = try JSONValue.parse(Array(try await admin.send(.GET, "/mod/plugin/oidc").body.utf8))
        guard case .object(var body) = plugin, case .object(var parameters)? = body["parameters"] else { throw NimbusError(.internal, "plugin: \(plugin)") }
        parameters["jwks-private"] = .string(rotated.description)
        parameters["default-kid"] = .string(kid)
        body["parameters"] = .object(parameters)
        #expect(try await admin.send(.PUT, "/mod/plugin/oidc", json: .object(body)).status == 200)
        #expect(try await admin.send(.PUT, "/mod/plugin/oidc/reset").status == 200)
        try Data(rotated.description.utf8).write(to: URL(fileURLWithPath: file))

        let after = try await client.clientCredentials(scopes: ["orders"])
        let verified = try await verifier.verify(after.accessToken.reveal())
        #expect(verified.keyID == kid && verified.keyID != oldKid)
        #expect(await jwks.fetchCount == fetchesBefore + 1)
        _ = try await verifier.verify(before.accessToken.reveal())
    }

    @Test("authlib validates glewlwyd's ID token the way Nimbus does")
    func authlibAgrees() async throws {
        guard Peer.authSDKs.shouldRun else { return }
        let client = try await client()
        let request = try client.authorizationRequest(scopes: ["openid"])
        let browser = try await signedInBrowser(consentTo: "nimbus-public", scopes: ["openid", "orders"])
        let tokens = try await client.exchangeCode(callbackURL: try await browser.authorize(request.url), for: request)
        let idToken = try #require(tokens.idToken)
        var tampered = idToken.split(separator: ".").map(String.init)
        tampered[2] = String(tampered[2].reversed())
        let jwks = try await GlewlwydBrowser().send(.GET, try #require(client.provider.jwksURI)).body
        let input: JSONValue = ["jwks": try JSONValue.parse(Array(jwks.utf8)), "tokens": [.string(idToken), .string(tampered.joined(separator: "."))],
                                "issuer": .string(client.provider.issuer), "audience": "nimbus-public"]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("glewlwyd-\(UUID().uuidString).json")
        try Data(input.description.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try await ProcessRunner.run("/bin/sh", ["-c", "\"$0\" \"$1\" verify \"$2\" < \"$3\"", try Peer.authSDKs.url(),
                                                          (Peer.packageRoot() ?? ".") + "/scripts/auth/authlib-oracle", "\(Int(Date().timeIntervalSince1970))", file.path])
        let answers = try #require(try JSONValue.parse(Array(run.stdout.utf8)).arrayValue, "\(run.stderr)")
        #expect(answers.count == 2)
        #expect(answers.first?["valid"] == true, "\(answers)")
        #expect(answers.last?["valid"] == false)
        #expect(answers.first?["claims"]?["sub"]?.stringValue == tokens.idTokenClaims?.subject)
    }

    @Test("attacks on the code flow are refused: forged state, wrong verifier, no verifier, swapped ID token nonce, mix-up issuer")
    func attacks() async throws {
        let client = try await client()
        let browser = try await signedInBrowser(consentTo: "nimbus-public", scopes: ["openid", "orders"])

        // CSRF: a callback whose state is not ours.
        let request = try client.authorizationRequest(scopes: ["openid"])
        let callback = try await browser.authorize(request.url)
        let forged = callback.replacingOccurrences(of: "state=\(request.state)", with: "state=attacker")
        await #expect(throws: NimbusError.self) { _ = try await client.exchangeCode(callbackURL: forged, for: request) }
        // Mix-up: an iss parameter naming another issuer.
        await #expect(throws: NimbusError.self) { _ = try await client.exchangeCode(callbackURL: callback + "&iss=https%3A%2F%2Fevil.test", for: request) }

        // Code injection: a code stolen from another session is useless without that session's verifier.
        let victim = try client.authorizationRequest(scopes: ["openid"])
        let stolen = try await browser.authorize(victim.url)
        var attacker = try client.authorizationRequest(scopes: ["openid"])
        attacker.state = victim.state
        do {
            _ = try await client.exchangeCode(callbackURL: stolen, for: attacker)
            Issue.record("a code was exchanged with another request's verifier")
        } catch let error as NimbusError {
            // RFC 6749 says invalid_grant; glewlwyd answers 403 invalid_code.
            #expect(["invalid_grant", "invalid_code"].contains((error.underlying as? OAuth2ErrorResponse)?.error ?? ""), "\(error)")
        }

        // PKCE downgrade: the same code without any verifier is refused by the server.
        let plain = try client.authorizationRequest(scopes: ["openid"])
        let code = try #require(URLComponents(string: try await browser.authorize(plain.url))?.queryItems?.first { $0.name == "code" }?.value)
        let http = NimbusHTTPClient(configuration: .init(service: "glewlwyd"), httpClient: NimbusHTTPClient.defaultTransport)
        do {
            _ = try await OAuth2TokenEndpoint.exchange(http, url: client.provider.tokenEndpoint,
                                                       form: ["grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": "nimbus-public"],
                                                       who: "a downgrade", safeToRetry: false)
            Issue.record("glewlwyd exchanged a PKCE code without its verifier")
        } catch let error as NimbusError { #expect([.unauthenticated, .permissionDenied].contains(error.code), "\(error)") }
        // …and a server offering only plain PKCE is refused before any request.
        var plainOnly = client.provider
        plainOnly.codeChallengeMethods = ["plain"]
        #expect(throws: NimbusError.self) { _ = try OAuth2Client(provider: plainOnly, configuration: client.configuration) }

        // ID token replay: a valid ID token from another request fails this request's nonce.
        let first = try client.authorizationRequest(scopes: ["openid"])
        let tokens = try await client.exchangeCode(callbackURL: try await browser.authorize(first.url), for: first)
        let idToken = try #require(tokens.idToken)
        await #expect(throws: NimbusError.self) { _ = try await client.validateIDToken(idToken, nonce: "another-request") }
        _ = try await client.validateIDToken(idToken, nonce: first.nonce, accessToken: tokens.accessToken.reveal())
        // at_hash binds the access token: another access token is refused.
        if tokens.idTokenClaims?["at_hash"] != nil {
            await #expect(throws: NimbusError.self) { _ = try await client.validateIDToken(idToken, nonce: first.nonce, accessToken: "substituted") }
        }

        // Discovery names another issuer: refused.
        await #expect(throws: NimbusError.self) {
            _ = try await OAuth2ProviderMetadata.discover(issuer: try Peer.glewlwyd.url() + "/", http: http)
        }
    }

    @Test("device authorization: pending until the user approves at glewlwyd, then tokens")
    func deviceFlow() async throws {
        let client = try await client()
        let device = try await client.startDeviceAuthorization(scopes: ["openid", "orders"])
        #expect(!device.userCode.isEmpty && device.verificationURI.hasPrefix("http"))
        let polls = Mutex(0)
        let browser = try await signedInBrowser(consentTo: "nimbus-public", scopes: ["openid", "orders"])
        let tokens = try await client.pollDeviceAuthorization(device) { interval in
            let count = polls.withLock { $0 += 1; return $0 }
            if count == 2 {
                // The user types the code at the verification page.
                let answer = try await browser.send(.GET, device.verificationURI + "?code=\(device.userCode)&g_continue")
                #expect([200, 302].contains(answer.status), "\(answer.status) \(answer.body.prefix(200))")
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(polls.withLock { $0 } >= 2)
        #expect(tokens.scopes.contains("orders"))
    }
}
