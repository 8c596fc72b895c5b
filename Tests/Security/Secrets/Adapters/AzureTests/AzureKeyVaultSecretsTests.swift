import Foundation
import NIOHTTP1
import NimbusAzure
import NimbusCore
import NimbusHTTP
import NimbusSecrets
import NimbusSecretsConformance
@testable import NimbusSecretsAzure
import NimbusTesting
import Synchronization
import Testing

struct StaticAzureToken: AzureTokenSource {
    let value: String
    func fetchToken(scope: String) async throws -> AccessTokenCache.Token {
        guard scope == "https://vault.azure.net/.default" else { throw NimbusError(.invalidArgument, "Key Vault tokens are for https://vault.azure.net/.default, not \(scope)") }
        return .init(value: Secret(value), expiresIn: .seconds(3600))
    }
}

/// Key Vault secrets (API 7.5) as Microsoft's REST description specifies them: versions with 32-hex
/// ids, soft delete then purge, `nextLink` paging (5 per page here, to exercise it), bearer auth
/// and the `{"error": {"code", "message"}}` body. Every request is checked against the committed
/// extract of `secrets.json` first.
final class FakeKeyVault: Sendable {
    let server: FakeHTTPServer
    let token = "azure-test-token"
    struct Version { var id: String; var value: String; var contentType: String?; var created: Int; var enabled = true }
    struct State { var secrets: [String: [Version]] = [:]; var deleted: Set<String> = []; var clock = 1_790_000_000 }
    let state = Mutex(State())

    static let spec = OpenAPIRequestChecker.fixture("keyvault-secrets-7.5", in: .module)

    static func start() async throws -> FakeKeyVault {
        let fake = FakeKeyVault(server: try await FakeHTTPServer.start())
        let checker = try spec.get()
        // A nextLink is the service's own opaque URL: its $skiptoken is not a parameter the client chose.
        fake.server.refuseRequests(failing: { request in
            var described = request
            described.query.removeAll { $0.0 == "$skiptoken" }
            return checker.check(described).map(\.description)
        }) { problems in error(400, "BadParameter", problems.joined(separator: "; ")) }
        fake.routes()
        return fake
    }

    private init(server: FakeHTTPServer) { self.server = server }

    static func error(_ status: Int, _ code: String, _ message: String) -> FakeHTTPServer.Reply { .json(status, ["error": ["code": .string(code), "message": .string(message)]]) }

    func bundle(_ name: String, _ version: Version, value: Bool) -> JSONValue {
        var body: [String: JSONValue] = ["id": .string("\(server.baseURL)/secrets/\(name)/\(version.id)"),
                                         "attributes": ["enabled": .bool(version.enabled), "created": .number(Double(version.created)), "updated": .number(Double(version.created)),
                                                        "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 7]]
        if value { body["value"] = .string(version.value) }
        if let type = version.contentType { body["contentType"] = .string(type) }
        return .object(body)
    }

    func page(_ items: [JSONValue], _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let size = min(request.queryItem("maxresults").flatMap(Int.init) ?? 25, 5), start = request.queryItem("$skiptoken").flatMap(Int.init) ?? 0
        var answer: [String: JSONValue] = ["value": .array(Array(items.dropFirst(start).prefix(size)))]
        answer["nextLink"] = start + size < items.count ? .string("\(server.baseURL)\(request.path)?api-version=7.5&maxresults=\(size)&$skiptoken=\(start + size)") : .null
        return .json(200, .object(answer))
    }

    private func routes() {
        let auth: (@escaping FakeHTTPServer.Handler) -> FakeHTTPServer.Handler = { handler in
            { request in
                request.header("authorization") == "Bearer \(self.token)" ? try await handler(request)
                    : .json(401, ["error": ["code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."]],
                            headers: [("WWW-Authenticate", "Bearer authorization=\"https://login.microsoftonline.com/tenant\", resource=\"https://vault.azure.net\"")])
            }
        }
        server.route(.PUT, "/secrets/{name}", handler: auth { request in
            let name = String(request.path.split(separator: "/")[1])
            let body = try request.json()
            return self.state.withLock { state in
                guard !state.deleted.contains(name) else {
                    return Self.error(409, "Conflict", "Secret \(name) is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.")
                }
                state.clock += 1
                let version = Version(id: UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(), value: body["value"]?.stringValue ?? "",
                                      contentType: body["contentType"]?.stringValue, created: state.clock)
                state.secrets[name, default: []].append(version)
                return .json(200, self.bundle(name, version, value: true))
            }
        })
        server.route(.GET, "/secrets/{name}", handler: auth { request in   // the latest version: GET /secrets/NAME/
            let name = String(request.path.split(separator: "/")[1])
            return self.state.withLock { state in
                guard let latest = state.secrets[name]?.last else { return Self.error(404, "SecretNotFound", "A secret with (name/id) \(name) was not found in this key vault.") }
                return .json(200, self.bundle(name, latest, value: true))
            }
        })
        server.route(.GET, "/secrets/{name}/{version}", handler: auth { request in
            let parts = request.path.split(separator: "/").map(String.init)
            let (name, wanted) = (parts[1], parts[2])
            return self.state.withLock { state in
                guard let versions = state.secrets[name] else { return Self.error(404, "SecretNotFound", "A secret with (name/id) \(name) was not found in this key vault.") }
                if wanted == "versions" {
                    return self.page(versions.reversed().map { self.bundle(name, $0, value: false) }, request)
                }
                guard let version = versions.first(where: { $0.id == wanted }) else {
                    return Self.error(404, "SecretNotFound", "A secret with (name/id) \(name)/\(wanted) was not found in this key vault.")
                }
                return .json(200, self.bundle(name, version, value: true))
            }
        })
        server.route(.GET, "/secrets", handler: auth { request in
            let items = self.state.withLock { state in state.secrets.keys.sorted().map { name in JSONValue.object(["id": .string("\(self.server.baseURL)/secrets/\(name)"), "attributes": ["enabled": true]]) } }
            return self.page(items, request)
        })
        server.route(.DELETE, "/secrets/{name}", handler: auth { request in
            let name = String(request.path.split(separator: "/")[1])
            return self.state.withLock { state in
                guard let versions = state.secrets.removeValue(forKey: name) else { return Self.error(404, "SecretNotFound", "A secret with (name/id) \(name) was not found in this key vault.") }
                state.deleted.insert(name)
                return .json(200, self.bundle(name, versions.last!, value: false))
            }
        })
        server.route(.DELETE, "/deletedsecrets/{name}", handler: auth { request in
            let name = String(request.path.split(separator: "/")[1])
            return self.state.withLock { state in
                guard state.deleted.remove(name) != nil else { return Self.error(404, "SecretNotFound", "Deleted Secret not found") }
                return .text(204, "")
            }
        })
    }
}

@Suite("Azure Key Vault secrets (fake checked against Key Vault 7.5 secrets.json)", .timeLimit(.minutes(2)))
struct AzureKeyVaultSecretsTests {
    static func driver(_ fake: FakeKeyVault, token: String? = nil, purge: Bool = true) -> AzureKeyVaultSecrets {
        AzureKeyVaultSecrets(vault: AzureKeyVaultClient(vaultURL: fake.server.baseURL, credential: StaticAzureToken(value: token ?? fake.token), retry: .none), purge: purge)
    }

    @Test("conformance", arguments: SecretsConformance.checks)
    func conformance(_ check: SecretsConformance.Check) async throws {
        let fake = try await FakeKeyVault.start()
        try await check.run(SecretsConformance.Harness { Self.driver(fake) })
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("bytes travel base64 with their content type; lists follow nextLink; names map onto Key Vault's alphabet")
    func wire() async throws {
        let fake = try await FakeKeyVault.start()
        let store = SecretStore(driver: Self.driver(fake), configuration: .init(cacheTTL: .zero, retry: .none))
        try await store.put("keys/blob", value: Secret([0xff, 0x00, 0x10]))
        let stored = try #require(fake.state.withLock { $0.secrets["keys-2Fblob"]?.last })
        #expect(stored.value == "/wAQ" && stored.contentType == "application/vnd.nimbus.base64")
        #expect(try await store.value("keys/blob").value.reveal() == [0xff, 0x00, 0x10])
        for index in 0..<12 { try await store.put("many/\(index)", string: Secret("v\(index)")) }
        #expect(try await store.names(prefix: "many/").count == 12)
        #expect(fake.server.requests.filter { $0.path == "/secrets" }.count >= 3, "12 secrets at 5 per page")
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("without purging, a deleted name cannot be reused (409); a wrong token is unauthenticated")
    func softDelete() async throws {
        let fake = try await FakeKeyVault.start()
        let store = SecretStore(driver: Self.driver(fake, purge: false), configuration: .init(cacheTTL: .zero, retry: .none))
        try await store.put("kept", string: "x")
        try await store.delete("kept")
        let conflict = await #expect(throws: NimbusError.self) { try await store.put("kept", string: "y") }
        #expect(conflict?.message.contains("deleted but recoverable") == true)
        let wrong = SecretStore(driver: Self.driver(fake, token: "nope"), configuration: .init(cacheTTL: .zero, retry: .none))
        let refused = await #expect(throws: NimbusError.self) { _ = try await wrong.value("kept") }
        #expect(refused?.code == .unauthenticated)
        await fake.server.shutdown()
    }

    @Test("azkeyvault:// checks the vault name; the credential chain follows the environment")
    func opener() async throws {
        #expect(try AzureKeyVaultClient.url(forVault: "Contoso-1") == "https://contoso-1.vault.azure.net")
        #expect(throws: NimbusError.self) { _ = try AzureKeyVaultClient.url(forVault: "1bad") }
        #expect(throws: NimbusError.self) { _ = try AzureKeyVaultClient.url(forVault: "a_b") }
        let store = try await SecretStore.open("azkeyvault://contoso?purge=false",
                                               openers: .secrets.withAzure(environment: ["AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"]))
        let driver = try #require(store.driver(as: AzureKeyVaultSecrets.self))
        #expect(driver.purge == false && driver.vault.vaultURL == "https://contoso.vault.azure.net")
        #expect(try AzureCredentialChain.default(environment: ["AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"]) is ClientSecretCredential)
        #expect(try AzureCredentialChain.default(environment: [:]) is ManagedIdentityCredential)
    }
}
