import _CryptoExtras
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP

/// Where Google access tokens come from.
public protocol GCPTokenSource: Sendable {
    /// A fresh token and how long it lives.
    func fetchToken() async throws -> AccessTokenCache.Token
}

/// A service account key (`"type": "service_account"`), as downloaded from the console.
public struct GCPServiceAccount: Sendable, Hashable {
    /// `name@project.iam.gserviceaccount.com`.
    public var clientEmail: String
    /// The key's id (the JWT `kid`).
    public var privateKeyID: String?
    /// The PEM private key. Never logged.
    public var privateKey: Secret<String>
    /// Where assertions are exchanged (`https://oauth2.googleapis.com/token`).
    public var tokenURI: String
    /// The project, if the file says.
    public var projectID: String?

    public static func == (lhs: GCPServiceAccount, rhs: GCPServiceAccount) -> Bool { lhs.clientEmail == rhs.clientEmail && lhs.privateKeyID == rhs.privateKeyID }
    public func hash(into hasher: inout Hasher) { hasher.combine(clientEmail) }

    /// Creates a service account.
    public init(clientEmail: String, privateKeyID: String?, privateKey: Secret<String>, tokenURI: String = "https://oauth2.googleapis.com/token", projectID: String? = nil) {
        self.clientEmail = clientEmail
        self.privateKeyID = privateKeyID
        self.privateKey = privateKey
        self.tokenURI = tokenURI
        self.projectID = projectID
    }

    /// An RS256-signed JWT with `claims` (and `iat`/`exp` one hour apart).
    public func signedJWT(claims: [String: JSONValue], now: Date = Date(), lifetime: TimeInterval = 3600) throws -> String {
        let key: _RSA.Signing.PrivateKey
        do { key = try _RSA.Signing.PrivateKey(pemRepresentation: privateKey.reveal()) } catch {
            throw NimbusError(.unauthenticated, "the private key of service account \(clientEmail) cannot be read: \(error)", underlying: error)
        }
        var header: [String: JSONValue] = ["alg": "RS256", "typ": "JWT"]
        if let privateKeyID { header["kid"] = .string(privateKeyID) }
        var body = claims
        let issued = Int(now.timeIntervalSince1970)
        body["iat"] = .number(Double(issued))
        body["exp"] = .number(Double(issued + Int(lifetime)))
        let signingInput = Base64URL.encode(Array(JSONValue.object(header).description.utf8)) + "." + Base64URL.encode(Array(JSONValue.object(body).description.utf8))
        let signature = try key.signature(for: Array(signingInput.utf8), padding: .insecurePKCS1v1_5)
        return signingInput + "." + Base64URL.encode(Array(signature.rawRepresentation))
    }
}

/// A service account's tokens: a signed JWT assertion exchanged at the account's `token_uri`
/// (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`).
public struct ServiceAccountTokenSource: GCPTokenSource {
    /// The account.
    public let account: GCPServiceAccount
    /// The OAuth scopes asked for.
    public let scopes: [String]
    let http: NimbusHTTPClient

    /// Creates a source.
    public init(account: GCPServiceAccount, scopes: [String], httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) {
        self.account = account
        self.scopes = scopes
        http = NimbusHTTPClient(configuration: .init(service: "gcp-oauth", timeout: .seconds(30)), httpClient: httpClient)
    }

    public func fetchToken() async throws -> AccessTokenCache.Token {
        let assertion = try account.signedJWT(claims: ["iss": .string(account.clientEmail), "scope": .string(scopes.joined(separator: " ")),
                                                       "aud": .string(account.tokenURI)])
        return try await OAuth2TokenEndpoint.request(http, url: account.tokenURI,
                                               form: ["grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion], who: account.clientEmail)
    }
}

/// Self-signed JWTs used directly as access tokens, without a token exchange — what Google APIs accept
/// for service accounts (`aud` = the API's root, or `scope`).
public struct SelfSignedJWTTokenSource: GCPTokenSource {
    /// The account.
    public let account: GCPServiceAccount
    /// The audience (`https://storage.googleapis.com/`), or `nil` to use `scopes`.
    public let audience: String?
    /// Scopes, when there is no audience.
    public let scopes: [String]

    /// Creates a source.
    public init(account: GCPServiceAccount, audience: String? = nil, scopes: [String] = []) {
        self.account = account
        self.audience = audience
        self.scopes = scopes
    }

    public func fetchToken() async throws -> AccessTokenCache.Token {
        var claims: [String: JSONValue] = ["iss": .string(account.clientEmail), "sub": .string(account.clientEmail)]
        if let audience { claims["aud"] = .string(audience) } else { claims["scope"] = .string(scopes.joined(separator: " ")) }
        return AccessTokenCache.Token(value: Secret(try account.signedJWT(claims: claims)), expiresIn: .seconds(3600))
    }
}

/// A user's refresh token (`"type": "authorized_user"`, from `gcloud auth application-default login`).
public struct AuthorizedUserTokenSource: GCPTokenSource {
    let clientID: String
    let clientSecret: Secret<String>
    let refreshToken: Secret<String>
    let tokenURI: String
    let http: NimbusHTTPClient

    /// Creates a source.
    public init(clientID: String, clientSecret: Secret<String>, refreshToken: Secret<String>, tokenURI: String = "https://oauth2.googleapis.com/token",
                httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) {
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.refreshToken = refreshToken
        self.tokenURI = tokenURI
        http = NimbusHTTPClient(configuration: .init(service: "gcp-oauth", timeout: .seconds(30)), httpClient: httpClient)
    }

    public func fetchToken() async throws -> AccessTokenCache.Token {
        try await OAuth2TokenEndpoint.request(http, url: tokenURI, form: ["grant_type": "refresh_token", "client_id": clientID,
                                                                   "client_secret": clientSecret.reveal(), "refresh_token": refreshToken.reveal()], who: clientID)
    }
}

/// The GCE/GKE/Cloud Run metadata server (`Metadata-Flavor: Google`); `GCE_METADATA_HOST` overrides its address.
public struct MetadataServerTokenSource: GCPTokenSource {
    let base: String
    let scopes: [String]
    let http: NimbusHTTPClient

    /// Creates a source.
    public init(scopes: [String] = [], environment: [String: String] = ProcessInfo.processInfo.environment, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) {
        base = "http://" + (environment["GCE_METADATA_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "metadata.google.internal")
        self.scopes = scopes
        http = NimbusHTTPClient(configuration: .init(service: "gce-metadata", timeout: .seconds(3)), httpClient: httpClient)
    }

    public func fetchToken() async throws -> AccessTokenCache.Token {
        var url = base + "/computeMetadata/v1/instance/service-accounts/default/token"
        if !scopes.isEmpty { url += "?scopes=" + scopes.map { FormEncoder.escape($0) }.joined(separator: ",") }
        var request = NimbusHTTPRequest(.GET, url, operation: "metadata token")
        request.headers.add(name: "Metadata-Flavor", value: "Google")
        let response: NimbusHTTPResponse
        do { response = try await http.send(request) } catch {
            throw NimbusError(.notFound, "no GCE metadata server at \(base) (not on Google Cloud?)", underlying: error as? NimbusError)
        }
        let body = Array(try await response.collect(upTo: 64 * 1024).readableBytesView)
        guard response.isSuccess else { throw NimbusError(.unauthenticated, "the metadata server answered \(response.status.code) for a token") }
        return try OAuth2TokenEndpoint.token(body, who: "the metadata server")
    }
}

/// Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`, the gcloud well-known file, then the metadata server.
public struct ApplicationDefaultCredentials: GCPTokenSource {
    /// The source found.
    public let source: any GCPTokenSource
    /// The project, when the credentials say (`project_id`, `quota_project_id`) or `GOOGLE_CLOUD_PROJECT`.
    public let projectID: String?

    /// Finds the credentials, as Google's libraries do.
    /// - Throws: `invalidArgument` for a credentials file that cannot be read.
    public init(scopes: [String] = ["https://www.googleapis.com/auth/cloud-platform"], environment: [String: String] = ProcessInfo.processInfo.environment,
                httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) throws {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let candidates = [environment["GOOGLE_APPLICATION_CREDENTIALS"], "\(home)/.config/gcloud/application_default_credentials.json"].compactMap { $0 }
        for (index, path) in candidates.enumerated() where !path.isEmpty {
            guard let data = FileManager.default.contents(atPath: path) else {
                if index == 0 && environment["GOOGLE_APPLICATION_CREDENTIALS"] != nil {
                    throw NimbusError(.invalidArgument, "GOOGLE_APPLICATION_CREDENTIALS points at \(path), which cannot be read")
                }
                continue
            }
            let (source, project) = try Self.parse(data, path: path, scopes: scopes, httpClient: httpClient)
            self.source = source
            projectID = environment["GOOGLE_CLOUD_PROJECT"] ?? project
            return
        }
        source = MetadataServerTokenSource(scopes: scopes, environment: environment, httpClient: httpClient)
        projectID = environment["GOOGLE_CLOUD_PROJECT"]
    }

    /// Reads a credentials file (`service_account` or `authorized_user`).
    public static func parse(_ data: Data, path: String = "credentials", scopes: [String], httpClient: HTTPClient = NimbusHTTPClient.defaultTransport) throws -> (any GCPTokenSource, String?) {
        guard let json = try? JSONValue.parse(data), let type = json["type"]?.stringValue else {
            throw NimbusError(.invalidArgument, "\(path) is not a Google credentials file (no \"type\")")
        }
        switch type {
        case "service_account":
            guard let email = json["client_email"]?.stringValue, let key = json["private_key"]?.stringValue else {
                throw NimbusError(.invalidArgument, "\(path): a service account needs client_email and private_key")
            }
            let account = GCPServiceAccount(clientEmail: email, privateKeyID: json["private_key_id"]?.stringValue, privateKey: Secret(key),
                                            tokenURI: json["token_uri"]?.stringValue ?? "https://oauth2.googleapis.com/token", projectID: json["project_id"]?.stringValue)
            return (ServiceAccountTokenSource(account: account, scopes: scopes, httpClient: httpClient), account.projectID)
        case "authorized_user":
            guard let id = json["client_id"]?.stringValue, let secret = json["client_secret"]?.stringValue, let refresh = json["refresh_token"]?.stringValue else {
                throw NimbusError(.invalidArgument, "\(path): authorized_user credentials need client_id, client_secret and refresh_token")
            }
            return (AuthorizedUserTokenSource(clientID: id, clientSecret: Secret(secret), refreshToken: Secret(refresh),
                                              tokenURI: json["token_uri"]?.stringValue ?? "https://oauth2.googleapis.com/token", httpClient: httpClient),
                    json["quota_project_id"]?.stringValue)
        default:
            throw NimbusError(.invalidArgument, "\(path): credentials of type '\(type)' are not supported (service_account, authorized_user)")
        }
    }

    public func fetchToken() async throws -> AccessTokenCache.Token { try await source.fetchToken() }
}


/// A token obtained elsewhere (`gcloud auth print-access-token`, a sidecar, a test), used as it is
/// for an hour at a time.
///
/// ```swift
/// let gcp = try GCPClient(configuration: .init(tokens: GCPStaticToken(Secret(printedToken))))
/// ```
public struct GCPStaticToken: GCPTokenSource {
    let token: Secret<String>
    /// Wraps `token`.
    public init(_ token: Secret<String>) { self.token = token }
    public func fetchToken() async throws -> AccessTokenCache.Token { .init(value: token, expiresIn: .seconds(3600)) }
}
