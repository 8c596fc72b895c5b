import Foundation
import NimbusCore
import NimbusKMS
import NimbusKMSConformance
import NimbusKMSLocal
import NimbusTesting
import Testing

@Suite("Local keyring", .timeLimit(.minutes(2)))
struct LocalKeyringTests {
    @Test("conformance", arguments: KMSConformance.checks)
    func conformance(_ check: KMSConformance.Check) async throws {
        try await check.run(KMSConformance.Harness { try LocalKeyring(path: nil) })
    }

    @Test("the keyring file is written 0600 and reopens with its keys and versions; a world-readable one is refused")
    func file() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keyring-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let kms = try await KeyManagement.open("local://\(path)", openers: .kms.withLocal())
        let key = try await kms.createKey(description: "pii")
        let envelope = try await kms.encrypt(Array("secret".utf8), keyID: key, context: ["a": "b"])
        try await kms.rotateKey(key)
        let mode = try #require((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue)
        #expect(mode & 0o777 == 0o600)
        let reopened = try LocalKeyring(path: path)
        #expect(reopened.versions(of: key) == [1, 2])
        #expect(try await KeyManagement(driver: reopened).decrypt(envelope, context: ["a": "b"]) == Array("secret".utf8))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: NimbusError.self) { _ = try LocalKeyring(path: path) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        try Data("not json".utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(throws: NimbusError.self) { _ = try LocalKeyring(path: path) }
    }
}
