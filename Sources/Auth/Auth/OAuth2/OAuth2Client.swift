import Crypto
import Foundation
import Logging
import NimbusCore
import NimbusHTTP

/// How the client proves who it is at the token endpoint (RFC 6749 §2.3, OpenID Connect Core §9).
public enum OAuth2ClientAuthentication: Sendable {
    /// A public client (a CLI, a mobile or single-page app): only `client_id`, and PKCE.
    case none
    /// The secret in HTTP Basic auth, both parts form-encoded first (RFC 6749 §2.3.1).
    case clientSecretBasic(Secret<String>)
    /// The secret as a `client_secret` form field.
    case clientSecretPost(Secret<String>)
    /// A JWT signed with the client's private key (`private_key_jwt`, RFC 7523): no shared secret.
    case privateKeyJWT(JWTKeySet, keyID: String? = nil)
}

/// Tokens from a token endpoint.
public struct OAuth2Tokens: Sendable, CustomStringConvertible {
    /// The access token. Never logged.
    public var accessToken: Secret<String>
    /// The token type (`Bearer`).
    public var tokenType: String
    /// When the access token expires, if the server said.
    public var expiresAt: Date?
    /// The refresh token, if one was issued. With rotation, each refresh returns a new one: store it.
    public var refreshToken: Secret<String>?
    /// The raw ID token, if one was issued.
    public var idToken: String?
    /// The ID token's claims, validated (OpenID Connect Core §3.1.3.7).
    public var idTokenClaims: JWTClaims?
    /// The granted scopes (the requested ones when the server did not say).
    public var scopes: Set<String>
    /// Every other field of the answer.
    public var extra: [String: JSONValue]

    public var description: String {
        "OAuth2Tokens(\(tokenType), scopes: \(scopes.sorted().joined(separator: " ")), refresh: \(refreshToken != nil), "
            + "id: \(idTokenClaims?.subject ?? "-"))"
    }
}

/// An authorization request in progress: keep it (in the user's session) from sending the browser
/// to ``url`` until the callback comes back, then pass both to ``OAuth2Client/exchangeCode(callbackURL:for:)``.
public struct AuthorizationRequest: Sendable, Codable, CustomStringConvertible {
    /// Where to send the user's browser.
    public var url: String
    /// The `state` sent: the callback must carry it back (CSRF protection).
    public var state: String
    /// The `nonce` sent: the ID token must carry it back (replay protection).
    public var nonce: String?
    /// The PKCE code verifier (RFC 7636), sent with the code; only its S256 challenge went to the browser.
    public var codeVerifier: String
    /// The redirect URI sent (the exchange repeats it).
    public var redirectURI: String
    /// The scopes asked for.
    public var scopes: [String]
    /// `max_age` sent, if any: the ID token's `auth_time` is checked against it.
    public var maxAge: Int?

    public var description: String { "AuthorizationRequest(\(url.split(separator: "?").first ?? ""), scopes: \(scopes.joined(separator: " ")))" }
}

/// A pending device authorization (RFC 8628): show ``userCode`` and ``verificationURI`` to the user,
/// then ``OAuth2Client/pollDeviceAuthorization(_:)``.
public struct DeviceAuthorization: Sendable {
    /// The device code (sent back while polling). Never shown.
    public var deviceCode: Secret<String>
    /// The code the user types.
    public var userCode: String
    /// Where the user types it.
    public var verificationURI: String
    /// The same with the code filled in, if the server offers it.
    public var verificationURIComplete: String?
    /// When the codes expire.
    public var expiresAt: Date
    /// The polling interval the server asked for.
    public var interval: Duration
    /// The scopes asked for.
    public var scopes: [String]
}

/// What RFC 7662 introspection says of a token.
public struct TokenIntrospection: Sendable {
    /// Whether the token is active (issued by this server, not expired, not revoked).
    public var active: Bool
    /// The other members (`scope`, `client_id`, `sub`, `exp`, …).
    public var claims: JWTClaims
}

/// An OAuth 2.0 / OpenID Connect client, written to the OAuth 2.0 Security Best Current Practice
/// (RFC 9700): authorization code with PKCE S256 only, `state` and `nonce` on every request, ID
/// tokens validated in full, refresh tokens rotated, client credentials, device authorization,
/// revocation, introspection and RP-initiated logout.
///
/// ```swift
/// let client = try await OAuth2Client.discover(issuer: "https://accounts.example.com",
///     configuration: .init(clientID: "orders-web", authentication: .clientSecretBasic(secret),
///                          redirectURI: "https://orders.example.com/callback"))
/// let request = client.authorizationRequest(scopes: ["openid", "email"])
/// session["oauth"] = request                        // then redirect the browser to request.url
/// // …in the callback handler:
/// let tokens = try await client.exchangeCode(callbackURL: callbackURL, for: session["oauth"])
/// print(tokens.idTokenClaims?.subject ?? "")
/// ```
public struct OAuth2Client: Sendable {
    /// The client's registration.
    public struct Configuration: Sendable {
        /// The client id.
        public var clientID: String
        /// How the client authenticates.
        public var authentication: OAuth2ClientAuthentication
        /// Where the server sends the browser back (registered with the server).
        public var redirectURI: String?
        /// Clock skew tolerated on ID tokens.
        public var leeway: Duration
        /// ID token algorithms accepted (the server's list narrows it further).
        public var idTokenAlgorithms: Set<JWSAlgorithm>

        /// Creates a registration.
        public init(clientID: String, authentication: OAuth2ClientAuthentication = .none, redirectURI: String? = nil,
                    leeway: Duration = .seconds(60), idTokenAlgorithms: Set<JWSAlgorithm> = JWSAlgorithm.asymmetric) {
            self.clientID = clientID
            self.authentication = authentication
            self.redirectURI = redirectURI
            self.leeway = leeway
            self.idTokenAlgorithms = idTokenAlgorithms
        }
    }

    /// The server.
    public let provider: OAuth2ProviderMetadata
    /// The registration.
    public let configuration: Configuration
    /// The server's keys (for ID tokens), when it has a JWKS.
    public let keys: RemoteJWKS?
    let http: NimbusHTTPClient
    let now: @Sendable () -> Date

    /// A client of `provider`.
    /// - Throws: `failedPrecondition` when the server lists PKCE methods and S256 is not among them
    ///   (this client never falls back to `plain`).
    public init(provider: OAuth2ProviderMetadata, configuration: Configuration, http: NimbusHTTPClient? = nil,
                keys: RemoteJWKS? = nil, now: @escaping @Sendable () -> Date = { Date() }) throws {
        guard provider.codeChallengeMethods.isEmpty || provider.codeChallengeMethods.contains("S256") else {
            throw NimbusError(.failedPrecondition, "\(provider.issuer) offers PKCE with \(provider.codeChallengeMethods.joined(separator: ", ")) only; "
                              + "this client uses S256 and never falls back to plain (RFC 9700 §2.1.1)")
        }
        let http = http ?? OAuth2Client.defaultHTTP()
        self.provider = provider
        self.configuration = configuration
        self.http = http
        self.keys = keys ?? provider.jwksURI.map { RemoteJWKS(url: $0, http: http, now: now) }
        self.now = now
    }

    /// Discovers `issuer` (OpenID Connect Discovery) and makes a client of it.
    public static func discover(issuer: String, configuration: Configuration, http: NimbusHTTPClient? = nil,
                                now: @escaping @Sendable () -> Date = { Date() }) async throws -> OAuth2Client {
        let http = http ?? defaultHTTP()
        let provider = try await OAuth2ProviderMetadata.discover(issuer: issuer, http: http)
        return try OAuth2Client(provider: provider, configuration: configuration, http: http, now: now)
    }

    static func defaultHTTP() -> NimbusHTTPClient {
        NimbusHTTPClient(configuration: .init(service: "oauth2", timeout: .seconds(30)), httpClient: NimbusHTTPClient.defaultTransport)
    }

    // MARK: - Authorization code + PKCE

    /// A new authorization request: fresh `state`, `nonce` (for OpenID Connect) and PKCE verifier, the
    /// S256 challenge in the URL. `parameters` adds others (`prompt`, `login_hint`, `acr_values`…).
    /// - Throws: `failedPrecondition` without a redirect URI.
    public func authorizationRequest(scopes: [String], maxAge: Int? = nil, parameters: [String: String] = [:]) throws -> AuthorizationRequest {
        guard let redirectURI = configuration.redirectURI else {
            throw NimbusError(.failedPrecondition, "the code flow needs Configuration.redirectURI")
        }
        let state = Self.random(), verifier = Self.random(bytes: 32)
        let nonce = scopes.contains("openid") ? Self.random() : nil
        var query: [(String, String)] = [("response_type", "code"), ("client_id", configuration.clientID), ("redirect_uri", redirectURI),
                                         ("scope", scopes.joined(separator: " ")), ("state", state),
                                         ("code_challenge", Self.challenge(verifier)), ("code_challenge_method", "S256")]
        if let nonce { query.append(("nonce", nonce)) }
        if let maxAge { query.append(("max_age", String(maxAge))) }
        let reserved = Set(query.map(\.0))
        for (name, value) in parameters.sorted(by: { $0.key < $1.key }) where !reserved.contains(name) { query.append((name, value)) }
        let separator = provider.authorizationEndpoint.contains("?") ? "&" : "?"
        let url = provider.authorizationEndpoint + separator + query.map { "\(FormEncoder.escape($0.0))=\(FormEncoder.escape($0.1))" }.joined(separator: "&")
        return AuthorizationRequest(url: url, state: state, nonce: nonce, codeVerifier: verifier, redirectURI: redirectURI, scopes: scopes, maxAge: maxAge)
    }

    /// Handles the callback: checks `state` (and `iss`, RFC 9207), exchanges the code with the PKCE
    /// verifier, and validates the ID token against the request's `nonce`.
    /// - Throws: `unauthenticated` for a callback whose `state` or `iss` does not match (a forged or
    ///   mixed-up callback), a refused code, or an ID token that fails validation; `permissionDenied`
    ///   when the user declined (`access_denied`); the server's other errors mapped.
    public func exchangeCode(callbackURL: String, for request: AuthorizationRequest) async throws -> OAuth2Tokens {
        let parameters = Self.parameters(of: callbackURL)
        guard let state = parameters["state"], ConstantTime.equals(Array(state.utf8), Array(request.state.utf8)) else {
            throw NimbusError(.unauthenticated, "the callback's state does not match the request's: refusing it (a forged or replayed callback)")
        }
        if let issuer = parameters["iss"] {
            guard issuer == provider.issuer else {
                throw NimbusError(.unauthenticated, "the callback comes from issuer '\(issuer.prefix(200))', not '\(provider.issuer)' (RFC 9207: a mix-up)")
            }
        } else if provider.authorizationResponseIssParameterSupported {
            throw NimbusError(.unauthenticated, "the callback has no iss although \(provider.issuer) always sends it (RFC 9207)")
        }
        if let error = parameters["error"] {
            let description = parameters["error_description"].map { ": " + $0.prefix(300) } ?? ""
            throw NimbusError(error == "access_denied" ? .permissionDenied : .unauthenticated, "\(provider.issuer) answered \(error)\(description)",
                              underlying: OAuth2ErrorResponse(error: error, description: parameters["error_description"] ?? ""))
        }
        guard let code = parameters["code"], !code.isEmpty else { throw NimbusError(.unauthenticated, "the callback carries neither a code nor an error") }
        let tokens = try await tokenRequest(["grant_type": "authorization_code", "code": code, "redirect_uri": request.redirectURI,
                                             "code_verifier": request.codeVerifier], scopes: request.scopes, what: "an authorization code", safeToRetry: false)
        return try await validated(tokens, nonce: request.nonce, maxAge: request.maxAge, requireIDToken: request.scopes.contains("openid"))
    }

    // MARK: - Other grants

    /// Exchanges a refresh token. With rotation the answer carries a new refresh token, which
    /// replaces the old one (the old one stops working). A new ID token must be about the same
    /// subject as `previous` (OpenID Connect Core §12.2).
    /// - Throws: `unauthenticated` when the server refuses the token (expired, revoked, already used).
    public func refresh(_ refreshToken: Secret<String>, scopes: [String]? = nil, previous: JWTClaims? = nil) async throws -> OAuth2Tokens {
        var form = ["grant_type": "refresh_token", "refresh_token": refreshToken.reveal()]
        if let scopes { form["scope"] = scopes.joined(separator: " ") }
        var tokens = try await tokenRequest(form, scopes: scopes ?? [], what: "a refresh token", safeToRetry: false)
        if tokens.refreshToken == nil { tokens.refreshToken = refreshToken }    // no rotation: the old one stays valid
        let checked = try await validated(tokens, nonce: nil, maxAge: nil, requireIDToken: false)
        if let previous, let claims = checked.idTokenClaims {
            guard claims.subject == previous.subject, claims.issuer == previous.issuer else {
                throw NimbusError(.unauthenticated, "the refreshed ID token is about another subject or issuer")
            }
        }
        return checked
    }

    /// The client credentials grant (RFC 6749 §4.4): a token for the client itself.
    public func clientCredentials(scopes: [String] = []) async throws -> OAuth2Tokens {
        var form = ["grant_type": "client_credentials"]
        if !scopes.isEmpty { form["scope"] = scopes.joined(separator: " ") }
        return try await tokenRequest(form, scopes: scopes, what: "client credentials", safeToRetry: true)
    }

    /// Starts a device authorization (RFC 8628 §3.1).
    public func startDeviceAuthorization(scopes: [String]) async throws -> DeviceAuthorization {
        guard let endpoint = provider.deviceAuthorizationEndpoint else {
            throw NimbusError(.unimplemented, "\(provider.issuer) has no device authorization endpoint")
        }
        var form = ["client_id": configuration.clientID]
        if !scopes.isEmpty { form["scope"] = scopes.joined(separator: " ") }
        let answer = try await post(endpoint, form: form, what: "a device authorization", safeToRetry: true)
        guard let device = answer["device_code"]?.stringValue, let user = answer["user_code"]?.stringValue,
              let verification = answer["verification_uri"]?.stringValue ?? answer["verification_url"]?.stringValue else {
            throw NimbusError(.internal, "\(provider.issuer)'s device authorization lacks device_code, user_code or verification_uri")
        }
        let lifetime = answer["expires_in"]?.numberValue ?? 600
        return DeviceAuthorization(deviceCode: Secret(device), userCode: user, verificationURI: verification,
                                   verificationURIComplete: answer["verification_uri_complete"]?.stringValue,
                                   expiresAt: now().addingTimeInterval(lifetime), interval: .seconds(max(1, answer["interval"]?.numberValue ?? 5)),
                                   scopes: scopes)
    }

    /// Polls until the user approves or denies the device, or the codes expire (RFC 8628 §3.4–3.5):
    /// `authorization_pending` waits the interval, `slow_down` adds 5 seconds to it.
    /// - Throws: `permissionDenied` when the user denied; `deadlineExceeded` when the codes expired.
    public func pollDeviceAuthorization(_ device: DeviceAuthorization, sleep: @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) async throws -> OAuth2Tokens {
        var interval = device.interval
        while true {
            try await sleep(interval)
            guard now() < device.expiresAt else { throw NimbusError(.deadlineExceeded, "the device code expired before the user approved it") }
            do {
                let tokens = try await tokenRequest(["grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": device.deviceCode.reveal()],
                                                    scopes: device.scopes, what: "a device code", safeToRetry: false)
                return try await validated(tokens, nonce: nil, maxAge: nil, requireIDToken: false)
            } catch let error as NimbusError {
                switch (error.underlying as? OAuth2ErrorResponse)?.error {
                case "authorization_pending": continue
                case "slow_down": interval += .seconds(5)
                case "access_denied": throw NimbusError(.permissionDenied, "the user denied the device", underlying: error.underlying)
                case "expired_token": throw NimbusError(.deadlineExceeded, "the device code expired before the user approved it", underlying: error.underlying)
                default: throw error
                }
            }
        }
    }

    // MARK: - Revocation, introspection, userinfo, logout

    /// Revokes a token (RFC 7009). Revoking a token the server does not know is not an error.
    public func revoke(_ token: Secret<String>, hint: String? = nil) async throws {
        guard let endpoint = provider.revocationEndpoint else { throw NimbusError(.unimplemented, "\(provider.issuer) has no revocation endpoint") }
        var form = ["token": token.reveal()]
        if let hint { form["token_type_hint"] = hint }
        _ = try await post(endpoint, form: form, what: "a revocation", safeToRetry: true, expectJSON: false)
    }

    /// Asks the server whether a token is active (RFC 7662).
    public func introspect(_ token: Secret<String>, hint: String? = nil) async throws -> TokenIntrospection {
        guard let endpoint = provider.introspectionEndpoint else { throw NimbusError(.unimplemented, "\(provider.issuer) has no introspection endpoint") }
        var form = ["token": token.reveal()]
        if let hint { form["token_type_hint"] = hint }
        let answer = try await post(endpoint, form: form, what: "an introspection", safeToRetry: true)
        return TokenIntrospection(active: answer["active"] == .bool(true), claims: JWTClaims(answer))
    }

    /// The user's claims from the UserInfo endpoint; its `sub` must equal the ID token's (OpenID Connect Core §5.3.2).
    public func userInfo(accessToken: Secret<String>, expectedSubject: String? = nil) async throws -> JWTClaims {
        guard let endpoint = provider.userinfoEndpoint else { throw NimbusError(.unimplemented, "\(provider.issuer) has no UserInfo endpoint") }
        var request = NimbusHTTPRequest(.GET, endpoint, operation: "oidc.userinfo")
        request.headers.add(name: "Authorization", value: "Bearer " + accessToken.reveal())
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await http.send(request)
        let body = Array(try await response.collect(upTo: 256 * 1024).readableBytesView)
        guard response.isSuccess else { throw OAuth2TokenEndpoint.error(response, body: body, service: provider.issuer, who: "the UserInfo request") }
        guard case .object(let claims)? = try? JSONValue.parse(body) else { throw NimbusError(.internal, "the UserInfo answer is not a JSON object") }
        if let expectedSubject, claims["sub"]?.stringValue != expectedSubject {
            throw NimbusError(.unauthenticated, "the UserInfo answer is about another subject than the ID token")
        }
        return JWTClaims(claims)
    }

    /// Where to send the browser to sign out at the provider (RP-initiated logout 1.0).
    public func logoutURL(idTokenHint: String?, postLogoutRedirectURI: String? = nil, state: String? = nil) throws -> String {
        guard let endpoint = provider.endSessionEndpoint else { throw NimbusError(.unimplemented, "\(provider.issuer) has no end_session_endpoint") }
        var query: [(String, String)] = [("client_id", configuration.clientID)]
        if let idTokenHint { query.append(("id_token_hint", idTokenHint)) }
        if let postLogoutRedirectURI { query.append(("post_logout_redirect_uri", postLogoutRedirectURI)) }
        if let state { query.append(("state", state)) }
        return endpoint + (endpoint.contains("?") ? "&" : "?") + query.map { "\(FormEncoder.escape($0.0))=\(FormEncoder.escape($0.1))" }.joined(separator: "&")
    }

    // MARK: - ID tokens

    /// Validates an ID token (OpenID Connect Core §3.1.3.7): signature with the provider's keys and an
    /// allowed algorithm, `iss` exactly the provider's, `aud` containing this client (and `azp` this
    /// client when there are several audiences or `azp` is present), `exp`/`iat`, the `nonce`, `at_hash`
    /// against the access token, and `auth_time` against `maxAge`.
    /// - Throws: `unauthenticated` naming the failed check.
    public func validateIDToken(_ token: String, nonce: String?, accessToken: String? = nil, maxAge: Int? = nil) async throws -> JWTClaims {
        guard let keys else { throw NimbusError(.failedPrecondition, "\(provider.issuer) publishes no JWKS; ID tokens cannot be verified") }
        var algorithms = configuration.idTokenAlgorithms
        let listed = Set(provider.idTokenSigningAlgorithms.compactMap(JWSAlgorithm.init(rawValue:)))
        if !listed.isEmpty { algorithms.formIntersection(listed) }
        let verifier = JWTVerifier(keys: keys, configuration: .init(issuers: [provider.issuer], audiences: [configuration.clientID], algorithms: algorithms,
                                                                    leeway: configuration.leeway, requiredClaims: ["sub", "iat"]), now: now)
        let verified = try await verifier.verify(token)
        let claims = verified.claims
        let audiences = claims.audience
        if audiences.count > 1 || claims["azp"] != nil {
            guard claims["azp"]?.stringValue == configuration.clientID else {
                throw NimbusError(.unauthenticated, "the ID token's authorized party (azp) is \(claims["azp"]?.stringValue ?? "missing"), not this client")
            }
        }
        if let nonce {
            guard let sent = claims["nonce"]?.stringValue, ConstantTime.equals(Array(sent.utf8), Array(nonce.utf8)) else {
                throw NimbusError(.unauthenticated, "the ID token's nonce does not match the request's (a replayed or injected ID token)")
            }
        }
        if let accessToken, let atHash = claims["at_hash"]?.stringValue {
            guard atHash == Self.leftHalfHash(accessToken, algorithm: verified.algorithm) else {
                throw NimbusError(.unauthenticated, "the ID token's at_hash does not match the access token (a substituted access token)")
            }
        }
        if let maxAge {
            guard let authTime = claims["auth_time"]?.numberValue else {
                throw NimbusError(.unauthenticated, "max_age was asked and the ID token has no auth_time")
            }
            guard now().timeIntervalSince1970 - authTime <= Double(maxAge) + configuration.leeway.nimbusSeconds else {
                throw NimbusError(.unauthenticated, "the user signed in longer ago than max_age allows")
            }
        }
        return claims
    }

    /// `at_hash`/`c_hash`: base64url of the left half of the hash the ID token's algorithm uses.
    static func leftHalfHash(_ value: String, algorithm: JWSAlgorithm) -> String {
        let bytes = Array(value.utf8)
        let digest: [UInt8] = switch algorithm {
        case .rs384, .ps384, .es384, .hs384: Array(SHA384.hash(data: bytes))
        case .rs512, .ps512, .es512, .hs512, .eddsa: Array(SHA512.hash(data: bytes))
        default: Array(SHA256.hash(data: bytes))
        }
        return Base64URL.encode(digest.prefix(digest.count / 2))
    }

    private func validated(_ tokens: OAuth2Tokens, nonce: String?, maxAge: Int?, requireIDToken: Bool) async throws -> OAuth2Tokens {
        var tokens = tokens
        if let idToken = tokens.idToken {
            tokens.idTokenClaims = try await validateIDToken(idToken, nonce: nonce, accessToken: tokens.accessToken.reveal(), maxAge: maxAge)
        } else if requireIDToken && provider.isOpenIDProvider {
            throw NimbusError(.unauthenticated, "the openid scope was asked and \(provider.issuer) issued no ID token")
        }
        return tokens
    }

    // MARK: - Token endpoint

    private func tokenRequest(_ form: [String: String], scopes: [String], what: String, safeToRetry: Bool) async throws -> OAuth2Tokens {
        let answer = try await post(provider.tokenEndpoint, form: form, what: what, safeToRetry: safeToRetry)
        guard let access = answer["access_token"]?.stringValue, !access.isEmpty else {
            throw NimbusError(.internal, "\(provider.issuer) answered \(what) without an access_token")
        }
        let type = answer["token_type"]?.stringValue ?? "Bearer"
        guard type.lowercased() == "bearer" || type.lowercased() == "dpop" else {
            throw NimbusError(.internal, "\(provider.issuer) issued a '\(type)' token; only bearer tokens are supported")
        }
        let lifetime = answer["expires_in"]?.numberValue ?? answer["expires_in"]?.stringValue.flatMap(Double.init)
        let granted = answer["scope"]?.stringValue.map(Self.scopes) ?? Set(scopes)
        var extra = answer
        for name in ["access_token", "token_type", "expires_in", "refresh_token", "id_token", "scope"] { extra[name] = nil }
        return OAuth2Tokens(accessToken: Secret(access), tokenType: type, expiresAt: lifetime.map { now().addingTimeInterval($0) },
                            refreshToken: answer["refresh_token"]?.stringValue.map(Secret.init), idToken: answer["id_token"]?.stringValue,
                            idTokenClaims: nil, scopes: granted, extra: extra)
    }

    private func post(_ endpoint: String, form: [String: String], what: String, safeToRetry: Bool, expectJSON: Bool = true) async throws -> [String: JSONValue] {
        var form = form
        var headers: [(String, String)] = []
        switch configuration.authentication {
        case .none:
            form["client_id"] = configuration.clientID
        case .clientSecretBasic(let secret):
            let pair = FormEncoder.escape(configuration.clientID) + ":" + FormEncoder.escape(secret.reveal())
            headers.append(("Authorization", "Basic " + Data(pair.utf8).base64EncodedString()))
        case .clientSecretPost(let secret):
            form["client_id"] = configuration.clientID
            form["client_secret"] = secret.reveal()
        case .privateKeyJWT(let keys, let keyID):
            var claims = JWTClaims(["jti": .string(Self.random())])
            claims.issuer = configuration.clientID
            claims.subject = configuration.clientID
            claims.audience = [provider.tokenEndpoint]
            form["client_id"] = configuration.clientID
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = try keys.sign(claims, keyID: keyID, expiresIn: .seconds(60), now: now())
        }
        let who = "\(what) of client '\(configuration.clientID)'"
        if expectJSON {
            return try await OAuth2TokenEndpoint.exchange(http, url: endpoint, form: form, headers: headers, who: who, safeToRetry: safeToRetry)
        }
        _ = try await OAuth2TokenEndpoint.post(http, url: endpoint, form: form, headers: headers, who: who, safeToRetry: safeToRetry)
        return [:]
    }

    // MARK: - Helpers

    /// The scopes of a token answer: space-separated (RFC 6749 §3.3), or comma-separated as GitHub answers them.
    static func scopes(_ text: String) -> Set<String> {
        let separator: Character = text.contains(" ") || !text.contains(",") ? " " : ","
        return Set(text.split(separator: separator).map(String.init))
    }

    /// A random base64url string of `bytes` bytes (128 bits by default) from the system's secure generator.
    static func random(bytes: Int = 16) -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// The S256 code challenge of a verifier (RFC 7636 §4.2).
    static func challenge(_ verifier: String) -> String { Base64URL.encode(SHA256.hash(data: Array(verifier.utf8))) }

    /// The query (or fragment) parameters of a callback URL.
    static func parameters(of url: String) -> [String: String] {
        var values: [String: String] = [:]
        let components = URLComponents(string: url)
        for item in components?.queryItems ?? [] where values[item.name] == nil { values[item.name] = item.value ?? "" }
        if values.isEmpty, let fragment = components?.fragment, let parsed = URLComponents(string: "?" + fragment) {
            for item in parsed.queryItems ?? [] where values[item.name] == nil { values[item.name] = item.value ?? "" }
        }
        return values
    }
}

