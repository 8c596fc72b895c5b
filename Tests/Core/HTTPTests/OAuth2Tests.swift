import Foundation
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

@Suite struct AccessTokenCacheTests {

    @Test func concurrentCallersShareOneFetchAndTheTokenIsRenewedAheadOfExpiry() async throws {
        let clock = ManualDate(Date(timeIntervalSince1970: 1_000_000))
        let issued = Mutex(0)
        let cache = AccessTokenCache(refreshAhead: .seconds(60), now: { clock.now }) {
            try await Task.sleep(for: .milliseconds(20))
            let number = issued.withLock { $0 += 1; return $0 }
            return .init(value: Secret("token-\(number)"), expiresIn: .seconds(600))
        }
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<25 { group.addTask { try await cache.current().reveal() } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(tokens == ["token-1"])
        clock.advance(539)
        #expect(try await cache.current().reveal() == "token-1", "61 s left: still good")
        clock.advance(2)
        #expect(try await cache.current().reveal() == "token-2", "59 s left: renewed ahead of expiry")
        await cache.invalidate()
        #expect(try await cache.current().reveal() == "token-3")
        #expect(await cache.fetchCount == 3)
    }

    @Test func aFailedFetchIsNotCached() async throws {
        let attempts = Mutex(0)
        let cache = AccessTokenCache {
            let attempt = attempts.withLock { $0 += 1; return $0 }
            if attempt == 1 { throw NimbusError(.unavailable, "token endpoint down") }
            return .init(value: Secret("ok"), expiresIn: .seconds(3600))
        }
        await #expect(throws: NimbusError.self) { _ = try await cache.current() }
        #expect(try await cache.current().reveal() == "ok")
    }

    @Test func clientCredentialsAreSentAsBasicAuthAndErrorsNamed() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/token") { request in
            guard request.header("authorization") == "Basic " + Data("app:s3cret".utf8).base64EncodedString() else {
                return .json(401, #"{"error":"invalid_client","error_description":"bad secret"}"#)
            }
            #expect(request.bodyText == "grant_type=client_credentials&scope=read+write")
            return .json(200, #"{"access_token":"abc","token_type":"Bearer","expires_in":120}"#)
        }
        let http = NimbusHTTPClient(configuration: .init(service: "idp", baseURL: server.baseURL, retry: .none))
        let grant = OAuth2ClientCredentials(tokenURL: "/token", clientID: "app", clientSecret: Secret("s3cret"), scopes: ["read", "write"], http: http)
        let token = try await grant.fetchToken()
        #expect(token.value.reveal() == "abc" && token.expiresIn == .seconds(120))
        let wrong = OAuth2ClientCredentials(tokenURL: "/token", clientID: "app", clientSecret: Secret("nope-secret"), http: http)
        do {
            _ = try await wrong.fetchToken()
            Issue.record("a wrong secret must fail")
        } catch let error as NimbusError {
            #expect(error.code == .unauthenticated && error.message.contains("invalid_client") && !error.description.contains("nope-secret"))
        }
        server.route(.POST, "/token", reply: .json(200, #"{"token_type":"Bearer"}"#))
        await #expect(throws: NimbusError.self) { _ = try await grant.fetchToken() }
    }
}
