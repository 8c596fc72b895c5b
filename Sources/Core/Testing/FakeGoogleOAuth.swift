import _CryptoExtras
import Foundation
import NimbusCore
import NimbusHTTP
import Synchronization

/// A local Google OAuth2 token endpoint that verifies each service-account assertion (RS256 JWT) with the
/// account's public key, and refresh-token grants of an `authorized_user` (`user-refresh` / `user-secret`).
public final class FakeGoogleOAuth: Sendable {
    public let server: FakeHTTPServer
    let key: _RSA.Signing.PrivateKey
    /// Tokens issued so far.
    public let issued = Mutex(0)
    /// What was wrong with refused assertions.
    public let problems = Mutex<[String]>([])
    /// The service account's email.
    public let email = "runner@nimbus-test.iam.gserviceaccount.com"
    /// The scope assertions must ask for.
    public let scope: String

    /// Starts the endpoint; assertions must be signed by the account's key (`privateKeyPEM`, id `key-1`) and ask for `scope`.
    public init(scope: String = "https://www.googleapis.com/auth/devstorage.read_write") async throws {
        self.scope = scope
        key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        server = try await FakeHTTPServer.start()
        let publicKey = key.publicKey
        let tokenURL = server.baseURL + "/token"
        server.route(.POST, "/token") { [self] request in
            let form = Dictionary(FormDecoder.pairs(request.bodyText), uniquingKeysWith: { $1 })
            if form["grant_type"] == "refresh_token" {
                guard form["refresh_token"] == "user-refresh", form["client_secret"] == "user-secret" else {
                    return .json(400, #"{"error":"invalid_grant","error_description":"Bad Request"}"#)
                }
                return .json(200, #"{"access_token":"user-token","expires_in":3599,"token_type":"Bearer"}"#)
            }
            guard form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer", let assertion = form["assertion"] else {
                return .json(400, #"{"error":"unsupported_grant_type"}"#)
            }
            let parts = assertion.split(separator: ".").map(String.init)
            guard parts.count == 3, let signature = Base64URL.decode(parts[2]), let header = Base64URL.decode(parts[0]).flatMap({ try? JSONValue.parse($0) }),
                  let claims = Base64URL.decode(parts[1]).flatMap({ try? JSONValue.parse($0) }) else {
                return .json(400, #"{"error":"invalid_grant","error_description":"malformed assertion"}"#)
            }
            let valid = publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: Array("\(parts[0]).\(parts[1])".utf8),
                                                   padding: .insecurePKCS1v1_5)
            var found: [String] = []
            if !valid { found.append("bad signature") }
            if header["alg"] != "RS256" || header["kid"] != "key-1" { found.append("header \(header)") }
            if claims["iss"] != .string(email) || claims["aud"] != .string(tokenURL) { found.append("claims \(claims)") }
            if claims["scope"] != .string(scope) { found.append("scope \(claims["scope"] ?? .null)") }
            if let iat = claims["iat"]?.numberValue, let exp = claims["exp"]?.numberValue, exp - iat != 3600 { found.append("lifetime \(exp - iat)") }
            guard found.isEmpty else {
                problems.withLock { $0 += found }
                return .json(400, #"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#)
            }
            let number = issued.withLock { $0 += 1; return $0 }
            return .json(200, .object(["access_token": .string("sa-token-\(number)"), "expires_in": 3599, "token_type": "Bearer"]))
        }
    }

    /// The account's private key (PKCS #8 PEM), as a service-account JSON carries it.
    public var privateKeyPEM: String { key.pkcs8PEMRepresentation }
    /// The token endpoint.
    public var tokenURL: String { server.baseURL + "/token" }
}
