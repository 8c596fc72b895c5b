import Crypto
import Foundation
import Logging
import NimbusCore
import Synchronization

/// A key that signs session cookies. Several can be configured: the first signs, all verify, so a
/// key is rotated by putting the new one first and dropping the old one after the absolute timeout.
public struct SessionSigningKey: Sendable {
    /// The key's id, written in each cookie.
    public let id: String
    let secret: Secret<[UInt8]>

    /// - Throws: `invalidArgument` for a secret under 32 bytes or an id that is empty or holds a `.`.
    public init(id: String, secret: Secret<[UInt8]>) throws {
        guard !id.isEmpty, !id.contains("."), id.utf8.count <= 32 else {
            throw NimbusError(.invalidArgument, "a session key id is 1 to 32 characters without '.'")
        }
        guard secret.reveal().count >= 32 else {
            throw NimbusError(.invalidArgument, "a session signing secret needs at least 32 random bytes; this one has \(secret.reveal().count)")
        }
        self.id = id
        self.secret = secret
    }

    func mac(_ message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: secret.reveal())))
    }
}

/// A loaded session: its id (only ever in memory and in the cookie) and its record.
public struct Session: Sendable, CustomStringConvertible {
    /// The session id. Never logged.
    public let id: Secret<String>
    /// What the store holds.
    public internal(set) var record: SessionRecord

    /// The application's data; change it, then ``SessionManager/save(_:)``.
    public var data: [String: JSONValue] {
        get { record.data }
        set { record.data = newValue }
    }
    /// The signed-in user.
    public var userID: String? { record.userID }

    public var description: String { "Session(user: \(record.userID ?? "-"), expires: \(record.expiresAt))" }
}

/// The `SameSite` attribute of the session cookie.
public enum SameSite: String, Sendable {
    case strict = "Strict", lax = "Lax", none = "None"
}

/// Server-side sessions over any ``SessionStoreDriver`` (memory, SQLite, Redis, PostgreSQL), as
/// OWASP's session management guidance asks: 256-bit random ids in signed cookies (`HttpOnly`,
/// `Secure`, `SameSite=Lax`, `__Host-` prefix by default), idle and absolute timeouts, a new id on
/// sign-in and privilege change (no fixation), revocation of one or all of a user's sessions, a
/// limit on concurrent sessions, and CSRF tokens.
///
/// ```swift
/// let sessions = SessionManager(driver: try SQLiteSessionStore(path: "sessions.sqlite"),
///                               configuration: .init(keys: [try SessionSigningKey(id: "2026-12", secret: secret)]))
/// // sign-in: a new id, whatever the visitor had before
/// let (session, cookie) = try await sessions.login(current, userID: user.id)
/// response.headers[.setCookie] = cookie
/// // later requests
/// if let session = try await sessions.load(cookieHeader: request.headers[.cookie]) { … }
/// ```
public final class SessionManager: PortableClient {
    /// Timeouts, cookie attributes and limits.
    public struct Configuration: Sendable {
        /// Signing keys: the first signs, all verify.
        public var keys: [SessionSigningKey]
        /// The cookie's name. `__Host-` names require `secure` (and get `Path=/`, no `Domain`).
        public var cookieName: String
        /// A session unused this long ends.
        public var idleTimeout: Duration
        /// A session ends this long after it began, used or not.
        public var absoluteTimeout: Duration
        /// The last-seen time is written at most this often (a read does not write on every request).
        public var touchInterval: Duration
        /// Whether the cookie is `Secure` (HTTPS only). Turn off only for local HTTP development.
        public var secure: Bool
        /// The cookie's `SameSite`.
        public var sameSite: SameSite
        /// Sessions one user may hold at once (`nil`: no limit).
        public var maxSessionsPerUser: Int?
        /// What happens at the limit: end the user's oldest session, or refuse the new sign-in.
        public var evictOldestAtLimit: Bool

        /// Creates settings (30 minutes idle, 12 hours absolute).
        public init(keys: [SessionSigningKey], cookieName: String = "__Host-session", idleTimeout: Duration = .seconds(1800),
                    absoluteTimeout: Duration = .seconds(43_200), touchInterval: Duration = .seconds(60), secure: Bool = true,
                    sameSite: SameSite = .lax, maxSessionsPerUser: Int? = nil, evictOldestAtLimit: Bool = true) {
            self.keys = keys
            self.cookieName = cookieName
            self.idleTimeout = idleTimeout
            self.absoluteTimeout = absoluteTimeout
            self.touchInterval = touchInterval
            self.secure = secure
            self.sameSite = sameSite
            self.maxSessionsPerUser = maxSessionsPerUser
            self.evictOldestAtLimit = evictOldestAtLimit
        }

        func validate() throws {
            guard !keys.isEmpty else { throw NimbusError(.invalidArgument, "sessions need at least one signing key") }
            guard !cookieName.hasPrefix("__Host-") || secure else {
                throw NimbusError(.invalidArgument, "a __Host- cookie must be Secure; use another cookie name for plain-HTTP development")
            }
            guard !cookieName.isEmpty, cookieName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_".contains($0)) }) else {
                throw NimbusError(.invalidArgument, "cookie name '\(cookieName)' must be letters, digits, '-' and '_'")
            }
            guard sameSite != .none || secure else { throw NimbusError(.invalidArgument, "SameSite=None requires Secure") }
            guard idleTimeout > .zero, absoluteTimeout >= idleTimeout else {
                throw NimbusError(.invalidArgument, "the idle timeout must be positive and no longer than the absolute timeout")
            }
        }
    }

    /// The settings.
    public let configuration: Configuration
    private let driver: any SessionStoreDriver
    private let calls: PortableCalls
    private let closed = Atomic<Bool>(false)
    private let now: @Sendable () -> Date
    static let operations = ["create", "load", "save", "login", "rotate", "destroy", "revokeAll", "sessions", "purge"]

    /// Sessions in `driver`; `now` is the clock (for tests).
    /// - Throws: `invalidArgument` for settings that would make cookies unsafe (see ``Configuration``).
    public init(driver: some SessionStoreDriver, configuration: Configuration, logger: Logger = Logger(label: "nimbus.session"),
                now: @escaping @Sendable () -> Date = { Date() }) throws {
        try configuration.validate()
        self.driver = driver
        self.configuration = configuration
        self.now = now
        self.calls = PortableCalls(domain: "session", provider: driver.provider, operations: Self.operations, logger: logger)
    }

    public var provider: String { driver.provider }
    public func driver<T>(as type: T.Type) -> T? { driver as? T }
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try await driver.close()
    }

    // MARK: - Lifecycle

    /// A new anonymous (or signed-in, with `userID`) session and its `Set-Cookie` value.
    public func create(userID: String? = nil, data: [String: JSONValue] = [:]) async throws -> (session: Session, setCookie: String) {
        try await run("create") {
            if let userID { try await self.makeRoom(for: userID) }
            return try await self.insertNew(userID: userID, data: data, authenticated: userID != nil)
        }
    }

    /// The session a request's `Cookie` header names, or `nil` when there is none, its signature is
    /// wrong or its key unknown, or it has ended (idle or absolute timeout, revoked). Refreshes its
    /// last-seen time (at most once per ``Configuration/touchInterval``).
    public func load(cookieHeader: String?) async throws -> Session? {
        guard let cookieHeader, let id = sessionID(fromCookieHeader: cookieHeader) else { return nil }
        return try await run("load") {
            let current = self.now()
            guard var record = try await self.driver.find(Self.key(of: id), now: current) else { return nil }
            if current.timeIntervalSince(record.lastSeenAt) >= self.configuration.touchInterval.nimbusSeconds {
                let previous = record.version
                record.lastSeenAt = current
                record.idleExpiresAt = min(record.absoluteExpiresAt, current.addingTimeInterval(self.configuration.idleTimeout.nimbusSeconds))
                record.version += 1
                if try await !self.driver.update(record, expectedVersion: previous) {
                    // Changed meanwhile by another request: use what is stored now.
                    guard let fresh = try await self.driver.find(Self.key(of: id), now: current) else { return nil }
                    record = fresh
                }
            }
            return Session(id: Secret(id), record: record)
        }
    }

    /// Writes the session's changed ``Session/data``.
    /// - Throws: `failedPrecondition` when the session changed since it was loaded (load it again and
    ///   reapply), or ended.
    @discardableResult
    public func save(_ session: Session) async throws -> Session {
        try await run("save") {
            var record = session.record
            record.version += 1
            guard try await self.driver.update(record, expectedVersion: session.record.version) else {
                throw NimbusError(.failedPrecondition, "the session changed or ended since it was loaded; load it again")
            }
            return Session(id: session.id, record: record)
        }
    }

    /// Signs a user in: a **new** session id (the visitor's old one, which an attacker may have
    /// planted, stops working), the old session's data carried over, the sign-in time recorded, the
    /// user's session limit applied.
    /// - Throws: `resourceExhausted` when the user is at the limit and ``Configuration/evictOldestAtLimit`` is off.
    public func login(_ current: Session?, userID: String) async throws -> (session: Session, setCookie: String) {
        try await run("login") {
            try await self.makeRoom(for: userID)
            let fresh = try await self.insertNew(userID: userID, data: current?.data ?? [:], authenticated: true)
            if let current { _ = try await self.driver.remove([current.record.key]) }
            return fresh
        }
    }

    /// A new id for the same session (after a privilege change, a password change, re-authentication).
    public func rotate(_ session: Session, reauthenticated: Bool = true) async throws -> (session: Session, setCookie: String) {
        try await run("rotate") {
            let id = Self.newID(), current = self.now()
            var record = session.record
            record.key = Self.key(of: id)
            record.csrfSecret = Self.newID()
            record.version = 1
            if reauthenticated { record.authenticatedAt = current }
            try await self.driver.insert(record)
            _ = try await self.driver.remove([session.record.key])
            return (Session(id: Secret(id), record: record), self.cookie(id, expires: record.absoluteExpiresAt))
        }
    }

    /// Ends a session; returns the `Set-Cookie` value that clears the cookie.
    public func destroy(_ session: Session) async throws -> String {
        try await run("destroy") { _ = try await self.driver.remove([session.record.key]) }
        return clearingCookie
    }

    /// Ends every session of `userID` (sign out everywhere, a password reset, an account lock), except `keeping`.
    /// Returns how many ended.
    @discardableResult
    public func revokeAll(userID: String, keeping: Session? = nil) async throws -> Int {
        try await run("revokeAll") {
            let keys = try await self.driver.sessions(ofUser: userID, now: self.now()).map(\.key).filter { $0 != keeping?.record.key }
            return keys.isEmpty ? 0 : try await self.driver.remove(keys)
        }
    }

    /// The live sessions of `userID` (for a "where you're signed in" page), oldest first.
    public func sessions(of userID: String) async throws -> [SessionRecord] {
        try await run("sessions") { try await self.driver.sessions(ofUser: userID, now: self.now()) }
    }

    /// Removes ended sessions from the store; run it now and then (stores with expiry do it themselves).
    @discardableResult
    public func purge() async throws -> Int { try await run("purge") { try await self.driver.purge(now: self.now()) } }

    // MARK: - CSRF (synchronizer token)

    /// The session's CSRF token: put it in forms and send it back in `X-CSRF-Token` (or a form field).
    /// It is derived from a per-session secret, so it changes with every new session id.
    public func csrfToken(for session: Session) -> String {
        Base64URL.encode(HMAC<SHA256>.authenticationCode(for: Array("nimbus-csrf".utf8), using: SymmetricKey(data: Array(session.record.csrfSecret.utf8))))
    }

    /// Whether `token` is the session's CSRF token (compared in constant time).
    public func verifyCSRF(_ token: String?, for session: Session) -> Bool {
        guard let token else { return false }
        return ConstantTime.equals(Array(token.utf8), Array(csrfToken(for: session).utf8))
    }

    // MARK: - Cookies

    /// The `Set-Cookie` value that clears the session cookie.
    public var clearingCookie: String { attributes("\(configuration.cookieName)=", maxAge: 0) }

    /// The session id in a `Cookie` header, if its signature verifies with a configured key.
    func sessionID(fromCookieHeader header: String) -> String? {
        for pair in header.split(separator: ";") {
            let trimmed = pair.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix(configuration.cookieName + "=") else { continue }
            let value = trimmed.dropFirst(configuration.cookieName.count + 1)
            let parts = value.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 4, parts[0] == "v1", parts[2].utf8.count == 43,
                  let key = configuration.keys.first(where: { $0.id == parts[1] }), let mac = Base64URL.decode(parts[3]) else { continue }
            if ConstantTime.equals(mac, key.mac("v1.\(parts[1]).\(parts[2])")) { return parts[2] }
        }
        return nil
    }

    func cookie(_ id: String, expires: Date) -> String {
        let key = configuration.keys[0]
        let value = "v1.\(key.id).\(id).\(Base64URL.encode(key.mac("v1.\(key.id).\(id)")))"
        return attributes("\(configuration.cookieName)=\(value)", maxAge: max(0, Int(expires.timeIntervalSince(now()).rounded(.down))))
    }

    private func attributes(_ pair: String, maxAge: Int) -> String {
        var parts = [pair, "Path=/", "Max-Age=\(maxAge)", "HttpOnly"]
        if configuration.secure { parts.append("Secure") }
        parts.append("SameSite=\(configuration.sameSite.rawValue)")
        return parts.joined(separator: "; ")
    }

    // MARK: - Helpers

    private func insertNew(userID: String?, data: [String: JSONValue], authenticated: Bool) async throws -> (session: Session, setCookie: String) {
        let id = Self.newID(), current = now()
        let absolute = current.addingTimeInterval(configuration.absoluteTimeout.nimbusSeconds)
        let record = SessionRecord(key: Self.key(of: id), userID: userID, data: data, csrfSecret: Self.newID(), createdAt: current, lastSeenAt: current,
                                   authenticatedAt: authenticated ? current : nil,
                                   idleExpiresAt: min(absolute, current.addingTimeInterval(configuration.idleTimeout.nimbusSeconds)),
                                   absoluteExpiresAt: absolute, version: 1)
        try await driver.insert(record)
        return (Session(id: Secret(id), record: record), cookie(id, expires: absolute))
    }

    /// Applies the per-user limit before a new session of `userID`.
    private func makeRoom(for userID: String) async throws {
        guard let limit = configuration.maxSessionsPerUser else { return }
        let live = try await driver.sessions(ofUser: userID, now: now())
        guard live.count >= limit else { return }
        guard configuration.evictOldestAtLimit else {
            throw NimbusError(.resourceExhausted, "this account already has \(live.count) active sessions (the limit is \(limit)); sign out elsewhere first")
        }
        _ = try await driver.remove(live.prefix(live.count - limit + 1).map(\.key))
    }

    private func run<T: Sendable>(_ operation: String, _ body: @Sendable () async throws -> T) async throws -> T {
        try await calls.run(operation, retry: .none, closed: closed.load(ordering: .relaxed), body)
    }

    /// 32 random bytes from the system's secure generator, base64url (43 characters).
    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// The store's key of a session id: its SHA-256.
    static func key(of id: String) -> String { Base64URL.encode(SHA256.hash(data: Array(id.utf8))) }
}
