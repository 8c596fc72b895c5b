import Foundation
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusRedis

/// Messaging on Redis Streams: a topic is a stream, a subscription is a consumer group on it.
///
/// Publishing is `XADD` (with a `SET NX PX` deduplication key, in one script); receiving first
/// reclaims messages whose lease passed (`XPENDING IDLE` + `XCLAIM`, in one script that also
/// moves poison messages to the dead-letter topic), then reads new ones with `XREADGROUP`,
/// blocking on a connection of its own when asked to wait. Acks, nacks and lease extensions
/// check that the receipt is still the message's current delivery before they act, so a
/// consumer whose lease passed cannot ack a copy another consumer is working on.
///
/// Keys (under a prefix, `nimbus:msg:` by default): `topics` (set), `subs` (hash subscription →
/// topic), `sub:<name>` (its options), `t:<topic>` (the stream), `lease:<subscription>` (extended
/// leases and delayed redeliveries), `dedup:<topic>:<id>`. Durability is the server's: run it
/// with `appendonly yes` for messages to survive a restart. Streams are not trimmed unless
/// `maxLength` is set (`XADD MAXLEN ~`): trimming drops messages some group may not have read.
///
/// ```swift
/// let messaging = Messaging(driver: try RedisStreamsMessagingDriver(url: "redis://127.0.0.1:6379/0"))
/// ```
public struct RedisStreamsMessagingDriver: MessagingDriver {
    /// Settings of the Redis Streams driver.
    public struct Configuration: Sendable {
        /// Prepended to every key this driver uses.
        public var keyPrefix: String
        /// How long a deduplication id suppresses repeats.
        public var deduplicationWindow: Duration
        /// Trim each stream to about this many entries (`nil`: never trim).
        public var maxLength: Int?

        /// Creates settings.
        public init(keyPrefix: String = "nimbus:msg:", deduplicationWindow: Duration = .seconds(300), maxLength: Int? = nil) {
            self.keyPrefix = keyPrefix
            self.deduplicationWindow = deduplicationWindow
            self.maxLength = maxLength
        }
    }

    public var provider: String { "redis" }
    public var capabilities: MessagingCapabilities {
        [.durable, .deduplication, .deadLetters, .deliveryCount, .extendDeadline, .delayedRedelivery]
    }

    /// The client underneath: the escape hatch to every other Redis command.
    public let client: RedisClient
    /// The settings it was made with.
    public let configuration: Configuration
    /// This driver's consumer name in every group (one per driver instance).
    public let consumer: String
    private let ownsClient: Bool

    /// Uses an existing client (shared with the cache, locks...); `close` leaves it open.
    public init(client: RedisClient, configuration: Configuration = .init()) {
        self.client = client
        self.configuration = configuration
        self.consumer = "c-\(IDGenerator.shared.ulid())"
        self.ownsClient = false
    }

    /// Creates a client of its own from a `redis://` or `rediss://` URL; `close` shuts it down.
    public init(url: String, configuration: Configuration = .init()) throws {
        self.client = try RedisClient(url: url)
        self.configuration = configuration
        self.consumer = "c-\(IDGenerator.shared.ulid())"
        self.ownsClient = true
    }

    init(clientConfiguration: RedisClient.Configuration, configuration: Configuration) {
        self.client = RedisClient(configuration: clientConfiguration)
        self.configuration = configuration
        self.consumer = "c-\(IDGenerator.shared.ulid())"
        self.ownsClient = true
    }

    private var topicsKey: String { configuration.keyPrefix + "topics" }
    private var subscriptionsKey: String { configuration.keyPrefix + "subs" }
    private func streamKey(_ topic: String) -> String { configuration.keyPrefix + "t:" + topic }
    private func optionsKey(_ subscription: String) -> String { configuration.keyPrefix + "sub:" + subscription }
    private func leaseKey(_ subscription: String) -> String { configuration.keyPrefix + "lease:" + subscription }
    private func deduplicationKey(_ topic: String, _ id: String) -> String { configuration.keyPrefix + "dedup:" + topic + ":" + id }

    private func run(_ script: String, _ name: String, keys: [String], _ arguments: [String]) async throws -> RESPValue {
        do {
            return try await client.eval(script, keys: keys, arguments: arguments.map { ByteBuffer(string: $0) })
        } catch let error as NimbusError {
            throw Self.mapped(error, name)
        }
    }

    /// Script errors carry a code word first (`NOTFOUND`, `EXISTS`, `STALE`) that maps to a portable code.
    static func mapped(_ error: NimbusError, _ operation: String) -> NimbusError {
        guard let reply = error.underlying as? RedisServerError else { return error }
        let codes: [String: NimbusError.Code] = ["NOTFOUND": .notFound, "EXISTS": .alreadyExists, "STALE": .failedPrecondition, "NOGROUP": .notFound]
        guard let code = codes[reply.code] else { return error }
        let detail = reply.message.dropFirst(reply.code.count).trimmingCharacters(in: .whitespaces)
        return NimbusError(code, "\(operation): \(reply.code == "NOGROUP" ? "the subscription does not exist (\(detail))" : detail)", underlying: error)
    }

    // MARK: Topics and subscriptions

    public func createTopic(_ topic: String) async throws -> Bool {
        try await client.send(RedisCommand("SADD", topicsKey, topic)).int(for: "SADD") == 1
    }

    static let deleteTopicScript = """
        if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return redis.error_reply('NOTFOUND topic ' .. ARGV[1] .. ' does not exist') end
        local subs = redis.call('HGETALL', KEYS[2])
        for i = 1, #subs, 2 do
          if subs[i + 1] == ARGV[1] then
            redis.call('HDEL', KEYS[2], subs[i])
            redis.call('DEL', ARGV[2] .. 'sub:' .. subs[i], ARGV[2] .. 'lease:' .. subs[i])
          end
        end
        redis.call('DEL', KEYS[3])
        return 1
        """

    public func deleteTopic(_ topic: String) async throws {
        _ = try await run(Self.deleteTopicScript, "deleteTopic", keys: [topicsKey, subscriptionsKey, streamKey(topic)], [topic, configuration.keyPrefix])
    }

    public func topics() async throws -> [String] {
        let members = try await client.send(RedisCommand("SMEMBERS", topicsKey)).array(for: "SMEMBERS") ?? []
        return try members.compactMap { try $0.bytes(for: "SMEMBERS").map { String(buffer: $0) } }.sorted()
    }

    static let createSubscriptionScript = """
        local existing = redis.call('HGET', KEYS[2], ARGV[1])
        if existing then
          if existing == ARGV[2] then return 0 end
          return redis.error_reply('EXISTS subscription ' .. ARGV[1] .. ' already exists on topic ' .. existing)
        end
        if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 0 then return redis.error_reply('NOTFOUND topic ' .. ARGV[2] .. ' does not exist; create it first') end
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        redis.call('DEL', KEYS[3], KEYS[5])
        redis.call('HSET', KEYS[3], 'topic', ARGV[2], 'ack_deadline_ms', ARGV[3], 'dead_letter', ARGV[4], 'max_deliveries', ARGV[5])
        redis.call('XGROUP', 'CREATE', KEYS[4], ARGV[1], '$', 'MKSTREAM')
        return 1
        """

    public func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions) async throws -> Bool {
        let reply = try await run(Self.createSubscriptionScript, "createSubscription",
                                  keys: [topicsKey, subscriptionsKey, optionsKey(subscription), streamKey(topic), leaseKey(subscription)],
                                  [subscription, topic, String(options.ackDeadline.nimbusMilliseconds), options.deadLetter?.topic ?? "",
                                   String(options.deadLetter?.maxDeliveries ?? 0)])
        return try reply.int(for: "EVAL(createSubscription)") == 1
    }

    static let deleteSubscriptionScript = """
        local topic = redis.call('HGET', KEYS[1], ARGV[1])
        if not topic then return redis.error_reply('NOTFOUND subscription ' .. ARGV[1] .. ' does not exist') end
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('DEL', KEYS[2], KEYS[3])
        local stream = ARGV[2] .. 't:' .. topic
        if redis.call('EXISTS', stream) == 1 then pcall(redis.call, 'XGROUP', 'DESTROY', stream, ARGV[1]) end
        return 1
        """

    public func deleteSubscription(_ subscription: String) async throws {
        _ = try await run(Self.deleteSubscriptionScript, "deleteSubscription", keys: [subscriptionsKey, optionsKey(subscription), leaseKey(subscription)],
                          [subscription, configuration.keyPrefix])
    }

    public func subscriptions(of topic: String) async throws -> [String] {
        let replies = try await client.pipeline([RedisCommand("SISMEMBER", topicsKey, topic), RedisCommand("HGETALL", subscriptionsKey)])
        guard try replies[0].int(for: "SISMEMBER") == 1 else { throw NimbusError(.notFound, "topic '\(topic)' does not exist") }
        let pairs = try Self.pairs(replies[1], "HGETALL")
        return pairs.filter { $0.1 == topic }.map(\.0).sorted()
    }

    static func pairs(_ reply: RESPValue, _ command: String) throws -> [(String, String)] {
        if case .map(let entries) = reply.unwrapped {
            return try entries.map { (try text($0.key, command), try text($0.value, command)) }
        }
        let flat = try reply.array(for: command) ?? []
        return try stride(from: 0, to: flat.count - 1, by: 2).map { (try text(flat[$0], command), try text(flat[$0 + 1], command)) }
    }

    static func text(_ value: RESPValue, _ command: String) throws -> String {
        guard let bytes = try value.bytes(for: command) else { return "" }
        return String(buffer: bytes)
    }

    // MARK: Publishing

    /// ARGV: topic, window ms, maxlen (0: none), then per message: dedup flag (0/1), body, attributes JSON ("" for none).
    /// KEYS: topics, stream, then one deduplication key per message that has an id.
    static let publishScript = """
        if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return redis.error_reply('NOTFOUND topic ' .. ARGV[1] .. ' does not exist; create it first') end
        local ids = {}
        local key = 3
        for i = 4, #ARGV, 3 do
          local dedup = nil
          if ARGV[i] == '1' then dedup = KEYS[key]; key = key + 1 end
          local id = dedup and redis.call('GET', dedup)
          if not id then
            local fields = {'b', ARGV[i + 1]}
            if ARGV[i + 2] ~= '' then table.insert(fields, 'a'); table.insert(fields, ARGV[i + 2]) end
            if ARGV[3] ~= '0' then
              id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
            else
              id = redis.call('XADD', KEYS[2], '*', unpack(fields))
            end
            if dedup then redis.call('SET', dedup, id, 'PX', ARGV[2]) end
          end
          table.insert(ids, id)
        end
        return ids
        """

    public func publish(_ messages: [Message], to topic: String) async throws -> [String] {
        var keys = [topicsKey, streamKey(topic)]
        var arguments = [ByteBuffer(string: topic), ByteBuffer(string: String(configuration.deduplicationWindow.nimbusMilliseconds)),
                         ByteBuffer(string: String(configuration.maxLength ?? 0))]
        for message in messages {
            if let id = message.deduplicationID { keys.append(deduplicationKey(topic, id)) }
            arguments.append(ByteBuffer(string: message.deduplicationID == nil ? "0" : "1"))
            arguments.append(message.body)
            arguments.append(ByteBuffer(string: try StoredAttributes.encode(message.attributes) ?? ""))
        }
        let reply: RESPValue
        do { reply = try await client.eval(Self.publishScript, keys: keys, arguments: arguments) }
        catch let error as NimbusError { throw Self.mapped(error, "publish") }
        return try (reply.array(for: "EVAL(publish)") ?? []).map { try Self.text($0, "EVAL(publish)") }
    }

    // MARK: Receiving

    /// Reclaims messages whose lease passed (and whose extended lease, if any, passed too);
    /// dead-letters those delivered `max_deliveries` times. Returns the topic, the ack deadline,
    /// then per claimed message: id, delivery count, fields.
    /// KEYS: subscriptions, options, leases. ARGV: subscription, consumer, count, now ms, prefix.
    static let claimScript = """
        local topic = redis.call('HGET', KEYS[1], ARGV[1])
        if not topic then return redis.error_reply('NOTFOUND subscription ' .. ARGV[1] .. ' does not exist') end
        local options = redis.call('HMGET', KEYS[2], 'ack_deadline_ms', 'dead_letter', 'max_deliveries')
        local deadline = tonumber(options[1]) or 30000
        local dead = options[2] or ''
        local maxDeliveries = tonumber(options[3]) or 0
        local stream = ARGV[5] .. 't:' .. topic
        local result = {topic, deadline}
        local wanted = tonumber(ARGV[3])
        local now = tonumber(ARGV[4])
        local pending = redis.call('XPENDING', stream, ARGV[1], 'IDLE', deadline, '-', '+', wanted * 4 + 16)
        local claimed = 0
        for _, entry in ipairs(pending) do
          if claimed >= wanted then break end
          local id, deliveries = entry[1], tonumber(entry[4])
          local lease = tonumber(redis.call('HGET', KEYS[3], id) or '0')
          if lease <= now then
            redis.call('HDEL', KEYS[3], id)
            if maxDeliveries > 0 and dead ~= '' and deliveries >= maxDeliveries then
              local rows = redis.call('XRANGE', stream, id, id)
              if #rows > 0 and redis.call('SISMEMBER', ARGV[5] .. 'topics', dead) == 1 then
                local fields = rows[1][2]
                local extra = cjson.encode({['nimbus-dead-letter-subscription'] = ARGV[1], ['nimbus-dead-letter-message-id'] = id,
                                            ['nimbus-dead-letter-deliveries'] = tostring(deliveries)})
                table.insert(fields, 'd'); table.insert(fields, extra)
                redis.call('XADD', ARGV[5] .. 't:' .. dead, '*', unpack(fields))
              end
              redis.call('XACK', stream, ARGV[1], id)
            else
              local rows = redis.call('XCLAIM', stream, ARGV[1], ARGV[2], deadline, id)
              if #rows > 0 and rows[1] then
                table.insert(result, id); table.insert(result, deliveries + 1); table.insert(result, rows[1][2])
                claimed = claimed + 1
              else
                redis.call('XACK', stream, ARGV[1], id)
              end
            end
          end
        end
        return result
        """

    public func receive(from subscription: String, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
        let reply = try await run(Self.claimScript, "receive", keys: [subscriptionsKey, optionsKey(subscription), leaseKey(subscription)],
                                  [subscription, consumer, String(maxMessages), String(now), configuration.keyPrefix])
        let values = try reply.array(for: "EVAL(receive)") ?? []
        guard values.count >= 2 else { throw NimbusError(.internal, "Redis receive script returned \(values.count) values") }
        let topic = try Self.text(values[0], "EVAL(receive)")
        var delivered: [DeliveredMessage] = []
        var index = 2
        while index + 2 < values.count {
            let id = try Self.text(values[index], "EVAL(receive)")
            let deliveries = Int(try values[index + 1].int(for: "EVAL(receive)"))
            delivered.append(try message(id: id, deliveries: deliveries, fields: values[index + 2]))
            index += 3
        }
        if delivered.count >= maxMessages { return delivered }
        // New messages: without blocking on the shared pool; blocking only on a connection of its own.
        let read = RedisCommand("XREADGROUP", arguments: ["GROUP", subscription, consumer, "COUNT", String(maxMessages - delivered.count),
                                                          "STREAMS", streamKey(topic), ">"].map { ByteBuffer(string: $0) })
        var fresh = try readGroup(try await sendMapped(read))
        if fresh.isEmpty, delivered.isEmpty, wait >= .milliseconds(1) {
            let blocking = RedisCommand("XREADGROUP", arguments: ["GROUP", subscription, consumer, "COUNT", String(maxMessages), "BLOCK",
                                                                  String(wait.nimbusMilliseconds), "STREAMS", streamKey(topic), ">"].map { ByteBuffer(string: $0) })
            fresh = try readGroup(try await client.withDedicatedConnection { connection in
                do { return try await connection.send(blocking, timeout: wait + .seconds(5)).checked(for: "XREADGROUP") }
                catch let error as NimbusError { throw Self.mapped(error, "receive") }
            })
        }
        return delivered + fresh
    }

    private func sendMapped(_ command: RedisCommand) async throws -> RESPValue {
        do { return try await client.send(command) }
        catch let error as NimbusError { throw Self.mapped(error, "receive") }
    }

    /// `XREADGROUP`'s reply: per stream, its entries (a RESP3 map or a RESP2 array of pairs).
    private func readGroup(_ reply: RESPValue) throws -> [DeliveredMessage] {
        var streams: [RESPValue] = []
        switch reply.unwrapped {
        case .null: return []
        case .map(let entries): streams = entries.map(\.value)
        case .array(let pairs): streams = try pairs.map { pair in
            guard let items = try pair.array(for: "XREADGROUP"), items.count == 2 else { throw NimbusError(.internal, "XREADGROUP returned a malformed stream entry") }
            return items[1]
        }
        default: throw NimbusError(.internal, "XREADGROUP returned \(reply.typeName)")
        }
        var messages: [DeliveredMessage] = []
        for stream in streams {
            for entry in try stream.array(for: "XREADGROUP") ?? [] {
                guard let parts = try entry.array(for: "XREADGROUP"), parts.count == 2 else { continue }
                messages.append(try message(id: try Self.text(parts[0], "XREADGROUP"), deliveries: 1, fields: parts[1]))
            }
        }
        return messages
    }

    private func message(id: String, deliveries: Int, fields: RESPValue) throws -> DeliveredMessage {
        var body = ByteBuffer()
        var attributes: [String: String] = [:]
        for (name, value) in try Self.fieldPairs(fields) {
            switch name {
            case "b": body = value
            case "a", "d":
                attributes.merge(try StoredAttributes.decode(Array(value.readableBytesView), of: "stream entry \(id)")) { first, _ in first }
            default: continue
            }
        }
        let milliseconds = id.split(separator: "-").first.flatMap { Int64($0) }
        return DeliveredMessage(id: id, receipt: "\(id) \(consumer) \(deliveries)", body: body, attributes: attributes, orderingKey: nil,
                                deliveryAttempt: deliveries, publishedAt: milliseconds.map { Date(timeIntervalSince1970: Double($0) / 1000) })
    }

    private static func fieldPairs(_ fields: RESPValue) throws -> [(String, ByteBuffer)] {
        if case .map(let entries) = fields.unwrapped {
            return try entries.map { (try text($0.key, "XREADGROUP"), try $0.value.bytes(for: "XREADGROUP") ?? ByteBuffer()) }
        }
        let flat = try fields.array(for: "XREADGROUP") ?? []
        return try stride(from: 0, to: flat.count - 1, by: 2).map { (try text(flat[$0], "XREADGROUP"), try flat[$0 + 1].bytes(for: "XREADGROUP") ?? ByteBuffer()) }
    }

    /// Settles one receipt if it is still the message's current delivery.
    /// KEYS: subscriptions, options, leases. ARGV: subscription, id, consumer, deliveries, action, now ms, delay ms, prefix.
    static let settleScript = """
        local topic = redis.call('HGET', KEYS[1], ARGV[1])
        if not topic then return redis.error_reply('NOTFOUND subscription ' .. ARGV[1] .. ' does not exist') end
        local stream = ARGV[8] .. 't:' .. topic
        local pending = redis.call('XPENDING', stream, ARGV[1], ARGV[2], ARGV[2], 1)
        if #pending == 0 or pending[1][2] ~= ARGV[3] or tonumber(pending[1][4]) ~= tonumber(ARGV[4]) then
          return redis.error_reply('STALE the receipt is no longer the lease of message ' .. ARGV[2] .. ': it was settled, or its deadline passed and it was delivered again')
        end
        local deadline = tonumber(redis.call('HGET', KEYS[2], 'ack_deadline_ms') or '30000')
        local action = ARGV[5]
        if action == 'ack' then
          redis.call('XACK', stream, ARGV[1], ARGV[2])
          redis.call('HDEL', KEYS[3], ARGV[2])
        elseif action == 'requeue' then
          redis.call('XCLAIM', stream, ARGV[1], ARGV[3], 0, ARGV[2], 'IDLE', deadline, 'JUSTID')
          local delay = tonumber(ARGV[7])
          if delay > 0 then redis.call('HSET', KEYS[3], ARGV[2], tonumber(ARGV[6]) + delay) else redis.call('HDEL', KEYS[3], ARGV[2]) end
        elseif action == 'extend' then
          redis.call('XCLAIM', stream, ARGV[1], ARGV[3], 0, ARGV[2], 'IDLE', 0, 'JUSTID')
          redis.call('HSET', KEYS[3], ARGV[2], tonumber(ARGV[6]) + tonumber(ARGV[7]))
        elseif action == 'dead' then
          local dead = redis.call('HGET', KEYS[2], 'dead_letter') or ''
          if dead == '' then return redis.error_reply('STALE subscription ' .. ARGV[1] .. ' has no dead-letter policy; nack to requeue, or create it with one') end
          local rows = redis.call('XRANGE', stream, ARGV[2], ARGV[2])
          if #rows > 0 and redis.call('SISMEMBER', ARGV[8] .. 'topics', dead) == 1 then
            local fields = rows[1][2]
            local extra = cjson.encode({['nimbus-dead-letter-subscription'] = ARGV[1], ['nimbus-dead-letter-message-id'] = ARGV[2],
                                        ['nimbus-dead-letter-deliveries'] = ARGV[4]})
            table.insert(fields, 'd'); table.insert(fields, extra)
            redis.call('XADD', ARGV[8] .. 't:' .. dead, '*', unpack(fields))
          end
          redis.call('XACK', stream, ARGV[1], ARGV[2])
          redis.call('HDEL', KEYS[3], ARGV[2])
        end
        return 1
        """

    private func settle(_ receipts: [String], _ subscription: String, action: String, milliseconds: Int64 = 0) async throws {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
        for receipt in receipts {
            let parts = receipt.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 3, Int(parts[2]) != nil, !parts[0].isEmpty else {
                throw NimbusError(.failedPrecondition, "'\(receipt.prefix(60))' is not a receipt of this driver")
            }
            _ = try await run(Self.settleScript, action, keys: [subscriptionsKey, optionsKey(subscription), leaseKey(subscription)],
                              [subscription, String(parts[0]), String(parts[1]), String(parts[2]), action, String(now), String(milliseconds),
                               configuration.keyPrefix])
        }
    }

    public func ack(_ receipts: [String], on subscription: String) async throws {
        try await settle(receipts, subscription, action: "ack")
    }

    public func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws {
        switch disposition {
        case .requeue(let delay): try await settle(receipts, subscription, action: "requeue", milliseconds: delay.nimbusMilliseconds)
        case .deadLetter: try await settle(receipts, subscription, action: "dead")
        }
    }

    public func extendDeadline(_ receipts: [String], on subscription: String, to deadline: Duration) async throws {
        try await settle(receipts, subscription, action: "extend", milliseconds: deadline.nimbusMilliseconds)
    }

    public func close() async throws {
        if ownsClient { try await client.shutdown() }
    }
}

extension URLOpenerRegistry where Resource == any MessagingDriver {
    /// Adds `redis://` and `rediss://` (TLS) on Redis Streams; besides the client's options
    /// (see `RedisClient.Configuration.init(url:)`): `prefix` (key prefix), `maxlen` (trim streams
    /// to about this many entries), `dedup_window` (e.g. `10m`).
    public func withRedisStreams() -> Self {
        var copy = self
        copy.register("redis", "rediss") { url in
            var configuration = RedisStreamsMessagingDriver.Configuration()
            if let prefix = url.options.string("prefix") { configuration.keyPrefix = prefix }
            if let maxLength = try url.options.int("maxlen") { configuration.maxLength = max(1, maxLength) }
            if let window = try url.options.duration("dedup_window") { configuration.deduplicationWindow = window }
            let clientURL = url.removingOptions(["prefix", "maxlen", "dedup_window"])
            return RedisStreamsMessagingDriver(clientConfiguration: try RedisClient.Configuration(url: clientURL), configuration: configuration)
        }
        return copy
    }
}
