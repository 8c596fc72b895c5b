import ArgumentParser
import Foundation
import NimbusCore
import NimbusDistributedLock
import NimbusDistributedLockMemory
import NimbusDistributedLockEtcd
import NimbusDistributedLockPostgres
import NimbusDistributedLockRedis
import NimbusDistributedLockRedlock

/// `nimbus lock`: take, inspect and use distributed locks by URL.
struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Run commands under distributed locks, with fencing tokens (redis://, redlock://, postgres://, etcd://, mem://).",
        discussion: """
        `nimbus lock run NAME -- CMD…` is flock(1) across machines: it takes the lock (waiting up to --wait),
        renews it while CMD runs, and passes the fencing token to CMD as NIMBUS_LOCK_TOKEN. If the lease is
        lost, CMD is sent SIGTERM and the exit status is 75. mem:// locks live only as long as the command.
        """,
        subcommands: [Run.self, Status.self, FencedWrite.self, FencedRead.self]
    )

    /// Options every lock subcommand takes.
    struct Connection: ParsableArguments {
        @Option(help: "Lock backend URL (settings key lock.url, env NIMBUS_LOCK_URL; default mem://).")
        var url: String?

        @Option(help: "Prefix added to every lock name.")
        var prefix: String = "locks:"

        @Option(help: "Settings file (.yaml, .yml or .json).")
        var config: String?

        func open() async throws -> DistributedLocks {
            let url = try await DomainURL.resolve(url, key: "lock.url", default: "mem://", config: config)
            return try await DistributedLocks.open(url, openers: URLOpenerRegistry.distributedLock.withMemory().withRedis().withPostgres().withEtcd().withRedlock(),
                                                   configuration: .init(keyPrefix: prefix))
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a command holding NAME; exit with its status (75 if the lock was lost).")
        @OptionGroup var connection: Connection
        @Argument(help: "The lock's name.") var name: String
        @Option(help: "The lease: a holder that stops renewing loses the lock after this long.") var ttl: String = "30s"
        @Option(help: "How long to wait for the lock (0: fail at once with status 1 if taken).") var wait: String = "0s"
        @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.") var command: [String] = []

        func run() async throws {
            guard let executable = command.first else { throw ValidationError("give the command after --, e.g. nimbus lock run job -- ./job.sh") }
            let ttl = try Duration.commandLine(self.ttl, flag: "ttl"), wait = try Duration.commandLine(self.wait, flag: "wait")
            let locks = try await connection.open()
            let handle: LockHandle
            do {
                handle = try await locks.lock(name, ttl: ttl, timeout: wait)
            } catch let error as NimbusError where error.code == .deadlineExceeded {
                FileHandle.standardError.write(Data("nimbus lock: \(error.message)\n".utf8))
                try? await locks.close()
                throw ExitCode(1)
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + command.dropFirst()
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["NIMBUS_LOCK_TOKEN": String(handle.token), "NIMBUS_LOCK_NAME": name, "NIMBUS_LOCK_OWNER": handle.owner]) { _, new in new }
            let exited = AsyncSignal()
            process.terminationHandler = { _ in exited.signal() }
            try process.run()
            // Whichever comes first: the command exits, or the lease is lost (then the command is stopped).
            let lost = await withTaskGroup(of: Bool.self) { group in
                group.addTask { try? await exited.wait(since: 0); return false }
                group.addTask { await handle.lost(); return true }
                let first = await group.next() ?? false
                group.cancelAll()
                return first && process.isRunning
            }
            if lost {
                FileHandle.standardError.write(Data("nimbus lock: lost lock '\(name)' (token \(handle.token)); stopping the command\n".utf8))
                process.terminate()
            }
            process.waitUntilExit()
            let status = process.terminationStatus
            try? await handle.release()
            try? await locks.close()
            if lost { throw ExitCode(75) }
            if status != 0 { throw ExitCode(status) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print who holds NAME, its token and time left; exit 1 if free.")
        @OptionGroup var connection: Connection
        @Argument(help: "The lock's name.") var name: String

        func run() async throws {
            let locks = try await connection.open()
            let holder = try await locks.closing { try await $0.holder(of: name) }
            guard let holder else { print("free"); throw ExitCode(1) }
            print("held by \(holder.owner) token=\(holder.token) expires-in=\(holder.expiresIn.nimbusFormatted)")
        }
    }

    struct FencedWrite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "fenced-write",
                                                        abstract: "Write VALUE to RESOURCE unless a newer token wrote it; exit 1 if refused.")
        @OptionGroup var connection: Connection
        @Argument(help: "The resource.") var resource: String
        @Argument(help: "The value.") var value: String
        @Option(help: "The writer's fencing token (default: $NIMBUS_LOCK_TOKEN).") var token: UInt64?

        func run() async throws {
            guard let token = token ?? ProcessInfo.processInfo.environment["NIMBUS_LOCK_TOKEN"].flatMap(UInt64.init) else {
                throw ValidationError("give --token, or run under `nimbus lock run` (NIMBUS_LOCK_TOKEN)")
            }
            let locks = try await connection.open()
            let written = try await locks.closing { try await $0.fencedWrite(resource, value: value, token: token) }
            print(written ? "written token=\(token)" : "refused token=\(token): a newer holder wrote \(resource)")
            if !written { throw ExitCode(1) }
        }
    }

    struct FencedRead: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "fenced-read", abstract: "Print RESOURCE's value and the token that wrote it.")
        @OptionGroup var connection: Connection
        @Argument(help: "The resource.") var resource: String

        func run() async throws {
            let locks = try await connection.open()
            guard let value = try await locks.closing({ try await $0.fencedRead(resource) }) else { print("(none)"); throw ExitCode(1) }
            print("\(value.value) token=\(value.token)")
        }
    }
}
