import Foundation
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusMessagingConformance
@testable import NimbusMessagingNATS
import NimbusTesting
import Synchronization
import Testing

@Suite("NATS protocol decoding")
struct NATSProtocolTests {
    func parseAll(_ text: String, maximumPayload: Int = 1 << 20) throws -> [NATSServerOperation] {
        var buffer = ByteBuffer(string: text)
        var operations: [NATSServerOperation] = []
        while let operation = try NATSOperationDecoder.parse(&buffer, maximumPayload: maximumPayload) { operations.append(operation) }
        return operations
    }

    @Test("INFO, PING, PONG, +OK, -ERR, MSG with and without reply, HMSG with a status line and headers")
    func operations() throws {
        let text = "INFO {\"max_payload\":1048576}\r\nPING\r\npong\r\n+OK\r\n-ERR 'Authorization Violation'\r\n"
            + "MSG a.b 7 5\r\nhello\r\nMSG a.b 7 _INBOX.x.1 0\r\n\r\n"
            + "HMSG _INBOX.x.2 1 28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n"
            + "HMSG t 1 r 28 32\r\nNATS/1.0\r\nK: v 1\r\nK2:  x\r\n\r\nbody\r\n"
        let operations = try parseAll(text)
        try #require(operations.count == 9)
        #expect(operations[1] == .ping && operations[2] == .pong && operations[3] == .ok)
        #expect(operations[4] == .error("Authorization Violation"))
        guard case .message(let plain) = operations[5], case .message(let empty) = operations[6], case .message(let status) = operations[7],
              case .message(let headered) = operations[8] else { Issue.record("not messages: \(operations)"); return }
        #expect(plain.subject == "a.b" && plain.sid == "7" && plain.replyTo == nil && String(buffer: plain.payload) == "hello")
        #expect(empty.replyTo == "_INBOX.x.1" && empty.payload.readableBytes == 0)
        #expect(status.status == 404 && status.statusDescription == "No Messages")
        #expect(headered.header("k") == "v 1" && headered.header("K2") == "x" && String(buffer: headered.payload) == "body")
    }

    @Test("a message split anywhere waits for the rest; nothing is consumed early")
    func partial() throws {
        let text = "HMSG t 1 r 18 22\r\nNATS/1.0\r\nA: b\r\n\r\nbody\r\n"
        for cut in 1..<text.utf8.count {
            var buffer = ByteBuffer(string: String(text.utf8.prefix(cut))!)
            #expect(try NATSOperationDecoder.parse(&buffer, maximumPayload: 1024) == nil, "cut at \(cut)")
            #expect(buffer.readableBytes == cut)
        }
    }

    @Test("hostile input is an error, never a crash: oversized payloads and lines, bad sizes, unknown operations")
    func hostile() {
        for text in ["MSG a 1 99999999\r\n", "MSG a 1 -5\r\n", "MSG a 1 x\r\n", "MSG a\r\n", "HMSG a 1 10 5\r\n", "HMSG a 1 r 2 2\r\nXX\r\n",
                     "BOGUS\r\n", String(repeating: "x", count: 5000), "MSG a 1 3\r\nabcXY", "HMSG a 1 4 4\r\nNOPE\r\n"] {
            #expect(throws: (any Error).self, "\(text.prefix(30))") { _ = try parseAll(text, maximumPayload: 1 << 20) }
        }
    }

    @Test("PUB and HPUB are encoded byte for byte as the protocol says, sizes included")
    func encoding() {
        var plain = ByteBuffer()
        NATSEncoder.publish(subject: "a.b", replyTo: nil, headers: [], payload: ByteBuffer(string: "hello"), into: &plain)
        #expect(String(buffer: plain) == "PUB a.b 5\r\nhello\r\n")
        var empty = ByteBuffer()
        NATSEncoder.publish(subject: "s", replyTo: "_INBOX.x.1", headers: [], payload: ByteBuffer(), into: &empty)
        #expect(String(buffer: empty) == "PUB s _INBOX.x.1 0\r\n\r\n")
        var headered = ByteBuffer()
        NATSEncoder.publish(subject: "t", replyTo: "r", headers: [("Nats-Msg-Id", "7"), ("k", "ü")], payload: ByteBuffer(repeating: 120, count: 1234), into: &headered)
        let block = "NATS/1.0\r\nNats-Msg-Id: 7\r\nk: ü\r\n\r\n"
        #expect(String(buffer: headered) == "HPUB t r \(block.utf8.count) \(block.utf8.count + 1234)\r\n" + block + String(repeating: "x", count: 1234) + "\r\n")
    }

    @Test("ack subjects of both formats are read; anything else is not a receipt")
    func ackSubjects() {
        let short = AckSubject("$JS.ACK.NIMBUS_t.c.3.42.40.1700000000000000000.0")
        #expect(short?.stream == "NIMBUS_t" && short?.delivered == 3 && short?.streamSequence == 42)
        let long = AckSubject("$JS.ACK.hub.ACCHASH.NIMBUS_t.c.2.7.7.1700000000000000000.0.tok")
        #expect(long?.stream == "NIMBUS_t" && long?.delivered == 2 && long?.streamSequence == 7)
        for bad in ["", "$JS.ACK", "$JS.ACK.s.c.x.1.1.1.0", "_INBOX.a.b.c.d.e.f.g.h", "$JS.ACK.s.c.1.2.3"] { #expect(AckSubject(bad) == nil, "\(bad)") }
    }

    @Test("topic names map to stream names and back, without collisions")
    func names() {
        for name in ["orders", "a.b", "a_b", "a__b", "a._d", "x.y.z_", "_d"] {
            let encoded = NATSJetStreamMessagingDriver.encode(name)
            #expect(!encoded.contains("."))
            #expect(NATSJetStreamMessagingDriver.decode(encoded) == name)
        }
        #expect(NATSJetStreamMessagingDriver.encode("a.b") != NATSJetStreamMessagingDriver.encode("a_db"))
    }
}

@Suite("NATS JetStream messaging (real nats-server -js)", .requires(.nats), .timeLimit(.minutes(3)))
struct NATSJetStreamTests {
    static let declared: MessagingCapabilities = [.durable, .deduplication, .deadLetters, .deliveryCount, .extendDeadline, .delayedRedelivery]

    static func driver() throws -> NATSJetStreamMessagingDriver {
        let url = try Peer.nats.url()
        let port = Int(url.split(separator: ":").last ?? "") ?? 4222
        return NATSJetStreamMessagingDriver(configuration: .init(connection: .init(host: "127.0.0.1", port: port)))
    }

    @Test("declares its capabilities; ordering keys and delayed first delivery are not supported")
    func declaredCapabilities() throws {
        #expect(try Self.driver().capabilities == Self.declared)
        #expect(MessagingConformance.suite.unsupported(by: MessagingConformance.capabilities(Self.declared)).map(\.name) == [
            "messages with one ordering key come in publish order, one at a time",
            "a delayed message is not delivered before its delay",
        ])
    }

    @Test("conformance", arguments: MessagingConformance.suite.checks(supportedBy: MessagingConformance.capabilities(declared)))
    func conformance(_ check: MessagingConformance.Check) async throws {
        try await check.run(MessagingConformance.Harness(makeDriver: { try Self.driver() }, advance: { try await Task.sleep(for: $0) }))
    }

    @Test("nats:// opens through the registry; literal tokens in the URL are refused")
    func opener() async throws {
        let url = try Peer.nats.url()
        let messaging = try await Messaging.open("\(url)?stream_prefix=T_&subject_prefix=t\(IDGenerator.shared.ulid())", openers: URLOpenerRegistry.messaging.withNATS())
        #expect(messaging.provider == "nats")
        try await messaging.createTopic("opened")
        #expect(try await messaging.topics().contains("opened"))
        try await messaging.deleteTopic("opened")
        try await messaging.close()
        let error = await #expect(throws: NimbusError.self) { _ = try await Messaging.open("\(url)?token=s3cret", openers: URLOpenerRegistry.messaging.withNATS()) }
        #expect(error?.code == .invalidArgument)
    }

    @Test("attributes that cannot be NATS headers are refused before anything is sent")
    func headerRules() async throws {
        let messaging = Messaging(driver: try Self.driver())
        let topic = "hdr-\(IDGenerator.shared.ulid())"
        try await messaging.createTopic(topic)
        for attributes in [["bad name": "v"], ["Nats-Msg-Id": "x"], ["k": "line\r\nbreak"]] {
            let error = await #expect(throws: NimbusError.self) { try await messaging.publish(Message("x", attributes: attributes), to: topic) }
            #expect(error?.code == .invalidArgument)
        }
        try await messaging.deleteTopic(topic)
        try await messaging.close()
    }

    @Test("a connection refused is unavailable and names the command that starts the server")
    func unreachable() async throws {
        let driver = NATSJetStreamMessagingDriver(configuration: .init(connection: .init(host: "127.0.0.1", port: 1, connectTimeout: .seconds(2))))
        let error = await #expect(throws: NimbusError.self) { _ = try await driver.topics() }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("scripts/peers up nats") == true)
    }
}

@Suite("NATS request/reply as a portable call (real nats-server)", .requires(.nats), .timeLimit(.minutes(2)))
struct NATSRequestReplyTests {
    static func messaging() throws -> Messaging { Messaging(driver: try NATSJetStreamTests.driver()) }

    @Test("a request gets the responder's reply with its attributes; a queue group shares requests; several run at once")
    func requestReply() async throws {
        let server = try Self.messaging(), client = try Self.messaging()
        let subject = "quote.\(IDGenerator.shared.ulid().description.lowercased().suffix(10))"
        final class Tally: Sendable {
            let counts = Mutex<[String: Int]>([:])
        }
        let served = Tally()
        var responders: [any MessagingResponder] = []
        for name in ["a", "b"] {
            responders.append(try await server.serve(subject, queueGroup: "pricing") { request in
                served.counts.withLock { $0[name, default: 0] += 1 }
                try await Task.sleep(for: .milliseconds(50))
                return Message(body: ByteBuffer(string: "price of \(String(buffer: request.body))"), attributes: ["served-by": name, "echo": request.attributes["trace"] ?? ""])
            })
        }
        let replies = try await withThrowingTaskGroup(of: Message.self) { group in
            for index in 0..<20 { group.addTask { try await client.request(Message("sku-\(index)", attributes: ["trace": "t\(index)"]), on: subject, timeout: .seconds(10)) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(replies.count == 20)
        #expect(Set(replies.map { String(buffer: $0.body) }) == Set((0..<20).map { "price of sku-\($0)" }))
        #expect(Set(replies.map { $0.attributes["echo"] ?? "" }) == Set((0..<20).map { "t\($0)" }))
        let counts = served.counts.withLock { $0 }
        #expect(counts.values.reduce(0, +) == 20, "each request went to one member of the group: \(counts)")
        for responder in responders { await responder.stop() }
        try await server.close()
        try await client.close()
    }

    @Test("nobody serving is notFound; a silent responder is deadlineExceeded; a handler's error comes back with its code; a stopped responder no longer answers")
    func failures() async throws {
        let server = try Self.messaging(), client = try Self.messaging()
        let subject = "jobs.\(IDGenerator.shared.ulid().description.lowercased().suffix(10))"
        let missing = await #expect(throws: NimbusError.self) { _ = try await client.request(Message("x"), on: subject, timeout: .seconds(5)) }
        #expect(missing?.code == .notFound)
        let failing = try await server.serve(subject) { request in
            if String(buffer: request.body) == "slow" { try await Task.sleep(for: .seconds(1)) }
            throw NimbusError(.failedPrecondition, "the cart is empty")
        }
        let refused = await #expect(throws: NimbusError.self) { _ = try await client.request(Message("checkout"), on: subject, timeout: .seconds(5)) }
        #expect(refused?.code == .failedPrecondition)
        #expect(refused?.message.contains("the cart is empty") == true)
        let slow = await #expect(throws: NimbusError.self) { _ = try await client.request(Message("slow"), on: subject, timeout: .milliseconds(300)) }
        #expect(slow?.code == .deadlineExceeded)
        let stopping = Task { await failing.stop() }
        _ = await stopping.result
        let gone = await #expect(throws: NimbusError.self) { _ = try await client.request(Message("x"), on: subject, timeout: .seconds(5)) }
        #expect(gone?.code == .notFound)
        try await server.close()
        try await client.close()
    }
}
