import Foundation
import NIOCore
import NimbusArchive
import NimbusArchiveFile
import NimbusBlob
import NimbusCore
import NimbusTesting
import Testing

/// The portable layer over the embedded store: tiers by name, waiting with a deadline, downloads
/// renamed into place, names and metadata checked before the driver sees them.
@Suite("Archive (portable)", .timeLimit(.minutes(1)))
struct ArchiveTests {
    static func archive(standard: Duration = .seconds(30)) throws -> (Archive, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archive-\(UUID().uuidString)").path
        let driver = try FileArchiveDriver(configuration: .init(directory: directory, restoreTimes: [.expedited: .milliseconds(100), .standard: standard]))
        return (Archive(driver: driver), directory)
    }

    @Test("a wait that runs out is deadlineExceeded and says the restore goes on; a quicker restore is waited through")
    func deadline() async throws {
        let (archive, directory) = try Self.archive(standard: .seconds(3600))
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let slow = try await archive.store("slow", ByteBuffer(string: "slow"))
        try await archive.requestRestore(slow.id, speed: .standard)
        do {
            _ = try await archive.waitUntilReadable(slow.id, pollEvery: .milliseconds(50), timeout: .milliseconds(200))
            Issue.record("the wait did not run out")
        } catch let error as NimbusError {
            #expect(error.code == .deadlineExceeded && error.message.contains("goes on"))
        }
        let still = try await archive.describe(slow.id).state
        if case .restoring = still {} else { Issue.record("after the wait the slow restore is \(still), not restoring") }
        let quick = try await archive.store("quick", ByteBuffer(string: "quick"))
        try await archive.requestRestore(quick.id, speed: .expedited)
        #expect(try await archive.waitUntilReadable(quick.id, pollEvery: .milliseconds(50), timeout: .seconds(10)).state.isReadable)
    }

    @Test("tiers are found by name, the coldest is the default, and an unknown one names those there are")
    func tiers() throws {
        let (archive, directory) = try Self.archive()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try archive.tier(named: nil).name == "cold")
        #expect(try archive.tier(named: "online").readableWithoutRestore)
        #expect(throws: NimbusError.self) { try archive.tier(named: "GLACIER") }
        #expect(archive.tiers[1].speeds == [.expedited, .standard], "only the speeds given")
        #expect(archive.tiers[1].description.contains("expedited"))
    }

    @Test("download writes beside the target and renames once complete; a file source is streamed and checked")
    func download() async throws {
        let (archive, directory) = try Self.archive()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = directory + "/source.bin", target = directory + "/restored.bin"
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: URL(fileURLWithPath: source))
        let stored = try await archive.store("from-file", file: source, tier: "online")
        #expect(stored.size == 200_000 && stored.checksums.crc32c == CRC32C.checksum(bytes))
        try await archive.download(stored.id, to: target)
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data(bytes))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).allSatisfy { !$0.contains("nimbus-partial") })
    }

    @Test("a corrupted stored object is dataLoss when read, never a short or wrong success")
    func corruption() async throws {
        let (archive, directory) = try Self.archive()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let stored = try await archive.store("fragile", ByteBuffer(string: "intact bytes"), tier: "online")
        let objects = try FileManager.default.contentsOfDirectory(atPath: directory + "/objects").filter { !$0.hasSuffix(".json") }
        try Data("intact bytez".utf8).write(to: URL(fileURLWithPath: directory + "/objects/" + objects[0]))
        await #expect(throws: NimbusError.self) { _ = try await archive.get(stored.id) }
        do { _ = try await archive.get(stored.id) } catch let error as NimbusError { #expect(error.code == .dataLoss) }
    }

    @Test("names and metadata are checked before the driver sees them")
    func validation() async throws {
        let (archive, directory) = try Self.archive()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        await #expect(throws: NimbusError.self) { try await archive.store("", ByteBuffer(string: "x")) }
        await #expect(throws: NimbusError.self) { try await archive.store("ok", ByteBuffer(string: "x"), metadata: ["Bad Name": "x"]) }
    }
}
