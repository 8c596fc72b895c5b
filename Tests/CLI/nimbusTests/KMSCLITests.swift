import Foundation
import NimbusCore
import NimbusTesting
import Testing

@Suite("nimbus kms", .timeLimit(.minutes(2)))
struct KMSCLITests {
    @Test("create-key, encrypt and decrypt with a keyring file; a wrong context exits 1; rotation keeps old envelopes readable")
    func roundTrip() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kms-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = "local://\(directory.path)/keyring.json"
        let key = try await Binary.run(["kms", "create-key", "--url", url, "--description", "test"])
        let id = key.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.status == 0 && id.hasPrefix("key-"), "\(key.output)")
        let sealed = try await Binary.run(["kms", "encrypt", "--url", url, "--key", id, "--context", "tenant=acme", "--text", "hello kms"])
        let envelope = sealed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(sealed.status == 0 && !envelope.contains("hello"), "\(sealed.output)")
        #expect(try await Binary.run(["kms", "rotate", "--url", url, "--key", id]).status == 0)
        let opened = try await Binary.run(["kms", "decrypt", "--url", url, "--context", "tenant=acme", envelope])
        #expect(opened.status == 0 && opened.stdout == "hello kms", "\(opened.output)")
        let wrong = try await Binary.run(["kms", "decrypt", "--url", url, "--context", "tenant=globex", envelope])
        #expect(wrong.status == 1 && wrong.stderr.contains("refused"), "\(wrong.output)")
    }
}
