import NIOCore
import NimbusCache
import NimbusCore
import NimbusRedis

/// The Redis cache: `GET`/`MGET`, `SET ... PX NX`, `DEL`, and an atomic create-with-TTL increment.
///
/// Multi-key writes go out as one pipeline. Works with any RESP server (Redis, Valkey, KeyDB).
///
/// ```swift
/// let cache = Cache(driver: try RedisCacheDriver(url: "redis://127.0.0.1:6379/0"))
/// ```
public struct RedisCacheDriver: CacheDriver {
    public var provider: String { "redis" }
    /// The client underneath: the escape hatch to every other Redis command.
    public let client: RedisClient
    private let ownsClient: Bool

    /// Uses an existing client (shared with locks, rate limiting...); `close` leaves it open.
    public init(client: RedisClient) {
        self.client = client
        self.ownsClient = false
    }

    /// Creates a client of its own from a `redis://` or `rediss://` URL; `close` shuts it down.
    public init(url: String) throws {
        self.client = try RedisClient(url: url)
        self.ownsClient = true
    }

    init(configuration: RedisClient.Configuration) {
        self.client = RedisClient(configuration: configuration)
        self.ownsClient = true
    }

    public func get(_ keys: [String]) async throws -> [ByteBuffer?] {
        if keys.count == 1 { return [try await client.get(keys[0])] }
        return try await client.mget(keys)
    }

    public func set(_ entries: [CacheEntry], condition: CacheWriteCondition) async throws -> [Bool] {
        let commands = entries.map {
            RedisClient.setCommand($0.key, $0.value, expiration: $0.ttl, condition: condition == .ifAbsent ? .ifAbsent : .always)
        }
        let replies = try await client.pipeline(commands)
        return try replies.map { try $0.isOK(for: "SET") }
    }

    public func delete(_ keys: [String]) async throws -> Int {
        try await client.delete(keys)
    }

    /// INCRBY, then PEXPIRE only if this call created the key — atomically, in one script.
    static let incrementScript = """
        local created = redis.call('EXISTS', KEYS[1]) == 0
        local value = redis.call('INCRBY', KEYS[1], ARGV[1])
        if created and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        return value
        """

    public func increment(_ key: String, by delta: Int64, ttl: Duration?) async throws -> Int64 {
        guard let ttl else { return try await client.increment(key, by: delta) }
        let millis = String(max(1, ttl.nimbusMilliseconds))
        let reply = try await client.eval(Self.incrementScript, keys: [key], arguments: [ByteBuffer(string: String(delta)), ByteBuffer(string: millis)])
        return try reply.int(for: "EVAL(increment)")
    }

    public func close() async throws {
        if ownsClient { try await client.shutdown() }
    }
}

extension URLOpenerRegistry where Resource == any CacheDriver {
    /// Adds `redis://` and `rediss://` (TLS); see ``RedisClient/Configuration/init(url:)`` for options.
    public func withRedis() -> Self {
        var copy = self
        copy.register("redis", "rediss") { url in
            RedisCacheDriver(configuration: try RedisClient.Configuration(url: url))
        }
        return copy
    }
}
