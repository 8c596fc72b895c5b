import Foundation
import NimbusCore
import NimbusTesting
import Testing

@Suite("nimbus ratelimit", .timeLimit(.minutes(2)))
struct RateLimitCLITests {
    @Test("check charges and prints the decision; bad policies and impossible costs are explained")
    func checkStatusReset() async throws {
        let allowed = try await Binary.run(["ratelimit", "check", "--policy", "gcra:5/1m", "user:1"])
        #expect(allowed.status == 0, "\(allowed.output)")
        #expect(allowed.stdout.hasPrefix("allowed remaining=4 reset=12s"), "\(allowed.stdout)")
        let bad = try await Binary.run(["ratelimit", "check", "--policy", "leaky:5/1m", "user:1"])
        #expect(bad.status != 0 && bad.stderr.contains("token-bucket, gcra, fixed-window, sliding-window"), "\(bad.output)")
        let tooBig = try await Binary.run(["ratelimit", "check", "--policy", "5/1m", "--cost", "6", "user:1"])
        #expect(tooBig.status != 0 && tooBig.stderr.contains("can never be admitted"), "\(tooBig.output)")
    }

    @Test("4 processes × 64 tasks against one Redis never admit more than the limit", .requires(.redis))
    func manyProcesses() async throws {
        let url = try Peer.redis.url()
        let key = "probe:\(IDGenerator.shared.ulid())"
        for policy in ["gcra:100/1h", "token-bucket:100/1h", "fixed-window:100/1h", "sliding-window:100/1h"] {
            let results = try await withThrowingTaskGroup(of: ProcessRunner.Result.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await Binary.run(["ratelimit", "probe", "--url", url, "--policy", policy, "--name", String(policy.prefix { $0 != ":" }), key,
                                              "--requests", "256", "--tasks", "64"])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            var total = 0
            for result in results {
                #expect(result.status == 0, "\(result.output)")
                let admitted = result.stdout.split(separator: " ").dropFirst().first.flatMap { Int($0) }
                total += try #require(admitted, "\(result.stdout)")
            }
            // 1024 attempts within an hour: exactly the limit, never more.
            #expect(total == 100, "\(policy): \(results.map(\.stdout))")
            let status = try await Binary.run(["ratelimit", "status", "--url", url, "--policy", policy, "--name", String(policy.prefix { $0 != ":" }), key])
            #expect(status.stdout.hasPrefix("allowed remaining=0"), "\(status.output)")
            let reset = try await Binary.run(["ratelimit", "reset", "--url", url, "--policy", policy, "--name", String(policy.prefix { $0 != ":" }), key])
            #expect(reset.status == 0)
            let after = try await Binary.run(["ratelimit", "status", "--url", url, "--policy", policy, "--name", String(policy.prefix { $0 != ":" }), key])
            #expect(after.stdout.hasPrefix("allowed remaining=100"), "\(after.output)")
        }
        // A refused check exits 1 and says when to come back.
        let policy = "fixed-window:1/1h"
        #expect(try await Binary.run(["ratelimit", "check", "--url", url, "--policy", policy, key + ":once"]).status == 0)
        let refused = try await Binary.run(["ratelimit", "check", "--url", url, "--policy", policy, key + ":once"])
        #expect(refused.status == 1 && refused.stdout.hasPrefix("refused remaining=0") && refused.stdout.contains("retry-after="), "\(refused.output)")
    }
}
