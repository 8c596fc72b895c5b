import DequeModule
import Logging
import NIOCore
import NIOSSL
import NimbusCore

/// Commands that go out in one write, and the caller waiting for their replies.
///
/// Created on the caller's thread with the commands already encoded, then handed to the event
/// loop; from there on it is completed exactly once, on the event loop only.
final class RedisRequest: @unchecked Sendable {
    /// The commands, already encoded (by the caller, off the event loop).
    let payload: ByteBuffer
    /// How many commands the payload holds, so how many replies to wait for.
    let count: Int
    /// The first command, named in a timeout error.
    let firstCommand: RedisCommand
    /// How long to wait for the replies.
    let timeout: TimeAmount?
    private var continuation: UnsafeContinuation<[RESPValue], any Error>?

    init(payload: ByteBuffer, count: Int, firstCommand: RedisCommand, timeout: TimeAmount?,
         continuation: UnsafeContinuation<[RESPValue], any Error>) {
        self.payload = payload
        self.count = count
        self.firstCommand = firstCommand
        self.timeout = timeout
        self.continuation = continuation
    }

    func succeed(_ replies: [RESPValue]) {
        continuation?.resume(returning: replies)
        continuation = nil
    }

    func fail(_ error: any Error) {
        continuation?.resume(throwing: error)
        continuation = nil
    }
}

/// Matches replies to requests on one connection. Replies arrive in the order the commands were
/// written, so any number of callers can share the connection (pipelining and multiplexing);
/// RESP3 pushes are routed to `onPush` instead.
///
/// Requests do not travel through the channel pipeline: ``RedisConnection`` hands batches to
/// ``submit(_:)`` on the event loop, which writes them all and flushes once. Replies are parsed
/// here from the byte stream (no separate decoder stage).
final class RedisConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var request: RedisRequest
        var remaining: Int
        var replies: [RESPValue]
        var deadline: NIODeadline?
    }

    /// One timer for the whole connection, aimed at the oldest request's deadline (replies come
    /// in order, so the oldest request is the one that times out first); re-aimed when it fires.
    private var timer: Scheduled<Void>?

    private var context: ChannelHandlerContext?
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

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(NimbusError(.unavailable, "connection to Redis at \(endpoint) closed"))
        self.context = nil
    }

    /// Writes `requests` and flushes once. Runs on the event loop.
    func submit(_ requests: [RedisRequest]) {
        guard let context, closedError == nil, context.channel.isActive else {
            let error = closedError ?? NimbusError(.unavailable, "connection to Redis at \(endpoint) is closed; the commands were not sent")
            for request in requests { request.fail(error) }
            return
        }
        for request in requests {
            guard request.count > 0 else { request.succeed([]); continue }
            var entry = Pending(request: request, remaining: request.count, replies: [], deadline: request.timeout.map { .now() + $0 })
            entry.replies.reserveCapacity(request.count)
            if timer == nil, let deadline = entry.deadline { armTimer(at: deadline, context: context) }
            pending.append(entry)
            context.write(wrapOutboundOut(request.payload), promise: nil)
        }
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        // Work on locals (moved out of the handler) so the hot loop pays no exclusivity checks
        // or copy-on-write; they are moved back at the end.
        var buffer = inbound
        inbound = ByteBuffer()
        if buffer.readableBytes == 0 { buffer = incoming } else { buffer.writeBuffer(&incoming) }
        do {
            replies: while true {
                guard let next = pending.popFirst() else {
                    // Only pushes may arrive with nothing outstanding.
                    guard let value = try decoder.parse(from: &buffer) else { break replies }
                    if case .push(let elements) = value { onPush?(elements); continue }
                    logger.warning("Redis sent a reply nobody asked for; closing the connection", metadata: ["endpoint": "\(endpoint)"])
                    failAll(NimbusError(.internal, "Redis at \(endpoint) sent an unsolicited \(value.typeName) reply"))
                    context.close(promise: nil)
                    return
                }
                // The request being filled is out of `pending`; it goes back before any exit that
                // leaves it unfinished, so that a protocol error or a close still fails it.
                var head = next
                do {
                    while head.remaining > 0, let value = try decoder.parse(from: &buffer) {
                        if case .push = value {
                            if case .push(let elements) = value { onPush?(elements) }
                            continue
                        }
                        head.replies.append(value)
                        head.remaining -= 1
                    }
                } catch {
                    pending.prepend(head)
                    throw error
                }
                if head.remaining == 0 {
                    head.request.succeed(head.replies)
                } else {
                    pending.prepend(head)
                    break replies
                }
            }
        } catch {
            errorCaught(context: context, error: error)
            return
        }
        if buffer.readableBytes == 0 { buffer.clear() } else if buffer.readerIndex > 64 * 1024 { buffer.discardReadBytes() }
        inbound = buffer
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
        failAll(nimbus)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(NimbusError(.unavailable, "connection to Redis at \(endpoint) closed with replies outstanding; commands that were sent may or may not have run"))
        context.fireChannelInactive()
    }

    private func failAll(_ error: NimbusError) {
        if closedError == nil { closedError = error }
        timer?.cancel()
        timer = nil
        while let entry = pending.popFirst() { entry.request.fail(error) }
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
            failAll(NimbusError(.deadlineExceeded, "Redis at \(endpoint) did not answer \(head.request.firstCommand) in time; the connection was closed and will be reopened"))
            context.close(promise: nil)
        } else {
            armTimer(at: deadline, context: context)
        }
    }
}
