import Foundation
import NimbusAuth
import NimbusAuthConformance
@testable import NimbusAuthGCPIdentity
import NimbusCore
import NimbusGCP
import NimbusHTTP
import NimbusTesting
import Testing

/// No Identity Platform emulator runs here (the Firebase emulator needs Java and Node): the driver
/// runs against ``FakeIdentityPlatform``, which checks every Identity Toolkit request against the
/// committed Discovery extract.
@Suite("GCP Identity Platform (fake checked against the identitytoolkit v1 Discovery document)", .timeLimit(.minutes(2)))
struct GCPIdentityPlatformTests {
    static func driver(_ fake: FakeIdentityPlatform, apiKey: String? = nil) throws -> GCPIdentityPlatform {
        let gcp = try GCPClient(configuration: .init(tokens: GCPStaticToken(Secret(fake.adminToken)), retry: .none))
        return GCPIdentityPlatform(configuration: .init(project: fake.project, apiKey: Secret(apiKey ?? fake.apiKey), endpoint: fake.server.baseURL,
                                                        secureTokenEndpoint: fake.server.baseURL, certificatesURL: fake.server.baseURL + "/certs"), gcp: gcp)
    }

    @Test("conformance", arguments: UserPoolConformance.checks)
    func conformance(_ check: UserPoolConformance.Check) async throws {
        let fake = try await FakeIdentityPlatform.start()
        try await check.run(UserPoolConformance.Harness { try Self.driver(fake) })
        #expect(fake.server.refusals.map(\.description) == [])
        await fake.server.shutdown()
    }

    @Test("a sign-up is confirmed with the emailed code; tokens verify against Google's certificate map; the API key never appears in a URL")
    func signUpFlow() async throws {
        let fake = try await FakeIdentityPlatform.start()
        let pool = UserPool(driver: try Self.driver(fake))
        let user = try await pool.signUp("grace@example.com", password: "Compiler-1952!")
        #expect(user.status == .unconfirmed)
        await #expect(throws: NimbusError.self) { _ = try await pool.signIn("grace@example.com", password: "Compiler-1952!") }
        let code = try #require(fake.state.withLock { $0.lastCode })
        await #expect(throws: NimbusError.self) { try await pool.confirmSignUp("grace@example.com", code: "wrong-code") }
        try await pool.confirmSignUp("grace@example.com", code: code)
        let tokens = try await pool.signIn("grace@example.com", password: "Compiler-1952!").tokens()
        let who = try await pool.verify(tokens.idToken.reveal(), use: .id)
        #expect(who.username == "grace@example.com" && who.subject == user.subject)
        #expect(fake.server.requests.allSatisfy { !$0.description.contains(fake.apiKey) })
        #expect(fake.server.requests.filter { $0.path.hasPrefix("/v1/accounts:") }.allSatisfy { $0.header("x-goog-api-key") == fake.apiKey })
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("Identity Toolkit's error names become portable codes; a wrong API key is refused")
    func errors() async throws {
        #expect(GCPIdentityPlatform.refusal("EMAIL_EXISTS", status: 400, retryAfter: nil, operation: "x").code == .alreadyExists)
        #expect(GCPIdentityPlatform.refusal("WEAK_PASSWORD : Password should be at least 6 characters", status: 400, retryAfter: nil, operation: "x").code == .invalidArgument)
        #expect(GCPIdentityPlatform.refusal("TOO_MANY_ATTEMPTS_TRY_LATER", status: 400, retryAfter: nil, operation: "x").code == .resourceExhausted)
        #expect(GCPIdentityPlatform.refusal("TOKEN_EXPIRED", status: 400, retryAfter: nil, operation: "x").code == .unauthenticated)
        let fake = try await FakeIdentityPlatform.start()
        let pool = UserPool(driver: try Self.driver(fake, apiKey: "AIza-wrong"))
        await #expect(throws: NimbusError.self) { try await pool.signUp("x@example.com", password: "Passw0rd!") }
        await fake.server.shutdown()
    }

    @Test("gcpidentity:// needs a project and an api_key")
    func opener() async throws {
        await #expect(throws: NimbusError.self) { _ = try await UserPool.open("gcpidentity://proj", openers: .userPools.withGCPIdentity()) }
        await #expect(throws: NimbusError.self) { _ = try await UserPool.open("gcpidentity://?api_key=k", openers: .userPools.withGCPIdentity()) }
    }
}
