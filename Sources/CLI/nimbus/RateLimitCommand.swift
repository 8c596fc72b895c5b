import ArgumentParser
import Foundation
import NimbusCore
import NimbusRateLimit
import NimbusRateLimitMemory
import NimbusRateLimitRedis

/// `nimbus ratelimit`: charge, inspect and reset rate limits by URL.
struct RateLimitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ratelimit",
        abstract: "Charge, inspect and reset rate limits (redis://, rediss://, mem://).",
        discussion: """
        Policies are [ALGORITHM:]LIMIT/PERIOD[;burst=N] — gcra (default), token-bucket, fixed-window,
        sliding-window — e.g. 100/1m, gcra:10/1s;burst=20, sliding-window:600/1m.
        mem:// lives only as long as the command; share limits between processes with redis://.
        """,
        subcommands: [Check.self, Status.self, Reset.self, Probe.self]
    )

    /// Options every rate-limit subcommand takes.
    struct Connection: ParsableArguments {
        @Option(help: "Rate-limit backend URL (settings key ratelimit.url, env NIMBUS_RATELIMIT_URL; default mem://).")
        var url: String?

        @Option(help: "Prefix added to every key.")
        var prefix: String = "ratelimit:"

        @Option(help: "Settings file (.yaml, .yml or .json).")
        var config: String?

        @Option(help: "The policy: [ALGORITHM:]LIMIT/PERIOD[;burst=N].")
        var policy: String

        @Option(help: "The policy's name (part of the key; the name in RateLimit headers).")
        var name: String = "default"

        func open() async throws -> (RateLimiter, RateLimitPolicy) {
            let parsed = try RateLimitPolicy.parse(policy, name: name)
            let url = try await DomainURL.resolve(url, key: "ratelimit.url", default: "mem://", config: config)
            let limiter = try await RateLimiter.open(url, openers: URLOpenerRegistry.rateLimit.withMemory().withRedis(),
                                                     configuration: .init(keyPrefix: prefix))
            return (limiter, parsed)
        }
    }

    static func describe(_ decision: RateLimitDecision) -> String {
        let state = decision.states.first
        var line = decision.allowed ? "allowed" : "refused"
        if let state { line += " remaining=\(state.remaining) reset=\(state.resetAfter.nimbusFormatted)" }
        if let wait = decision.retryAfter { line += " retry-after=\(wait.nimbusFormatted)" }
        return line
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Charge KEY; print the decision; exit 1 if refused.")
        @OptionGroup var connection: Connection
        @Argument(help: "Whose budget (user:42, ip:203.0.113.9).") var key: String
        @Option(help: "Units to charge.") var cost: Int = 1

        func run() async throws {
            let (limiter, policy) = try await connection.open()
            let decision = try await limiter.closing { try await $0.acquire(key, policy: policy, cost: cost) }
            print(RateLimitCommand.describe(decision))
            if !decision.allowed { throw ExitCode(1) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print where KEY stands, without charging it.")
        @OptionGroup var connection: Connection
        @Argument(help: "Whose budget.") var key: String

        func run() async throws {
            let (limiter, policy) = try await connection.open()
            let decision = try await limiter.closing { try await $0.acquire(key, policy: policy, cost: 0) }
            print(RateLimitCommand.describe(decision))
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make KEY's quota whole again.")
        @OptionGroup var connection: Connection
        @Argument(help: "Whose budget.") var key: String

        func run() async throws {
            let (limiter, policy) = try await connection.open()
            try await limiter.closing { try await $0.reset(key, policy: policy) }
            print("OK")
        }
    }

    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Charge KEY REQUESTS times from TASKS concurrent tasks; print how many were admitted and the rate.",
            discussion: "A load and correctness probe: run it from several processes at once against one redis:// and the admitted total never exceeds the policy.")
        @OptionGroup var connection: Connection
        @Argument(help: "Whose budget.") var key: String
        @Option(help: "Charges in all.") var requests: Int = 1000
        @Option(help: "Concurrent tasks.") var tasks: Int = 64

        func run() async throws {
            guard requests >= 1, tasks >= 1, tasks <= 4096 else { throw ValidationError("--requests must be ≥ 1 and --tasks 1...4096") }
            let (limiter, policy) = try await connection.open()
            let start = ContinuousClock.now
            let (requests, tasks, key) = (self.requests, self.tasks, self.key)
            let admitted = try await limiter.closing { limiter in
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for task in 0..<tasks {
                        let share = requests / tasks + (task < requests % tasks ? 1 : 0)
                        group.addTask {
                            var count = 0
                            for _ in 0..<share where try await limiter.acquire(key, policy: policy).allowed { count += 1 }
                            return count
                        }
                    }
                    return try await group.reduce(0, +)
                }
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("admitted \(admitted) of \(requests) in \(elapsed.nimbusFormatted) (\(Int(Double(requests) / max(seconds, 1e-9))) decisions/s)")
        }
    }
}
