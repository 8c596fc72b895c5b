import Foundation
import NIOCore
import NimbusArchive
import NimbusArchiveConformance
@testable import NimbusArchiveAzure
import NimbusAzure
import NimbusBlob
import NimbusBlobAzure
import NimbusCore
import NimbusTesting
import Testing

/// Azure's access tiers against the Blob service fake (requests checked against Microsoft's Swagger
/// description): Archive blobs refuse reads until a rehydration (Set Blob Tier) ends.
@Suite("Azure archive tier (fake checked against the Blob service's Swagger description)", .timeLimit(.minutes(2)))
struct AzureArchiveTests {
    static let capabilities: Set<ConformanceCapability> = [ArchiveConformance.knowsMissingObjects, ArchiveConformance.instantTier, ArchiveConformance.reportsSize,
                                                           ArchiveConformance.coldTier]

    static let fake = Task<FakeAzureBlobService, any Error> {
        let fake = try await FakeAzureBlobService.start()
        fake.createContainer("backups")
        fake.state.withLock { $0.rehydrationDelay = .milliseconds(400) }
        return fake
    }

    static func driver(_ fake: FakeAzureBlobService) -> AzureArchiveDriver {
        AzureArchiveDriver(blob: AzureBlobDriver(configuration: .init(container: "backups"),
                                                 storage: AzureStorageClient(configuration: .init(endpoint: fake.endpoint, credential: .sharedKey(FakeAzureBlobService.account),
                                                                                                  retry: RetryPolicy(maxAttempts: 1)))))
    }

    @Test(arguments: ArchiveConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ArchiveConformance.Check) async throws {
        let fake = try await Self.fake.value
        try await check.run(ArchiveConformance.Harness(makeDriver: { Self.driver(fake) }, pollEvery: .milliseconds(100), timeout: .seconds(20)))
    }

    @Test("every check runs")
    func everyCheck() {
        #expect(ArchiveConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }

    @Test("stored with x-ms-access-tier Archive; a restore is Set Blob Tier to Hot with the priority; x-ms-archive-status while it runs")
    func rehydration() async throws {
        // A fake of its own, whose rehydrations are held under way until the test has looked at them.
        let fake = try await FakeAzureBlobService.start()
        fake.createContainer("backups")
        fake.state.withLock { $0.rehydrationDelay = .zero; $0.holdRehydrations = true }
        let archive = Archive(driver: Self.driver(fake))
        let name = "rehydrate/\(UUID().uuidString)"
        let stored = try await archive.store(name, ByteBuffer(string: "cold bytes"))
        let put = try #require(fake.server.requests.last { $0.method == "PUT" && $0.path.hasSuffix(name) && $0.query.isEmpty })
        #expect(put.header("x-ms-access-tier") == "Archive")
        try await archive.requestRestore(stored.id, speed: .expedited)
        let tier = try #require(fake.server.requests.last { $0.queryItem("comp") == "tier" && $0.path.hasSuffix(name) })
        #expect(tier.header("x-ms-access-tier") == "Hot" && tier.header("x-ms-rehydrate-priority") == "High")
        let status = try await Self.driver(fake).blob.tierStatus(name)
        #expect(status.tier == "Archive" && status.archiveStatus == "rehydrate-pending-to-hot")
        if case .restoring = try await archive.describe(stored.id).state {} else { Issue.record("a blob being rehydrated is not described as restoring") }
        await #expect(throws: NimbusError.self) { _ = try await archive.get(stored.id) }
        fake.state.withLock { $0.holdRehydrations = false }
        let ready = try await archive.waitUntilReadable(stored.id, pollEvery: .milliseconds(200), timeout: .seconds(30))
        #expect(ready.tier == "Hot" && ready.state == .online)
        #expect(String(buffer: try await archive.get(stored.id)) == "cold bytes")
    }

    @Test("a read of an archived blob straight through the blob driver is failedPrecondition (409 BlobArchived)")
    func blobArchived() async throws {
        let fake = try await Self.fake.value
        let driver = Self.driver(fake)
        _ = try await Archive(driver: driver).store("direct/\(UUID().uuidString)", ByteBuffer(string: "x"))
        let name = try #require(fake.server.requests.last { $0.method == "PUT" && $0.path.contains("/direct/") }?.path.split(separator: "/").last.map(String.init))
        do {
            _ = try await Bucket(driver: driver.blob, configuration: .init(retry: .none)).get("direct/" + name)
            Issue.record("an archived blob was read")
        } catch let error as NimbusError {
            #expect(error.code == .failedPrecondition && error.message.contains("BlobArchived"))
        }
    }
}
