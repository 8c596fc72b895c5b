import DequeModule
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NimbusCore
import NimbusNetwork
import Synchronization

/// One AMQP 0-9-1 connection to RabbitMQ, multiplexing channels.
///
/// Safe to share between tasks. Frames of one publish are written together, and everything
/// written by many tasks is coalesced into few system calls. When the server or the network
/// closes the connection, every waiting call on every channel fails with `unavailable`.
///
/// ```swift
/// let connection = try await AMQPConnection.connect(.init(host: "127.0.0.1", port: 5672, user: "guest", password: "guest"))
/// let channel = try await connection.openChannel()
/// try await channel.queueDeclare("jobs", durable: true)
/// ```
public final class AMQPConnection: Sendable {
    /// Where and how to connect.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: Secret<String>
        /// The virtual host (`/` by default).
        public var virtualHost: String
        /// TLS settings (`amqps://`); verification is on by default.
        public var tls: TLSConfiguration?
        /// The heartbeat interval asked for (the server may lower it); zero turns heartbeats off.
        public var heartbeat: Duration
        /// The largest frame asked for (the server may lower it).
        public var frameMax: Int
        /// How long connecting, the handshake included, may take.
        public var connectTimeout: Duration
        /// The name the server shows for this connection (followed by an id of its own).
        public var name: String

        /// Creates settings.
        public init(host: String = "127.0.0.1", port: Int = 5672, user: String = "guest", password: Secret<String> = Secret("guest"),
                    virtualHost: String = "/", tls: TLSConfiguration? = nil, heartbeat: Duration = .seconds(30), frameMax: Int = 131_072,
                    connectTimeout: Duration = .seconds(10), name: String = "nimbus") {
            self.host = host; self.port = port; self.user = user; self.password = password; self.virtualHost = virtualHost
            self.tls = tls; self.heartbeat = heartbeat; self.frameMax = frameMax; self.connectTimeout = connectTimeout; self.name = name
        }

        /// `host:port`, for messages.
        public var endpoint: String { "\(host):\(port)" }
    }

    let channel: any Channel
    let router: AMQPRouter
    /// The name the server shows for this connection: the configured name and an id of its own (`nimbus-01j9…`).
    public let name: String
    private let writer: ChannelWriteCoalescer
    private let tuning = Mutex<(frameMax: Int, channelMax: Int, serverProperties: AMQPTable)>((AMQPWire.minimumFrameSize, 0, [:]))
    private let heartbeatTask = Mutex<RepeatedTask?>(nil)

    init(channel: any Channel, router: AMQPRouter, name: String) {
        self.channel = channel
        self.router = router
        self.name = name
        self.writer = ChannelWriteCoalescer(channel: channel)
    }

    /// The negotiated largest frame size.
    public var frameMax: Int { tuning.withLock { $0.frameMax } }
    /// What the server says about itself (product, version, capabilities).
    public var serverProperties: AMQPTable { tuning.withLock { $0.serverProperties } }
    /// Whether the connection is open.
    public var isOpen: Bool { channel.isActive && router.closedError == nil }

    /// Connects, authenticates (PLAIN), tunes and opens the virtual host.
    /// - Throws: `unavailable` when the server cannot be reached; `unauthenticated` when it refuses the
    ///   credentials; `permissionDenied` when the user may not use the virtual host.
    public static func connect(_ configuration: Configuration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               logger: Logger = Logger(label: "nimbus.amqp")) async throws -> AMQPConnection {
        let endpoint = configuration.endpoint
        let router = AMQPRouter(endpoint: endpoint, logger: logger)
        let maximumFrame = max(configuration.frameMax, AMQPWire.minimumFrameSize)
        let channel = try await ClientChannel.connect(
            .init(service: "RabbitMQ", host: configuration.host, port: configuration.port, hint: "is the server running (scripts/peers up rabbitmq)?"),
            tls: configuration.tls, timeout: configuration.connectTimeout, eventLoopGroup: eventLoopGroup) { _ in
            [ByteToMessageHandler(AMQPFrameDecoder(maximumSize: maximumFrame)), AMQPChannelHandler(router: router)]
        }.channel
        let connection = AMQPConnection(channel: channel, router: router, name: "\(configuration.name)-\(IDGenerator.shared.ulid().description.lowercased())")
        router.attach(connection)
        do {
            try await withTimeLimit(configuration.connectTimeout, "the AMQP handshake with RabbitMQ at \(endpoint)") {
                try await connection.handshake(configuration, frameMax: maximumFrame)
            }
            return connection
        } catch {
            try? await channel.close()
            throw NimbusError.wrap(error, "connecting to RabbitMQ at \(endpoint)")
        }
    }

    private func handshake(_ configuration: Configuration, frameMax: Int) async throws {
        let control = router.control
        let start = control.expect()
        try await write { $0.writeBytes(AMQPWire.protocolHeader) }
        let startMethod = try await start.value.method(expecting: "connection.start")
        let mechanisms = startMethod.string("mechanisms").split(separator: " ")
        guard mechanisms.contains("PLAIN") else {
            throw NimbusError(.failedPrecondition, "RabbitMQ at \(configuration.endpoint) offers no PLAIN authentication (only \(mechanisms.joined(separator: ", ")))")
        }
        let capabilities: AMQPTable = ["publisher_confirms": .bool(true), "consumer_cancel_notify": .bool(true), "basic.nack": .bool(true),
                                       "connection.blocked": .bool(true), "authentication_failure_close": .bool(true),
                                       "exchange_exchange_bindings": .bool(true), "per_consumer_qos": .bool(true)]
        let clientProperties: AMQPTable = ["product": .string("Nimbus"), "platform": .string("Swift"), "version": .string("1.0"),
                                           "connection_name": .string(name), "capabilities": .table(capabilities)]
        let response = [0] + Array(configuration.user.utf8) + [0] + Array(configuration.password.reveal().utf8)
        let tune = control.expect()
        try await send(.method(channel: 0, AMQPMethod("connection.start-ok", [
            "client-properties": .table(clientProperties), "mechanism": .shortstr("PLAIN"), "response": .longstr(response), "locale": .shortstr("en_US"),
        ])))
        let tuneMethod = try await tune.value.method(expecting: "connection.tune")
        let serverFrameMax = Int(tuneMethod.integer("frame-max")), serverChannelMax = Int(tuneMethod.integer("channel-max"))
        let negotiatedFrameMax = serverFrameMax == 0 ? frameMax : min(serverFrameMax, frameMax)
        let channelMax = serverChannelMax == 0 ? 2047 : min(serverChannelMax, 2047)
        let askedHeartbeat = Int(configuration.heartbeat.nimbusMilliseconds / 1000), serverHeartbeat = Int(tuneMethod.integer("heartbeat"))
        // Zero asked turns heartbeats off; otherwise the smaller of the two (the server's zero means "as you like").
        let heartbeat = askedHeartbeat == 0 ? 0 : serverHeartbeat == 0 ? askedHeartbeat : min(askedHeartbeat, serverHeartbeat)
        tuning.withLock { $0 = (negotiatedFrameMax, channelMax, startMethod.table("server-properties")) }
        let opened = control.expect()
        try await send([
            .method(channel: 0, AMQPMethod("connection.tune-ok", ["channel-max": .short(UInt16(channelMax)), "frame-max": .long(UInt32(negotiatedFrameMax)),
                                                                  "heartbeat": .short(UInt16(heartbeat))])),
            .method(channel: 0, AMQPMethod("connection.open", ["virtual-host": .shortstr(configuration.virtualHost)])),
        ])
        _ = try await opened.value.method(expecting: "connection.open-ok")
        if heartbeat > 0 { startHeartbeats(every: .seconds(heartbeat)) }
    }

    /// Sends a heartbeat every half interval and closes the connection when the server was silent for two.
    private func startHeartbeats(every interval: Duration) {
        let half = TimeAmount.nanoseconds(interval.nimbusNanoseconds / 2)
        let task = channel.eventLoop.scheduleRepeatedTask(initialDelay: half, delay: half) { [weak self] _ in
            guard let self else { return }
            if self.router.silence > interval * 2 {
                self.router.logger.warning("RabbitMQ missed two heartbeats; closing the connection", metadata: ["endpoint": "\(self.router.endpoint)"])
                self.router.closed(NimbusError(.unavailable, "RabbitMQ at \(self.router.endpoint) sent nothing for two heartbeat intervals"))
                self.channel.close(promise: nil)
                return
            }
            var buffer = self.channel.allocator.buffer(capacity: 8)
            AMQPWire.write(.heartbeat, into: &buffer)
            self.channel.writeAndFlush(buffer, promise: nil)
        }
        heartbeatTask.withLock { $0 = task }
    }

    /// Opens a new channel.
    /// - Throws: `resourceExhausted` when every channel number the server allows is in use.
    public func openChannel() async throws -> AMQPChannel {
        let limit = tuning.withLock { $0.channelMax }
        let channel = try router.allocateChannel(limit: limit)
        do {
            _ = try await channel.call(AMQPMethod("channel.open"), expecting: "channel.open-ok")
        } catch {
            router.release(channel.id)
            throw error
        }
        return channel
    }

    func send(_ frame: AMQPFrame) async throws {
        try await write { AMQPWire.write(frame, into: &$0) }
    }

    func send(_ frames: [AMQPFrame]) async throws {
        try await write { buffer in for frame in frames { AMQPWire.write(frame, into: &buffer) } }
    }

    /// Queues bytes for the event loop (``ChannelWriteCoalescer``: one flush for everything queued,
    /// backpressure past its limit). `encode` runs under the queue's lock, so what it writes stays
    /// contiguous and in call order.
    nonisolated(nonsending) func write(_ encode: (inout ByteBuffer) -> Void) async throws {
        if let error = router.closedError { throw error }
        if writer.enqueue(encode) {
            do { try await writer.waitUntilWritten() }
            catch { throw router.closedError ?? NimbusError(.unavailable, "the connection to RabbitMQ at \(router.endpoint) is closed: \(error)", underlying: error) }
        }
    }

    /// The synchronous half of ``write(_:)``, for callers that hold a channel lock (publish sequence
    /// numbers); returns whether the queue is over its limit.
    @discardableResult
    func enqueue(_ encode: (inout ByteBuffer) -> Void) -> Bool { writer.enqueue(encode) }

    /// Closes the connection politely (`connection.close`, waiting briefly for `close-ok`).
    public func close() async throws {
        heartbeatTask.withLock { $0?.cancel(); $0 = nil }
        if router.closedError == nil, channel.isActive {
            let reply = router.control.expect()
            try? await send(.method(channel: 0, AMQPMethod("connection.close", ["reply-code": .short(200), "reply-text": .shortstr("bye")])))
            _ = try? await withTimeLimit(.seconds(2), "connection.close-ok") { try await reply.value }
        }
        router.closed(NimbusError(.unavailable, "the connection to RabbitMQ at \(router.endpoint) was closed by this client"))
        try? await channel.close()
    }
}

/// A reply the caller waits for: a method, or a method with its content (`basic.get-ok`).
enum AMQPReply: Sendable {
    case method(AMQPMethod)
    case delivery(AMQPMethod, AMQPDelivery)

    func method(expecting name: String) throws -> AMQPMethod {
        switch self {
        case .method(let method), .delivery(let method, _):
            guard method.name == name else { throw NimbusError(.internal, "RabbitMQ answered with \(method.name) where \(name) was expected") }
            return method
        }
    }
}

/// One reply slot: completed once, awaited once.
typealias AMQPWaiter = OneShot<AMQPReply>

/// Routes frames to channels and fails everything when the connection goes.
final class AMQPRouter: Sendable {
    let endpoint: String
    let logger: Logger
    /// Channel 0: the connection's own methods.
    let control: AMQPChannel
    private struct State {
        var channels: [UInt16: AMQPChannel] = [:]
        var nextID: UInt16 = 1
        var closed: (any Error)?
        weak var connection: AMQPConnection?
        var blocked: String?
    }
    private let state = Mutex(State())
    private let lastRead = Atomic<UInt64>(DispatchTime.now().uptimeNanoseconds)

    init(endpoint: String, logger: Logger) {
        self.endpoint = endpoint
        self.logger = logger
        self.control = AMQPChannel(id: 0, endpoint: endpoint)
    }

    func attach(_ connection: AMQPConnection) {
        state.withLock { $0.connection = connection }
        control.attach(connection, router: self)
    }

    var closedError: (any Error)? { state.withLock { $0.closed } }
    /// Why the server blocked publishers (low memory or disk), while it does.
    var blockedReason: String? { state.withLock { $0.blocked } }
    var silence: Duration { .nanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - lastRead.load(ordering: .relaxed))) }

    func allocateChannel(limit: Int) throws -> AMQPChannel {
        let (channel, error) = state.withLock { state -> (AMQPChannel?, (any Error)?) in
            if let closed = state.closed { return (nil, closed) }
            guard let connection = state.connection else { return (nil, NimbusError(.unavailable, "the connection to RabbitMQ at \(endpoint) is gone")) }
            for _ in 0..<max(limit, 1) {
                let id = state.nextID
                state.nextID = state.nextID >= UInt16(clamping: limit) ? 1 : state.nextID + 1
                if state.channels[id] == nil {
                    let channel = AMQPChannel(id: id, endpoint: endpoint)
                    channel.attach(connection, router: self)
                    state.channels[id] = channel
                    return (channel, nil)
                }
            }
            return (nil, NimbusError(.resourceExhausted, "all \(limit) channels of the connection to RabbitMQ at \(endpoint) are open"))
        }
        if let error { throw error }
        return channel!
    }

    func release(_ id: UInt16) {
        _ = state.withLock { $0.channels.removeValue(forKey: id) }
    }

    func received(_ frame: AMQPFrame) {
        lastRead.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        if case .heartbeat = frame { return }
        if frame.channel == 0 {
            if case .method(_, let method) = frame {
                switch method.name {
                case "connection.close":
                    let error = AMQPChannel.error(for: method, endpoint: endpoint, connectionLevel: true)
                    logger.warning("RabbitMQ closed the connection", metadata: ["reason": "\(error.message)"])
                    let connection = state.withLock { $0.connection }
                    if let connection {
                        connection.enqueue { AMQPWire.write(.method(channel: 0, AMQPMethod("connection.close-ok")), into: &$0) }
                    }
                    closed(error)
                    connection?.channel.close(promise: nil)
                    return
                case "connection.blocked":
                    state.withLock { $0.blocked = method.string("reason") }
                    logger.warning("RabbitMQ blocked publishers", metadata: ["reason": "\(method.string("reason"))"])
                    return
                case "connection.unblocked":
                    state.withLock { $0.blocked = nil }
                    return
                default: break
                }
            }
            control.received(frame)
            return
        }
        let channel = state.withLock { $0.channels[frame.channel] }
        guard let channel else {
            logger.debug("AMQP frame for a channel that is not open", metadata: ["channel": "\(frame.channel)"])
            return
        }
        channel.received(frame)
    }

    func closed(_ error: any Error) {
        let channels = state.withLock { state -> [AMQPChannel] in
            if state.closed == nil { state.closed = error }
            defer { state.channels.removeAll() }
            return Array(state.channels.values)
        }
        control.fail(error)
        for channel in channels { channel.fail(error) }
    }
}

/// Hands frames to the router and fails everything when the connection goes.
final class AMQPChannelHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AMQPFrame
    let router: AMQPRouter

    init(router: AMQPRouter) { self.router = router }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        router.received(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        router.closed(NimbusError(.unavailable, "the connection to RabbitMQ at \(router.endpoint) was closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reason = (error as? AMQPFrameError).map { "it broke the AMQP protocol: \($0)" } ?? "\(error)"
        router.closed(NimbusError(.unavailable, "the connection to RabbitMQ at \(router.endpoint) failed: \(reason)", underlying: error))
        context.close(promise: nil)
    }
}
