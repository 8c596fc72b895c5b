import Foundation
import NimbusCore
import NimbusKMS
import NimbusKMSConformance
@testable import NimbusKMSVault
import NimbusSecrets
import NimbusSecretsConformance
import NimbusSecretsVault
import NimbusTesting
@testable import NimbusVault
import Testing

/// Vault's KV v2 and Transit engines against a fake that checks every request against Vault's
/// published OpenAPI document (extract in Fixtures/, from hashicorp/vault-client-go).
@Suite("Vault KV v2 secrets and Transit KMS (fake Vault, spec-checked)", .timeLimit(.minutes(2)))
struct VaultTests {
    static func client(_ fake: FakeVault, token: String? = nil) throws -> VaultClient {
        try VaultClient(configuration: .init(address: fake.server.baseURL, token: Secret(token ?? fake.token), retry: .none))
    }

    @Test("secrets conformance", arguments: SecretsConformance.checks)
    func secrets(_ check: SecretsConformance.Check) async throws {
        let fake = try await FakeVault.start()
        try await check.run(SecretsConformance.Harness { VaultKVSecrets(vault: try Self.client(fake), mount: "secret") })
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("KMS conformance", arguments: KMSConformance.checks)
    func kms(_ check: KMSConformance.Check) async throws {
        let fake = try await FakeVault.start()
        try await check.run(KMSConformance.Harness { VaultTransitDriver(vault: try Self.client(fake), mount: "transit") })
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("KV values are {\"value\": text} (or value_base64), writes check-and-set, and a secret written by hand reads back")
    func kvShapes() async throws {
        let fake = try await FakeVault.start()
        let vault = try Self.client(fake)
        let store = SecretStore(driver: VaultKVSecrets(vault: vault), configuration: .init(cacheTTL: .zero))
        try await store.put("db/password", string: "hunter2")
        let raw = try await vault.request(.GET, "secret/data/db/password")
        #expect(raw?["data"]?["data"] == ["value": "hunter2"])
        try await store.put("blob", value: Secret([0xff, 0x00]))
        #expect(try await vault.request(.GET, "secret/data/blob")?["data"]?["data"] == ["value_base64": "/wA="])
        #expect(fake.server.requests.filter { $0.method == "POST" }.allSatisfy { (try? $0.json()["options"]?["cas"]) != nil })
        try await vault.request(.POST, "secret/data/by-hand", body: ["data": ["password": "typed-in"]])
        #expect(try await store.string("by-hand").reveal() == "typed-in")
        // A writer that lost the race gets failedPrecondition rather than overwriting.
        try await vault.request(.POST, "secret/data/raced", body: ["data": ["value": "one"]])
        let stale = await #expect(throws: NimbusError.self) {
            try await vault.request(.POST, "secret/data/raced", body: ["data": ["value": "two"], "options": ["cas": 0]])
        }
        #expect(stale?.code == .invalidArgument)
        await fake.server.shutdown()
    }

    @Test("Vault's errors become portable codes and name the cause; a wrong token is permissionDenied; the token never appears in errors")
    func errors() async throws {
        let fake = try await FakeVault.start()
        let wrong = SecretStore(driver: VaultKVSecrets(vault: try Self.client(fake, token: "s.not-the-token")), configuration: .init(cacheTTL: .zero, retry: .none))
        let denied = await #expect(throws: NimbusError.self) { _ = try await wrong.value("db/password") }
        #expect(denied?.code == .permissionDenied && denied?.message.contains("permission denied") == true)
        #expect(denied.map { "\($0)" }?.contains("s.not-the-token") == false)
        let kms = KeyManagement(driver: VaultTransitDriver(vault: try Self.client(fake)), configuration: .init(retry: .none))
        let key = try await kms.createKey(description: "errors")
        let envelope = try await kms.encrypt(Array("x".utf8), keyID: key, context: ["a": "b"])
        let refused = await #expect(throws: NimbusError.self) { _ = try await kms.decrypt(envelope, context: ["a": "c"]) }
        #expect(refused?.code == .permissionDenied)
        await fake.server.shutdown()
    }

    @Test("the transit context is canonical: key order does not matter, values are bound")
    func canonicalContext() {
        #expect(VaultTransitDriver.context(["b": "2", "a": "1"]) == VaultTransitDriver.context(["a": "1", "b": "2"]))
        #expect(VaultTransitDriver.context([:]).stringValue?.isEmpty == false, "derived keys need a non-empty context")
        #expect(VaultTransitDriver.context(["a": "1"]) != VaultTransitDriver.context(["a": "2"]))
        #expect(VaultTransitDriver.context(["a\"": "1"]) != VaultTransitDriver.context(["a": "\"1"]))
    }

    @Test("the fake's check refuses what Vault's document does not describe")
    func specRefusesUnknown() async throws {
        let fake = try await FakeVault.start()
        fake.server.mutateRequests { request in
            var changed = request
            if request.method == "POST", request.path.contains("/data/") { changed.body = .init(string: #"{"data":{"value":"x"},"opts":{"cas":0}}"#) }
            return changed
        }
        let store = SecretStore(driver: VaultKVSecrets(vault: try Self.client(fake)), configuration: .init(cacheTTL: .zero, retry: .none))
        await #expect(throws: NimbusError.self) { try await store.put("mutated", string: "x") }
        #expect(fake.server.refusals.contains { $0.problems.joined().contains("opts") })
        await fake.server.shutdown()
    }

    @Test("configuration from the environment and URLs: VAULT_ADDR, VAULT_TOKEN, namespace, tls=false")
    func configuration() throws {
        let settings = try VaultClient.Configuration.environment(["VAULT_ADDR": "https://vault.example.com:8200", "VAULT_TOKEN": "s.t", "VAULT_NAMESPACE": "team-a"])
        #expect(settings.address == "https://vault.example.com:8200" && settings.token.reveal() == "s.t" && settings.namespace == "team-a")
        #expect(throws: NimbusError.self) { _ = try VaultClient.Configuration.environment(["VAULT_TOKEN": "s.t"]) }
        #expect(throws: NimbusError.self) { _ = try VaultClient.Configuration.environment(["VAULT_ADDR": "https://v:8200", "HOME": "/nonexistent"]) }
        let url = try VaultURL.configuration(try OpenURL("vault://127.0.0.1:8201/kv?tls=false&namespace=ns"), environment: ["VAULT_TOKEN": "s.x"])
        #expect(url.address == "http://127.0.0.1:8201" && url.namespace == "ns")
        #expect(try VaultURL.configuration(try OpenURL("vault://vault.internal/kv"), environment: ["VAULT_TOKEN": "s.x"]).address == "https://vault.internal:8200")
        #expect(throws: NimbusError.self) { _ = try VaultClient(configuration: .init(address: "vault.internal:8200", token: "t")) }
        #expect(VaultClient.encode(path: "secret/data/a b/ü") == "secret/data/a%20b/%C3%BC")
    }
}
