import _CryptoExtras
import Crypto
import Foundation
import NIOHTTP1
import NimbusCore
import NimbusGCP
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

extension FakeGoogleOAuth {
    var account: GCPServiceAccount {
        GCPServiceAccount(clientEmail: email, privateKeyID: "key-1", privateKey: Secret(privateKeyPEM), tokenURI: tokenURL, projectID: "nimbus-test")
    }
}

@Suite("GCP credentials", .timeLimit(.minutes(2)))
struct GCPCredentialTests {
    @Test func aServiceAccountJWTIsVerifiedByTheTokenEndpointAndTheTokenReused() async throws {
        let oauth = try await FakeGoogleOAuth()
        defer { Task { await oauth.server.shutdown() } }
        let api = try await FakeHTTPServer.start()
        defer { Task { await api.shutdown() } }
        let seen = Mutex<[String]>([])
        api.route(.GET, "/storage/v1/b/x") { request in
            seen.withLock { $0.append(request.header("authorization") ?? "") }
            return .json(200, #"{"name":"x"}"#)
        }
        let source = ServiceAccountTokenSource(account: oauth.account, scopes: ["https://www.googleapis.com/auth/devstorage.read_write"])
        let gcp = try GCPClient(configuration: .init(tokens: source))
        for _ in 0..<3 { _ = try await gcp.json(.GET, api.baseURL + "/storage/v1/b/x") }
        #expect(oauth.problems.withLock { $0 }.isEmpty, "\(oauth.problems.withLock { $0 })")
        #expect(oauth.issued.withLock { $0 } == 1, "one exchange, the token cached")
        #expect(seen.withLock { $0 } == Array(repeating: "Bearer sa-token-1", count: 3))

        // A revoked token: the API answers 401 once, a new token is fetched, the call goes through.
        let revoked = Mutex(true)
        api.route(.GET, "/storage/v1/b/y") { request in
            if request.header("authorization") == "Bearer sa-token-1", revoked.withLock({ $0 }) {
                revoked.withLock { $0 = false }
                return .json(401, #"{"error":{"code":401,"message":"Invalid Credentials","status":"UNAUTHENTICATED"}}"#)
            }
            return .json(200, #"{"name":"y"}"#)
        }
        #expect(try await gcp.json(.GET, api.baseURL + "/storage/v1/b/y")["name"] == "y")
        #expect(oauth.issued.withLock { $0 } == 2)
    }

    @Test func applicationDefaultCredentialsReadTheFileTheMetadataServerAndRefreshTokens() async throws {
        let oauth = try await FakeGoogleOAuth()
        defer { Task { await oauth.server.shutdown() } }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("sa.json")
        let json: JSONValue = ["type": "service_account", "project_id": "nimbus-test", "private_key_id": "key-1",
                               "private_key": .string(oauth.privateKeyPEM), "client_email": .string(oauth.email),
                               "token_uri": .string(oauth.server.baseURL + "/token")]
        try Data(json.description.utf8).write(to: file)
        let adc = try ApplicationDefaultCredentials(scopes: ["https://www.googleapis.com/auth/devstorage.read_write"],
                                                    environment: ["GOOGLE_APPLICATION_CREDENTIALS": file.path, "HOME": directory.path])
        #expect(adc.projectID == "nimbus-test")
        #expect(try await adc.fetchToken().value.reveal() == "sa-token-1")
        let user = directory.appendingPathComponent("user.json")
        try Data(#"{"type":"authorized_user","client_id":"cid","client_secret":"user-secret","refresh_token":"user-refresh","token_uri":"\#(oauth.server.baseURL)/token"}"#.utf8).write(to: user)
        let userADC = try ApplicationDefaultCredentials(environment: ["GOOGLE_APPLICATION_CREDENTIALS": user.path, "HOME": directory.path])
        #expect(try await userADC.fetchToken().value.reveal() == "user-token")
        let badUser = directory.appendingPathComponent("bad.json")
        try Data(#"{"type":"authorized_user","client_id":"cid","client_secret":"wrong","refresh_token":"user-refresh","token_uri":"\#(oauth.server.baseURL)/token"}"#.utf8).write(to: badUser)
        do {
            _ = try await ApplicationDefaultCredentials(environment: ["GOOGLE_APPLICATION_CREDENTIALS": badUser.path]).fetchToken()
            Issue.record("a refused refresh token is unauthenticated")
        } catch let error as NimbusError {
            #expect(error.code == .unauthenticated && error.message.contains("invalid_grant") && !error.description.contains("wrong"))
        }
        #expect(throws: NimbusError.self) { try ApplicationDefaultCredentials(environment: ["GOOGLE_APPLICATION_CREDENTIALS": directory.appendingPathComponent("missing.json").path]) }
        try Data(#"{"type":"external_account"}"#.utf8).write(to: badUser)
        #expect(throws: NimbusError.self) { try ApplicationDefaultCredentials(environment: ["GOOGLE_APPLICATION_CREDENTIALS": badUser.path]) }

        // No file: the metadata server.
        let metadata = try await FakeHTTPServer.start()
        defer { Task { await metadata.shutdown() } }
        metadata.route(.GET, "/computeMetadata/v1/instance/service-accounts/default/token") { request in
            request.header("metadata-flavor") == "Google" ? .json(200, #"{"access_token":"gce-token","expires_in":3000,"token_type":"Bearer"}"#) : .text(403, "no flavor")
        }
        let host = metadata.baseURL.replacingOccurrences(of: "http://", with: "")
        let gce = try ApplicationDefaultCredentials(environment: ["HOME": directory.path, "GCE_METADATA_HOST": host])
        #expect(try await gce.fetchToken().value.reveal() == "gce-token")
    }

    @Test func selfSignedJWTsCarryTheAudienceAndVerify() async throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let account = GCPServiceAccount(clientEmail: "sa@p.iam.gserviceaccount.com", privateKeyID: "k", privateKey: Secret(key.pkcs8PEMRepresentation))
        let token = try await SelfSignedJWTTokenSource(account: account, audience: "https://storage.googleapis.com/").fetchToken().value.reveal()
        let parts = token.split(separator: ".").map(String.init)
        #expect(parts.count == 3)
        let claims = try JSONValue.parse(Base64URL.decode(parts[1]) ?? [])
        #expect(claims["aud"] == "https://storage.googleapis.com/" && claims["sub"] == "sa@p.iam.gserviceaccount.com")
        #expect(key.publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: Base64URL.decode(parts[2]) ?? []),
                                               for: Array("\(parts[0]).\(parts[1])".utf8), padding: .insecurePKCS1v1_5))
        let broken = GCPServiceAccount(clientEmail: "x", privateKeyID: nil, privateKey: Secret("not a pem"))
        await #expect(throws: NimbusError.self) { try await SelfSignedJWTTokenSource(account: broken, audience: "a").fetchToken() }
    }
}

@Suite("GCP REST helpers", .timeLimit(.minutes(2)))
struct GCPRestTests {
    @Test func googleErrorsMapAndOperationsArePolled() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.GET, "/v1/things/missing", reply: .json(404, #"{"error":{"code":404,"message":"Thing missing not found","status":"NOT_FOUND"}}"#))
        server.route(.GET, "/v1/things/limited", reply: .json(403, #"{"error":{"code":403,"message":"Rate","errors":[{"reason":"rateLimitExceeded"}]}}"#))
        server.route(.GET, "/v1/operations/op1", replies: [.json(200, #"{"name":"op1","done":false}"#), .json(200, #"{"name":"op1","done":true,"response":{"id":"42"}}"#)])
        server.route(.GET, "/v1/operations/op2", reply: .json(200, #"{"name":"op2","done":true,"error":{"code":9,"message":"quota","status":"FAILED_PRECONDITION"}}"#))
        let gcp = try GCPClient(configuration: .init(anonymous: true, retry: .none))
        for (path, code) in [("/v1/things/missing", NimbusError.Code.notFound), ("/v1/things/limited", .resourceExhausted)] {
            do {
                _ = try await gcp.json(.GET, server.baseURL + path)
                Issue.record("\(path) must fail")
            } catch let error as NimbusError { #expect(error.code == code, "\(path): \(error)") }
        }
        #expect(try await gcp.waitForOperation(server.baseURL + "/v1/operations/op1", every: .milliseconds(10))["id"] == "42")
        await #expect(throws: NimbusError.self) { try await gcp.waitForOperation(server.baseURL + "/v1/operations/op2", every: .milliseconds(10)) }
    }
}

@Suite("Cloud Storage against gcp-storage-emulator", .requires(.gcs), .timeLimit(.minutes(2)))
struct GCSEmulatorTests {
    @Test func bucketsUploadsDownloadsAndPagedLists() async throws {
        let base = try Peer.gcs.url()
        let gcp = try GCPClient(configuration: .init(anonymous: true))
        let bucket = "nimbus-\(UUID().uuidString.lowercased().prefix(8))"
        let created = try await gcp.json(.POST, base + "/storage/v1/b", query: [("project", "nimbus-test")], body: ["name": .string(bucket)])
        #expect(created["name"] == .string(bucket))
        do {
            _ = try await gcp.json(.POST, base + "/storage/v1/b", query: [("project", "nimbus-test")], body: ["name": .string(bucket)])
            Issue.record("a second bucket of the same name is alreadyExists")
        } catch let error as NimbusError { #expect(error.code == .alreadyExists, "\(error)") }
        for name in ["a.txt", "dir/b.txt", "dir/c d.txt", "e.txt", "f.txt"] {
            let object = try await gcp.send(.POST, base + "/upload/storage/v1/b/\(bucket)/o", query: [("uploadType", "media"), ("name", name)],
                                            headers: [("Content-Type", "text/plain")], body: Array("content of \(name)".utf8))
            #expect(try JSONValue.parse(object.body)["name"] == .string(name))
        }
        // A resumable upload in three chunks of 256 KiB.
        let big = (0..<(700 * 1024)).map { UInt8($0 % 251) }
        let uploaded = try await gcp.uploadResumable(to: base + "/upload/storage/v1/b/\(bucket)/o", query: [("name", "big.bin")], metadata: ["name": "big.bin"],
                                                     bytes: big, contentType: "application/octet-stream", chunkSize: 256 * 1024)
        #expect(uploaded["name"] == "big.bin" && uploaded["size"] == .string(String(big.count)), "\(uploaded)")
        let downloaded = try await gcp.send(.GET, base + "/download/storage/v1/b/\(bucket)/o/big.bin", query: [("alt", "media")])
        #expect(downloaded.body == big)
        let nested = try await gcp.send(.GET, base + "/download/storage/v1/b/\(bucket)/o/" + "dir/c d.txt".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!,
                                        query: [("alt", "media")])
        #expect(String(decoding: nested.body, as: UTF8.self) == "content of dir/c d.txt")
        var names: [String] = []
        for try await item in gcp.pages(base + "/storage/v1/b/\(bucket)/o", query: [("maxResults", "2")]) { names.append(item["name"]?.stringValue ?? "") }
        #expect(Set(names) == ["a.txt", "dir/b.txt", "dir/c d.txt", "e.txt", "f.txt", "big.bin"], "\(names)")
        do {
            _ = try await gcp.send(.GET, base + "/storage/v1/b/\(bucket)/o/missing.txt")
            Issue.record("a missing object is notFound")
        } catch let error as NimbusError { #expect(error.code == .notFound, "\(error)") }
    }
}
