import Dispatch
import Foundation
import NimbusCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program to completion off Swift's cooperative thread pool. Waiting for a process blocks
/// a thread; on the pool (two threads on a two-core machine) that starves every other test's
/// timers and I/O for as long as the program runs.
///
/// ```swift
/// let result = try await ProcessRunner.run("/usr/bin/python3", ["check.py", baseURL], environment: ["KEY": key])
/// #expect(result.status == 0, "\(result.output)")
/// ```
public enum ProcessRunner {
    /// What a program did.
    public struct Result: Sendable {
        /// The exit status.
        public var status: Int32
        /// Standard output.
        public var stdout: String
        /// Standard error.
        public var stderr: String
        /// Both, for messages.
        public var output: String { stdout + stderr }
    }

    /// Runs `executable` with `arguments`, the current environment overlaid with `environment`,
    /// and `input` (if any) written to its standard input.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], input: [UInt8]? = nil) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: executable)
                    process.arguments = arguments
                    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
                    let out = Pipe(), err = Pipe()
                    process.standardOutput = out
                    process.standardError = err
                    let stdin = input.map { _ in Pipe() }
                    if let stdin { process.standardInput = stdin }
                    try process.run()
                    if let stdin, let input {
                        // Written on its own queue: a large input must not block while the program's output fills its pipe.
                        DispatchQueue.global().async {
                            stdin.fileHandleForWriting.writeAllBytes(input)
                            try? stdin.fileHandleForWriting.close()
                        }
                    }
                    // Read both pipes concurrently so neither fills up and blocks the program.
                    let group = DispatchGroup()
                    nonisolated(unsafe) var stderr = Data()
                    group.enter()
                    DispatchQueue.global().async {
                        stderr = err.fileHandleForReading.readAllBytes()
                        group.leave()
                    }
                    let stdout = out.fileHandleForReading.readAllBytes()
                    group.wait()
                    process.waitUntilExit()
                    continuation.resume(returning: Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                                                          stderr: String(decoding: stderr, as: UTF8.self)))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Waits for a started process to exit and returns its status (polling: Foundation's
    /// `waitUntilExit` spins a CPU on Linux threads without a run loop).
    /// - Throws: `deadlineExceeded` after `timeout`, having stopped the process.
    public static func wait(for process: Process, timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                stop(process)
                throw NimbusError(.deadlineExceeded, "process \(process.executableURL?.lastPathComponent ?? "?") did not exit within \(timeout); it was stopped")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Stops a process a test started: SIGTERM, then SIGKILL if it is still running after `grace`
    /// (servers that shut down gracefully can wait forever on an idle keep-alive connection).
    public static func stop(_ process: Process, grace: Duration = .seconds(1)) {
        guard process.isRunning else { return }
        process.terminate()
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + Double(grace.nimbusMilliseconds) / 1000) {
            if process.isRunning { kill(pid, SIGKILL) }
        }
    }

    /// Reads lines from `handle` off the cooperative pool until `match` returns a value or the
    /// stream ends or `timeout` passes. Returns the value and all text read.
    public static func firstLine<T: Sendable>(from handle: FileHandle, timeout: Duration,
                                              _ match: @escaping @Sendable (String) -> T?) async -> (T?, String) {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var buffer = Data()
                let deadline = ContinuousClock.now + timeout
                while ContinuousClock.now < deadline {
                    let chunk = handle.readAvailableBytes()
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n") {
                        if let found = match(String(line)) {
                            continuation.resume(returning: (found, String(decoding: buffer, as: UTF8.self)))
                            return
                        }
                    }
                }
                continuation.resume(returning: (nil, String(decoding: buffer, as: UTF8.self)))
            }
        }
    }
}
