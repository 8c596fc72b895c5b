import DequeModule
import Foundation
import NIOCore
import NimbusCore
import Synchronization

/// A message as RabbitMQ hands it out (`basic.deliver`, `basic.get-ok` or `basic.return`).
public struct AMQPDelivery: Sendable, Hashable {
    /// The consumer it was delivered to (`basic.deliver`).
    public var consumerTag: String?
    /// The channel-scoped tag that acknowledges it.
    public var deliveryTag: UInt64
    /// Whether it was delivered before and not acknowledged.
    public var redelivered: Bool
    public var exchange: String
    public var routingKey: String
    public var properties: AMQPProperties
    public var body: ByteBuffer
    /// `basic.get-ok`: how many messages are left in the queue.
    public var messageCount: UInt32?
    /// `basic.return`: why the message came back (`312 NO_ROUTE`).
    public var returnReason: String?
}

/// What a consumer is told.
public enum AMQPConsumerEvent: Sendable {
    /// A message.
    case delivery(AMQPDelivery)
    /// The consumer ended: the server cancelled it (its queue was deleted) or the channel closed.
    case cancelled(NimbusError)
}

/// One AMQP channel: declarations, publishing (with publisher confirms), consumers and acknowledgements.
///
/// Synchronous methods may be called from many tasks at once; their replies come in order.
/// A channel-level error from the server (`404 NOT_FOUND` on a missing queue, say) closes the
/// channel: every waiting call fails with the mapped `NimbusError`, and later calls fail at once —
/// open a new channel.
///
/// ```swift
/// let channel = try await connection.openChannel()
/// try await channel.confirmSelect()
/// try await channel.publish(exchange: "orders", routingKey: "", body: ByteBuffer(string: "hi"),
///                           properties: .init(deliveryMode: AMQPProperties.persistent))
/// ```
public final class AMQPChannel: Sendable {
    /// The channel number.
    public let id: UInt16
    let endpoint: String

    private struct Assembly {
        enum Kind { case deliver, get, returned }
        var kind: Kind
        var method: AMQPMethod
        var properties = AMQPProperties()
        var bodySize: UInt64 = 0
        var body: ByteBuffer?
        var headerSeen = false
    }

    private struct PendingConfirm {
        var waiter: AMQPWaiter
        var messageID: String?
    }

    private struct State {
        weak var connection: AMQPConnection?
        weak var router: AMQPRouter?
        var waiters: Deque<AMQPWaiter> = []
        var assembly: Assembly?
        var consumers: [String: @Sendable (AMQPConsumerEvent) -> Void] = [:]
        var confirming = false
        var nextPublish: UInt64 = 1
        var pendingConfirms: [UInt64: PendingConfirm] = [:]
        var returned: [String: String] = [:]
        var closed: NimbusError?
    }
    private let state = Mutex(State())

    /// The largest message body accepted from the server (RabbitMQ's own default limit is 128 MiB).
    static let maximumBodySize: UInt64 = 128 << 20

    init(id: UInt16, endpoint: String) {
        self.id = id
        self.endpoint = endpoint
    }

    func attach(_ connection: AMQPConnection, router: AMQPRouter) {
        state.withLock { $0.connection = connection; $0.router = router }
    }

    /// Whether the channel is open.
    public var isOpen: Bool { state.withLock { $0.closed == nil && $0.connection != nil } }

    /// Why the channel closed, once it has.
    public var closedError: NimbusError? { state.withLock { $0.closed } }

    // MARK: Calls

    /// Sends a synchronous method and waits for its reply.
    func call(_ method: AMQPMethod, expecting reply: String) async throws -> AMQPMethod {
        try await callReply(method).method(expecting: reply)
    }

    func callReply(_ method: AMQPMethod) async throws -> AMQPReply {
        let waiter = AMQPWaiter()
        try state.withLock { state in
            if let closed = state.closed { throw closed }
            guard let connection = state.connection else { throw NimbusError(.unavailable, "the connection to RabbitMQ at \(endpoint) is gone") }
            state.waiters.append(waiter)
            connection.enqueue { AMQPWire.write(.method(channel: id, method), into: &$0) }
        }
        return try await waiter.value
    }

    /// Sends an asynchronous method (no reply).
    func send(_ method: AMQPMethod) async throws {
        let connection = try state.withLock { state -> AMQPConnection in
            if let closed = state.closed { throw closed }
            guard let connection = state.connection else { throw NimbusError(.unavailable, "the connection to RabbitMQ at \(endpoint) is gone") }
            return connection
        }
        try await connection.write { AMQPWire.write(.method(channel: id, method), into: &$0) }
    }

    /// Waits for the next method on this channel without sending anything (the handshake on channel 0).
    func expect() -> AMQPWaiter {
        let waiter = AMQPWaiter()
        let closed = state.withLock { state -> NimbusError? in
            if let closed = state.closed { return closed }
            state.waiters.append(waiter)
            return nil
        }
        if let closed { waiter.complete(.failure(closed)) }
        return waiter
    }

    // MARK: Exchanges and queues

    /// Declares an exchange (`passive`: only checks that it exists).
    /// - Throws: `notFound` (passive, no such exchange); `failedPrecondition` when it exists with other settings.
    public func exchangeDeclare(_ name: String, type: String = "fanout", passive: Bool = false, durable: Bool = true, autoDelete: Bool = false,
                                internal: Bool = false, arguments: AMQPTable = [:]) async throws {
        _ = try await call(AMQPMethod("exchange.declare", ["exchange": .shortstr(name), "type": .shortstr(type), "passive": .bit(passive),
                                                           "durable": .bit(durable), "auto-delete": .bit(autoDelete), "internal": .bit(`internal`),
                                                           "arguments": .table(arguments)]), expecting: "exchange.declare-ok")
    }

    /// Deletes an exchange (RabbitMQ answers OK for one that does not exist).
    public func exchangeDelete(_ name: String, ifUnused: Bool = false) async throws {
        _ = try await call(AMQPMethod("exchange.delete", ["exchange": .shortstr(name), "if-unused": .bit(ifUnused)]), expecting: "exchange.delete-ok")
    }

    /// Declares a queue (`passive`: only checks that it exists); returns its name and counts.
    /// - Throws: `notFound` (passive, no such queue); `failedPrecondition` when it exists with other settings.
    @discardableResult
    public func queueDeclare(_ name: String, passive: Bool = false, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
                             arguments: AMQPTable = [:]) async throws -> (queue: String, messageCount: Int, consumerCount: Int) {
        let reply = try await call(AMQPMethod("queue.declare", ["queue": .shortstr(name), "passive": .bit(passive), "durable": .bit(durable),
                                                                "exclusive": .bit(exclusive), "auto-delete": .bit(autoDelete),
                                                                "arguments": .table(arguments)]), expecting: "queue.declare-ok")
        return (reply.string("queue"), Int(reply.integer("message-count")), Int(reply.integer("consumer-count")))
    }

    /// Binds a queue to an exchange.
    public func queueBind(_ queue: String, exchange: String, routingKey: String = "", arguments: AMQPTable = [:]) async throws {
        _ = try await call(AMQPMethod("queue.bind", ["queue": .shortstr(queue), "exchange": .shortstr(exchange), "routing-key": .shortstr(routingKey),
                                                     "arguments": .table(arguments)]), expecting: "queue.bind-ok")
    }

    /// Removes a binding.
    public func queueUnbind(_ queue: String, exchange: String, routingKey: String = "", arguments: AMQPTable = [:]) async throws {
        _ = try await call(AMQPMethod("queue.unbind", ["queue": .shortstr(queue), "exchange": .shortstr(exchange), "routing-key": .shortstr(routingKey),
                                                       "arguments": .table(arguments)]), expecting: "queue.unbind-ok")
    }

    /// Removes every ready message; returns how many.
    @discardableResult
    public func queuePurge(_ queue: String) async throws -> Int {
        Int(try await call(AMQPMethod("queue.purge", ["queue": .shortstr(queue)]), expecting: "queue.purge-ok").integer("message-count"))
    }

    /// Deletes a queue; returns how many messages it held.
    @discardableResult
    public func queueDelete(_ queue: String, ifUnused: Bool = false, ifEmpty: Bool = false) async throws -> Int {
        Int(try await call(AMQPMethod("queue.delete", ["queue": .shortstr(queue), "if-unused": .bit(ifUnused), "if-empty": .bit(ifEmpty)]),
                           expecting: "queue.delete-ok").integer("message-count"))
    }

    // MARK: Publishing

    /// Limits unacknowledged deliveries to this channel's consumers (`global: false`: per consumer).
    public func qos(prefetchCount: Int, global: Bool = false) async throws {
        _ = try await call(AMQPMethod("basic.qos", ["prefetch-count": .short(UInt16(clamping: prefetchCount)), "global": .bit(global)]),
                           expecting: "basic.qos-ok")
    }

    /// Turns on publisher confirms: from now on ``publish(exchange:routingKey:body:properties:mandatory:)``
    /// returns once the server has taken responsibility for the message (written it to disk, for
    /// persistent messages in durable queues).
    public func confirmSelect() async throws {
        _ = try await call(AMQPMethod("confirm.select"), expecting: "confirm.select-ok")
        state.withLock { $0.confirming = true }
    }

    /// Publishes a message. With confirms on, waits for the server's `basic.ack`.
    ///
    /// With `mandatory`, a message no queue takes comes back (`basic.return`) and this throws
    /// `notFound`; such messages are matched by message id, so one is assigned if missing.
    /// - Throws: `unavailable` when the server nacks the message (it could not store it) or the
    ///   connection drops before the confirm — the message may or may not have been stored, so
    ///   publish again (consumers must tolerate duplicates: delivery is at least once).
    public func publish(exchange: String, routingKey: String, body: ByteBuffer, properties: AMQPProperties = .init(),
                        mandatory: Bool = false) async throws {
        var properties = properties
        if mandatory, properties.messageID == nil { properties.messageID = IDGenerator.shared.ulid().description }
        let method = AMQPMethod("basic.publish", ["exchange": .shortstr(exchange), "routing-key": .shortstr(routingKey), "mandatory": .bit(mandatory)])
        let waiter = AMQPWaiter()
        let (connection, confirming, full) = try state.withLock { state -> (AMQPConnection, Bool, Bool) in
            if let closed = state.closed { throw closed }
            guard let connection = state.connection else { throw NimbusError(.unavailable, "the connection to RabbitMQ at \(endpoint) is gone") }
            if state.confirming {
                state.pendingConfirms[state.nextPublish] = PendingConfirm(waiter: waiter, messageID: mandatory ? properties.messageID : nil)
                state.nextPublish += 1
            }
            let frameMax = connection.frameMax
            let full = connection.enqueue {
                AMQPWire.writeContent(method, channel: id, properties: properties, body: body, frameMax: frameMax, into: &$0)
            }
            return (connection, state.confirming, full)
        }
        if full { try await connection.write { _ in } }
        guard confirming else { return }
        _ = try await waiter.value
    }

    // MARK: Consuming

    /// Starts a consumer; `handler` gets its deliveries on the connection's event loop (keep it short).
    /// Returns the consumer tag.
    /// - Throws: `notFound` when the queue does not exist (the channel closes).
    @discardableResult
    public func consume(queue: String, tag: String? = nil, noAck: Bool = false, exclusive: Bool = false, arguments: AMQPTable = [:],
                        handler: @escaping @Sendable (AMQPConsumerEvent) -> Void) async throws -> String {
        let tag = tag ?? "nimbus-\(IDGenerator.shared.ulid())"
        state.withLock { $0.consumers[tag] = handler }
        do {
            _ = try await call(AMQPMethod("basic.consume", ["queue": .shortstr(queue), "consumer-tag": .shortstr(tag), "no-ack": .bit(noAck),
                                                            "exclusive": .bit(exclusive), "arguments": .table(arguments)]), expecting: "basic.consume-ok")
        } catch {
            _ = state.withLock { $0.consumers.removeValue(forKey: tag) }
            throw error
        }
        return tag
    }

    /// Stops a consumer; deliveries already sent still arrive (and must be settled).
    public func cancel(consumerTag: String) async throws {
        _ = try await call(AMQPMethod("basic.cancel", ["consumer-tag": .shortstr(consumerTag)]), expecting: "basic.cancel-ok")
        _ = state.withLock { $0.consumers.removeValue(forKey: consumerTag) }
    }

    /// Takes one message from a queue, or `nil` when it is empty.
    public func get(queue: String, noAck: Bool = false) async throws -> AMQPDelivery? {
        switch try await callReply(AMQPMethod("basic.get", ["queue": .shortstr(queue), "no-ack": .bit(noAck)])) {
        case .delivery(_, let delivery): return delivery
        case .method(let method):
            guard method.name == "basic.get-empty" else { throw NimbusError(.internal, "RabbitMQ answered basic.get with \(method.name)") }
            return nil
        }
    }

    /// Acknowledges a delivery (and, with `multiple`, every earlier one on this channel).
    public func ack(deliveryTag: UInt64, multiple: Bool = false) async throws {
        try await send(AMQPMethod("basic.ack", ["delivery-tag": .longlong(deliveryTag), "multiple": .bit(multiple)]))
    }

    /// Gives a delivery back: requeued, or dead-lettered (or dropped, without a dead-letter exchange).
    public func nack(deliveryTag: UInt64, multiple: Bool = false, requeue: Bool) async throws {
        try await send(AMQPMethod("basic.nack", ["delivery-tag": .longlong(deliveryTag), "multiple": .bit(multiple), "requeue": .bit(requeue)]))
    }

    /// Closes the channel (`channel.close`, waiting for `close-ok`).
    public func close() async throws {
        guard state.withLock({ $0.closed == nil }) else { return }
        _ = try? await call(AMQPMethod("channel.close", ["reply-code": .short(200), "reply-text": .shortstr("bye")]), expecting: "channel.close-ok")
        let router = state.withLock { $0.router }
        router?.release(id)
        fail(NimbusError(.unavailable, "channel \(id) to RabbitMQ at \(endpoint) was closed by this client"))
    }

    // MARK: Incoming

    func received(_ frame: AMQPFrame) {
        switch frame {
        case .method(_, let method):
            receivedMethod(method)
        case .header(_, _, let bodySize, let properties):
            let complete = state.withLock { state -> Bool in
                guard state.assembly != nil, state.assembly?.headerSeen == false else { return false }
                state.assembly!.headerSeen = true
                state.assembly!.properties = properties
                state.assembly!.bodySize = bodySize
                return bodySize == 0
            }
            if bodySize > Self.maximumBodySize {
                protocolError("a message of \(bodySize) bytes is larger than the \(Self.maximumBodySize)-byte limit")
            } else if complete {
                finishAssembly()
            }
        case .body(_, let slice):
            let complete = state.withLock { state -> Bool? in
                guard state.assembly?.headerSeen == true else { return nil }
                if state.assembly!.body == nil { state.assembly!.body = ByteBuffer() ; state.assembly!.body!.reserveCapacity(Int(state.assembly!.bodySize)) }
                state.assembly!.body!.writeImmutableBuffer(slice)
                return UInt64(state.assembly!.body!.readableBytes) >= state.assembly!.bodySize
            }
            switch complete {
            case nil: protocolError("a body frame came without a content header")
            case true?: finishAssembly()
            case false?: break
            }
        case .heartbeat:
            break
        }
    }

    private func receivedMethod(_ method: AMQPMethod) {
        switch method.name {
        case "basic.deliver":
            state.withLock { $0.assembly = Assembly(kind: .deliver, method: method) }
        case "basic.get-ok":
            state.withLock { $0.assembly = Assembly(kind: .get, method: method) }
        case "basic.return":
            state.withLock { $0.assembly = Assembly(kind: .returned, method: method) }
        case "basic.ack", "basic.nack":
            settleConfirms(upTo: method.integer("delivery-tag"), multiple: method.flag("multiple"), acked: method.name == "basic.ack")
        case "basic.cancel":
            // The server cancelled a consumer (its queue was deleted, or the node holding it went down).
            let tag = method.string("consumer-tag")
            let handler = state.withLock { $0.consumers.removeValue(forKey: tag) }
            handler?(.cancelled(NimbusError(.notFound, "RabbitMQ cancelled consumer \(tag) (its queue was deleted or became unavailable)")))
        case "channel.flow":
            let active = method.flag("active")
            Task { try? await self.send(AMQPMethod("channel.flow-ok", ["active": .bit(active)])) }
        case "channel.close":
            let error = Self.error(for: method, endpoint: endpoint, connectionLevel: false, channel: id)
            let (connection, router) = state.withLock { ($0.connection, $0.router) }
            connection?.enqueue { AMQPWire.write(.method(channel: self.id, AMQPMethod("channel.close-ok")), into: &$0) }
            router?.release(id)
            fail(error)
        default:
            let waiter = state.withLock { $0.waiters.popFirst() }
            if let waiter { waiter.complete(.success(.method(method))) }
            else { protocolError("\(method.name) came on channel \(id) with no call waiting for it") }
        }
    }

    private func finishAssembly() {
        guard let assembly = state.withLock({ state -> Assembly? in defer { state.assembly = nil }; return state.assembly }) else { return }
        let method = assembly.method
        var delivery = AMQPDelivery(consumerTag: nil, deliveryTag: method.integer("delivery-tag"), redelivered: method.flag("redelivered"),
                                    exchange: method.string("exchange"), routingKey: method.string("routing-key"),
                                    properties: assembly.properties, body: assembly.body ?? ByteBuffer())
        switch assembly.kind {
        case .deliver:
            let tag = method.string("consumer-tag")
            delivery.consumerTag = tag
            let handler = state.withLock { $0.consumers[tag] }
            handler?(.delivery(delivery))
        case .get:
            delivery.messageCount = UInt32(clamping: method.integer("message-count"))
            let waiter = state.withLock { $0.waiters.popFirst() }
            waiter?.complete(.success(.delivery(method, delivery)))
        case .returned:
            let reason = "\(method.integer("reply-code")) \(method.string("reply-text"))"
            if let id = delivery.properties.messageID { state.withLock { $0.returned[id] = reason } }
        }
    }

    private func settleConfirms(upTo tag: UInt64, multiple: Bool, acked: Bool) {
        let settled = state.withLock { state -> [(AMQPWaiter, String?)] in
            let tags = multiple ? state.pendingConfirms.keys.filter { $0 <= tag } : [tag]
            return tags.compactMap { tag in
                guard let pending = state.pendingConfirms.removeValue(forKey: tag) else { return nil }
                let returned = pending.messageID.flatMap { state.returned.removeValue(forKey: $0) }
                return (pending.waiter, returned)
            }
        }
        for (waiter, returned) in settled {
            if let returned {
                waiter.complete(.failure(NimbusError(.notFound, "RabbitMQ returned the mandatory message: no queue is bound to take it (\(returned))")))
            } else if acked {
                waiter.complete(.success(.method(AMQPMethod("basic.ack"))))
            } else {
                waiter.complete(.failure(NimbusError(.unavailable, "RabbitMQ nacked a published message (it could not store it); publish it again")))
            }
        }
    }

    private func protocolError(_ message: String) {
        let router = state.withLock { $0.router }
        let connection = state.withLock { $0.connection }
        router?.logger.error("AMQP protocol error; closing the connection", metadata: ["error": "\(message)"])
        router?.closed(NimbusError(.unavailable, "RabbitMQ at \(endpoint) broke the AMQP protocol: \(message)"))
        connection?.channel.close(promise: nil)
    }

    /// Fails everything waiting on this channel and ends its consumers.
    func fail(_ error: any Error) {
        let nimbus = (error as? NimbusError) ?? NimbusError(.unavailable, "\(error)", underlying: error)
        let (waiters, confirms, consumers) = state.withLock { state in
            if state.closed == nil { state.closed = nimbus }
            defer { state.waiters.removeAll(); state.pendingConfirms.removeAll(); state.consumers.removeAll(); state.assembly = nil }
            return (Array(state.waiters), state.pendingConfirms.values.map(\.waiter), Array(state.consumers.values))
        }
        for waiter in waiters { waiter.complete(.failure(nimbus)) }
        for waiter in confirms { waiter.complete(.failure(nimbus)) }
        for consumer in consumers { consumer(.cancelled(nimbus)) }
    }

    /// The `NimbusError` for a `channel.close` or `connection.close` from the server.
    static func error(for method: AMQPMethod, endpoint: String, connectionLevel: Bool, channel: UInt16 = 0) -> NimbusError {
        let code = Int(method.integer("reply-code")), text = method.string("reply-text")
        let failed = AMQPMethodSignature.byID[UInt32(method.integer("class-id")) << 16 | UInt32(method.integer("method-id"))]
        let context = failed.map { " (in \($0.name))" } ?? ""
        let scope = connectionLevel ? "the connection" : "channel \(channel)"
        let nimbusCode: NimbusError.Code = switch code {
        case 404, 312: .notFound
        case 403: connectionLevel ? .unauthenticated : .permissionDenied
        case 530: .permissionDenied
        case 405, 406: .failedPrecondition
        case 311, 402: .invalidArgument
        case 506: .resourceExhausted
        case 540: .unimplemented
        case 501, 502, 503, 504, 505, 541: .internal
        default: .unavailable
        }
        return NimbusError(nimbusCode, "RabbitMQ at \(endpoint) closed \(scope): \(code) \(text)\(context)")
    }
}
