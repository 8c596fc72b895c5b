import NimbusCore
import NimbusSecrets
import NimbusSecretsVault
import Testing

/// The driver's behaviour against a spec-checked fake Vault is in Tests/Core/VaultTests.
@Suite("vault:// opener")
struct VaultSecretsOpenerTests {
    @Test("vault:// takes the mount from the path and the token from the environment; unknown options and a missing token are refused")
    func opener() async throws {
        let store = try await SecretStore.open("vault://vault.internal:8200/kv?namespace=team-a", openers: .secrets.withVault(environment: ["VAULT_TOKEN": "s.t"]))
        let driver = try #require(store.driver(as: VaultKVSecrets.self))
        #expect(driver.mount == "kv" && driver.vault.configuration.address == "https://vault.internal:8200" && driver.vault.configuration.namespace == "team-a")
        await #expect(throws: NimbusError.self) { _ = try await SecretStore.open("vault://vault.internal/kv?colour=red", openers: .secrets.withVault(environment: ["VAULT_TOKEN": "s.t"])) }
        await #expect(throws: NimbusError.self) { _ = try await SecretStore.open("vault://vault.internal/kv", openers: .secrets.withVault(environment: ["HOME": "/nonexistent"])) }
    }
}
