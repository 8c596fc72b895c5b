import Foundation
import Logging
import NIOCore
import NimbusCore
import Synchronization

/// The brokers of one Kafka cluster as a client sees them: the bootstrap address, a connection per
/// broker and purpose (opened on first use, again after it drops), topic metadata (partitions and
/// their leaders, refreshed when a broker says it is not the leader), and group coordinators.
///
/// Requests on one Kafka connection are answered in order, so a long-polling Fetch would hold back
/// everything behind it: callers pick a **lane** (`"produce"`, `"fetch:orders"`, `"group:orders"`),
/// and each lane to a broker is its own connection.
///
/// ```swift
/// let cluster = KafkaCluster(bootstrap: .init(host: "127.0.0.1", port: 9092))
/// let partitions = try await cluster.partitions(of: "orders")
/// let reply = try await cluster.connection(toLeaderOf: "orders", partition: 0, lane: "produce").send(.listOffsetsRequest, body, highest: 7)
/// ```
public final class KafkaCluster: Sendable {
    /// A partition's leader.
    public struct Partition: Sendable, Hashable {
        public var index: Int32
        public var leader: Int32
        public var leaderEpoch: Int32
    }

    /// Where to start and how every connection is made.
    public let bootstrap: KafkaConnection.Configuration
    let logger: Logger
    private struct State {
        var brokers: [Int32: (host: String, port: Int)] = [:]
        var topics: [String: [Partition]] = [:]
        var connections: [String: LazyConnection<KafkaConnection>] = [:]
        var coordinators: [String: (host: String, port: Int)] = [:]
        var closed = false
    }
    private let state = Mutex(State())

    public init(bootstrap: KafkaConnection.Configuration, logger: Logger = Logger(label: "nimbus.kafka")) {
        self.bootstrap = bootstrap
        self.logger = logger
    }

    /// A connection to `host:port` for `lane`, shared by every caller of that lane.
    public func connection(host: String, port: Int, lane: String) async throws -> KafkaConnection {
        let key = "\(host):\(port)/\(lane)"
        let lazy = try state.withLock { state -> LazyConnection<KafkaConnection> in
            if state.closed { throw NimbusError(.failedPrecondition, "the Kafka client for \(bootstrap.endpoint) was closed; create a new one") }
            if let existing = state.connections[key] { return existing }
            var settings = bootstrap
            settings.host = host
            settings.port = port
            let configuration = settings, logger = self.logger
            let lazy = LazyConnection(endpoint: "\(host):\(port)", connect: { try await KafkaConnection.connect(configuration, logger: logger) },
                                      isUsable: { $0.isActive }, close: { try await $0.close() })
            state.connections[key] = lazy
            return lazy
        }
        return try await lazy.connection()
    }

    /// A connection to the bootstrap broker, or any broker known from metadata.
    public func anyConnection(lane: String = "admin") async throws -> KafkaConnection {
        try await connection(host: bootstrap.host, port: bootstrap.port, lane: lane)
    }

    /// A connection to broker `node`, whose address came with the last metadata.
    public func connection(toNode node: Int32, lane: String) async throws -> KafkaConnection {
        guard let address = state.withLock({ $0.brokers[node] }) else {
            try await refreshMetadata(nil)
            guard let address = state.withLock({ $0.brokers[node] }) else {
                throw NimbusError(.unavailable, "Kafka broker \(node) is not in the cluster's metadata (bootstrap \(bootstrap.endpoint))", retryable: true)
            }
            return try await connection(host: address.host, port: address.port, lane: lane)
        }
        return try await connection(host: address.host, port: address.port, lane: lane)
    }

    /// The partitions of `topic`, from cached metadata unless `refresh`.
    /// - Throws: `notFound` when the cluster has no such topic.
    public func partitions(of topic: String, refresh: Bool = false) async throws -> [Partition] {
        if !refresh, let known = state.withLock({ $0.topics[topic] }) { return known }
        try await refreshMetadata([topic])
        guard let known = state.withLock({ $0.topics[topic] }) else {
            throw NimbusError(.notFound, "Kafka has no topic '\(topic)' (bootstrap \(bootstrap.endpoint))")
        }
        return known
    }

    /// The leader of one partition.
    public func leader(of topic: String, partition: Int32) async throws -> Partition {
        guard let found = try await partitions(of: topic).first(where: { $0.index == partition }) else {
            throw NimbusError(.notFound, "Kafka topic '\(topic)' has no partition \(partition)")
        }
        return found
    }

    /// Forgets what is known about `topic`, so that the next call asks again (after NOT_LEADER_OR_FOLLOWER).
    public func invalidate(_ topic: String) { _ = state.withLock { $0.topics.removeValue(forKey: topic) } }

    /// The names of every topic, internal ones left out.
    public func topicNames() async throws -> [String] {
        let reply = try await metadata(nil)
        return reply.array("Topics").filter { !$0.bool("IsInternal") && !($0.string("Name") ?? "").hasPrefix("__") }.compactMap { $0.string("Name") }.sorted()
    }

    /// Asks for metadata (all topics when `topics` is nil) and remembers brokers and leaders.
    public func refreshMetadata(_ topics: [String]?) async throws {
        _ = try await metadata(topics)
    }

    @discardableResult
    func metadata(_ topics: [String]?) async throws -> KafkaStruct {
        let connection = try await anyConnection()
        let body: KafkaStruct = ["Topics": topics.map { .array($0.map { .structure(["Name": .string($0)]) }) } ?? .null, "AllowAutoTopicCreation": false]
        let reply = try await connection.send(.metadataRequest, body, highest: 12)
        state.withLock { state in
            for broker in reply.array("Brokers") {
                state.brokers[Int32(broker.int("NodeId"))] = (broker.string("Host") ?? bootstrap.host, Int(broker.int("Port")))
            }
            for topic in reply.array("Topics") {
                guard let name = topic.string("Name") else { continue }
                let code = KafkaErrorCode(Int16(topic.int("ErrorCode")))
                guard code.rawValue == 0 else { state.topics.removeValue(forKey: name); continue }
                state.topics[name] = topic.array("Partitions").map {
                    Partition(index: Int32($0.int("PartitionIndex")), leader: Int32($0.int("LeaderId")), leaderEpoch: Int32($0["LeaderEpoch"]?.int ?? -1))
                }.sorted { $0.index < $1.index }
            }
        }
        if let topics {
            for topic in reply.array("Topics") where topics.contains(topic.string("Name") ?? "") {
                let code = KafkaErrorCode(Int16(topic.int("ErrorCode")))
                if code.rawValue != 0, code.rawValue != 3, !code.isRetriable { throw code.error("to Metadata for '\(topic.string("Name") ?? "")'") }
            }
        }
        return reply
    }

    /// A connection to the coordinator of consumer group `group`, for `lane`.
    /// - Throws: `unavailable` (retryable) while the coordinator is loading or moving.
    public func coordinator(of group: String, lane: String) async throws -> KafkaConnection {
        if let address = state.withLock({ $0.coordinators[group] }) {
            return try await connection(host: address.host, port: address.port, lane: lane)
        }
        let reply = try await anyConnection().send(.findCoordinatorRequest, ["Key": .string(group), "KeyType": 0], highest: 3)
        let code = KafkaErrorCode(Int16(reply.int("ErrorCode")))
        guard code.rawValue == 0 else { throw code.error("finding the coordinator of group '\(group)'") }
        let address = (reply.string("Host") ?? bootstrap.host, Int(reply.int("Port")))
        state.withLock { $0.coordinators[group] = address }
        return try await connection(host: address.0, port: address.1, lane: lane)
    }

    /// Forgets the coordinator of `group` (after NOT_COORDINATOR).
    public func forgetCoordinator(of group: String) { _ = state.withLock { $0.coordinators.removeValue(forKey: group) } }

    /// Closes every connection; later calls fail.
    public func close() async {
        let connections = state.withLock { state -> [LazyConnection<KafkaConnection>] in
            state.closed = true
            defer { state.connections.removeAll() }
            return Array(state.connections.values)
        }
        for connection in connections { try? await connection.close() }
    }

    /// Closes the connections of `lane` (a consumer that stops).
    public func closeLane(_ lane: String) async {
        let connections = state.withLock { state -> [LazyConnection<KafkaConnection>] in
            let keys = state.connections.keys.filter { $0.hasSuffix("/" + lane) }
            return keys.compactMap { state.connections.removeValue(forKey: $0) }
        }
        for connection in connections { try? await connection.close() }
    }

    /// The offset of the next record (`latest`) or the first kept one (`earliest`) of each partition.
    public func offsets(of topic: String, partitions: [Int32], latest: Bool) async throws -> [Int32: Int64] {
        var result: [Int32: Int64] = [:]
        var byLeader: [Int32: [Int32]] = [:]
        for partition in try await self.partitions(of: topic) where partitions.contains(partition.index) {
            byLeader[partition.leader, default: []].append(partition.index)
        }
        for (leader, indexes) in byLeader {
            let body: KafkaStruct = ["ReplicaId": -1, "IsolationLevel": 0, "Topics": [.structure(["Name": .string(topic), "Partitions": .array(indexes.map {
                .structure(["PartitionIndex": .int(Int64($0)), "Timestamp": .int(latest ? -1 : -2)])
            })])]]
            let reply = try await connection(toNode: leader, lane: "admin").send(.listOffsetsRequest, body, highest: 7)
            for answer in reply.array("Topics").flatMap({ $0.array("Partitions") }) {
                let code = KafkaErrorCode(Int16(answer.int("ErrorCode")))
                if code.rawValue == 6 || code.rawValue == 74 { invalidate(topic) }
                guard code.rawValue == 0 else { throw code.error("listing offsets of \(topic)-\(answer.int("PartitionIndex"))") }
                result[Int32(answer.int("PartitionIndex"))] = answer["Offset"]?.int ?? answer["OldStyleOffsets"]?.array.first?.int ?? 0
            }
        }
        return result
    }
}

/// Kafka's default partitioner for keyed records: murmur2 of the key, made positive, modulo the
/// partition count — so a key lands on the same partition as with the Java client and kafka-python.
public enum KafkaPartitioner {
    /// Murmur2 (32-bit, seed 0x9747b28c) as Kafka's `Utils.murmur2` computes it.
    public static func murmur2<Bytes: Collection<UInt8>>(_ data: Bytes) -> Int32 {
        let bytes = Array(data)
        let m: UInt32 = 0x5bd1_e995, r: UInt32 = 24
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: bytes.count)
        let whole = bytes.count / 4
        for block in 0..<whole {
            let i = block * 4
            var k = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = whole * 4
        switch bytes.count % 4 {
        case 3:
            h ^= UInt32(bytes[tail + 2]) << 16
            h ^= UInt32(bytes[tail + 1]) << 8
            h ^= UInt32(bytes[tail])
            h = h &* m
        case 2:
            h ^= UInt32(bytes[tail + 1]) << 8
            h ^= UInt32(bytes[tail])
            h = h &* m
        case 1:
            h ^= UInt32(bytes[tail])
            h = h &* m
        default: break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// The partition of `key` among `count`.
    public static func partition<Bytes: Collection<UInt8>>(forKey key: Bytes, count: Int) -> Int32 {
        Int32((Int(murmur2(key)) & 0x7fff_ffff) % max(count, 1))
    }
}
