import Benchmark
import Foundation
import NIOCore
import NimbusCache
import NimbusCacheMemory
import NimbusCore
import NimbusRedis

// Cache benchmarks.
//
// - The memory cache through the portable `Cache` (what services call) and its driver alone.
// - The Redis client's pipelined SET and GET, shaped like `redis-benchmark -P 16 -t get,set`
//   (50 concurrent clients, pipelines of 16, 3-byte values, one key), against the server named
//   by NIMBUS_PEER_REDIS_URL. `Benchmarks/run` runs redis-benchmark against the same server in
//   the same run and prints the ratio.

let redisURL = ProcessInfo.processInfo.environment["NIMBUS_PEER_REDIS_URL"]
let clients = 50
let pipelineDepth = 16
let pipelinesPerClient = 125                        // 50 × 125 × 16 = 100,000 commands per iteration
let commandsPerIteration = clients * pipelinesPerClient * pipelineDepth
/// Connections in the client pool (NIMBUS_BENCH_POOL; the client default is 4).
let poolSize = Int(ProcessInfo.processInfo.environment["NIMBUS_BENCH_POOL"] ?? "") ?? 4

/// Runs one iteration of the redis-benchmark-shaped load and returns commands per second.
func pipelinedLoad(_ client: RedisClient, _ command: RedisCommand) async throws -> Double {
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<clients {
            group.addTask {
                let batch = Array(repeating: command, count: pipelineDepth)
                for _ in 0..<pipelinesPerClient {
                    let replies = try await client.pipeline(batch)
                    if case .error(let error) = replies[0] { throw error }
                }
            }
        }
        try await group.waitForAll()
    }
    return Double(commandsPerIteration) / (ContinuousClock.now - start).nimbusSeconds
}

/// Best and median commands per second seen across iterations, printed for `Benchmarks/run`.
final class Rates: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: [Double]] = [:]
    func add(_ name: String, _ value: Double) { lock.lock(); values[name, default: []].append(value); lock.unlock() }
    func report(_ name: String) {
        lock.lock(); defer { lock.unlock() }
        guard let list = values[name]?.sorted(), !list.isEmpty else { return }
        print("NIMBUS_RATE \(name) median=\(Int(list[list.count / 2])) best=\(Int(list.last ?? 0)) iterations=\(list.count)")
    }
}
let rates = Rates()

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(5), maxIterations: 1_000_000)

    // MARK: Memory cache

    Benchmark("Memory cache get (hit), via Cache", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let cache = Cache(driver: MemoryCacheDriver(maxEntries: 10_000))
        let keys = (0..<1000).map { "user:\($0)" }
        for key in keys { try await cache.set(key, bytes: ByteBuffer(string: "value-\(key)")) }
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(try await cache.get(keys[index % keys.count]))
        }
    }

    Benchmark("Memory cache set, via Cache", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let cache = Cache(driver: MemoryCacheDriver(maxEntries: 10_000))
        let keys = (0..<1000).map { "user:\($0)" }
        let value = ByteBuffer(string: "value")
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            try await cache.set(keys[index % keys.count], bytes: value, ttl: .seconds(60))
        }
    }

    Benchmark("Memory driver get (hit), no portable layer", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let driver = MemoryCacheDriver(maxEntries: 10_000)
        let keys = (0..<1000).map { "user:\($0)" }
        _ = try await driver.set(keys.map { CacheEntry(key: $0, value: ByteBuffer(string: "v"), ttl: nil) }, condition: .always)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(try await driver.get([keys[index % keys.count]]))
        }
    }

    Benchmark("Memory cache set with LRU eviction (10k bound)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let cache = Cache(driver: MemoryCacheDriver(maxEntries: 10_000))
        let value = ByteBuffer(string: "value")
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            try await cache.set("k\(index)", bytes: value)
        }
    }

    // MARK: Redis, shaped like redis-benchmark -P 16 -c 50 -t set,get

    guard let redisURL else {
        print("NIMBUS_PEER_REDIS_URL is not set: Redis benchmarks skipped (run Benchmarks/run, which starts redis-server)")
        return
    }
    let redisConfiguration = Benchmark.Configuration(metrics: [.wallClock, .throughput], maxDuration: .seconds(10), maxIterations: 20,
                                                     teardown: { rates.report("SET"); rates.report("GET") })

    Benchmark("Redis pipelined SET (50 clients × P16, 100k commands/iteration)", configuration: redisConfiguration) { benchmark in
        let client = try RedisClient(url: redisURL + "?pool=\(poolSize)")
        try await client.ping()
        let command = RedisCommand("SET", "key:__rand_int__", "xxx")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            rates.add("SET", try await pipelinedLoad(client, command))
        }
        benchmark.stopMeasurement()
        try await client.shutdown()
    }

    Benchmark("Redis pipelined GET (50 clients × P16, 100k commands/iteration)", configuration: redisConfiguration) { benchmark in
        let client = try RedisClient(url: redisURL + "?pool=\(poolSize)")
        try await client.set("key:__rand_int__", to: "xxx")
        let command = RedisCommand("GET", "key:__rand_int__")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            rates.add("GET", try await pipelinedLoad(client, command))
        }
        benchmark.stopMeasurement()
        try await client.shutdown()
    }
}
