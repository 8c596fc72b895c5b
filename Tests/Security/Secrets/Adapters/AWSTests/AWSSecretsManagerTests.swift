import Foundation
import NimbusAWS
import NimbusCore
import NimbusSecrets
import NimbusSecretsAWS
import NimbusSecretsConformance
import NimbusTesting
import Testing

@Suite("AWS Secrets Manager (moto, signatures checked)", .requires(.moto), .timeLimit(.minutes(2)))
struct AWSSecretsManagerTests {
    static func aws() throws -> AWSClient {
        let (id, secret) = try Peer.motoKeys()
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret),
                                              endpointURL: try Peer.moto.url(), maxAttempts: 1, environment: [:]))
    }

    @Test("conformance", arguments: SecretsConformance.checks)
    func conformance(_ check: SecretsConformance.Check) async throws {
        try await check.run(SecretsConformance.Harness { AWSSecretsManagerDriver(aws: try Self.aws()) })
    }

    @Test("text is stored as SecretString and bytes as SecretBinary; the previous version keeps AWSPREVIOUS")
    func wireShapes() async throws {
        let aws = try Self.aws()
        let store = SecretStore(driver: AWSSecretsManagerDriver(aws: aws), configuration: .init(cacheTTL: .zero))
        let name = "wire/\(UUID().uuidString.prefix(8))"
        let first = try await store.put(name, string: "text-value")
        let raw = try await aws.call("secretsmanager", "GetSecretValue", input: ["SecretId": .string(name)]).output
        #expect(raw["SecretString"]?.stringValue == "text-value" && raw["SecretBinary"] == nil)
        try await store.put(name, value: Secret([0xff, 0x00, 0xfe]))
        let binary = try await aws.call("secretsmanager", "GetSecretValue", input: ["SecretId": .string(name)]).output
        #expect(binary["SecretBinary"]?.stringValue == "/wD+" && binary["SecretString"] == nil)
        let previous = try await aws.call("secretsmanager", "GetSecretValue", input: ["SecretId": .string(name), "VersionStage": "AWSPREVIOUS"]).output
        #expect(previous["VersionId"]?.stringValue == first.version)
        try await store.delete(name)
    }

    @Test("awssecrets:// validates recovery_days")
    func opener() async throws {
        await #expect(throws: NimbusError.self) { _ = try await SecretStore.open("awssecrets://?recovery_days=3", openers: .secrets.withAWS()) }
        let store = try await SecretStore.open("awssecrets://?region=eu-west-1&recovery_days=7", openers: .secrets.withAWS())
        #expect(store.driver(as: AWSSecretsManagerDriver.self)?.recoveryDays == 7)
    }
}
