import Foundation
import Logging
import NIOCore
import NIOSSL
import NimbusCore
import NimbusMessaging
import Synchronization

/// Messaging on Kafka: a topic is a Kafka topic, a subscription a **consumer group** reading it.
///
/// - Publishing is idempotent (``KafkaProducer``: producer id, per-partition sequences, `acks=all`);
///   a message's ordering key is its record key, so one key stays on one partition and in order; its
///   attributes are record headers. A message id is `partition-offset`.
/// - A subscription is created by committing the topic's end offsets for the group (so it sees only
///   what is published afterwards), with its settings — ack deadline, ordering — kept as the commit
///   metadata, where every client opening the group reads them.
/// - Receiving joins the group (see ``KafkaGroupConsumer``): partitions are shared among the
///   members, and within a member each message is leased for the ack deadline, redelivered after a
///   nack or when the lease passes, and committed once it and every message before it are acked.
/// - Not offered (the portable layer refuses them): delayed first delivery, deduplication ids,
///   dead-letter topics and delivery counts across members — Kafka has none of them.
///
/// ```swift
/// let messaging = try await Messaging.open("kafka://127.0.0.1:9092?partitions=6", openers: .messaging.withKafka())
/// ```
public final class KafkaMessagingDriver: MessagingDriver, Sendable {
    /// Settings of the Kafka driver.
    public struct Configuration: Sendable {
        /// The bootstrap broker and how connections are made (TLS, SASL, timeouts).
        public var connection: KafkaConnection.Configuration
        /// Partitions of topics created here; `nil` takes the broker's `num.partitions`.
        public var partitions: Int?
        /// Replication factor of topics created here; `nil` takes the broker's default.
        public var replicationFactor: Int?
        /// How long a member may be silent before the group coordinator drops it.
        public var sessionTimeout: Duration
        /// How often members heartbeat.
        public var heartbeatInterval: Duration

        public init(connection: KafkaConnection.Configuration = .init(), partitions: Int? = nil, replicationFactor: Int? = nil,
                    sessionTimeout: Duration = .seconds(10), heartbeatInterval: Duration = .seconds(1)) {
            self.connection = connection
            self.partitions = partitions
            self.replicationFactor = replicationFactor
            self.sessionTimeout = sessionTimeout
            self.heartbeatInterval = heartbeatInterval
        }
    }

    public var provider: String { "kafka" }
    public var capabilities: MessagingCapabilities { [.durable, .orderingKeys, .extendDeadline, .delayedRedelivery] }

    public let configuration: Configuration
    /// The brokers underneath.
    public let cluster: KafkaCluster
    /// The idempotent producer every publish goes through.
    public let producer: KafkaProducer
    private let logger: Logger
    private let consumers = Mutex<[String: Task<KafkaGroupConsumer, any Error>]>([:])

    public init(configuration: Configuration, logger: Logger = Logger(label: "nimbus.kafka")) {
        self.configuration = configuration
        self.logger = logger
        self.cluster = KafkaCluster(bootstrap: configuration.connection, logger: logger)
        self.producer = KafkaProducer(cluster: cluster)
    }

    // MARK: Topics

    public func createTopic(_ topic: String) async throws -> Bool {
        let reply = try await cluster.anyConnection().send(.createTopicsRequest, ["Topics": [.structure([
            "Name": .string(topic), "NumPartitions": .int(Int64(configuration.partitions ?? -1)),
            "ReplicationFactor": .int(Int64(configuration.replicationFactor ?? -1)), "Assignments": [], "Configs": [],
        ])], "timeoutMs": 30_000], highest: 7)
        guard let answer = reply.array("Topics").first else { throw NimbusError(.internal, "Kafka answered CreateTopics without the topic") }
        let code = KafkaErrorCode(Int16(answer.int("ErrorCode")))
        if code.rawValue == 36 { return false }
        guard code.rawValue == 0 else { throw code.error("creating topic '\(topic)'\(answer.string("ErrorMessage").map { ": \($0)" } ?? "")") }
        // A new topic's leaders take a moment to be elected: wait until every partition has one.
        for attempt in 0..<100 {
            if let partitions = try? await cluster.partitions(of: topic, refresh: true), !partitions.isEmpty, partitions.allSatisfy({ $0.leader >= 0 }) { return true }
            try await Task.sleep(for: .milliseconds(min(20 * (attempt + 1), 200)))
        }
        throw NimbusError(.unavailable, "Kafka created topic '\(topic)' but its partitions have no leader yet", retryable: true)
    }

    public func deleteTopic(_ topic: String) async throws {
        let reply = try await cluster.anyConnection().send(.deleteTopicsRequest, ["TopicNames": [.string(topic)], "TimeoutMs": 30_000], highest: 5)
        cluster.invalidate(topic)
        guard let answer = reply.array("Responses").first else { throw NimbusError(.internal, "Kafka answered DeleteTopics without the topic") }
        let code = KafkaErrorCode(Int16(answer.int("ErrorCode")))
        guard code.rawValue == 0 else { throw code.error("deleting topic '\(topic)'") }
    }

    public func topics() async throws -> [String] { try await cluster.topicNames() }

    // MARK: Subscriptions

    public func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions) async throws -> Bool {
        let partitions = try await cluster.partitions(of: topic, refresh: true).map(\.index)
        if let existing = try await settings(of: subscription) {
            guard existing.topic == topic else {
                throw NimbusError(.alreadyExists, "the Kafka consumer group '\(subscription)' already reads topic '\(existing.topic)', not '\(topic)'")
            }
            return false
        }
        let settings = KafkaSubscriptionSettings(topic: topic, ackDeadlineMs: Int64(options.ackDeadline.nimbusMilliseconds), ordered: options.ordered)
        let ends = try await cluster.offsets(of: topic, partitions: partitions, latest: true)
        // Committing outside any generation creates the (empty) group; a group with members refuses it.
        let reply = try await cluster.coordinator(of: subscription, lane: "admin").send(.offsetCommitRequest, [
            "GroupId": .string(subscription), "GenerationIdOrMemberEpoch": -1, "MemberId": "",
            "Topics": [.structure(["Name": .string(topic), "Partitions": .array(ends.sorted { $0.key < $1.key }.map {
                .structure(["PartitionIndex": .int(Int64($0.key)), "CommittedOffset": .int($0.value), "CommittedMetadata": .string(settings.json())])
            })])],
        ], highest: 8)
        for answer in reply.array("Topics").flatMap({ $0.array("Partitions") }) {
            let code = KafkaErrorCode(Int16(answer.int("ErrorCode")))
            if code.rawValue == 25 || code.rawValue == 22 { return false }
            guard code.rawValue == 0 else { throw code.error("creating subscription '\(subscription)' (committing its start offsets)") }
        }
        return true
    }

    public func deleteSubscription(_ subscription: String) async throws {
        if let consumer = consumers.withLock({ $0.removeValue(forKey: subscription) }) { await (try? consumer.value)?.stop() }
        guard try await settings(of: subscription) != nil else { throw noSubscription(subscription) }
        let reply = try await cluster.coordinator(of: subscription, lane: "admin").send(.deleteGroupsRequest, ["GroupsNames": [.string(subscription)]], highest: 2)
        let code = KafkaErrorCode(Int16(reply.array("Results").first?.int("ErrorCode") ?? 0))
        switch code.rawValue {
        case 0: return
        case 69: throw noSubscription(subscription)
        case 68: throw NimbusError(.failedPrecondition, "Kafka consumer group '\(subscription)' still has members; stop the consumers reading it first")
        default: throw code.error("deleting subscription '\(subscription)'")
        }
    }

    public func subscriptions(of topic: String) async throws -> [String] {
        _ = try await cluster.partitions(of: topic, refresh: true)
        try await cluster.refreshMetadata(nil)
        var groups = Set<String>()
        // Each broker lists the groups it coordinates.
        for node in try await brokerNodes() {
            let reply = try await cluster.connection(toNode: node, lane: "admin").send(.listGroupsRequest, [:], highest: 4)
            let code = KafkaErrorCode(Int16(reply.int("ErrorCode")))
            guard code.rawValue == 0 else { throw code.error("listing consumer groups") }
            for entry in reply.array("Groups") where ["consumer", ""].contains(entry.string("ProtocolType") ?? "") {
                if let id = entry.string("GroupId") { groups.insert(id) }
            }
        }
        var result: [String] = []
        for group in groups.sorted() where try await settings(of: group)?.topic == topic { result.append(group) }
        return result
    }

    private func brokerNodes() async throws -> [Int32] {
        let reply = try await cluster.metadata([])
        return reply.array("Brokers").map { Int32($0.int("NodeId")) }.sorted()
    }

    /// The settings of a subscription: from the Nimbus metadata of its commits, or — for a group
    /// made by another Kafka client — the topic it commits for and default settings. `nil` when the
    /// group has committed nothing (it does not exist for messaging).
    func settings(of group: String) async throws -> KafkaSubscriptionSettings? {
        let reply = try await cluster.coordinator(of: group, lane: "admin").send(.offsetFetchRequest, ["GroupId": .string(group), "Topics": nil], highest: 7)
        let code = KafkaErrorCode(Int16(reply.int("ErrorCode")))
        if code.rawValue == 69 { return nil }
        guard code.rawValue == 0 else { throw code.error("reading the offsets of group '\(group)'") }
        var fallback: KafkaSubscriptionSettings?
        for topic in reply.array("Topics") {
            for partition in topic.array("Partitions") where partition.int("CommittedOffset") >= 0 {
                if let settings = KafkaSubscriptionSettings.parse(partition.string("Metadata")) { return settings }
                if fallback == nil, let name = topic.string("Name") { fallback = KafkaSubscriptionSettings(topic: name, ackDeadlineMs: 30_000, ordered: false) }
            }
        }
        return fallback
    }

    private func noSubscription(_ name: String) -> NimbusError {
        NimbusError(.notFound, "Kafka has no subscription '\(name)' (no consumer group of that name has committed offsets)")
    }

    // MARK: Publishing

    public func publish(_ messages: [Message], to topic: String) async throws -> [String] {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let records = messages.map { message in
            KafkaRecord(key: message.orderingKey.map { ByteBuffer(string: $0) }, value: message.body,
                        headers: message.attributes.sorted { $0.key < $1.key }.map { KafkaRecord.Header($0.key, ByteBuffer(string: $0.value)) }, timestamp: now)
        }
        return try await producer.send(records, to: topic).map { "\($0.partition)-\($0.offset)" }
    }

    // MARK: Receiving

    func consumer(_ subscription: String) async throws -> KafkaGroupConsumer {
        let task = consumers.withLock { consumers in
            if let existing = consumers[subscription] { return existing }
            let task = Task {
                guard let settings = try await self.settings(of: subscription) else { throw self.noSubscription(subscription) }
                return KafkaGroupConsumer(group: subscription, settings: settings, cluster: self.cluster,
                                          configuration: .init(sessionTimeout: self.configuration.sessionTimeout, heartbeatInterval: self.configuration.heartbeatInterval),
                                          logger: self.logger)
            }
            consumers[subscription] = task
            return task
        }
        do { return try await task.value }
        catch {
            consumers.withLock { consumers in if consumers[subscription] == task { consumers.removeValue(forKey: subscription) } }
            throw error
        }
    }

    public func receive(from subscription: String, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        try await consumer(subscription).receive(maxMessages: maxMessages, wait: wait)
    }

    public func ack(_ receipts: [String], on subscription: String) async throws {
        try await consumer(subscription).ack(receipts)
    }

    public func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws {
        switch disposition {
        case .requeue(let delay): try await consumer(subscription).nack(receipts, delay: delay)
        case .deadLetter: throw NimbusError(.unimplemented, "Kafka has no dead-letter topics; publish the message to one and ack it")
        }
    }

    public func extendDeadline(_ receipts: [String], on subscription: String, to deadline: Duration) async throws {
        try await consumer(subscription).extend(receipts, to: deadline)
    }

    public func close() async throws {
        let all = consumers.withLock { consumers in defer { consumers.removeAll() }; return Array(consumers.values) }
        for task in all { await (try? task.value)?.stop() }
        await cluster.close()
    }
}

extension URLOpenerRegistry where Resource == any MessagingDriver {
    /// Adds `kafka://host:9092` and `kafkas://` (TLS, verified):
    /// `kafka://user@host:9092?sasl=SCRAM-SHA-512&partitions=6`. Options: `partitions` and
    /// `replication` (of topics created here; the broker's defaults otherwise), `sasl` (`PLAIN`,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-512`; the URL's user, and `password=env:VARIABLE`, else the URL's
    /// password, else the environment's `KAFKA_PASSWORD`), `client_id`, `session_timeout`,
    /// `heartbeat`, `connect_timeout`, `request_timeout`, `tls_ca` (a PEM file of trusted CAs, with `kafkas://`).
    public func withKafka() -> Self {
        var copy = self
        copy.register("kafka", "kafkas") { url in
            try url.options.validate(known: ["partitions", "replication", "sasl", "password", "client_id", "session_timeout", "heartbeat",
                                             "connect_timeout", "request_timeout", "tls_ca"], for: "\(url.scheme)://")
            var connection = KafkaConnection.Configuration(host: url.host ?? "127.0.0.1", port: url.port ?? 9092)
            if let clientID = url.options.string("client_id") { connection.clientID = clientID }
            if url.scheme == "kafkas" {
                var tls = TLSConfiguration.makeClientConfiguration()
                if let ca = url.options.string("tls_ca") { tls.trustRoots = .file(ca) }
                connection.tls = tls
            } else if url.options.string("tls_ca") != nil {
                throw NimbusError(.invalidArgument, "tls_ca needs kafkas://")
            }
            if let mechanism = url.options.string("sasl") {
                guard let parsed = KafkaConnection.SASL.Mechanism(rawValue: mechanism.uppercased()) else {
                    throw NimbusError(.invalidArgument, "sasl must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got '\(mechanism)'")
                }
                guard let user = url.user else { throw NimbusError(.invalidArgument, "sasl=\(mechanism) needs a user in the URL (kafka://user@host:9092)") }
                guard let password = try url.secret("password", environment: ProcessInfo.processInfo.environment, defaults: ["KAFKA_PASSWORD"]) ?? url.password else {
                    throw NimbusError(.invalidArgument, "sasl=\(mechanism) needs a password: password=env:VARIABLE, the URL's password, or KAFKA_PASSWORD")
                }
                connection.sasl = .init(mechanism: parsed, user: user, password: password)
            }
            if let timeout = try url.options.duration("connect_timeout") { connection.connectTimeout = timeout }
            if let timeout = try url.options.duration("request_timeout") { connection.requestTimeout = timeout }
            var configuration = KafkaMessagingDriver.Configuration(connection: connection)
            if let partitions = try url.options.int("partitions") {
                guard partitions >= 1 else { throw NimbusError(.invalidArgument, "partitions must be at least 1, got \(partitions)") }
                configuration.partitions = partitions
            }
            if let replication = try url.options.int("replication") {
                guard replication >= 1 else { throw NimbusError(.invalidArgument, "replication must be at least 1, got \(replication)") }
                configuration.replicationFactor = replication
            }
            if let timeout = try url.options.duration("session_timeout") { configuration.sessionTimeout = timeout }
            if let interval = try url.options.duration("heartbeat") { configuration.heartbeatInterval = interval }
            return KafkaMessagingDriver(configuration: configuration)
        }
        return copy
    }
}
