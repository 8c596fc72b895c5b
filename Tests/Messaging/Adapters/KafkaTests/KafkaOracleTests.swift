import Foundation
import NIOCore
import NimbusCore
import NimbusMessaging
@testable import NimbusMessagingKafka
import NimbusTesting
import Testing

/// No Kafka broker runs here: every request and record batch the client writes is compared, byte for
/// byte, with what kafka-python's own encoder writes for the same content (scripts/kafka/kafka-python-oracle).
@Suite("Kafka bytes equal kafka-python's", .requires(.kafkaPython))
struct KafkaOracleTests {
    static let root = Peer.packageRoot() ?? FileManager.default.currentDirectoryPath

    static func json(_ value: KafkaValue) -> Any {
        switch value {
        case .bool(let flag): flag
        case .int(let number): number
        case .float(let number): number
        case .string(let text): text
        case .bytes(let bytes): ["hex": bytes.readableBytesView.map { String(format: "%02x", $0) }.joined()]
        case .uuid(let uuid): ["uuid": uuid.uuidString.lowercased()]
        case .array(let items): items.map(json)
        case .structure(let inner): inner.values.mapValues(json)
        case .null: NSNull()
        }
    }

    static func oracle(_ cases: [[String: Any]]) async throws -> [String] {
        let input = try cases.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }.joined(separator: "\n") + "\n"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kafka-oracle-\(IDGenerator.shared.ulid()).jsonl")
        try input.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try await ProcessRunner.run("/bin/sh", ["-c", "\"$0\" \"$1\" < \"$2\"", try Peer.kafkaPython.url(),
                                                          "\(root)/scripts/kafka/kafka-python-oracle", file.path])
        try #require(run.status == 0, "the oracle failed: \(run.stderr)")
        return run.stdout.split(separator: "\n").map(String.init)
    }

    static func hex(_ buffer: ByteBuffer) -> String { buffer.readableBytesView.map { String(format: "%02x", $0) }.joined() }

    static var records: ByteBuffer {
        var buffer = ByteBuffer()
        KafkaRecordBatch(partitionLeaderEpoch: 0, producerID: 1000, producerEpoch: 0, baseSequence: 0, records: [
            KafkaRecord(key: ByteBuffer(string: "order-1"), value: ByteBuffer(string: "{\"paid\":true}"), headers: [.init("source", ByteBuffer(string: "nimbus"))],
                        timestamp: 1_700_000_000_000),
        ]).encode(into: &buffer)
        return buffer
    }

    /// One request per API the client uses, at the versions it speaks (flexible and classic).
    static let requests: [(KafkaSchema, Int16, KafkaStruct)] = [
        (.apiVersionsRequest, 3, ["ClientSoftwareName": "nimbus", "ClientSoftwareVersion": "1.0"]),
        (.apiVersionsRequest, 0, [:]),
        (.metadataRequest, 12, ["Topics": [["Name": "orders", "TopicId": .uuid(UUID(uuidString: "00000000-0000-0000-0000-000000000000")!)]],
                                "AllowAutoTopicCreation": false, "IncludeTopicAuthorizedOperations": false]),
        (.metadataRequest, 1, ["Topics": nil]),
        (.metadataRequest, 9, ["Topics": [["Name": "a"], ["Name": "b.c"]], "AllowAutoTopicCreation": true]),
        (.produceRequest, 9, ["TransactionalId": nil, "Acks": -1, "TimeoutMs": 30_000,
                              "TopicData": [["Name": "orders", "PartitionData": [["Index": 2, "Records": .bytes(records)]]]]]),
        (.produceRequest, 3, ["TransactionalId": nil, "Acks": 1, "TimeoutMs": 1500,
                              "TopicData": [["Name": "orders", "PartitionData": [["Index": 0, "Records": .bytes(records)]]]]]),
        (.fetchRequest, 12, ["ReplicaId": -1, "MaxWaitMs": 500, "MinBytes": 1, "MaxBytes": 52_428_800, "IsolationLevel": 1, "SessionId": 0, "SessionEpoch": -1,
                             "Topics": [["Topic": "orders", "Partitions": [["Partition": 0, "CurrentLeaderEpoch": 3, "FetchOffset": 42, "LastFetchedEpoch": -1,
                                                                             "LogStartOffset": -1, "PartitionMaxBytes": 1_048_576]]]],
                             "ForgottenTopicsData": [], "RackId": ""]),
        (.fetchRequest, 4, ["ReplicaId": -1, "MaxWaitMs": 100, "MinBytes": 1, "MaxBytes": 1_048_576, "IsolationLevel": 0,
                            "Topics": [["Topic": "t", "Partitions": [["Partition": 1, "FetchOffset": 7, "PartitionMaxBytes": 65_536]]]]]),
        (.listOffsetsRequest, 7, ["ReplicaId": -1, "IsolationLevel": 0,
                                  "Topics": [["Name": "orders", "Partitions": [["PartitionIndex": 0, "CurrentLeaderEpoch": -1, "Timestamp": -2]]]]]),
        (.findCoordinatorRequest, 4, ["KeyType": 0, "CoordinatorKeys": ["billing"]]),
        (.findCoordinatorRequest, 1, ["Key": "billing", "KeyType": 0]),
        (.joinGroupRequest, 7, ["GroupId": "billing", "SessionTimeoutMs": 45_000, "RebalanceTimeoutMs": 300_000, "MemberId": "", "GroupInstanceId": nil,
                                "ProtocolType": "consumer", "Protocols": [["Name": "range", "Metadata": .bytes(ByteBuffer(bytes: [0, 1, 0, 0, 0, 1, 0, 1, 116]))]]]),
        (.syncGroupRequest, 5, ["GroupId": "billing", "GenerationId": 3, "MemberId": "m-1", "GroupInstanceId": nil, "ProtocolType": "consumer",
                                "ProtocolName": "range", "Assignments": [["MemberId": "m-1", "Assignment": .bytes(ByteBuffer(bytes: [0, 1, 2]))]]]),
        (.heartbeatRequest, 4, ["GroupId": "billing", "GenerationId": 3, "MemberId": "m-1", "GroupInstanceId": nil]),
        (.leaveGroupRequest, 4, ["GroupId": "billing", "Members": [["MemberId": "m-1", "GroupInstanceId": nil]]]),
        (.offsetCommitRequest, 8, ["GroupId": "billing", "GenerationIdOrMemberEpoch": 3, "MemberId": "m-1", "GroupInstanceId": nil,
                                   "Topics": [["Name": "orders", "Partitions": [["PartitionIndex": 0, "CommittedOffset": 43, "CommittedLeaderEpoch": -1,
                                                                                 "CommittedMetadata": ""]]]]]),
        (.offsetFetchRequest, 8, ["Groups": [["GroupId": "billing", "Topics": [["Name": "orders", "PartitionIndexes": [0, 1, 2]]]]], "RequireStable": true]),
        (.initProducerIdRequest, 4, ["TransactionalId": nil, "TransactionTimeoutMs": -1, "ProducerId": -1, "ProducerEpoch": -1]),
        (.saslHandshakeRequest, 1, ["Mechanism": "SCRAM-SHA-256"]),
        (.saslAuthenticateRequest, 2, ["AuthBytes": .bytes(ByteBuffer(string: "\0user\0secret"))]),
        (.createTopicsRequest, 5, ["Topics": [["Name": "orders", "NumPartitions": 3, "ReplicationFactor": 1, "Assignments": [],
                                               "Configs": [["Name": "retention.ms", "Value": "86400000"]]]], "timeoutMs": 30_000, "validateOnly": false]),
        (.deleteTopicsRequest, 4, ["TopicNames": ["orders"], "TimeoutMs": 30_000]),
    ]

    @Test("every request the client sends, framed with its header, equals kafka-python's bytes")
    func requestsEqualKafkaPython() async throws {
        var cases: [[String: Any]] = [], ours: [String] = []
        for (index, (schema, version, body)) in Self.requests.enumerated() {
            var buffer = ByteBuffer()
            try KafkaFraming.writeRequest(schema, body, version: version, correlationID: Int32(index + 1), clientID: "nimbus", into: &buffer)
            ours.append(Self.hex(buffer))
            cases.append(["request": schema.name, "version": Int(version), "correlation": index + 1, "client": "nimbus", "body": Self.json(.structure(body))])
        }
        let theirs = try await Self.oracle(cases)
        try #require(theirs.count == ours.count)
        for (index, (schema, version, _)) in Self.requests.enumerated() {
            #expect(ours[index] == theirs[index], "\(schema.name) v\(version)")
        }
    }

    @Test("record batches (keys, null values, headers, idempotent producer fields, out-of-order timestamps) equal kafka-python's")
    func recordBatchesEqualKafkaPython() async throws {
        let shapes: [(KafkaRecordBatch, [String: Any])] = [
            // kafka-python writes partition leader epoch 0 where the Java producer writes -1 (the broker sets it either way).
            (KafkaRecordBatch(partitionLeaderEpoch: 0, records: [KafkaRecord(value: ByteBuffer(string: "hi"), timestamp: 1_700_000_000_000)]), [:]),
            (KafkaRecordBatch(partitionLeaderEpoch: 0, producerID: 77, producerEpoch: 2, baseSequence: 10, records: [
                KafkaRecord(key: ByteBuffer(string: "k"), value: nil, headers: [.init("a", ByteBuffer(string: "1")), .init("b", nil)], timestamp: 5),
                KafkaRecord(key: nil, value: ByteBuffer(repeating: 0xAB, count: 1000), timestamp: 3),
                KafkaRecord(key: ByteBuffer(), value: ByteBuffer(), headers: [.init("ü", ByteBuffer(string: "é"))], timestamp: 9_000),
            ]), ["producer_id": 77, "producer_epoch": 2, "base_sequence": 10]),
        ]
        var cases: [[String: Any]] = []
        var ours: [String] = []
        for (batch, producer) in shapes {
            var buffer = ByteBuffer()
            batch.encode(into: &buffer)
            ours.append(Self.hex(buffer))
            var spec = producer
            spec["records"] = batch.records.map { record -> [String: Any] in
                ["timestamp": record.timestamp, "key": record.key.map(Self.hex) ?? NSNull(), "value": record.value.map(Self.hex) ?? NSNull(),
                 "headers": record.headers.map { [$0.key, $0.value.map(Self.hex) ?? NSNull()] as [Any] }]
            }
            cases.append(["batch": spec])
        }
        let theirs = try await Self.oracle(cases)
        try #require(theirs.count == ours.count)
        for index in ours.indices { #expect(ours[index] == theirs[index], "batch \(index)") }
    }

    @Test("every request the messaging driver sent in a whole session (topics, groups, produce, fetch, commits, leave, delete) equals kafka-python's bytes")
    func driverSessionEqualsKafkaPython() async throws {
        let cluster = try await FakeKafkaCluster.start(defaultPartitions: 2)
        let messaging = Messaging(driver: try await KafkaMessagingTests.driver(cluster))
        let topic = KafkaMessagingTests.unique("oracle"), name = KafkaMessagingTests.unique("oracle-group")
        try await messaging.createTopic(topic)
        try await messaging.createSubscription(name, topic: topic)
        try await messaging.publish([Message("plain", attributes: ["trace": "t-1"]), Message("keyed", orderingKey: "customer-7")], to: topic)
        var received: [ReceivedMessage] = []
        while received.count < 2 { received += try await messaging.subscription(name).receive(maxMessages: 2, wait: .seconds(2)) }
        try await Task.sleep(for: .milliseconds(400))
        for message in received { try await message.ack() }
        #expect(try await messaging.subscriptions(of: topic) == [name])
        try await messaging.deleteSubscription(name)
        try await messaging.deleteTopic(topic)
        try await messaging.close()
        await cluster.stop()
        #expect(cluster.broker.problems == [])

        var seen = Set<String>(), cases: [[String: Any]] = [], ours: [String] = [], labels: [String] = []
        for request in cluster.broker.requests where seen.insert("\(request.name) v\(request.version)").inserted {
            var framed = ByteBuffer()
            framed.writeInteger(Int32(request.frame.readableBytes))
            framed.writeImmutableBuffer(request.frame)
            ours.append(Self.hex(framed))
            labels.append("\(request.name) v\(request.version)")
            cases.append(["request": request.name, "version": Int(request.version), "correlation": Int(request.correlation),
                          "client": request.clientID ?? "", "body": Self.json(.structure(request.body))])
        }
        #expect(Set(cluster.broker.requests.map(\.name)).isSuperset(of: [
            "ApiVersionsRequest", "MetadataRequest", "CreateTopicsRequest", "ListOffsetsRequest", "FindCoordinatorRequest", "OffsetCommitRequest",
            "OffsetFetchRequest", "InitProducerIdRequest", "ProduceRequest", "JoinGroupRequest", "SyncGroupRequest", "HeartbeatRequest", "FetchRequest",
            "ListGroupsRequest", "LeaveGroupRequest", "DeleteGroupsRequest", "DeleteTopicsRequest",
        ]))
        let theirs = try await Self.oracle(cases)
        try #require(theirs.count == ours.count)
        for index in ours.indices { #expect(ours[index] == theirs[index], "\(labels[index])") }
    }

    @Test("the consumer-protocol subscription and assignment, and murmur2 partitioning, equal kafka-python's")
    func groupProtocolEqualsKafkaPython() async throws {
        let subscription: KafkaStruct = ["Topics": ["orders"], "UserData": nil, "OwnedPartitions": [["Topic": "orders", "Partitions": [0, 2, 5]]]]
        let assignment: KafkaStruct = ["AssignedPartitions": [["Topic": "orders", "Partitions": [1, 3]], ["Topic": "audit", "Partitions": []]], "UserData": nil]
        let keys = ["", "a", "ab", "abc", "abcd", "order-7", "customer-12345", "ünïcödé ключ", String(repeating: "x", count: 257)]
        var cases: [[String: Any]] = [
            ["data": "ConsumerProtocolSubscription", "version": 1, "body": Self.json(.structure(subscription))],
            ["data": "ConsumerProtocolAssignment", "version": 0, "body": Self.json(.structure(assignment))],
        ]
        var ours = [Self.hex(try KafkaGroupConsumer.encodeEmbedded(.consumerProtocolSubscription, version: 1, subscription)),
                    Self.hex(try KafkaGroupConsumer.encodeEmbedded(.consumerProtocolAssignment, version: 0, assignment))]
        for key in keys {
            cases.append(["murmur2": Array(key.utf8).map { String(format: "%02x", $0) }.joined()])
            // kafka-python prints the hash unsigned, the Java client signed: the same 32 bits.
            ours.append(String(UInt32(bitPattern: KafkaPartitioner.murmur2(Array(key.utf8)))))
        }
        let theirs = try await Self.oracle(cases)
        try #require(theirs.count == ours.count)
        for index in ours.indices { #expect(ours[index] == theirs[index], "case \(index)") }
        // Read back, the leader's view of a member.
        let decoded = try KafkaGroupConsumer.decodeEmbedded(.consumerProtocolSubscription, try KafkaGroupConsumer.encodeEmbedded(.consumerProtocolSubscription, version: 1, subscription))
        #expect(decoded.array("OwnedPartitions").first?["Partitions"] == [0, 2, 5])
    }
}
