import NIOCore
import NimbusCore
import Synchronization

/// Gathers what many tasks write to one channel and writes it with one flush per event-loop turn:
/// publishers on one connection (or one publishing in a loop) share system calls instead of paying
/// one each. What one `enqueue` encodes stays contiguous, and enqueues are written in call order.
///
/// Past `limit` bytes waiting, ``write(_:)`` makes its caller wait until they are on the socket
/// (backpressure instead of an unbounded buffer).
///
/// ```swift
/// let writer = ChannelWriteCoalescer(channel: channel)
/// try await writer.write { $0.writeString("PUB subject 5\r\nhello\r\n") }
/// ```
public final class ChannelWriteCoalescer: Sendable {
    /// The channel written to.
    public let channel: any Channel
    /// Bytes waiting past which writers wait.
    public let limit: Int
    private let outbox = Mutex<(pending: ByteBuffer?, scheduled: Bool)>((nil, false))

    /// Creates a coalescer for `channel`.
    public init(channel: any Channel, limit: Int = 4 << 20) {
        self.channel = channel
        self.limit = limit
    }

    /// Encodes into the queue (under its lock, so it may be called while holding another lock that
    /// orders writes, such as a channel's sequence numbers) and schedules the flush.
    /// - Returns: whether more than `limit` bytes are waiting (the caller should then ``waitUntilWritten()``).
    @discardableResult
    public func enqueue(_ encode: (inout ByteBuffer) -> Void) -> Bool {
        let (schedule, full) = outbox.withLock { outbox -> (Bool, Bool) in
            if outbox.pending == nil { outbox.pending = channel.allocator.buffer(capacity: 16_384) }
            encode(&outbox.pending!)
            defer { outbox.scheduled = true }
            return (!outbox.scheduled, outbox.pending!.readableBytes > limit)
        }
        if schedule { channel.eventLoop.execute { self.drain() } }
        return full
    }

    /// ``enqueue(_:)``, then waits while the queue is over its limit. Runs on the caller's executor.
    /// - Throws: `unavailable` when the channel is closed.
    nonisolated(nonsending) public func write(_ encode: (inout ByteBuffer) -> Void) async throws {
        guard channel.isActive else { throw NimbusError(.unavailable, "the connection is closed") }
        if enqueue(encode) { try await waitUntilWritten() }
    }

    /// Waits until everything queued before is on the socket.
    public func waitUntilWritten() async throws {
        // Written in order after the queued bytes: when this completes, they are written.
        do { try await channel.writeAndFlush(channel.allocator.buffer(capacity: 0)) }
        catch { throw NimbusError(.unavailable, "the connection is closed: \(error)", underlying: error) }
    }

    private func drain() {
        let pending = outbox.withLock { outbox -> ByteBuffer? in
            defer { outbox.pending = nil; outbox.scheduled = false }
            return outbox.pending
        }
        if let pending { channel.writeAndFlush(pending, promise: nil) }
    }
}
