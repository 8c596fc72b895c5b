import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NimbusCore
import NimbusNetwork
import Synchronization

/// One open connection to a Redis server, authenticated and on the configured database.
///
/// Safe to share between tasks: commands from several callers are written in the order they
/// arrive and their replies are matched in that order.
public final class RedisConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<RedisConnectionHandler>
    /// Requests waiting for the event loop: callers on other threads append here, and one
    /// scheduled task writes everything queued and flushes once, so concurrent callers share
    /// one system call instead of paying a thread hop and a `writev` each.
    private let outbox = Mutex(Outbox())

    private struct Outbox {
        var requests: [RedisRequest] = []
        var drainScheduled = false
    }
    /// The protocol the server agreed to.
    public let protocolVersion: RedisClient.Configuration.ProtocolVersion
    private let endpoint: String

    init(channel: any Channel, handler: NIOLoopBound<RedisConnectionHandler>,
         protocolVersion: RedisClient.Configuration.ProtocolVersion, endpoint: String) {
        self.channel = channel
        self.handler = handler
        self.protocolVersion = protocolVersion
        self.endpoint = endpoint
    }

    /// Writes every queued request and flushes once. Runs on the channel's event loop.
    private func drain() {
        let requests = outbox.withLock { outbox -> [RedisRequest] in
            defer { outbox.requests.removeAll(keepingCapacity: true); outbox.drainScheduled = false }
            return outbox.requests
        }
        handler.value.submit(requests)
    }

    /// Whether the TCP connection is still open.
    public var isActive: Bool { channel.isActive }

    /// Sends commands in one write; returns their replies in order (error replies included).
    public func send(_ commands: [RedisCommand], timeout: Duration? = nil) async throws -> [RESPValue] {
        guard let first = commands.first else { return [] }
        var payload = channel.allocator.buffer(capacity: 0)
        for command in commands { RESPEncoder.encode(command, into: &payload) }
        let timeAmount = timeout.map { TimeAmount.nanoseconds($0.nimbusNanoseconds) }
        return try await withUnsafeThrowingContinuation { continuation in
            let request = RedisRequest(payload: payload, count: commands.count, firstCommand: first, timeout: timeAmount,
                                       continuation: continuation)
            let schedule = outbox.withLock { outbox -> Bool in
                outbox.requests.append(request)
                defer { outbox.drainScheduled = true }
                return !outbox.drainScheduled
            }
            if schedule { channel.eventLoop.execute { self.drain() } }
        }
    }

    /// Sends one command; an error reply throws.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        let replies = try await send([command], timeout: timeout)
        guard let reply = replies.first else { throw NimbusError(.internal, "Redis returned no reply to \(command)") }
        return try reply.checked(for: command.name)
    }

    /// Closes the connection; outstanding commands fail with `unavailable`.
    public func close() async throws {
        try await channel.close()
    }

    /// Opens, secures, authenticates and selects the database.
    static func connect(configuration: RedisClient.Configuration, eventLoop: any EventLoop, logger: Logger,
                        onPush: (@Sendable ([RESPValue]) -> Void)? = nil) -> EventLoopFuture<RedisConnection> {
        let endpoint = configuration.endpoint
        let sslContext: NIOSSLContext?
        do {
            sslContext = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
        } catch {
            return eventLoop.makeFailedFuture(NimbusError(.invalidArgument, "invalid TLS settings for Redis at \(endpoint): \(error)", underlying: error))
        }
        // The handler, kept from the moment it is made: a connection whose TLS handshake fails at
        // once may be torn down before anyone could look the handler up in the pipeline.
        let handlerBox = NIOLoopBoundBox<RedisConnectionHandler?>.makeEmptyBox(valueType: RedisConnectionHandler.self, eventLoop: eventLoop)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(configuration.connectTimeout.nimbusNanoseconds))
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                do {
                    if let sslContext {
                        let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: ClientTLS.isIPAddress(configuration.host) ? nil : configuration.host)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    let handler = RedisConnectionHandler(endpoint: endpoint, logger: logger, onPush: onPush)
                    handlerBox.value = handler
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let connected = bootstrap.connect(host: configuration.host, port: configuration.port).flatMapErrorThrowing { error in
            throw NimbusError(.unavailable, "cannot connect to Redis at \(endpoint): \(error); is the server running (scripts/peers up redis)?", underlying: error)
        }
        return connected.flatMap { channel in
            let promise = eventLoop.makePromise(of: RedisConnection.self)
            guard let handler = handlerBox.value else {
                promise.fail(NimbusError(.internal, "the Redis connection to \(endpoint) has no protocol handler"))
                return promise.futureResult
            }
            let bound = NIOLoopBound(handler, eventLoop: eventLoop)
            promise.completeWithTask {
                do {
                    return try await handshake(channel: channel, handler: bound, configuration: configuration)
                } catch {
                    try? await channel.close()
                    throw error
                }
            }
            return promise.futureResult
        }
    }

    private static func handshake(channel: any Channel, handler: NIOLoopBound<RedisConnectionHandler>,
                                  configuration: RedisClient.Configuration) async throws -> RedisConnection {
        let endpoint = configuration.endpoint
        var version = configuration.protocolVersion
        var connection = RedisConnection(channel: channel, handler: handler, protocolVersion: version, endpoint: endpoint)
        var setup: [RedisCommand] = []
        var authenticated = false
        if version == .resp3 {
            var hello = RedisCommand("HELLO", "3")
            if let password = configuration.password {
                hello.arguments += [ByteBuffer(string: "AUTH"), ByteBuffer(string: configuration.username ?? "default"), ByteBuffer(string: password.reveal())]
            }
            if let name = configuration.clientName { hello.arguments += [ByteBuffer(string: "SETNAME"), ByteBuffer(string: name)] }
            let reply = try await connection.send([hello], timeout: configuration.commandTimeout)[0]
            if case .error(let error) = reply {
                guard error.message.lowercased().contains("unknown command") || error.code == "NOPROTO" else {
                    throw error.nimbusError(command: "HELLO")
                }
                version = .resp2   // Redis < 6: fall back to RESP2 with AUTH.
                connection = RedisConnection(channel: channel, handler: handler, protocolVersion: .resp2, endpoint: endpoint)
            } else {
                authenticated = true
            }
        }
        if !authenticated, let password = configuration.password {
            setup.append(configuration.username.map { RedisCommand("AUTH", $0, password.reveal()) } ?? RedisCommand("AUTH", password.reveal()))
        }
        if version == .resp2, let name = configuration.clientName { setup.append(RedisCommand("CLIENT", "SETNAME", name)) }
        if configuration.database != 0 { setup.append(RedisCommand("SELECT", String(configuration.database))) }
        if !setup.isEmpty {
            let replies = try await connection.send(setup, timeout: configuration.commandTimeout)
            for (command, reply) in zip(setup, replies) { try reply.checked(for: command.name) }
        }
        return connection
    }
}
