import Foundation
import Logging
import NimbusCore
import Synchronization

/// A user directory that signs users in and issues tokens — Cognito user pools, Identity Platform,
/// or the embedded pool — behind one API: sign-up and confirmation, password sign-in with its
/// challenges, refresh, global sign-out, administrator calls, groups, and verification of the
/// pool's own tokens.
///
/// ```swift
/// let pool = try await UserPool.open("mem://?client_id=web", openers: .userPools.withLocal())
/// try await pool.signUp("ada", password: "Correct-Horse-9", attributes: ["email": "ada@example.com"])
/// try await pool.confirmSignUp("ada", code: codeFromEmail)
/// let tokens = try await pool.signIn("ada", password: "Correct-Horse-9").tokens()
/// let who = try await pool.verify(tokens.accessToken.reveal(), use: .access)   // who.username, who.groups
/// ```
///
/// Passwords and tokens are ``Secret``s end to end; usernames appear in errors and logs, they never do.
public final class UserPool: PortableClient {
    /// Settings.
    public struct Configuration: Sendable {
        /// Clock skew accepted on `exp`, `nbf` and `iat`.
        public var leeway: Duration
        /// Retries of idempotent reads (sign-in and writes are never retried: a retried wrong
        /// password counts twice towards a lockout).
        public var retry: RetryPolicy

        /// Creates settings (30 s of leeway, three attempts for reads).
        public init(leeway: Duration = .seconds(30), retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), maxDelay: .seconds(1))) {
            self.leeway = leeway
            self.retry = retry
        }
    }

    /// The settings.
    public let configuration: Configuration
    private let driver: any UserPoolDriver
    private let calls: PortableCalls
    private let closed = Atomic<Bool>(false)
    private let now: @Sendable () -> Date
    static let operations = ["signUp", "confirmSignUp", "signIn", "completeNewPassword", "refresh", "signOut", "createUser", "user", "confirm",
                             "setPassword", "setEnabled", "deleteUser", "createGroup", "deleteGroup", "addToGroup", "removeFromGroup", "groups", "verify"]

    /// The longest password sent anywhere (Cognito's limit; it also bounds the hashing work).
    public static let maximumPasswordLength = 256

    /// Wraps a driver.
    public init(driver: some UserPoolDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.userpool"),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.driver = driver
        self.configuration = configuration
        self.now = now
        calls = PortableCalls(domain: "userpool", provider: driver.provider, operations: Self.operations, logger: logger)
    }

    /// Opens the pool `url`'s scheme names (`mem://`, `cognito://POOL_ID?client_id=…`).
    public static func open(_ url: String, openers: URLOpenerRegistry<any UserPoolDriver>, configuration: Configuration = .init()) async throws -> UserPool {
        UserPool(driver: try await openers.open(url), configuration: configuration)
    }

    public var provider: String { driver.provider }
    /// What the pool supports.
    public var capabilities: UserPoolCapabilities { driver.capabilities }
    public func driver<T>(as type: T.Type) -> T? { driver as? T }
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try await driver.close()
    }

    private var isClosed: Bool { closed.load(ordering: .relaxed) }

    /// Checks a username: 1–128 characters, no control characters, no leading or trailing space.
    public static func validate(username: String) throws {
        guard (1...128).contains(username.count), !username.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }),
              username.first?.isWhitespace == false, username.last?.isWhitespace == false else {
            throw NimbusError(.invalidArgument, "username \"\(username.prefix(32))\" is not valid: use 1–128 characters without control characters or surrounding spaces")
        }
    }

    static func validate(password: Secret<String>) throws {
        let length = password.reveal().count
        guard (1...maximumPasswordLength).contains(length) else {
            throw NimbusError(.invalidArgument, "a password has 1–\(maximumPasswordLength) characters; this one has \(length)")
        }
    }

    private func require(_ capability: UserPoolCapabilities, _ what: String) throws {
        guard driver.capabilities.contains(capability) else { throw NimbusError(.unimplemented, "the \(provider) user pool does not support \(what)") }
    }

    // MARK: - Users

    /// Signs a user up; they are `unconfirmed` until ``confirmSignUp(_:code:)``.
    @discardableResult
    public func signUp(_ username: String, password: Secret<String>, attributes: [String: String] = [:]) async throws -> PoolUser {
        try Self.validate(username: username)
        try Self.validate(password: password)
        try require(.selfSignUp, "self sign-up")
        return try await calls.run("signUp", retry: .none, closed: isClosed) { try await self.driver.signUp(username: username, password: password, attributes: attributes) }
    }

    /// Confirms a sign-up with the code the pool sent.
    public func confirmSignUp(_ username: String, code: String) async throws {
        try Self.validate(username: username)
        guard (1...64).contains(code.count) else { throw NimbusError(.invalidArgument, "a confirmation code has 1–64 characters") }
        try await calls.run("confirmSignUp", retry: .none, closed: isClosed) { try await self.driver.confirmSignUp(username: username, code: code) }
    }

    /// Signs in with a password.
    public func signIn(_ username: String, password: Secret<String>) async throws -> SignInResult {
        try Self.validate(username: username)
        try Self.validate(password: password)
        return try await calls.run("signIn", retry: .none, closed: isClosed) { try await self.driver.signIn(username: username, password: password) }
    }

    /// Answers a `NEW_PASSWORD_REQUIRED` challenge with the user's new password.
    public func completeNewPassword(_ challenge: PoolChallenge, newPassword: Secret<String>) async throws -> SignInResult {
        try Self.validate(password: newPassword)
        return try await calls.run("completeNewPassword", retry: .none, closed: isClosed) { try await self.driver.completeNewPassword(challenge, newPassword: newPassword) }
    }

    /// New ID and access tokens from a refresh token.
    public func refresh(_ refreshToken: Secret<String>, username: String) async throws -> PoolTokens {
        try await calls.run("refresh", retry: .none, closed: isClosed) { try await self.driver.refresh(refreshToken, username: username) }
    }

    /// Revokes every refresh token of the user the access token belongs to.
    public func signOut(everywhere accessToken: Secret<String>) async throws {
        try require(.globalSignOut, "global sign-out")
        try await calls.run("signOut", retry: .none, closed: isClosed) { try await self.driver.signOut(everywhere: accessToken) }
    }

    /// Creates a user as an administrator.
    @discardableResult
    public func createUser(_ username: String, attributes: [String: String] = [:], temporaryPassword: Secret<String>? = nil) async throws -> PoolUser {
        try Self.validate(username: username)
        if let temporaryPassword { try Self.validate(password: temporaryPassword) }
        try require(.adminCreate, "administrator-created users")
        return try await calls.run("createUser", retry: .none, closed: isClosed) {
            try await self.driver.createUser(username: username, attributes: attributes, temporaryPassword: temporaryPassword)
        }
    }

    /// A user by name.
    public func user(_ username: String) async throws -> PoolUser {
        try Self.validate(username: username)
        return try await calls.run("user", retry: configuration.retry, closed: isClosed) { try await self.driver.user(username) }
    }

    /// Confirms a user without a code.
    public func confirm(_ username: String) async throws {
        try Self.validate(username: username)
        try await calls.run("confirm", retry: .none, closed: isClosed) { try await self.driver.confirm(username) }
    }

    /// Sets a password; `permanent: false` makes the user change it at the next sign-in.
    public func setPassword(_ username: String, password: Secret<String>, permanent: Bool = true) async throws {
        try Self.validate(username: username)
        try Self.validate(password: password)
        try await calls.run("setPassword", retry: .none, closed: isClosed) { try await self.driver.setPassword(username, password: password, permanent: permanent) }
    }

    /// Enables or disables a user.
    public func setEnabled(_ username: String, _ enabled: Bool) async throws {
        try Self.validate(username: username)
        try await calls.run("setEnabled", retry: configuration.retry, closed: isClosed) { try await self.driver.setEnabled(username, enabled) }
    }

    /// Deletes a user.
    public func deleteUser(_ username: String) async throws {
        try Self.validate(username: username)
        try await calls.run("deleteUser", retry: .none, closed: isClosed) { try await self.driver.deleteUser(username) }
    }

    // MARK: - Groups

    /// Creates a group.
    public func createGroup(_ name: String) async throws {
        try Self.validate(username: name)
        try require(.groups, "groups")
        try await calls.run("createGroup", retry: .none, closed: isClosed) { try await self.driver.createGroup(name) }
    }

    /// Deletes a group.
    public func deleteGroup(_ name: String) async throws {
        try require(.groups, "groups")
        try await calls.run("deleteGroup", retry: .none, closed: isClosed) { try await self.driver.deleteGroup(name) }
    }

    /// Adds a user to a group (already a member: no change).
    public func addUser(_ username: String, toGroup group: String) async throws {
        try require(.groups, "groups")
        try await calls.run("addToGroup", retry: configuration.retry, closed: isClosed) { try await self.driver.addUser(username, toGroup: group) }
    }

    /// Removes a user from a group.
    public func removeUser(_ username: String, fromGroup group: String) async throws {
        try require(.groups, "groups")
        try await calls.run("removeFromGroup", retry: configuration.retry, closed: isClosed) { try await self.driver.removeUser(username, fromGroup: group) }
    }

    /// The groups of a user, sorted.
    public func groups(of username: String) async throws -> [String] {
        try require(.groups, "groups")
        return try await calls.run("groups", retry: configuration.retry, closed: isClosed) { try await self.driver.groups(of: username) }
    }

    // MARK: - Tokens

    /// Verifies a token this pool issued: signature with the pool's keys and algorithms, exact
    /// issuer, expiry, `token_use`, and the client (`aud` of an ID token, `client_id` of an access
    /// token) — the checks AWS documents for Cognito tokens.
    /// - Throws: `unauthenticated` with a ``JWTRejection`` (an ID token presented as an access token
    ///   is `wrongType`; another client's token is `wrongAudience`).
    public func verify(_ token: String, use: PoolTokenUse) async throws -> PoolIdentity {
        let policy = driver.tokenPolicy
        let separateTokens = policy.tokenUseClaim != nil
        let verifier = JWTVerifier(keys: policy.keys, configuration: .init(issuers: [policy.issuer], audiences: use == .id || !separateTokens ? [policy.clientID] : [],
                                                                           algorithms: policy.algorithms, leeway: configuration.leeway,
                                                                           requiredClaims: Set(["sub"] + (policy.tokenUseClaim.map { [$0] } ?? []))), now: now)
        let verified = try await verifier.verify(token)
        let claims = verified.claims
        if let useClaim = policy.tokenUseClaim {
            guard claims[useClaim]?.stringValue == use.rawValue else {
                throw JWTVerifier.reject(.wrongType, "\(useClaim) is \(claims[useClaim]?.stringValue.map { "\"\($0.prefix(20))\"" } ?? "missing"), "
                                         + "expected \"\(use.rawValue)\" (an \(use == .id ? "access" : "ID") token was presented in place of an \(use.rawValue) token?)")
            }
            if use == .access, claims["client_id"]?.stringValue != policy.clientID {
                throw JWTVerifier.reject(.wrongAudience, "the access token is for another app client")
            }
        }
        guard let subject = claims.subject else { throw JWTVerifier.reject(.missingClaim, "the token has no sub") }
        let usernameClaim = use == .id ? policy.idUsernameClaim : policy.accessUsernameClaim
        let groups = claims[policy.groupsClaim]?.arrayValue?.compactMap(\.stringValue) ?? []
        return PoolIdentity(subject: subject, username: claims[usernameClaim]?.stringValue, groups: groups.sorted(), use: use, claims: claims)
    }
}

extension URLOpenerRegistry where Resource == any UserPoolDriver {
    /// The user-pool registry with no scheme yet; adapters add theirs (`.userPools.withLocal()`).
    public static var userPools: Self { Self(domain: "user pool") }
}
