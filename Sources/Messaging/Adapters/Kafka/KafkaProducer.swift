import DequeModule
import Foundation
import Logging
import NIOCore
import NimbusCore
import Synchronization

/// An idempotent Kafka producer: one producer id and epoch (InitProducerId), a sequence number per
/// partition on every batch, `acks=all`. A batch whose answer is lost (a dropped connection, a
/// timeout, a leader that moved) is sent again with the **same** sequence, and the broker stores it
/// once; batches to one partition go one at a time, so sequences never leave order.
///
/// Keyed records go where Kafka's default partitioner puts them (murmur2 of the key); records
/// without a key go round-robin.
///
/// ```swift
/// let producer = KafkaProducer(cluster: cluster)
/// let placed = try await producer.send([KafkaRecord(key: ByteBuffer(string: "order-7"), value: body, timestamp: now)], to: "orders")
/// ```
public final class KafkaProducer: Sendable {
    /// Where a record was stored.
    public struct Placement: Sendable, Hashable {
        public var partition: Int32
        public var offset: Int64
    }

    /// Tries per batch before the producer gives up (each after a short pause and, for leadership errors, fresh metadata).
    public let attempts: Int
    let cluster: KafkaCluster
    private struct Identity { var id: Int64 = -1, epoch: Int16 = -1, sequences: [String: Int32] = [:] }
    private let identity = Mutex(Identity())
    private let roundRobin = Atomic<Int>(0)
    private let locks = Mutex<[String: KafkaSerialLock]>([:])

    public init(cluster: KafkaCluster, attempts: Int = 5) {
        self.cluster = cluster
        self.attempts = max(attempts, 1)
    }

    /// The producer id and epoch in use (-1 before the first send).
    public var producerID: (id: Int64, epoch: Int16) { identity.withLock { ($0.id, $0.epoch) } }

    /// Stores `records` in `topic` and returns where each went, in order.
    /// - Throws: `notFound` when the topic does not exist; `invalidArgument` for a record the broker
    ///   refuses (too large); `unavailable` when the leader stays unreachable after every attempt.
    public func send(_ records: [KafkaRecord], to topic: String) async throws -> [Placement] {
        let partitions = try await cluster.partitions(of: topic)
        guard !partitions.isEmpty else { throw NimbusError(.unavailable, "Kafka topic '\(topic)' has no partitions yet", retryable: true) }
        var byPartition: [Int32: [(Int, KafkaRecord)]] = [:]
        for (position, record) in records.enumerated() {
            let partition: Int32 = if let key = record.key {
                KafkaPartitioner.partition(forKey: key.readableBytesView, count: partitions.count)
            } else {
                partitions[roundRobin.wrappingAdd(1, ordering: .relaxed).oldValue % partitions.count].index
            }
            byPartition[partition, default: []].append((position, record))
        }
        var placements = [Placement?](repeating: nil, count: records.count)
        try await withThrowingTaskGroup(of: [(Int, Placement)].self) { group in
            for (partition, entries) in byPartition {
                group.addTask {
                    let base = try await self.sendBatch(entries.map(\.1), topic: topic, partition: partition)
                    return entries.enumerated().map { ($0.element.0, Placement(partition: partition, offset: base + Int64($0.offset))) }
                }
            }
            for try await placed in group { for (position, placement) in placed { placements[position] = placement } }
        }
        return placements.map { $0! }
    }

    private func lock(_ key: String) -> KafkaSerialLock {
        locks.withLock { locks in
            if let lock = locks[key] { return lock }
            let lock = KafkaSerialLock()
            locks[key] = lock
            return lock
        }
    }

    /// Sends one batch to one partition, again with the same sequence until it is answered; returns its base offset.
    func sendBatch(_ records: [KafkaRecord], topic: String, partition: Int32) async throws -> Int64 {
        let key = "\(topic)-\(partition)"
        return try await lock(key).run {
            let (id, epoch, sequence) = try await self.sequence(for: key)
            var batch = KafkaRecordBatch(producerID: id, producerEpoch: epoch, baseSequence: sequence, records: records)
            for index in batch.records.indices { batch.records[index].offset = Int64(index) }
            var encoded = ByteBuffer()
            batch.encode(into: &encoded)
            var lastError: (any Error)?
            for attempt in 1...self.attempts {
                if attempt > 1 { try await Task.sleep(for: .milliseconds(100 * (1 << min(attempt - 2, 4)))) }
                do {
                    let leader = try await self.cluster.leader(of: topic, partition: partition)
                    let connection = try await self.cluster.connection(toNode: leader.leader, lane: "produce")
                    let body: KafkaStruct = ["TransactionalId": nil, "Acks": -1, "TimeoutMs": 30_000, "TopicData": [.structure([
                        "Name": .string(topic), "PartitionData": [.structure(["Index": .int(Int64(partition)), "Records": .bytes(encoded)])],
                    ])]]
                    let reply = try await connection.send(.produceRequest, body, highest: 9)
                    guard let answer = reply.array("Responses").first?.array("PartitionResponses").first else {
                        throw NimbusError(.internal, "Kafka answered a Produce to \(key) without that partition")
                    }
                    let code = KafkaErrorCode(Int16(answer.int("ErrorCode")))
                    switch code.rawValue {
                    case 0, 46:
                        // 46 (DUPLICATE_SEQUENCE_NUMBER): an older broker saying it already has this batch.
                        self.advance(key, id: id, by: Int32(records.count))
                        return answer.int("BaseOffset")
                    case 45, 47, 59:
                        // The broker no longer accepts this producer's sequence: start a new producer id.
                        self.reset(id)
                        throw NimbusError(.failedPrecondition, "Kafka refused the batch to \(key) with \(code); it was not stored and the producer was reset — publish again")
                    default:
                        if code.rawValue == 6 || code.rawValue == 74 || code.rawValue == 5 || code.rawValue == 3 { self.cluster.invalidate(topic) }
                        let detail = answer.string("ErrorMessage").map { ": \($0)" } ?? ""
                        guard code.isRetriable else { throw code.error("producing to \(key)\(detail)") }
                        lastError = code.error("producing to \(key)\(detail)")
                    }
                } catch let error as NimbusError where error.code == .unavailable || error.code == .deadlineExceeded {
                    // The answer may have been lost after the broker stored the batch: the same sequence makes the retry safe.
                    self.cluster.invalidate(topic)
                    lastError = error
                }
            }
            // The batch may or may not be stored; a new producer id keeps a later batch from being taken for it.
            self.reset(id)
            throw NimbusError(.unavailable, "producing to Kafka \(key) failed \(self.attempts) times; the last error: \(lastError.map { "\($0)" } ?? "none")",
                              underlying: lastError, retryable: true)
        }
    }

    private func sequence(for key: String) async throws -> (Int64, Int16, Int32) {
        if let current = identity.withLock({ $0.id >= 0 ? ($0.id, $0.epoch, $0.sequences[key] ?? 0) : nil }) { return current }
        let reply = try await cluster.anyConnection().send(.initProducerIdRequest, ["TransactionalId": nil, "TransactionTimeoutMs": .int(Int64(Int32.max))], highest: 4)
        let code = KafkaErrorCode(Int16(reply.int("ErrorCode")))
        guard code.rawValue == 0 else { throw code.error("to InitProducerId") }
        return identity.withLock { identity in
            if identity.id < 0 { identity = Identity(id: reply.int("ProducerId"), epoch: Int16(reply.int("ProducerEpoch"))) }
            return (identity.id, identity.epoch, identity.sequences[key] ?? 0)
        }
    }

    private func advance(_ key: String, id: Int64, by count: Int32) {
        identity.withLock { identity in
            guard identity.id == id else { return }
            identity.sequences[key] = ((identity.sequences[key] ?? 0) &+ count) & Int32.max
        }
    }

    private func reset(_ id: Int64) {
        identity.withLock { identity in if identity.id == id { identity = Identity() } }
    }
}

/// Runs one operation at a time, in call order (a partition's batches, a group's membership changes).
final class KafkaSerialLock: Sendable {
    private let state = Mutex<(busy: Bool, waiting: Deque<CheckedContinuation<Void, Never>>)>((false, []))

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if !state.busy { state.busy = true; return true }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let next = state.waiting.popFirst() { return next }
            state.busy = false
            return nil
        }
        next?.resume()
    }
}
