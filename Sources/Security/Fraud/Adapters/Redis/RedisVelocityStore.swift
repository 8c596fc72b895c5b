import Foundation
import NIOCore
import NimbusCore
import NimbusFraud
import NimbusRedis

/// Velocity counters in Redis (`redis://`, `rediss://`), shared by every instance: one sorted set
/// per key (member → latest time in ms), read and written by one Lua script so an observation is
/// atomic (`ZADD GT` keeps a member's latest time; Redis 6.2 or later), and expired by Redis after its retention.
public struct RedisVelocityStore: VelocityStore {
    /// The client underneath.
    public let client: RedisClient
    /// Prepended to every key (`nimbus:velocity:` by default).
    public let keyPrefix: String
    private let ownsClient: Bool

    /// Uses an existing client; `close` leaves it open.
    public init(client: RedisClient, keyPrefix: String = "nimbus:velocity:") {
        self.client = client
        self.keyPrefix = keyPrefix
        ownsClient = false
    }

    init(configuration: RedisClient.Configuration, keyPrefix: String) {
        client = RedisClient(configuration: configuration)
        self.keyPrefix = keyPrefix
        ownsClient = true
    }

    public var provider: String { "redis" }
    public func close() async throws { if ownsClient { try await client.shutdown() } }

    // ARGV: time, member, window start, retention cutoff, retention ms.
    static let observeScript = RedisScript("""
    local previous = redis.call('ZSCORE', KEYS[1], ARGV[2])
    local seen = 0
    if previous and tonumber(previous) >= tonumber(ARGV[4]) then seen = 1 end
    local before = redis.call('ZCOUNT', KEYS[1], ARGV[3], '+inf')
    redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    local after = redis.call('ZCOUNT', KEYS[1], ARGV[3], '+inf')
    return {seen, before, after}
    """)

    public func observe(_ key: String, member: String, at time: Date, window: Duration, retain: Duration) async throws -> VelocityObservation {
        let now = time.nimbusMilliseconds
        let reply = try await client.run(Self.observeScript, keys: [keyPrefix + key],
                                         arguments: [String(now), member, String(now - window.nimbusMilliseconds), String(now - retain.nimbusMilliseconds),
                                                     String(max(1, retain.nimbusMilliseconds))])
        let values = try (reply.array(for: "velocity observe") ?? []).map { try $0.int(for: "velocity observe") }
        guard values.count == 3 else { throw NimbusError(.internal, "the velocity script answered \(values.count) values, expected 3") }
        return VelocityObservation(seenBefore: values[0] == 1, countBefore: Int(values[1]), countAfter: Int(values[2]))
    }
}

extension URLOpenerRegistry where Resource == any VelocityStore {
    /// Adds `redis://` and `rediss://` (option `prefix`, default `nimbus:velocity:`).
    public func withRedis() -> Self {
        var copy = self
        copy.register("redis", "rediss") { url in
            let prefix = url.options.string("prefix") ?? "nimbus:velocity:"
            return RedisVelocityStore(configuration: try RedisClient.Configuration(url: url.removingOptions(["prefix"])), keyPrefix: prefix)
        }
        return copy
    }
}
