import Crypto
import CryptoExtras
import Foundation
import NIOHTTP1
import NimbusAzure
import NimbusCore
import NimbusHTTP
import NimbusKMS
import NimbusKMSConformance
@testable import NimbusKMSAzure
import NimbusTesting
import Synchronization
import Testing

/// Key Vault keys (API 7.5) as Microsoft's REST description specifies them: RSA keys with versions,
/// `create`, `rotate`, latest-version `GET`, and `wrapkey`/`unwrapkey` with RSA-OAEP-256 done for
/// real (swift-crypto), so an altered ciphertext fails as it does in the service. Every request is
/// checked against the committed extract of `keys.json` first.
final class FakeKeyVaultKeys: Sendable {
    let server: FakeHTTPServer
    let token = "azure-test-token"
    /// Key versions by name, as DER (the private key type is not Sendable).
    let keys = Mutex<[String: [(id: String, der: Data)]]>([:])

    static let spec = OpenAPIRequestChecker.fixture("keyvault-keys-7.5", in: .module)

    static func start() async throws -> FakeKeyVaultKeys {
        let fake = FakeKeyVaultKeys(server: try await FakeHTTPServer.start())
        let checker = try spec.get()
        fake.server.refuseRequests(failing: { checker.check($0).map(\.description) }) { problems in error(400, "BadParameter", problems.joined(separator: "; ")) }
        fake.routes()
        return fake
    }

    private init(server: FakeHTTPServer) { self.server = server }

    static func error(_ status: Int, _ code: String, _ message: String) -> FakeHTTPServer.Reply { .json(status, ["error": ["code": .string(code), "message": .string(message)]]) }

    func bundle(_ name: String, _ version: String) -> JSONValue {
        ["key": ["kid": .string("\(server.baseURL)/keys/\(name)/\(version)"), "kty": "RSA", "key_ops": ["wrapKey", "unwrapKey"], "e": "AQAB"],
         "attributes": ["enabled": true, "recoveryLevel": "Recoverable+Purgeable"]]
    }

    func newVersion(_ name: String) throws -> (String, Data) {
        (UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), try _RSA.Encryption.PrivateKey(keySize: .bits3072).derRepresentation)
    }

    private func routes() {
        let auth: (@escaping FakeHTTPServer.Handler) -> FakeHTTPServer.Handler = { handler in
            { request in
                request.header("authorization") == "Bearer \(self.token)" ? try await handler(request)
                    : Self.error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
            }
        }
        let notFound: @Sendable (String) -> FakeHTTPServer.Reply = { name in Self.error(404, "KeyNotFound", "A key with (name/id) \(name) was not found in this key vault.") }
        server.route(.POST, "/keys/{name}/{verb}", handler: auth { request in
            let parts = request.path.split(separator: "/").map(String.init)
            let (name, verb) = (parts[1], parts[2])
            switch verb {
            case "create":
                let body = try request.json()
                guard body["kty"]?.stringValue == "RSA" else { return Self.error(400, "BadParameter", "the fake creates RSA keys only") }
                let (id, der) = try self.newVersion(name)
                self.keys.withLock { $0[name, default: []].append((id, der)) }
                return .json(200, self.bundle(name, id))
            case "rotate":
                guard self.keys.withLock({ $0[name] }) != nil else { return notFound(name) }
                let (id, der) = try self.newVersion(name)
                self.keys.withLock { $0[name]!.append((id, der)) }
                return .json(200, self.bundle(name, id))
            default:
                return Self.error(405, "MethodNotAllowed", "unknown operation \(verb)")
            }
        })
        server.route(.GET, "/keys/{name}", handler: auth { request in   // latest: GET /keys/NAME/
            let name = String(request.path.split(separator: "/")[1])
            guard let latest = self.keys.withLock({ $0[name]?.last }) else { return notFound(name) }
            return .json(200, self.bundle(name, latest.id))
        })
        server.route(.POST, "/keys/{name}/{version}/{operation}", handler: auth { request in
            let parts = request.path.split(separator: "/").map(String.init)
            let (name, version, operation) = (parts[1], parts[2], parts[3])
            guard let der = self.keys.withLock({ $0[name]?.first { $0.id == version }?.der }) else { return notFound("\(name)/\(version)") }
            let key = try _RSA.Encryption.PrivateKey(derRepresentation: der)
            let body = try request.json()
            guard body["alg"]?.stringValue == "RSA-OAEP-256", let value = body["value"]?.stringValue.flatMap(Base64URL.decode) else {
                return Self.error(400, "BadParameter", "alg must be RSA-OAEP-256 and value base64url")
            }
            let kid = JSONValue.string("\(self.server.baseURL)/keys/\(name)/\(version)")
            switch operation {
            case "wrapkey":
                let ciphertext = try key.publicKey.encrypt(value, padding: .PKCS1_OAEP_SHA256)
                return .json(200, ["kid": kid, "value": .string(Base64URL.encode(Array(ciphertext)))])
            case "unwrapkey":
                guard let plaintext = try? key.decrypt(value, padding: .PKCS1_OAEP_SHA256) else {
                    return Self.error(400, "BadParameter", "Operation unwrapKey failed: the ciphertext is invalid for this key.")
                }
                return .json(200, ["kid": kid, "value": .string(Base64URL.encode(Array(plaintext)))])
            default:
                return Self.error(405, "MethodNotAllowed", "unknown operation \(operation)")
            }
        })
    }
}

@Suite("Azure Key Vault keys as a KMS (fake checked against Key Vault 7.5 keys.json)", .timeLimit(.minutes(3)))
struct AzureKeyVaultKMSTests {
    static func driver(_ fake: FakeKeyVaultKeys) -> AzureKeyVaultKMS {
        AzureKeyVaultKMS(vault: AzureKeyVaultClient(vaultURL: fake.server.baseURL, credential: AzureStaticToken(Secret(fake.token)), retry: .none))
    }

    @Test("conformance", arguments: KMSConformance.checks)
    func conformance(_ check: KMSConformance.Check) async throws {
        let fake = try await FakeKeyVaultKeys.start()
        try await check.run(KMSConformance.Harness { Self.driver(fake) })
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("the context rides inside the RSA plaintext as a SHA-256 digest; a wrapped key names its kid")
    func binding() async throws {
        let fake = try await FakeKeyVaultKeys.start()
        let driver = Self.driver(fake)
        let key = try await driver.createKey(description: "binding")
        let dataKey = try await driver.generateDataKey(keyID: key, context: ["tenant": "acme"])
        let (kid, ciphertext) = try AzureKeyVaultKMS.unwrapped(dataKey.wrapped)
        #expect(kid.hasPrefix("\(fake.server.baseURL)/keys/\(key)/") && ciphertext.count == 384)
        let wrap = try #require(fake.server.requests.first { $0.path.hasSuffix("/wrapkey") }).json()
        #expect(Base64URL.decode(wrap["value"]?.stringValue ?? "")?.count == 64)
        #expect(AzureKeyVaultKMS.digest(["b": "2", "a": "1"]) == AzureKeyVaultKMS.digest(["a": "1", "b": "2"]))
        let refused = await #expect(throws: NimbusError.self) { _ = try await driver.decryptDataKey(dataKey.wrapped, context: ["tenant": "globex"]) }
        #expect(refused?.code == .permissionDenied)
        #expect(try await driver.decryptDataKey(dataKey.wrapped, context: ["tenant": "acme"]).plaintext.reveal() == dataKey.plaintext.reveal())
        await fake.server.shutdown()
    }
}
