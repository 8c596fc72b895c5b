import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NimbusCore
import NimbusSession
import NimbusSessionMemory
import Testing

@Suite("Session middleware and CSRF")
struct SessionMiddlewareTests {
    @Test("sign-in sets a new cookie; later requests carry the session; unsafe requests need the CSRF token; sign-out clears it")
    func middleware() async throws {
        let key = try SessionSigningKey(id: "k", secret: Secret(Array(repeating: 9, count: 32)))
        let sessions = try SessionManager(driver: MemorySessionStore(), configuration: .init(keys: [key]))
        let router = Router(context: SessionContext.self)
        router.add(middleware: SessionMiddleware(sessions: sessions))
        router.post("/login") { _, context -> Response in
            let (session, cookie) = try await sessions.login(context.session, userID: "ada")
            context.sessionCookies.send(cookie)
            return Response(status: .ok, body: .init(byteBuffer: .init(string: sessions.csrfToken(for: session))))
        }
        router.get("/me") { _, context in context.session?.userID ?? "anonymous" }
        router.post("/orders") { _, context in "ordered by \(context.session?.userID ?? "?")" }
        router.post("/logout") { _, context -> Response in
            if let session = context.session { context.sessionCookies.send(try await sessions.destroy(session)) }
            return Response(status: .noContent)
        }

        try await Application(router: router).test(.router) { client in
            var cookie = ""
            var csrf = ""
            try await client.execute(uri: "/login", method: .post) { response in
                #expect(response.status == .ok)
                let set = try #require(response.headers[.setCookie])
                #expect(set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Lax"))
                cookie = String(set.split(separator: ";")[0])
                csrf = String(buffer: response.body)
            }
            try await client.execute(uri: "/me", method: .get, headers: [.cookie: cookie]) { response in
                #expect(String(buffer: response.body) == "ada")
            }
            try await client.execute(uri: "/orders", method: .post, headers: [.cookie: cookie]) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/orders", method: .post, headers: [.cookie: cookie, HTTPField.Name("X-CSRF-Token")!: "wrong"]) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/orders", method: .post, headers: [.cookie: cookie, HTTPField.Name("X-CSRF-Token")!: csrf]) { response in
                #expect(response.status == .ok && String(buffer: response.body) == "ordered by ada")
            }
            try await client.execute(uri: "/logout", method: .post, headers: [.cookie: cookie, HTTPField.Name("X-CSRF-Token")!: csrf]) { response in
                #expect(response.headers[.setCookie]?.contains("Max-Age=0") == true)
            }
            try await client.execute(uri: "/me", method: .get, headers: [.cookie: cookie]) { response in
                #expect(String(buffer: response.body) == "anonymous")
            }
        }
    }

    @Test("signed double-submit: the header must repeat the cookie, the token must be ours and bound to the caller")
    func doubleSubmit() throws {
        let csrf = DoubleSubmitCSRF(key: try SessionSigningKey(id: "k", secret: Secret(Array(repeating: 5, count: 32))))
        let other = DoubleSubmitCSRF(key: try SessionSigningKey(id: "k", secret: Secret(Array(repeating: 6, count: 32))))
        let token = csrf.issue(binding: "visitor-1")
        #expect(csrf.verify(cookie: token, header: token, binding: "visitor-1"))
        #expect(!csrf.verify(cookie: token, header: nil, binding: "visitor-1"))
        #expect(!csrf.verify(cookie: token, header: token + "x", binding: "visitor-1"))
        #expect(!csrf.verify(cookie: token, header: token, binding: "visitor-2"))
        let forged = other.issue(binding: "visitor-1")
        #expect(!csrf.verify(cookie: forged, header: forged, binding: "visitor-1"))
        #expect(!csrf.verify(cookie: "a.b.c", header: "a.b.c", binding: "visitor-1"))
    }
}
