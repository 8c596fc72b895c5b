import Foundation
import NIOCore
import NimbusCore
import Synchronization

extension Message {
    /// A message with a UTF-8 text body.
    public init(_ text: String, attributes: [String: String] = [:], orderingKey: String? = nil, deduplicationID: String? = nil, delay: Duration? = nil) {
        self.init(body: ByteBuffer(string: text), attributes: attributes, orderingKey: orderingKey, deduplicationID: deduplicationID, delay: delay)
    }

    /// A message whose body is `value` encoded as JSON (`content-type: application/json` is added).
    public init<T: Encodable>(json value: T, encoder: JSONEncoder = JSONEncoder(), attributes: [String: String] = [:],
                              orderingKey: String? = nil, deduplicationID: String? = nil, delay: Duration? = nil) throws {
        let data: Data
        do { data = try encoder.encode(value) }
        catch { throw NimbusError(.invalidArgument, "cannot encode \(T.self) as a message body: \(error)", underlying: error) }
        var attributes = attributes
        attributes["content-type"] = attributes["content-type"] ?? "application/json"
        self.init(body: ByteBuffer(bytes: data), attributes: attributes, orderingKey: orderingKey, deduplicationID: deduplicationID, delay: delay)
    }
}

/// A message taken from a ``Subscription``: its payload and the calls that settle it.
///
/// Settle every message once — ``ack()`` when done, ``nack(redeliverAfter:)`` to have it
/// delivered again, ``deadLetter()`` to give up on it. Until then it counts against the
/// subscription's flow control. A message never settled is delivered again when its lease
/// (the subscription's ack deadline) passes; ``extendDeadline(to:)`` keeps a long job's lease.
///
/// ```swift
/// for try await message in subscription.messages() {
///     let order = try message.decode(Order.self)
///     try await fulfil(order)
///     try await message.ack()
/// }
/// ```
public final class ReceivedMessage: Sendable, CustomStringConvertible {
    /// What the driver handed out.
    public let delivery: DeliveredMessage
    private let settler: any MessageSettler
    private let settled = Atomic<Bool>(false)

    init(_ delivery: DeliveredMessage, settler: any MessageSettler) {
        self.delivery = delivery
        self.settler = settler
    }

    /// The broker's id of the message.
    public var id: String { delivery.id }
    /// The payload.
    public var body: ByteBuffer { delivery.body }
    /// The payload as UTF-8 text (invalid bytes become U+FFFD).
    public var text: String { String(decoding: delivery.body.readableBytesView, as: UTF8.self) }
    /// The attributes it was published with.
    public var attributes: [String: String] { delivery.attributes }
    /// Its ordering key, if any.
    public var orderingKey: String? { delivery.orderingKey }
    /// Which delivery this is (1 for the first), where the broker counts.
    public var deliveryAttempt: Int { delivery.deliveryAttempt }
    /// When it was published, where the broker says.
    public var publishedAt: Date? { delivery.publishedAt }
    /// Whether ack, nack or dead-letter was already called.
    public var isSettled: Bool { settled.load(ordering: .relaxed) }

    /// Decodes the JSON body.
    /// - Throws: `invalidArgument` when the body is not a `T`; settle the message anyway (dead-letter it).
    public func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        do { return try decoder.decode(T.self, from: Data(delivery.body.readableBytesView)) }
        catch { throw NimbusError(.invalidArgument, "message \(id) is not a \(T.self): \(error)", underlying: error) }
    }

    /// Acknowledges the message: it is not delivered again.
    /// - Throws: `failedPrecondition` when it was already settled, or when its lease passed and the
    ///   broker says so (it was or will be delivered again).
    public func ack() async throws {
        try settle("ack")
        try await settler.settle(self, .ack)
    }

    /// Gives the message back, to be delivered again after `delay` (zero: as soon as possible).
    public func nack(redeliverAfter delay: Duration = .zero) async throws {
        guard delay >= .zero else { throw NimbusError(.invalidArgument, "a redelivery delay must not be negative, got \(delay)") }
        try settle("nack")
        try await settler.settle(self, .nack(.requeue(delay: delay)))
    }

    /// Moves the message to the subscription's dead-letter topic now.
    /// - Throws: `failedPrecondition` when the subscription has no dead-letter policy.
    public func deadLetter() async throws {
        try settle("deadLetter")
        try await settler.settle(self, .nack(.deadLetter))
    }

    /// Extends the lease to `deadline` from now, for work that takes longer than the ack deadline.
    public func extendDeadline(to deadline: Duration) async throws {
        guard !isSettled else { throw NimbusError(.failedPrecondition, "message \(id) is already settled; its lease cannot be extended") }
        try await settler.extend(self, to: deadline)
    }

    public var description: String { "ReceivedMessage(id: \(id), \(delivery.body.readableBytes) bytes, attempt \(deliveryAttempt))" }

    private func settle(_ operation: String) throws {
        guard !settled.exchange(true, ordering: .acquiringAndReleasing) else {
            throw NimbusError(.failedPrecondition, "message \(id) is already settled; \(operation) was not sent (each message is acked, nacked or dead-lettered once)")
        }
    }

    /// Marks the message settled without telling the broker (its lease simply lapses): used when a
    /// subscription gives back messages it fetched but never handed out.
    func abandon() -> Bool { !settled.exchange(true, ordering: .acquiringAndReleasing) }
}

/// How a received message is settled.
enum Settlement: Sendable {
    case ack
    case nack(NackDisposition)
}

/// The subscription side of a ``ReceivedMessage``: sends the settlement and returns the flow-control credit.
protocol MessageSettler: Sendable {
    func settle(_ message: ReceivedMessage, _ settlement: Settlement) async throws
    func extend(_ message: ReceivedMessage, to deadline: Duration) async throws
}
