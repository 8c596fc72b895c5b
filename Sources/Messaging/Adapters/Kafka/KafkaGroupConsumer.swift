import DequeModule
import Foundation
import Logging
import NIOCore
import NimbusCore
import NimbusMessaging
import Synchronization

/// What a Nimbus subscription keeps in its consumer group's committed-offset metadata, so that any
/// client (or process) opening the subscription reads the same settings.
struct KafkaSubscriptionSettings: Codable, Sendable, Hashable {
    var nimbus = 1
    var topic: String
    var ackDeadlineMs: Int64
    var ordered: Bool

    var ackDeadline: Duration { .milliseconds(ackDeadlineMs) }

    func json() -> String { String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self) }

    static func parse(_ text: String?) -> KafkaSubscriptionSettings? {
        guard let text, text.hasPrefix("{") else { return nil }
        return try? JSONDecoder().decode(KafkaSubscriptionSettings.self, from: Data(text.utf8))
    }
}

/// One member of a Kafka consumer group: it joins (JoinGroup/SyncGroup, leading the assignment when
/// the coordinator makes it leader), heartbeats, fetches its partitions, and turns Kafka's offsets
/// into per-message leases.
///
/// Kafka acknowledges by offset, per partition; a subscription acknowledges per message. The member
/// keeps the offsets it fetched and not yet acked, and commits the lowest of them (or the fetch
/// position when none is left): a message is never skipped, and one acked out of order is committed
/// once the ones before it are. Leases, nacks and redelivery after the ack deadline are this
/// member's own; when a partition moves to another member (a rebalance), what was not committed is
/// delivered again there — at least once.
///
/// Assignment is sticky (`nimbus-sticky`: members keep the partitions they own, new ones go to the
/// least loaded, then one at a time from the most to the least loaded); `range` is offered too, so
/// a group shared with other Kafka clients agrees on it.
final class KafkaGroupConsumer: Sendable {
    struct Configuration: Sendable {
        var sessionTimeout: Duration = .seconds(10)
        var heartbeatInterval: Duration = .seconds(1)
        var rebalanceTimeout: Duration = .seconds(30)
        /// The longest one Fetch waits for records at the broker.
        var fetchWait: Duration = .milliseconds(500)
        var fetchMaxBytes: Int32 = 50 << 20
        var partitionMaxBytes: Int32 = 1 << 20
    }

    private struct Pending {
        var record: KafkaRecord
        var partition: Int32
        var notBefore: ContinuousClock.Instant?
        var deliveries: Int
    }

    private struct Lease {
        var pending: Pending
        var deadline: ContinuousClock.Instant
    }

    private struct State {
        var memberID = ""
        var generation: Int32 = -1
        var needsRejoin = true
        var assigned: Set<Int32> = []
        var positions: [Int32: Int64] = [:]
        var ready: [Int32: Deque<Pending>] = [:]
        var leases: [String: Lease] = [:]
        /// Offsets fetched and not acked, per partition (ready or leased).
        var open: [Int32: Set<Int64>] = [:]
        var committed: [Int32: Int64] = [:]
        var receipts = 0
        var stopped = false
    }

    let group: String
    let settings: KafkaSubscriptionSettings
    let cluster: KafkaCluster
    let configuration: Configuration
    let logger: Logger
    private var topic: String { settings.topic }
    private let state = Mutex(State())
    private let membership = KafkaSerialLock()
    private let commits = KafkaSerialLock()
    private let heartbeat = Mutex<Task<Void, Never>?>(nil)
    private var groupLane: String { "group:\(group)" }
    private var fetchLane: String { "fetch:\(group)" }

    init(group: String, settings: KafkaSubscriptionSettings, cluster: KafkaCluster, configuration: Configuration, logger: Logger) {
        self.group = group
        self.settings = settings
        self.cluster = cluster
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Receiving

    func receive(maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        let deadline = ContinuousClock.now + wait
        while true {
            try await ensureMember()
            let now = ContinuousClock.now
            let taken = take(maxMessages, now: now)
            if !taken.isEmpty { return taken }
            let remaining = deadline - now
            if remaining <= .zero { return [] }
            let (assigned, nextDue) = state.withLock { state -> ([Int32], ContinuousClock.Instant?) in
                let due = (state.ready.values.flatMap { $0.compactMap(\.notBefore) } + state.leases.values.map(\.deadline)).min()
                return (Array(state.assigned), due)
            }
            var longest = min(remaining, configuration.fetchWait)
            if let nextDue { longest = max(.zero, min(longest, nextDue - now)) }
            if assigned.isEmpty {
                try await Task.sleep(for: min(longest, .milliseconds(200)) + .milliseconds(1))
            } else {
                try await fetch(assigned, wait: longest)
            }
        }
    }

    /// Hands out ready messages: in offset order per partition, past their `notBefore`, and — for an
    /// ordered subscription — never a key that has a message leased or one waiting ahead of it.
    private func take(_ maximum: Int, now: ContinuousClock.Instant) -> [DeliveredMessage] {
        state.withLock { state in
            expire(&state, now: now)
            var out: [DeliveredMessage] = []
            for partition in state.ready.keys.sorted() where out.count < maximum {
                guard var queue = state.ready[partition] else { continue }
                var blockedKeys = Set<ByteBuffer?>()
                if settings.ordered {
                    for lease in state.leases.values where lease.pending.partition == partition { blockedKeys.insert(lease.pending.record.key) }
                }
                var index = queue.startIndex
                while index < queue.endIndex, out.count < maximum {
                    let pending = queue[index]
                    let key = pending.record.key
                    let due = pending.notBefore.map { $0 <= now } ?? true
                    if settings.ordered, key != nil, blockedKeys.contains(key) { index += 1; continue }
                    guard due else {
                        if settings.ordered, key != nil { blockedKeys.insert(key) }
                        index += 1
                        continue
                    }
                    queue.remove(at: index)
                    var delivered = pending
                    delivered.deliveries += 1
                    delivered.notBefore = nil
                    state.receipts += 1
                    let receipt = "\(state.generation):\(partition):\(pending.record.offset):\(state.receipts)"
                    state.leases[receipt] = Lease(pending: delivered, deadline: now + settings.ackDeadline)
                    if settings.ordered, key != nil { blockedKeys.insert(key) }
                    out.append(Self.message(delivered, receipt: receipt))
                }
                state.ready[partition] = queue
            }
            return out
        }
    }

    private func expire(_ state: inout State, now: ContinuousClock.Instant) {
        for (receipt, lease) in state.leases where lease.deadline <= now {
            state.leases.removeValue(forKey: receipt)
            Self.requeue(lease.pending, notBefore: nil, into: &state)
        }
    }

    private static func requeue(_ pending: Pending, notBefore: ContinuousClock.Instant?, into state: inout State) {
        guard state.assigned.contains(pending.partition) else { return }
        var entry = pending
        entry.notBefore = notBefore
        var queue = state.ready[pending.partition] ?? []
        let at = queue.firstIndex { $0.record.offset > pending.record.offset } ?? queue.endIndex
        queue.insert(entry, at: at)
        state.ready[pending.partition] = queue
    }

    private static func message(_ pending: Pending, receipt: String) -> DeliveredMessage {
        var attributes: [String: String] = [:]
        for header in pending.record.headers { attributes[header.key] = header.value.map { String(buffer: $0) } ?? "" }
        return DeliveredMessage(id: "\(pending.partition)-\(pending.record.offset)", receipt: receipt, body: pending.record.value ?? ByteBuffer(),
                                attributes: attributes, orderingKey: pending.record.key.map { String(buffer: $0) }, deliveryAttempt: pending.deliveries,
                                publishedAt: Date(timeIntervalSince1970: Double(pending.record.timestamp) / 1000))
    }

    private func fetch(_ partitions: [Int32], wait: Duration) async throws {
        var byLeader: [Int32: [Int32]] = [:]
        for partition in try await cluster.partitions(of: topic) where partitions.contains(partition.index) {
            byLeader[partition.leader, default: []].append(partition.index)
        }
        for (leader, indexes) in byLeader.sorted(by: { $0.key < $1.key }) {
            let positions = state.withLock { state in indexes.compactMap { index in state.positions[index].map { (index, $0) } } }
            guard !positions.isEmpty else { continue }
            let body: KafkaStruct = ["ReplicaId": -1, "MaxWaitMs": .int(Int64(wait.nimbusMilliseconds)), "MinBytes": 1, "MaxBytes": .int(Int64(configuration.fetchMaxBytes)),
                                     "IsolationLevel": 0, "SessionId": 0, "SessionEpoch": -1, "Topics": [.structure([
                                        "Topic": .string(topic), "Partitions": .array(positions.map { index, offset in
                                            .structure(["Partition": .int(Int64(index)), "FetchOffset": .int(offset),
                                                        "PartitionMaxBytes": .int(Int64(configuration.partitionMaxBytes))])
                                        }),
                                     ])], "ForgottenTopicsData": [], "RackId": ""]
            let reply: KafkaStruct
            do {
                let connection = try await cluster.connection(toNode: leader, lane: fetchLane)
                reply = try await connection.send(.fetchRequest, body, version: try connection.version(for: .fetchRequest, highest: 12),
                                                  timeout: wait + cluster.bootstrap.requestTimeout)
            } catch let error as NimbusError where error.code == .unavailable {
                cluster.invalidate(topic)
                logger.debug("Kafka fetch failed; retrying", metadata: ["group": "\(group)", "error": "\(error)"])
                try await Task.sleep(for: .milliseconds(100))
                continue
            }
            let top = KafkaErrorCode(Int16(reply.int("ErrorCode")))
            guard top.rawValue == 0 else { throw top.error("to a Fetch of \(topic)") }
            for answer in reply.array("Responses").flatMap({ $0.array("Partitions") }) {
                let partition = Int32(answer.int("PartitionIndex"))
                let code = KafkaErrorCode(Int16(answer.int("ErrorCode")))
                switch code.rawValue {
                case 0:
                    let batches: [KafkaRecordBatch]
                    do { batches = try answer.bytes("Records").map { try KafkaRecordBatch.decodeAll($0) } ?? [] }
                    catch {
                        let position = state.withLock { $0.positions[partition] ?? -1 }
                        throw NimbusError(.dataLoss, "the records of Kafka \(topic)-\(partition) from offset \(position) do not decode: \(error); nothing was delivered from them, the next receive fetches them again",
                                          underlying: error)
                    }
                    accept(batches, partition: partition)
                case 1:
                    // OFFSET_OUT_OF_RANGE: the records were deleted by retention; go on from the first one kept.
                    let earliest = try await cluster.offsets(of: topic, partitions: [partition], latest: false)
                    state.withLock { state in if let offset = earliest[partition] { state.positions[partition] = offset } }
                    logger.warning("Kafka records before the log start were deleted before they were consumed",
                                   metadata: ["group": "\(group)", "partition": "\(topic)-\(partition)"])
                default:
                    guard code.isRetriable else { throw code.error("fetching \(topic)-\(partition)") }
                    cluster.invalidate(topic)
                }
            }
        }
    }

    private func accept(_ batches: [KafkaRecordBatch], partition: Int32) {
        state.withLock { state in
            guard state.assigned.contains(partition), var position = state.positions[partition] else { return }
            var queue = state.ready[partition] ?? []
            for batch in batches {
                if batch.isControl {
                    position = max(position, (batch.records.last?.offset ?? batch.baseOffset) + 1)
                    continue
                }
                for record in batch.records where record.offset >= position {
                    queue.append(Pending(record: record, partition: partition, notBefore: nil, deliveries: 0))
                    state.open[partition, default: []].insert(record.offset)
                    position = record.offset + 1
                }
            }
            state.positions[partition] = position
            state.ready[partition] = queue
        }
    }

    // MARK: Settling

    func ack(_ receipts: [String]) async throws {
        let touched = try settle(receipts) { state, lease in
            state.open[lease.pending.partition]?.remove(lease.pending.record.offset)
        }
        try await commit(Set(touched))
    }

    func nack(_ receipts: [String], delay: Duration) throws {
        let notBefore = delay > .zero ? ContinuousClock.now + delay : nil
        _ = try settle(receipts) { state, lease in Self.requeue(lease.pending, notBefore: notBefore, into: &state) }
    }

    func extend(_ receipts: [String], to deadline: Duration) throws {
        let until = ContinuousClock.now + deadline
        try state.withLock { state in
            for receipt in receipts {
                guard state.leases[receipt] != nil else { throw Self.passed(receipt, group: group) }
                state.leases[receipt]?.deadline = until
            }
        }
    }

    private func settle(_ receipts: [String], _ apply: (inout State, Lease) -> Void) throws -> [Int32] {
        try state.withLock { state in
            expire(&state, now: .now)
            for receipt in receipts where state.leases[receipt] == nil { throw Self.passed(receipt, group: group) }
            return receipts.compactMap { receipt in
                guard let lease = state.leases.removeValue(forKey: receipt) else { return nil }
                apply(&state, lease)
                return lease.pending.partition
            }
        }
    }

    private static func passed(_ receipt: String, group: String) -> NimbusError {
        NimbusError(.failedPrecondition, "the lease of \(receipt) on Kafka subscription '\(group)' has passed, was settled, or its partition moved to another member")
    }

    /// Commits, for each partition, the lowest offset not yet acked.
    func commit(_ partitions: Set<Int32>? = nil) async throws {
        try await commits.run {
            let (generation, member, offsets) = self.state.withLock { state -> (Int32, String, [Int32: Int64]) in
                var offsets: [Int32: Int64] = [:]
                for partition in partitions ?? state.assigned where state.assigned.contains(partition) {
                    guard let position = state.positions[partition] else { continue }
                    let point = state.open[partition]?.min() ?? position
                    if point > state.committed[partition] ?? -1 { offsets[partition] = point }
                }
                return (state.generation, state.memberID, offsets)
            }
            guard !offsets.isEmpty, generation >= 0 else { return }
            let metadata = self.settings.json()
            let body: KafkaStruct = ["GroupId": .string(self.group), "GenerationIdOrMemberEpoch": .int(Int64(generation)), "MemberId": .string(member),
                                     "Topics": [.structure(["Name": .string(self.topic), "Partitions": .array(offsets.sorted { $0.key < $1.key }.map {
                                        .structure(["PartitionIndex": .int(Int64($0.key)), "CommittedOffset": .int($0.value), "CommittedMetadata": .string(metadata)])
                                     })])]]
            let reply = try await self.cluster.coordinator(of: self.group, lane: self.groupLane).send(.offsetCommitRequest, body, highest: 8)
            for answer in reply.array("Topics").flatMap({ $0.array("Partitions") }) {
                let partition = Int32(answer.int("PartitionIndex"))
                let code = KafkaErrorCode(Int16(answer.int("ErrorCode")))
                switch code.rawValue {
                case 0: self.state.withLock { $0.committed[partition] = max($0.committed[partition] ?? -1, offsets[partition] ?? -1) }
                case 27, 22, 25:
                    // The group is rebalancing: the acks stay recorded and are committed after rejoining, if the partition stays here.
                    self.state.withLock { state in
                        state.needsRejoin = true
                        if code.rawValue == 25 { state.memberID = "" }
                    }
                case 14, 15, 16: self.cluster.forgetCoordinator(of: self.group)
                default: throw code.error("committing \(self.topic)-\(partition) for group '\(self.group)'")
                }
            }
        }
    }

    // MARK: Membership

    private func ensureMember() async throws {
        guard state.withLock({ $0.needsRejoin && !$0.stopped }) else {
            if state.withLock({ $0.stopped }) { throw NimbusError(.failedPrecondition, "the Kafka consumer of '\(group)' was stopped") }
            return
        }
        try await membership.run { try await self.rejoinIfNeeded() }
        startHeartbeat()
    }

    private func rejoinIfNeeded() async throws {
        guard state.withLock({ $0.needsRejoin && !$0.stopped }) else { return }
        try? await commit()
        var attempt = 0
        while true {
            attempt += 1
            if attempt > 1 { try await Task.sleep(for: .milliseconds(min(50 * attempt, 1000))) }
            if attempt > 30 { throw NimbusError(.unavailable, "could not join Kafka consumer group '\(group)' after \(attempt - 1) attempts", retryable: true) }
            let coordinator: KafkaConnection
            do { coordinator = try await cluster.coordinator(of: group, lane: groupLane) }
            catch let error as NimbusError where error.isRetryable { cluster.forgetCoordinator(of: group); continue }
            let (member, owned) = state.withLock { ($0.memberID, $0.assigned.sorted()) }
            let subscription = try Self.encodeEmbedded(.consumerProtocolSubscription, version: 1, [
                "Topics": [.string(topic)], "UserData": nil,
                "OwnedPartitions": [.structure(["Topic": .string(topic), "Partitions": .array(owned.map { .int(Int64($0)) })])],
            ])
            let join = try await coordinator.send(.joinGroupRequest, [
                "GroupId": .string(group), "SessionTimeoutMs": .int(Int64(configuration.sessionTimeout.nimbusMilliseconds)),
                "RebalanceTimeoutMs": .int(Int64(configuration.rebalanceTimeout.nimbusMilliseconds)), "MemberId": .string(member),
                "GroupInstanceId": nil, "ProtocolType": "consumer",
                "Protocols": [.structure(["Name": "nimbus-sticky", "Metadata": .bytes(subscription)]), .structure(["Name": "range", "Metadata": .bytes(subscription)])],
            ], version: try coordinator.version(for: .joinGroupRequest, highest: 7), timeout: configuration.rebalanceTimeout + cluster.bootstrap.requestTimeout)
            let code = KafkaErrorCode(Int16(join.int("ErrorCode")))
            switch code.rawValue {
            case 0: break
            case 79: state.withLock { $0.memberID = join.string("MemberId") ?? "" }; attempt = 0; continue
            case 25: state.withLock { $0.memberID = "" }; continue
            case 27: continue
            case 14, 15, 16: cluster.forgetCoordinator(of: group); continue
            default: throw code.error("joining consumer group '\(group)'")
            }
            let memberID = join.string("MemberId") ?? member
            let generation = Int32(join.int("GenerationId"))
            let protocolName = join.string("ProtocolName") ?? "range"
            var assignments: [KafkaValue] = []
            if join.string("Leader") == memberID {
                let plan = try await assign(join.array("Members"), protocol: protocolName)
                assignments = try plan.sorted { $0.key < $1.key }.map { member, partitions in
                    .structure(["MemberId": .string(member), "Assignment": .bytes(try Self.encodeEmbedded(.consumerProtocolAssignment, version: 0, [
                        "AssignedPartitions": .array(partitions.sorted { $0.key < $1.key }.map {
                            .structure(["Topic": .string($0.key), "Partitions": .array($0.value.sorted().map { .int(Int64($0)) })])
                        }), "UserData": nil,
                    ]))])
                }
            }
            let sync = try await coordinator.send(.syncGroupRequest, [
                "GroupId": .string(group), "GenerationId": .int(Int64(generation)), "MemberId": .string(memberID), "GroupInstanceId": nil,
                "ProtocolType": "consumer", "ProtocolName": .string(protocolName), "Assignments": .array(assignments),
            ], version: try coordinator.version(for: .syncGroupRequest, highest: 5), timeout: configuration.rebalanceTimeout + cluster.bootstrap.requestTimeout)
            let syncCode = KafkaErrorCode(Int16(sync.int("ErrorCode")))
            switch syncCode.rawValue {
            case 0: break
            case 27, 22: state.withLock { $0.memberID = memberID }; continue
            case 25: state.withLock { $0.memberID = "" }; continue
            case 14, 15, 16: cluster.forgetCoordinator(of: group); continue
            default: throw syncCode.error("syncing consumer group '\(group)'")
            }
            var mine: Set<Int32> = []
            if let bytes = sync.bytes("Assignment"), bytes.readableBytes > 0 {
                let assignment = try Self.decodeEmbedded(.consumerProtocolAssignment, bytes)
                for entry in assignment.array("AssignedPartitions") where entry.string("Topic") == topic {
                    mine.formUnion((entry["Partitions"]?.array ?? []).compactMap { $0.int.map { Int32($0) } })
                }
            }
            try await adopt(mine, generation: generation, memberID: memberID)
            // Acks refused while the group rebalanced are committed now, for the partitions that stayed.
            try? await commit()
            return
        }
    }

    /// Takes the new assignment: partitions that left are forgotten (their unacked messages will be
    /// delivered by their new owner), new ones start from the committed offset.
    private func adopt(_ mine: Set<Int32>, generation: Int32, memberID: String) async throws {
        let fresh = state.withLock { state -> [Int32] in
            for partition in state.assigned.subtracting(mine) {
                state.ready.removeValue(forKey: partition)
                state.open.removeValue(forKey: partition)
                state.positions.removeValue(forKey: partition)
                state.committed.removeValue(forKey: partition)
                state.leases = state.leases.filter { $0.value.pending.partition != partition }
            }
            return Array(mine.subtracting(state.assigned))
        }
        var starts: [Int32: Int64] = [:]
        if !fresh.isEmpty {
            let committed = try await KafkaGroupConsumer.committedOffsets(group: group, topic: topic, partitions: fresh, cluster: cluster, lane: groupLane)
            let missing = fresh.filter { (committed[$0] ?? -1) < 0 }
            let earliest = missing.isEmpty ? [:] : try await cluster.offsets(of: topic, partitions: missing, latest: false)
            for partition in fresh { starts[partition] = (committed[partition] ?? -1) >= 0 ? committed[partition]! : earliest[partition] ?? 0 }
        }
        state.withLock { state in
            state.assigned = mine
            state.generation = generation
            state.memberID = memberID
            state.needsRejoin = false
            for (partition, offset) in starts {
                state.positions[partition] = offset
                state.committed[partition] = offset
                state.ready[partition] = []
                state.open[partition] = []
            }
        }
        logger.debug("joined Kafka consumer group", metadata: ["group": "\(group)", "generation": "\(generation)", "partitions": "\(mine.sorted())"])
    }

    /// The plan of the group's leader: member → topic → partitions.
    private func assign(_ members: [KafkaStruct], protocol name: String) async throws -> [String: [String: [Int32]]] {
        var subscriptions: [(member: String, topics: [String], owned: [String: [Int32]])] = []
        for member in members {
            guard let id = member.string("MemberId"), let metadata = member.bytes("Metadata") else { continue }
            let decoded = try Self.decodeEmbedded(.consumerProtocolSubscription, metadata)
            var owned: [String: [Int32]] = [:]
            for entry in decoded.array("OwnedPartitions") {
                owned[entry.string("Topic") ?? "", default: []] += (entry["Partitions"]?.array ?? []).compactMap { $0.int.map { Int32($0) } }
            }
            subscriptions.append((id, (decoded["Topics"]?.array ?? []).compactMap(\.string), owned))
        }
        subscriptions.sort { $0.member < $1.member }
        var plan: [String: [String: [Int32]]] = Dictionary(uniqueKeysWithValues: subscriptions.map { ($0.member, [:]) })
        for topic in Set(subscriptions.flatMap(\.topics)).sorted() {
            let partitions = try await cluster.partitions(of: topic, refresh: true).map(\.index).sorted()
            let takers = subscriptions.filter { $0.topics.contains(topic) }
            let owned = takers.map { taker in (taker.member, (taker.owned[topic] ?? []).filter(partitions.contains)) }
            for (member, split) in KafkaAssignor.assign(partitions: partitions, members: takers.map(\.member), owned: Dictionary(owned) { first, _ in first },
                                                        sticky: name == "nimbus-sticky") {
                plan[member, default: [:]][topic] = split
            }
        }
        return plan
    }

    private func startHeartbeat() {
        heartbeat.withLock { task in
            guard task == nil else { return }
            task = Task { [weak self] in
                while !Task.isCancelled {
                    guard let self else { return }
                    try? await Task.sleep(for: self.configuration.heartbeatInterval)
                    if Task.isCancelled { return }
                    await self.beat()
                }
            }
        }
    }

    private func beat() async {
        let (member, generation, rejoin, stopped) = state.withLock { ($0.memberID, $0.generation, $0.needsRejoin, $0.stopped) }
        if stopped { return }
        if !rejoin {
            do {
                let reply = try await cluster.coordinator(of: group, lane: groupLane).send(.heartbeatRequest, [
                    "GroupId": .string(group), "GenerationId": .int(Int64(generation)), "MemberId": .string(member), "GroupInstanceId": nil,
                ], highest: 4)
                let code = KafkaErrorCode(Int16(reply.int("ErrorCode")))
                switch code.rawValue {
                case 0: return
                case 27, 22: state.withLock { $0.needsRejoin = true }
                case 25: state.withLock { $0.needsRejoin = true; $0.memberID = "" }
                case 14, 15, 16: cluster.forgetCoordinator(of: group); return
                default: logger.warning("Kafka heartbeat refused", metadata: ["group": "\(group)", "error": "\(code)"]); return
                }
            } catch {
                logger.debug("Kafka heartbeat failed", metadata: ["group": "\(group)", "error": "\(error)"])
                return
            }
        }
        do { try await membership.run { try await self.rejoinIfNeeded() } }
        catch { logger.warning("rejoining Kafka consumer group failed", metadata: ["group": "\(group)", "error": "\(error)"]) }
    }

    /// Commits what was acked, leaves the group (its partitions go to the other members at once) and closes the connections.
    func stop() async {
        let task = heartbeat.withLock { task -> Task<Void, Never>? in defer { task = nil }; return task }
        task?.cancel()
        try? await commit()
        let (member, wasMember) = state.withLock { state -> (String, Bool) in
            state.stopped = true
            return (state.memberID, state.generation >= 0 && !state.memberID.isEmpty)
        }
        if wasMember, let coordinator = try? await cluster.coordinator(of: group, lane: groupLane),
           let version = try? coordinator.version(for: .leaveGroupRequest, highest: 4) {
            let body: KafkaStruct = version >= 3 ? ["GroupId": .string(group), "Members": [.structure(["MemberId": .string(member), "GroupInstanceId": nil])]]
                                                 : ["GroupId": .string(group), "MemberId": .string(member)]
            _ = try? await coordinator.send(.leaveGroupRequest, body, version: version)
        }
        await cluster.closeLane(groupLane)
        await cluster.closeLane(fetchLane)
    }

    // MARK: Helpers

    /// The committed offsets of `group` for `partitions` of `topic` (-1 where none).
    static func committedOffsets(group: String, topic: String, partitions: [Int32], cluster: KafkaCluster, lane: String) async throws -> [Int32: Int64] {
        let reply = try await cluster.coordinator(of: group, lane: lane).send(.offsetFetchRequest, [
            "GroupId": .string(group), "Topics": [.structure(["Name": .string(topic), "PartitionIndexes": .array(partitions.map { .int(Int64($0)) })])],
        ], highest: 7)
        let code = KafkaErrorCode(Int16(reply.int("ErrorCode")))
        if code.rawValue == 14 || code.rawValue == 15 || code.rawValue == 16 { cluster.forgetCoordinator(of: group) }
        guard code.rawValue == 0 else { throw code.error("fetching the offsets of group '\(group)'") }
        var offsets: [Int32: Int64] = [:]
        for answer in reply.array("Topics").filter({ $0.string("Name") == topic }).flatMap({ $0.array("Partitions") }) {
            let partitionCode = KafkaErrorCode(Int16(answer.int("ErrorCode")))
            guard partitionCode.rawValue == 0 else { throw partitionCode.error("fetching the offset of \(topic)-\(answer.int("PartitionIndex")) for group '\(group)'") }
            offsets[Int32(answer.int("PartitionIndex"))] = answer.int("CommittedOffset")
        }
        return offsets
    }

    /// The consumer-protocol structures travel as a version (int16) and the fields of that version.
    static func encodeEmbedded(_ schema: KafkaSchema, version: Int16, _ value: KafkaStruct) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(version)
        try schema.encode(value, version: version, into: &buffer)
        return buffer
    }

    static func decodeEmbedded(_ schema: KafkaSchema, _ bytes: ByteBuffer) throws -> KafkaStruct {
        var buffer = bytes
        guard let version = buffer.readInteger(as: Int16.self), version >= 0 else { throw KafkaProtocolError("\(schema.name) without a version") }
        // Later versions only add fields at the end: read what this client knows.
        return try schema.decode(&buffer, version: min(version, schema.validVersions.highest))
    }
}

/// The two assignment strategies a Nimbus group leader runs.
enum KafkaAssignor {
    /// Splits `partitions` among `members`. Sticky: each keeps what it owns (a partition claimed
    /// twice stays with the first claimant), the rest go to the least loaded, then single moves even
    /// out the load. Range (Kafka's `range`): contiguous runs, the first members one longer.
    static func assign(partitions: [Int32], members: [String], owned: [String: [Int32]], sticky: Bool) -> [String: [Int32]] {
        let members = members.sorted()
        guard !members.isEmpty else { return [:] }
        var plan = Dictionary(uniqueKeysWithValues: members.map { ($0, [Int32]()) })
        if !sticky {
            let share = partitions.count / members.count, extra = partitions.count % members.count
            var next = 0
            for (index, member) in members.enumerated() {
                let count = share + (index < extra ? 1 : 0)
                plan[member] = Array(partitions[next..<next + count])
                next += count
            }
            return plan
        }
        var taken = Set<Int32>()
        for member in members {
            for partition in owned[member] ?? [] where !taken.contains(partition) {
                taken.insert(partition)
                plan[member]!.append(partition)
            }
        }
        for partition in partitions where !taken.contains(partition) {
            let least = members.min { (plan[$0]!.count, $0) < (plan[$1]!.count, $1) }!
            plan[least]!.append(partition)
        }
        while true {
            let most = members.max { (plan[$0]!.count, $1) < (plan[$1]!.count, $0) }!
            let least = members.min { (plan[$0]!.count, $0) < (plan[$1]!.count, $1) }!
            guard plan[most]!.count - plan[least]!.count > 1 else { break }
            plan[least]!.append(plan[most]!.removeLast())
        }
        return plan.mapValues { $0.sorted() }
    }
}
