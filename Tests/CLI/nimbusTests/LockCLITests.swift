import Foundation
import NimbusCore
import NimbusDistributedLock
import NimbusDistributedLockRedis
import NimbusTesting
import Testing

@Suite("nimbus lock", .timeLimit(.minutes(2)))
struct LockCLITests {
    @Test("run passes the token to the command and exits with its status; a taken lock fails at once", .requires(.redis))
    func runAndStatus() async throws {
        let url = try Peer.redis.url(), name = "cli-\(IDGenerator.shared.ulid())"
        let ran = try await Binary.run(["lock", "run", "--url", url, name, "--", "sh", "-c", "echo token=$NIMBUS_LOCK_TOKEN name=$NIMBUS_LOCK_NAME; exit 3"])
        #expect(ran.status == 3, "\(ran.output)")
        #expect(ran.stdout.hasPrefix("token=1 name=\(name)"), "\(ran.stdout)")
        #expect(try await Binary.run(["lock", "status", "--url", url, name]).stdout == "free\n")
        let locks = DistributedLocks(driver: try RedisDistributedLockDriver(url: url))
        let held = try #require(try await locks.tryLock(name, ttl: .seconds(30), owner: "test-holder"))
        let status = try await Binary.run(["lock", "status", "--url", url, name])
        #expect(status.stdout.hasPrefix("held by test-holder token=2"), "\(status.output)")
        let refused = try await Binary.run(["lock", "run", "--url", url, name, "--", "true"])
        #expect(refused.status == 1 && refused.stderr.contains("test-holder"), "\(refused.output)")
        try await held.release()
        try await locks.close()
        let none = try await Binary.run(["lock", "run", "--url", url, name])
        #expect(none.status != 0 && none.stderr.contains("after --"), "\(none.output)")
    }

    /// Kleppmann's scenario: the holder is paused (SIGSTOP) past its lease, a second client takes the lock with a
    /// higher token and writes; the paused holder resumes and writes with its old token — the storage guard refuses.
    @Test("a holder paused past its lease cannot overwrite the new holder's write (fencing)", .requires(.redis))
    func pausedHolderIsFenced() async throws {
        let url = try Peer.redis.url(), name = "fault-\(IDGenerator.shared.ulid())", resource = "ledger-\(IDGenerator.shared.ulid())"
        let binary = try Binary.url().path
        let process = Process()
        process.executableURL = try Binary.url()
        // The command reports its token and pid, then stops itself (its "GC pause"); when resumed it writes.
        process.arguments = ["lock", "run", "--url", url, name, "--ttl", "1s", "--", "sh", "-c",
                             "echo \"token $NIMBUS_LOCK_TOKEN pid $$\"; kill -STOP $$; \"\(binary)\" lock fenced-write --url \(url) \(resource) from-a"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let (line, _) = await ProcessRunner.firstLine(from: out.fileHandleForReading, timeout: .seconds(30)) { line -> String? in
            line.hasPrefix("token ") ? line : nil
        }
        let words = try #require(line, "the holder printed no token").split(separator: " ")
        let (oldToken, child) = (try #require(UInt64(words[1])), try #require(Int32(words[3])))
        kill(process.processIdentifier, SIGSTOP)          // the holder's keep-alive stops too
        try await Task.sleep(for: .milliseconds(1600))     // past its 1 s lease

        let locks = DistributedLocks(driver: try RedisDistributedLockDriver(url: url))
        let newHolder = try #require(try await locks.tryLock(name, ttl: .seconds(30), owner: "second"), "the expired lease was not free")
        #expect(newHolder.token > oldToken)
        #expect(try await locks.fencedWrite(resource, value: "from-b", token: newHolder.token))

        kill(child, SIGCONT)                               // the paused client wakes up and writes with its stale token
        let (refusal, _) = await ProcessRunner.firstLine(from: out.fileHandleForReading, timeout: .seconds(30)) { line -> String? in
            line.hasPrefix("refused") || line.hasPrefix("written") ? line : nil
        }
        kill(process.processIdentifier, SIGCONT)
        let status = try await ProcessRunner.wait(for: process, timeout: .seconds(20))
        #expect(refusal?.hasPrefix("refused token=\(oldToken)") == true, "\(refusal ?? "no answer")")
        #expect(status == 1 || status == 75, "the command failed or the lock was reported lost: \(status)")
        #expect(try await locks.fencedRead(resource) == FencedValue(value: "from-b", token: newHolder.token))
        try await newHolder.release()
        try await locks.close()
    }
}
