// Rate-limit decisions per second, the Nimbus side of Benchmarks/ratelimit-vs-redis-benchmark/run:
//   RateLimitBenchmark sha URL                      loads the decision script, prints its SHA1 and the EVALSHA arguments
//   RateLimitBenchmark redis URL N CONCURRENCY      N GCRA decisions on one key from CONCURRENCY tasks, through RateLimiter
//   RateLimitBenchmark memory N CONCURRENCY         the same on the embedded driver
// Prints "RESULT <side> <case> <per second>".
import Foundation
import NimbusCore
import NimbusRateLimit
import NimbusRateLimitMemory
import NimbusRateLimitRedis
import NimbusRedis

let arguments = Array(CommandLine.arguments.dropFirst())
/// A policy that admits everything, so both sides do the same work (read, compute, write) on every call.
let policy = RateLimitPolicy.gcra("bench", limit: 1_000_000_000, per: .seconds(3600), burst: 1_000_000_000)
let key = "k"

func decisions(_ limiter: RateLimiter, count: Int, concurrency: Int) async throws -> Double {
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for task in 0..<concurrency {
            let share = count / concurrency + (task < count % concurrency ? 1 : 0)
            group.addTask {
                for _ in 0..<share {
                    guard try await limiter.acquire(key, policy: policy).allowed else { throw NimbusError(.internal, "a decision was refused") }
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = ContinuousClock.now - start
    return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

switch (arguments.first, arguments.count) {
case ("sha", 2):
    let driver = try RedisRateLimitDriver(url: arguments[1])
    let limiter = RateLimiter(driver: driver)
    _ = try await limiter.acquire(key, policy: policy)
    guard let sha = RedisRateLimitDriver.decisionScript.sha1 else { exit(1) }
    // EVALSHA sha numkeys key now minttl algorithm limit period burst cost — exactly what RateLimiter sends.
    print("\(sha) 1 ratelimit:bench:k '' 0 g \(policy.limit) \(policy.periodMicroseconds) \(policy.burst) 1")
    try await limiter.close()
case ("redis", 4):
    let limiter = RateLimiter(driver: try RedisRateLimitDriver(url: arguments[1]))
    let (count, concurrency) = (Int(arguments[2]) ?? 100_000, Int(arguments[3]) ?? 64)
    _ = try await decisions(limiter, count: 2_000, concurrency: concurrency)         // warm-up: connections, script load
    let perSecond = try await Task.detached { try await decisions(limiter, count: count, concurrency: concurrency) }.value
    print("RESULT nimbus redis-gcra \(Int(perSecond))")
    try await limiter.close()
case ("memory", 3):
    let limiter = RateLimiter(driver: MemoryRateLimitDriver())
    let (count, concurrency) = (Int(arguments[1]) ?? 1_000_000, Int(arguments[2]) ?? 64)
    _ = try await decisions(limiter, count: 10_000, concurrency: concurrency)
    let perSecond = try await Task.detached { try await decisions(limiter, count: count, concurrency: concurrency) }.value
    print("RESULT nimbus memory-gcra \(Int(perSecond))")
default:
    FileHandle.standardError.write(Data("usage: RateLimitBenchmark sha URL | redis URL N CONCURRENCY | memory N CONCURRENCY\n".utf8))
    exit(2)
}
