import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NimbusCore
import NimbusGCP
import NimbusHTTP
import NimbusMessaging
import Synchronization

/// Messaging on Google Cloud Pub/Sub through its REST API (`pubsub.googleapis.com/v1`, or the
/// emulator): a topic is a Pub/Sub topic, a subscription a pull subscription of it.
///
/// - Publishing sends up to 1,000 messages per `:publish` call (base64 data, attributes) and
///   returns Pub/Sub's message ids.
/// - Receiving pulls (`:pull` with `returnImmediately`, again with a growing pause until the wait
///   is over: REST has no server-side wait a client can bound, and an abandoned long pull would
///   leave its messages leased until their deadline). Acks are `:acknowledge`; nacks and lease
///   extensions `:modifyAckDeadline` (a nack's delay is the new deadline, up to 600 s).
/// - Pub/Sub's own limits are below what the portable API allows — an ack deadline of at least
///   10 s, at least 5 delivery attempts before dead-lettering — so the subscription keeps the asked
///   values as labels (`nimbus-ack-deadline-ms`, `nimbus-max-deliveries`): a shorter deadline is set
///   on each pulled message with `:modifyAckDeadline`, and a message past its deliveries is
///   published to the dead-letter topic by the driver (with the `nimbus-dead-letter-*` attributes)
///   and acked. The subscription also gets Pub/Sub's own dead-letter policy, which counts the
///   delivery attempts and is the backstop if no Nimbus client is pulling.
///
/// ```swift
/// let messaging = try await Messaging.open("gcppubsub://my-project", openers: .messaging.withPubSub())
/// let local = try await Messaging.open("gcppubsub://demo?endpoint=http://127.0.0.1:8085", openers: .messaging.withPubSub())  // the emulator
/// ```
public final class PubSubMessagingDriver: MessagingDriver, Sendable {
    /// Settings of the Pub/Sub driver.
    public struct Configuration: Sendable {
        /// The Google Cloud project.
        public var project: String
        /// The API root (`https://pubsub.googleapis.com`; the emulator's `http://127.0.0.1:8085`).
        public var endpoint: String
        /// Authentication and retries.
        public var gcp: GCPClient.Configuration

        public init(project: String, endpoint: String = "https://pubsub.googleapis.com", gcp: GCPClient.Configuration = .init(scopes: ["https://www.googleapis.com/auth/pubsub"])) {
            self.project = project
            self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            self.gcp = gcp
        }
    }

    /// What a subscription asks for, read from Pub/Sub once per client.
    struct Settings: Sendable {
        var topic: String
        var ackDeadline: Duration
        var deadLetterTopic: String?
        var maxDeliveries: Int?
    }

    public var provider: String { "gcp-pubsub" }
    public var capabilities: MessagingCapabilities { [.durable, .extendDeadline, .delayedRedelivery, .deadLetters] }

    public let configuration: Configuration
    let client: GCPClient
    private let settingsCache = Mutex<[String: Settings]>([:])
    /// Deliveries not yet settled (for `deadLetter()`, which republishes the message).
    private let outstanding = UnsettledDeliveries<DeliveredMessage>(limit: 100_000)

    /// Creates a driver. - Throws: `invalidArgument` for unreadable credentials.
    public init(configuration: Configuration, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) throws {
        self.configuration = configuration
        self.client = try GCPClient(configuration: configuration.gcp, httpClient: httpClient, logger: logger)
    }

    /// Whole seconds, rounded up (Pub/Sub's deadlines are in seconds).
    static func seconds(_ duration: Duration) -> Int { Int((max(duration, .zero).nimbusMilliseconds + 999) / 1000) }

    static let labelAckDeadline = "nimbus-ack-deadline-ms"
    static let labelMaxDeliveries = "nimbus-max-deliveries"

    private var root: String { "\(configuration.endpoint)/v1/projects/\(configuration.project)" }
    private func topicName(_ topic: String) -> String { "projects/\(configuration.project)/topics/\(topic)" }
    private func subscriptionName(_ subscription: String) -> String { "projects/\(configuration.project)/subscriptions/\(subscription)" }
    private func topicURL(_ topic: String) -> String { "\(root)/topics/\(topic)" }
    private func subscriptionURL(_ subscription: String) -> String { "\(root)/subscriptions/\(subscription)" }

    // MARK: Topics

    public func createTopic(_ topic: String) async throws -> Bool {
        do {
            _ = try await client.json(.PUT, topicURL(topic), body: [:], operation: "Pub/Sub topics.create \(topic)")
            return true
        } catch let error as NimbusError where error.code == .alreadyExists {
            return false
        }
    }

    public func deleteTopic(_ topic: String) async throws {
        _ = try await client.json(.DELETE, topicURL(topic), operation: "Pub/Sub topics.delete \(topic)")
    }

    public func topics() async throws -> [String] {
        var names: [String] = []
        for try await item in client.pages("\(root)/topics", itemsField: "topics") {
            if let name = item["name"]?.stringValue { names.append(String(name.split(separator: "/").last ?? "")) }
        }
        return names.sorted()
    }

    // MARK: Subscriptions

    public func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions) async throws -> Bool {
        guard !options.ordered else {
            throw NimbusError(.unimplemented, "ordered Pub/Sub subscriptions are not offered by this driver yet (REST pull cannot hold one key to one message at a time)")
        }
        let deadlineMs = max(1, options.ackDeadline.nimbusMilliseconds)
        var labels: [String: JSONValue] = [Self.labelAckDeadline: .string(String(deadlineMs))]
        var body: [String: JSONValue] = [
            "topic": .string(topicName(topic)),
            "ackDeadlineSeconds": .number(Double(min(600, max(10, (deadlineMs + 999) / 1000)))),
        ]
        if let deadLetter = options.deadLetter {
            labels[Self.labelMaxDeliveries] = .string(String(deadLetter.maxDeliveries))
            body["deadLetterPolicy"] = ["deadLetterTopic": .string(topicName(deadLetter.topic)),
                                        "maxDeliveryAttempts": .number(Double(min(100, max(5, deadLetter.maxDeliveries + 1))))]
        }
        body["labels"] = .object(labels)
        do {
            _ = try await client.json(.PUT, subscriptionURL(subscription), body: .object(body), operation: "Pub/Sub subscriptions.create \(subscription)")
            _ = settingsCache.withLock { $0.removeValue(forKey: subscription) }
            return true
        } catch let error as NimbusError where error.code == .alreadyExists {
            let existing = try await settings(subscription, refresh: true)
            guard existing.topic == topic else {
                throw NimbusError(.alreadyExists, "the Pub/Sub subscription '\(subscription)' already belongs to topic '\(existing.topic)', not '\(topic)'")
            }
            return false
        }
    }

    public func deleteSubscription(_ subscription: String) async throws {
        _ = try await client.json(.DELETE, subscriptionURL(subscription), operation: "Pub/Sub subscriptions.delete \(subscription)")
        _ = settingsCache.withLock { $0.removeValue(forKey: subscription) }
    }

    public func subscriptions(of topic: String) async throws -> [String] {
        var names: [String] = []
        for try await item in client.pages("\(topicURL(topic))/subscriptions", itemsField: "subscriptions") {
            if let name = item.stringValue { names.append(String(name.split(separator: "/").last ?? "")) }
        }
        return names.sorted()
    }

    func settings(_ subscription: String, refresh: Bool = false) async throws -> Settings {
        if !refresh, let cached = settingsCache.withLock({ $0[subscription] }) { return cached }
        let found = try await client.json(.GET, subscriptionURL(subscription), operation: "Pub/Sub subscriptions.get \(subscription)")
        let labels = found["labels"]
        let native = Int(found["ackDeadlineSeconds"]?.numberValue ?? 10)
        let deadline = labels?[Self.labelAckDeadline]?.stringValue.flatMap { Int($0) }.map { Duration.milliseconds($0) } ?? .seconds(native)
        let dead = found["deadLetterPolicy"]
        let settings = Settings(topic: String(found["topic"]?.stringValue?.split(separator: "/").last ?? ""), ackDeadline: deadline,
                                deadLetterTopic: dead?["deadLetterTopic"]?.stringValue.map { String($0.split(separator: "/").last ?? "") },
                                maxDeliveries: labels?[Self.labelMaxDeliveries]?.stringValue.flatMap { Int($0) }
                                    ?? dead?["maxDeliveryAttempts"]?.numberValue.map { Int($0) })
        settingsCache.withLock { $0[subscription] = settings }
        return settings
    }

    // MARK: Publishing

    public func publish(_ messages: [Message], to topic: String) async throws -> [String] {
        var ids: [String] = []
        for start in stride(from: 0, to: messages.count, by: 1000) {
            let chunk = messages[start..<min(start + 1000, messages.count)]
            ids += try await publishChunk(Array(chunk), to: topic)
        }
        return ids
    }

    private func publishChunk(_ messages: [Message], to topic: String) async throws -> [String] {
        let body: JSONValue = ["messages": .array(messages.map { message in
            var entry: [String: JSONValue] = ["data": .string(Data(message.body.readableBytesView).base64EncodedString())]
            if !message.attributes.isEmpty { entry["attributes"] = .object(message.attributes.mapValues { .string($0) }) }
            if let key = message.orderingKey { entry["orderingKey"] = .string(key) }
            return .object(entry)
        })]
        let reply = try await client.json(.POST, "\(topicURL(topic)):publish", body: body, operation: "Pub/Sub topics.publish \(topic)")
        let ids = reply["messageIds"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard ids.count == messages.count else {
            throw NimbusError(.internal, "Pub/Sub answered \(ids.count) message ids for \(messages.count) messages published to \(topic)")
        }
        return ids
    }

    // MARK: Receiving

    public func receive(from subscription: String, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        let settings = try await settings(subscription)
        let deadline = ContinuousClock.now + wait
        var pause = Duration.milliseconds(25)
        while true {
            let delivered = try await pull(subscription, settings: settings, maxMessages: maxMessages)
            if !delivered.isEmpty { return delivered }
            let remaining = deadline - .now
            if remaining <= .zero { return [] }
            try await Task.sleep(for: min(pause, remaining))
            pause = min(pause * 2, .milliseconds(400))
        }
    }

    private func pull(_ subscription: String, settings: Settings, maxMessages: Int) async throws -> [DeliveredMessage] {
        let reply = try await client.json(.POST, "\(subscriptionURL(subscription)):pull",
                                          body: ["maxMessages": .number(Double(min(maxMessages, 1000))), "returnImmediately": true],
                                          operation: "Pub/Sub subscriptions.pull \(subscription)")
        var delivered: [DeliveredMessage] = []
        var poison: [DeliveredMessage] = []
        for received in reply["receivedMessages"]?.arrayValue ?? [] {
            let message = try Self.message(received, subscription: subscription)
            if let limit = settings.maxDeliveries, settings.deadLetterTopic != nil, message.deliveryAttempt > limit { poison.append(message) }
            else { delivered.append(message) }
        }
        if !poison.isEmpty { try await deadLetter(poison, from: subscription, settings: settings, deliveries: { $0.deliveryAttempt - 1 }) }
        if !delivered.isEmpty, settings.ackDeadline < .seconds(10) {
            // Pub/Sub's subscription deadline cannot go below 10 s; each delivery can.
            try await modify(delivered.map(\.receipt), on: subscription, seconds: max(1, Self.seconds(settings.ackDeadline)))
        }
        for message in delivered { outstanding.remember(message, for: message.receipt) }
        return delivered
    }

    static func message(_ received: JSONValue, subscription: String) throws -> DeliveredMessage {
        guard let ackID = received["ackId"]?.stringValue, let message = received["message"], let id = message["messageId"]?.stringValue else {
            throw NimbusError(.internal, "Pub/Sub pulled a message without ackId, message or messageId from \(subscription)")
        }
        let encoded = message["data"]?.stringValue ?? ""
        guard let data = Data(base64Encoded: encoded) else {
            throw NimbusError(.dataLoss, "Pub/Sub message \(id) on \(subscription) has data that is not base64")
        }
        var attributes: [String: String] = [:]
        for (key, value) in message["attributes"]?.objectValue ?? [:] { attributes[key] = value.stringValue ?? "" }
        let published = message["publishTime"]?.stringValue.flatMap { Date(iso8601: $0) }
        return DeliveredMessage(id: id, receipt: ackID, body: ByteBuffer(bytes: data), attributes: attributes,
                                orderingKey: message["orderingKey"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 },
                                deliveryAttempt: Int(received["deliveryAttempt"]?.numberValue ?? 1), publishedAt: published)
    }

    private func modify(_ receipts: [String], on subscription: String, seconds: Int) async throws {
        guard !receipts.isEmpty else { return }
        _ = try await client.json(.POST, "\(subscriptionURL(subscription)):modifyAckDeadline",
                                  body: ["ackIds": .array(receipts.map { .string($0) }), "ackDeadlineSeconds": .number(Double(seconds))],
                                  operation: "Pub/Sub subscriptions.modifyAckDeadline \(subscription)")
    }

    public func ack(_ receipts: [String], on subscription: String) async throws {
        _ = try await client.json(.POST, "\(subscriptionURL(subscription)):acknowledge", body: ["ackIds": .array(receipts.map { .string($0) })],
                                  operation: "Pub/Sub subscriptions.acknowledge \(subscription)")
        outstanding.forget(receipts)
    }

    public func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws {
        switch disposition {
        case .requeue(let delay):
            try await modify(receipts, on: subscription, seconds: min(600, Self.seconds(delay)))
            outstanding.forget(receipts)
        case .deadLetter:
            let settings = try await settings(subscription)
            let messages = try receipts.map { receipt in
                guard let message = outstanding[receipt] else {
                    throw NimbusError(.failedPrecondition, "Pub/Sub delivery \(receipt.prefix(16))… on \(subscription) is not outstanding in this client "
                                      + "(settled, or older than the latest \(outstanding.limit) deliveries); only those can be dead-lettered")
                }
                return message
            }
            // Hold the leases while the copies are published: an ack after a lease passed is ignored by Pub/Sub.
            try await modify(receipts, on: subscription, seconds: 60)
            try await deadLetter(messages, from: subscription, settings: settings, deliveries: \.deliveryAttempt)
        }
    }

    public func extendDeadline(_ receipts: [String], on subscription: String, to deadline: Duration) async throws {
        try await modify(receipts, on: subscription, seconds: min(600, max(1, Self.seconds(deadline))))
    }

    /// Publishes `messages` to the dead-letter topic, marked, then acks them.
    private func deadLetter(_ messages: [DeliveredMessage], from subscription: String, settings: Settings,
                            deliveries: (DeliveredMessage) -> Int) async throws {
        guard let topic = settings.deadLetterTopic else {
            throw NimbusError(.failedPrecondition, "Pub/Sub subscription '\(subscription)' has no dead-letter topic")
        }
        _ = try await publish(messages.map { message in
            Message(body: message.body, attributes: DeadLetterAttribute.marking(message.attributes, subscription: subscription, messageID: message.id,
                                                                                deliveries: deliveries(message)), orderingKey: message.orderingKey)
        }, to: topic)
        try await ack(messages.map(\.receipt), on: subscription)
    }
}

extension URLOpenerRegistry where Resource == any MessagingDriver {
    /// Adds `gcppubsub://PROJECT`: Google Cloud Pub/Sub over REST, authenticated with Application
    /// Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's file, the metadata server).
    /// Option: `endpoint` (the API root; an `http://` endpoint — the emulator — is used without authentication).
    public func withPubSub() -> Self {
        var copy = self
        copy.register("gcppubsub") { url in
            try url.options.validate(known: ["endpoint"], for: "gcppubsub://")
            guard let project = url.host, !project.isEmpty else {
                throw NimbusError(.invalidArgument, "gcppubsub:// needs the project: gcppubsub://my-project")
            }
            var gcp = GCPClient.Configuration(scopes: ["https://www.googleapis.com/auth/pubsub"])
            let endpoint = url.options.string("endpoint") ?? "https://pubsub.googleapis.com"
            if endpoint.hasPrefix("http://") { gcp.anonymous = true }
            return try PubSubMessagingDriver(configuration: .init(project: project, endpoint: endpoint, gcp: gcp))
        }
        return copy
    }
}
