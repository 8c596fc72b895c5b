import Foundation
import NIOCore
import NimbusCore
import NimbusLLM
import NimbusLLMMemory
import NimbusRedis

/// Conversations in Redis: a list of JSON messages per conversation plus a small hash holding its
/// TTL, both expiring together. Every write is one Lua script, so concurrent appends from any number
/// of instances each land whole, and the TTL is renewed in the same step.
///
/// Keys are `<prefix>{<id>}:messages` and `<prefix>{<id>}:meta` — the hash tag keeps both in one
/// cluster slot.
///
/// ```swift
/// let store = RedisConversationStore(client: try RedisClient(url: "redis://127.0.0.1:6379/0"), defaultTTL: .seconds(86_400))
/// let memory = ConversationMemory(store: store, policy: TokenLimited(maxTokens: 8000, model: "gpt-4o"))
/// ```
public struct RedisConversationStore: ConversationStore {
    /// The client underneath.
    public let client: RedisClient
    private let ownsClient: Bool
    public var provider: String { "redis" }
    /// Prepended to every key.
    public let keyPrefix: String
    private let defaultTTL: Duration?

    /// Creates a store on a client shared with the rest of the service.
    public init(client: RedisClient, keyPrefix: String = "nimbus:conversation:", defaultTTL: Duration? = nil) {
        self.client = client
        self.keyPrefix = keyPrefix
        self.defaultTTL = defaultTTL
        self.ownsClient = false
    }

    /// Opens a store with a client of its own (`redis://HOST[:PORT][/DB]?ttl=24h&prefix=app:conv:` plus the
    /// Redis client's options), shut down by ``close()``.
    public init(url: OpenURL) throws {
        client = try RedisClient(configuration: try RedisClient.Configuration(url: url.removingOptions(["ttl", "prefix"])))
        keyPrefix = url.options.string("prefix") ?? "nimbus:conversation:"
        defaultTTL = try url.options.duration("ttl")
        ownsClient = true
    }

    /// Shuts the client down when the store opened it (a shared client is left alone).
    public func close() async throws {
        if ownsClient { try await client.shutdown() }
    }

    private func keys(_ conversation: String) -> [String] {
        ["\(keyPrefix){\(conversation)}:messages", "\(keyPrefix){\(conversation)}:meta"]
    }

    private static func milliseconds(_ ttl: Duration?) -> String { ttl.map { String(max(1, $0.nimbusMilliseconds)) } ?? "-1" }

    // The TTL lives in the meta hash ("-1": none); a conversation without meta (new or expired) takes the default.
    private static let appendScript = """
        local ttl = redis.call('HGET', KEYS[2], 'ttl')
        if not ttl then
          redis.call('DEL', KEYS[1])
          ttl = ARGV[1]
          redis.call('HSET', KEYS[2], 'ttl', ttl)
        end
        for i = 2, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
        if tonumber(ttl) > 0 then
          redis.call('PEXPIRE', KEYS[1], ttl)
          redis.call('PEXPIRE', KEYS[2], ttl)
        else
          redis.call('PERSIST', KEYS[1])
          redis.call('PERSIST', KEYS[2])
        end
        return redis.call('LLEN', KEYS[1])
        """

    private static let ttlScript = """
        if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
        redis.call('HSET', KEYS[2], 'ttl', ARGV[1])
        if tonumber(ARGV[1]) > 0 then
          redis.call('PEXPIRE', KEYS[1], ARGV[1])
          redis.call('PEXPIRE', KEYS[2], ARGV[1])
        else
          redis.call('PERSIST', KEYS[1])
          redis.call('PERSIST', KEYS[2])
        end
        return 1
        """

    public func append(_ messages: [ChatMessage], to conversation: String) async throws {
        let encoder = JSONEncoder()
        let bodies = try messages.map { ByteBuffer(bytes: try encoder.encode($0)) }
        try await client.eval(Self.appendScript, keys: keys(conversation), arguments: [ByteBuffer(string: Self.milliseconds(defaultTTL))] + bodies)
    }

    public func messages(of conversation: String) async throws -> [ChatMessage] {
        let items = try await client.send(RedisCommand("LRANGE", keys(conversation)[0], "0", "-1")).array(for: "LRANGE") ?? []
        let decoder = JSONDecoder()
        return try items.enumerated().map { index, item in
            guard let buffer = try item.bytes(for: "LRANGE") else {
                throw NimbusError(.dataLoss, "message \(index) of conversation \(conversation) is missing in Redis")
            }
            do { return try decoder.decode(ChatMessage.self, from: Data(buffer.readableBytesView)) } catch {
                throw NimbusError(.dataLoss, "message \(index) of conversation \(conversation) cannot be read: \(error)", underlying: error)
            }
        }
    }

    @discardableResult public func delete(_ conversation: String) async throws -> Bool {
        try await client.delete(keys(conversation)) > 0
    }

    public func setTimeToLive(_ ttl: Duration?, for conversation: String) async throws {
        try await client.eval(Self.ttlScript, keys: keys(conversation), arguments: [ByteBuffer(string: Self.milliseconds(ttl))])
    }
}

extension URLOpenerRegistry where Resource == any ConversationStore {
    /// Adds `redis://` and `rediss://` (`?ttl=24h&prefix=…` plus the Redis client's options).
    public func withRedis() -> Self {
        var copy = self
        copy.register("redis", "rediss") { url in try RedisConversationStore(url: url) }
        return copy
    }
}
