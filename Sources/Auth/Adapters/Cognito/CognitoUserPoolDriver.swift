import Crypto
import Foundation
import NimbusAWS
import NimbusAuth
import NimbusCore

/// A Cognito user pool (`cognito://POOL_ID?client_id=…`) through the model-driven AWS core.
///
/// - Sign-in uses `USER_SRP_AUTH` by default (the password never leaves the process; see
///   ``CognitoSRP``) or `USER_PASSWORD_AUTH` (``Configuration/Flow/password``), and answers
///   `NEW_PASSWORD_REQUIRED`. Public operations (`SignUp`, `InitiateAuth`, …) go unsigned, as the
///   SDKs send them; administrator operations are signed with the AWS credentials.
/// - With an app client secret, every public call carries `SECRET_HASH`
///   (base64 HMAC-SHA256 of username + client id).
/// - Tokens verify against the pool's JWKS (`https://cognito-idp.REGION.amazonaws.com/POOL/.well-known/jwks.json`,
///   fetched from the configured endpoint when there is one), issuer and client, RS256 only.
/// - `UserNotFoundException` at sign-in reads as a wrong password (no user enumeration).
///
/// ```swift
/// let driver = CognitoUserPoolDriver(aws: AWSClient(), configuration: .init(poolID: "eu-west-1_AbC123", clientID: "5s7…"))
/// let pool = UserPool(driver: driver)
/// ```
public struct CognitoUserPoolDriver: UserPoolDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// How passwords are proven at sign-in.
        public enum Flow: String, Sendable {
            /// `USER_SRP_AUTH`: a zero-knowledge proof (AWS's recommendation).
            case srp
            /// `USER_PASSWORD_AUTH`: the password is sent over TLS (needed for user migration triggers).
            case password
        }

        /// The pool id (`us-east-1_AbCdEf123`).
        public var poolID: String
        /// The app client id.
        public var clientID: String
        /// The app client secret, when the client has one.
        public var clientSecret: Secret<String>?
        /// The sign-in flow.
        public var flow: Flow

        /// Creates settings.
        public init(poolID: String, clientID: String, clientSecret: Secret<String>? = nil, flow: Flow = .srp) {
            self.poolID = poolID
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.flow = flow
        }

        /// The pool's region: its id's prefix.
        public var region: String { poolID.split(separator: "_").first.map(String.init) ?? "" }
        /// The `iss` of its tokens.
        public var issuer: String { "https://cognito-idp.\(region).amazonaws.com/\(poolID)" }
    }

    /// The AWS client (credentials for administrator calls, endpoint).
    public let aws: AWSClient
    /// The settings.
    public let configuration: Configuration
    /// The pool's signing keys, fetched and cached (refetched on an unknown `kid`, rate-limited).
    public let jwks: RemoteJWKS
    private let now: @Sendable () -> Date

    /// A pool through `aws`.
    public init(aws: AWSClient, configuration: Configuration, now: @escaping @Sendable () -> Date = { Date() }) throws {
        guard configuration.poolID.range(of: #"^[\w-]+_[0-9a-zA-Z]+$"#, options: .regularExpression) != nil else {
            throw NimbusError(.invalidArgument, "\"\(configuration.poolID.prefix(64))\" is not a Cognito user pool id (REGION_ID, as us-east-1_AbCdEf123)")
        }
        guard !configuration.clientID.isEmpty else { throw NimbusError(.invalidArgument, "a Cognito user pool needs an app client id (client_id)") }
        self.aws = aws
        self.configuration = configuration
        self.now = now
        let model = try AWSServiceModel.named("cognito-idp")
        let endpoint = aws.endpoints.resolve(model.service, region: configuration.region)
        let keysURL = endpoint.isCustom ? "\(endpoint.url)/\(configuration.poolID)/.well-known/jwks.json" : "\(configuration.issuer)/.well-known/jwks.json"
        jwks = RemoteJWKS(url: keysURL)
    }

    public var provider: String { "cognito" }
    public var capabilities: UserPoolCapabilities { .all }
    public var tokenPolicy: PoolTokenPolicy {
        PoolTokenPolicy(issuer: configuration.issuer, keys: jwks, clientID: configuration.clientID, algorithms: [.rs256],
                        idUsernameClaim: "cognito:username", accessUsernameClaim: "username", groupsClaim: "cognito:groups")
    }

    // MARK: - Calls

    @discardableResult
    func call(_ operation: String, _ input: JSONValue) async throws -> JSONValue {
        try await aws.call("cognito-idp", operation, input: input, maxAttempts: 1).output   // Cognito's error names are in the AWS core's table
    }

    @discardableResult
    func admin(_ operation: String, _ input: [String: JSONValue]) async throws -> JSONValue {
        var input = input
        input["UserPoolId"] = .string(configuration.poolID)
        return try await call(operation, .object(input))
    }

    /// `SECRET_HASH` for `username`, when the client has a secret.
    func secretHash(_ username: String) -> String? {
        configuration.clientSecret.map { secret in
            let mac = HMAC<SHA256>.authenticationCode(for: Array((username + configuration.clientID).utf8), using: SymmetricKey(data: Array(secret.reveal().utf8)))
            return Data(mac).base64EncodedString()
        }
    }

    static func attributes(_ values: [String: String]) -> JSONValue {
        .array(values.sorted { $0.key < $1.key }.map { ["Name": .string($0.key), "Value": .string($0.value)] })
    }

    static func user(_ output: JSONValue, username: String) -> PoolUser {
        var attributes: [String: String] = [:]
        for item in (output["UserAttributes"] ?? output["Attributes"])?.arrayValue ?? [] {
            if let name = item["Name"]?.stringValue, let value = item["Value"]?.stringValue { attributes[name] = value }
        }
        let status: PoolUser.Status = switch output["UserStatus"]?.stringValue {
        case "UNCONFIRMED": .unconfirmed
        case "FORCE_CHANGE_PASSWORD": .forceChangePassword
        case "RESET_REQUIRED": .resetRequired
        default: .confirmed
        }
        let created = output["UserCreateDate"].flatMap { value in value.numberValue.map { Date(timeIntervalSince1970: $0) } }
        return PoolUser(username: output["Username"]?.stringValue ?? username, subject: attributes["sub"] ?? "", status: status,
                        isEnabled: output["Enabled"]?.boolValue ?? true, attributes: attributes.filter { $0.key != "sub" }, createdAt: created)
    }

    // MARK: - Sign-up and sign-in

    public func signUp(username: String, password: Secret<String>, attributes: [String: String]) async throws -> PoolUser {
        var input: [String: JSONValue] = ["ClientId": .string(configuration.clientID), "Username": .string(username),
                                          "Password": .string(password.reveal()), "UserAttributes": Self.attributes(attributes)]
        if let hash = secretHash(username) { input["SecretHash"] = .string(hash) }
        let output = try await call("SignUp", .object(input))
        let confirmed = output["UserConfirmed"]?.boolValue ?? false
        return PoolUser(username: username, subject: output["UserSub"]?.stringValue ?? "", status: confirmed ? .confirmed : .unconfirmed,
                        attributes: attributes, createdAt: now())
    }

    public func confirmSignUp(username: String, code: String) async throws {
        var input: [String: JSONValue] = ["ClientId": .string(configuration.clientID), "Username": .string(username), "ConfirmationCode": .string(code)]
        if let hash = secretHash(username) { input["SecretHash"] = .string(hash) }
        try await call("ConfirmSignUp", .object(input))
    }

    public func signIn(username: String, password: Secret<String>) async throws -> SignInResult {
        do {
            switch configuration.flow {
            case .password:
                var parameters: [String: JSONValue] = ["USERNAME": .string(username), "PASSWORD": .string(password.reveal())]
                if let hash = secretHash(username) { parameters["SECRET_HASH"] = .string(hash) }
                return try result(try await call("InitiateAuth", ["AuthFlow": "USER_PASSWORD_AUTH", "ClientId": .string(configuration.clientID),
                                                                  "AuthParameters": .object(parameters)]), username: username)
            case .srp:
                return try await signInWithSRP(username: username, password: password)
            }
        } catch let error as NimbusError where error.code == .notFound && (error.underlying as? AWSServiceError)?.code == "UserNotFoundException" {
            throw NimbusError(.unauthenticated, "incorrect username or password")
        }
    }

    func signInWithSRP(username: String, password: Secret<String>) async throws -> SignInResult {
        let srp = CognitoSRP(poolID: configuration.poolID)
        var parameters: [String: JSONValue] = ["USERNAME": .string(username), "SRP_A": .string(srp.publicValueHex)]
        if let hash = secretHash(username) { parameters["SECRET_HASH"] = .string(hash) }
        let started = try await call("InitiateAuth", ["AuthFlow": "USER_SRP_AUTH", "ClientId": .string(configuration.clientID),
                                                      "AuthParameters": .object(parameters)])
        guard started["ChallengeName"]?.stringValue == "PASSWORD_VERIFIER", let challenge = started["ChallengeParameters"] else {
            return try result(started, username: username)
        }
        guard let userID = challenge["USER_ID_FOR_SRP"]?.stringValue, let salt = challenge["SALT"]?.stringValue,
              let serverPublic = challenge["SRP_B"]?.stringValue, let block = challenge["SECRET_BLOCK"]?.stringValue else {
            throw NimbusError(.internal, "Cognito's PASSWORD_VERIFIER challenge lacks USER_ID_FOR_SRP, SALT, SRP_B or SECRET_BLOCK")
        }
        let internalName = challenge["USERNAME"]?.stringValue ?? username
        let timestamp = CognitoSRP.timestamp(now())
        let signature = try srp.passwordClaim(userIDForSRP: userID, password: password, saltHex: salt, serverPublicHex: serverPublic,
                                              secretBlock: block, timestamp: timestamp)
        var responses: [String: JSONValue] = ["USERNAME": .string(internalName), "PASSWORD_CLAIM_SECRET_BLOCK": .string(block),
                                              "PASSWORD_CLAIM_SIGNATURE": .string(signature), "TIMESTAMP": .string(timestamp)]
        if let hash = secretHash(internalName) { responses["SECRET_HASH"] = .string(hash) }
        var input: [String: JSONValue] = ["ChallengeName": "PASSWORD_VERIFIER", "ClientId": .string(configuration.clientID), "ChallengeResponses": .object(responses)]
        if let session = started["Session"]?.stringValue { input["Session"] = .string(session) }
        return try result(try await call("RespondToAuthChallenge", .object(input)), username: username)
    }

    func result(_ output: JSONValue, username: String) throws -> SignInResult {
        if let tokens = output["AuthenticationResult"] {
            guard let id = tokens["IdToken"]?.stringValue, let access = tokens["AccessToken"]?.stringValue else {
                throw NimbusError(.internal, "Cognito returned an AuthenticationResult without IdToken or AccessToken")
            }
            return .signedIn(PoolTokens(idToken: Secret(id), accessToken: Secret(access), refreshToken: tokens["RefreshToken"]?.stringValue.map(Secret.init),
                                        expiresIn: .seconds(tokens["ExpiresIn"]?.numberValue ?? 3600)))
        }
        guard let name = output["ChallengeName"]?.stringValue else {
            throw NimbusError(.internal, "Cognito answered a sign-in with neither tokens nor a challenge")
        }
        let challengeUser = output["ChallengeParameters"]?["USER_ID_FOR_SRP"]?.stringValue ?? output["ChallengeParameters"]?["USERNAME"]?.stringValue ?? username
        let challenge = PoolChallenge(name: name, username: challengeUser, session: Secret(output["Session"]?.stringValue ?? ""))
        return name == "NEW_PASSWORD_REQUIRED" ? .newPasswordRequired(challenge) : .challenge(challenge)
    }

    public func completeNewPassword(_ challenge: PoolChallenge, newPassword: Secret<String>) async throws -> SignInResult {
        var responses: [String: JSONValue] = ["USERNAME": .string(challenge.username), "NEW_PASSWORD": .string(newPassword.reveal())]
        if let hash = secretHash(challenge.username) { responses["SECRET_HASH"] = .string(hash) }
        let output = try await call("RespondToAuthChallenge", ["ChallengeName": "NEW_PASSWORD_REQUIRED", "ClientId": .string(configuration.clientID),
                                                               "Session": .string(challenge.session.reveal()), "ChallengeResponses": .object(responses)])
        return try result(output, username: challenge.username)
    }

    public func refresh(_ refreshToken: Secret<String>, username: String) async throws -> PoolTokens {
        var parameters: [String: JSONValue] = ["REFRESH_TOKEN": .string(refreshToken.reveal())]
        if let hash = secretHash(username) { parameters["SECRET_HASH"] = .string(hash) }
        let output: JSONValue
        do {
            output = try await call("InitiateAuth", ["AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": .string(configuration.clientID), "AuthParameters": .object(parameters)])
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.unauthenticated, "the refresh token is not valid or was revoked; sign in again", underlying: error)
        }
        return try result(output, username: username).tokens()
    }

    public func signOut(everywhere accessToken: Secret<String>) async throws {
        try await call("GlobalSignOut", ["AccessToken": .string(accessToken.reveal())])
    }

    // MARK: - Administration

    public func createUser(username: String, attributes: [String: String], temporaryPassword: Secret<String>?) async throws -> PoolUser {
        var input: [String: JSONValue] = ["Username": .string(username), "UserAttributes": Self.attributes(attributes), "MessageAction": "SUPPRESS"]
        if let temporaryPassword { input["TemporaryPassword"] = .string(temporaryPassword.reveal()) }
        let output = try await admin("AdminCreateUser", input)
        return Self.user(output["User"] ?? [:], username: username)
    }

    public func user(_ username: String) async throws -> PoolUser {
        Self.user(try await admin("AdminGetUser", ["Username": .string(username)]), username: username)
    }

    public func confirm(_ username: String) async throws {
        try await admin("AdminConfirmSignUp", ["Username": .string(username)])
    }

    public func setPassword(_ username: String, password: Secret<String>, permanent: Bool) async throws {
        try await admin("AdminSetUserPassword", ["Username": .string(username), "Password": .string(password.reveal()), "Permanent": .bool(permanent)])
    }

    public func setEnabled(_ username: String, _ enabled: Bool) async throws {
        try await admin(enabled ? "AdminEnableUser" : "AdminDisableUser", ["Username": .string(username)])
    }

    public func deleteUser(_ username: String) async throws {
        try await admin("AdminDeleteUser", ["Username": .string(username)])
    }

    public func createGroup(_ name: String) async throws {
        try await admin("CreateGroup", ["GroupName": .string(name)])
    }

    public func deleteGroup(_ name: String) async throws {
        try await admin("DeleteGroup", ["GroupName": .string(name)])
    }

    public func addUser(_ username: String, toGroup group: String) async throws {
        try await admin("AdminAddUserToGroup", ["Username": .string(username), "GroupName": .string(group)])
    }

    public func removeUser(_ username: String, fromGroup group: String) async throws {
        try await admin("AdminRemoveUserFromGroup", ["Username": .string(username), "GroupName": .string(group)])
    }

    public func groups(of username: String) async throws -> [String] {
        var names: [String] = []
        var token: String?
        repeat {
            var input: [String: JSONValue] = ["Username": .string(username), "Limit": 60]
            if let token { input["NextToken"] = .string(token) }
            let output = try await admin("AdminListGroupsForUser", input)
            names += output["Groups"]?.arrayValue?.compactMap { $0["GroupName"]?.stringValue } ?? []
            token = output["NextToken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return names.sorted()
    }
}

extension URLOpenerRegistry where Resource == any UserPoolDriver {
    /// Adds `cognito://POOL_ID?client_id=ID[&client_secret=S][&flow=srp|password][&endpoint=URL][&profile=P]`
    /// (credentials for administrator calls from the AWS chain; the region is the pool id's prefix).
    public func withCognito() -> Self {
        var copy = self
        copy.register("cognito") { url in
            try url.options.validate(known: ["client_id", "client_secret", "flow", "endpoint", "profile"], for: "cognito://")
            guard let pool = url.host, !pool.isEmpty else { throw NimbusError(.invalidArgument, "cognito:// needs the pool id as its host: cognito://us-east-1_AbC123?client_id=…") }
            guard let client = url.options.string("client_id") else { throw NimbusError(.invalidArgument, "cognito:// needs client_id") }
            let flowName = url.options.string("flow") ?? "srp"
            guard let flow = CognitoUserPoolDriver.Configuration.Flow(rawValue: flowName) else {
                throw NimbusError(.invalidArgument, "flow must be srp or password, not \(flowName.prefix(20))")
            }
            let configuration = CognitoUserPoolDriver.Configuration(poolID: pool, clientID: client, clientSecret: url.options.string("client_secret").map(Secret.init), flow: flow)
            let aws = AWSClient(configuration: AWSClient.Configuration(region: configuration.region, profile: url.options.string("profile"),
                                                                       endpointURL: url.options.string("endpoint")))
            return try CognitoUserPoolDriver(aws: aws, configuration: configuration)
        }
        return copy
    }
}
