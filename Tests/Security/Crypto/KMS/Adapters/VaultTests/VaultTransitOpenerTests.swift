import NimbusCore
import NimbusKMS
@testable import NimbusKMSVault
import Testing

/// The driver's behaviour against a spec-checked fake Vault is in Tests/Core/VaultTests.
@Suite("vaulttransit:// opener")
struct VaultTransitOpenerTests {
    @Test("vaulttransit:// takes the mount from the path; a dev server is tls=false")
    func opener() async throws {
        let kms = try await KeyManagement.open("vaulttransit://127.0.0.1:8200/transit-eu?tls=false", openers: .kms.withVault(environment: ["VAULT_TOKEN": "s.t"]))
        let driver = try #require(kms.driver(as: VaultTransitDriver.self))
        #expect(driver.mount == "transit-eu" && driver.vault.configuration.address == "http://127.0.0.1:8200")
        await #expect(throws: NimbusError.self) { _ = try await KeyManagement.open("vaulttransit:///transit", openers: .kms.withVault(environment: ["VAULT_TOKEN": "s.t"])) }
    }

    @Test("a wrapped key names its master key; anything else is refused before any call")
    func wrappedFormat() throws {
        let wrapped = VaultTransitDriver.wrapped("orders", "vault:v2:AAAA")
        #expect(try VaultTransitDriver.unwrapped(wrapped) == ("orders", "vault:v2:AAAA"))
        for bad in [Array("orders".utf8), Array("orders\nnot-vault".utf8), [0xff, 0x0a]] {
            #expect(throws: NimbusError.self) { _ = try VaultTransitDriver.unwrapped(bad) }
        }
    }
}
