import Foundation
import NIOCore
import NIOHTTP1
import NimbusAuth
import NimbusCore
import NimbusGCP
import NimbusHTTP

/// Google Cloud Identity Platform (Firebase Authentication) as a user pool
/// (`gcpidentity://PROJECT?api_key=…`), through the Identity Toolkit v1 REST API:
///
/// - end-user calls (`accounts:signUp`, `accounts:signInWithPassword`, `accounts:update` with an
///   `oobCode`, `accounts:sendOobCode`) carry the web API key in the `X-Goog-Api-Key` header, never
///   in the URL where it could be logged; administrator calls (`projects/{p}/accounts…`) use the
///   service account's OAuth token through ``GCPClient``;
/// - refresh is Secure Token's `grant_type=refresh_token`; global sign-out sets `validSince`, which
///   revokes every refresh token issued before it;
/// - usernames are email addresses. A sign-up gets a `VERIFY_EMAIL` code; with
///   ``Configuration/requireVerifiedEmail`` (the default) an unverified user is refused tokens, the
///   way ``UserPool`` callers expect of an unconfirmed user;
/// - Identity Platform has no temporary passwords: ``createUser(username:attributes:temporaryPassword:)``
///   marks the account with the custom claim `nimbus_force_change`, and sign-in answers
///   `NEW_PASSWORD_REQUIRED` until the user sets a password; it has no groups either, so the pool
///   does not claim ``UserPoolCapabilities/groups``;
/// - tokens are the ID tokens Google signs (`iss` `https://securetoken.google.com/PROJECT`, `aud`
///   PROJECT), verified against Google's published X.509 certificates.
///
/// ```swift
/// let pool = try await UserPool.open("gcpidentity://my-project?api_key=AIza…", openers: .userPools.withGCPIdentity())
/// ```
public struct GCPIdentityPlatform: UserPoolDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The project id (the tokens' audience).
        public var project: String
        /// The web API key of the project.
        public var apiKey: Secret<String>
        /// Refuse tokens to users whose email is not verified.
        public var requireVerifiedEmail: Bool
        /// Identity Toolkit's root.
        public var endpoint: String
        /// Secure Token's root.
        public var secureTokenEndpoint: String
        /// Where Google publishes the certificates of its ID-token keys.
        public var certificatesURL: String

        /// Creates settings.
        public init(project: String, apiKey: Secret<String>, requireVerifiedEmail: Bool = true, endpoint: String = "https://identitytoolkit.googleapis.com",
                    secureTokenEndpoint: String = "https://securetoken.googleapis.com",
                    certificatesURL: String = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com") {
            self.project = project
            self.apiKey = apiKey
            self.requireVerifiedEmail = requireVerifiedEmail
            self.endpoint = endpoint.trimmingSuffix("/")
            self.secureTokenEndpoint = secureTokenEndpoint.trimmingSuffix("/")
            self.certificatesURL = certificatesURL
        }
    }

    /// The settings.
    public let configuration: Configuration
    /// The administrator client (service account or ADC).
    public let gcp: GCPClient
    /// Google's ID-token keys, from their X.509 certificates.
    public let certificates: RemoteJWKS
    let http: NimbusHTTPClient
    static let forceChangeClaim = "nimbus_force_change"

    /// A pool of `configuration.project`; `gcp` makes the administrator calls.
    public init(configuration: Configuration, gcp: GCPClient, certificates: RemoteJWKS? = nil) {
        self.configuration = configuration
        self.gcp = gcp
        self.certificates = certificates ?? RemoteJWKS(url: configuration.certificatesURL, configuration: .init(format: .x509Certificates(algorithm: .rs256)))
        http = NimbusHTTPClient(configuration: .init(service: "identitytoolkit", auth: .header("X-Goog-Api-Key", configuration.apiKey), retry: .none, timeout: .seconds(30)))
    }

    public var provider: String { "gcp-identity-platform" }
    public var capabilities: UserPoolCapabilities { [.selfSignUp, .globalSignOut, .adminCreate] }
    public var tokenPolicy: PoolTokenPolicy {
        PoolTokenPolicy(issuer: "https://securetoken.google.com/\(configuration.project)", keys: certificates, clientID: configuration.project, algorithms: [.rs256],
                        idUsernameClaim: "email", accessUsernameClaim: "email", groupsClaim: "groups", tokenUseClaim: nil)
    }

    // MARK: - Calls

    /// Identity Toolkit's error messages (`EMAIL_NOT_FOUND`, `INVALID_PASSWORD : …`), read as portable codes.
    static func refusal(_ message: String, status: Int, retryAfter: Duration?, operation: String) -> NimbusError {
        let reason = message.split(separator: " ").first.map(String.init) ?? message
        let code: NimbusError.Code = switch reason {
        case "EMAIL_NOT_FOUND", "INVALID_PASSWORD", "INVALID_LOGIN_CREDENTIALS", "USER_DISABLED", "INVALID_ID_TOKEN", "TOKEN_EXPIRED", "USER_NOT_FOUND",
             "INVALID_REFRESH_TOKEN", "INVALID_OOB_CODE", "EXPIRED_OOB_CODE", "CREDENTIAL_TOO_OLD_LOGIN_AGAIN": .unauthenticated
        case "EMAIL_EXISTS", "DUPLICATE_EMAIL", "DUPLICATE_LOCAL_ID": .alreadyExists
        case "TOO_MANY_ATTEMPTS_TRY_LATER", "QUOTA_EXCEEDED": .resourceExhausted
        case "WEAK_PASSWORD", "INVALID_EMAIL", "MISSING_PASSWORD", "INVALID_CUSTOM_TOKEN", "MISSING_EMAIL": .invalidArgument
        case "OPERATION_NOT_ALLOWED", "PASSWORD_LOGIN_DISABLED", "ADMIN_ONLY_OPERATION": .permissionDenied
        default: status >= 500 ? .unavailable : HTTPStatusMapping.code(for: HTTPResponseStatus(statusCode: status))
        }
        return NimbusError(code, "Identity Platform \(operation): \(message.prefix(200))", retryAfter: retryAfter)
    }

    /// An end-user call with the API key.
    func publicCall(_ method: String, _ body: JSONValue) async throws -> JSONValue {
        var request = NimbusHTTPRequest(.POST, "\(configuration.endpoint)/v1/accounts:\(method)", operation: "identitytoolkit \(method)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = ByteBuffer(string: body.description)
        return try await send(request, operation: method)
    }

    func send(_ request: NimbusHTTPRequest, operation: String) async throws -> JSONValue {
        let response = try await http.send(request)
        let bytes = Array(try await response.collect(upTo: 1024 * 1024).readableBytesView)
        let json = try? JSONValue.parse(bytes)
        guard response.isSuccess else {
            let message = json?["error"]?["message"]?.stringValue ?? String(decoding: bytes.prefix(200), as: UTF8.self)
            throw Self.refusal(message, status: Int(response.status.code), retryAfter: response.retryAfter(), operation: operation)
        }
        guard let json else { throw NimbusError(.internal, "Identity Platform \(operation) answered a body that is not JSON") }
        return json
    }

    /// An administrator call on `projects/{project}/accounts…`.
    func admin(_ suffix: String, _ body: JSONValue) async throws -> JSONValue {
        do {
            return try await gcp.json(.POST, "\(configuration.endpoint)/v1/projects/\(configuration.project)/accounts\(suffix)", body: body,
                                      operation: "identitytoolkit admin\(suffix)")
        } catch let error as NimbusError {
            // Identity Toolkit names its errors in the message (`EMAIL_EXISTS`, `USER_NOT_FOUND : …`).
            guard let detail = error.underlying as? GCPError, let reason = detail.message.split(separator: " ").first,
                  reason.allSatisfy({ $0.isUppercase || $0 == "_" }) else { throw error }
            throw Self.refusal(detail.message, status: detail.code, retryAfter: error.retryAfter, operation: "admin\(suffix)")
        }
    }

    /// The account of `username` (an email), as the administrator API returns it.
    func account(_ username: String) async throws -> JSONValue {
        let answer = try await admin(":lookup", ["email": [.string(username)]])
        guard let account = answer["users"]?.arrayValue?.first else { throw NimbusError(.notFound, "no user with the email \(username)") }
        return account
    }

    static func claims(_ account: JSONValue) -> [String: JSONValue] {
        account["customAttributes"]?.stringValue.flatMap { try? JSONValue.parse(Array($0.utf8)) }?.objectValue ?? [:]
    }

    static func user(_ account: JSONValue) -> PoolUser {
        let status: PoolUser.Status = claims(account)[forceChangeClaim]?.boolValue == true ? .forceChangePassword
            : account["emailVerified"]?.boolValue == true ? .confirmed : .unconfirmed
        var attributes: [String: String] = [:]
        if let email = account["email"]?.stringValue { attributes["email"] = email }
        if let name = account["displayName"]?.stringValue { attributes["name"] = name }
        let created = account["createdAt"]?.stringValue.flatMap(Double.init).map { Date(timeIntervalSince1970: $0 / 1000) }
        return PoolUser(username: account["email"]?.stringValue ?? "", subject: account["localId"]?.stringValue ?? "", status: status,
                        isEnabled: account["disabled"]?.boolValue != true, attributes: attributes, createdAt: created)
    }

    static func payload(_ token: String) -> [String: JSONValue] {
        let parts = token.split(separator: ".")
        guard parts.count == 3, let bytes = Base64URL.decode(parts[1]) else { return [:] }
        return (try? JSONValue.parse(bytes))?.objectValue ?? [:]
    }

    static func tokens(_ answer: JSONValue, idField: String = "idToken", refreshField: String = "refreshToken", expiresField: String = "expiresIn") throws -> PoolTokens {
        guard let id = answer[idField]?.stringValue else { throw NimbusError(.internal, "Identity Platform answered without \(idField)") }
        let lifetime = answer[expiresField]?.stringValue.flatMap(Double.init) ?? answer[expiresField]?.numberValue ?? 3600
        return PoolTokens(idToken: Secret(id), accessToken: Secret(id), refreshToken: answer[refreshField]?.stringValue.map(Secret.init), expiresIn: .seconds(lifetime))
    }

    // MARK: - Sign-up and sign-in

    public func signUp(username: String, password: Secret<String>, attributes: [String: String]) async throws -> PoolUser {
        var body: [String: JSONValue] = ["email": .string(username), "password": .string(password.reveal())]   // v1 signUp always answers tokens
        if let name = attributes["name"] { body["displayName"] = .string(name) }
        let answer = try await publicCall("signUp", .object(body))
        guard let idToken = answer["idToken"]?.stringValue, let uid = answer["localId"]?.stringValue else {
            throw NimbusError(.internal, "Identity Platform answered signUp without idToken or localId")
        }
        _ = try await publicCall("sendOobCode", ["requestType": "VERIFY_EMAIL", "idToken": .string(idToken)])
        return PoolUser(username: username, subject: uid, status: .unconfirmed, attributes: attributes.merging(["email": username]) { $1 }, createdAt: Date())
    }

    public func confirmSignUp(username: String, code: String) async throws {
        let answer = try await publicCall("update", ["oobCode": .string(code)])
        guard answer["email"]?.stringValue?.lowercased() == username.lowercased() else {
            throw NimbusError(.unauthenticated, "the confirmation code is for another account")
        }
    }

    public func signIn(username: String, password: Secret<String>) async throws -> SignInResult {
        let answer: JSONValue
        do {
            answer = try await publicCall("signInWithPassword", ["email": .string(username), "password": .string(password.reveal()), "returnSecureToken": true])
        } catch let error as NimbusError where error.code == .unauthenticated && !error.message.contains("USER_DISABLED") {
            throw NimbusError(.unauthenticated, "incorrect username or password", underlying: error)
        }
        let tokens = try Self.tokens(answer)
        let claims = Self.payload(tokens.idToken.reveal())
        if claims[Self.forceChangeClaim]?.boolValue == true {
            return .newPasswordRequired(PoolChallenge(name: "NEW_PASSWORD_REQUIRED", username: username, session: tokens.idToken))
        }
        if configuration.requireVerifiedEmail, claims["email_verified"]?.boolValue != true {
            throw NimbusError(.failedPrecondition, "user \(username) has not verified their email yet")
        }
        return .signedIn(tokens)
    }

    public func completeNewPassword(_ challenge: PoolChallenge, newPassword: Secret<String>) async throws -> SignInResult {
        let changed = try await publicCall("update", ["idToken": .string(challenge.session.reveal()), "password": .string(newPassword.reveal()), "returnSecureToken": true])
        guard let uid = changed["localId"]?.stringValue else { throw NimbusError(.internal, "Identity Platform answered a password change without localId") }
        let account = try await admin(":lookup", ["localId": [.string(uid)]])["users"]?.arrayValue?.first ?? [:]
        var claims = Self.claims(account)
        claims[Self.forceChangeClaim] = nil
        _ = try await admin(":update", ["localId": .string(uid), "customAttributes": .string(JSONValue.object(claims).description), "emailVerified": true])
        return try await signIn(username: challenge.username, password: newPassword)
    }

    public func refresh(_ refreshToken: Secret<String>, username: String) async throws -> PoolTokens {
        var request = NimbusHTTPRequest(.POST, "\(configuration.secureTokenEndpoint)/v1/token", operation: "securetoken refresh")
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = ByteBuffer(string: "grant_type=refresh_token&refresh_token=\(FormEncoder.escape(refreshToken.reveal()))")
        let answer = try await send(request, operation: "token refresh")
        return try Self.tokens(answer, idField: "id_token", refreshField: "refresh_token", expiresField: "expires_in")
    }

    public func signOut(everywhere accessToken: Secret<String>) async throws {
        let identity = try await UserPool(driver: self).verify(accessToken.reveal(), use: .access)
        // validSince is in seconds; a refresh token issued in this very second stays valid, so the next second counts.
        _ = try await admin(":update", ["localId": .string(identity.subject), "validSince": .string(String(Int(Date().timeIntervalSince1970) + 1))])
    }

    // MARK: - Administration

    public func createUser(username: String, attributes: [String: String], temporaryPassword: Secret<String>?) async throws -> PoolUser {
        var body: [String: JSONValue] = ["email": .string(username), "emailVerified": true]
        if let temporaryPassword { body["password"] = .string(temporaryPassword.reveal()) }
        if let name = attributes["name"] { body["displayName"] = .string(name) }
        let created = try await admin("", .object(body))
        guard let uid = created["localId"]?.stringValue else { throw NimbusError(.internal, "Identity Platform created a user without localId") }
        _ = try await admin(":update", ["localId": .string(uid), "customAttributes": .string(JSONValue.object([Self.forceChangeClaim: true]).description)])
        return PoolUser(username: username, subject: uid, status: .forceChangePassword, attributes: attributes.merging(["email": username]) { $1 }, createdAt: Date())
    }

    public func user(_ username: String) async throws -> PoolUser { Self.user(try await account(username)) }

    public func confirm(_ username: String) async throws {
        let account = try await account(username)
        _ = try await admin(":update", ["localId": account["localId"] ?? "", "emailVerified": true])
    }

    public func setPassword(_ username: String, password: Secret<String>, permanent: Bool) async throws {
        let account = try await account(username)
        var claims = Self.claims(account)
        claims[Self.forceChangeClaim] = permanent ? nil : .bool(true)
        _ = try await admin(":update", ["localId": account["localId"] ?? "", "password": .string(password.reveal()),
                                        "customAttributes": .string(JSONValue.object(claims).description)])
    }

    public func setEnabled(_ username: String, _ enabled: Bool) async throws {
        let account = try await account(username)
        _ = try await admin(":update", ["localId": account["localId"] ?? "", "disableUser": .bool(!enabled)])
    }

    public func deleteUser(_ username: String) async throws {
        let account = try await account(username)
        _ = try await admin(":delete", ["localId": account["localId"] ?? ""])
    }

    public func createGroup(_ name: String) async throws { throw NimbusError(.unimplemented, "Identity Platform has no groups") }
    public func deleteGroup(_ name: String) async throws { throw NimbusError(.unimplemented, "Identity Platform has no groups") }
    public func addUser(_ username: String, toGroup group: String) async throws { throw NimbusError(.unimplemented, "Identity Platform has no groups") }
    public func removeUser(_ username: String, fromGroup group: String) async throws { throw NimbusError(.unimplemented, "Identity Platform has no groups") }
    public func groups(of username: String) async throws -> [String] { throw NimbusError(.unimplemented, "Identity Platform has no groups") }
}

extension URLOpenerRegistry where Resource == any UserPoolDriver {
    /// Adds `gcpidentity://PROJECT?api_key=KEY[&verified_email=false]` (administrator calls with
    /// Application Default Credentials).
    public func withGCPIdentity() -> Self {
        var copy = self
        copy.register("gcpidentity") { url in
            try url.options.validate(known: ["api_key", "verified_email"], for: "gcpidentity://")
            guard let project = url.host, !project.isEmpty else { throw NimbusError(.invalidArgument, "gcpidentity:// needs the project id as its host") }
            guard let key = url.options.string("api_key"), !key.isEmpty else { throw NimbusError(.invalidArgument, "gcpidentity:// needs the project's web api_key") }
            return GCPIdentityPlatform(configuration: .init(project: project, apiKey: Secret(key), requireVerifiedEmail: try url.options.bool("verified_email") ?? true),
                                       gcp: try GCPClient())
        }
        return copy
    }
}
