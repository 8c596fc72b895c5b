import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing

@Suite("Server-sent events", .timeLimit(.minutes(2)))
struct ServerSentEventTests {
    /// Feeds `text` split at every possible position into two chunks, and as one chunk, and
    /// checks each split gives the same events.
    private func parseAllSplits(_ text: String) throws -> [ServerSentEvent] {
        let bytes = Array(text.utf8)
        var whole = ServerSentEventParser()
        let reference = try whole.feed(ByteBuffer(bytes: bytes))
        for cut in 0...bytes.count {
            var parser = ServerSentEventParser()
            let events = try parser.feed(ByteBuffer(bytes: bytes[..<cut])) + parser.feed(ByteBuffer(bytes: bytes[cut...]))
            #expect(events == reference, "split at \(cut)")
        }
        return reference
    }

    @Test("fields, multi-line data, comments, and the optional space")
    func fields() throws {
        let events = try parseAllSplits(": keep-alive\nevent: delta\nid: 7\ndata: {\"a\":\ndata:1}\n\ndata:  two spaces\n\n")
        #expect(events == [
            ServerSentEvent(event: "delta", data: "{\"a\":\n1}", id: "7"),
            ServerSentEvent(data: " two spaces", id: "7"),   // id persists; one space removed only
        ])
    }

    @Test("CR, LF and CRLF line endings, also split across chunks")
    func lineEndings() throws {
        #expect(try parseAllSplits("data: a\r\n\r\ndata: b\r\rdata: c\n\n").map(\.data) == ["a", "b", "c"])
    }

    @Test("a leading BOM is dropped")
    func bom() throws {
        var parser = ServerSentEventParser()
        #expect(try parser.feed(ByteBuffer(bytes: [0xEF, 0xBB, 0xBF] + Array("data: x\n\n".utf8))) == [ServerSentEvent(data: "x")])
    }

    @Test("malformed frames: bad retry, NUL in id, unknown fields, empty data, unterminated event")
    func malformed() throws {
        var parser = ServerSentEventParser()
        let events = try parser.feed(ByteBuffer(string: "retry: 12a\nid: a\u{0}b\nfoo: bar\ndata\n\nevent: x\n\nretry: 1500\ndata: ok\n\ndata: never finished"))
        #expect(events == [
            ServerSentEvent(data: ""),                    // `data` with no colon is an empty data line: dispatched
            ServerSentEvent(data: "ok", retry: 1500),
        ])
        #expect(events.allSatisfy { $0.id == nil })     // the id with NUL was ignored
        let discarded = parser.finish()
        #expect(discarded)                              // the unterminated event was discarded, and said so
    }

    @Test("an event over the size limit is an error, not unbounded memory")
    func oversized() {
        var parser = ServerSentEventParser(maximumEventSize: 64)
        let error = #expect(throws: NimbusError.self) {
            _ = try parser.feed(ByteBuffer(string: "data: " + String(repeating: "x", count: 40) + "\ndata: " + String(repeating: "y", count: 40) + "\n"))
        }
        #expect(error?.code == .resourceExhausted)
    }

    @Test("streams over HTTP, decoding events as they arrive")
    func overHTTP() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.POST, "/v1/stream", reply: .sseRaw(["da", "ta: one\n", "\ndata: t", "wo\r", "\n\r\ndata: [DONE]\n\n"], pause: .milliseconds(5)))
        let client = NimbusHTTPClient(configuration: .init(service: "fake", baseURL: server.baseURL))
        let response = try await client.send(NimbusHTTPRequest(.POST, "/v1/stream"))
        var seen: [String] = []
        for try await event in ServerSentEventStream(response.body) { seen.append(event.data) }
        #expect(seen == ["one", "two", "[DONE]"])
        await server.shutdown()
    }

    @Test("breaking out of the stream cancels the request; the server sees the client leave")
    func cancellation() async throws {
        let server = try await FakeHTTPServer.start()
        let endless = (0..<2000).map { ServerSentEvent(data: "tick \($0)") }
        server.route(.GET, "/events", reply: .sse(endless, pause: .milliseconds(10)))
        let client = NimbusHTTPClient(configuration: .init(service: "fake", baseURL: server.baseURL))
        let consumer = Task {
            let response = try await client.send(NimbusHTTPRequest(.GET, "/events"))
            var count = 0
            for try await _ in ServerSentEventStream(response.body) {
                count += 1
                if count == 3 { break }
            }
            return count
        }
        #expect(try await consumer.value == 3)
        // The server's writer fails once the connection is gone; wait for it (bounded).
        for _ in 0..<300 where server.clientDisconnects == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.clientDisconnects == 1)
        await server.shutdown()
    }

    @Test("cancelling the consuming task cancels the request")
    func taskCancellation() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.GET, "/events", reply: .sse((0..<2000).map { ServerSentEvent(data: "\($0)") }, pause: .milliseconds(10)))
        let client = NimbusHTTPClient(configuration: .init(service: "fake", baseURL: server.baseURL))
        let started = AsyncStream<Void>.makeStream()
        let consumer = Task {
            let response = try await client.send(NimbusHTTPRequest(.GET, "/events"))
            for try await _ in ServerSentEventStream(response.body) { started.continuation.yield() }
        }
        var iterator = started.stream.makeAsyncIterator()
        _ = await iterator.next()
        consumer.cancel()
        _ = await consumer.result   // ends (a cancelled stream finishes early), and the request is gone:
        for _ in 0..<300 where server.clientDisconnects == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.clientDisconnects == 1)
        await server.shutdown()
    }
}

@Suite("NDJSON", .timeLimit(.minutes(2)))
struct NDJSONTests {
    struct Chunk: Decodable, Sendable, Equatable { var response: String; var done: Bool }

    @Test("lines split anywhere, CRLF, blank lines, and a last line without newline")
    func lines() async throws {
        let text = "{\"response\":\"a\",\"done\":false}\r\n\n{\"response\":\"b\",\n\"done\":false}\n{\"response\":\"c\",\"done\":true}"
        // The middle object spans a newline, which NDJSON forbids: it must be reported, not merged.
        let chunks = text.utf8.map { ByteBuffer(bytes: [$0]) }
        var results: [Chunk] = []
        let error = await #expect(throws: NimbusError.self) {
            for try await chunk in NDJSONStream(BufferSequence(chunks), of: Chunk.self) { results.append(chunk) }
        }
        #expect(results == [Chunk(response: "a", done: false)])
        #expect(error?.message.contains("line 2") == true)

        let good = "{\"response\":\"a\",\"done\":false}\r\n\n{\"response\":\"c\",\"done\":true}"
        var all: [Chunk] = []
        for try await chunk in NDJSONStream(BufferSequence(good.utf8.map { ByteBuffer(bytes: [$0]) }), of: Chunk.self) { all.append(chunk) }
        #expect(all == [Chunk(response: "a", done: false), Chunk(response: "c", done: true)])
    }

    @Test("streams over HTTP")
    func overHTTP() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.POST, "/api/generate", reply: .ndjson(["{\"response\":\"Hel\",\"done\":false}", "{\"response\":\"lo\",\"done\":true}"], pause: .milliseconds(5)))
        let client = NimbusHTTPClient(configuration: .init(service: "ollama", baseURL: server.baseURL))
        let response = try await client.send(NimbusHTTPRequest(.POST, "/api/generate"))
        var text = ""
        for try await chunk in NDJSONStream(response.body, of: Chunk.self) { text += chunk.response }
        #expect(text == "Hello")
        await server.shutdown()
    }

    @Test("an over-long line is refused")
    func oversized() throws {
        var splitter = NDJSONLineSplitter(maximumLineLength: 10)
        #expect(throws: NimbusError.self) { _ = try splitter.feed(ByteBuffer(string: String(repeating: "x", count: 11))) }
    }
}

/// A fixed list of chunks as an async sequence.
struct BufferSequence: AsyncSequence, Sendable {
    let chunks: [ByteBuffer]
    init(_ chunks: [ByteBuffer]) { self.chunks = chunks }
    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: ArraySlice<ByteBuffer>
        mutating func next() async throws -> ByteBuffer? { remaining.popFirst() }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: chunks[...]) }
}
