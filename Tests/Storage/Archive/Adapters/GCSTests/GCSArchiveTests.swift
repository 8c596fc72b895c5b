import Foundation
import NIOCore
import NimbusArchive
import NimbusArchiveConformance
@testable import NimbusArchiveGCS
import NimbusBlobGCS
import NimbusCore
import NimbusGCP
import NimbusTesting
import Testing

/// Cloud Storage's colder classes on gcp-storage-emulator: stored with `storageClass`, read at once.
@Suite("GCS archive classes (gcp-storage-emulator)", .requires(.gcs), .timeLimit(.minutes(2)))
struct GCSArchiveTests {
    /// Every class is online: the restore checks do not apply.
    static let capabilities: Set<ConformanceCapability> = [ArchiveConformance.knowsMissingObjects, ArchiveConformance.instantTier, ArchiveConformance.reportsSize]

    static let bucket = Task<String, any Error> {
        let name = "nimbus-archive-\(IDGenerator.shared.ulid().description.lowercased().prefix(12))"
        let gcp = try GCPClient(configuration: .init(anonymous: true))
        _ = try await gcp.json(.POST, try Peer.gcs.url() + "/storage/v1/b", query: [("project", "nimbus-test")], body: ["name": .string(name)])
        return name
    }

    static func driver() async throws -> GCSArchiveDriver {
        GCSArchiveDriver(blob: GCSBlobDriver(configuration: .init(bucket: try await bucket.value, endpoint: try Peer.gcs.url()),
                                             gcp: try GCPClient(configuration: .init(anonymous: true))))
    }

    @Test(arguments: ArchiveConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ArchiveConformance.Check) async throws {
        let driver = try await Self.driver()
        try await check.run(ArchiveConformance.Harness(makeDriver: { driver }))
    }

    @Test("not run: the restore checks (no GCS class needs a restore)")
    func notSupported() {
        #expect(Set(ArchiveConformance.suite.unsupported(by: Self.capabilities).flatMap(\.needs)) == [ArchiveConformance.coldTier])
    }

    @Test("ARCHIVE is the default class, kept on the object, readable at once; a restore request changes nothing")
    func archiveClass() async throws {
        let archive = Archive(driver: try await Self.driver())
        let stored = try await archive.store("cold/\(UUID().uuidString)", ByteBuffer(string: "frozen"))
        let described = try await archive.describe(stored.id)
        #expect(described.tier == "ARCHIVE" && described.state == .online)
        #expect(try await archive.requestRestore(stored.id, speed: .bulk).state == .online)
        #expect(String(buffer: try await archive.get(stored.id)) == "frozen")
        #expect(archive.tiers.last?.minimumStorage == .seconds(365 * 86_400))
    }
}
