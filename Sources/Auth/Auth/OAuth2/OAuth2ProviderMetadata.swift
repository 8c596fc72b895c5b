import Foundation
import NimbusCore
import NimbusHTTP

/// What an authorization server publishes about itself: OpenID Connect Discovery 1.0
/// (`/.well-known/openid-configuration`) or RFC 8414 metadata, or endpoints written by hand for a
/// server that publishes none (GitHub).
public struct OAuth2ProviderMetadata: Sendable, Hashable {
    /// The issuer identifier: ID tokens must carry exactly this `iss`.
    public var issuer: String
    /// Where the user is sent to sign in.
    public var authorizationEndpoint: String
    /// Where codes, refresh tokens and client credentials are exchanged for tokens.
    public var tokenEndpoint: String
    /// The issuer's keys (OpenID Connect providers).
    public var jwksURI: String?
    /// The UserInfo endpoint.
    public var userinfoEndpoint: String?
    /// RFC 7009 token revocation.
    public var revocationEndpoint: String?
    /// RFC 7662 token introspection.
    public var introspectionEndpoint: String?
    /// RFC 8628 device authorization.
    public var deviceAuthorizationEndpoint: String?
    /// RP-initiated logout.
    public var endSessionEndpoint: String?
    /// The PKCE methods the server lists (empty when it lists none).
    public var codeChallengeMethods: [String]
    /// The ID token signature algorithms the server lists.
    public var idTokenSigningAlgorithms: [String]
    /// Whether the server puts `iss` in authorization responses (RFC 9207).
    public var authorizationResponseIssParameterSupported: Bool
    /// Whether this is an OpenID Connect provider (it issues ID tokens).
    public var isOpenIDProvider: Bool

    /// Metadata written by hand.
    public init(issuer: String, authorizationEndpoint: String, tokenEndpoint: String, jwksURI: String? = nil, userinfoEndpoint: String? = nil,
                revocationEndpoint: String? = nil, introspectionEndpoint: String? = nil, deviceAuthorizationEndpoint: String? = nil,
                endSessionEndpoint: String? = nil, codeChallengeMethods: [String] = [], idTokenSigningAlgorithms: [String] = [],
                authorizationResponseIssParameterSupported: Bool = false, isOpenIDProvider: Bool = false) {
        self.issuer = issuer
        self.authorizationEndpoint = authorizationEndpoint
        self.tokenEndpoint = tokenEndpoint
        self.jwksURI = jwksURI
        self.userinfoEndpoint = userinfoEndpoint
        self.revocationEndpoint = revocationEndpoint
        self.introspectionEndpoint = introspectionEndpoint
        self.deviceAuthorizationEndpoint = deviceAuthorizationEndpoint
        self.endSessionEndpoint = endSessionEndpoint
        self.codeChallengeMethods = codeChallengeMethods
        self.idTokenSigningAlgorithms = idTokenSigningAlgorithms
        self.authorizationResponseIssParameterSupported = authorizationResponseIssParameterSupported
        self.isOpenIDProvider = isOpenIDProvider
    }

    /// Fetches `issuer`'s discovery document and checks it.
    /// - Throws: `failedPrecondition` when the document's `issuer` is not exactly `issuer` (OpenID
    ///   Connect Discovery §4.3: a mix-up or impersonation), when a required endpoint is missing, or when
    ///   an endpoint is not HTTPS (loopback `http` allowed, for development); the HTTP error otherwise.
    public static func discover(issuer: String, http: NimbusHTTPClient) async throws -> OAuth2ProviderMetadata {
        let url = issuer.trimmingSuffix("/") + "/.well-known/openid-configuration"
        var request = NimbusHTTPRequest(.GET, url, operation: "oidc.discovery")
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await http.send(request, errorMapper: NimbusHTTPClient.defaultErrorMapper)
        let body = try await response.collect(upTo: 512 * 1024)
        guard case .object(let document)? = try? JSONValue.parse(Array(body.readableBytesView)) else {
            throw NimbusError(.failedPrecondition, "the discovery document at \(url) is not a JSON object")
        }
        return try parse(document, expectedIssuer: issuer, source: url)
    }

    /// Reads a discovery document (checked as ``discover(issuer:http:)`` does).
    public static func parse(_ document: [String: JSONValue], expectedIssuer: String, source: String = "the discovery document") throws -> OAuth2ProviderMetadata {
        guard let issuer = document["issuer"]?.stringValue, issuer == expectedIssuer else {
            throw NimbusError(.failedPrecondition, "\(source) names the issuer \(document["issuer"]?.stringValue.map { "'\($0)'" } ?? "(none)"), "
                              + "not '\(expectedIssuer)'; refusing it (OpenID Connect Discovery §4.3)")
        }
        func endpoint(_ name: String, required: Bool) throws -> String? {
            guard let value = document[name]?.stringValue else {
                if required { throw NimbusError(.failedPrecondition, "\(source) has no \(name)") }
                return nil
            }
            try checkSecure(value, name: name)
            return value
        }
        let strings: (String) -> [String] = { document[$0]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        let jwks = try endpoint("jwks_uri", required: false)
        return OAuth2ProviderMetadata(
            issuer: issuer,
            authorizationEndpoint: try endpoint("authorization_endpoint", required: true)!,
            tokenEndpoint: try endpoint("token_endpoint", required: true)!,
            jwksURI: jwks,
            userinfoEndpoint: try endpoint("userinfo_endpoint", required: false),
            revocationEndpoint: try endpoint("revocation_endpoint", required: false),
            introspectionEndpoint: try endpoint("introspection_endpoint", required: false),
            deviceAuthorizationEndpoint: try endpoint("device_authorization_endpoint", required: false),
            endSessionEndpoint: try endpoint("end_session_endpoint", required: false),
            codeChallengeMethods: strings("code_challenge_methods_supported"),
            idTokenSigningAlgorithms: strings("id_token_signing_alg_values_supported"),
            authorizationResponseIssParameterSupported: document["authorization_response_iss_parameter_supported"] == .bool(true),
            isOpenIDProvider: jwks != nil && !strings("id_token_signing_alg_values_supported").isEmpty)
    }

    /// HTTPS, or `http` to a loopback address (a development server).
    static func checkSecure(_ url: String, name: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), let host = components.host else {
            throw NimbusError(.failedPrecondition, "\(name) '\(url.prefix(200))' is not a URL")
        }
        guard scheme == "https" || (scheme == "http" && ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased())) else {
            throw NimbusError(.failedPrecondition, "\(name) '\(url.prefix(200))' is not HTTPS; tokens are only sent over TLS (loopback http is allowed for development)")
        }
    }
}

extension OAuth2ProviderMetadata {
    /// Google (OpenID Connect, discovered at `https://accounts.google.com`).
    public static let googleIssuer = "https://accounts.google.com"

    /// Microsoft Entra ID v2 for `tenant` (a tenant id or domain; `organizations`, `consumers` or
    /// `common` for multi-tenant apps, whose ID tokens name the user's tenant in `iss`: check `tid`).
    public static func microsoftIssuer(tenant: String) -> String { "https://login.microsoftonline.com/\(tenant)/v2.0" }

    /// Sign in with Apple (OpenID Connect; its client secret is a JWT, see ``AppleClientSecret``).
    public static let appleIssuer = "https://appleid.apple.com"

    /// GitHub OAuth apps: OAuth2 only (no discovery, no ID tokens); the user comes from `GET https://api.github.com/user`.
    public static let github = OAuth2ProviderMetadata(
        issuer: "https://github.com", authorizationEndpoint: "https://github.com/login/oauth/authorize",
        tokenEndpoint: "https://github.com/login/oauth/access_token", userinfoEndpoint: "https://api.github.com/user",
        deviceAuthorizationEndpoint: "https://github.com/login/device/code", codeChallengeMethods: ["S256"])
}

/// Sign in with Apple's client secret: not a fixed string but an ES256 JWT signed with the team's
/// private key (a `.p8` file from the developer account), valid for at most six months.
///
/// ```swift
/// let secret = try await AppleClientSecret(teamID: "TEAM123456", clientID: "com.example.web", keyID: "KEY1234567",
///                                          privateKeyPEM: p8).make(lifetime: .seconds(86_400 * 30))
/// let client = try await OAuth2Client.discover(issuer: OAuth2ProviderMetadata.appleIssuer,
///     configuration: .init(clientID: "com.example.web", authentication: .clientSecretPost(secret), redirectURI: callback))
/// ```
public struct AppleClientSecret: Sendable {
    /// The Apple developer team id (the JWT's `iss`).
    public var teamID: String
    /// The Services ID (the JWT's `sub`).
    public var clientID: String
    /// The key's id (the JWT's `kid`).
    public var keyID: String
    let keys: JWTKeySet

    /// - Throws: `invalidArgument` when the PEM is not a P-256 private key.
    public init(teamID: String, clientID: String, keyID: String, privateKeyPEM: String) async throws {
        let keys = try await JWTKeySet.pem(privateKeyPEM, id: keyID, algorithms: [.es256])
        guard keys.keys.first?.canSign == true else { throw NimbusError(.invalidArgument, "Apple's client secret is signed with the .p8 private key") }
        self.teamID = teamID
        self.clientID = clientID
        self.keyID = keyID
        self.keys = keys
    }

    /// A client secret valid for `lifetime` (at most 180 days, Apple's limit) from `now`.
    /// - Throws: `invalidArgument` for a lifetime over 180 days.
    public func make(lifetime: Duration = .seconds(86_400 * 30), now: Date = Date()) throws -> Secret<String> {
        guard lifetime <= .seconds(86_400 * 180) else { throw NimbusError(.invalidArgument, "Apple accepts client secrets valid for 180 days at most") }
        var claims = JWTClaims()
        claims.issuer = teamID
        claims.subject = clientID
        claims.audience = [OAuth2ProviderMetadata.appleIssuer]
        return Secret(try keys.sign(claims, keyID: keyID, algorithm: .es256, type: nil, expiresIn: lifetime, now: now))
    }
}
