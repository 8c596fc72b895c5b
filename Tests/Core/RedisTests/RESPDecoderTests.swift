import NIOCore
import NIOEmbedded
import NIOTestUtils
import NimbusCore
@testable import NimbusRedis
import Testing

@Suite("RESP decoder")
struct RESPDecoderTests {
    private func decode(_ text: String) throws -> [RESPValue] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPDecoder()))
        try channel.writeInbound(ByteBuffer(string: text))
        var values: [RESPValue] = []
        while let value = try channel.readInbound(as: RESPValue.self) { values.append(value) }
        _ = try? channel.finish()
        return values
    }

    @Test("RESP2 types")
    func resp2() throws {
        let values = try decode("+OK\r\n-ERR bad thing\r\n:-42\r\n$5\r\nhe\r\no\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n*-1\r\n$0\r\n\r\n")
        #expect(values == [
            .simpleString(ByteBuffer(string: "OK")),
            .error(RedisServerError(message: "ERR bad thing")),
            .integer(-42),
            .bulkString(ByteBuffer(string: "he\r\no")),
            .null,
            .array([.bulkString(ByteBuffer(string: "a")), .integer(1)]),
            .null,
            .bulkString(ByteBuffer()),
        ])
    }

    @Test("RESP3 types")
    func resp3() throws {
        let values = try decode("_\r\n#t\r\n#f\r\n,3.25\r\n,inf\r\n,-inf\r\n(12345678901234567890\r\n=8\r\ntxt:abcd\r\n%1\r\n+k\r\n:1\r\n~2\r\n:1\r\n:2\r\n>2\r\n+message\r\n+x\r\n!9\r\nSYNTAX xy\r\n|1\r\n+ttl\r\n:3\r\n:7\r\n")
        #expect(values.count == 13)
        #expect(values[0] == .null)
        #expect(values[1] == .boolean(true))
        #expect(values[3] == .double(3.25))
        #expect(values[4] == .double(.infinity))
        #expect(values[6] == .bigNumber("12345678901234567890"))
        #expect(values[7] == .verbatimString(format: "txt", ByteBuffer(string: "abcd")))
        #expect(values[8] == .map([.init(key: .simpleString(ByteBuffer(string: "k")), value: .integer(1))]))
        #expect(values[9] == .set([.integer(1), .integer(2)]))
        #expect(values[10] == .push([.simpleString(ByteBuffer(string: "message")), .simpleString(ByteBuffer(string: "x"))]))
        #expect(values[11] == .error(RedisServerError(message: "SYNTAX xy")))
        #expect(try values[12].int(for: "GET") == 7)   // attributes are carried, the value reads through
    }

    @Test("replies split at every byte boundary decode the same")
    func fragmented() throws {
        let wire = "*3\r\n$3\r\nfoo\r\n:99\r\n%1\r\n+a\r\n*1\r\n$2\r\nzz\r\n"
        let expected = RESPValue.array([
            .bulkString(ByteBuffer(string: "foo")), .integer(99),
            .map([.init(key: .simpleString(ByteBuffer(string: "a")), value: .array([.bulkString(ByteBuffer(string: "zz"))]))]),
        ])
        let inputs = wire.utf8.map { ByteBuffer(bytes: [$0]) }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: [(inputs.reduce(into: ByteBuffer()) { var b = $1; $0.writeBuffer(&b) }, [expected])]) {
            RESPDecoder()
        }
        // And byte by byte through a channel.
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPDecoder()))
        for input in inputs { try channel.writeInbound(input) }
        #expect(try channel.readInbound(as: RESPValue.self) == expected)
        _ = try channel.finish()
    }

    @Test("malformed input is rejected with a reason", arguments: [
        ("?what\r\n", "unknown RESP type byte"),
        (":12a\r\n", "is not an integer"),
        ("$3\r\nabcd\r\n", "not followed by CRLF"),
        ("$-5\r\n", "negative bulk length"),
        ("#x\r\n", "neither t nor f"),
        (",1.2.3\r\n", "does not parse"),
        (":99999999999999999999\r\n", "overflows"),
        ("+OK\n", "LF without CR"),
        ("=3\r\ntxt\r\n", "verbatim"),
    ])
    func malformed(_ input: String, _ reason: String) throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPDecoder()))
        let error = #expect(throws: RedisProtocolError.self) { try channel.writeInbound(ByteBuffer(string: input)) }
        guard case .malformed(let message) = error else { Issue.record("expected malformed, got \(String(describing: error))"); return }
        #expect(message.contains(reason), "\(message)")
        _ = try? channel.finish()
    }

    @Test("a bulk string over the limit is refused before it is buffered")
    func oversized() throws {
        var decoder = RESPDecoder(maximumBulkLength: 1024)
        var buffer = ByteBuffer(string: "$1048576\r\n")
        #expect(throws: RedisProtocolError.self) { _ = try decoder.parse(from: &buffer) }
        decoder.maximumBulkLength = 2048
        var ok = ByteBuffer(string: "$4\r\nab")
        #expect(try decoder.parse(from: &ok) == nil)   // incomplete: waits, consumes nothing
        #expect(ok.readableBytes == 6)
    }

    @Test("aggregates nested past the depth limit are refused")
    func depth() throws {
        let decoder = RESPDecoder(maximumDepth: 3)
        var buffer = ByteBuffer(string: String(repeating: "*1\r\n", count: 10) + ":1\r\n")
        #expect(throws: RedisProtocolError.self) { _ = try decoder.parse(from: &buffer) }
    }

    @Test("commands encode as arrays of bulk strings")
    func encoder() {
        var buffer = ByteBuffer()
        RESPEncoder.encode(RedisCommand("SET", "k", "v\r\n"), into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n")
        #expect(RedisCommand("AUTH", "user", "hunter2").description == "AUTH user")
    }

    @Test("typed accessors name the command when the reply type is wrong")
    func wrongTypes() throws {
        let reply = RESPValue.bulkString(ByteBuffer(string: "nope"))
        let error = #expect(throws: NimbusError.self) { try reply.int(for: "INCR") }
        #expect(error?.code == .internal)
        #expect(error?.message.contains("INCR") == true)
        let server = RESPValue.error(RedisServerError(message: "NOAUTH Authentication required."))
        #expect((#expect(throws: NimbusError.self) { try server.bytes(for: "GET") })?.code == .unauthenticated)
    }
}
