import NimbusAWS
import NimbusCore
import NimbusKMS
import NimbusKMSAWS
import NimbusKMSConformance
import NimbusTesting
import Testing

@Suite("AWS KMS (moto, signatures checked)", .requires(.moto), .timeLimit(.minutes(2)))
struct AWSKMSDriverTests {
    static func aws() throws -> AWSClient {
        guard let id = Peer.setting("NIMBUS_PEER_MOTO_ACCESS_KEY_ID"), let secret = Peer.setting("NIMBUS_PEER_MOTO_SECRET_ACCESS_KEY") else {
            throw NimbusError(.unavailable, "the moto peer exported no IAM keys; run scripts/peers up moto")
        }
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: Secret(secret)),
                                              endpointURL: try Peer.moto.url(), maxAttempts: 1, environment: [:]))
    }

    @Test("conformance", arguments: KMSConformance.checks)
    func conformance(_ check: KMSConformance.Check) async throws {
        try await check.run(KMSConformance.Harness { AWSKMSDriver(aws: try Self.aws()) })
    }
}
