import Foundation
import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import Synchronization

/// A scripted HTTP server on `127.0.0.1` (a free port) for testing vendor adapters where the
/// vendor cannot run here: it answers from a script, records every request, and misbehaves on
/// demand (delays, status sequences such as 429-then-200, streamed SSE/NDJSON, dropped connections).
///
/// ```swift
/// let server = try await FakeHTTPServer.start()
/// server.route(.POST, "/v1/chat/completions", replies: [
///     .json(429, #"{"error": {"message": "slow down"}}"#, headers: ["Retry-After": "1"]),
///     .json(200, completionJSON),
/// ])
/// // ... point the adapter at server.baseURL, call it ...
/// #expect(server.requests.count == 2)
/// await server.shutdown()
/// ```
public final class FakeHTTPServer: Sendable {
    /// A request as the server received it.
    public struct CapturedRequest: Sendable, CustomStringConvertible {
        /// `GET`, `POST`...
        public var method: String
        /// The path, without the query.
        public var path: String
        /// The query items, percent-decoded, in order.
        public var query: [(String, String)]
        /// The headers, names lowercased, in order.
        public var headers: [(String, String)]
        /// The body.
        public var body: ByteBuffer

        /// The first value of a header (case-insensitive).
        public func header(_ name: String) -> String? {
            headers.first { $0.0 == name.lowercased() }?.1
        }

        /// The first value of a query item.
        public func queryItem(_ name: String) -> String? { query.first { $0.0 == name }?.1 }

        /// The body as text.
        public var bodyText: String { String(buffer: body) }

        /// The body parsed as JSON.
        public func json() throws -> JSONValue { try JSONValue.parse(Data(body.readableBytesView)) }

        /// The body parsed as a nested form.
        public func form() throws -> JSONValue { try FormDecoder.decode(bodyText) }

        public var description: String { "\(method) \(path)\(query.isEmpty ? "" : "?" + query.map { "\($0.0)=\($0.1)" }.joined(separator: "&"))" }
    }

    /// What the server does with one request.
    public indirect enum Reply: Sendable {
        /// A complete answer.
        case response(status: Int, headers: [(String, String)], body: ByteBuffer)
        /// The body sent in chunks, with a pause before each one (chunked transfer encoding).
        case chunks(status: Int, headers: [(String, String)], chunks: [ByteBuffer], pause: Duration)
        /// Waits, then does `then`.
        case delayed(Duration, then: Reply)
        /// Closes the connection without answering.
        case disconnect
        /// Sends the head and these chunks, then closes the connection mid-body.
        case disconnectMidBody(status: Int, headers: [(String, String)], chunks: [ByteBuffer])

        /// A JSON answer from text.
        public static func json(_ status: Int = 200, _ body: String, headers: [(String, String)] = []) -> Reply {
            .response(status: status, headers: [("Content-Type", "application/json")] + headers, body: ByteBuffer(string: body))
        }

        /// A JSON answer from a value.
        public static func json(_ status: Int = 200, _ value: JSONValue, headers: [(String, String)] = []) -> Reply {
            .json(status, value.description, headers: headers)
        }

        /// A plain answer.
        public static func text(_ status: Int, _ body: String, headers: [(String, String)] = []) -> Reply {
            .response(status: status, headers: [("Content-Type", "text/plain")] + headers, body: ByteBuffer(string: body))
        }

        /// A `text/event-stream` of events, one chunk each.
        public static func sse(_ events: [ServerSentEvent], pause: Duration = .zero, headers: [(String, String)] = []) -> Reply {
            .chunks(status: 200, headers: [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")] + headers,
                    chunks: events.map { ByteBuffer(string: FakeHTTPServer.encode($0)) }, pause: pause)
        }

        /// Raw SSE text split into chunks exactly as given (to test parsers against odd splits).
        public static func sseRaw(_ chunks: [String], pause: Duration = .zero) -> Reply {
            .chunks(status: 200, headers: [("Content-Type", "text/event-stream")], chunks: chunks.map { ByteBuffer(string: $0) }, pause: pause)
        }

        /// An `application/x-ndjson` stream, one line per chunk.
        public static func ndjson(_ lines: [String], pause: Duration = .zero) -> Reply {
            .chunks(status: 200, headers: [("Content-Type", "application/x-ndjson")], chunks: lines.map { ByteBuffer(string: $0 + "\n") }, pause: pause)
        }
    }

    /// Decides the reply to a request.
    public typealias Handler = @Sendable (CapturedRequest) async throws -> Reply

    private struct Route {
        var method: String
        var pattern: [Substring]
        var handler: Handler
    }

    private struct State {
        var routes: [Route] = []
        var requests: [CapturedRequest] = []
        var disconnects = 0
    }

    private let state = Mutex(State())
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)
    /// The bound port.
    public let port: Int
    /// The largest request body accepted.
    public let maximumRequestSize: Int

    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Every request received so far, in arrival order.
    public var requests: [CapturedRequest] { state.withLock { $0.requests } }

    /// How many streamed answers ended because the client went away (cancelled streams).
    public var clientDisconnects: Int { state.withLock { $0.disconnects } }

    private init(port: Int, maximumRequestSize: Int) {
        self.port = port
        self.maximumRequestSize = maximumRequestSize
    }

    /// Starts a server on a free loopback port.
    public static func start(maximumRequestSize: Int = 64 * 1024 * 1024) async throws -> FakeHTTPServer {
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let holder = ServerHolder()
        let responder = CallbackResponder<FakeRequestContext> { request, context in
            guard let server = holder.server else { return Response(status: .serviceUnavailable) }
            return try await server.respond(request, context: context)
        }
        var logger = Logger(label: "nimbus.fake-http")
        logger.logLevel = .critical
        let app = Application(
            responder: responder,
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "nimbus-fake"),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: logger
        )
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = portStream.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            throw NimbusError(.unavailable, "the fake HTTP server did not start")
        }
        let server = FakeHTTPServer(port: port, maximumRequestSize: maximumRequestSize)
        server.task.withLock { $0 = task }
        holder.server = server
        return server
    }

    /// Stops the server.
    public func shutdown() async {
        let task = self.task.withLock { task -> Task<Void, any Error>? in defer { task = nil }; return task }
        task?.cancel()
        _ = try? await task?.value
    }

    // MARK: Scripting

    /// Answers `method path` with `handler`. Path segments written `{name}` match any one segment.
    /// Later routes win over earlier ones for the same request.
    public func route(_ method: NIOHTTP1.HTTPMethod, _ path: String, handler: @escaping Handler) {
        let route = Route(method: method.rawValue, pattern: path.split(separator: "/"), handler: handler)
        state.withLock { $0.routes.insert(route, at: 0) }
    }

    /// Answers `method path` with `replies` in turn; the last one repeats.
    public func route(_ method: NIOHTTP1.HTTPMethod, _ path: String, replies: [Reply]) {
        let counter = ReplyCounter()
        route(method, path) { _ in
            let index = counter.next()
            return replies.isEmpty ? .text(500, "no reply scripted") : replies[min(index, replies.count - 1)]
        }
    }

    /// Answers `method path` with one reply, every time.
    public func route(_ method: NIOHTTP1.HTTPMethod, _ path: String, reply: Reply) {
        route(method, path, replies: [reply])
    }

    /// Forgets the recorded requests.
    public func clearRequests() { state.withLock { $0.requests.removeAll() } }

    // MARK: Serving

    fileprivate func respond(_ request: Request, context: FakeRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: maximumRequestSize)
        let components = URLComponents(string: request.uri.description)
        let captured = CapturedRequest(
            method: request.method.rawValue,
            path: request.uri.path,
            query: (components?.queryItems ?? []).map { ($0.name, $0.value ?? "") },
            headers: request.headers.map { ($0.name.canonicalName.lowercased(), $0.value) },
            body: body
        )
        let handler = state.withLock { state -> Handler? in
            state.requests.append(captured)
            let segments = captured.path.split(separator: "/")
            return state.routes.first { route in
                route.method == captured.method && route.pattern.count == segments.count
                    && zip(route.pattern, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
            }?.handler
        }
        guard let handler else {
            return Self.response(status: 404, headers: [("Content-Type", "application/json")],
                                 body: ByteBuffer(string: #"{"error":{"message":"no fake route for \#(captured.method) \#(captured.path)"}}"#))
        }
        return try await perform(try await handler(captured), context: context)
    }

    private func perform(_ reply: Reply, context: FakeRequestContext) async throws -> Response {
        switch reply {
        case .response(let status, let headers, let body):
            return Self.response(status: status, headers: headers, body: body)
        case .delayed(let duration, let then):
            try await Task.sleep(for: duration)
            return try await perform(then, context: context)
        case .disconnect:
            try await context.channel.close()
            throw CancellationError()
        case .chunks(let status, let headers, let chunks, let pause):
            let counter = self
            return Response(status: .init(code: status), headers: Self.fields(headers), body: ResponseBody { writer in
                do {
                    for chunk in chunks {
                        if pause > .zero { try await Task.sleep(for: pause) }
                        try await writer.write(chunk)
                    }
                    try await writer.finish(nil)
                } catch {
                    counter.state.withLock { $0.disconnects += 1 }
                    throw error
                }
            })
        case .disconnectMidBody(let status, let headers, let chunks):
            let channel = context.channel
            return Response(status: .init(code: status), headers: Self.fields(headers), body: ResponseBody { writer in
                for chunk in chunks { try await writer.write(chunk) }
                try await Task.sleep(for: .milliseconds(20))
                try await channel.close()
                throw CancellationError()
            })
        }
    }

    private static func response(status: Int, headers: [(String, String)], body: ByteBuffer) -> Response {
        var fields = fields(headers)
        fields[.contentLength] = String(body.readableBytes)
        return Response(status: .init(code: status), headers: fields, body: ResponseBody(byteBuffer: body))
    }

    private static func fields(_ headers: [(String, String)]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in headers { if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) } }
        return fields
    }

    /// One event in wire form.
    public static func encode(_ event: ServerSentEvent) -> String {
        var text = ""
        if let id = event.id { text += "id: \(id)\n" }
        if let type = event.event { text += "event: \(type)\n" }
        if let retry = event.retry { text += "retry: \(retry)\n" }
        for line in event.data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
        return text + "\n"
    }
}

/// Hummingbird's request context, keeping the channel so a reply can drop the connection.
struct FakeRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}

/// Lets the responder reach the server object, which exists only once the port is known.
final class ServerHolder: Sendable {
    private let value = Mutex<FakeHTTPServer?>(nil)
    var server: FakeHTTPServer? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// Counts the calls of one scripted route.
final class ReplyCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}
