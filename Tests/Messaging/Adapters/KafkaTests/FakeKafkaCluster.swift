import Foundation
import NIOCore
import NimbusCore
@testable import NimbusMessagingKafka
import Synchronization

/// A one-broker Kafka cluster for tests, answering through ``FakeKafkaBroker`` (which decodes every
/// request by Apache Kafka's JSON definitions): topics with partition logs, produce with the
/// idempotent producer's rules (a repeated sequence is stored once and answered with its first
/// offsets; a gap is OUT_OF_ORDER_SEQUENCE_NUMBER), fetch with long polling, list offsets, and a
/// group coordinator — JoinGroup waits for every member, the leader's SyncGroup plan goes to all,
/// heartbeats answer REBALANCE_IN_PROGRESS while one runs, silent members expire after their session
/// timeout, and commits are refused from stale generations. Tests inject documented errors.
final class FakeKafkaCluster: Sendable {
    struct StoredBatch {
        var batch: KafkaRecordBatch
        var lastOffset: Int64 { batch.baseOffset + Int64(batch.records.count) - 1 }
    }

    struct Log {
        var batches: [StoredBatch] = []
        var end: Int64 = 0
        /// Per producer id: epoch, the last sequence stored, and the recent batches (first sequence → base offset).
        var producers: [Int64: (epoch: Int16, lastSequence: Int32, recent: [(first: Int32, last: Int32, base: Int64)])] = [:]
    }

    struct Member {
        var protocols: [(name: String, metadata: ByteBuffer)]
        var sessionTimeout: Duration
        var rebalanceTimeout: Duration
        var lastSeen: ContinuousClock.Instant
    }

    enum Phase: String { case empty = "Empty", preparing = "PreparingRebalance", awaitingSync = "CompletingRebalance", stable = "Stable" }

    struct Group {
        var members: [String: Member] = [:]
        var generation: Int32 = 0
        var phase = Phase.empty
        var leader: String?
        var protocolName: String?
        var rebalanceStarted = ContinuousClock.now
        var pendingJoins: [String: (version: Int16, slot: OneShot<KafkaStruct>)] = [:]
        var pendingSyncs: [String: OneShot<KafkaStruct>] = [:]
        var assignments: [String: ByteBuffer] = [:]
        var offsets: [String: [Int32: (offset: Int64, metadata: String?)]] = [:]
        var exists: Bool { !members.isEmpty || !offsets.isEmpty }
    }

    struct State {
        var port = 0
        var topics: [String: [Log]] = [:]
        var topicIDs: [String: UUID] = [:]
        var groups: [String: Group] = [:]
        var nextProducer: Int64 = 1000
        var nextMember = 0
        /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
        var issuedMembers: Set<String> = []
        /// Errors to answer instead of doing the work: API name → codes, first first.
        var injected: [String: [Int16]] = [:]
        var dropProduceAnswers = 0
        /// Fetch answers whose records get one byte flipped (a CRC failure).
        var corruptFetches = 0
        var defaultPartitions = 3
    }

    let state = Mutex(State())
    private let reaper = Mutex<Task<Void, Never>?>(nil)
    private(set) nonisolated(unsafe) var broker: FakeKafkaBroker!

    static func start(defaultPartitions: Int = 3) async throws -> FakeKafkaCluster {
        let cluster = FakeKafkaCluster()
        cluster.state.withLock { $0.defaultPartitions = defaultPartitions }
        cluster.broker = try await FakeKafkaBroker.start { [weak cluster] request in
            guard let cluster else { return .close }
            return await cluster.handle(request)
        }
        cluster.state.withLock { $0.port = cluster.broker.port }
        cluster.reaper.withLock { task in
            task = Task { [weak cluster] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                    cluster?.expireMembers()
                }
            }
        }
        return cluster
    }

    var port: Int { broker.port }
    var url: String { "kafka://127.0.0.1:\(port)?connect_timeout=30s&heartbeat=200ms&session_timeout=6s" }

    func stop() async {
        reaper.withLock { $0?.cancel() }
        await broker.stop()
    }

    /// The next `times` requests named `api` (`"ProduceRequest"`) are answered with `code` and not carried out.
    func inject(_ api: String, code: Int16, times: Int = 1) {
        state.withLock { $0.injected[api, default: []] += Array(repeating: code, count: times) }
    }

    /// The next produce is stored, then the connection closes before the answer (a lost response).
    func dropNextProduceAnswer() { state.withLock { $0.dropProduceAnswers += 1 } }

    /// Starts a rebalance of `group`, as a new member or a coordinator move would.
    func triggerRebalance(_ group: String) {
        state.withLock { state in
            guard var entry = state.groups[group], !entry.members.isEmpty else { return }
            Self.startRebalance(&entry)
            state.groups[group] = entry
        }
    }

    /// Every record stored in `topic`, per partition.
    func records(_ topic: String) -> [[KafkaRecord]] {
        state.withLock { state in (state.topics[topic] ?? []).map { $0.batches.flatMap(\.batch.records) } }
    }

    func groupGeneration(_ group: String) -> Int32 { state.withLock { $0.groups[group]?.generation ?? -1 } }
    func groupMembers(_ group: String) -> Int { state.withLock { $0.groups[group]?.members.count ?? 0 } }

    private func takeInjected(_ api: String) -> Int16? {
        state.withLock { state in
            guard var codes = state.injected[api], !codes.isEmpty else { return nil }
            let code = codes.removeFirst()
            state.injected[api] = codes
            return code
        }
    }

    // MARK: Requests

    func handle(_ request: FakeKafkaBroker.Request) async -> FakeKafkaBroker.Answer {
        let body = request.body
        let injected = takeInjected(request.name)
        switch request.name {
        case "ApiVersionsRequest": return .respond(FakeKafkaBroker.apiVersions())
        case "MetadataRequest": return .respond(metadata(body))
        case "CreateTopicsRequest": return .respond(createTopics(body))
        case "DeleteTopicsRequest": return .respond(deleteTopics(body, version: request.version))
        case "InitProducerIdRequest":
            let id = state.withLock { state in defer { state.nextProducer += 1 }; return state.nextProducer }
            return .respond(["ThrottleTimeMs": 0, "ErrorCode": .int(Int64(injected ?? 0)), "ProducerId": .int(id), "ProducerEpoch": 0])
        case "ProduceRequest": return produce(body, injected: injected)
        case "FetchRequest": return .respond(await fetch(body))
        case "ListOffsetsRequest": return .respond(listOffsets(body))
        case "FindCoordinatorRequest":
            let port = Int64(state.withLock { $0.port })
            return .respond(["ThrottleTimeMs": 0, "ErrorCode": .int(Int64(injected ?? 0)), "ErrorMessage": nil, "NodeId": 1, "Host": "127.0.0.1", "Port": .int(port),
                             "Coordinators": .array(((body["CoordinatorKeys"]?.array) ?? []).map {
                                 .structure(["Key": $0, "NodeId": 1, "Host": "127.0.0.1", "Port": .int(port), "ErrorCode": 0, "ErrorMessage": nil])
                             })])
        case "JoinGroupRequest": return .respond(await join(body, version: request.version, injected: injected))
        case "SyncGroupRequest": return .respond(await sync(body, injected: injected))
        case "HeartbeatRequest": return .respond(["ThrottleTimeMs": 0, "ErrorCode": .int(Int64(injected ?? heartbeat(body)))])
        case "LeaveGroupRequest": return .respond(leave(body, version: request.version))
        case "OffsetCommitRequest": return .respond(commit(body, injected: injected))
        case "OffsetFetchRequest": return .respond(offsetFetch(body))
        case "ListGroupsRequest":
            let groups = state.withLock { state in state.groups.filter { $0.value.exists }.sorted { $0.key < $1.key }.map { name, group -> KafkaValue in
                .structure(["GroupId": .string(name), "ProtocolType": "consumer", "GroupState": .string(group.phase.rawValue), "GroupType": "classic"])
            } }
            return .respond(["ThrottleTimeMs": 0, "ErrorCode": 0, "Groups": .array(groups)])
        case "DeleteGroupsRequest":
            let results = state.withLock { state in (body["GroupsNames"]?.array ?? []).compactMap(\.string).map { name -> KafkaValue in
                let code: Int64
                if let group = state.groups[name], group.exists {
                    if group.members.isEmpty { state.groups.removeValue(forKey: name); code = 0 } else { code = 68 }
                } else { code = 69 }
                return .structure(["GroupId": .string(name), "ErrorCode": .int(code)])
            } }
            return .respond(["ThrottleTimeMs": 0, "Results": .array(results)])
        default:
            broker.note("the fake cluster does not serve \(request.name)")
            return .close
        }
    }

    private func topicEntry(_ name: String, logs: [Log]?, id: UUID?) -> KafkaValue {
        guard let logs else {
            return .structure(["ErrorCode": 3, "Name": .string(name), "TopicId": .uuid(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))),
                               "IsInternal": false, "Partitions": []])
        }
        return .structure(["ErrorCode": 0, "Name": .string(name), "TopicId": .uuid(id ?? UUID()), "IsInternal": false, "Partitions": .array(logs.indices.map {
            .structure(["ErrorCode": 0, "PartitionIndex": .int(Int64($0)), "LeaderId": 1, "LeaderEpoch": 0, "ReplicaNodes": [1], "IsrNodes": [1], "OfflineReplicas": []])
        })])
    }

    private func metadata(_ body: KafkaStruct) -> KafkaStruct {
        state.withLock { state in
            let names: [String] = body["Topics"]?.isNull ?? true ? state.topics.keys.sorted() : body.array("Topics").compactMap { $0.string("Name") }
            return ["ThrottleTimeMs": 0, "Brokers": [.structure(["NodeId": 1, "Host": "127.0.0.1", "Port": .int(Int64(state.port)), "Rack": nil])],
                    "ClusterId": "fake-cluster", "ControllerId": 1,
                    "Topics": .array(names.map { topicEntry($0, logs: state.topics[$0], id: state.topicIDs[$0]) })]
        }
    }

    private func createTopics(_ body: KafkaStruct) -> KafkaStruct {
        state.withLock { state in
            let results = body.array("Topics").map { topic -> KafkaValue in
                let name = topic.string("Name") ?? ""
                let requested = Int(topic.int("NumPartitions"))
                let count = requested == -1 ? state.defaultPartitions : requested
                var code: Int64 = 0, message: KafkaValue = nil
                if state.topics[name] != nil { code = 36; message = .string("Topic '\(name)' already exists.") }
                else if count < 1 { code = 37; message = "Number of partitions must be larger than 0." }
                else { state.topics[name] = Array(repeating: Log(), count: count); state.topicIDs[name] = UUID() }
                return .structure(["Name": .string(name), "TopicId": .uuid(state.topicIDs[name] ?? UUID()), "ErrorCode": .int(code), "ErrorMessage": message,
                                   "NumPartitions": .int(Int64(count)), "ReplicationFactor": 1, "Configs": []])
            }
            return ["ThrottleTimeMs": 0, "Topics": .array(results)]
        }
    }

    private func deleteTopics(_ body: KafkaStruct, version: Int16) -> KafkaStruct {
        state.withLock { state in
            let names = version >= 6 ? body.array("Topics").compactMap { $0.string("Name") } : (body["TopicNames"]?.array ?? []).compactMap(\.string)
            return ["ThrottleTimeMs": 0, "Responses": .array(names.map { name in
                let existed = state.topics.removeValue(forKey: name) != nil
                for key in state.groups.keys { state.groups[key]?.offsets.removeValue(forKey: name) }
                return .structure(["Name": .string(name), "TopicId": .uuid(state.topicIDs[name] ?? UUID()), "ErrorCode": existed ? 0 : 3, "ErrorMessage": nil])
            })]
        }
    }

    private func produce(_ body: KafkaStruct, injected: Int16?) -> FakeKafkaBroker.Answer {
        var drop = false
        let responses = state.withLock { state -> [KafkaValue] in
            if state.dropProduceAnswers > 0, injected == nil { state.dropProduceAnswers -= 1; drop = true }
            return body.array("TopicData").map { topic -> KafkaValue in
                let name = topic.string("Name") ?? ""
                return .structure(["Name": .string(name), "PartitionResponses": .array(topic.array("PartitionData").map { data -> KafkaValue in
                    let index = Int(data.int("Index"))
                    func answer(_ code: Int16, _ base: Int64 = -1, _ message: String? = nil) -> KafkaValue {
                        .structure(["Index": .int(Int64(index)), "ErrorCode": .int(Int64(code)), "BaseOffset": .int(base), "LogAppendTimeMs": -1,
                                    "LogStartOffset": 0, "RecordErrors": [], "ErrorMessage": message.map { .string($0) } ?? nil])
                    }
                    if let injected { return answer(injected) }
                    guard var logs = state.topics[name], logs.indices.contains(index) else { return answer(3) }
                    let batches: [KafkaRecordBatch]
                    do { batches = try KafkaRecordBatch.decodeAll(data.bytes("Records") ?? ByteBuffer()) }
                    catch { return answer(2, -1, "\(error)") }
                    guard batches.count == 1, var batch = batches.first else { return answer(42, -1, "one batch per partition is expected") }
                    var log = logs[index]
                    if batch.producerID >= 0 {
                        let count = Int32(batch.records.count)
                        let last = batch.baseSequence + count - 1
                        if let known = log.producers[batch.producerID] {
                            if batch.producerEpoch < known.epoch { return answer(47) }
                            if let duplicate = known.recent.first(where: { $0.first == batch.baseSequence && $0.last == last }) { return answer(0, duplicate.base) }
                            guard batch.baseSequence == known.lastSequence &+ 1 else { return answer(45, -1, "expected sequence \(known.lastSequence &+ 1), got \(batch.baseSequence)") }
                        } else if batch.baseSequence != 0 {
                            return answer(45, -1, "a new producer starts at sequence 0, got \(batch.baseSequence)")
                        }
                        var entry = log.producers[batch.producerID] ?? (batch.producerEpoch, -1, [])
                        entry.lastSequence = last
                        entry.recent = Array((entry.recent + [(batch.baseSequence, last, log.end)]).suffix(5))
                        log.producers[batch.producerID] = entry
                    }
                    let base = log.end
                    batch.baseOffset = base
                    for position in batch.records.indices { batch.records[position].offset = base + Int64(position) }
                    log.batches.append(StoredBatch(batch: batch))
                    log.end += Int64(batch.records.count)
                    logs[index] = log
                    state.topics[name] = logs
                    return answer(0, base)
                })])
            }
        }
        return drop ? .close : .respond(["Responses": .array(responses), "ThrottleTimeMs": 0])
    }

    private func fetch(_ body: KafkaStruct) async -> KafkaStruct {
        let deadline = ContinuousClock.now + .milliseconds(Int(body.int("MaxWaitMs")))
        while true {
            let (reply, hasData) = fetchNow(body)
            if hasData || ContinuousClock.now >= deadline { return reply }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    private func fetchNow(_ body: KafkaStruct) -> (KafkaStruct, Bool) {
        state.withLock { state in
            var hasData = false
            let responses = body.array("Topics").map { topic -> KafkaValue in
                let name = topic.string("Topic") ?? ""
                return .structure(["Topic": .string(name), "TopicId": .uuid(state.topicIDs[name] ?? UUID()), "Partitions": .array(topic.array("Partitions").map { wanted -> KafkaValue in
                    let index = Int(wanted.int("Partition")), offset = wanted.int("FetchOffset")
                    guard let logs = state.topics[name], logs.indices.contains(index) else {
                        return .structure(["PartitionIndex": .int(Int64(index)), "ErrorCode": 3, "HighWatermark": -1, "Records": nil, "AbortedTransactions": nil])
                    }
                    let log = logs[index]
                    guard offset <= log.end, offset >= 0 else {
                        return .structure(["PartitionIndex": .int(Int64(index)), "ErrorCode": 1, "HighWatermark": .int(log.end), "Records": nil, "AbortedTransactions": nil])
                    }
                    var records = ByteBuffer()
                    for stored in log.batches where stored.lastOffset >= offset { stored.batch.encode(into: &records) }
                    if records.readableBytes > 0 {
                        hasData = true
                        if state.corruptFetches > 0 {
                            state.corruptFetches -= 1
                            let last = records.writerIndex - 1
                            records.setInteger(records.getInteger(at: last, as: UInt8.self)! ^ 0xFF, at: last)
                        }
                    }
                    return .structure(["PartitionIndex": .int(Int64(index)), "ErrorCode": 0, "HighWatermark": .int(log.end), "LastStableOffset": .int(log.end),
                                       "LogStartOffset": 0, "AbortedTransactions": [], "PreferredReadReplica": -1, "Records": .bytes(records)])
                })])
            }
            return (["ThrottleTimeMs": 0, "ErrorCode": 0, "SessionId": 0, "Responses": .array(responses)], hasData)
        }
    }

    private func listOffsets(_ body: KafkaStruct) -> KafkaStruct {
        state.withLock { state in
            ["ThrottleTimeMs": 0, "Topics": .array(body.array("Topics").map { topic in
                let name = topic.string("Name") ?? ""
                return .structure(["Name": .string(name), "Partitions": .array(topic.array("Partitions").map { wanted in
                    let index = Int(wanted.int("PartitionIndex"))
                    guard let logs = state.topics[name], logs.indices.contains(index) else {
                        return .structure(["PartitionIndex": .int(Int64(index)), "ErrorCode": 3, "OldStyleOffsets": []])
                    }
                    let offset = wanted.int("Timestamp") == -2 ? 0 : logs[index].end
                    return .structure(["PartitionIndex": .int(Int64(index)), "ErrorCode": 0, "OldStyleOffsets": [.int(offset)], "Timestamp": -1,
                                       "Offset": .int(offset), "LeaderEpoch": 0])
                })])
            })]
        }
    }

    // MARK: Group coordinator

    static func startRebalance(_ group: inout Group) {
        guard group.phase != .preparing else { return }
        group.phase = .preparing
        group.rebalanceStarted = .now
        for (_, slot) in group.pendingSyncs { slot.complete(.success(["ErrorCode": 27, "Assignment": .bytes(ByteBuffer())])) }
        group.pendingSyncs.removeAll()
    }

    /// Completes the join phase once every member has rejoined.
    static func completeJoinIfReady(_ group: inout Group) {
        guard group.phase == .preparing, !group.members.isEmpty, group.members.keys.allSatisfy({ group.pendingJoins[$0] != nil }) else { return }
        group.generation += 1
        if group.leader == nil || group.members[group.leader!] == nil { group.leader = group.members.keys.sorted().first }
        let leader = group.leader!
        let common = group.members[leader]!.protocols.map(\.name).first { name in group.members.values.allSatisfy { $0.protocols.contains { $0.name == name } } }
        group.protocolName = common
        group.phase = .awaitingSync
        group.assignments.removeAll()
        for (member, pending) in group.pendingJoins {
            guard let common else { pending.slot.complete(.success(["ErrorCode": 23, "MemberId": .string(member), "Leader": "", "ProtocolName": nil, "Members": []])); continue }
            let members: [KafkaValue] = member == leader ? group.members.sorted { $0.key < $1.key }.map { id, entry in
                .structure(["MemberId": .string(id), "GroupInstanceId": nil, "Metadata": .bytes(entry.protocols.first { $0.name == common }!.metadata)])
            } : []
            pending.slot.complete(.success(["ThrottleTimeMs": 0, "ErrorCode": 0, "GenerationId": .int(Int64(group.generation)), "ProtocolType": "consumer",
                                            "ProtocolName": .string(common), "Leader": .string(leader), "SkipAssignment": false, "MemberId": .string(member),
                                            "Members": .array(members)]))
        }
        group.pendingJoins.removeAll()
    }

    private func join(_ body: KafkaStruct, version: Int16, injected: Int16?) async -> KafkaStruct {
        if let injected { return ["ErrorCode": .int(Int64(injected)), "MemberId": .string(body.string("MemberId") ?? ""), "Leader": "", "ProtocolName": nil, "Members": []] }
        let name = body.string("GroupId") ?? ""
        let slot = OneShot<KafkaStruct>()
        let immediate = state.withLock { state -> KafkaStruct? in
            var group = state.groups[name] ?? Group()
            defer { state.groups[name] = group }
            var member = body.string("MemberId") ?? ""
            if member.isEmpty {
                state.nextMember += 1
                member = "\(body.string("GroupInstanceId") ?? "member")-\(state.nextMember)"
                if version >= 4 {
                    // The member must come back with its id (KIP-394); it becomes a member then.
                    state.issuedMembers.insert(member)
                    return ["ErrorCode": 79, "MemberId": .string(member), "Leader": "", "ProtocolName": nil, "Members": []]
                }
            } else if group.members[member] == nil, state.issuedMembers.remove(member) == nil {
                return ["ErrorCode": 25, "MemberId": .string(member), "Leader": "", "ProtocolName": nil, "Members": []]
            }
            let protocols = body.array("Protocols").map { ($0.string("Name") ?? "", $0.bytes("Metadata") ?? ByteBuffer()) }
            group.members[member] = Member(protocols: protocols, sessionTimeout: .milliseconds(Int(body.int("SessionTimeoutMs"))),
                                           rebalanceTimeout: .milliseconds(Int(body["RebalanceTimeoutMs"]?.int ?? body.int("SessionTimeoutMs"))), lastSeen: .now)
            Self.startRebalance(&group)
            group.pendingJoins[member] = (version, slot)
            Self.completeJoinIfReady(&group)
            return nil
        }
        if let immediate { return immediate }
        return (try? await slot.value) ?? ["ErrorCode": 15, "MemberId": "", "Leader": "", "ProtocolName": nil, "Members": []]
    }

    private func sync(_ body: KafkaStruct, injected: Int16?) async -> KafkaStruct {
        if let injected { return ["ErrorCode": .int(Int64(injected)), "Assignment": .bytes(ByteBuffer())] }
        let name = body.string("GroupId") ?? "", member = body.string("MemberId") ?? ""
        let slot = OneShot<KafkaStruct>()
        let immediate = state.withLock { state -> KafkaStruct? in
            guard var group = state.groups[name], group.members[member] != nil else { return ["ErrorCode": 25, "Assignment": .bytes(ByteBuffer())] }
            defer { state.groups[name] = group }
            group.members[member]?.lastSeen = .now
            guard Int32(body.int("GenerationId")) == group.generation else { return ["ErrorCode": 22, "Assignment": .bytes(ByteBuffer())] }
            if group.phase == .preparing { return ["ErrorCode": 27, "Assignment": .bytes(ByteBuffer())] }
            let reply = { (id: String) -> KafkaStruct in
                ["ThrottleTimeMs": 0, "ErrorCode": 0, "ProtocolType": "consumer", "ProtocolName": group.protocolName.map { .string($0) } ?? nil,
                 "Assignment": .bytes(group.assignments[id] ?? ByteBuffer())]
            }
            if member == group.leader, group.phase == .awaitingSync {
                for entry in body.array("Assignments") { group.assignments[entry.string("MemberId") ?? ""] = entry.bytes("Assignment") ?? ByteBuffer() }
                group.phase = .stable
                for (id, waiting) in group.pendingSyncs { waiting.complete(.success(reply(id))) }
                group.pendingSyncs.removeAll()
                return reply(member)
            }
            if group.phase == .stable { return reply(member) }
            group.pendingSyncs[member] = slot
            return nil
        }
        if let immediate { return immediate }
        return (try? await slot.value) ?? ["ErrorCode": 15, "Assignment": .bytes(ByteBuffer())]
    }

    private func heartbeat(_ body: KafkaStruct) -> Int16 {
        state.withLock { state in
            let name = body.string("GroupId") ?? "", member = body.string("MemberId") ?? ""
            guard var group = state.groups[name], group.members[member] != nil else { return 25 }
            defer { state.groups[name] = group }
            group.members[member]?.lastSeen = .now
            if group.phase == .preparing { return 27 }
            return Int32(body.int("GenerationId")) == group.generation ? 0 : 22
        }
    }

    private func leave(_ body: KafkaStruct, version: Int16) -> KafkaStruct {
        state.withLock { state in
            let name = body.string("GroupId") ?? ""
            let leaving = version >= 3 ? body.array("Members").compactMap { $0.string("MemberId") } : [body.string("MemberId") ?? ""]
            var group = state.groups[name] ?? Group()
            var results: [KafkaValue] = []
            for member in leaving {
                let known = group.members.removeValue(forKey: member) != nil
                group.pendingJoins.removeValue(forKey: member)?.slot.complete(.success(["ErrorCode": 25, "MemberId": .string(member), "Leader": "", "ProtocolName": nil, "Members": []]))
                results.append(.structure(["MemberId": .string(member), "GroupInstanceId": nil, "ErrorCode": known ? 0 : 25]))
            }
            if group.members.isEmpty { group.phase = .empty; group.leader = nil } else { Self.startRebalance(&group); Self.completeJoinIfReady(&group) }
            state.groups[name] = group
            return ["ThrottleTimeMs": 0, "ErrorCode": 0, "Members": .array(results)]
        }
    }

    private func commit(_ body: KafkaStruct, injected: Int16?) -> KafkaStruct {
        state.withLock { state in
            let name = body.string("GroupId") ?? "", member = body.string("MemberId") ?? ""
            let generation = Int32(body["GenerationIdOrMemberEpoch"]?.int ?? -1)
            var group = state.groups[name] ?? Group()
            var code: Int16 = injected ?? 0
            if code == 0 {
                if generation == -1, member.isEmpty {
                    if !group.members.isEmpty { code = 25 }
                } else if group.members[member] == nil { code = 25 }
                else if group.phase == .preparing { code = 27 }
                else if generation != group.generation { code = 22 }
                else { group.members[member]?.lastSeen = .now }
            }
            let topics = body.array("Topics").map { topic -> KafkaValue in
                let topicName = topic.string("Name") ?? ""
                return .structure(["Name": .string(topicName), "Partitions": .array(topic.array("Partitions").map { partition in
                    let index = Int32(partition.int("PartitionIndex"))
                    var partitionCode = code
                    if partitionCode == 0, !(state.topics[topicName]?.indices.contains(Int(index)) ?? false) { partitionCode = 3 }
                    if partitionCode == 0 { group.offsets[topicName, default: [:]][index] = (partition.int("CommittedOffset"), partition.string("CommittedMetadata")) }
                    return .structure(["PartitionIndex": .int(Int64(index)), "ErrorCode": .int(Int64(partitionCode))])
                })])
            }
            state.groups[name] = group
            return ["ThrottleTimeMs": 0, "Topics": .array(topics)]
        }
    }

    private func offsetFetch(_ body: KafkaStruct) -> KafkaStruct {
        state.withLock { state in
            let group = state.groups[body.string("GroupId") ?? ""] ?? Group()
            let wanted: [(String, [Int32]?)] = body["Topics"]?.isNull ?? true
                ? group.offsets.keys.sorted().map { ($0, nil) }
                : body.array("Topics").map { ($0.string("Name") ?? "", ($0["PartitionIndexes"]?.array ?? []).compactMap { $0.int.map { Int32($0) } }) }
            return ["ThrottleTimeMs": 0, "ErrorCode": 0, "Topics": .array(wanted.map { topic, partitions in
                let stored = group.offsets[topic] ?? [:]
                return .structure(["Name": .string(topic), "Partitions": .array((partitions ?? stored.keys.sorted()).map { index in
                    let entry = stored[index]
                    return .structure(["PartitionIndex": .int(Int64(index)), "CommittedOffset": .int(entry?.offset ?? -1), "CommittedLeaderEpoch": -1,
                                       "Metadata": .string(entry?.metadata ?? ""), "ErrorCode": 0])
                })])
            })]
        }
    }

    /// Drops members silent past their session timeout, and members that did not rejoin within the rebalance timeout.
    func expireMembers() {
        state.withLock { state in
            let now = ContinuousClock.now
            for name in state.groups.keys {
                guard var group = state.groups[name] else { continue }
                var changed = false
                for (member, entry) in group.members {
                    let silent = group.pendingJoins[member] == nil && now - entry.lastSeen > entry.sessionTimeout
                    let late = group.phase == .preparing && group.pendingJoins[member] == nil && now - group.rebalanceStarted > entry.rebalanceTimeout
                    if silent || late { group.members.removeValue(forKey: member); changed = true }
                }
                if changed {
                    if group.members.isEmpty {
                        group.phase = .empty
                        group.leader = nil
                    } else {
                        Self.startRebalance(&group)
                        Self.completeJoinIfReady(&group)
                    }
                }
                state.groups[name] = group
            }
        }
    }
}
