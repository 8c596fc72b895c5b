import Foundation
import NimbusCore

/// A user of a pool, without secrets.
public struct PoolUser: Sendable, Hashable {
    /// Where a user is in the sign-up lifecycle.
    public enum Status: String, Sendable, Hashable {
        /// Signed up, not confirmed yet: cannot sign in.
        case unconfirmed
        /// Can sign in.
        case confirmed
        /// Created by an administrator with a temporary password: the first sign-in must set a new one.
        case forceChangePassword
        /// An administrator asked for a password reset.
        case resetRequired
    }

    /// The name the user signs in with.
    public var username: String
    /// The stable id tokens carry as `sub`.
    public var subject: String
    /// The lifecycle state.
    public var status: Status
    /// Whether the user may sign in at all.
    public var isEnabled: Bool
    /// Standard and custom attributes (`email`, `custom:tier`).
    public var attributes: [String: String]
    /// When the user was created, if the pool says.
    public var createdAt: Date?

    /// Creates a user record.
    public init(username: String, subject: String, status: Status, isEnabled: Bool = true, attributes: [String: String] = [:], createdAt: Date? = nil) {
        self.username = username
        self.subject = subject
        self.status = status
        self.isEnabled = isEnabled
        self.attributes = attributes
        self.createdAt = createdAt
    }
}

/// The tokens of a signed-in user; each stays a ``Secret`` until it is sent.
public struct PoolTokens: Sendable {
    /// The OpenID Connect ID token (who the user is).
    public var idToken: Secret<String>
    /// The access token (what the user may call).
    public var accessToken: Secret<String>
    /// The refresh token, when the flow issues one (a refresh does not issue a new one).
    public var refreshToken: Secret<String>?
    /// How long the ID and access tokens live.
    public var expiresIn: Duration

    /// Creates a token set.
    public init(idToken: Secret<String>, accessToken: Secret<String>, refreshToken: Secret<String>?, expiresIn: Duration) {
        self.idToken = idToken
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.expiresIn = expiresIn
    }
}

/// A step the pool asks for before it issues tokens.
public struct PoolChallenge: Sendable {
    /// The challenge's name as the pool spells it (`NEW_PASSWORD_REQUIRED`).
    public var name: String
    /// The user it is for.
    public var username: String
    /// The opaque session that ties the answer to this sign-in.
    public var session: Secret<String>

    /// Creates a challenge.
    public init(name: String, username: String, session: Secret<String>) {
        self.name = name
        self.username = username
        self.session = session
    }
}

/// What a password sign-in gave.
public enum SignInResult: Sendable {
    /// Tokens: the user is signed in.
    case signedIn(PoolTokens)
    /// The user has a temporary password; answer with ``UserPool/completeNewPassword(_:newPassword:)``.
    case newPasswordRequired(PoolChallenge)
    /// Another challenge (MFA, custom) the portable API does not answer; use the driver.
    case challenge(PoolChallenge)

    /// The tokens, or `failedPrecondition` naming the challenge that is still open.
    public func tokens() throws -> PoolTokens {
        switch self {
        case .signedIn(let tokens): return tokens
        case .newPasswordRequired(let challenge), .challenge(let challenge):
            throw NimbusError(.failedPrecondition, "sign-in of \(challenge.username) needs the \(challenge.name) challenge answered first")
        }
    }
}

/// Which token a caller presents.
public enum PoolTokenUse: String, Sendable, Hashable {
    /// The ID token (`aud` is the client).
    case id
    /// The access token (`client_id` is the client).
    case access
}

/// How the tokens of a pool are verified: who issues them, with which keys, for which client, and
/// where the names sit in the claims. With a ``tokenUseClaim`` (Cognito's `token_use`, which the
/// embedded pool copies) an ID token names the client in `aud` and an access token in `client_id`;
/// without one (Identity Platform), one token serves as both and names the client in `aud`.
public struct PoolTokenPolicy: Sendable {
    /// The exact `iss`.
    public var issuer: String
    /// The keys (a ``RemoteJWKS`` for a vendor, the pool's own set for the embedded one).
    public var keys: any JWTKeyProvider
    /// The app client the tokens must be for.
    public var clientID: String
    /// The accepted signature algorithms.
    public var algorithms: Set<JWSAlgorithm>
    /// The claim holding the username in an ID token (`cognito:username`).
    public var idUsernameClaim: String
    /// The claim holding the username in an access token (`username`).
    public var accessUsernameClaim: String
    /// The claim listing the user's groups (`cognito:groups`).
    public var groupsClaim: String
    /// The claim saying which token it is (`token_use`), or `nil` when the pool issues one token for both.
    public var tokenUseClaim: String?

    /// Creates a policy.
    public init(issuer: String, keys: any JWTKeyProvider, clientID: String, algorithms: Set<JWSAlgorithm>,
                idUsernameClaim: String, accessUsernameClaim: String, groupsClaim: String, tokenUseClaim: String? = "token_use") {
        self.issuer = issuer
        self.keys = keys
        self.clientID = clientID
        self.algorithms = algorithms
        self.idUsernameClaim = idUsernameClaim
        self.accessUsernameClaim = accessUsernameClaim
        self.groupsClaim = groupsClaim
        self.tokenUseClaim = tokenUseClaim
    }
}

/// Who a verified token speaks for.
public struct PoolIdentity: Sendable, CustomStringConvertible {
    /// `sub`.
    public var subject: String
    /// The username, from the claim the policy names.
    public var username: String?
    /// The groups the token lists.
    public var groups: [String]
    /// Which token it was.
    public var use: PoolTokenUse
    /// All claims.
    public var claims: JWTClaims

    public var description: String { "PoolIdentity(\(use.rawValue), sub: \(subject), username: \(username ?? "-"), groups: \(groups))" }
}

/// What a pool can do beyond signing users in.
public struct UserPoolCapabilities: OptionSet, Sendable, Hashable {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// Users sign themselves up (``UserPool/signUp(_:password:attributes:)``).
    public static let selfSignUp = UserPoolCapabilities(rawValue: 1)
    /// Groups.
    public static let groups = UserPoolCapabilities(rawValue: 2)
    /// ``UserPool/signOut(everywhere:)`` revokes the refresh tokens of every session.
    public static let globalSignOut = UserPoolCapabilities(rawValue: 4)
    /// Administrators create users with temporary passwords.
    public static let adminCreate = UserPoolCapabilities(rawValue: 8)
    /// Everything.
    public static let all: UserPoolCapabilities = [.selfSignUp, .groups, .globalSignOut, .adminCreate]
}

/// What a user pool implements (Cognito, the embedded pool, …). ``UserPool`` adds name checks,
/// password policy, token verification, retries and metrics on top.
///
/// Errors: `unauthenticated` for a wrong password, an unknown user at sign-in (the same message:
/// no user enumeration), a disabled user, a bad or expired code or refresh token; `notFound`
/// for an unknown user in an administrator call; `alreadyExists`; `failedPrecondition` for an
/// unconfirmed user; `invalidArgument` for a password the policy refuses; `resourceExhausted`
/// when the pool locks the account after failed attempts.
public protocol UserPoolDriver: NimbusDriver {
    /// What the pool supports; other calls throw `unimplemented`.
    var capabilities: UserPoolCapabilities { get }
    /// How its tokens are verified.
    var tokenPolicy: PoolTokenPolicy { get }

    /// Creates an unconfirmed user; the pool sends the confirmation code.
    func signUp(username: String, password: Secret<String>, attributes: [String: String]) async throws -> PoolUser
    /// Confirms a sign-up with the code the user received.
    func confirmSignUp(username: String, code: String) async throws
    /// Signs in with a password.
    func signIn(username: String, password: Secret<String>) async throws -> SignInResult
    /// Answers a `NEW_PASSWORD_REQUIRED` challenge.
    func completeNewPassword(_ challenge: PoolChallenge, newPassword: Secret<String>) async throws -> SignInResult
    /// New ID and access tokens for a refresh token (`username` is needed by pools with client secrets).
    func refresh(_ refreshToken: Secret<String>, username: String) async throws -> PoolTokens
    /// Revokes every refresh token of the access token's user.
    func signOut(everywhere accessToken: Secret<String>) async throws

    /// Creates a user as an administrator; with a temporary password the first sign-in must change it.
    func createUser(username: String, attributes: [String: String], temporaryPassword: Secret<String>?) async throws -> PoolUser
    /// A user by name.
    func user(_ username: String) async throws -> PoolUser
    /// Confirms a user without a code.
    func confirm(_ username: String) async throws
    /// Sets a user's password; `permanent: false` makes it temporary.
    func setPassword(_ username: String, password: Secret<String>, permanent: Bool) async throws
    /// Enables or disables a user; disabling revokes their refresh tokens.
    func setEnabled(_ username: String, _ enabled: Bool) async throws
    /// Deletes a user.
    func deleteUser(_ username: String) async throws

    /// Creates a group.
    func createGroup(_ name: String) async throws
    /// Deletes a group.
    func deleteGroup(_ name: String) async throws
    /// Adds a user to a group.
    func addUser(_ username: String, toGroup group: String) async throws
    /// Removes a user from a group.
    func removeUser(_ username: String, fromGroup group: String) async throws
    /// The groups of a user, sorted.
    func groups(of username: String) async throws -> [String]
}
