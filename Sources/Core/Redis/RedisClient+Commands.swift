import NIOCore
import NimbusCore

extension RedisClient {
    /// `PING`: checks the server answers.
    public func ping() async throws {
        _ = try await send(RedisCommand("PING"))
    }

    /// `GET key`: the value, or `nil` when the key does not exist.
    public func get(_ key: String) async throws -> ByteBuffer? {
        try await send(RedisCommand("GET", key)).bytes(for: "GET")
    }

    /// `MGET key...`: the values in the order of `keys`, `nil` where a key does not exist.
    public func mget(_ keys: [String]) async throws -> [ByteBuffer?] {
        guard !keys.isEmpty else { return [] }
        let reply = try await send(RedisCommand("MGET", arguments: keys.map { ByteBuffer(string: $0) }))
        guard let values = try reply.array(for: "MGET"), values.count == keys.count else {
            throw NimbusError(.internal, "Redis answered MGET of \(keys.count) keys with \(reply.typeName) \(reply.description.prefix(80))")
        }
        return try values.map { try $0.bytes(for: "MGET") }
    }

    /// When ``set(_:to:expiration:condition:)`` writes.
    public enum SetCondition: Sendable {
        /// Always.
        case always
        /// Only if the key does not exist (`NX`).
        case ifAbsent
        /// Only if the key exists (`XX`).
        case ifPresent
    }

    /// `SET key value [PX ms] [NX|XX]`. Returns whether the value was written.
    @discardableResult
    public func set(_ key: String, to value: ByteBuffer, expiration: Duration? = nil, condition: SetCondition = .always) async throws -> Bool {
        try await send(Self.setCommand(key, value, expiration: expiration, condition: condition)).isOK(for: "SET")
    }

    /// ``set(_:to:expiration:condition:)`` with a text value.
    @discardableResult
    public func set(_ key: String, to value: String, expiration: Duration? = nil, condition: SetCondition = .always) async throws -> Bool {
        try await set(key, to: ByteBuffer(string: value), expiration: expiration, condition: condition)
    }

    /// The `SET` command, for pipelines.
    public static func setCommand(_ key: String, _ value: ByteBuffer, expiration: Duration? = nil, condition: SetCondition = .always) -> RedisCommand {
        var arguments = [ByteBuffer(string: key), value]
        if let expiration { arguments += [ByteBuffer(string: "PX"), ByteBuffer(string: String(max(1, expiration.nimbusMilliseconds)))] }
        switch condition {
        case .always: break
        case .ifAbsent: arguments.append(ByteBuffer(string: "NX"))
        case .ifPresent: arguments.append(ByteBuffer(string: "XX"))
        }
        return RedisCommand("SET", arguments: arguments)
    }

    /// `DEL key...`: how many keys existed and were removed.
    @discardableResult
    public func delete(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return Int(try await send(RedisCommand("DEL", arguments: keys.map { ByteBuffer(string: $0) })).int(for: "DEL"))
    }

    /// `INCRBY key delta`: the new value. Throws `invalidArgument` if the value is not an integer.
    public func increment(_ key: String, by delta: Int64 = 1) async throws -> Int64 {
        try await send(RedisCommand("INCRBY", key, String(delta))).int(for: "INCRBY")
    }

    /// `PEXPIRE key ms`: whether the key existed.
    @discardableResult
    public func expire(_ key: String, after duration: Duration) async throws -> Bool {
        try await send(RedisCommand("PEXPIRE", key, String(max(1, duration.nimbusMilliseconds)))).int(for: "PEXPIRE") == 1
    }

    /// `PTTL key`: the time left, `nil` if the key has no expiry or does not exist.
    public func timeToLive(_ key: String) async throws -> Duration? {
        let millis = try await send(RedisCommand("PTTL", key)).int(for: "PTTL")
        return millis < 0 ? nil : .milliseconds(millis)
    }

    /// `EVAL script numkeys keys... args...`: runs a Lua script atomically on the server and returns its reply.
    ///
    /// ```swift
    /// let length = try await client.eval("return redis.call('RPUSH', KEYS[1], ARGV[1])", keys: ["list"], arguments: [ByteBuffer(string: "x")])
    /// ```
    @discardableResult
    public func eval(_ script: String, keys: [String], arguments: [ByteBuffer] = []) async throws -> RESPValue {
        try await send(RedisCommand("EVAL", arguments: [ByteBuffer(string: script), ByteBuffer(string: String(keys.count))]
                                    + keys.map { ByteBuffer(string: $0) } + arguments))
    }
}
