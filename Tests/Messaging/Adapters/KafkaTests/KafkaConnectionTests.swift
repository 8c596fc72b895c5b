import Foundation
import NIOCore
import NimbusCore
@testable import NimbusMessagingKafka
import Testing

@Suite("Kafka connection against the fake broker", .timeLimit(.minutes(3)))
struct KafkaConnectionTests {
    /// A full test run can stall a task for many seconds in its first minute: connecting may take that long.
    static let connectTimeout = Duration.seconds(30)

    @Test("connecting negotiates API versions; a request goes out at the highest common version and its response is read")
    func negotiatesAndSends() async throws {
        let broker = try await FakeKafkaBroker.start { request in
            switch request.name {
            case "ApiVersionsRequest": return .respond(FakeKafkaBroker.apiVersions([18: 0...3, 3: 0...10]))
            case "MetadataRequest":
                return .respond(["Brokers": [["NodeId": 1, "Host": "127.0.0.1", "Port": 9092, "Rack": nil]], "ClusterId": "c1", "ControllerId": 1,
                                 "Topics": [["ErrorCode": 0, "Name": "orders", "IsInternal": false,
                                             "Partitions": [["ErrorCode": 0, "PartitionIndex": 0, "LeaderId": 1, "LeaderEpoch": 4,
                                                             "ReplicaNodes": [1], "IsrNodes": [1], "OfflineReplicas": []]]]]])
            default: return .close
            }
        }
        let connection = try await KafkaConnection.connect(.init(port: broker.port, clientID: "nimbus-test", connectTimeout: Self.connectTimeout))
        #expect(connection.brokerVersions(3) == 0...10)
        #expect(try connection.version(for: .metadataRequest, highest: 12) == 10)
        #expect(throws: NimbusError.self) { try connection.version(for: .produceRequest, highest: 9) }
        let metadata = try await connection.send(.metadataRequest, ["Topics": [["Name": "orders"]], "AllowAutoTopicCreation": false], highest: 12)
        #expect(metadata.array("Brokers").first?.string("Host") == "127.0.0.1")
        #expect(metadata.array("Topics").first?.array("Partitions").first?.int("LeaderEpoch") == 4)
        #expect(broker.problems == [])
        #expect(broker.requests.map(\.name) == ["ApiVersionsRequest", "MetadataRequest"])
        #expect(broker.requests.map(\.version) == [3, 10])
        #expect(broker.requests.first?.clientID == "nimbus-test")
        #expect(broker.requests.first?.body.string("ClientSoftwareName") == "nimbus-swift")
        try await connection.close()
        await broker.stop()
    }

    @Test("a broker that does not speak ApiVersions v3 answers in v0 with UNSUPPORTED_VERSION, and the client goes on")
    func apiVersionsFallback() async throws {
        let broker = try await FakeKafkaBroker.start { request in
            var answer = FakeKafkaBroker.apiVersions([18: 0...2, 3: 0...8])
            answer["ErrorCode"] = 35
            return request.name == "ApiVersionsRequest" ? .respondAs(version: 0, answer) : .close
        }
        let connection = try await KafkaConnection.connect(.init(port: broker.port, connectTimeout: Self.connectTimeout))
        #expect(connection.brokerVersions(3) == 0...8)
        try await connection.close()
        await broker.stop()
    }

    @Test("SASL PLAIN sends the credentials once; a refusal is unauthenticated and says why, without the password")
    func saslPlain() async throws {
        let broker = try await FakeKafkaBroker.start { request in
            switch request.name {
            case "ApiVersionsRequest": return .respond(FakeKafkaBroker.apiVersions())
            case "SaslHandshakeRequest": return .respond(["ErrorCode": 0, "Mechanisms": ["PLAIN", "SCRAM-SHA-256"]])
            case "SaslAuthenticateRequest":
                let sent = request.body.bytes("AuthBytes").map { String(buffer: $0) }
                return sent == "\0alice\0right" ? .respond(["ErrorCode": 0, "AuthBytes": .bytes(ByteBuffer())])
                    : .respond(["ErrorCode": 58, "ErrorMessage": "Authentication failed: Invalid username or password", "AuthBytes": .bytes(ByteBuffer())])
            default: return .close
            }
        }
        let connection = try await KafkaConnection.connect(.init(port: broker.port, sasl: .init(mechanism: .plain, user: "alice", password: Secret("right")), connectTimeout: Self.connectTimeout))
        try await connection.close()
        let error = await #expect(throws: NimbusError.self) {
            _ = try await KafkaConnection.connect(.init(port: broker.port, sasl: .init(mechanism: .plain, user: "alice", password: Secret("wrong")), connectTimeout: Self.connectTimeout))
        }
        #expect(error?.code == .unauthenticated)
        #expect(error?.message.contains("Invalid username or password") == true)
        #expect(error?.message.contains("wrong") == false)
        let scram = await #expect(throws: NimbusError.self) {
            _ = try await KafkaConnection.connect(.init(port: broker.port, sasl: .init(mechanism: .scramSHA512, user: "a", password: Secret("p")), connectTimeout: Self.connectTimeout))
        }
        #expect(scram?.code == .unauthenticated)
        #expect(broker.problems == [])
        await broker.stop()
    }

    @Test("SCRAM-SHA-256 client messages equal RFC 7677's example; a wrong server signature is refused")
    func scramVector() throws {
        var client = SCRAMClient(user: "user", password: Secret("pencil"), sha512: false, nonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(String(decoding: client.clientFirst(), as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        let final = try client.clientFinal(serverFirst: Array(serverFirst.utf8))
        #expect(String(decoding: final, as: UTF8.self)
                == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        try client.verify(serverFinal: Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
        #expect(throws: NimbusError.self) { try client.verify(serverFinal: Array("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".utf8)) }
        #expect(throws: NimbusError.self) { try client.verify(serverFinal: Array("e=invalid-proof".utf8)) }
        var other = SCRAMClient(user: "user", password: Secret("pencil"), sha512: false, nonce: "abc")
        _ = other.clientFirst()
        #expect(throws: NimbusError.self) { try other.clientFinal(serverFirst: Array("r=xyz,s=AAAA,i=4096".utf8)) }   // not our nonce
        #expect(throws: NimbusError.self) { try other.clientFinal(serverFirst: Array("r=abcd,s=AAAA,i=1".utf8)) }     // too few iterations
    }

    @Test("no answer is deadlineExceeded; a dropped connection fails the waiting request; an oversized frame closes the connection")
    func failures() async throws {
        let broker = try await FakeKafkaBroker.start { request in
            switch request.name {
            case "ApiVersionsRequest": return .respond(FakeKafkaBroker.apiVersions())
            case "HeartbeatRequest": return .silence
            case "LeaveGroupRequest":
                var huge = ByteBuffer()
                huge.writeInteger(Int32(1 << 30))
                return .raw(huge)
            default: return .close
            }
        }
        let connection = try await KafkaConnection.connect(.init(port: broker.port, connectTimeout: Self.connectTimeout, requestTimeout: .seconds(1)))
        let silent = await #expect(throws: NimbusError.self) {
            _ = try await connection.send(.heartbeatRequest, ["GroupId": "g", "GenerationId": 1, "MemberId": "m"], highest: 4)
        }
        #expect(silent?.code == .deadlineExceeded)
        // The drop is checked on a connection with a long deadline, so that on a loaded machine the
        // broker's close cannot lose a race against a one-second timer.
        let patient = try await KafkaConnection.connect(.init(port: broker.port, connectTimeout: Self.connectTimeout, requestTimeout: .seconds(60)))
        let dropped = await #expect(throws: NimbusError.self) { _ = try await patient.send(.findCoordinatorRequest, ["Key": "g"], highest: 4) }
        #expect(dropped?.code == .unavailable)
        #expect(!patient.isActive)

        let second = try await KafkaConnection.connect(.init(port: broker.port, connectTimeout: Self.connectTimeout))
        let oversized = await #expect(throws: NimbusError.self) {
            _ = try await second.send(.leaveGroupRequest, ["GroupId": "g", "Members": []], highest: 4)
        }
        #expect(oversized?.code == .unavailable)
        #expect(broker.problems == [])
        await broker.stop()
    }

    @Test("Kafka error codes map to codes that say what to do")
    func errorCodes() {
        #expect(KafkaErrorCode(6).name == "NOT_LEADER_OR_FOLLOWER" && KafkaErrorCode(6).isRetriable)
        #expect(KafkaErrorCode(6).error("producing").code == .unavailable)
        #expect(KafkaErrorCode(27).error("joining").code == .failedPrecondition)
        #expect(KafkaErrorCode(3).error("fetching").code == .notFound)
        #expect(KafkaErrorCode(58).error("").code == .unauthenticated)
        #expect(KafkaErrorCode(36).error("").code == .alreadyExists)
        #expect(KafkaErrorCode(999).name == "UNKNOWN(999)")
    }
}
