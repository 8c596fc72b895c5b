import NIOCore
import NimbusCore
import Synchronization

/// A Lua script run by its SHA1 (`EVALSHA`), so each call sends the script's 40-byte digest instead
/// of its text. The digest comes from `SCRIPT LOAD` on first use; a server that lost its script
/// cache (restart, `SCRIPT FLUSH`, failover) answers `NOSCRIPT`, and the script is loaded again.
///
/// ```swift
/// static let bump = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
/// let value = try await client.run(Self.bump, keys: ["hits"], arguments: ["1"]).int(for: "bump")
/// ```
public final class RedisScript: Sendable {
    /// The Lua source.
    public let source: String
    private let digest = Mutex<String?>(nil)

    /// Creates a script; nothing is sent until it first runs.
    public init(_ source: String) { self.source = source }

    /// The SHA1 the server gave for the script, once loaded.
    public var sha1: String? { digest.withLock { $0 } }

    func remember(_ sha: String?) { digest.withLock { $0 = sha } }
}

extension RedisClient {
    /// Runs `script` with `EVALSHA`, loading it first if this client has not yet (or the server forgot it).
    /// - Throws: the script's own error replies as `NimbusError`s naming the script's first line.
    @discardableResult
    public func run(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RESPValue {
        try await run(script, keys: keys, arguments: arguments.map { ByteBuffer(string: $0) })
    }

    /// ``run(_:keys:arguments:)`` with binary arguments.
    @discardableResult
    public func run(_ script: RedisScript, keys: [String], arguments: [ByteBuffer]) async throws -> RESPValue {
        for _ in 0..<2 {
            let sha: String
            if let known = script.sha1 {
                sha = known
            } else {
                guard let loaded = try await send(RedisCommand("SCRIPT", "LOAD", script.source)).bytes(for: "SCRIPT LOAD") else {
                    throw NimbusError(.internal, "Redis answered SCRIPT LOAD with null; is this a Redis-compatible server with scripting?")
                }
                sha = String(buffer: loaded)
                script.remember(sha)
            }
            let reply = try await pipeline([RedisCommand("EVALSHA", arguments: [ByteBuffer(string: sha), ByteBuffer(string: String(keys.count))]
                                                          + keys.map { ByteBuffer(string: $0) } + arguments)])
            guard let first = reply.first else { throw NimbusError(.internal, "Redis returned no reply to EVALSHA") }
            if case .error(let error) = first.unwrapped, error.code == "NOSCRIPT" {
                script.remember(nil)
                continue
            }
            return try first.checked(for: "EVALSHA")
        }
        throw NimbusError(.unavailable, "Redis forgot a script twice in a row (SCRIPT FLUSH in a loop, or a failover); try again")
    }
}
