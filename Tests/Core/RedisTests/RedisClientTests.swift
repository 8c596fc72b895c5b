import NIOCore
import NIOPosix
import NimbusCore
import NimbusRedis
import NimbusTesting
import Synchronization
import Testing

/// A scripted TCP server speaking just enough RESP to misbehave on purpose.
final class ScriptedRESPServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    /// `respond` gets each complete command's name and returns raw bytes to send back, or `nil` to hang up.
    init(respond: @escaping @Sendable (_ index: Int, _ command: [String]) -> String?) async throws {
        let counter = CommandCounter()
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                    try child.pipeline.syncOperations.addHandler(Responder(counter: counter, respond: respond))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() async throws { try await channel.close() }

    private final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = RESPValue
        typealias OutboundOut = ByteBuffer
        let counter: CommandCounter
        let respond: @Sendable (Int, [String]) -> String?
        init(counter: CommandCounter, respond: @escaping @Sendable (Int, [String]) -> String?) { self.counter = counter; self.respond = respond }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let value = unwrapInboundIn(data)
            guard case .array(let parts) = value else { return }
            let words = parts.compactMap { part -> String? in if case .bulkString(let b) = part { String(buffer: b) } else { nil } }
            let index = counter.value.wrappingAdd(1, ordering: .relaxed).oldValue
            if let reply = respond(index, words) {
                if !reply.isEmpty { context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply)), promise: nil) }
            } else {
                context.close(promise: nil)
            }
        }
    }
}

final class CommandCounter: Sendable {
    let value = Atomic<Int>(0)
}

@Suite("Redis client", .timeLimit(.minutes(2)))
struct RedisClientTests {
    private func client(_ port: Int, _ extra: String = "") throws -> RedisClient {
        try RedisClient(url: "redis://127.0.0.1:\(port)?protocol=2&pool=1\(extra)")
    }

    @Test("a connection dropped mid-pipeline fails the whole pipeline with unavailable, and the client reconnects")
    func droppedMidPipeline() async throws {
        let server = try await ScriptedRESPServer { index, command in
            if command.first == "PING" { return "+PONG\r\n" }
            // Answer the first two GETs of the first pipeline, then hang up on the third.
            switch index {
            case 0, 1: return "$1\r\nv\r\n"
            case 2: return nil
            default: return "$1\r\nw\r\n"
            }
        }
        let client = try client(server.port)
        let pipeline = (0..<5).map { RedisCommand("GET", "k\($0)") }
        let error = await #expect(throws: NimbusError.self) { try await client.pipeline(pipeline) }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("may or may not have run") == true)
        // The next call opens a new connection.
        #expect(try await client.get("again") == ByteBuffer(string: "w"))
        try await client.shutdown()
        try await server.close()
    }

    @Test("a reply of the wrong RESP type is a clear internal error, not a crash")
    func wrongReplyType() async throws {
        let server = try await ScriptedRESPServer { _, command in
            command.first == "GET" ? ":5\r\n" : "*1\r\n+x\r\n"
        }
        let client = try client(server.port)
        let error = await #expect(throws: NimbusError.self) { try await client.get("k") }
        #expect(error?.code == .internal)
        #expect(error?.message.contains("integer") == true)
        let mgetError = await #expect(throws: NimbusError.self) { try await client.mget(["a", "b"]) }
        #expect(mgetError?.message.contains("MGET") == true)
        try await client.shutdown()
        try await server.close()
    }

    @Test("a peer that sends garbage gets the connection closed with a protocol error")
    func garbage() async throws {
        let server = try await ScriptedRESPServer { _, _ in "?garbage\r\n" }
        let client = try client(server.port)
        let error = await #expect(throws: NimbusError.self) { try await client.get("k") }
        #expect(error?.message.contains("broke the protocol") == true)
        try await client.shutdown()
        try await server.close()
    }

    @Test("a command the server never answers times out with deadlineExceeded")
    func timeout() async throws {
        let server = try await ScriptedRESPServer { _, _ in "" }   // swallow everything
        let client = try client(server.port, "&commandTimeout=200ms")
        let error = await #expect(throws: NimbusError.self) { try await client.get("k") }
        #expect(error?.code == .deadlineExceeded)
        try await client.shutdown()
        try await server.close()
    }

    @Test("nothing listening is unavailable and names the start command")
    func refused() async throws {
        let client = try RedisClient(url: "redis://127.0.0.1:1?connectTimeout=1s")
        let error = await #expect(throws: NimbusError.self) { try await client.ping() }
        #expect(error?.code == .unavailable)
        #expect(error?.isRetryable == true)
        try await client.shutdown()
    }

    @Test("URLs: database, options, TLS and their errors")
    func urls() throws {
        let config = try RedisClient.Configuration(url: OpenURL("rediss://app:s3cret@cache.internal:6380/2?pool=8&commandTimeout=2s&name=svc"))
        #expect(config.host == "cache.internal" && config.port == 6380 && config.database == 2 && config.poolSize == 8)
        #expect(config.username == "app" && config.password?.reveal() == "s3cret")
        #expect(config.tls?.certificateVerification == .fullVerification)
        #expect(config.commandTimeout == .seconds(2))
        #expect(throws: NimbusError.self) { try RedisClient.Configuration(url: OpenURL("redis://h/notanumber")) }
        #expect(throws: NimbusError.self) { try RedisClient.Configuration(url: OpenURL("redis://h?poolsize=3")) }
        #expect(throws: NimbusError.self) { try RedisClient.Configuration(url: OpenURL("redis://h?protocol=4")) }
        #expect("\(try OpenURL("redis://app:s3cret@h:1/0"))".contains("s3cret") == false)
    }
}

@Suite("Redis client against redis-server", .requires(.redis), .timeLimit(.minutes(2)))
struct RedisServerTests {
    @Test("RESP3 and RESP2 both work, with pipelining")
    func protocols() async throws {
        let url = try Peer.redis.url()
        for version in ["2", "3"] {
            let client = try RedisClient(url: url + "?protocol=\(version)")
            let key = "proto:\(IDGenerator.shared.ulid())"
            let replies = try await client.pipeline([
                RedisCommand("SET", key, "1"), RedisCommand("INCRBY", key, "41"), RedisCommand("GET", key),
                RedisCommand("HSET", key + "h", "f", "v"), RedisCommand("HGETALL", key + "h"), RedisCommand("LPUSH", key, "x"),
            ])
            #expect(try replies[1].int(for: "INCRBY") == 42)
            #expect(try replies[2].bytes(for: "GET") == ByteBuffer(string: "42"))
            if version == "3" {
                guard case .map = replies[4] else { Issue.record("RESP3 HGETALL should be a map, got \(replies[4])"); continue }
            } else {
                #expect(try replies[4].array(for: "HGETALL")?.count == 2)
            }
            // The error reply stays in place; the other replies are intact.
            guard case .error(let error) = replies[5] else { Issue.record("expected WRONGTYPE"); continue }
            #expect(error.code == "WRONGTYPE")
            try await client.shutdown()
        }
    }

    @Test("ACL users: AUTH with user and password, wrong password is unauthenticated")
    func acl() async throws {
        let url = try Peer.redis.url()
        let admin = try RedisClient(url: url)
        let user = "nimbus-\(IDGenerator.shared.ulid())"
        try await admin.send(RedisCommand("ACL", "SETUSER", user, "on", ">pa ss", "~*", "+@all"))
        let base = url.replacingOccurrences(of: "redis://", with: "")
        for version in ["2", "3"] {
            let good = try RedisClient(url: "redis://\(user):pa%20ss@\(base)/1?protocol=\(version)")
            try await good.ping()
            try await good.shutdown()
            let bad = try RedisClient(url: "redis://\(user):wrong@\(base)?protocol=\(version)")
            let error = await #expect(throws: NimbusError.self) { try await bad.ping() }
            #expect(error?.code == .unauthenticated)
            #expect("\(String(describing: error))".contains("wrong") == false)
            try await bad.shutdown()
        }
        try await admin.send(RedisCommand("ACL", "DELUSER", user))
        try await admin.shutdown()
    }

    @Test("a connection killed by the server is replaced on the next call")
    func reconnect() async throws {
        let url = try Peer.redis.url()
        let name = "victim-\(IDGenerator.shared.ulid())"
        let client = try RedisClient(url: url + "?pool=1&name=\(name)")
        try await client.ping()
        let admin = try RedisClient(url: url)
        let list = try await admin.send(RedisCommand("CLIENT", "LIST")).bytes(for: "CLIENT LIST").map { String(buffer: $0) } ?? ""
        let line = try #require(list.split(separator: "\n").first { $0.contains("name=\(name)") })
        let id = try #require(line.split(separator: " ").first { $0.hasPrefix("id=") }?.dropFirst(3))
        #expect(try await admin.send(RedisCommand("CLIENT", "KILL", "ID", String(id))).int(for: "CLIENT KILL") == 1)
        // The killed connection may fail one call; afterwards the client reconnects.
        var recovered = false
        for _ in 0..<3 where !recovered {
            do { try await client.ping(); recovered = true } catch let error as NimbusError { #expect(error.code == .unavailable) }
        }
        #expect(recovered)
        try await client.shutdown()
        try await admin.shutdown()
    }

    @Test("many concurrent callers share the pool")
    func concurrency() async throws {
        let client = try RedisClient(url: try Peer.redis.url() + "?pool=2")
        let key = "conc:\(IDGenerator.shared.ulid())"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 { group.addTask { _ = try await client.increment(key) } }
            try await group.waitForAll()
        }
        #expect(try await client.get(key) == ByteBuffer(string: "200"))
        try await client.shutdown()
    }

    @Test("TLS: verified against the test CA; without it the handshake fails and is not retried", .requires(.redisTLS))
    func tls() async throws {
        let url = try Peer.redisTLS.url()
        let ca = try #require(Peer.setting("NIMBUS_PEER_REDIS_TLS_CA"))
        let client = try RedisClient(url: url + "?tlsCA=\(ca)")
        #expect(client.configuration.tls?.certificateVerification == .fullVerification)
        let key = "tls:\(IDGenerator.shared.ulid())"
        try await client.set(key, to: "over tls")
        #expect(try await client.get(key) == ByteBuffer(string: "over tls"))
        try await client.shutdown()

        let untrusted = try RedisClient(url: url + "?connectTimeout=2s")
        let error = await #expect(throws: NimbusError.self) { try await untrusted.ping() }
        #expect(error?.code == .unavailable)
        #expect(error?.isRetryable == false)
        #expect(error?.message.contains("TLS") == true)
        try await untrusted.shutdown()

        #expect(throws: NimbusError.self) { try RedisClient.Configuration(url: OpenURL("redis://h?tlsCA=/x.pem")) }
    }

    @Test("a shut-down client refuses calls")
    func shutdown() async throws {
        let client = try RedisClient(url: try Peer.redis.url())
        try await client.ping()
        try await client.shutdown()
        let error = await #expect(throws: NimbusError.self) { try await client.ping() }
        #expect(error?.code == .failedPrecondition)
    }
}
