import Foundation
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusMessagingConformance
@testable import NimbusMessagingKafka
import NimbusTesting
import Synchronization
import Testing

/// No Kafka broker runs here: the driver runs against ``FakeKafkaCluster``, which decodes every
/// request by Apache Kafka's JSON definitions and keeps real partition logs, producer sequences and
/// consumer-group state; the bytes themselves are compared with kafka-python's in ``KafkaOracleTests``.
@Suite("Kafka messaging (fake broker checked against the protocol definitions)", .timeLimit(.minutes(3)))
struct KafkaMessagingTests {
    static let declared: MessagingCapabilities = [.durable, .orderingKeys, .extendDeadline, .delayedRedelivery]
    static let openers = URLOpenerRegistry.messaging.withKafka()
    /// One cluster for the conformance checks (each uses its own names, as on a real broker).
    static let shared = Task { try await FakeKafkaCluster.start() }

    static func driver(_ cluster: FakeKafkaCluster, _ extra: String = "") async throws -> KafkaMessagingDriver {
        try #require(try await openers.open(cluster.url + extra) as? KafkaMessagingDriver)
    }

    static func unique(_ name: String) -> String { "\(name)-\(IDGenerator.shared.ulid().description.lowercased().suffix(10))" }

    @Test("declares its capabilities: no delays, deduplication, dead letters or delivery counts on Kafka")
    func declaredCapabilities() async throws {
        let driver = try await Self.driver(try await Self.shared.value)
        #expect(driver.capabilities == Self.declared)
        #expect(MessagingConformance.suite.unsupported(by: MessagingConformance.capabilities(Self.declared)).map(\.name) == [
            "the delivery attempt counts redeliveries",
            "a poison message goes to the dead-letter topic after maxDeliveries",
            "deadLetter() moves a message to the dead-letter topic at once",
            "a delayed message is not delivered before its delay",
            "a repeated deduplication id is delivered once",
        ])
        try await driver.close()
    }

    @Test("conformance", arguments: MessagingConformance.suite.checks(supportedBy: MessagingConformance.capabilities(declared)))
    func conformance(_ check: MessagingConformance.Check) async throws {
        let cluster = try await Self.shared.value
        try await check.run(MessagingConformance.Harness(makeDriver: { try await Self.driver(cluster) }, advance: { try await Task.sleep(for: $0) }))
        #expect(cluster.broker.problems == [])
    }

    @Test("the URL: partitions, replication, SASL needs a user and a password, TLS options need kafkas://, unknown options are refused")
    func urlOptions() async throws {
        let driver = try #require(try await Self.openers.open("kafka://broker:9093?partitions=6&replication=3&client_id=billing&session_timeout=20s&heartbeat=2s")
            as? KafkaMessagingDriver)
        #expect(driver.configuration.partitions == 6)
        #expect(driver.configuration.replicationFactor == 3)
        #expect(driver.configuration.connection.host == "broker")
        #expect(driver.configuration.connection.port == 9093)
        #expect(driver.configuration.connection.clientID == "billing")
        #expect(driver.configuration.sessionTimeout == .seconds(20))
        #expect(driver.configuration.connection.tls == nil)
        let secure = try #require(try await Self.openers.open("kafkas://app:s3cret@broker?sasl=scram-sha-512") as? KafkaMessagingDriver)
        #expect(secure.configuration.connection.tls != nil)
        #expect(secure.configuration.connection.sasl?.mechanism == .scramSHA512)
        #expect(secure.configuration.connection.sasl?.password.reveal() == "s3cret")
        for bad in ["kafka://b?sasl=PLAIN", "kafka://b?sasl=GSSAPI", "kafka://b?tls_ca=/x.pem", "kafka://b?partitions=0", "kafka://b?acks=1"] {
            await #expect(throws: NimbusError.self, "\(bad)") { _ = try await Self.openers.open(bad) }
        }
    }

    @Test("keys are placed by murmur2 like every Kafka client: one key, one partition, in publish order")
    func keyedPlacement() async throws {
        let cluster = try await FakeKafkaCluster.start(defaultPartitions: 4)
        let driver = try await Self.driver(cluster)
        let topic = Self.unique("placed")
        #expect(try await driver.createTopic(topic))
        let messages = (0..<20).map { Message(body: ByteBuffer(string: "m\($0)"), orderingKey: "customer-\($0 % 5)") }
        let ids = try await driver.publish(messages, to: topic)
        let stored = cluster.records(topic)
        for (index, message) in messages.enumerated() {
            let partition = Int(KafkaPartitioner.partition(forKey: Array(message.orderingKey!.utf8), count: 4))
            #expect(ids[index].hasPrefix("\(partition)-"))
            #expect(stored[partition].contains { $0.value == message.body && $0.key == ByteBuffer(string: message.orderingKey!) })
        }
        for key in 0..<5 {
            let partition = Int(KafkaPartitioner.partition(forKey: Array("customer-\(key)".utf8), count: 4))
            let bodies = stored[partition].filter { $0.key == ByteBuffer(string: "customer-\(key)") }.map { String(buffer: $0.value!) }
            #expect(bodies == stride(from: key, to: 20, by: 5).map { "m\($0)" })
        }
        try await driver.close()
        await cluster.stop()
    }

    @Test("a Produce whose answer is lost is sent again with the same producer id and sequence, and stored once")
    func lostAnswerIsStoredOnce() async throws {
        let cluster = try await FakeKafkaCluster.start(defaultPartitions: 1)
        let driver = try await Self.driver(cluster)
        let topic = Self.unique("lost")
        #expect(try await driver.createTopic(topic))
        _ = try await driver.publish([Message("first")], to: topic)
        cluster.dropNextProduceAnswer()
        let ids = try await driver.publish([Message("second"), Message("third")], to: topic)
        #expect(ids == ["0-1", "0-2"])
        #expect(cluster.records(topic)[0].map { String(buffer: $0.value!) } == ["first", "second", "third"])
        let produces = cluster.broker.requests.filter { $0.name == "ProduceRequest" }
        #expect(produces.count == 3)
        let batches = try produces.flatMap { request in
            try KafkaRecordBatch.decodeAll(request.body.array("TopicData").first?.array("PartitionData").first?.bytes("Records") ?? ByteBuffer())
        }
        try #require(batches.count == 3)
        #expect(batches.map(\.baseSequence) == [0, 1, 1], "the retry repeats the sequence of the lost batch")
        #expect(Set(batches.map(\.producerID)).count == 1)
        #expect(batches.allSatisfy { $0.producerID >= 0 })
        #expect(cluster.broker.requests.filter { $0.name == "InitProducerIdRequest" }.count == 1)
        #expect(cluster.broker.problems == [])
        try await driver.close()
        await cluster.stop()
    }

    @Test("NOT_LEADER_OR_FOLLOWER: the producer asks for metadata again and resends; a refused sequence resets the producer and says the batch was not stored")
    func produceErrors() async throws {
        let cluster = try await FakeKafkaCluster.start(defaultPartitions: 1)
        let driver = try await Self.driver(cluster)
        let topic = Self.unique("leader")
        #expect(try await driver.createTopic(topic))
        let metadataBefore = cluster.broker.requests.filter { $0.name == "MetadataRequest" }.count
        cluster.inject("ProduceRequest", code: 6, times: 2)
        #expect(try await driver.publish([Message("moved")], to: topic) == ["0-0"])
        #expect(cluster.broker.requests.filter { $0.name == "MetadataRequest" }.count >= metadataBefore + 2)
        cluster.inject("ProduceRequest", code: 45)
        let error = await #expect(throws: NimbusError.self) { try await driver.publish([Message("refused")], to: topic) }
        #expect(error?.code == .failedPrecondition)
        #expect(error?.message.contains("OUT_OF_ORDER_SEQUENCE_NUMBER") == true)
        #expect(try await driver.publish([Message("after")], to: topic) == ["0-1"])
        #expect(cluster.broker.requests.filter { $0.name == "InitProducerIdRequest" }.count == 2, "a new producer id after the refusal")
        cluster.inject("ProduceRequest", code: 10)
        let tooLarge = await #expect(throws: NimbusError.self) { try await driver.publish([Message("huge")], to: topic) }
        #expect(tooLarge?.code == .invalidArgument)
        #expect(cluster.records(topic)[0].map { String(buffer: $0.value!) } == ["moved", "after"])
        await #expect(throws: NimbusError.self) { try await driver.publish([Message("x")], to: Self.unique("missing")) }
        try await driver.close()
        await cluster.stop()
    }

    @Test("a second member takes half the partitions (REBALANCE_IN_PROGRESS, sticky), acked messages are not delivered again, a moved lease is refused and its message goes to the new owner")
    func rebalance() async throws {
        let cluster = try await FakeKafkaCluster.start(defaultPartitions: 4)
        let first = Messaging(driver: try await Self.driver(cluster))
        let topic = Self.unique("shared"), name = Self.unique("workers")
        try await first.createTopic(topic)
        try await first.createSubscription(name, topic: topic, options: .init(ackDeadline: .seconds(60)))
        // Two messages on each partition: one acked before the second member comes, one left open.
        var keys: [Int32: [String]] = [:]
        var index = 0
        while keys.values.map(\.count).reduce(0, +) < 8 {
            let key = "k\(index)", partition = KafkaPartitioner.partition(forKey: Array(key.utf8), count: 4)
            if keys[partition, default: []].count < 2 { keys[partition, default: []].append(key) }
            index += 1
        }
        try await first.publish(keys.sorted { $0.key < $1.key }.flatMap { partition, pair in
            [Message(body: ByteBuffer(string: "keep-\(partition)"), orderingKey: pair[0]), Message(body: ByteBuffer(string: "open-\(partition)"), orderingKey: pair[1])]
        }, to: topic)
        var received: [ReceivedMessage] = []
        while received.count < 8 { received += try await first.subscription(name).receive(maxMessages: 8, wait: .seconds(2)) }
        let acked = received.filter { $0.text.hasPrefix("keep-") }
        for message in acked { try await message.ack() }
        let generation = cluster.groupGeneration(name)

        let second = Messaging(driver: try await Self.driver(cluster))
        var taken: [ReceivedMessage] = []
        for _ in 0..<20 where taken.isEmpty || cluster.groupGeneration(name) == generation {
            taken += try await second.subscription(name).receive(maxMessages: 8, wait: .milliseconds(500))
        }
        #expect(cluster.groupGeneration(name) > generation)
        #expect(cluster.groupMembers(name) == 2)
        let joins = cluster.broker.requests.filter { $0.name == "JoinGroupRequest" }
        #expect(joins.contains { $0.body.string("MemberId") == "" } && joins.allSatisfy { $0.body.string("ProtocolType") == "consumer" })
        let ackedTexts = Set(acked.map(\.text))
        #expect(taken.allSatisfy { !ackedTexts.contains($0.text) }, "acked messages stay acked across the rebalance")
        // Sticky: the first member keeps two partitions, the second gets the other two and their open messages.
        #expect(Set(taken.map(\.text)).count == 2)
        #expect(taken.allSatisfy { $0.text.hasPrefix("open-") })
        let moved = received.filter { message in taken.contains { $0.text == message.text } }
        #expect(moved.count == taken.count)
        for message in moved {
            let error = await #expect(throws: NimbusError.self) { try await message.ack() }
            #expect(error?.code == .failedPrecondition)
        }
        for message in taken { try await message.ack() }
        for message in received where !moved.contains(where: { $0.text == message.text }) && !ackedTexts.contains(message.text) { try await message.ack() }
        try await second.close()
        try await first.close()
        #expect(cluster.groupMembers(name) == 0, "closing leaves the group")
        #expect(cluster.broker.problems == [])
        await cluster.stop()
    }

    @Test("a member told the group is rebalancing rejoins and keeps its partitions; a commit from an old generation is refused, then made after rejoining")
    func rejoinAfterRebalance() async throws {
        let cluster = try await FakeKafkaCluster.start(defaultPartitions: 2)
        let messaging = Messaging(driver: try await Self.driver(cluster))
        let topic = Self.unique("rejoin"), name = Self.unique("solo")
        try await messaging.createTopic(topic)
        try await messaging.createSubscription(name, topic: topic)
        try await messaging.publish([Message("one")], to: topic)
        let received = try await messaging.subscription(name).receive(maxMessages: 1, wait: .seconds(5))
        try #require(received.count == 1)
        let generation = cluster.groupGeneration(name)
        cluster.triggerRebalance(name)
        try await received[0].ack()
        for _ in 0..<50 where cluster.groupGeneration(name) == generation { try await Task.sleep(for: .milliseconds(100)) }
        #expect(cluster.groupGeneration(name) == generation + 1)
        var committed = false
        for _ in 0..<50 where !committed {
            committed = cluster.state.withLock { $0.groups[name]?.offsets[topic]?.values.contains { $0.offset == 1 } ?? false }
            if !committed { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(committed, "the ack is committed once the member is back in the group")
        #expect(try await messaging.subscription(name).receive(maxMessages: 1, wait: .milliseconds(300)).isEmpty)
        try await messaging.close()
        await cluster.stop()
    }

    @Test("a fetched batch that fails its CRC is a dataLoss error naming the partition, and the records come whole on the next fetch")
    func corruptFetch() async throws {
        let cluster = try await FakeKafkaCluster.start(defaultPartitions: 1)
        let driver = try await Self.driver(cluster)
        let topic = Self.unique("corrupt"), name = Self.unique("reader")
        #expect(try await driver.createTopic(topic))
        #expect(try await driver.createSubscription(name, topic: topic, options: .init()))
        _ = try await driver.publish([Message("whole")], to: topic)
        cluster.state.withLock { $0.corruptFetches = 1 }
        let error = await #expect(throws: NimbusError.self) { _ = try await driver.receive(from: name, maxMessages: 1, wait: .seconds(5)) }
        #expect(error?.code == .dataLoss)
        #expect(error?.message.contains("\(topic)-0") == true)
        let good = try await driver.receive(from: name, maxMessages: 1, wait: .seconds(5))
        #expect(good.map { String(buffer: $0.body) } == ["whole"])
        try await driver.ack(good.map(\.receipt), on: name)
        try await driver.close()
        await cluster.stop()
    }

    @Test("nimbus msg --url kafka://: publish creates the topic and its subscription, consume prints and acks, topics lists")
    func commandLine() async throws {
        let cluster = try await FakeKafkaCluster.start(defaultPartitions: 2)
        let url = cluster.url
        for body in ["first", "second"] {
            let published = try await Peer.runNimbus(["msg", "publish", "--url", url, "orders", body, "--attribute", "source=cli"])
            #expect(published.status == 0, "\(published.output)")
            #expect(published.stdout.hasPrefix("0-") || published.stdout.hasPrefix("1-"), "a partition-offset id: \(published.stdout)")
        }
        let topics = try await Peer.runNimbus(["msg", "topics", "--url", url])
        #expect(topics.stdout == "orders: orders\n", "\(topics.output)")
        let consumed = try await Peer.runNimbus(["msg", "consume", "--url", url, "orders", "--max", "2", "--timeout", "10"])
        #expect(consumed.status == 0, "\(consumed.output)")
        #expect(Set(consumed.stdout.split(separator: "\n")) == ["first", "second"])
        let again = try await Peer.runNimbus(["msg", "consume", "--url", url, "orders", "--timeout", "1"])
        #expect(again.status == 0 && again.stdout.isEmpty, "acked messages are committed and do not come back: \(again.output)")
        #expect(cluster.broker.problems == [])
        await cluster.stop()
    }
}
