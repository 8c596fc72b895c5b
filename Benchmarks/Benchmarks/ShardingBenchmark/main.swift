// Placement quality and speed of NimbusSharding's selectors (Benchmarks/sharding-distribution/run):
// for N shards and K keys: keys per shard (max/mean, min/mean), the fraction of keys that move when
// shard N+1 is added (against the least possible, 1/(N+1)), and lookups per second on one core.
// Prints a Markdown table.
import Foundation
import NimbusSharding

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let shardCount = arguments.first ?? 10, keyCount = arguments.dropFirst().first ?? 1_000_000
let names = (0..<shardCount).map { "shard-\($0)" }, grown = names + ["shard-\(shardCount)"]
let keys = (0..<keyCount).map { "key-\($0)" }

func measure(_ name: String, _ before: any ShardSelector, _ after: any ShardSelector) -> String {
    var counts: [String: Int] = [:]
    var moved = 0
    let start = ContinuousClock.now
    for key in keys { counts[before.shard(for: key), default: 0] += 1 }
    let elapsed = ContinuousClock.now - start
    for key in keys where before.shard(for: key) != after.shard(for: key) { moved += 1 }
    let mean = Double(keyCount) / Double(shardCount)
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let fraction = Double(moved) / Double(keyCount), minimum = 1 / Double(shardCount + 1)
    return String(format: "| %@ | %.4f | %.4f | %.4f | %.4f | %.2f× | %.1f M/s |", name, Double(counts.values.max() ?? 0) / mean,
                  Double(counts.values.min() ?? 0) / mean, fraction, minimum, fraction / minimum, Double(keyCount) / seconds / 1e6)
}

print("\(shardCount) shards, \(keyCount) keys; moved = keys changing shard when shard \(shardCount + 1) is added\n")
print("| algorithm | max/mean | min/mean | moved | least possible | moved / least | lookups (incl. hashing) |")
print("|---|---|---|---|---|---|---|")
print(measure("ring, 160 vnodes", HashRing(shards: names), HashRing(shards: grown)))
print(measure("ring, 1000 vnodes", HashRing(shards: names, virtualNodes: 1000), HashRing(shards: grown, virtualNodes: 1000)))
print(measure("jump", JumpHash(shards: names), JumpHash(shards: grown)))
print(measure("rendezvous", RendezvousHash(shards: names), RendezvousHash(shards: grown)))
print(measure("maglev, M=65537", MaglevHash(shards: names), MaglevHash(shards: grown)))
