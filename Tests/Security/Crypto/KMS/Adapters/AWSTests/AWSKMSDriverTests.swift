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
        let (id, secret) = try Peer.motoKeys()
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret),
                                              endpointURL: try Peer.moto.url(), maxAttempts: 1, environment: [:]))
    }

    @Test("conformance", arguments: KMSConformance.checks)
    func conformance(_ check: KMSConformance.Check) async throws {
        try await check.run(KMSConformance.Harness { AWSKMSDriver(aws: try Self.aws()) })
    }
}
