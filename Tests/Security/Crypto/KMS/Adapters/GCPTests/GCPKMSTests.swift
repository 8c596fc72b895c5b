import Foundation
import NimbusCore
import NimbusHTTP
import NimbusGCP
import NimbusKMS
import NimbusKMSConformance
@testable import NimbusKMSGCP
import NimbusTesting
import Testing

/// No Cloud KMS emulator exists: the driver runs against ``FakeCloudKMS``, which checks each request
/// body against Google's committed protos and really encrypts.
@Suite("GCP Cloud KMS (fake checked against kms/v1 protos)", .timeLimit(.minutes(2)))
struct GCPKMSTests {
    static func driver(_ fake: FakeCloudKMS) throws -> GCPKMSDriver {
        GCPKMSDriver(gcp: try GCPClient(configuration: .init(tokens: GCPStaticToken(Secret(fake.token)), retry: .none)), keyRing: fake.keyRing, endpoint: fake.endpoint)
    }

    @Test("conformance", arguments: KMSConformance.checks)
    func conformance(_ check: KMSConformance.Check) async throws {
        let fake = try await FakeCloudKMS.start()
        try await check.run(KMSConformance.Harness { try Self.driver(fake) })
        #expect(fake.specMismatches == [])
        await fake.server.shutdown()
    }

    @Test("every call carries CRC32Cs; an answer whose checksum does not match is refused as dataLoss")
    func checksums() async throws {
        let fake = try await FakeCloudKMS.start()
        let kms = KeyManagement(driver: try Self.driver(fake), configuration: .init(retry: .none))
        let key = try await kms.createKey(description: "crc")
        _ = try await kms.encrypt(Array("x".utf8), keyID: key, context: ["a": "b"])
        let encrypt = try #require(fake.server.requests.first { $0.path.hasSuffix(":encrypt") }).json()
        #expect(encrypt["plaintextCrc32c"] != nil && encrypt["additionalAuthenticatedDataCrc32c"] != nil)
        #expect(Data(base64Encoded: encrypt["additionalAuthenticatedData"]?.stringValue ?? "") == Data(EncryptionContext.authenticatedData(["a": "b"], label: "nimbus-kms-v1")))
        fake.server.route(.POST, "/v1/projects/{p}/locations/{l}/keyRings/{r}/cryptoKeys/{k}",
                          reply: .json(200, ["name": "v", "ciphertext": "AAAA", "ciphertextCrc32c": "1", "verifiedPlaintextCrc32c": true,
                                             "verifiedAdditionalAuthenticatedDataCrc32c": true]))
        let corrupted = await #expect(throws: NimbusError.self) { _ = try await kms.encrypt(Array("y".utf8), keyID: key) }
        #expect(corrupted?.code == .dataLoss)
        fake.server.route(.POST, "/v1/projects/{p}/locations/{l}/keyRings/{r}/cryptoKeys/{k}",
                          reply: .json(200, ["name": "v", "ciphertext": "AAAA", "ciphertextCrc32c": .string(String(CRC32C.checksum([0, 0, 0])))]))
        let unverified = await #expect(throws: NimbusError.self) { _ = try await kms.encrypt(Array("y".utf8), keyID: key) }
        #expect(unverified?.code == .dataLoss)
        await fake.server.shutdown()
    }

    @Test("gcpkms:// names a key ring")
    func opener() async throws {
        await #expect(throws: NimbusError.self) { _ = try await KeyManagement.open("gcpkms://my-project/europe-west1", openers: .kms.withGCP()) }
        #expect(GCPKMSDriver.aad(["b": "2", "a": "1"]) == GCPKMSDriver.aad(["a": "1", "b": "2"]) && GCPKMSDriver.aad(["a": "1"]) != GCPKMSDriver.aad(["a": "2"]))
        #expect(throws: NimbusError.self) { _ = try GCPKMSDriver.unwrapped(Array("not-a-resource\nabc".utf8)) }
    }
}
