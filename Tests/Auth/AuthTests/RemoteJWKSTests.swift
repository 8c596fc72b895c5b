import Foundation
import NimbusAuth
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

/// An issuer's JWKS endpoint whose keys can be rotated and which can fail.
final class JWKSEndpoint: Sendable {
    let server: FakeHTTPServer
    private final class State: Sendable {
        let values = Mutex<(keys: [TestKey], failing: Bool, maxAge: Int?)>(([], false, nil))
        func withLock<T: Sendable>(_ body: (inout (keys: [TestKey], failing: Bool, maxAge: Int?)) -> T) -> T { values.withLock { body(&$0) } }
    }
    private let state = State()

    init(_ keys: [TestKey]) async throws {
        server = try await FakeHTTPServer.start()
        state.withLock { $0.keys = keys }
        server.route(.GET, "/jwks") { [state] _ in
            let (keys, failing, maxAge) = state.withLock { ($0.keys, $0.failing, $0.maxAge) }
            if failing { return .text(503, "maintenance") }
            return .json(200, String(decoding: TestKey.jwks(keys), as: UTF8.self),
                         headers: maxAge.map { [("Cache-Control", "public, max-age=\($0)")] } ?? [])
        }
    }

    var url: String { server.baseURL + "/jwks" }
    var fetches: Int { server.requests.filter { $0.path == "/jwks" }.count }
    func rotate(to keys: [TestKey]) { state.withLock { $0.keys = keys } }
    func fail(_ failing: Bool) { state.withLock { $0.failing = failing } }
    func maxAge(_ seconds: Int?) { state.withLock { $0.maxAge = seconds } }
}

@Suite("Remote JWKS: caching, rotation on unknown kid, rate limiting")
struct RemoteJWKSTests {
    let clock = TestClock()

    func jwks(_ endpoint: JWKSEndpoint, maxAge: Duration = .seconds(600), cooldown: Duration = .seconds(30)) -> RemoteJWKS {
        let clock = clock
        let http = NimbusHTTPClient(configuration: .init(service: "jwks", retry: .none), httpClient: NimbusHTTPClient.defaultTransport)
        return RemoteJWKS(url: endpoint.url, configuration: .init(maxAge: maxAge, cooldown: cooldown), http: http, now: { clock.now })
    }

    func token(_ key: TestKey) async throws -> String {
        var claims = JWTClaims(["sub": "ada"])
        claims.expiresAt = clock.now.addingTimeInterval(300)
        return try await JWTKeySet.jwk(key.privateJWK).sign(claims)
    }

    @Test("the issuer rotates its keys: a token with the new kid is verified after one more fetch")
    func rotation() async throws {
        let old = TestKey.es256(id: "2026-11"), new = TestKey.es256(id: "2026-12")
        let endpoint = try await JWKSEndpoint([old])
        defer { Task { await endpoint.server.shutdown() } }
        let source = jwks(endpoint)
        let clock = clock
        let verifier = JWTVerifier(keys: source, now: { clock.now })
        _ = try await verifier.verify(try await token(old))
        _ = try await verifier.verify(try await token(old))
        #expect(endpoint.fetches == 1)
        endpoint.rotate(to: [old, new])
        clock.advance(31)
        _ = try await verifier.verify(try await token(new))
        #expect(endpoint.fetches == 2)
        // The old key has left the set: its tokens stop verifying once the set is fetched again.
        endpoint.rotate(to: [new])
        clock.advance(601)
        #expect(await rejection { _ = try await verifier.verify(try await token(old)) } == .unknownKey)
    }

    @Test("a flood of tokens with made-up kids causes one fetch per cooldown, not one per token")
    func rateLimited() async throws {
        let key = TestKey.es256(id: "real")
        let endpoint = try await JWKSEndpoint([key])
        defer { Task { await endpoint.server.shutdown() } }
        let source = jwks(endpoint)
        let clock = clock
        let verifier = JWTVerifier(keys: source, now: { clock.now })
        _ = try await verifier.verify(try await token(key))
        clock.advance(31)
        try await withThrowingTaskGroup(of: JWTRejection.Reason?.self) { group in
            for index in 0..<200 {
                let forged = try await token(TestKey.es256(id: "made-up-\(index)"))
                group.addTask { await rejection { _ = try await verifier.verify(forged) } }
            }
            for try await reason in group { #expect(reason == .unknownKey) }
        }
        #expect(endpoint.fetches == 2)     // the first use, and one refetch for the whole flood
        clock.advance(31)
        #expect(await rejection { _ = try await verifier.verify(try await token(TestKey.es256(id: "another"))) } == .unknownKey)
        #expect(endpoint.fetches == 3)
    }

    @Test("Cache-Control max-age decides when the set is fetched again, within the cooldown and a day")
    func cacheControl() async throws {
        let key = TestKey.es256(id: "k")
        let endpoint = try await JWKSEndpoint([key])
        defer { Task { await endpoint.server.shutdown() } }
        endpoint.maxAge(120)
        let source = jwks(endpoint)
        _ = try await source.currentKeys()
        clock.advance(100)
        _ = try await source.currentKeys()
        #expect(endpoint.fetches == 1)
        clock.advance(21)
        _ = try await source.currentKeys()
        #expect(endpoint.fetches == 2)
        endpoint.maxAge(0)                 // "do not cache" is held to the cooldown
        clock.advance(121)
        _ = try await source.currentKeys()
        clock.advance(10)
        _ = try await source.currentKeys()
        #expect(endpoint.fetches == 3)
    }

    @Test("when the issuer fails, the keys fetched earlier go on verifying; with none cached the failure is an error")
    func staleIfError() async throws {
        let key = TestKey.es256(id: "k")
        let endpoint = try await JWKSEndpoint([key])
        defer { Task { await endpoint.server.shutdown() } }
        let source = jwks(endpoint)
        let clock = clock
        let verifier = JWTVerifier(keys: source, now: { clock.now })
        _ = try await verifier.verify(try await token(key))
        endpoint.fail(true)
        clock.advance(700)
        _ = try await verifier.verify(try await token(key))
        #expect(endpoint.fetches == 2)

        let cold = jwks(endpoint)
        await #expect(throws: NimbusError.self) { _ = try await cold.currentKeys() }
        let refused = try await JWKSEndpoint([])
        defer { Task { await refused.server.shutdown() } }
        refused.server.route(.GET, "/jwks", reply: .json(200, "{\"not\": \"a jwks\"}"))
        await #expect(throws: NimbusError.self) { _ = try await jwks(refused).currentKeys() }
    }

    @Test("an oversized JWKS document is refused")
    func oversized() async throws {
        let endpoint = try await JWKSEndpoint([])
        defer { Task { await endpoint.server.shutdown() } }
        endpoint.server.route(.GET, "/jwks", reply: .json(200, "{\"keys\": [], \"pad\": \"" + String(repeating: "x", count: 600_000) + "\"}"))
        await #expect(throws: NimbusError.self) { _ = try await jwks(endpoint).currentKeys() }
    }
}
