import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NimbusCore
import Synchronization

/// A Redis client: a small pool of multiplexed connections speaking RESP2 or RESP3.
///
/// Every connection carries any number of concurrent commands (replies come back in order),
/// so the pool is a handful of connections picked round-robin, each reopened on demand when it
/// drops. ``pipeline(_:)`` writes many commands in one write and waits for all their replies.
///
/// ```swift
/// let redis = try RedisClient(url: "redis://:secret@127.0.0.1:6379/0")
/// try await redis.set("greeting", to: "hello", expiration: .seconds(30))
/// let value = try await redis.get("greeting")          // ByteBuffer?
/// let replies = try await redis.pipeline([RedisCommand("INCR", "a"), RedisCommand("INCR", "b")])
/// try await redis.shutdown()
/// ```
public final class RedisClient: Sendable {
    /// How to reach and talk to the server.
    public struct Configuration: Sendable {
        /// Host name or address.
        public var host: String
        /// TCP port.
        public var port: Int
        /// ACL user (Redis 6+); `nil` authenticates as `default` when a password is set.
        public var username: String?
        /// Password for `AUTH`/`HELLO`.
        public var password: Secret<String>?
        /// The logical database selected on every new connection.
        public var database: Int
        /// TLS settings; `nil` for plain TCP. Certificate verification is on by default.
        public var tls: TLSConfiguration?
        /// Protocol version: RESP3 via `HELLO 3` (default) or RESP2.
        public var protocolVersion: ProtocolVersion
        /// Connections in the pool.
        public var poolSize: Int
        /// How long to wait for a TCP (and TLS) connection.
        public var connectTimeout: Duration
        /// How long to wait for the replies to one request before the connection is closed.
        public var commandTimeout: Duration?
        /// `CLIENT SETNAME` on every connection; shows in `CLIENT LIST`.
        public var clientName: String?

        /// RESP versions.
        public enum ProtocolVersion: Int, Sendable { case resp2 = 2, resp3 = 3 }

        /// Creates a configuration.
        public init(
            host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: Secret<String>? = nil,
            database: Int = 0, tls: TLSConfiguration? = nil, protocolVersion: ProtocolVersion = .resp3,
            poolSize: Int = 4, connectTimeout: Duration = .seconds(5), commandTimeout: Duration? = .seconds(30),
            clientName: String? = nil
        ) {
            self.host = host; self.port = port; self.username = username; self.password = password
            self.database = database; self.tls = tls; self.protocolVersion = protocolVersion
            self.poolSize = max(1, poolSize); self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout; self.clientName = clientName
        }

        /// Reads `redis://[user[:password]@]host[:port][/db][?options]` or `rediss://` (TLS).
        /// Options: `pool`, `connectTimeout`, `commandTimeout`, `protocol` (2 or 3), `name`,
        /// `db` (instead of the path); for `rediss://`, `tlsCA` (a PEM file of trusted roots, for a
        /// private CA) and `tlsVerify` (`false` turns verification off: only for throw-away test servers).
        public init(url: OpenURL) throws {
            guard url.scheme == "redis" || url.scheme == "rediss" else {
                throw NimbusError(.invalidArgument, "a Redis URL starts with redis:// or rediss://, not \(url.scheme)://")
            }
            try url.options.validate(known: ["pool", "connectTimeout", "commandTimeout", "protocol", "name", "db", "tlsVerify", "tlsCA"], for: "Redis")
            self.init(host: url.host ?? "127.0.0.1", port: url.port ?? 6379, username: url.user, password: url.password)
            let pathDB = url.path.split(separator: "/").first.map(String.init)
            if let db = try url.options.int("db") ?? pathDB.map({ text in
                guard let value = Int(text) else { throw NimbusError(.invalidArgument, "Redis database '\(text)' in the URL path is not a number") }
                return value
            }) { database = db }
            if let pool = try url.options.int("pool") { poolSize = max(1, pool) }
            if let timeout = try url.options.duration("connectTimeout") { connectTimeout = timeout }
            if let timeout = try url.options.duration("commandTimeout") { commandTimeout = timeout }
            if let version = try url.options.int("protocol") {
                guard let parsed = ProtocolVersion(rawValue: version) else { throw NimbusError(.invalidArgument, "Redis protocol must be 2 or 3, not \(version)") }
                protocolVersion = parsed
            }
            clientName = url.options.string("name")
            if url.scheme == "rediss" {
                var tls = TLSConfiguration.makeClientConfiguration()
                if let path = url.options.string("tlsCA") { tls.trustRoots = .file(path) }
                if try url.options.bool("tlsVerify") == false { tls.certificateVerification = .none }
                self.tls = tls
            } else if url.options.string("tlsCA") != nil || url.options.string("tlsVerify") != nil {
                throw NimbusError(.invalidArgument, "tlsCA and tlsVerify need a rediss:// URL")
            }
        }

        var endpoint: String { "\(host):\(port)" }
    }

    /// The settings this client was made with.
    public let configuration: Configuration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let slots: Mutex<[RedisSlot]>
    private let slotCount: Int
    private let nextSlot = Atomic<Int>(0)
    private let isShutdown = Atomic<Bool>(false)

    /// Creates a client; connections open lazily on first use.
    public init(configuration: Configuration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "nimbus.redis")) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.slotCount = configuration.poolSize
        self.slots = Mutex(Array(repeating: .empty, count: configuration.poolSize))
    }

    /// Creates a client from a `redis://` or `rediss://` URL.
    public convenience init(url: String, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                            logger: Logger = Logger(label: "nimbus.redis")) throws {
        self.init(configuration: try Configuration(url: OpenURL(url)), eventLoopGroup: eventLoopGroup, logger: logger)
    }

    // MARK: Sending

    /// Sends one command and returns its reply; an error reply throws.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        let replies = try await pipeline([command])
        guard let reply = replies.first else { throw NimbusError(.internal, "Redis returned no reply to \(command)") }
        return try reply.checked(for: command.name)
    }

    /// Sends `commands` in one write on one connection and returns their replies in order.
    /// Error replies stay in the array (as ``RESPValue/error(_:)``) so one failed command does not
    /// hide the others; a dropped connection throws `unavailable` for the whole pipeline.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        let connection = try await connection()
        return try await connection.send(commands, timeout: configuration.commandTimeout)
    }

    /// Runs `body` on a connection of its own, outside the pool: for blocking commands
    /// (`BLPOP`), `WATCH`/`MULTI`/`EXEC` sequences and anything that changes connection state.
    public func withDedicatedConnection<T: Sendable>(_ body: (RedisConnection) async throws -> T) async throws -> T {
        let connection = try await RedisConnection.connect(configuration: configuration, eventLoop: eventLoopGroup.next(), logger: logger).get()
        do {
            let value = try await body(connection)
            try? await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw error
        }
    }

    private func connection() async throws -> RedisConnection {
        guard !isShutdown.load(ordering: .relaxed) else {
            throw NimbusError(.failedPrecondition, "the Redis client for \(configuration.endpoint) was shut down; create a new one")
        }
        let index = nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue % slotCount
        enum Lease { case ready(RedisConnection), pending(EventLoopFuture<RedisConnection>) }
        let lease: Lease = slots.withLock { slots in
            switch slots[index] {
            case .connected(let connection) where connection.isActive:
                return .ready(connection)
            case .connecting(let future):
                return .pending(future)
            case .empty, .connected:
                let created = RedisConnection.connect(configuration: configuration, eventLoop: eventLoopGroup.next(), logger: logger)
                slots[index] = .connecting(created)
                return .pending(created)
            }
        }
        // The common case returns without touching a future, so no thread hop.
        guard case .pending(let future) = lease else {
            if case .ready(let connection) = lease { return connection }
            throw NimbusError(.internal, "unreachable Redis pool state")
        }
        do {
            let connection = try await future.get()
            slots.withLock { slots in
                if case .connecting(let pending) = slots[index], pending === future { slots[index] = .connected(connection) }
            }
            return connection
        } catch {
            // Forget the failed attempt so the next call reconnects.
            slots.withLock { slots in
                if case .connecting(let pending) = slots[index], pending === future { slots[index] = .empty }
            }
            throw error
        }
    }

    /// Closes every connection. Commands in flight fail with `unavailable`.
    public func shutdown() async throws {
        isShutdown.store(true, ordering: .relaxed)
        let states = slots.withLock { slots -> [RedisSlot] in
            defer { slots = Array(repeating: .empty, count: slots.count) }
            return slots
        }
        for state in states {
            switch state {
            case .empty: break
            case .connected(let connection): try? await connection.close()
            case .connecting(let future): if let connection = try? await future.get() { try? await connection.close() }
            }
        }
    }
}

/// One pool slot: empty, a connection being opened (shared by the callers that wait for it), or open.
enum RedisSlot {
    case empty
    case connecting(EventLoopFuture<RedisConnection>)
    case connected(RedisConnection)
}
