import Foundation
import NimbusCore
import NimbusSecrets
import NimbusSecretsLocal
import NimbusTesting
import Testing

@Suite("SecretStore: cache, environment and portable rules")
struct SecretStoreTests {
    @Test("the current value is served from the cache until its TTL; a put through the store invalidates it; versions are never cached")
    func cache() async throws {
        let clock = ManualDate()
        let driver = VersionedSecrets()
        let store = SecretStore(driver: driver, configuration: .init(cacheTTL: .seconds(60)), now: { clock.now })
        let writer = SecretStore(driver: driver, configuration: .init(cacheTTL: .zero))
        let first = try await store.put("db/password", string: "one")
        #expect(try await store.string("db/password").reveal() == "one")
        try await writer.put("db/password", string: "two")                     // written elsewhere
        #expect(try await store.string("db/password").reveal() == "one")        // cached
        #expect(try await store.string("db/password", version: first.version).reveal() == "one")
        clock.advance(61)
        #expect(try await store.string("db/password").reveal() == "two")        // expired, read again
        try await store.put("db/password", string: "three")
        #expect(try await store.string("db/password").reveal() == "three")     // own write invalidates
        try await writer.put("db/password", string: "four")
        store.invalidate("db/password")
        #expect(try await store.string("db/password").reveal() == "four")
    }

    @Test("env:// maps names to variables, reads NAME_FILE, and is read-only")
    func environment() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)")
        try Data("from-a-file".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let driver = EnvironmentSecrets(prefix: "APP_") { ["APP_DB_PASSWORD": "hunter2", "APP_STRIPE_API_KEY_FILE": file.path] }
        #expect(driver.variable(for: "db/password") == "APP_DB_PASSWORD")
        #expect(driver.variable(for: "stripe.api-key") == "APP_STRIPE_API_KEY")
        let store = SecretStore(driver: driver)
        #expect(try await store.string("db/password").reveal() == "hunter2")
        #expect(try await store.string("stripe.api-key").reveal() == "from-a-file")
        await #expect(throws: NimbusError.self) { _ = try await store.value("absent") }
        do {
            try await store.put("db/password", string: "x")
            Issue.record("the environment store accepted a write")
        } catch let error as NimbusError {
            #expect(error.code == .unimplemented)
        }
        let opened = try await SecretStore.open("env://?prefix=NIMBUS_TEST_", openers: .secrets.withLocal())
        #expect(opened.provider == "env")
        await #expect(throws: NimbusError.self) { _ = try await SecretStore.open("env://?prefx=A", openers: .secrets.withLocal()) }
    }

    @Test("mem:// keeps the newest max_versions versions")
    func maxVersions() async throws {
        let store = try await SecretStore.open("mem://?max_versions=2", openers: .secrets.withLocal())
        for value in ["a", "b", "c"] { try await store.put("k", string: Secret(value)) }
        #expect(try await store.versions("k").count == 2)
        await #expect(throws: NimbusError.self) { _ = try await store.value("k", version: "1") }
        #expect(try await store.string("k", version: "2").reveal() == "b")
    }
}
