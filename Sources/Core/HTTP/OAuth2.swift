import Foundation
import NIOCore
import NIOHTTP1
import NimbusCore

/// A short-lived access token, fetched when needed and reused until shortly before it expires.
/// Concurrent callers share one fetch; a failed fetch is not cached.
///
/// Vendor adapters build on it: PayPal and Azure (client credentials), Google (a signed JWT
/// exchanged for a token), any OAuth2 API.
///
/// ```swift
/// let tokens = AccessTokenCache(refreshAhead: .seconds(300)) { try await oauth.fetchToken() }
/// let client = NimbusHTTPClient(configuration: .init(service: "paypal", auth: tokens.bearerAuth))
/// ```
public actor AccessTokenCache {
    /// A token and how long it lives.
    public struct Token: Sendable {
        /// The token. Never logged.
        public var value: Secret<String>
        /// Its lifetime from when it was issued.
        public var expiresIn: Duration
        /// Creates a token.
        public init(value: Secret<String>, expiresIn: Duration) {
            self.value = value
            self.expiresIn = expiresIn
        }
    }

    private let cache: ExpiringValueCache<Secret<String>>

    /// How many tokens were fetched (for tests and metrics).
    public var fetchCount: Int { get async { await cache.fetchCount } }

    /// Creates a cache. A token is renewed once less than `refreshAhead` of its life remains.
    public init(refreshAhead: Duration = .seconds(300), now: @escaping @Sendable () -> Date = { Date() },
                fetch: @escaping @Sendable () async throws -> Token) {
        cache = ExpiringValueCache(refreshAhead: refreshAhead, now: now) {
            let issued = now()
            let token = try await fetch()
            return (token.value, issued.addingTimeInterval(token.expiresIn.nimbusSeconds))
        }
    }

    /// A valid token: the cached one, or a new one (one fetch, however many callers wait for it).
    public func current() async throws -> Secret<String> { try await cache.value() }

    /// Forgets the cached token (after the API answered 401 with it).
    public func invalidate() async { await cache.invalidate() }

    /// `Authorization: Bearer <current token>` on every attempt.
    public nonisolated var bearerAuth: AuthMiddleware {
        AuthMiddleware { [("Authorization", try await self.current().map { "Bearer " + $0 })] }
    }
}

/// The OAuth2 client-credentials grant (RFC 6749 §4.4): the client's id and secret in HTTP Basic
/// auth, `grant_type=client_credentials` in a form body, a JSON token in return.
///
/// ```swift
/// let grant = OAuth2ClientCredentials(tokenURL: "https://api-m.paypal.com/v1/oauth2/token", clientID: id, clientSecret: Secret(secret))
/// let tokens = AccessTokenCache { try await grant.fetchToken() }
/// ```
public struct OAuth2ClientCredentials: Sendable {
    /// The token endpoint.
    public var tokenURL: String
    /// The client id.
    public var clientID: String
    /// The client secret. Never logged.
    public var clientSecret: Secret<String>
    /// Scopes to ask for (space-separated on the wire), if the server wants them.
    public var scopes: [String]
    private let http: NimbusHTTPClient

    /// Creates the grant; `http` sends the token requests (its retries apply).
    public init(tokenURL: String, clientID: String, clientSecret: Secret<String>, scopes: [String] = [], http: NimbusHTTPClient) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scopes = scopes
        self.http = http
    }

    /// Asks for a token.
    /// - Throws: `unauthenticated` when the server refuses the client (`invalid_client`), or the server's error mapped.
    public func fetchToken() async throws -> AccessTokenCache.Token {
        var form = ["grant_type": "client_credentials"]
        if !scopes.isEmpty { form["scope"] = scopes.joined(separator: " ") }
        let basic = "Basic " + Data("\(clientID):\(clientSecret.reveal())".utf8).base64EncodedString()
        return try await OAuth2TokenEndpoint.request(http, url: tokenURL, form: form, headers: [("Authorization", basic)], who: "the client credentials of '\(clientID)'")
    }
}

/// An OAuth2 token endpoint (RFC 6749 §5): a form POST answered by `access_token` and `expires_in` (a number,
/// or a string as Azure's managed identity sends it), or by `error` and `error_description`. Google, Entra ID,
/// PayPal and the client-credentials grant above all go through here.
public enum OAuth2TokenEndpoint {
    /// Posts `form` (and `headers`) to `url` and reads the token. `who` names the client in errors (never its secret).
    /// - Throws: `unauthenticated` when the server refuses the client or grant; `unavailable` for 5xx.
    public static func request(_ http: NimbusHTTPClient, url: String, form: [String: String], headers: [(String, String)] = [],
                               who: String) async throws -> AccessTokenCache.Token {
        let body = try await exchange(http, url: url, form: form, headers: headers, who: who, safeToRetry: true)
        return try token(Array(JSONValue.object(body).description.utf8), who: who)
    }

    /// Posts `form` to a token endpoint and returns the JSON object it answered with, or throws its
    /// OAuth2 error (RFC 6749 §5.2) mapped: `invalid_client`, `unauthorized_client`, `invalid_grant` and
    /// 400/401 answers are `unauthenticated`, 5xx `unavailable`. The error keeps the server's `error` code
    /// (in `underlying`, as ``OAuth2ErrorResponse``). `safeToRetry` says whether asking again is harmless
    /// (a client-credentials token is; a code exchange or a rotating refresh is not).
    public static func exchange(_ http: NimbusHTTPClient, url: String, form: [String: String], headers: [(String, String)] = [],
                                who: String, safeToRetry: Bool) async throws -> [String: JSONValue] {
        let body = try await post(http, url: url, form: form, headers: headers, who: who, safeToRetry: safeToRetry)
        guard case .object(let object)? = try? JSONValue.parse(body) else {
            throw NimbusError(.internal, "\(http.configuration.service) answered \(who) with a body that is not a JSON object")
        }
        // GitHub answers token and device-polling errors with 200 OK and an `error` field: an
        // answer with `error` and no `access_token` is a refusal, whatever its status.
        if let code = object["error"]?.stringValue, object["access_token"] == nil {
            throw refusal(code: code, description: object["error_description"]?.stringValue, status: 400, service: http.configuration.service, who: who, retryAfter: nil)
        }
        return object
    }

    /// Posts `form` to an OAuth2 endpoint (token, revocation, introspection, device authorization)
    /// and returns the answer's body; a refusal throws as ``exchange(_:url:form:headers:who:safeToRetry:)`` does.
    public static func post(_ http: NimbusHTTPClient, url: String, form: [String: String], headers: [(String, String)] = [],
                            who: String, safeToRetry: Bool) async throws -> [UInt8] {
        var request = NimbusHTTPRequest(.POST, url, operation: "oauth2 token")
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = ByteBuffer(string: form.sorted { $0.key < $1.key }.map { "\(FormEncoder.escape($0.key))=\(FormEncoder.escape($0.value))" }.joined(separator: "&"))
        request.safeToRetry = safeToRetry
        let response = try await http.send(request)
        let body = Array(try await response.collect(upTo: 256 * 1024).readableBytesView)
        guard response.isSuccess else { throw error(response, body: body, service: http.configuration.service, who: who) }
        return body
    }

    /// The `NimbusError` for an OAuth2 error answer (RFC 6749 §5.2) from any OAuth2 endpoint.
    public static func error(_ response: NimbusHTTPResponse, body: [UInt8], service: String, who: String) -> NimbusError {
        let json = try? JSONValue.parse(body)
        return refusal(code: json?["error"]?.stringValue ?? "HTTP \(response.status.code)", description: json?["error_description"]?.stringValue,
                       status: Int(response.status.code), service: service, who: who, retryAfter: response.retryAfter())
    }

    /// The `NimbusError` for an OAuth2 error code answered with `status`.
    static func refusal(code: String, description: String?, status: Int, service: String, who: String, retryAfter: Duration?) -> NimbusError {
        let description = description.map { String($0.prefix(300)) } ?? ""
        let mapped: NimbusError.Code = status >= 500 ? .unavailable
            : ["invalid_client", "unauthorized_client", "invalid_grant"].contains(code) || [400, 401].contains(status)
            ? .unauthenticated : HTTPStatusMapping.code(for: HTTPResponseStatus(statusCode: status))
        return NimbusError(mapped, "\(service) refused \(who): \(code) \(description)"
                           + (code == "invalid_client" ? "; check the client id and secret" : ""),
                           underlying: OAuth2ErrorResponse(error: code, description: description), retryAfter: retryAfter)
    }

    /// Reads `access_token`, `token_type` (bearer only) and `expires_in` (default one hour).
    public static func token(_ body: [UInt8], who: String) throws -> AccessTokenCache.Token {
        guard let json = try? JSONValue.parse(body), let token = json["access_token"]?.stringValue, !token.isEmpty else {
            throw NimbusError(.internal, "the token endpoint answered no access_token for \(who)")
        }
        if let type = json["token_type"]?.stringValue, type.lowercased() != "bearer" {
            throw NimbusError(.internal, "the token endpoint issued a '\(type)' token for \(who); only bearer tokens are supported")
        }
        let lifetime = json["expires_in"]?.numberValue ?? json["expires_in"]?.stringValue.flatMap(Double.init) ?? 3600
        return AccessTokenCache.Token(value: Secret(token), expiresIn: .seconds(max(0, lifetime)))
    }
}

/// An OAuth2 error answer (RFC 6749 §5.2, RFC 8628 §3.5): its `error` code and description. The
/// `underlying` of the `NimbusError`s that OAuth2 endpoints' refusals become.
public struct OAuth2ErrorResponse: Error, Sendable, Hashable, CustomStringConvertible {
    /// The `error` code (`invalid_grant`, `authorization_pending`, `slow_down`, …).
    public var error: String
    /// The `error_description`, if any.
    public var description: String

    /// Creates an error answer.
    public init(error: String, description: String = "") {
        self.error = error
        self.description = description
    }
}
