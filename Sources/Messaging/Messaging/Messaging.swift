import Foundation
import Logging
import NIOCore
import NimbusCore
import Synchronization

/// Topics and subscriptions over any ``MessagingDriver`` (the embedded SQLite store, NATS,
/// RabbitMQ, SQS, Kafka, Redis Streams, Pub/Sub...).
///
/// `Messaging` owns what must be the same for every broker: name and size validation, refusing
/// options the broker cannot honour, retries of idempotent calls, flow control, settle-once
/// tracking, metrics and one error taxonomy. Delivery is at least once: a message is delivered
/// again until it is acknowledged, so consumers must tolerate duplicates.
///
/// ```swift
/// let messaging = try await Messaging.open("sqlite:///var/lib/orders/queue.db", openers: .messaging.withSQLite())
/// try await messaging.createTopic("orders")
/// try await messaging.createSubscription("billing", topic: "orders",
///                                        options: .init(deadLetter: .init(topic: "orders-dead", maxDeliveries: 5)))
/// try await messaging.publish(Message(json: order, orderingKey: order.customerID), to: "orders")
///
/// for try await message in messaging.subscription("billing").messages() {
///     try await bill(try message.decode(Order.self))
///     try await message.ack()
/// }
/// ```
public final class Messaging: PortableClient {
    /// Settings shared by every broker.
    public struct Configuration: Sendable {
        /// The largest body accepted (256 KiB by default, SQS's limit; raise it for brokers that take more).
        public var maximumBodySize: Int
        /// The most attributes per message.
        public var maximumAttributes: Int
        /// The most messages in one publish call.
        public var maximumBatchSize: Int
        /// The longest topic or subscription name.
        public var maximumNameLength: Int
        /// Retries of idempotent calls (admin calls, receive, ack, extend); a publish is retried
        /// only when every message in it has a deduplication id and the broker deduplicates.
        public var retry: RetryPolicy

        /// Creates settings.
        public init(maximumBodySize: Int = 256 * 1024, maximumAttributes: Int = 64, maximumBatchSize: Int = 1000, maximumNameLength: Int = 200,
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(500))) {
            self.maximumBodySize = maximumBodySize
            self.maximumAttributes = maximumAttributes
            self.maximumBatchSize = maximumBatchSize
            self.maximumNameLength = maximumNameLength
            self.retry = retry
        }
    }

    let driver: any MessagingDriver
    /// The settings this client was made with.
    public let configuration: Configuration
    let logger: Logger
    private let closed = Atomic<Bool>(false)
    private let calls: PortableCalls

    /// Wraps a driver.
    public init(driver: some MessagingDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.messaging")) {
        self.driver = driver
        self.configuration = configuration
        self.logger = logger
        self.calls = PortableCalls(domain: "messaging", provider: driver.provider, operations: Self.operations, logger: logger)
    }

    static let operations = ["createTopic", "deleteTopic", "topics", "createSubscription", "deleteSubscription", "subscriptions",
                             "publish", "receive", "ack", "nack", "extendDeadline"]

    /// Opens the driver that `url`'s scheme names in `openers`.
    public static func open(_ url: String, openers: URLOpenerRegistry<any MessagingDriver>, configuration: Configuration = .init(),
                            logger: Logger = Logger(label: "nimbus.messaging")) async throws -> Messaging {
        Messaging(driver: try await openers.open(url), configuration: configuration, logger: logger)
    }

    /// The broker's name (`sqlite`, `nats`, `rabbitmq`...).
    public var provider: String { driver.provider }

    /// What the broker does beyond at-least-once delivery.
    public var capabilities: MessagingCapabilities { driver.capabilities }

    /// The driver itself, if it is a `T`: the escape hatch to broker-specific calls.
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    // MARK: Topics and subscriptions

    /// Creates `topic`; returns `false` when it already existed.
    @discardableResult
    public func createTopic(_ topic: String) async throws -> Bool {
        try validName(topic, "topic")
        return try await run("createTopic", idempotent: true) { try await self.driver.createTopic(topic) }
    }

    /// Deletes `topic`.
    public func deleteTopic(_ topic: String) async throws {
        try validName(topic, "topic")
        try await run("deleteTopic", idempotent: false) { try await self.driver.deleteTopic(topic) }
    }

    /// The topics, sorted.
    public func topics() async throws -> [String] {
        try await run("topics", idempotent: true) { try await self.driver.topics() }
    }

    /// Creates a subscription of `topic`; returns `false` when it already existed.
    /// - Throws: `unimplemented` when `options` need a capability the broker lacks (dead letters, ordering).
    @discardableResult
    public func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions = .init()) async throws -> Bool {
        try validName(subscription, "subscription")
        try validName(topic, "topic")
        guard options.ackDeadline >= .seconds(1), options.ackDeadline <= .seconds(43_200) else {
            throw NimbusError(.invalidArgument, "an ack deadline must be between 1 s and 12 h, got \(options.ackDeadline)")
        }
        if let deadLetter = options.deadLetter {
            try require(.deadLetters, "a dead-letter policy")
            try validName(deadLetter.topic, "dead-letter topic")
            guard (1...1000).contains(deadLetter.maxDeliveries) else {
                throw NimbusError(.invalidArgument, "maxDeliveries must be between 1 and 1000, got \(deadLetter.maxDeliveries)")
            }
            guard deadLetter.topic != topic else {
                throw NimbusError(.invalidArgument, "a subscription's dead-letter topic must not be the topic it reads ('\(topic)')")
            }
        }
        if options.ordered { try require(.orderingKeys, "ordered delivery") }
        return try await run("createSubscription", idempotent: true) {
            try await self.driver.createSubscription(subscription, topic: topic, options: options)
        }
    }

    /// Deletes `subscription` and the messages waiting in it.
    public func deleteSubscription(_ subscription: String) async throws {
        try validName(subscription, "subscription")
        try await run("deleteSubscription", idempotent: false) { try await self.driver.deleteSubscription(subscription) }
    }

    /// The subscriptions of `topic`, sorted.
    public func subscriptions(of topic: String) async throws -> [String] {
        try validName(topic, "topic")
        return try await run("subscriptions", idempotent: true) { try await self.driver.subscriptions(of: topic) }
    }

    // MARK: Publishing

    /// Publishes one message; returns its id.
    @discardableResult
    public func publish(_ message: Message, to topic: String) async throws -> String {
        let ids = try await publish([message], to: topic)
        guard let id = ids.first else { throw NimbusError(.internal, "messaging driver \(provider) returned no id for a published message") }
        return id
    }

    /// Publishes messages in one call where the broker allows; returns their ids, in order.
    @discardableResult
    public func publish(_ messages: [Message], to topic: String) async throws -> [String] {
        guard !messages.isEmpty else { return [] }
        try validName(topic, "topic")
        guard messages.count <= configuration.maximumBatchSize else {
            throw NimbusError(.invalidArgument, "a batch of \(messages.count) messages is over the \(configuration.maximumBatchSize)-message limit; split it")
        }
        for message in messages { try validate(message) }
        let idempotent = capabilities.contains(.deduplication) && messages.allSatisfy { $0.deduplicationID != nil }
        let ids = try await run("publish", idempotent: idempotent) { try await self.driver.publish(messages, to: topic) }
        guard ids.count == messages.count else {
            throw NimbusError(.internal, "messaging driver \(provider) returned \(ids.count) ids for \(messages.count) published messages")
        }
        return ids
    }

    // MARK: Request/reply

    /// Sends `message` to whoever serves `subject` (a subject, not a topic: nothing is stored) and
    /// returns the first reply.
    ///
    /// ```swift
    /// let quote = try await messaging.request(Message("{\"sku\":\"A-1\"}"), on: "pricing.quote", timeout: .seconds(2))
    /// ```
    /// - Throws: `unimplemented` when the broker has no request/reply; `notFound` when nobody serves
    ///   `subject`; `deadlineExceeded` after `timeout`; the responder's error when its handler failed.
    public func request(_ message: Message, on subject: String, timeout: Duration = .seconds(5)) async throws -> Message {
        try validName(subject, "subject")
        try validate(message)
        let driver = try requestReplyDriver()
        return try await run("request", idempotent: false) { try await driver.request(message, on: subject, timeout: timeout) }
    }

    /// Answers requests on `subject` until the returned responder is stopped. A handler's error is
    /// sent back and thrown by the requester (its code and message, not its details).
    ///
    /// ```swift
    /// let responder = try await messaging.serve("pricing.quote", queueGroup: "pricing") { request in
    ///     Message(try await price(request.body))
    /// }
    /// ```
    /// - Throws: `unimplemented` when the broker has no request/reply.
    public func serve(_ subject: String, queueGroup: String? = nil, maxConcurrent: Int = 64,
                      _ handler: @escaping @Sendable (Message) async throws -> Message) async throws -> any MessagingResponder {
        try validName(subject, "subject")
        if let queueGroup { try validName(queueGroup, "queue group") }
        let driver = try requestReplyDriver()
        return try await driver.serve(subject, queueGroup: queueGroup, maxConcurrent: max(1, maxConcurrent), handler)
    }

    /// The driver as a request/reply driver. - Throws: `unimplemented` when the broker has none.
    private func requestReplyDriver() throws -> any RequestReplyDriver {
        guard let driver = driver as? any RequestReplyDriver else {
            throw NimbusError(.unimplemented, "the \(provider) messaging driver has no request/reply (NATS has it: nats://)")
        }
        return driver
    }

    // MARK: Receiving

    /// A subscription to receive from, with its flow control.
    public func subscription(_ name: String, flowControl: FlowControl = .init()) -> Subscription {
        Subscription(name: name, messaging: self, flowControl: flowControl)
    }

    // MARK: Lifecycle

    /// Closes the driver. Later calls throw `failedPrecondition`.
    public func close() async throws {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        try await driver.close()
    }

    // MARK: Shared plumbing

    func validName(_ name: String, _ what: String) throws {
        guard !name.isEmpty, name.utf8.count <= configuration.maximumNameLength else {
            throw NimbusError(.invalidArgument, "a \(what) name must be 1 to \(configuration.maximumNameLength) bytes, got \(name.utf8.count)")
        }
        guard name.utf8.allSatisfy({ Self.nameBytes.contains($0) }), let first = name.utf8.first, first != UInt8(ascii: "."), first != UInt8(ascii: "-") else {
            throw NimbusError(.invalidArgument, "\(what) name '\(name)' may use only letters, digits, '.', '_' and '-', and not start with '.' or '-' (names must mean the same on every broker)")
        }
    }

    private static let nameBytes: Set<UInt8> = Set(Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".utf8))

    private func validate(_ message: Message) throws {
        guard message.body.readableBytes <= configuration.maximumBodySize else {
            throw NimbusError(.invalidArgument, "a message body of \(message.body.readableBytes) bytes is over the \(configuration.maximumBodySize)-byte limit; store large payloads in a blob and send a reference")
        }
        guard message.attributes.count <= configuration.maximumAttributes else {
            throw NimbusError(.invalidArgument, "\(message.attributes.count) attributes are over the limit of \(configuration.maximumAttributes)")
        }
        for (name, value) in message.attributes {
            guard !name.isEmpty, name.utf8.count <= 256, value.utf8.count <= 1024 else {
                throw NimbusError(.invalidArgument, "attribute '\(name.prefix(40))' must have a 1-256 byte name and a value of at most 1024 bytes")
            }
        }
        if let key = message.orderingKey {
            try require(.orderingKeys, "an ordering key")
            guard !key.isEmpty, key.utf8.count <= 1024 else { throw NimbusError(.invalidArgument, "an ordering key must be 1 to 1024 bytes") }
        }
        if let id = message.deduplicationID {
            try require(.deduplication, "a deduplication id")
            guard !id.isEmpty, id.utf8.count <= 128 else { throw NimbusError(.invalidArgument, "a deduplication id must be 1 to 128 bytes") }
        }
        if let delay = message.delay {
            try require(.delayedDelivery, "a delivery delay")
            guard delay >= .zero, delay <= .seconds(86_400 * 7) else {
                throw NimbusError(.invalidArgument, "a delivery delay must be between 0 and 7 days, got \(delay)")
            }
        }
    }

    func require(_ capability: MessagingCapabilities, _ what: String) throws {
        guard capabilities.contains(capability) else {
            throw NimbusError(.unimplemented, "\(what) needs a broker that supports it; \(provider) does not (see its capabilities)")
        }
    }

    func run<T: Sendable>(_ operation: String, idempotent: Bool, _ body: @Sendable () async throws -> T) async throws -> T {
        try await calls.run(operation, retry: idempotent ? configuration.retry : .none, closed: closed.load(ordering: .relaxed), body)
    }
}

extension URLOpenerRegistry where Resource == any MessagingDriver {
    /// An empty registry for the messaging domain; adapters add their schemes (`.withSQLite()`, `.withNATS()`...).
    public static var messaging: URLOpenerRegistry<any MessagingDriver> { URLOpenerRegistry(domain: "messaging") }
}
