import DequeModule
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NimbusCore
import NimbusNetwork
import Synchronization

/// One connection to a NATS server: publish, subscribe and request/reply (the core protocol),
/// on which the JetStream driver is built.
///
/// Safe to share between tasks. Replies to requests come in on one wildcard inbox subscription
/// and are matched by their last subject token. When the server closes the connection, every
/// waiting call fails with `unavailable`.
///
/// ```swift
/// let connection = try await NATSConnection.connect(NATSConnection.Configuration(host: "127.0.0.1", port: 4222))
/// let reply = try await connection.request("time.now", payload: ByteBuffer(), timeout: .seconds(2))
/// ```
public final class NATSConnection: Sendable {
    /// Where and how to connect.
    public struct Configuration: Sendable {
        /// The server's host.
        public var host: String
        /// The server's port.
        public var port: Int
        /// User and password, if the server requires them.
        public var user: String?
        /// The password.
        public var password: Secret<String>?
        /// A token, if the server requires one.
        public var token: Secret<String>?
        /// TLS settings (`tls://`); verification is on by default.
        public var tls: TLSConfiguration?
        /// How long connecting, the handshake included, may take.
        public var connectTimeout: Duration
        /// The client name the server shows in its monitoring.
        public var name: String

        /// Creates settings.
        public init(host: String = "127.0.0.1", port: Int = 4222, user: String? = nil, password: Secret<String>? = nil, token: Secret<String>? = nil,
                    tls: TLSConfiguration? = nil, connectTimeout: Duration = .seconds(5), name: String = "nimbus") {
            self.host = host; self.port = port; self.user = user; self.password = password; self.token = token
            self.tls = tls; self.connectTimeout = connectTimeout; self.name = name
        }

        /// `host:port`, for messages.
        public var endpoint: String { "\(host):\(port)" }
    }

    let channel: any Channel
    let router: NATSRouter
    /// The server's `INFO`.
    public let serverInfo: JSONValue
    private let inboxPrefix: String
    private let nextToken = Atomic<UInt64>(0)
    private let writer: ChannelWriteCoalescer

    init(channel: any Channel, router: NATSRouter, serverInfo: JSONValue, inboxPrefix: String) {
        self.channel = channel
        self.writer = ChannelWriteCoalescer(channel: channel)
        self.router = router
        self.serverInfo = serverInfo
        self.inboxPrefix = inboxPrefix
    }

    /// Whether the TCP connection is still open.
    public var isActive: Bool { channel.isActive }

    /// The largest payload the server accepts.
    public var maximumPayload: Int { Int(serverInfo["max_payload"]?.numberValue ?? 1_048_576) }

    /// Opens, secures and greets (`CONNECT` + `PING`, waiting for `PONG`).
    /// - Throws: `unavailable` when the server cannot be reached; `unauthenticated` when it refuses the credentials.
    public static func connect(_ configuration: Configuration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               logger: Logger = Logger(label: "nimbus.nats")) async throws -> NATSConnection {
        let endpoint = configuration.endpoint
        let router = NATSRouter(endpoint: endpoint, logger: logger)
        let connected = try await ClientChannel.connect(
            .init(service: "NATS", host: configuration.host, port: configuration.port, hint: "is the server running (scripts/peers up nats)?"),
            tls: configuration.tls, startTLS: .later, timeout: configuration.connectTimeout, eventLoopGroup: eventLoopGroup) { _ in
            [ByteToMessageHandler(NATSOperationDecoder()), NATSChannelHandler(router: router)]
        }
        let channel = connected.channel
        do {
            let info = try await withTimeLimit(configuration.connectTimeout, "the NATS server at \(endpoint) sent no INFO") { try await router.info() }
            if info["tls_required"]?.boolValue == true, connected.tls == nil {
                throw NimbusError(.failedPrecondition, "the NATS server at \(endpoint) requires TLS; connect with tls://")
            }
            if let tls = connected.tls { try await ClientChannel.startTLS(on: channel, tls) }
            var connect: [String: JSONValue] = ["verbose": false, "pedantic": false, "lang": "swift", "version": "1.0", "protocol": 1,
                                               "headers": true, "no_responders": true, "name": .string(configuration.name),
                                               "tls_required": .bool(connected.tls != nil)]
            if let user = configuration.user { connect["user"] = .string(user) }
            if let password = configuration.password { connect["pass"] = .string(password.reveal()) }
            if let token = configuration.token { connect["auth_token"] = .string(token.reveal()) }
            let inboxPrefix = "_INBOX.\(IDGenerator.shared.ulid())"
            var greeting = channel.allocator.buffer(capacity: 256)
            greeting.writeString("CONNECT ")
            greeting.writeBytes(try JSONEncoder().encode(JSONValue.object(connect)))
            greeting.writeString("\r\nSUB \(inboxPrefix).* 1\r\n")
            let connection = NATSConnection(channel: channel, router: router, serverInfo: info, inboxPrefix: inboxPrefix)
            let hello = greeting
            try await withTimeLimit(configuration.connectTimeout, "the NATS server at \(endpoint) did not answer PING") {
                try await connection.flush(prefix: hello)
            }
            return connection
        } catch {
            try? await channel.close()
            throw NimbusError.wrap(error, "connecting to NATS at \(endpoint)")
        }
    }

    /// Publishes `payload` to `subject`. Runs on the caller's executor (no hop off an actor): it
    /// only queues the bytes, unless the queue is full.
    nonisolated(nonsending) public func publish(_ subject: String, payload: ByteBuffer, headers: [(String, String)] = [], replyTo: String? = nil) async throws {
        try await write { NATSEncoder.publish(subject: subject, replyTo: replyTo, headers: headers, payload: payload, into: &$0) }
    }

    /// Publishes and waits for one reply on this connection's inbox.
    /// - Throws: `notFound` when nobody subscribes to `subject` (503 no responders); `deadlineExceeded` after `timeout`.
    public func request(_ subject: String, payload: ByteBuffer, headers: [(String, String)] = [], timeout: Duration) async throws -> NATSMessage {
        let stream = try await requestStream(subject, payload: payload, headers: headers)
        defer { stream.cancel() }
        guard let reply = try await stream.next(timeout: timeout) else {
            throw NimbusError(.deadlineExceeded, "no reply to \(subject) from NATS at \(router.endpoint) within \(timeout.nimbusFormatted)")
        }
        if reply.status == 503 { throw NimbusError(.notFound, "nobody answers on \(subject) (no responders)") }
        return reply
    }

    /// Publishes with a reply subject of its own and returns every reply that comes to it, until cancelled.
    ///
    /// With `ownSubscription`, the reply subject gets a subscription of its own and replies are
    /// matched by its id: JetStream delivers pulled messages to the reply subject under their
    /// original subject, so the wildcard inbox could not tell whose they are.
    func requestStream(_ subject: String, payload: ByteBuffer, headers: [(String, String)] = [], ownSubscription: Bool = false) async throws -> NATSReplies {
        let token = String(nextToken.wrappingAdd(1, ordering: .relaxed).oldValue)
        let inbox = ownSubscription ? "\(inboxPrefix)p.\(token)" : "\(inboxPrefix).\(token)"
        let replies = router.expect(token, sid: ownSubscription ? "p\(token)" : nil) { [channel] in
            // Unsubscribing is best effort: a closed connection has no subscriptions left anyway.
            if ownSubscription { channel.writeAndFlush(ByteBuffer(string: "UNSUB p\(token)\r\n"), promise: nil) }
        }
        do {
            try await write { buffer in
                if ownSubscription { buffer.writeString("SUB \(inbox) p\(token)\r\n") }
                NATSEncoder.publish(subject: subject, replyTo: inbox, headers: headers, payload: payload, into: &buffer)
            }
        } catch {
            replies.cancel()
            throw error
        }
        return replies
    }

    /// Subscribes to `subject` (in `queueGroup`, if given: the group's members share its messages)
    /// and returns the messages as they come; cancelling the stream unsubscribes. Returns once the
    /// server has the subscription.
    func subscribe(_ subject: String, queueGroup: String? = nil) async throws -> NATSReplies {
        let token = String(nextToken.wrappingAdd(1, ordering: .relaxed).oldValue)
        let sid = "s\(token)"
        let messages = router.expect(token, sid: sid) { [channel] in
            channel.writeAndFlush(ByteBuffer(string: "UNSUB \(sid)\r\n"), promise: nil)
        }
        do {
            var command = channel.allocator.buffer(capacity: 64)
            command.writeString("SUB \(subject)\(queueGroup.map { " \($0)" } ?? "") \(sid)\r\n")
            try await flush(prefix: command)
        } catch {
            messages.cancel()
            throw error
        }
        return messages
    }

    /// Sends `PING` (after `prefix`, if any) and waits for the `PONG`: everything written before has reached the server.
    public func flush(prefix: ByteBuffer? = nil) async throws {
        var buffer = prefix ?? channel.allocator.buffer(capacity: 6)
        buffer.writeString("PING\r\n")
        let pong = router.expectPong()
        try await write(buffer)
        try await pong.value
    }

    /// Queues bytes for the event loop (``ChannelWriteCoalescer``: one flush for everything queued,
    /// backpressure past its limit).
    nonisolated(nonsending) private func write(_ buffer: ByteBuffer) async throws {
        try await write { $0.writeImmutableBuffer(buffer) }
    }

    /// Encodes straight into the queue (under its lock), so a publish costs no buffer of its own.
    nonisolated(nonsending) private func write(_ encode: (inout ByteBuffer) -> Void) async throws {
        guard channel.isActive else { throw NimbusError(.unavailable, "the connection to NATS at \(router.endpoint) is closed") }
        do { try await writer.write(encode) }
        catch { throw NimbusError(.unavailable, "the connection to NATS at \(router.endpoint) is closed: \(error)", underlying: error) }
    }

    /// Closes the connection.
    public func close() async throws {
        try? await channel.close()
    }
}

/// The replies to one request subject, as they come (at most 100,000 waiting; more fail the call).
final class NATSReplies: Sendable {
    let token: String
    private let router: NATSRouter
    private let onCancel: @Sendable () -> Void
    private let state = Mutex<(queue: Deque<NATSMessage>, end: Result<Void, any Error>?)>(([], nil))
    private let arrived = AsyncSignal()
    static let limit = 100_000

    init(token: String, router: NATSRouter, onCancel: @escaping @Sendable () -> Void) {
        self.token = token
        self.router = router
        self.onCancel = onCancel
    }

    func deliver(_ message: NATSMessage) {
        state.withLock { state in
            guard state.end == nil else { return }
            if state.queue.count >= Self.limit {
                state.end = .failure(NimbusError(.resourceExhausted, "more than \(Self.limit) replies to one NATS request were not read"))
            } else {
                state.queue.append(message)
            }
        }
        arrived.signal()
    }

    func finish(_ end: Result<Void, any Error>) {
        state.withLock { if $0.end == nil { $0.end = end } }
        arrived.signal()
    }

    /// The next reply, or `nil` when `timeout` passes first or the replies ended.
    func next(timeout: Duration) async throws -> NATSMessage? {
        let deadline = ContinuousClock.now + timeout
        // Wait for a change first (no timer task while nothing came), then race a timer only if needed.
        while true {
            let version = arrived.version
            let (message, end) = state.withLock { state in (state.queue.popFirst(), state.end) }
            if let message { return message }
            if let end { try end.get(); return nil }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return nil }
            _ = try await arrived.wait(since: version, timeout: remaining, clock: ContinuousClock())
        }
    }

    /// Whether the stream has ended (cancelled, or the connection closed) and nothing is left to read.
    var isFinished: Bool { state.withLock { $0.end != nil && $0.queue.isEmpty } }

    /// Stops routing replies here.
    func cancel() {
        if router.forget(token) { onCancel() }
    }
}

/// Routes what the server sends to the calls waiting for it.
final class NATSRouter: Sendable {
    let endpoint: String
    let logger: Logger
    private struct State {
        var info: JSONValue?
        var infoWaiters: [CheckedContinuation<JSONValue, any Error>] = []
        var pongWaiters: [PongWaiter] = []
        var replies: [String: NATSReplies] = [:]
        /// Subscriptions of their own (pulls): subscription id → token.
        var sids: [String: String] = [:]
        var closed: (any Error)?
    }
    private let state = Mutex(State())

    init(endpoint: String, logger: Logger) {
        self.endpoint = endpoint
        self.logger = logger
    }

    func info() async throws -> JSONValue {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<JSONValue, any Error>? = state.withLock { state in
                if let info = state.info { return .success(info) }
                if let closed = state.closed { return .failure(closed) }
                state.infoWaiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    func expect(_ token: String, sid: String? = nil, onCancel: @escaping @Sendable () -> Void = {}) -> NATSReplies {
        let replies = NATSReplies(token: token, router: self, onCancel: onCancel)
        let closed = state.withLock { state -> (any Error)? in
            if let closed = state.closed { return closed }
            state.replies[token] = replies
            if let sid { state.sids[sid] = token }
            return nil
        }
        if let closed { replies.finish(.failure(closed)) }
        return replies
    }

    /// Stops routing to `token`; whether it was still routed.
    func forget(_ token: String) -> Bool {
        let replies = state.withLock { state -> NATSReplies? in
            state.sids = state.sids.filter { $0.value != token }
            return state.replies.removeValue(forKey: token)
        }
        replies?.finish(.success(()))
        return replies != nil
    }

    func expectPong() -> PongWaiter {
        let waiter = PongWaiter()
        let closed = state.withLock { state -> (any Error)? in
            if let closed = state.closed { return closed }
            state.pongWaiters.append(waiter)
            return nil
        }
        if let closed { waiter.complete(.failure(closed)) }
        return waiter
    }

    func received(_ operation: NATSServerOperation) {
        switch operation {
        case .info(let json):
            guard let info = try? JSONValue.parse(Data(json.readableBytesView)) else { return }
            let waiters = state.withLock { state -> [CheckedContinuation<JSONValue, any Error>] in
                state.info = info
                defer { state.infoWaiters.removeAll() }
                return state.infoWaiters
            }
            for waiter in waiters { waiter.resume(returning: info) }
        case .pong:
            let waiter = state.withLock { $0.pongWaiters.isEmpty ? nil : $0.pongWaiters.removeFirst() }
            waiter?.complete(.success(()))
        case .message(let message):
            let replies = state.withLock { state -> NATSReplies? in
                let token = state.sids[message.sid] ?? message.subject.split(separator: ".").last.map(String.init) ?? ""
                return state.replies[token]
            }
            if let replies { replies.deliver(message) }
            else { logger.trace("NATS message for no waiting call", metadata: ["subject": "\(message.subject)"]) }
        case .error(let text):
            let lowered = text.lowercased()
            let code: NimbusError.Code = lowered.contains("authorization") || lowered.contains("authentication") ? .unauthenticated
                : lowered.contains("permissions") ? .permissionDenied : .unavailable
            let error = NimbusError(code, "NATS at \(endpoint): \(text)")
            logger.warning("NATS server error", metadata: ["error": "\(text)"])
            // A handshake in progress fails with the server's reason; the server closes the connection for fatal errors.
            let waiter = state.withLock { $0.pongWaiters.isEmpty ? nil : $0.pongWaiters.removeFirst() }
            waiter?.complete(.failure(error))
        case .ping, .ok:
            break
        }
    }

    func closed(_ error: any Error) {
        let (infoWaiters, pongWaiters, replies) = state.withLock { state in
            state.closed = state.closed ?? error
            defer { state.infoWaiters.removeAll(); state.pongWaiters.removeAll(); state.replies.removeAll(); state.sids.removeAll() }
            return (state.infoWaiters, state.pongWaiters, Array(state.replies.values))
        }
        for waiter in infoWaiters { waiter.resume(throwing: error) }
        for waiter in pongWaiters { waiter.complete(.failure(error)) }
        for reply in replies { reply.finish(.failure(error)) }
    }
}

/// One `PING` waiting for its `PONG`.
typealias PongWaiter = OneShot<Void>

/// Answers `PING`, hands everything else to the router, and fails waiting calls when the connection goes.
final class NATSChannelHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = NATSServerOperation
    typealias OutboundOut = ByteBuffer
    let router: NATSRouter

    init(router: NATSRouter) { self.router = router }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let operation = unwrapInboundIn(data)
        if case .ping = operation {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "PONG\r\n")), promise: nil)
            return
        }
        router.received(operation)
    }

    func channelInactive(context: ChannelHandlerContext) {
        router.closed(NimbusError(.unavailable, "the connection to NATS at \(router.endpoint) was closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        router.closed(NimbusError(.unavailable, "the connection to NATS at \(router.endpoint) failed: \(error)", underlying: error))
        context.close(promise: nil)
    }
}

/// NATS starts in plain text (`INFO` first) and upgrades to TLS after it, so the TLS handler is added on demand.
