import Foundation
import NIOCore
import NimbusArchive
import NimbusArchiveConformance
@testable import NimbusArchiveFile
import NimbusCore
import NimbusTesting
import Testing

/// The embedded cold store runs the whole suite, with restores of a fraction of a second.
@Suite("File archive (embedded)", .timeLimit(.minutes(1)))
struct FileArchiveTests {
    static let capabilities: Set<ConformanceCapability> = [ArchiveConformance.knowsMissingObjects, ArchiveConformance.instantTier, ArchiveConformance.reportsSize, ArchiveConformance.coldTier]
    static let directory = FileManager.default.temporaryDirectory.appendingPathComponent("file-archive-\(UUID().uuidString)").path

    @Test(arguments: ArchiveConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ArchiveConformance.Check) async throws {
        try await check.run(ArchiveConformance.Harness(makeDriver: {
            try FileArchiveDriver(configuration: .init(directory: Self.directory, restoreTimes: [.expedited: .milliseconds(300), .bulk: .seconds(2)]))
        }, pollEvery: .milliseconds(100), timeout: .seconds(10)))
    }

    @Test("every check runs")
    func everyCheck() {
        #expect(ArchiveConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }

    @Test("a restored copy lapses after its days: archived again")
    func lapse() async throws {
        let driver = try FileArchiveDriver(configuration: .init(directory: Self.directory, restoreTimes: [.expedited: .zero], day: .milliseconds(300)))
        let archive = Archive(driver: driver)
        let stored = try await archive.store("lapse/\(UUID().uuidString)", ByteBuffer(string: "x"))
        try await archive.requestRestore(stored.id, speed: .expedited, days: 1)
        #expect(try await archive.describe(stored.id).state.isReadable)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await archive.describe(stored.id).state == .archived)
    }

    @Test("opened by URL with restore times")
    func url() async throws {
        let archive = try await Archive.open("file://\(Self.directory)?expedited=50ms&day=1h", openers: .archive.withFile())
        let driver = try #require(archive.driver(as: FileArchiveDriver.self))
        #expect(driver.configuration.restoreTimes[.expedited] == .milliseconds(50) && driver.configuration.day == .seconds(3600))
        await #expect(throws: NimbusError.self) { _ = try await Archive.open("file://\(Self.directory)?fast=1s", openers: .archive.withFile()) }
    }
}
