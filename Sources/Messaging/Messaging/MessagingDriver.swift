import Foundation
import NIOCore
import NimbusCore

/// What a messaging adapter implements: only what differs between brokers. Users call
/// ``Messaging``, ``Topic`` and ``Subscription``, which add validation, flow control, retries of
/// idempotent calls, settle-once tracking, metrics and error normalisation.
///
/// The model is gocloud.dev's: messages are published to a **topic** and received from a
/// **subscription** of that topic; every subscription gets its own copy of each message
/// published after it was created, and delivers it at least once until it is acknowledged.
/// Brokers map onto it as follows — a queue broker's queue is a topic with one subscription of
/// the same name, a log broker's consumer group is a subscription.
///
/// Names reach the driver already validated. A driver throws `NimbusError`s; the conformance
/// suite (`NimbusMessagingConformance`) states the behaviour every driver must have.
public protocol MessagingDriver: NimbusDriver {
    /// What this broker does beyond at-least-once delivery; the portable layer refuses options
    /// that need a capability the driver lacks, rather than silently ignoring them.
    var capabilities: MessagingCapabilities { get }

    /// Creates `topic`; returns `false` when it already existed (not an error).
    func createTopic(_ topic: String) async throws -> Bool

    /// Deletes `topic` and, where the broker ties them to it, its subscriptions.
    /// - Throws: `notFound` when there is no such topic.
    func deleteTopic(_ topic: String) async throws

    /// The topics, sorted by name.
    func topics() async throws -> [String]

    /// Creates a subscription of `topic`; returns `false` when one of that name already existed.
    /// - Throws: `notFound` when the topic does not exist; `alreadyExists` when the name is taken
    ///   by a subscription of another topic.
    func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions) async throws -> Bool

    /// Deletes `subscription` and every message waiting in it.
    /// - Throws: `notFound` when there is no such subscription.
    func deleteSubscription(_ subscription: String) async throws

    /// The subscriptions of `topic`, sorted by name.
    func subscriptions(of topic: String) async throws -> [String]

    /// Publishes `messages` to `topic` and returns their ids, in order. A message whose
    /// deduplication id was seen on this topic within the broker's window returns the first
    /// message's id and is not delivered again.
    /// - Throws: `notFound` when the topic does not exist.
    func publish(_ messages: [Message], to topic: String) async throws -> [String]

    /// Takes up to `maxMessages` messages from `subscription`, each leased for the
    /// subscription's ack deadline. Waits up to `wait` for the first one; returns `[]` if none came.
    /// - Throws: `notFound` when there is no such subscription.
    func receive(from subscription: String, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage]

    /// Acknowledges messages: they are not delivered again.
    /// - Throws: `failedPrecondition` for a receipt whose lease has passed (the message was or
    ///   will be delivered again), where the broker can tell.
    func ack(_ receipts: [String], on subscription: String) async throws

    /// Gives messages back: delivered again after `delay`, or moved to the subscription's
    /// dead-letter topic right away (``NackDisposition/deadLetter``).
    func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws

    /// Extends the leases of messages still being worked on, to `deadline` from now.
    func extendDeadline(_ receipts: [String], on subscription: String, to deadline: Duration) async throws
}

/// What a broker does beyond at-least-once delivery.
public struct MessagingCapabilities: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Published messages survive a broker (or embedded store) restart.
    public static let durable = MessagingCapabilities(rawValue: 1 << 0)
    /// Messages with the same ordering key are delivered in publish order, one at a time.
    public static let orderingKeys = MessagingCapabilities(rawValue: 1 << 1)
    /// A message can be published with a delay before its first delivery.
    public static let delayedDelivery = MessagingCapabilities(rawValue: 1 << 2)
    /// A deduplication id suppresses repeated publishes within a window.
    public static let deduplication = MessagingCapabilities(rawValue: 1 << 3)
    /// Subscriptions move poison messages to a dead-letter topic after N deliveries.
    public static let deadLetters = MessagingCapabilities(rawValue: 1 << 4)
    /// Each message carries how many times it has been delivered.
    public static let deliveryCount = MessagingCapabilities(rawValue: 1 << 5)
    /// Leases can be extended while a message is being worked on.
    public static let extendDeadline = MessagingCapabilities(rawValue: 1 << 6)
    /// A nack can ask for redelivery after a delay.
    public static let delayedRedelivery = MessagingCapabilities(rawValue: 1 << 7)
}

/// A message to publish: its payload, attributes and delivery options.
public struct Message: Sendable, Hashable {
    /// The payload, binary-safe.
    public var body: ByteBuffer
    /// String headers (the broker's attributes/headers/properties).
    public var attributes: [String: String]
    /// Messages with the same key are delivered in order, where the broker promises it.
    public var orderingKey: String?
    /// Repeated publishes with the same id within the broker's window are delivered once.
    public var deduplicationID: String?
    /// How long to hold the message before its first delivery.
    public var delay: Duration?

    /// Creates a message.
    public init(body: ByteBuffer, attributes: [String: String] = [:], orderingKey: String? = nil, deduplicationID: String? = nil, delay: Duration? = nil) {
        self.body = body
        self.attributes = attributes
        self.orderingKey = orderingKey
        self.deduplicationID = deduplicationID
        self.delay = delay
    }
}

/// A message as a driver hands it out, with the receipt that acknowledges it.
public struct DeliveredMessage: Sendable, Hashable {
    /// The broker's id of the message (the same on every delivery).
    public var id: String
    /// The opaque handle of this delivery, for ack, nack and extend.
    public var receipt: String
    /// The payload.
    public var body: ByteBuffer
    /// The attributes it was published with.
    public var attributes: [String: String]
    /// Its ordering key, if it had one.
    public var orderingKey: String?
    /// Which delivery this is (1 for the first), where the broker counts; otherwise 1.
    public var deliveryAttempt: Int
    /// When it was published, where the broker says.
    public var publishedAt: Date?

    /// Creates a delivered message.
    public init(id: String, receipt: String, body: ByteBuffer, attributes: [String: String] = [:], orderingKey: String? = nil,
                deliveryAttempt: Int = 1, publishedAt: Date? = nil) {
        self.id = id
        self.receipt = receipt
        self.body = body
        self.attributes = attributes
        self.orderingKey = orderingKey
        self.deliveryAttempt = deliveryAttempt
        self.publishedAt = publishedAt
    }
}

/// How a subscription delivers.
public struct SubscriptionOptions: Sendable, Hashable {
    /// How long a received message stays leased before it is delivered again.
    public var ackDeadline: Duration
    /// Where poison messages go, and after how many deliveries.
    public var deadLetter: DeadLetterPolicy?
    /// Whether messages with the same ordering key are delivered in order, one at a time.
    public var ordered: Bool

    /// Creates options (ack deadline 30 s, no dead letters, unordered).
    public init(ackDeadline: Duration = .seconds(30), deadLetter: DeadLetterPolicy? = nil, ordered: Bool = false) {
        self.ackDeadline = ackDeadline
        self.deadLetter = deadLetter
        self.ordered = ordered
    }
}

/// Poison-message handling: after `maxDeliveries` deliveries without an ack, a message is
/// published to `topic` (with its attributes, plus `nimbus-dead-letter-*` attributes that say
/// where it came from) and removed from the subscription.
public struct DeadLetterPolicy: Sendable, Hashable {
    /// The dead-letter topic.
    public var topic: String
    /// Deliveries before a message is dead-lettered (at least 1).
    public var maxDeliveries: Int

    /// Creates a policy.
    public init(topic: String, maxDeliveries: Int = 5) {
        self.topic = topic
        self.maxDeliveries = maxDeliveries
    }
}

/// What happens to a message given back with `nack`.
public enum NackDisposition: Sendable, Hashable {
    /// Delivered again after `delay` (zero: as soon as possible).
    case requeue(delay: Duration)
    /// Moved to the subscription's dead-letter topic now.
    case deadLetter
}

/// The attributes a dead-lettered message gains, so a consumer of the dead-letter topic can tell where it came from.
public enum DeadLetterAttribute {
    /// The subscription that gave up on the message.
    public static let subscription = "nimbus-dead-letter-subscription"
    /// The original message id.
    public static let messageID = "nimbus-dead-letter-message-id"
    /// How many deliveries it had.
    public static let deliveries = "nimbus-dead-letter-deliveries"

    /// `attributes` with the three dead-letter attributes added: what a driver publishes to the dead-letter topic.
    public static func marking(_ attributes: [String: String], subscription: String, messageID: String, deliveries: Int) -> [String: String] {
        attributes.merging([Self.subscription: subscription, Self.messageID: messageID, Self.deliveries: String(deliveries)]) { _, marked in marked }
    }
}

/// Attributes as stores keep them: one JSON object of strings (SQLite rows, Redis stream fields).
public enum StoredAttributes {
    /// The JSON text of `attributes`; `nil` when there are none.
    public static func encode(_ attributes: [String: String]) throws -> String? {
        attributes.isEmpty ? nil : String(decoding: try JSONEncoder().encode(attributes), as: UTF8.self)
    }

    /// The attributes in `json`, read back.
    /// - Throws: `dataLoss` naming `what` (`outbox entry 7`) when the text is not a JSON object of strings.
    public static func decode(_ json: some DataProtocol, of what: @autoclosure () -> String) throws -> [String: String] {
        do { return try JSONDecoder().decode([String: String].self, from: Data(json)) }
        catch { throw NimbusError(.dataLoss, "\(what()) has attributes that are not a JSON object of strings: \(error)", underlying: error) }
    }
}

/// Portable names on brokers whose names cannot contain `.` (JetStream streams, SNS topics, SQS
/// queues): `_` becomes `__` and `.` becomes `_d`, which is reversible and collision-free.
public enum BrokerName {
    /// `a.b_c` → `a_db__c`.
    public static func escapingDots(_ name: String) -> String {
        name.replacingOccurrences(of: "_", with: "__").replacingOccurrences(of: ".", with: "_d")
    }

    /// The inverse of ``escapingDots(_:)``.
    public static func unescapingDots(_ name: String) -> String {
        var result = "", escaped = false
        for character in name {
            if escaped { result.append(character == "d" ? "." : character); escaped = false }
            else if character == "_" { escaped = true }
            else { result.append(character) }
        }
        return result
    }
}

/// Request/reply, where a broker has it (NATS core): a request goes to whoever serves a subject and
/// the first reply comes back; nothing is stored. A driver that has it conforms to this protocol
/// too; ``Messaging/request(_:on:timeout:)`` and ``Messaging/serve(_:queueGroup:maxConcurrent:_:)``
/// refuse with `unimplemented` on one that does not.
public protocol RequestReplyDriver: MessagingDriver {
    /// Sends `message` to whoever serves `subject` and returns the first reply.
    /// - Throws: `notFound` when nobody serves the subject; `deadlineExceeded` when no reply comes
    ///   within `timeout`; the responder's error when its handler failed.
    func request(_ message: Message, on subject: String, timeout: Duration) async throws -> Message

    /// Answers requests on `subject` with `handler`, at most `maxConcurrent` at a time. Responders
    /// in one `queueGroup` share the requests (each goes to one of them); without a group each gets every request.
    func serve(_ subject: String, queueGroup: String?, maxConcurrent: Int,
               _ handler: @escaping @Sendable (Message) async throws -> Message) async throws -> any MessagingResponder
}

/// A running responder; ``stop()`` ends it (requests in progress are answered first).
public protocol MessagingResponder: Sendable {
    /// The subject it serves.
    var subject: String { get }
    /// Stops taking requests and waits for those in progress.
    func stop() async
}
