import Foundation
@testable import NimbusAuth
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

/// GitHub's OAuth apps as GitHub documents them ("Authorizing OAuth apps"): the web flow's token
/// exchange answers JSON when asked with `Accept: application/json`, errors come back as **200 OK**
/// with an `error` field (`bad_verification_code`, `authorization_pending`, `slow_down`), and granted
/// scopes are comma-separated. A local server plays github.com with those answers.
@Suite("GitHub OAuth (web and device flows, GitHub's 200-with-error answers)")
struct GitHubOAuthTests {
    static func provider(_ server: FakeHTTPServer) -> OAuth2ProviderMetadata {
        OAuth2ProviderMetadata(issuer: "https://github.com", authorizationEndpoint: server.baseURL + "/login/oauth/authorize",
                               tokenEndpoint: server.baseURL + "/login/oauth/access_token", userinfoEndpoint: server.baseURL + "/user",
                               deviceAuthorizationEndpoint: server.baseURL + "/login/device/code", codeChallengeMethods: ["S256"])
    }

    static func client(_ server: FakeHTTPServer) throws -> OAuth2Client {
        try OAuth2Client(provider: provider(server), configuration: .init(clientID: "Iv1.0123456789abcdef", authentication: .clientSecretPost("gh-secret"),
                                                                          redirectURI: "http://127.0.0.1:8400/callback"))
    }

    @Test("a web-flow code exchange sends the code, the PKCE verifier and the client secret; a bad code answered with 200 is a refusal naming GitHub's error")
    func webFlow() async throws {
        let server = try await FakeHTTPServer.start()
        let answers = Mutex([
            JSONValue.object(["error": "bad_verification_code", "error_description": "The code passed is incorrect or expired.",
                              "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"]),
            JSONValue.object(["access_token": "gho_16C7e42F292c6912E7710c838347Ae178B4a", "scope": "read:user,user:email", "token_type": "bearer"]),
        ])
        server.route(.POST, "/login/oauth/access_token") { request in
            guard request.header("accept") == "application/json" else { return .text(200, "access_token=x&scope=&token_type=bearer") }
            return .json(200, answers.withLock { $0.count > 1 ? $0.removeFirst() : $0[0] })
        }
        let client = try Self.client(server)
        let request = try client.authorizationRequest(scopes: ["read:user", "user:email"])
        let callback = "http://127.0.0.1:8400/callback?code=abc123&state=\(request.state)"
        let refused = await #expect(throws: NimbusError.self) { _ = try await client.exchangeCode(callbackURL: callback, for: request) }
        #expect(refused?.code == .unauthenticated && (refused?.underlying as? OAuth2ErrorResponse)?.error == "bad_verification_code")
        let tokens = try await client.exchangeCode(callbackURL: callback, for: request)
        #expect(tokens.accessToken.reveal().hasPrefix("gho_") && tokens.scopes == ["read:user", "user:email"])
        let form = try #require(server.requests.last).form()
        #expect(form["code"] == "abc123" && form["client_secret"] == "gh-secret" && form["client_id"] == "Iv1.0123456789abcdef")
        #expect(form["code_verifier"]?.stringValue?.count ?? 0 >= 43 && form["redirect_uri"] == "http://127.0.0.1:8400/callback")
        await server.shutdown()
    }

    @Test("the device flow waits through authorization_pending, backs off on slow_down, and stops on access_denied — each answered with 200")
    func deviceFlow() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.POST, "/login/device/code", reply: .json(200, ["device_code": "3584d83530557fdd1f46af8289938c8ef79f9dc5", "user_code": "WDJB-MJHT",
                                                                     "verification_uri": "https://github.com/login/device", "expires_in": 900, "interval": 5]))
        let polls = Mutex<[JSONValue]>([["error": "authorization_pending"], ["error": "slow_down", "interval": 10], ["error": "authorization_pending"],
                                         ["access_token": "gho_device", "token_type": "bearer", "scope": "repo"]])
        server.route(.POST, "/login/oauth/access_token") { _ in .json(200, polls.withLock { $0.removeFirst() }) }
        let client = try Self.client(server)
        let device = try await client.startDeviceAuthorization(scopes: ["repo"])
        #expect(device.userCode == "WDJB-MJHT")
        let waits = Mutex<[Duration]>([])
        let tokens = try await client.pollDeviceAuthorization(device) { interval in waits.withLock { $0.append(interval) } }
        #expect(tokens.accessToken.reveal() == "gho_device" && tokens.scopes == ["repo"])
        #expect(waits.withLock { $0 } == [.seconds(5), .seconds(5), .seconds(10), .seconds(10)])

        polls.withLock { $0 = [["error": "access_denied", "error_description": "The user has denied your application access."]] }
        let denied = await #expect(throws: NimbusError.self) { _ = try await client.pollDeviceAuthorization(device) { _ in } }
        #expect(denied?.code == .permissionDenied)
        await server.shutdown()
    }

    @Test("scopes: spaces per RFC 6749, commas as GitHub answers them")
    func scopeLists() {
        #expect(OAuth2Client.scopes("openid email profile") == ["openid", "email", "profile"])
        #expect(OAuth2Client.scopes("repo,gist") == ["repo", "gist"])
        #expect(OAuth2Client.scopes("") == [])
    }
}
