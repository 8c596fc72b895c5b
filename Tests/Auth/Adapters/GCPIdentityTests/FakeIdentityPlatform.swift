import Crypto
import CryptoExtras
import Foundation
import NIOHTTP1
import NimbusAuth
import NimbusCore
import NimbusTesting
import Synchronization
import X509

/// Identity Platform as Google documents it: Identity Toolkit v1 (`accounts:signUp`,
/// `signInWithPassword`, `sendOobCode`, `update`, and the administrator `projects/{p}/accounts…`
/// methods), Secure Token's refresh grant with `validSince` revocation, errors as
/// `{"error": {"code", "message": "EMAIL_EXISTS"}}`, and ID tokens signed RS256 by a key whose
/// X.509 certificate is published as a `{kid: PEM}` map. Every Identity Toolkit request is checked
/// against the committed Discovery extract first; the refresh form against Secure Token's documented fields.
final class FakeIdentityPlatform: Sendable {
    let server: FakeHTTPServer
    let project = "nimbus-identity"
    let apiKey = "AIzaSyFake-Identity-Key"
    let adminToken = "ya29.fake-identity-admin"
    let kid = "fake-kid-1"
    let key: _RSA.Signing.PrivateKey
    let certificatePEM: String

    struct Account { var uid: String; var email: String; var password: String?; var verified: Bool; var disabled = false; var claims: [String: JSONValue] = [:]
                     var validSince = 0; var created = Date() }
    struct State {
        var accounts: [String: Account] = [:]             // by uid
        var refreshTokens: [String: (uid: String, issued: Int)] = [:]
        var codes: [String: String] = [:]                 // oobCode → uid
        var lastCode: String?
        var clock = Int(Date().timeIntervalSince1970)
    }
    let state = Mutex(State())

    static let discovery = Result { try DiscoveryRequestChecker(fixture: "identitytoolkit-v1", in: .module) }

    static func start() async throws -> FakeIdentityPlatform {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let name = try DistinguishedName { CommonName("securetoken.system.gserviceaccount.com") }
        let certificate = try Certificate(version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date() - 3600,
                                          notValidAfter: Date() + 86_400, issuer: name, subject: name, signatureAlgorithm: .sha256WithRSAEncryption,
                                          extensions: .init(), issuerPrivateKey: .init(key))
        let fake = FakeIdentityPlatform(server: try await FakeHTTPServer.start(), key: key, certificatePEM: try certificate.serializeAsPEM().pemString)
        let checker = try discovery.get()
        fake.server.refuseRequests(failing: { request in
            if request.path == "/certs" { return [] }
            if request.path == "/v1/token" {
                let form = (try? request.form())?.objectValue ?? [:]
                return Set(form.keys) == ["grant_type", "refresh_token"] && form["grant_type"] == "refresh_token" ? [] : ["the refresh form is grant_type=refresh_token&refresh_token=…"]
            }
            return checker.check(request)
        }) { problems in error(400, problems.joined(separator: "; ")) }
        fake.routes()
        return fake
    }

    private init(server: FakeHTTPServer, key: _RSA.Signing.PrivateKey, certificatePEM: String) {
        self.server = server
        self.key = key
        self.certificatePEM = certificatePEM
    }

    static func error(_ status: Int, _ message: String) -> FakeHTTPServer.Reply {
        .json(status, ["error": ["code": .number(Double(status)), "message": .string(message), "errors": [["message": .string(message), "domain": "global", "reason": "invalid"]]]])
    }

    func idToken(_ account: Account, now: Int) throws -> String {
        var claims: [String: JSONValue] = ["iss": .string("https://securetoken.google.com/\(project)"), "aud": .string(project), "auth_time": .number(Double(now)),
                                           "user_id": .string(account.uid), "sub": .string(account.uid), "iat": .number(Double(now)), "exp": .number(Double(now + 3600)),
                                           "email": .string(account.email), "email_verified": .bool(account.verified),
                                           "firebase": ["identities": ["email": [.string(account.email)]], "sign_in_provider": "password"]]
        for (name, value) in account.claims { claims[name] = value }
        let header = Base64URL.encode(Array(#"{"alg":"RS256","kid":"\#(kid)","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(Array(JSONValue.object(claims).description.utf8))
        let signature = try key.signature(for: Array("\(header).\(payload)".utf8), padding: .insecurePKCS1v1_5)
        return "\(header).\(payload).\(Base64URL.encode(signature.rawRepresentation))"
    }

    func session(_ account: Account, state: inout State) throws -> JSONValue {
        let refresh = "AMf-v" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        state.refreshTokens[refresh] = (account.uid, state.clock)
        return ["kind": "identitytoolkit#VerifyPasswordResponse", "localId": .string(account.uid), "email": .string(account.email), "idToken": .string(try idToken(account, now: Int(Date().timeIntervalSince1970))),
                "refreshToken": .string(refresh), "expiresIn": "3600", "registered": true]
    }

    func uid(ofIDToken token: String?) -> String? {
        guard let parts = token?.split(separator: "."), parts.count == 3, let bytes = Base64URL.decode(parts[1]) else { return nil }
        return (try? JSONValue.parse(bytes))?["sub"]?.stringValue
    }

    private func routes() {
        let endUser: (@escaping FakeHTTPServer.Handler) -> FakeHTTPServer.Handler = { handler in
            { request in request.header("x-goog-api-key") == self.apiKey ? try await handler(request) : Self.error(400, "API key not valid. Please pass a valid API key.") }
        }
        let admin: (@escaping FakeHTTPServer.Handler) -> FakeHTTPServer.Handler = { handler in
            { request in request.header("authorization") == "Bearer \(self.adminToken)" ? try await handler(request) : Self.error(401, "UNAUTHENTICATED") }
        }
        server.route(.GET, "/certs", reply: .json(200, .object([kid: .string(certificatePEM)]), headers: [("Cache-Control", "public, max-age=19000, must-revalidate, no-transform")]))
        server.route(.POST, "/v1/{method}", handler: endUser { request in
            let method = request.path.split(separator: ":").last.map(String.init) ?? ""
            let body = try request.json()
            return try self.state.withLock { state in
                state.clock = max(state.clock + 1, Int(Date().timeIntervalSince1970))
                switch method {
                case "signUp":
                    let email = body["email"]?.stringValue ?? ""
                    guard !state.accounts.values.contains(where: { $0.email == email }) else { return Self.error(400, "EMAIL_EXISTS") }
                    guard (body["password"]?.stringValue?.count ?? 0) >= 6 else { return Self.error(400, "WEAK_PASSWORD : Password should be at least 6 characters") }
                    let account = Account(uid: String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(28)), email: email, password: body["password"]?.stringValue, verified: false)
                    state.accounts[account.uid] = account
                    return .json(200, try self.session(account, state: &state))
                case "signInWithPassword":
                    guard let account = state.accounts.values.first(where: { $0.email == body["email"]?.stringValue }), account.password == body["password"]?.stringValue else {
                        return Self.error(400, "INVALID_LOGIN_CREDENTIALS")
                    }
                    guard !account.disabled else { return Self.error(400, "USER_DISABLED : The user account has been disabled by an administrator.") }
                    return .json(200, try self.session(account, state: &state))
                case "sendOobCode":
                    guard body["requestType"] == "VERIFY_EMAIL", let uid = self.uid(ofIDToken: body["idToken"]?.stringValue), let account = state.accounts[uid] else {
                        return Self.error(400, "INVALID_ID_TOKEN")
                    }
                    let code = UUID().uuidString
                    state.codes[code] = uid
                    state.lastCode = code
                    return .json(200, ["kind": "identitytoolkit#GetOobConfirmationCodeResponse", "email": .string(account.email)])
                case "update":
                    if let code = body["oobCode"]?.stringValue {
                        guard let uid = state.codes.removeValue(forKey: code), state.accounts[uid] != nil else { return Self.error(400, "INVALID_OOB_CODE") }
                        state.accounts[uid]!.verified = true
                        return .json(200, ["kind": "identitytoolkit#SetAccountInfoResponse", "email": .string(state.accounts[uid]!.email), "emailVerified": true])
                    }
                    guard let uid = self.uid(ofIDToken: body["idToken"]?.stringValue), state.accounts[uid] != nil else { return Self.error(400, "INVALID_ID_TOKEN") }
                    if let password = body["password"]?.stringValue { state.accounts[uid]!.password = password }
                    return .json(200, try self.session(state.accounts[uid]!, state: &state))
                default:
                    return Self.error(404, "unknown method \(method)")
                }
            }
        })
        server.route(.POST, "/v1/token") { request in
            guard request.header("x-goog-api-key") == self.apiKey else { return Self.error(400, "API key not valid. Please pass a valid API key.") }
            let token = (try request.form())["refresh_token"]?.stringValue ?? ""
            return try self.state.withLock { state in
                state.clock = max(state.clock + 1, Int(Date().timeIntervalSince1970))
                guard let entry = state.refreshTokens[token] else { return Self.error(400, "INVALID_REFRESH_TOKEN") }
                guard let account = state.accounts[entry.uid] else { return Self.error(400, "USER_NOT_FOUND") }
                guard !account.disabled else { return Self.error(400, "USER_DISABLED") }
                guard entry.issued >= account.validSince else { return Self.error(400, "TOKEN_EXPIRED") }
                return .json(200, ["expires_in": "3600", "token_type": "Bearer", "refresh_token": .string(token), "id_token": .string(try self.idToken(account, now: Int(Date().timeIntervalSince1970))),
                                   "user_id": .string(account.uid), "project_id": "1234567890", "access_token": .string(try self.idToken(account, now: Int(Date().timeIntervalSince1970)))])
            }
        }
        server.route(.POST, "/v1/projects/{p}/{method}", handler: admin { request in
            let method = request.path.split(separator: "/").last.map(String.init) ?? ""
            let body = try request.json()
            return self.state.withLock { state in
                state.clock = max(state.clock + 1, Int(Date().timeIntervalSince1970))
                switch method {
                case "accounts":
                    let email = body["email"]?.stringValue ?? ""
                    guard !state.accounts.values.contains(where: { $0.email == email }) else { return Self.error(400, "EMAIL_EXISTS") }
                    let account = Account(uid: String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(28)), email: email, password: body["password"]?.stringValue,
                                          verified: body["emailVerified"]?.boolValue ?? false)
                    state.accounts[account.uid] = account
                    return .json(200, ["kind": "identitytoolkit#SignupNewUserResponse", "localId": .string(account.uid), "email": .string(email)])
                case "accounts:lookup":
                    let emails = body["email"]?.arrayValue?.compactMap(\.stringValue) ?? [], uids = body["localId"]?.arrayValue?.compactMap(\.stringValue) ?? []
                    let found = state.accounts.values.filter { emails.contains($0.email) || uids.contains($0.uid) }
                    guard !found.isEmpty else { return .json(200, ["kind": "identitytoolkit#GetAccountInfoResponse"]) }
                    return .json(200, ["kind": "identitytoolkit#GetAccountInfoResponse", "users": .array(found.map { account in
                        var user: [String: JSONValue] = ["localId": .string(account.uid), "email": .string(account.email), "emailVerified": .bool(account.verified),
                                                         "disabled": .bool(account.disabled), "createdAt": .string(String(Int(account.created.timeIntervalSince1970 * 1000))),
                                                         "validSince": .string(String(account.validSince))]
                        if !account.claims.isEmpty { user["customAttributes"] = .string(JSONValue.object(account.claims).description) }
                        return .object(user)
                    })])
                case "accounts:update":
                    guard let uid = body["localId"]?.stringValue, state.accounts[uid] != nil else { return Self.error(400, "USER_NOT_FOUND") }
                    if let password = body["password"]?.stringValue { state.accounts[uid]!.password = password }
                    if let verified = body["emailVerified"]?.boolValue { state.accounts[uid]!.verified = verified }
                    if let disabled = body["disableUser"]?.boolValue { state.accounts[uid]!.disabled = disabled }
                    if let since = body["validSince"]?.stringValue.flatMap(Int.init) { state.accounts[uid]!.validSince = max(since, state.clock) }
                    if let custom = body["customAttributes"]?.stringValue {
                        guard let claims = (try? JSONValue.parse(Array(custom.utf8)))?.objectValue else { return Self.error(400, "INVALID_CLAIMS") }
                        state.accounts[uid]!.claims = claims
                    }
                    return .json(200, ["kind": "identitytoolkit#SetAccountInfoResponse", "localId": .string(uid), "email": .string(state.accounts[uid]!.email)])
                case "accounts:delete":
                    guard let uid = body["localId"]?.stringValue, state.accounts.removeValue(forKey: uid) != nil else { return Self.error(400, "USER_NOT_FOUND") }
                    return .json(200, ["kind": "identitytoolkit#DeleteAccountResponse"])
                default:
                    return Self.error(404, "unknown method \(method)")
                }
            }
        })
    }
}
