import NIOCore
import NimbusCore
import NimbusDistributedLock
import NimbusRedis

/// Locks in one Redis server: the lease is a key `SET` with `PX` holding `owner token`, the
/// token a counter (`<name>:fence`, never expiring) incremented on every acquisition, each call
/// one Lua script so check-and-set is atomic. Leases expire on the server's clock.
///
/// One server is one point of failure: if it restarts without persistence, a lock can be held
/// twice — which the fencing tokens (kept in the same server) do not catch either. Run it with
/// AOF (`appendfsync everysec` or `always`) where that matters.
///
/// ```swift
/// let locks = DistributedLocks(driver: try RedisDistributedLockDriver(url: "redis://127.0.0.1:6379"))
/// ```
public struct RedisDistributedLockDriver: DistributedLockDriver {
    public var provider: String { "redis" }
    /// The client underneath (shareable with the cache, rate limits, messaging).
    public let client: RedisClient
    private let ownsClient: Bool

    /// Uses an existing client; `close` leaves it open.
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

    public func close() async throws {
        if ownsClient { try await client.shutdown() }
    }

    public func tryAcquire(_ name: String, owner: String, ttl: Duration) async throws -> UInt64? {
        let reply = try await client.run(Self.acquire, keys: [name, name + ":fence"], arguments: [owner, String(Self.milliseconds(ttl))])
        if case .null = reply { return nil }
        return UInt64(clamping: try reply.int(for: "lock acquire script"))
    }

    public func renew(_ name: String, owner: String, token: UInt64, ttl: Duration) async throws -> Bool {
        try await client.run(Self.renew, keys: [name], arguments: [owner + " " + String(token), String(Self.milliseconds(ttl))]).int(for: "lock renew script") == 1
    }

    public func release(_ name: String, owner: String, token: UInt64) async throws -> Bool {
        try await client.run(Self.release, keys: [name], arguments: [owner + " " + String(token)]).int(for: "lock release script") == 1
    }

    public func holder(of name: String) async throws -> LockHolder? {
        let replies = try await client.pipeline([RedisCommand("GET", name), RedisCommand("PTTL", name)])
        guard replies.count == 2, let value = try replies[0].bytes(for: "GET").map({ String(buffer: $0) }) else { return nil }
        let ttl = try replies[1].int(for: "PTTL")
        guard ttl > 0, let space = value.lastIndex(of: " "), let token = UInt64(value[value.index(after: space)...]) else { return nil }
        return LockHolder(owner: String(value[..<space]), token: token, expiresIn: .milliseconds(ttl))
    }

    public func fencedWrite(_ resource: String, value: String, token: UInt64) async throws -> Bool {
        try await client.fencedWrite(resource, value: value, token: token)
    }

    public func fencedRead(_ resource: String) async throws -> FencedValue? {
        try await client.fencedRead(resource).map { FencedValue(value: $0.value, token: $0.token) }
    }

    static func milliseconds(_ duration: Duration) -> Int64 { max(1, duration.nimbusMilliseconds) }

    /// KEYS: lock, fence counter. ARGV: owner, ttl ms. Returns the token, or nil if held.
    static let acquire = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return false end
        local token = redis.call('INCR', KEYS[2])
        redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
        return token
        """)

    /// KEYS: lock. ARGV: "owner token", ttl ms. Returns 1 if extended.
    static let renew = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          return 1
        end
        return 0
        """)

    /// KEYS: lock. ARGV: "owner token". Returns 1 if it was held and is now free.
    static let release = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          return 1
        end
        return 0
        """)
}

extension URLOpenerRegistry where Resource == any DistributedLockDriver {
    /// Adds `redis://` and `rediss://` (TLS); see ``RedisClient/Configuration/init(url:)`` for options.
    public func withRedis() -> Self {
        var copy = self
        copy.register("redis", "rediss") { url in
            RedisDistributedLockDriver(configuration: try RedisClient.Configuration(url: url))
        }
        return copy
    }
}
