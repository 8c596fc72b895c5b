import DequeModule
import Foundation
import Logging
import NIOCore
import NIOSSL
import NimbusCore
import NimbusHTTP
import NimbusMessaging
import Synchronization

/// Messaging on RabbitMQ over AMQP 0-9-1: a topic is a durable fanout exchange, a subscription a
/// durable queue bound to it (a **quorum** queue by default: replicated, with delivery counts and
/// a delivery limit).
///
/// - Publishing uses publisher confirms: `publish` returns once RabbitMQ has stored every message
///   (persistent, delivery mode 2), each with a message id (a ULID) and its attributes as headers.
/// - Receiving runs one consumer per subscription with a prefetch limit (backpressure from the
///   broker, no unbounded buffer). A received message is leased for the subscription's ack
///   deadline by this client: when the lease passes it is nacked back to the queue, and a crashed
///   client's deliveries go back when its connection closes. Acks, nacks and lease extensions
///   settle by delivery tag on the channel that delivered.
/// - Poison messages: the queue's `x-delivery-limit` is `maxDeliveries - 1` and its dead-letter
///   exchange the dead-letter topic, so RabbitMQ itself moves a message after N deliveries;
///   `deadLetter()` rejects without requeue. A dead-lettered message shows where it came from in
///   the `nimbus-dead-letter-*` attributes, read from RabbitMQ's `x-death` header.
/// - Listing topics and subscriptions, and the settings of a subscription made elsewhere, come
///   from the management HTTP API (`management=` on the URL); AMQP itself cannot list.
///
/// ```swift
/// let messaging = try await Messaging.open("amqp://guest:guest@127.0.0.1:5672/%2F?management=http://127.0.0.1:15672",
///                                          openers: .messaging.withRabbitMQ())
/// ```
public final class RabbitMQMessagingDriver: MessagingDriver, Sendable {
    /// The kind of queue a subscription is.
    public enum QueueType: String, Sendable {
        /// Replicated (Raft), with delivery counts and a delivery limit: poison messages are handled.
        case quorum
        /// Classic queues: no delivery count, so no `maxDeliveries` (dead letters by `deadLetter()` only).
        case classic
    }

    /// Settings of the RabbitMQ driver.
    public struct Configuration: Sendable {
        /// Where the broker is.
        public var connection: AMQPConnection.Configuration
        /// The management API (`http://127.0.0.1:15672`), for listing and for the settings of
        /// subscriptions created by other clients; `nil` turns those off.
        public var managementURL: String?
        /// Messages a subscription's consumer may hold unacknowledged (received or waiting to be).
        public var prefetch: Int
        /// The kind of queue new subscriptions get.
        public var queueType: QueueType
        /// The ack deadline assumed for a subscription whose settings cannot be read (no management API).
        public var defaultAckDeadline: Duration

        /// Creates settings.
        public init(connection: AMQPConnection.Configuration = .init(), managementURL: String? = nil, prefetch: Int = 100,
                    queueType: QueueType = .quorum, defaultAckDeadline: Duration = .seconds(30)) {
            self.connection = connection
            self.managementURL = managementURL
            self.prefetch = prefetch
            self.queueType = queueType
            self.defaultAckDeadline = defaultAckDeadline
        }
    }

    public var provider: String { "rabbitmq" }
    public var capabilities: MessagingCapabilities {
        configuration.queueType == .quorum ? [.durable, .deadLetters, .deliveryCount, .extendDeadline] : [.durable, .extendDeadline]
    }

    /// The settings it was made with.
    public let configuration: Configuration
    /// The connection underneath (opened on first use, again after it drops).
    public let client: LazyConnection<AMQPConnection>
    let management: NimbusHTTPClient?
    private let logger: Logger
    private let publisher = Mutex<AMQPChannel?>(nil)
    private let consumers = Mutex<[String: QueueConsumer]>([:])
    private let settings = Mutex<[String: SubscriptionSettings]>([:])

    /// Creates a driver; the connection opens on first use.
    public init(configuration: Configuration, logger: Logger = Logger(label: "nimbus.messaging.rabbitmq")) {
        self.configuration = configuration
        self.logger = logger
        let connection = configuration.connection
        self.client = LazyConnection(endpoint: "RabbitMQ at \(connection.endpoint)", connect: { try await AMQPConnection.connect(connection, logger: logger) },
                                     isUsable: { $0.isOpen }, close: { try await $0.close() })
        self.management = configuration.managementURL.map { url in
            NimbusHTTPClient(configuration: .init(service: "rabbitmq-management", baseURL: url,
                                                  auth: .basic(user: connection.user, password: connection.password), retry: .none, retryBudget: nil,
                                                  timeout: .seconds(10)))
        }
    }

    struct SubscriptionSettings: Sendable {
        var topic: String?
        var ackDeadline: Duration
        var deadLetter: String?
    }

    /// Header and argument names of Nimbus' own.
    enum Marker {
        static let topic = "nimbus-topic"
        static let ackDeadline = "nimbus-ack-deadline-ms"
    }

    // MARK: Channels

    /// Runs `body` on a channel of its own, closed afterwards (a channel error closes only that channel).
    func withChannel<T: Sendable>(_ body: (AMQPChannel) async throws -> T) async throws -> T {
        let channel = try await client.connection().openChannel()
        do {
            let result = try await body(channel)
            try? await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    func exists(exchange: String) async throws -> Bool {
        do {
            try await withChannel { try await $0.exchangeDeclare(exchange, passive: true) }
            return true
        } catch let error as NimbusError where error.code == .notFound {
            return false
        }
    }

    func exists(queue: String) async throws -> Bool {
        do {
            _ = try await withChannel { try await $0.queueDeclare(queue, passive: true) }
            return true
        } catch let error as NimbusError where error.code == .notFound {
            return false
        }
    }

    // MARK: Topics and subscriptions

    public func createTopic(_ topic: String) async throws -> Bool {
        if try await exists(exchange: topic) { return false }
        try await withChannel { try await $0.exchangeDeclare(topic, type: "fanout", durable: true, arguments: [Marker.topic: .bool(true)]) }
        return true
    }

    public func deleteTopic(_ topic: String) async throws {
        guard try await exists(exchange: topic) else { throw NimbusError(.notFound, "no topic '\(topic)' (exchange) on RabbitMQ") }
        try await withChannel { try await $0.exchangeDelete(topic) }
    }

    public func topics() async throws -> [String] {
        let exchanges = try await managementList("exchanges")
        return exchanges.compactMap { exchange -> String? in
            guard exchange["arguments"]?[Marker.topic] != nil else { return nil }
            return exchange["name"]?.stringValue
        }.sorted()
    }

    public func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions) async throws -> Bool {
        guard try await exists(exchange: topic) else { throw NimbusError(.notFound, "no topic '\(topic)' (exchange) on RabbitMQ") }
        if let deadLetter = options.deadLetter, try await !exists(exchange: deadLetter.topic) {
            throw NimbusError(.notFound, "no dead-letter topic '\(deadLetter.topic)' on RabbitMQ; create it first")
        }
        if try await exists(queue: subscription) {
            if let existing = try await readSettings(subscription), let owner = existing.topic, owner != topic {
                throw NimbusError(.alreadyExists, "subscription '\(subscription)' already exists on topic '\(owner)'")
            }
            return false
        }
        var arguments: AMQPTable = ["x-queue-type": .string(configuration.queueType.rawValue), Marker.topic: .string(topic),
                                    Marker.ackDeadline: .int64(options.ackDeadline.nimbusMilliseconds)]
        if let deadLetter = options.deadLetter {
            arguments["x-dead-letter-exchange"] = .string(deadLetter.topic)
            if configuration.queueType == .quorum { arguments["x-delivery-limit"] = .int64(Int64(deadLetter.maxDeliveries - 1)) }
        }
        try await withChannel { channel in
            try await channel.queueDeclare(subscription, durable: true, arguments: arguments)
            try await channel.queueBind(subscription, exchange: topic)
        }
        settings.withLock { $0[subscription] = SubscriptionSettings(topic: topic, ackDeadline: options.ackDeadline, deadLetter: options.deadLetter?.topic) }
        return true
    }

    public func deleteSubscription(_ subscription: String) async throws {
        guard try await exists(queue: subscription) else { throw NimbusError(.notFound, "no subscription '\(subscription)' (queue) on RabbitMQ") }
        if let consumer = consumers.withLock({ $0.removeValue(forKey: subscription) }) { await consumer.stop() }
        try await withChannel { _ = try await $0.queueDelete(subscription) }
        _ = settings.withLock { $0.removeValue(forKey: subscription) }
    }

    public func subscriptions(of topic: String) async throws -> [String] {
        guard try await exists(exchange: topic) else { throw NimbusError(.notFound, "no topic '\(topic)' (exchange) on RabbitMQ") }
        return try await managementList("queues").compactMap { queue -> String? in
            guard queue["arguments"]?[Marker.topic]?.stringValue == topic else { return nil }
            return queue["name"]?.stringValue
        }.sorted()
    }

    /// A subscription's settings: from this client's cache, else from the management API, else the defaults.
    func settings(of subscription: String) async throws -> SubscriptionSettings {
        if let known = settings.withLock({ $0[subscription] }) { return known }
        let read = try await readSettings(subscription) ?? SubscriptionSettings(topic: nil, ackDeadline: configuration.defaultAckDeadline, deadLetter: nil)
        settings.withLock { $0[subscription] = read }
        return read
    }

    /// The settings kept in a queue's arguments, through the management API; `nil` without it.
    func readSettings(_ subscription: String) async throws -> SubscriptionSettings? {
        guard management != nil else { return nil }
        let queue = try await managementGet("/api/queues/\(Self.pathSegment(configuration.connection.virtualHost))/\(Self.pathSegment(subscription))")
        guard let queue else { return nil }
        let arguments = queue["arguments"]
        let milliseconds = arguments?[Marker.ackDeadline]?.numberValue
        return SubscriptionSettings(topic: arguments?[Marker.topic]?.stringValue,
                                    ackDeadline: milliseconds.map { .milliseconds(Int64($0)) } ?? configuration.defaultAckDeadline,
                                    deadLetter: arguments?["x-dead-letter-exchange"]?.stringValue)
    }

    // MARK: The management API

    func managementList(_ kind: String) async throws -> [JSONValue] {
        guard management != nil else {
            throw NimbusError(.unimplemented, "listing needs RabbitMQ's management API: add management=http://HOST:15672 to the amqp:// URL")
        }
        let path = "/api/\(kind)/\(Self.pathSegment(configuration.connection.virtualHost))?columns=name,arguments"
        guard case .array(let items)? = try await managementGet(path) else {
            throw NimbusError(.internal, "the RabbitMQ management API answered \(path) with something that is not a list")
        }
        return items
    }

    /// GETs a management API path; `nil` for 404.
    func managementGet(_ path: String) async throws -> JSONValue? {
        guard let management else { return nil }
        let response = try await management.send(NimbusHTTPRequest(.GET, path, operation: "rabbitmq management \(path.split(separator: "?")[0])"))
        let body = try await response.collect(upTo: 64 << 20)
        if response.status.code == 404 { return nil }
        guard response.isSuccess else {
            let code: NimbusError.Code = response.status.code == 401 ? .unauthenticated : response.status.code >= 500 ? .unavailable : .permissionDenied
            throw NimbusError(code, "the RabbitMQ management API refused \(path): \(response.status.code) \(String(buffer: body).prefix(200))")
        }
        do { return try JSONValue.parse(Array(body.readableBytesView)) }
        catch { throw NimbusError(.internal, "the RabbitMQ management API answered \(path) with something that is not JSON", underlying: error) }
    }

    static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    // MARK: Publishing

    public func publish(_ messages: [Message], to topic: String) async throws -> [String] {
        let now = UInt64(Date().timeIntervalSince1970)
        let prepared = messages.map { message -> (String, AMQPProperties, ByteBuffer) in
            let id = IDGenerator.shared.ulid().description
            let headers = AMQPTable(message.attributes.sorted { $0.key < $1.key }.map { AMQPTable.Field($0.key, .string($0.value)) })
            return (id, AMQPProperties(headers: headers.isEmpty ? nil : headers, deliveryMode: AMQPProperties.persistent, messageID: id, timestamp: now),
                    message.body)
        }
        for attempt in 1...2 {
            let channel = try await publishingChannel()
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (_, properties, body) in prepared {
                        group.addTask { try await channel.publish(exchange: topic, routingKey: "", body: body, properties: properties) }
                    }
                    try await group.waitForAll()
                }
                return prepared.map(\.0)
            } catch let error as NimbusError where error.code == .notFound {
                // The shared channel was closed by another publish to a missing exchange: try once more on a new one.
                if error.message.contains("'\(topic)'") || attempt == 2 {
                    throw NimbusError(.notFound, "no topic '\(topic)' (exchange) on RabbitMQ", underlying: error)
                }
            }
        }
        throw NimbusError(.internal, "unreachable")
    }

    /// The channel publishes go through, in confirm mode; replaced when it closes.
    func publishingChannel() async throws -> AMQPChannel {
        if let channel = publisher.withLock({ $0 }), channel.isOpen { return channel }
        let channel = try await client.connection().openChannel()
        try await channel.confirmSelect()
        let winner = publisher.withLock { current -> AMQPChannel in
            if let current, current.isOpen { return current }
            current = channel
            return channel
        }
        if winner !== channel { try? await channel.close() }
        return winner
    }

    // MARK: Receiving

    public func receive(from subscription: String, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        let settings = try await settings(of: subscription)
        let consumer = try await consumer(for: subscription)
        let deadline = ContinuousClock.now + wait
        while true {
            let version = consumer.arrived.version
            let taken = try consumer.take(maxMessages, leaseFor: settings.ackDeadline)
            if !taken.isEmpty { return taken.map { Self.message($0, consumer: consumer) } }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return [] }
            _ = try await consumer.arrived.wait(since: version, timeout: remaining, clock: ContinuousClock())
        }
    }

    /// The subscription's consumer, started (again, after its channel closed) if needed.
    func consumer(for subscription: String) async throws -> QueueConsumer {
        if let consumer = consumers.withLock({ $0[subscription] }), consumer.isUsable { return consumer }
        let channel = try await client.connection().openChannel()
        let consumer = QueueConsumer(subscription: subscription, channel: channel)
        do {
            try await channel.qos(prefetchCount: configuration.prefetch)
            try await channel.consume(queue: subscription) { [weak consumer] event in consumer?.handle(event) }
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "no subscription '\(subscription)' (queue) on RabbitMQ", underlying: error)
        }
        let (winner, replaced) = consumers.withLock { consumers -> (QueueConsumer, QueueConsumer?) in
            if let current = consumers[subscription], current.isUsable { return (current, nil) }
            let replaced = consumers[subscription]
            consumers[subscription] = consumer
            return (consumer, replaced)
        }
        if winner !== consumer { await consumer.stop() }
        if let replaced { await replaced.stop() }
        return winner
    }

    func consumer(forReceipt receipt: String) throws -> (QueueConsumer, UInt64) {
        let parts = receipt.split(separator: ":")
        guard parts.count == 3, let tag = UInt64(parts[2]) else { throw NimbusError(.failedPrecondition, "'\(receipt.prefix(60))' is not a RabbitMQ receipt") }
        let subscription = String(parts[0]).removingPercentEncoding ?? ""
        guard let consumer = consumers.withLock({ $0[subscription] }), consumer.id == parts[1], consumer.channel.isOpen else {
            throw NimbusError(.failedPrecondition, "the channel that delivered \(receipt.prefix(80)) has closed; the message will be delivered again")
        }
        return (consumer, tag)
    }

    public func ack(_ receipts: [String], on subscription: String) async throws {
        for receipt in receipts {
            let (consumer, tag) = try consumer(forReceipt: receipt)
            try consumer.endLease(tag)
            try await consumer.channel.ack(deliveryTag: tag)
        }
    }

    public func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws {
        var deadLetter = false
        switch disposition {
        case .requeue(let delay):
            guard delay == .zero else { throw NimbusError(.unimplemented, "RabbitMQ cannot redeliver after a delay") }
        case .deadLetter:
            guard try await settings(of: subscription).deadLetter != nil else {
                throw NimbusError(.failedPrecondition, "subscription '\(subscription)' has no dead-letter policy; nack to requeue, or create it with one")
            }
            deadLetter = true
        }
        for receipt in receipts {
            let (consumer, tag) = try consumer(forReceipt: receipt)
            try consumer.endLease(tag)
            try await consumer.channel.nack(deliveryTag: tag, requeue: !deadLetter)
        }
    }

    public func extendDeadline(_ receipts: [String], on subscription: String, to deadline: Duration) async throws {
        for receipt in receipts {
            let (consumer, tag) = try consumer(forReceipt: receipt)
            try consumer.lease(tag, for: deadline)
        }
    }

    public func close() async throws {
        let all = consumers.withLock { consumers in defer { consumers.removeAll() }; return Array(consumers.values) }
        for consumer in all { await consumer.stop() }
        try await client.close()
    }

    // MARK: Messages

    /// Headers RabbitMQ adds (delivery counts, dead-letter history): not the publisher's attributes.
    static func isBrokerHeader(_ name: String) -> Bool {
        name == "x-delivery-count" || name == "x-death" || name.hasPrefix("x-first-death-") || name.hasPrefix("x-last-death-")
    }

    static func message(_ delivery: AMQPDelivery, consumer: QueueConsumer) -> DeliveredMessage {
        let headers = delivery.properties.headers ?? [:]
        var attributes: [String: String] = [:]
        for field in headers.fields where !isBrokerHeader(field.name) {
            if let text = field.value.text { attributes[field.name] = text }
        }
        let id = delivery.properties.messageID ?? contentID(delivery)
        // A dead-lettered message: RabbitMQ's x-death says which queue gave up on it, and how often.
        if case .array(let deaths)? = headers["x-death"], case .table(let last)? = deaths.first, let queue = last["queue"]?.text {
            attributes[DeadLetterAttribute.subscription] = queue
            attributes[DeadLetterAttribute.messageID] = id
            if let count = headers["x-delivery-count"]?.integer ?? last["count"]?.integer {
                attributes[DeadLetterAttribute.deliveries] = String(count + (headers["x-delivery-count"] != nil ? 1 : 0))
            }
        }
        let redeliveries = deliveriesBefore(delivery)
        return DeliveredMessage(id: id, receipt: consumer.receipt(delivery.deliveryTag), body: delivery.body, attributes: attributes,
                                deliveryAttempt: redeliveries + 1,
                                publishedAt: delivery.properties.timestamp.map { Date(timeIntervalSince1970: TimeInterval($0)) })
    }

    /// Earlier deliveries from this queue: quorum queues count them (`x-delivery-count`); otherwise only "redelivered" is known.
    static func deliveriesBefore(_ delivery: AMQPDelivery) -> Int {
        if let count = delivery.properties.headers?["x-delivery-count"]?.integer, !(delivery.properties.headers?["x-death"] != nil && !delivery.redelivered) {
            return Int(count)
        }
        return delivery.redelivered ? 1 : 0
    }

    /// A stable id for a message published without a message id (by another client): a digest of what it carries.
    static func contentID(_ delivery: AMQPDelivery) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) { for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 } }
        mix(delivery.exchange.utf8); mix([0]); mix(delivery.routingKey.utf8); mix([0])
        mix(String(delivery.properties.timestamp ?? 0).utf8); mix([0]); mix(delivery.body.readableBytesView)
        return "amqp-" + String(hash, radix: 16)
    }
}

/// One subscription's consumer: deliveries wait in `buffer` (at most the prefetch) until received;
/// received ones are leased, and nacked back when their lease passes.
final class QueueConsumer: Sendable {
    let id = String(IDGenerator.shared.ulid().description.suffix(10)).lowercased()
    let subscription: String
    let channel: AMQPChannel
    let arrived = AsyncSignal()
    private struct State {
        var buffer: Deque<AMQPDelivery> = []
        var leases: [UInt64: Task<Void, Never>] = [:]
        var ended: NimbusError?
    }
    private let state = Mutex(State())

    init(subscription: String, channel: AMQPChannel) {
        self.subscription = subscription
        self.channel = channel
    }

    var isUsable: Bool { channel.isOpen && state.withLock { $0.ended == nil } }

    func receipt(_ tag: UInt64) -> String {
        "\(subscription.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? subscription):\(id):\(tag)"
    }

    func handle(_ event: AMQPConsumerEvent) {
        state.withLock { state in
            switch event {
            case .delivery(let delivery): state.buffer.append(delivery)
            case .cancelled(let error): state.ended = error
            }
        }
        arrived.signal()
    }

    /// Takes up to `count` waiting deliveries and leases them; throws once the consumer ended with nothing left.
    func take(_ count: Int, leaseFor deadline: Duration) throws -> [AMQPDelivery] {
        let (taken, ended) = state.withLock { state -> ([AMQPDelivery], NimbusError?) in
            var taken: [AMQPDelivery] = []
            while taken.count < count, let next = state.buffer.popFirst() { taken.append(next) }
            return (taken, state.ended)
        }
        if taken.isEmpty, let ended { throw ended }
        for delivery in taken { startLease(delivery.deliveryTag, deadline) }
        return taken
    }

    private func startLease(_ tag: UInt64, _ deadline: Duration) {
        let task = Task { [weak self] in
            do { try await Task.sleep(for: deadline) } catch { return }
            guard let self, self.state.withLock({ $0.leases.removeValue(forKey: tag) }) != nil else { return }
            try? await self.channel.nack(deliveryTag: tag, requeue: true)
        }
        state.withLock { $0.leases.updateValue(task, forKey: tag) }?.cancel()
    }

    /// Moves a lease's end to `deadline` from now.
    func lease(_ tag: UInt64, for deadline: Duration) throws {
        guard state.withLock({ $0.leases[tag] != nil }) else { throw expired(tag) }
        startLease(tag, deadline)
    }

    /// Ends a lease before its ack or nack.
    func endLease(_ tag: UInt64) throws {
        guard let task = state.withLock({ $0.leases.removeValue(forKey: tag) }) else { throw expired(tag) }
        task.cancel()
    }

    private func expired(_ tag: UInt64) -> NimbusError {
        NimbusError(.failedPrecondition, "delivery \(tag) of '\(subscription)' is no longer leased (its deadline passed, or it was settled); it is or will be delivered again")
    }

    /// Stops the consumer: its channel closes, and RabbitMQ requeues what it held.
    func stop() async {
        let leases = state.withLock { state in
            defer { state.leases.removeAll(); state.buffer.removeAll(); state.ended = state.ended ?? NimbusError(.unavailable, "the consumer was stopped") }
            return Array(state.leases.values)
        }
        for lease in leases { lease.cancel() }
        try? await channel.close()
        arrived.signal()
    }
}

extension URLOpenerRegistry where Resource == any MessagingDriver {
    /// Adds `amqp://` and `amqps://` (AMQP over TLS, verified):
    /// `amqp://user:pass@host:5672/vhost?management=http://host:15672&prefetch=100&queue_type=quorum`.
    /// The path is the virtual host, percent-encoded (`/%2F` or no path: `/`). Options: `management`
    /// (the management API, for listing), `prefetch`, `queue_type` (`quorum` or `classic`),
    /// `heartbeat` (e.g. `30s`), `connect_timeout` (10s; the handshake included), `tls_ca` (a PEM file of trusted CAs, with `amqps://`), `password=env:VARIABLE` (else the URL's password, else the
    /// environment's `RABBITMQ_PASSWORD`, else `guest`).
    public func withRabbitMQ() -> Self {
        var copy = self
        copy.register("amqp", "amqps") { url in
            try url.options.validate(known: ["management", "prefetch", "queue_type", "heartbeat", "connect_timeout", "password", "tls_ca"], for: "\(url.scheme)://")
            let environment = ProcessInfo.processInfo.environment
            var connection = AMQPConnection.Configuration(host: url.host ?? "127.0.0.1", port: url.port ?? (url.scheme == "amqps" ? 5671 : 5672))
            if let user = url.user { connection.user = user }
            if let password = try url.secret("password", environment: environment, defaults: ["RABBITMQ_PASSWORD"]) ?? url.password {
                connection.password = password
            }
            let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
            connection.virtualHost = path.isEmpty ? "/" : (path.removingPercentEncoding ?? path)
            if url.scheme == "amqps" {
                var tls = TLSConfiguration.makeClientConfiguration()
                if let ca = url.options.string("tls_ca") { tls.trustRoots = .file(ca) }
                connection.tls = tls
            } else if url.options.string("tls_ca") != nil {
                throw NimbusError(.invalidArgument, "tls_ca needs amqps://")
            }
            if let heartbeat = try url.options.duration("heartbeat") { connection.heartbeat = heartbeat }
            if let timeout = try url.options.duration("connect_timeout") { connection.connectTimeout = timeout }
            var configuration = RabbitMQMessagingDriver.Configuration(connection: connection, managementURL: url.options.string("management"))
            if let prefetch = try url.options.int("prefetch") {
                guard (1...65_535).contains(prefetch) else { throw NimbusError(.invalidArgument, "prefetch must be 1 to 65535, got \(prefetch)") }
                configuration.prefetch = prefetch
            }
            if let kind = url.options.string("queue_type") {
                guard let queueType = RabbitMQMessagingDriver.QueueType(rawValue: kind) else {
                    throw NimbusError(.invalidArgument, "queue_type must be quorum or classic, got '\(kind)'")
                }
                configuration.queueType = queueType
            }
            return RabbitMQMessagingDriver(configuration: configuration)
        }
        return copy
    }
}
