import Foundation
import NIOCore
import NimbusArchive
import NimbusArchiveConformance
@testable import NimbusArchiveS3
import NimbusAWS
import NimbusBlob
import NimbusBlobS3
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing

/// S3's archive storage classes against moto's server that checks SigV4 signatures and IAM: GLACIER
/// and DEEP_ARCHIVE objects refuse reads until RestoreObject, then report `x-amz-restore`.
@Suite("S3 archive (moto)", .requires(.moto), .timeLimit(.minutes(2)))
struct S3ArchiveTests {
    static let capabilities: Set<ConformanceCapability> = [ArchiveConformance.knowsMissingObjects, ArchiveConformance.instantTier, ArchiveConformance.reportsSize, ArchiveConformance.coldTier]

    static func client() throws -> AWSClient {
        let (id, secret) = try Peer.motoKeys()
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret),
                                              endpointURL: try Peer.moto.url(), environment: [:]))
    }

    static let bucket = Task<String, any Error> {
        let name = "nimbus-archive-\(IDGenerator.shared.ulid().description.lowercased().prefix(12))"
        _ = try await AWS.S3(client: try client()).createBucket(.init(bucket: name))
        return name
    }

    static func driver() async throws -> S3ArchiveDriver {
        S3ArchiveDriver(blob: S3BlobDriver(configuration: .init(bucket: try await bucket.value), client: try client()))
    }

    @Test(arguments: ArchiveConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ArchiveConformance.Check) async throws {
        let driver = try await Self.driver()
        try await check.run(ArchiveConformance.Harness(makeDriver: { driver }, pollEvery: .milliseconds(200), timeout: .seconds(30)))
    }

    @Test("every check runs")
    func everyCheck() {
        #expect(ArchiveConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }

    @Test("DEEP_ARCHIVE: stored with the storage class, no expedited restores, a bulk restore reads back")
    func deepArchive() async throws {
        let archive = Archive(driver: try await Self.driver(), configuration: .init(tier: "DEEP_ARCHIVE"))
        let stored = try await archive.store("deep/\(UUID().uuidString)", ByteBuffer(string: "deep"))
        let described = try await archive.describe(stored.id)
        #expect(described.tier == "DEEP_ARCHIVE" && described.state == .archived)
        await #expect(throws: NimbusError.self) { _ = try await archive.requestRestore(stored.id, speed: .expedited) }
        try await archive.requestRestore(stored.id, speed: .bulk, days: 2)
        let ready = try await archive.waitUntilReadable(stored.id, pollEvery: .milliseconds(200), timeout: .seconds(20))
        if case .restored(let until) = ready.state, let until { #expect(until > Date().addingTimeInterval(86_400), "kept for the 2 days asked") }
        #expect(String(buffer: try await archive.get(stored.id)) == "deep")
    }

    @Test("x-amz-restore is read as S3 documents it")
    func restoreHeader() {
        #expect(S3ArchiveDriver.state(tier: "GLACIER", restore: nil) == .archived)
        #expect(S3ArchiveDriver.state(tier: "GLACIER", restore: #"ongoing-request="true""#) == .restoring(since: nil))
        let done = S3ArchiveDriver.state(tier: "DEEP_ARCHIVE", restore: #"ongoing-request="false", expiry-date="Fri, 21 Dec 2040 00:00:00 GMT""#)
        #expect(done == .restored(until: HTTPDate.parse("Fri, 21 Dec 2040 00:00:00 GMT")))
        #expect(S3ArchiveDriver.state(tier: "GLACIER", restore: #"ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT""#) == .archived, "a lapsed copy")
        #expect(S3ArchiveDriver.state(tier: "GLACIER_IR", restore: nil) == .online)
    }
}
