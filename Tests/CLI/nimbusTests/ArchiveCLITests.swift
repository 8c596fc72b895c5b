import Foundation
import NimbusCore
import NimbusTesting
import Testing

@Suite("nimbus archive", .timeLimit(.minutes(2)))
struct ArchiveCLITests {
    @Test("put, describe, get refused while archived, restore, wait, get byte for byte, tiers, rm; a missing id exits 1")
    func roundTrip() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archive-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let local = directory.appendingPathComponent("db.tar").path
        let bytes = (0..<150_000).map { UInt8(truncatingIfNeeded: $0 &* 17) }
        try Data(bytes).write(to: URL(fileURLWithPath: local))
        let store = "file://\(directory.path)/store?expedited=300ms"

        let put = try await Binary.run(["archive", "put", store, "db/2026-12-08.tar", local])
        #expect(put.status == 0, "\(put.output)")
        let stored = try JSONValue.parse(Array(put.stdout.utf8))
        let id = try #require(stored["id"]?.stringValue)
        #expect(stored["size"] == 150_000 && stored["tier"] == "cold" && stored["state"] == "archived", "\(put.output)")

        let early = try await Binary.run(["archive", "get", store, id, directory.appendingPathComponent("early.tar").path])
        #expect(early.status == 1 && early.stderr.contains("restore"), "\(early.output)")
        let waitIdle = try await Binary.run(["archive", "wait", store, id, "--poll", "1", "--timeout", "5"])
        #expect(waitIdle.status == 1 && waitIdle.stderr.contains("requestRestore"), "\(waitIdle.output)")

        let restore = try await Binary.run(["archive", "restore", store, id, "--speed", "expedited", "--days", "2"])
        #expect(restore.status == 0 && restore.stdout.contains("restor"), "\(restore.output)")
        let wait = try await Binary.run(["archive", "wait", store, id, "--poll", "1", "--timeout", "20"])
        let ready = try JSONValue.parse(Array(wait.stdout.utf8))
        #expect(wait.status == 0 && ready["readable"] == true, "\(wait.output)")
        let out = directory.appendingPathComponent("restored.tar").path
        #expect(try await Binary.run(["archive", "get", store, id, out]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(bytes))

        let tiers = try await Binary.run(["archive", "tiers", store])
        #expect(tiers.stdout.contains("cold") && tiers.stdout.contains("expedited"), "\(tiers.output)")
        let badSpeed = try await Binary.run(["archive", "restore", store, id, "--speed", "ludicrous"])
        #expect(badSpeed.status == 1, "\(badSpeed.output)")
        #expect(try await Binary.run(["archive", "rm", store, id]).status == 0)
        let missing = try await Binary.run(["archive", "describe", store, id])
        #expect(missing.status == 1 && missing.stderr.contains("no archived object"), "\(missing.output)")
    }
}
