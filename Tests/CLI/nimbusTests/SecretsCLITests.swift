import Foundation
import NimbusCore
import NimbusTesting
import Testing

@Suite("nimbus secrets", .timeLimit(.minutes(2)))
struct SecretsCLITests {
    @Test("keygen, put from standard input, get byte for byte, versions, ls, rm; a missing secret exits 1 and no value is printed by ls")
    func roundTrip() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("secrets-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = directory.appendingPathComponent("age-key.txt").path
        let made = try await Binary.run(["secrets", "keygen", "-o", key])
        #expect(made.status == 0 && made.stdout.hasPrefix("age1"), "\(made.output)")
        #expect(try await Binary.run(["secrets", "keygen", "-o", key]).status != 0)
        let url = "age://\(directory.path)/secrets.age?identity=\(key)"
        let binary: [UInt8] = [0x00, 0xff, 0x0a, 0x41]
        let first = try await Binary.run(["secrets", "put", "--url", url, "db/password"], input: Array("hunter2\n".utf8))
        #expect(first.status == 0 && first.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(first.output)")
        #expect(try await Binary.run(["secrets", "put", "--url", url, "db/password", "--text", "hunter3"]).status == 0)
        #expect(try await Binary.run(["secrets", "put", "--url", url, "blob"], input: binary).status == 0)
        let current = try await Binary.run(["secrets", "get", "--url", url, "db/password"])
        #expect(current.status == 0 && current.stdout == "hunter3", "\(current.output)")
        let old = try await Binary.run(["secrets", "get", "--url", url, "db/password", "--version", "1"])
        #expect(old.stdout == "hunter2\n")
        let versions = try await Binary.run(["secrets", "versions", "--url", url, "db/password"])
        #expect(versions.stdout.split(separator: "\n").map { String($0.prefix(3)) } == ["* 2", "  1"], "\(versions.output)")
        let names = try await Binary.run(["secrets", "ls", "--url", url])
        #expect(names.stdout == "blob\ndb/password\n" && !names.stdout.contains("hunter"))
        #expect(try await Binary.run(["secrets", "rm", "--url", url, "blob"]).status == 0)
        let missing = try await Binary.run(["secrets", "get", "--url", url, "blob"])
        #expect(missing.status == 1 && missing.stderr.contains("refused") && missing.stdout.isEmpty, "\(missing.output)")
        let traversal = try await Binary.run(["secrets", "get", "--url", url, "../etc/passwd"])
        #expect(traversal.status == 1 && traversal.stderr.contains("not valid"), "\(traversal.output)")
    }
}
