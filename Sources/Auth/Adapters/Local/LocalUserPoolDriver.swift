import Crypto
import CryptoExtras
import Foundation
import NimbusAuth
import NimbusCore

/// The password rules of the embedded pool (Cognito's defaults: 8 characters with a lowercase
/// letter, an uppercase letter, a digit and a symbol).
public struct PasswordPolicy: Sendable, Hashable {
    /// The shortest password accepted.
    public var minimumLength: Int
    /// Needs `a–z`.
    public var requireLowercase: Bool
    /// Needs `A–Z`.
    public var requireUppercase: Bool
    /// Needs `0–9`.
    public var requireDigits: Bool
    /// Needs one of Cognito's symbols (`^ $ * . [ ] { } ( ) ? " ! @ # % & / \ , > < ' : ; | _ ~ \` = + -` or a space).
    public var requireSymbols: Bool

    /// Creates a policy (Cognito's default).
    public init(minimumLength: Int = 8, requireLowercase: Bool = true, requireUppercase: Bool = true, requireDigits: Bool = true, requireSymbols: Bool = true) {
        self.minimumLength = minimumLength
        self.requireLowercase = requireLowercase
        self.requireUppercase = requireUppercase
        self.requireDigits = requireDigits
        self.requireSymbols = requireSymbols
    }

    static let symbols = Set("^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ")

    /// Checks `password`.
    /// - Throws: `invalidArgument` listing every rule it breaks.
    public func check(_ password: Secret<String>) throws {
        let text = password.reveal()
        var broken: [String] = []
        if text.count < minimumLength { broken.append("at least \(minimumLength) characters") }
        if requireLowercase, !text.contains(where: { ("a"..."z").contains($0) }) { broken.append("a lowercase letter") }
        if requireUppercase, !text.contains(where: { ("A"..."Z").contains($0) }) { broken.append("an uppercase letter") }
        if requireDigits, !text.contains(where: { ("0"..."9").contains($0) }) { broken.append("a digit") }
        if requireSymbols, !text.contains(where: Self.symbols.contains) { broken.append("a symbol") }
        guard broken.isEmpty else { throw NimbusError(.invalidArgument, "the password does not meet the policy: it needs \(broken.joined(separator: ", "))") }
    }
}

/// The embedded user pool (`mem://`): users with scrypt-hashed passwords, confirmation codes,
/// temporary passwords, lockout after failed attempts, groups, and ES256 tokens laid out like
/// Cognito's (`token_use`, `aud` / `client_id`, `cognito:groups`-style group claim as `groups`).
/// Refresh tokens are random, stored as SHA-256 digests, and revoked by global sign-out,
/// disabling or deleting the user. Nothing survives the process.
///
/// ```swift
/// let driver = try await LocalUserPoolDriver(configuration: .init(clientID: "web")) { user, code in
///     try await email.send(to: user.attributes["email"]!, text: "Your code is \(code.reveal())")
/// }
/// let pool = UserPool(driver: driver)
/// ```
public actor LocalUserPoolDriver: UserPoolDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The app client tokens are issued to.
        public var clientID: String
        /// The `iss` of its tokens.
        public var issuer: String
        /// The password rules.
        public var passwordPolicy: PasswordPolicy
        /// How long ID and access tokens live (Cognito's default: one hour).
        public var tokenLifetime: Duration
        /// How long refresh tokens live (Cognito's default: 30 days).
        public var refreshTokenLifetime: Duration
        /// How long a confirmation code or a temporary password sign-in session is good for.
        public var codeLifetime: Duration
        /// Wrong codes accepted before the code is burnt.
        public var maximumCodeAttempts: Int
        /// Consecutive wrong passwords before the account locks.
        public var maximumFailedSignIns: Int
        /// How long the first lockout lasts; each further failure doubles it, up to 15 minutes (Cognito's rule).
        public var lockout: Duration
        /// scrypt's cost (N = 2^costExponent, r = 8, p = 1).
        public var scryptCostExponent: Int

        /// Creates settings.
        public init(clientID: String = "nimbus-local", issuer: String = "urn:nimbus:userpool:local", passwordPolicy: PasswordPolicy = .init(),
                    tokenLifetime: Duration = .seconds(3600), refreshTokenLifetime: Duration = .seconds(30 * 86_400), codeLifetime: Duration = .seconds(86_400),
                    maximumCodeAttempts: Int = 5, maximumFailedSignIns: Int = 5, lockout: Duration = .seconds(1), scryptCostExponent: Int = 14) {
            self.clientID = clientID
            self.issuer = issuer
            self.passwordPolicy = passwordPolicy
            self.tokenLifetime = tokenLifetime
            self.refreshTokenLifetime = refreshTokenLifetime
            self.codeLifetime = codeLifetime
            self.maximumCodeAttempts = maximumCodeAttempts
            self.maximumFailedSignIns = maximumFailedSignIns
            self.lockout = lockout
            self.scryptCostExponent = scryptCostExponent
        }
    }

    /// Sends a confirmation code to a user (by email or SMS through NimbusNotify, say).
    public typealias CodeDelivery = @Sendable (_ user: PoolUser, _ code: Secret<String>) async throws -> Void

    struct Record {
        var user: PoolUser
        var passwordHash: String?
        var code: (digest: [UInt8], expires: Date, attempts: Int)?
        var failedSignIns = 0
        var lockedUntil: Date?
        var groups: Set<String> = []
    }

    struct RefreshRecord {
        var username: String
        var expires: Date
    }

    /// The settings.
    public nonisolated let configuration: Configuration
    /// The signing keys (one ES256 key, generated at start).
    public nonisolated let keys: JWTKeySet
    private let deliver: CodeDelivery
    private let now: @Sendable () -> Date
    private var users: [String: Record] = [:]
    private var refreshTokens: [[UInt8]: RefreshRecord] = [:]
    private var sessions: [[UInt8]: (username: String, expires: Date)] = [:]
    private var groupNames: Set<String> = []
    /// A hash of a password nobody has, so that an unknown username costs the same scrypt run.
    private var decoyHash: String?

    /// Creates an empty pool with a fresh ES256 key; `deliver` receives every confirmation code.
    public init(configuration: Configuration = .init(), now: @escaping @Sendable () -> Date = { Date() },
                deliver: @escaping CodeDelivery = { _, _ in }) async throws {
        self.configuration = configuration
        self.now = now
        self.deliver = deliver
        let key = P256.Signing.PrivateKey()
        keys = try await JWTKeySet.pem(key.pemRepresentation, id: "local-" + Base64URL.encode(Array(SHA256.hash(data: key.publicKey.rawRepresentation)).prefix(6)),
                                       algorithms: [.es256])
    }

    public nonisolated var provider: String { "memory" }
    public nonisolated var capabilities: UserPoolCapabilities { .all }
    public nonisolated var tokenPolicy: PoolTokenPolicy {
        PoolTokenPolicy(issuer: configuration.issuer, keys: keys, clientID: configuration.clientID, algorithms: [.es256],
                        idUsernameClaim: "username", accessUsernameClaim: "username", groupsClaim: "groups")
    }

    // MARK: - Passwords

    func hash(_ password: Secret<String>) throws -> String {
        let salt = SecureRandom.bytes(16)
        let derived = try derive(password, salt: salt, exponent: configuration.scryptCostExponent)
        return "scrypt$\(configuration.scryptCostExponent)$\(Base64URL.encode(salt))$\(Base64URL.encode(derived))"
    }

    func derive(_ password: Secret<String>, salt: [UInt8], exponent: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(from: Array(password.reveal().utf8), salt: salt, outputByteCount: 32, rounds: 1 << exponent, blockSize: 8, parallelism: 1)
        return key.withUnsafeBytes { Array($0) }
    }

    func matches(_ password: Secret<String>, _ stored: String) throws -> Bool {
        let parts = stored.split(separator: "$")
        guard parts.count == 4, parts[0] == "scrypt", let exponent = Int(parts[1]), (10...20).contains(exponent),
              let salt = Base64URL.decode(parts[2]), let expected = Base64URL.decode(parts[3]) else {
            throw NimbusError(.internal, "a stored password hash is not in the scrypt$N$salt$hash format")
        }
        return ConstantTime.equals(try derive(password, salt: salt, exponent: exponent), expected)
    }

    private func record(_ username: String) throws -> Record {
        guard let record = users[username] else { throw NimbusError(.notFound, "no user named \(username) in the pool") }
        return record
    }

    private static func digest(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }

    private func randomToken() -> String { Base64URL.encode(SecureRandom.bytes(32)) }

    // MARK: - Sign-up

    public func signUp(username: String, password: Secret<String>, attributes: [String: String]) async throws -> PoolUser {
        guard users[username] == nil else { throw NimbusError(.alreadyExists, "a user named \(username) already exists") }
        try configuration.passwordPolicy.check(password)
        let user = PoolUser(username: username, subject: UUID().uuidString.lowercased(), status: .unconfirmed, attributes: attributes, createdAt: now())
        var record = Record(user: user, passwordHash: try hash(password))
        let code = SecureRandom.digits(6)
        record.code = (Self.digest(code), now().addingTimeInterval(configuration.codeLifetime.nimbusSeconds), 0)
        users[username] = record
        try await deliver(user, Secret(code))
        return user
    }

    public func confirmSignUp(username: String, code: String) async throws {
        guard var record = users[username], record.user.status == .unconfirmed, let pending = record.code else {
            throw NimbusError(.unauthenticated, "the confirmation code is not valid")
        }
        guard pending.expires > now(), pending.attempts < configuration.maximumCodeAttempts else {
            record.code = nil
            users[username] = record
            throw NimbusError(.unauthenticated, "the confirmation code has expired or was tried too often; ask for a new one")
        }
        guard ConstantTime.equals(Self.digest(code), pending.digest) else {
            record.code?.attempts += 1
            users[username] = record
            throw NimbusError(.unauthenticated, "the confirmation code is not valid")
        }
        record.code = nil
        record.user.status = .confirmed
        users[username] = record
    }

    /// Sends a new confirmation code to an unconfirmed user.
    public func resendConfirmationCode(_ username: String) async throws {
        var record = try record(username)
        guard record.user.status == .unconfirmed else { throw NimbusError(.failedPrecondition, "user \(username) is already confirmed") }
        let code = SecureRandom.digits(6)
        record.code = (Self.digest(code), now().addingTimeInterval(configuration.codeLifetime.nimbusSeconds), 0)
        users[username] = record
        try await deliver(record.user, Secret(code))
    }

    // MARK: - Sign-in

    public func signIn(username: String, password: Secret<String>) async throws -> SignInResult {
        let refused = NimbusError(.unauthenticated, "incorrect username or password")
        guard var record = users[username], let stored = record.passwordHash else {
            if decoyHash == nil { decoyHash = try hash(Secret(randomToken())) }
            _ = try matches(password, decoyHash!)
            throw refused
        }
        if let until = record.lockedUntil, until > now() {
            throw NimbusError(.resourceExhausted, "too many failed sign-ins for \(username); try again after \(Int(until.timeIntervalSince(now()).rounded(.up))) s")
        }
        guard try matches(password, stored) else {
            record.failedSignIns += 1
            let beyond = record.failedSignIns - configuration.maximumFailedSignIns
            if beyond >= 0 {
                record.lockedUntil = now().addingTimeInterval(min(configuration.lockout.nimbusSeconds * pow(2, Double(min(beyond, 20))), 900))
            }
            users[username] = record
            throw refused
        }
        guard record.user.isEnabled else { throw NimbusError(.unauthenticated, "user \(username) is disabled") }
        guard record.user.status != .unconfirmed else { throw NimbusError(.failedPrecondition, "user \(username) is not confirmed yet") }
        record.failedSignIns = 0
        users[username] = record
        if record.user.status == .forceChangePassword || record.user.status == .resetRequired {
            let session = randomToken()
            sessions[Self.digest(session)] = (username, now().addingTimeInterval(min(configuration.codeLifetime.nimbusSeconds, 180)))
            return .newPasswordRequired(PoolChallenge(name: "NEW_PASSWORD_REQUIRED", username: username, session: Secret(session)))
        }
        return .signedIn(try issue(record, refresh: true))
    }

    public func completeNewPassword(_ challenge: PoolChallenge, newPassword: Secret<String>) async throws -> SignInResult {
        let key = Self.digest(challenge.session.reveal())
        guard let session = sessions[key], session.username == challenge.username, session.expires > now() else {
            throw NimbusError(.unauthenticated, "the sign-in session is not valid or has expired; sign in again")
        }
        try configuration.passwordPolicy.check(newPassword)
        sessions[key] = nil
        var record = try record(challenge.username)
        record.passwordHash = try hash(newPassword)
        record.user.status = .confirmed
        users[challenge.username] = record
        return .signedIn(try issue(record, refresh: true))
    }

    private func issue(_ record: Record, refresh: Bool) throws -> PoolTokens {
        let issuedAt = now()
        var base: [String: JSONValue] = ["iss": .string(configuration.issuer), "sub": .string(record.user.subject), "username": .string(record.user.username),
                                         "auth_time": .number(issuedAt.timeIntervalSince1970.rounded(.down))]
        if !record.groups.isEmpty { base["groups"] = .array(record.groups.sorted().map(JSONValue.string)) }
        var id = base
        id["aud"] = .string(configuration.clientID)
        id["token_use"] = "id"
        for (name, value) in record.user.attributes where id[name] == nil { id[name] = .string(value) }
        var access = base
        access["client_id"] = .string(configuration.clientID)
        access["token_use"] = "access"
        access["jti"] = .string(UUID().uuidString.lowercased())
        let idToken = try keys.sign(JWTClaims(id), expiresIn: configuration.tokenLifetime, now: issuedAt)
        let accessToken = try keys.sign(JWTClaims(access), expiresIn: configuration.tokenLifetime, now: issuedAt)
        var refreshToken: Secret<String>?
        if refresh {
            let token = randomToken()
            refreshTokens[Self.digest(token)] = RefreshRecord(username: record.user.username,
                                                              expires: issuedAt.addingTimeInterval(configuration.refreshTokenLifetime.nimbusSeconds))
            refreshToken = Secret(token)
        }
        return PoolTokens(idToken: Secret(idToken), accessToken: Secret(accessToken), refreshToken: refreshToken, expiresIn: configuration.tokenLifetime)
    }

    public func refresh(_ refreshToken: Secret<String>, username: String) async throws -> PoolTokens {
        guard let stored = refreshTokens[Self.digest(refreshToken.reveal())], stored.expires > now(), let record = users[stored.username] else {
            throw NimbusError(.unauthenticated, "the refresh token is not valid, has expired or was revoked; sign in again")
        }
        guard record.user.isEnabled else { throw NimbusError(.unauthenticated, "user \(stored.username) is disabled") }
        return try issue(record, refresh: false)
    }

    public func signOut(everywhere accessToken: Secret<String>) async throws {
        let identity = try await UserPool(driver: self, now: now).verify(accessToken.reveal(), use: .access)
        guard let username = identity.username else { throw NimbusError(.unauthenticated, "the access token names no user") }
        revokeRefreshTokens(of: username)
    }

    private func revokeRefreshTokens(of username: String) {
        refreshTokens = refreshTokens.filter { $0.value.username != username }
    }

    // MARK: - Administration

    public func createUser(username: String, attributes: [String: String], temporaryPassword: Secret<String>?) async throws -> PoolUser {
        guard users[username] == nil else { throw NimbusError(.alreadyExists, "a user named \(username) already exists") }
        if let temporaryPassword { try configuration.passwordPolicy.check(temporaryPassword) }
        let user = PoolUser(username: username, subject: UUID().uuidString.lowercased(), status: .forceChangePassword, attributes: attributes, createdAt: now())
        users[username] = Record(user: user, passwordHash: try temporaryPassword.map(hash))
        return user
    }

    public func user(_ username: String) async throws -> PoolUser { try record(username).user }

    public func confirm(_ username: String) async throws {
        var record = try record(username)
        guard record.user.status == .unconfirmed else { return }
        record.user.status = .confirmed
        record.code = nil
        users[username] = record
    }

    public func setPassword(_ username: String, password: Secret<String>, permanent: Bool) async throws {
        var record = try record(username)
        try configuration.passwordPolicy.check(password)
        record.passwordHash = try hash(password)
        record.user.status = permanent ? .confirmed : .forceChangePassword
        record.failedSignIns = 0
        record.lockedUntil = nil
        users[username] = record
    }

    public func setEnabled(_ username: String, _ enabled: Bool) async throws {
        var record = try record(username)
        record.user.isEnabled = enabled
        users[username] = record
        if !enabled { revokeRefreshTokens(of: username) }
    }

    public func deleteUser(_ username: String) async throws {
        _ = try record(username)
        users[username] = nil
        revokeRefreshTokens(of: username)
    }

    public func createGroup(_ name: String) async throws {
        guard groupNames.insert(name).inserted else { throw NimbusError(.alreadyExists, "a group named \(name) already exists") }
    }

    public func deleteGroup(_ name: String) async throws {
        guard groupNames.remove(name) != nil else { throw NimbusError(.notFound, "no group named \(name)") }
        for username in users.keys { users[username]?.groups.remove(name) }
    }

    public func addUser(_ username: String, toGroup group: String) async throws {
        guard groupNames.contains(group) else { throw NimbusError(.notFound, "no group named \(group)") }
        var record = try record(username)
        record.groups.insert(group)
        users[username] = record
    }

    public func removeUser(_ username: String, fromGroup group: String) async throws {
        guard groupNames.contains(group) else { throw NimbusError(.notFound, "no group named \(group)") }
        var record = try record(username)
        record.groups.remove(group)
        users[username] = record
    }

    public func groups(of username: String) async throws -> [String] { try record(username).groups.sorted() }
}

extension URLOpenerRegistry where Resource == any UserPoolDriver {
    /// Adds `mem://` (options `client_id`, `issuer`, `token_ttl`, `min_length`; codes are dropped —
    /// construct ``LocalUserPoolDriver`` yourself to deliver them).
    public func withLocal() -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: ["client_id", "issuer", "token_ttl", "min_length"], for: "mem://")
            var configuration = LocalUserPoolDriver.Configuration()
            if let client = url.options.string("client_id") { configuration.clientID = client }
            if let issuer = url.options.string("issuer") { configuration.issuer = issuer }
            if let ttl = try url.options.duration("token_ttl") { configuration.tokenLifetime = ttl }
            if let length = try url.options.int("min_length") { configuration.passwordPolicy.minimumLength = length }
            return try await LocalUserPoolDriver(configuration: configuration)
        }
        return copy
    }
}
