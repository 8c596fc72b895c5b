import Foundation
import NimbusCore
import NimbusTesting
import Testing

@Suite("nimbus msg", .timeLimit(.minutes(2)))
struct MessagingCLITests {
    func store() -> String {
        "sqlite://" + FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-msg-\(IDGenerator.shared.ulid()).sqlite").path
    }

    @Test("publish creates the topic and its queue subscription; consume prints and acks; topics lists")
    func publishConsume() async throws {
        let url = store()
        for body in ["first", "second"] {
            let published = try await Binary.run(["msg", "publish", "--url", url, "orders", body, "--attribute", "source=cli"])
            #expect(published.status == 0, "\(published.output)")
            #expect(published.stdout.trimmingCharacters(in: .whitespacesAndNewlines).count == 26, "a ULID message id: \(published.stdout)")
        }
        let topics = try await Binary.run(["msg", "topics", "--url", url])
        #expect(topics.stdout == "orders: orders\n")
        let consumed = try await Binary.run(["msg", "consume", "--url", url, "orders", "--max", "2", "--timeout", "5"])
        #expect(consumed.status == 0, "\(consumed.output)")
        #expect(consumed.stdout == "first\nsecond\n")
        let again = try await Binary.run(["msg", "consume", "--url", url, "orders", "--timeout", "0.5"])
        #expect(again.status == 0 && again.stdout.isEmpty, "acked messages do not come back: \(again.output)")
        let bad = try await Binary.run(["msg", "publish", "--url", url, "bad name", "x"])
        #expect(bad.status != 0 && bad.stderr.contains("letters, digits"), "\(bad.output)")
        let scheme = try await Binary.run(["msg", "topics", "--url", "kafka9://x"])
        #expect(scheme.status != 0 && scheme.stderr.contains("sqlite://"), "\(scheme.output)")
    }

    @Test("a consumer killed with SIGKILL loses nothing: what it had not acked is delivered again")
    func killedConsumer() async throws {
        let url = store()
        #expect(try await Binary.run(["msg", "create-topic", "--url", url, "jobs"]).status == 0)
        #expect(try await Binary.run(["msg", "subscribe", "--url", url, "jobs", "jobs", "--ack-deadline", "2s"]).status == 0)
        let bodies = (1...5).map { "job-\($0)" }
        for body in bodies { #expect(try await Binary.run(["msg", "publish", "--url", url, "jobs", body]).status == 0) }

        let process = Process()
        process.executableURL = try Binary.url()
        process.arguments = ["msg", "consume", "--url", url, "jobs"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let (first, read) = await ProcessRunner.firstLine(from: out.fileHandleForReading, timeout: .seconds(30)) { line -> String? in line.isEmpty ? nil : line }
        kill(process.processIdentifier, SIGKILL)   // no chance to ack, close or checkpoint
        _ = try await ProcessRunner.wait(for: process, timeout: .seconds(10))
        _ = try #require(first, "the consumer printed nothing")
        // Whatever it printed before it died (its last message may or may not have been acked).
        let rest = String(decoding: out.fileHandleForReading.readAllBytes(), as: UTF8.self)
        let seenBeforeKill = (read + rest).split(separator: "\n").map(String.init)
        #expect(Set(seenBeforeKill).isSubset(of: bodies))

        let after = try await Binary.run(["msg", "consume", "--url", url, "jobs", "--timeout", "6"])
        #expect(after.status == 0, "the store opens after the kill: \(after.output)")
        let seenAfter = after.stdout.split(separator: "\n").map(String.init)
        #expect(Set(seenAfter + seenBeforeKill) == Set(bodies), "every message was consumed, before or after the kill: \(seenBeforeKill) then \(seenAfter)")
        #expect(Set(seenAfter).count == seenAfter.count)
    }

    @Test("publish and consume through JetStream with nats://", .requires(.nats))
    func nats() async throws {
        let url = try Peer.nats.url() + "?subject_prefix=cli\(IDGenerator.shared.ulid())"
        let topic = "cli-\(IDGenerator.shared.ulid())"
        let published = try await Binary.run(["msg", "publish", "--url", url, topic, "over nats", "--attribute", "k=v"])
        #expect(published.status == 0, "\(published.output)")
        let consumed = try await Binary.run(["msg", "consume", "--url", url, topic, "--max", "1", "--timeout", "5", "--verbose"])
        #expect(consumed.status == 0, "\(consumed.output)")
        #expect(consumed.stdout.hasSuffix("over nats\n") && consumed.stdout.contains("attempt=1 k=v"), "\(consumed.stdout)")
        #expect(try await Binary.run(["msg", "delete-topic", "--url", url, topic]).status == 0)
    }
}
