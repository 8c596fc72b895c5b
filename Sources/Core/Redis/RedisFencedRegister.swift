import NIOCore
import NimbusCore

/// A fenced register in Redis: a value written only by a writer whose fencing token is at least the
/// last writer's (one hash per resource: `token`, `value`). The storage guard that lock holders write
/// through, shared by the Redis and Redlock lock drivers.
///
/// ```swift
/// let written = try await client.fencedWrite("ledger", value: "v2", token: 42)   // false if a token > 42 wrote
/// ```
extension RedisClient {
    static let fencedWriteScript = RedisScript("""
        local current = tonumber(redis.call('HGET', KEYS[1], 'token'))
        if current and current > tonumber(ARGV[1]) then return 0 end
        redis.call('HSET', KEYS[1], 'token', ARGV[1], 'value', ARGV[2])
        return 1
        """)

    /// Writes `value` under `resource` unless a newer token wrote it; returns whether it wrote.
    public func fencedWrite(_ resource: String, value: String, token: UInt64) async throws -> Bool {
        try await run(Self.fencedWriteScript, keys: [resource], arguments: [String(token), value]).int(for: "fenced write script") == 1
    }

    /// The last fenced write to `resource`: its value and token.
    public func fencedRead(_ resource: String) async throws -> (value: String, token: UInt64)? {
        let reply = try await send(RedisCommand("HMGET", resource, "token", "value"))
        guard let fields = try reply.array(for: "HMGET"), fields.count == 2,
              let token = try fields[0].bytes(for: "HMGET").flatMap({ UInt64(String(buffer: $0)) }),
              let value = try fields[1].bytes(for: "HMGET").map({ String(buffer: $0) }) else { return nil }
        return (value, token)
    }
}
