import Foundation
import NimbusCore
import NimbusTesting
import Testing

@Suite("nimbus blob", .timeLimit(.minutes(2)))
struct BlobCLITests {
    @Test("cp uploads, copies between stores and downloads byte for byte; ls, stat, rm; --no-clobber; a missing object exits 1")
    func roundTrip() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("blob-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let local = directory.appendingPathComponent("in.bin").path
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try Data(bytes).write(to: URL(fileURLWithPath: local))
        let storeA = "dir://\(directory.path)/a//", storeB = "dir://\(directory.path)/b//"

        let up = try await Binary.run(["blob", "cp", local, storeA + "reports/2026/in.bin", "--content-type", "application/x-test"])
        #expect(up.status == 0 && up.stdout.contains("300000 bytes"), "\(up.output)")
        let across = try await Binary.run(["blob", "cp", storeA + "reports/2026/in.bin", storeB + "copy.bin"])
        #expect(across.status == 0, "\(across.output)")
        let down = directory.appendingPathComponent("out.bin").path
        #expect(try await Binary.run(["blob", "cp", storeB + "copy.bin", down]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: down)) == Data(bytes))

        let stat = try await Binary.run(["blob", "stat", storeB + "copy.bin"])
        let json = try JSONValue.parse(Array(stat.stdout.utf8))
        #expect(json["size"] == 300_000 && json["contentType"] == "application/x-test" && json["crc32c"]?.stringValue?.count == 8, "\(stat.output)")
        let top = try await Binary.run(["blob", "ls", storeA])
        #expect(top.stdout.contains("PRE") && top.stdout.contains("reports/"), "\(top.output)")
        let all = try await Binary.run(["blob", "ls", "-r", storeA])
        #expect(all.stdout.contains("300000  reports/2026/in.bin"), "\(all.output)")

        let clobber = try await Binary.run(["blob", "cp", local, storeB + "copy.bin", "--no-clobber"])
        #expect(clobber.status == 1 && clobber.stderr.contains("refused"), "\(clobber.output)")
        #expect(try await Binary.run(["blob", "rm", storeB + "copy.bin"]).status == 0)
        let missing = try await Binary.run(["blob", "stat", storeB + "copy.bin"])
        #expect(missing.status == 1 && missing.stderr.contains("no object"), "\(missing.output)")
        let presign = try await Binary.run(["blob", "presign", storeA + "reports/2026/in.bin"])
        #expect(presign.status == 1 && presign.stderr.contains("does not sign"), "\(presign.output)")
        let removed = try await Binary.run(["blob", "rm", "-r", storeA + "reports/"])
        #expect(removed.stdout.contains("deleted 1 objects"), "\(removed.output)")
    }
}
