import DequeModule
import Logging
import NIOCore
import NIOSSL
import NimbusCore

/// What the client writes into the channel: commands that go out in one write, and the promise
/// of their replies, in order.
struct RedisRequest {
    /// The commands, already encoded (by the caller, off the event loop).
    var payload: ByteBuffer
    /// How many commands the payload holds, so how many replies to wait for.
    var count: Int
    /// The first command, named in a timeout error.
    var firstCommand: RedisCommand
    var promise: EventLoopPromise<[RESPValue]>
    var timeout: TimeAmount?
}

/// Matches replies to requests on one connection. Replies arrive in the order the commands were
/// written, so any number of callers can share the connection (pipelining and multiplexing);
/// RESP3 pushes are routed to `onPush` instead. It parses the byte stream itself (no separate
/// decoder stage), which saves a pipeline hop and a boxed value per reply.
final class RedisConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var remaining: Int
        var replies: [RESPValue]
        var promise: EventLoopPromise<[RESPValue]>
        var deadline: NIODeadline?
        var firstCommand: RedisCommand
    }

    /// One timer for the whole connection, aimed at the oldest request's deadline (replies come
    /// in order, so the oldest request is the one that times out first); re-aimed when it fires.
    private var timer: Scheduled<Void>?

    private var pending = Deque<Pending>()
    private var closedError: NimbusError?
    private var inbound = ByteBuffer()
    private let decoder = RESPDecoder()
    private let logger: Logger
    private let onPush: (@Sendable ([RESPValue]) -> Void)?
    private let endpoint: String

    init(endpoint: String, logger: Logger, onPush: (@Sendable ([RESPValue]) -> Void)?) {
        self.endpoint = endpoint
        self.logger = logger
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let closedError {
            request.promise.fail(closedError)
            promise?.fail(closedError)
            return
        }
        guard request.count > 0 else {
            request.promise.succeed([])
            promise?.succeed()
            return
        }
        var entry = Pending(remaining: request.count, replies: [], promise: request.promise,
                            deadline: request.timeout.map { .now() + $0 }, firstCommand: request.firstCommand)
        entry.replies.reserveCapacity(request.count)
        if timer == nil, let deadline = entry.deadline { armTimer(at: deadline, context: context) }
        pending.append(entry)
        context.write(wrapOutboundOut(request.payload), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if inbound.readableBytes == 0 { inbound = incoming } else { inbound.writeBuffer(&incoming) }
        do {
            while let value = try decoder.parse(from: &inbound) {
                guard deliver(value, context: context) else { return }
            }
        } catch {
            errorCaught(context: context, error: error)
            return
        }
        if inbound.readableBytes == 0 { inbound.clear() } else if inbound.readerIndex > 64 * 1024 { inbound.discardReadBytes() }
    }

    /// Hands one reply to the oldest request; returns false once the connection is being closed.
    private func deliver(_ value: RESPValue, context: ChannelHandlerContext) -> Bool {
        if case .push(let elements) = value {
            onPush?(elements)
            return true
        }
        guard !pending.isEmpty else {
            logger.warning("Redis sent a reply nobody asked for; closing the connection", metadata: ["endpoint": "\(endpoint)"])
            failAll(NimbusError(.internal, "Redis at \(endpoint) sent an unsolicited \(value.typeName) reply"), context: context)
            context.close(promise: nil)
            return false
        }
        let index = pending.startIndex
        pending[index].replies.append(value)
        pending[index].remaining -= 1
        if pending[index].remaining == 0 {
            let done = pending.removeFirst()
            done.promise.succeed(done.replies)
        }
        return true
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let nimbus: NimbusError
        if let error = error as? RedisProtocolError {
            nimbus = NimbusError(.internal, "Redis at \(endpoint) broke the protocol (\(error)); the connection was closed", underlying: error)
        } else if let error = error as? NIOSSLError {
            nimbus = NimbusError(.unavailable, "TLS with Redis at \(endpoint) failed (\(error)); check the server certificate and the tlsCA option",
                                 underlying: error, retryable: false)
        } else {
            nimbus = NimbusError(.unavailable, "connection to Redis at \(endpoint) failed: \(error)", underlying: error)
        }
        failAll(nimbus, context: context)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(NimbusError(.unavailable, "connection to Redis at \(endpoint) closed with replies outstanding; commands that were sent may or may not have run"), context: context)
        context.fireChannelInactive()
    }

    private func failAll(_ error: NimbusError, context: ChannelHandlerContext) {
        if closedError == nil { closedError = error }
        timer?.cancel()
        timer = nil
        while let entry = pending.popFirst() { entry.promise.fail(error) }
    }

    private func armTimer(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard let head = pending.first else { return }
        guard let deadline = head.deadline else {
            // The oldest request has no deadline: aim at the first one that has.
            if let next = pending.lazy.compactMap(\.deadline).first { armTimer(at: next, context: context) }
            return
        }
        if deadline <= .now() {
            failAll(NimbusError(.deadlineExceeded, "Redis at \(endpoint) did not answer \(head.firstCommand) in time; the connection was closed and will be reopened"), context: context)
            context.close(promise: nil)
        } else {
            armTimer(at: deadline, context: context)
        }
    }
}
