import Foundation
import NIOCore
import NimbusCore
import NimbusRedis
import NimbusSession

/// Sessions in Redis (`redis://`, `rediss://`): shared by every instance of a service. Each session
/// is a JSON string that Redis expires itself (a minute after the session would end), a sorted set
/// per user lists a user's sessions, and one sorted set by expiry lets ``purge(now:)`` tidy the
/// indexes. Writes that must check something (insert if absent, update at a version, remove with
/// its index entries) are Lua scripts, so they are atomic.
///
/// The scripts reach keys they compute (a user's set), so the store needs one Redis server or a
/// primary, not a Cluster.
public struct RedisSessionStore: SessionStoreDriver {
    /// The client underneath (shared or owned).
    public let client: RedisClient
    /// Prepended to every key (`nimbus:session:` by default).
    public let keyPrefix: String
    private let ownsClient: Bool

    /// Uses an existing client; `close` leaves it open.
    public init(client: RedisClient, keyPrefix: String = "nimbus:session:") {
        self.client = client
        self.keyPrefix = keyPrefix
        self.ownsClient = false
    }

    init(configuration: RedisClient.Configuration, keyPrefix: String) {
        self.client = RedisClient(configuration: configuration)
        self.keyPrefix = keyPrefix
        self.ownsClient = true
    }

    public var provider: String { "redis" }

    public func close() async throws { if ownsClient { try await client.shutdown() } }

    private var recordPrefix: String { keyPrefix + "s:" }
    private var userPrefix: String { keyPrefix + "u:" }
    private var expiryKey: String { keyPrefix + "expiry" }

    static func millis(_ date: Date) -> Int64 { SessionRecordCoding.millis(date) }

    /// How long Redis keeps the record: until the session ends, plus a minute.
    static func ttl(_ record: SessionRecord) -> String {
        String(max(1, millis(record.expiresAt) - millis(record.lastSeenAt) + 60_000))
    }

    static let insertScript = RedisScript("""
        -- nimbus session insert: KEYS record, user set, expiry set; ARGV json, ttl, user, created, expires, key
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
        if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6]) end
        return 1
        """)

    static let updateScript = RedisScript("""
        -- nimbus session update: KEYS record, user set, expiry set; ARGV json, ttl, expected version, created, expires, key, user prefix, user
        local current = redis.call('GET', KEYS[1])
        if not current then return 0 end
        local stored = cjson.decode(current)
        if tostring(stored.version) ~= ARGV[3] then return 0 end
        local old = stored.userID
        if old and old ~= cjson.null and old ~= ARGV[8] then redis.call('ZREM', ARGV[7] .. old, ARGV[6]) end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
        if ARGV[8] ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6]) end
        return 1
        """)

    static let removeScript = RedisScript("""
        -- nimbus session remove: KEYS expiry set; ARGV user prefix, record prefix, keys...
        local removed = 0
        for i = 3, #ARGV do
          local record = ARGV[2] .. ARGV[i]
          local current = redis.call('GET', record)
          if current then
            local stored = cjson.decode(current)
            if stored.userID and stored.userID ~= cjson.null then redis.call('ZREM', ARGV[1] .. stored.userID, ARGV[i]) end
            redis.call('DEL', record)
            removed = removed + 1
          end
          redis.call('ZREM', KEYS[1], ARGV[i])
        end
        return removed
        """)

    private func json(_ record: SessionRecord) throws -> String {
        String(decoding: try SessionRecordCoding.encoder.encode(record), as: UTF8.self)
    }

    public func insert(_ session: SessionRecord) async throws {
        let inserted = try await client.run(Self.insertScript, keys: [recordPrefix + session.key, userPrefix + (session.userID ?? ""), expiryKey],
                                            arguments: [try json(session), Self.ttl(session), session.userID ?? "", String(Self.millis(session.createdAt)),
                                                        String(Self.millis(session.expiresAt)), session.key]).int(for: "session insert")
        guard inserted == 1 else { throw NimbusError(.alreadyExists, "a session with this key exists") }
    }

    public func find(_ key: String, now: Date) async throws -> SessionRecord? {
        guard let bytes = try await client.get(recordPrefix + key) else { return nil }
        let record = try SessionRecordCoding.decode(Data(bytes.readableBytesView))
        return record.expiresAt > now ? record : nil
    }

    public func update(_ session: SessionRecord, expectedVersion: Int64) async throws -> Bool {
        try await client.run(Self.updateScript, keys: [recordPrefix + session.key, userPrefix + (session.userID ?? ""), expiryKey],
                             arguments: [try json(session), Self.ttl(session), String(expectedVersion), String(Self.millis(session.createdAt)),
                                         String(Self.millis(session.expiresAt)), session.key, userPrefix, session.userID ?? ""])
            .int(for: "session update") == 1
    }

    public func remove(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return Int(try await client.run(Self.removeScript, keys: [expiryKey], arguments: [userPrefix, recordPrefix] + keys).int(for: "session remove"))
    }

    public func sessions(ofUser userID: String, now: Date) async throws -> [SessionRecord] {
        let members = try await client.send(RedisCommand("ZRANGE", userPrefix + userID, "0", "-1")).array(for: "ZRANGE") ?? []
        let keys = try members.compactMap { try $0.bytes(for: "ZRANGE").map { String(buffer: $0) } }
        guard !keys.isEmpty else { return [] }
        let values = try await client.mget(keys.map { recordPrefix + $0 })
        var live: [SessionRecord] = [], gone: [String] = []
        for (key, value) in zip(keys, values) {
            guard let value else { gone.append(key); continue }
            let record = try SessionRecordCoding.decode(Data(value.readableBytesView))
            if record.expiresAt > now { live.append(record) }
        }
        if !gone.isEmpty { _ = try await client.send(RedisCommand("ZREM", arguments: ([userPrefix + userID] + gone).map { ByteBuffer(string: $0) })) }
        return live.sorted { ($0.createdAt, $0.key) < ($1.createdAt, $1.key) }
    }

    public func purge(now: Date) async throws -> Int {
        let ended = try await client.send(RedisCommand("ZRANGEBYSCORE", expiryKey, "-inf", String(Self.millis(now)), "LIMIT", "0", "10000"))
            .array(for: "ZRANGEBYSCORE") ?? []
        let keys = try ended.compactMap { try $0.bytes(for: "ZRANGEBYSCORE").map { String(buffer: $0) } }
        return try await remove(keys)
    }
}

extension URLOpenerRegistry where Resource == any SessionStoreDriver {
    /// Adds `redis://` and `rediss://` (option `prefix`, default `nimbus:session:`; the client's options as for every Redis URL).
    public func withRedis() -> Self {
        var copy = self
        copy.register("redis", "rediss") { url in
            let prefix = url.options.string("prefix") ?? "nimbus:session:"
            return RedisSessionStore(configuration: try RedisClient.Configuration(url: url.removingOptions(["prefix"])), keyPrefix: prefix)
        }
        return copy
    }
}
