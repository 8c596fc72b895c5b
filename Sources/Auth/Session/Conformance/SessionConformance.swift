import Crypto
import Foundation
import NimbusCore
import NimbusSession
import NimbusTesting
import Synchronization
import Testing

/// The behaviour every ``SessionStoreDriver`` must have behind a ``SessionManager``, stated once and
/// run against each store:
///
/// ```swift
/// @Test(arguments: SessionConformance.checks)
/// func conformance(_ check: SessionConformance.Check) async throws {
///     try await check.run(SessionConformance.Harness { MemorySessionStore() })
/// }
/// ```
/// Time is a clock of the suite's own (stores are given `now`), so timeouts are tested without waiting.
public enum SessionConformance {
    /// How a check reaches the store under test.
    public struct Harness: Sendable {
        /// Makes a fresh store (one per check; they may share a server).
        public var makeDriver: @Sendable () async throws -> any SessionStoreDriver

        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any SessionStoreDriver) { self.makeDriver = makeDriver }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    static let mainKey = try! SessionSigningKey(id: "k2", secret: Secret(Array(repeating: 0x42, count: 32)))
    static let oldKey = try! SessionSigningKey(id: "k1", secret: Secret(Array(repeating: 0x17, count: 32)))

    /// Everything a check works with.
    struct Rig {
        let driver: any SessionStoreDriver
        let clock: ManualDate
        let sessions: SessionManager
        func manager(_ configure: (inout SessionManager.Configuration) -> Void) throws -> SessionManager {
            var configuration = SessionManager.Configuration(keys: [SessionConformance.mainKey, SessionConformance.oldKey])
            configure(&configuration)
            let clock = clock
            return try SessionManager(driver: driver, configuration: configuration, now: { clock.now })
        }
    }

    static func check(_ name: String, _ body: @escaping @Sendable (Rig) async throws -> Void) -> Check {
        Check(name) { harness in
            let driver = try await harness.makeDriver()
            let clock = ManualDate()
            let sessions = try SessionManager(driver: driver, configuration: .init(keys: [mainKey, oldKey]), now: { clock.now })
            do { try await body(Rig(driver: driver, clock: clock, sessions: sessions)) } catch {
                try? await driver.close()
                throw error
            }
            try await driver.close()
        }
    }

    /// The `name=value` part of a `Set-Cookie` value, as a browser sends it back.
    static func sent(_ setCookie: String) -> String { String(setCookie.split(separator: ";")[0]) }

    /// A unique user id per check (the checks may share one server).
    static func user() -> String { "user-\(IDGenerator.shared.ulid())" }

    /// Every check.
    public static let checks: [Check] = [
        check("a created session loads from its cookie, with its user and data; the store never holds the id") { rig in
            let user = user()
            let (session, cookie) = try await rig.sessions.create(userID: user, data: ["cart": ["apple", "pear"]])
            let loaded = try #require(try await rig.sessions.load(cookieHeader: "theme=dark; " + sent(cookie)))
            #expect(loaded.userID == user && loaded.data["cart"] == ["apple", "pear"])
            #expect(loaded.record.key == session.record.key && loaded.record.key != session.id.reveal())
            #expect(loaded.record.key == Base64URL.encode(SHA256.hash(data: Array(session.id.reveal().utf8))))
            #expect(try await rig.driver.find(session.id.reveal(), now: rig.clock.now) == nil)
            #expect(try await rig.sessions.load(cookieHeader: nil) == nil)
            #expect(try await rig.sessions.load(cookieHeader: "theme=dark") == nil)
        },
        check("the cookie is HttpOnly, Secure, SameSite=Lax, Path=/ and __Host-; unsafe settings are refused") { rig in
            let (_, cookie) = try await rig.sessions.create()
            #expect(cookie.hasPrefix("__Host-session=v1.k2."))
            for attribute in ["Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=43200"] { #expect(cookie.contains("; \(attribute)"), "\(cookie)") }
            #expect(!cookie.contains("Domain="))
            #expect(throws: NimbusError.self) { _ = try rig.manager { $0.secure = false } }
            #expect(throws: NimbusError.self) { _ = try rig.manager { $0.cookieName = "sid"; $0.secure = false; $0.sameSite = .none } }
            #expect(throws: NimbusError.self) { _ = try rig.manager { $0.keys = [] } }
            #expect(throws: NimbusError.self) { _ = try SessionSigningKey(id: "short", secret: Secret(Array(repeating: 1, count: 31))) }
            let development = try rig.manager { $0.cookieName = "sid"; $0.secure = false }
            let (_, plain) = try await development.create()
            #expect(plain.hasPrefix("sid=") && !plain.contains("Secure"))
        },
        check("forged, tampered, truncated and unknown-key cookies load nothing") { rig in
            let (session, cookie) = try await rig.sessions.create(userID: user())
            let value = sent(cookie).dropFirst("__Host-session=".count)
            let parts = value.split(separator: ".").map(String.init)
            var forged = parts
            forged[2] = SessionManagerProbe.randomID()                       // a made-up id with the real MAC
            var unknownKey = parts
            unknownKey[1] = "k9"
            let other = try SessionSigningKey(id: "k2", secret: Secret(Array(repeating: 0x99, count: 32)))
            let foreign = try rig.manager { $0.keys = [other] }
            let (_, foreignCookie) = try await foreign.create()
            for bad in [forged.joined(separator: "."), unknownKey.joined(separator: "."), String(value.dropLast(3)), "v1.k2." + session.id.reveal(),
                        session.id.reveal(), "", "v1.k2.x.y", String(repeating: "A", count: 10_000)] {
                #expect(try await rig.sessions.load(cookieHeader: "__Host-session=\(bad)") == nil, "\(bad.prefix(40))")
            }
            #expect(try await rig.sessions.load(cookieHeader: sent(foreignCookie)) == nil)
        },
        check("signing keys rotate: cookies of the old key still load; a manager without it refuses them") { rig in
            let old = try rig.manager { $0.keys = [SessionConformance.oldKey] }
            let (_, oldCookie) = try await old.create(userID: user())
            #expect(sent(oldCookie).contains("=v1.k1."))
            #expect(try await rig.sessions.load(cookieHeader: sent(oldCookie)) != nil)
            let rotatedOut = try rig.manager { $0.keys = [SessionConformance.mainKey] }
            #expect(try await rotatedOut.load(cookieHeader: sent(oldCookie)) == nil)
        },
        check("idle timeout: unused for 30 minutes the session ends; used, it lives on") { rig in
            let (_, cookie) = try await rig.sessions.create(userID: user())
            for _ in 0..<4 {
                rig.clock.advance(25 * 60)
                #expect(try await rig.sessions.load(cookieHeader: sent(cookie)) != nil)
            }
            rig.clock.advance(31 * 60)
            #expect(try await rig.sessions.load(cookieHeader: sent(cookie)) == nil)
        },
        check("absolute timeout: used every 20 minutes, the session still ends 12 hours after it began") { rig in
            let (_, cookie) = try await rig.sessions.create(userID: user())
            var elapsed: TimeInterval = 0
            while elapsed + 20 * 60 < 12 * 3600 {
                rig.clock.advance(20 * 60)
                elapsed += 20 * 60
                #expect(try await rig.sessions.load(cookieHeader: sent(cookie)) != nil, "after \(elapsed) s")
            }
            rig.clock.advance(12 * 3600 - elapsed + 1)
            #expect(try await rig.sessions.load(cookieHeader: sent(cookie)) == nil)
        },
        check("sign-in gives a new id (fixation): the planted cookie stops working, the data carries over") { rig in
            let (anonymous, planted) = try await rig.sessions.create(data: ["cart": ["book"]])
            let user = user()
            let (signedIn, cookie) = try await rig.sessions.login(anonymous, userID: user)
            #expect(signedIn.id.reveal() != anonymous.id.reveal())
            #expect(try await rig.sessions.load(cookieHeader: sent(planted)) == nil)
            let loaded = try #require(try await rig.sessions.load(cookieHeader: sent(cookie)))
            #expect(loaded.userID == user && loaded.data["cart"] == ["book"] && loaded.record.authenticatedAt == rig.clock.now)
        },
        check("rotation after a privilege change: new id and CSRF token, same data; the old id is dead") { rig in
            let (session, cookie) = try await rig.sessions.create(userID: user(), data: ["role": "clerk"])
            let before = rig.sessions.csrfToken(for: session)
            rig.clock.advance(60)
            let (rotated, newCookie) = try await rig.sessions.rotate(session)
            #expect(try await rig.sessions.load(cookieHeader: sent(cookie)) == nil)
            let loaded = try #require(try await rig.sessions.load(cookieHeader: sent(newCookie)))
            #expect(loaded.data["role"] == "clerk" && loaded.record.authenticatedAt == rig.clock.now)
            #expect(rig.sessions.csrfToken(for: rotated) != before)
        },
        check("sign-out ends the session and clears the cookie; sign-out everywhere ends all but the one kept") { rig in
            let user = user()
            var cookies: [String] = []
            var kept: Session?
            for index in 0..<3 {
                let (session, cookie) = try await rig.sessions.create(userID: user)
                cookies.append(cookie)
                if index == 1 { kept = session }
                rig.clock.advance(1)
            }
            let (other, otherCookie) = try await rig.sessions.create(userID: "another-\(user)")
            #expect(try await rig.sessions.sessions(of: user).count == 3)
            #expect(try await rig.sessions.revokeAll(userID: user, keeping: kept) == 2)
            #expect(try await rig.sessions.load(cookieHeader: sent(cookies[0])) == nil)
            #expect(try await rig.sessions.load(cookieHeader: sent(cookies[1])) != nil)
            #expect(try await rig.sessions.load(cookieHeader: sent(cookies[2])) == nil)
            #expect(try await rig.sessions.load(cookieHeader: sent(otherCookie)) != nil)
            let cleared = try await rig.sessions.destroy(other)
            #expect(cleared.hasPrefix("__Host-session=;") && cleared.contains("Max-Age=0"))
            #expect(try await rig.sessions.load(cookieHeader: sent(otherCookie)) == nil)
        },
        check("concurrent-session limit: the oldest session ends, or the sign-in is refused") { rig in
            let limited = try rig.manager { $0.maxSessionsPerUser = 2 }
            let user = user()
            var cookies: [String] = []
            for _ in 0..<3 {
                cookies.append(try await limited.login(nil, userID: user).setCookie)
                rig.clock.advance(1)
            }
            #expect(try await limited.load(cookieHeader: sent(cookies[0])) == nil)
            #expect(try await limited.load(cookieHeader: sent(cookies[1])) != nil)
            #expect(try await limited.load(cookieHeader: sent(cookies[2])) != nil)
            let strict = try rig.manager { $0.maxSessionsPerUser = 2; $0.evictOldestAtLimit = false }
            do {
                _ = try await strict.login(nil, userID: user)
                Issue.record("a third session was allowed")
            } catch let error as NimbusError { #expect(error.code == .resourceExhausted) }
        },
        check("data is saved; a save over a newer version is refused instead of lost") { rig in
            let (session, cookie) = try await rig.sessions.create(userID: user())
            var first = try #require(try await rig.sessions.load(cookieHeader: sent(cookie)))
            var second = try #require(try await rig.sessions.load(cookieHeader: sent(cookie)))
            first.data["step"] = 1
            try await rig.sessions.save(first)
            second.data["step"] = 2
            do {
                try await rig.sessions.save(second)
                Issue.record("a stale save overwrote a newer one")
            } catch let error as NimbusError { #expect(error.code == .failedPrecondition) }
            #expect(try await rig.sessions.load(cookieHeader: sent(cookie))?.data["step"] == 1)
            _ = session
        },
        check("CSRF: the session's token verifies, another session's or none does not") { rig in
            let (mine, _) = try await rig.sessions.create(userID: user())
            let (theirs, _) = try await rig.sessions.create(userID: user())
            let token = rig.sessions.csrfToken(for: mine)
            #expect(rig.sessions.verifyCSRF(token, for: mine))
            #expect(!rig.sessions.verifyCSRF(rig.sessions.csrfToken(for: theirs), for: mine))
            #expect(!rig.sessions.verifyCSRF(nil, for: mine) && !rig.sessions.verifyCSRF("", for: mine))
        },
        check("a user's sessions are listed oldest first, without ended ones; purge removes ended sessions") { rig in
            let user = user()
            let (first, _) = try await rig.sessions.create(userID: user)
            rig.clock.advance(10)
            let (second, _) = try await rig.sessions.create(userID: user)
            #expect(try await rig.sessions.sessions(of: user).map(\.key) == [first.record.key, second.record.key])
            rig.clock.advance(31 * 60)
            #expect(try await rig.sessions.sessions(of: user).isEmpty)
            #expect(try await rig.sessions.purge() >= 2)
            #expect(try await rig.driver.remove([first.record.key, second.record.key]) == 0)
        },
        check("the store refuses a second session with the same key and a stale update") { rig in
            let (session, _) = try await rig.sessions.create(userID: user())
            do {
                try await rig.driver.insert(session.record)
                Issue.record("a duplicate key was stored")
            } catch let error as NimbusError { #expect(error.code == .alreadyExists) }
            var record = session.record
            record.version += 1
            #expect(try await rig.driver.update(record, expectedVersion: session.record.version))
            #expect(try await !rig.driver.update(record, expectedVersion: session.record.version))
        },
    ]
}

/// Random ids as the manager makes them, for forged cookies.
enum SessionManagerProbe {
    static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }
}
