import Foundation
import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import Synchronization
import Testing

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

        /// A request as the fake would capture it (for checking a spec without a round trip).
        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)] = [], body: ByteBuffer = ByteBuffer()) {
            self.method = method; self.path = path; self.query = query; self.headers = headers.map { ($0.0.lowercased(), $0.1) }; self.body = body
        }

        /// The first value of a header (case-insensitive).
        public func header(_ name: String) -> String? {
            headers.header(name)
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

    /// A request the server's check refused, and why.
    public struct Refusal: Sendable, CustomStringConvertible {
        /// The request as received (after any mutation).
        public var request: CapturedRequest
        /// What the check found.
        public var problems: [String]
        public var description: String { "\(request): \(problems.joined(separator: "; "))" }
    }

    /// Finds what is wrong with a request (empty: nothing).
    public typealias RequestCheck = @Sendable (CapturedRequest) -> [String]
    /// The answer to a refused request, from the problems found.
    public typealias RefusalReply = @Sendable ([String]) -> Reply
    /// Rewrites a request as it arrives.
    public typealias RequestMutation = @Sendable (CapturedRequest) -> CapturedRequest

    private struct State {
        var routes: [Route] = []
        var requests: [CapturedRequest] = []
        var disconnects = 0
        var checks: [(RequestCheck, RefusalReply)] = []
        var refusals: [Refusal] = []
        var mutation: RequestMutation?
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

    /// Answers `method path` with `handler`. Path segments written `{name}` match any one segment; a
    /// last segment written `{name...}` matches one or more. Later routes win over earlier ones for the same request.
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

    // MARK: Checking

    /// Checks every request before any route sees it — routes added later included, so a test that
    /// replaces a route cannot bypass it. A request with problems is answered with `reply(problems)`,
    /// kept in ``refusals`` and recorded as an issue of the test that started the server, so the
    /// test fails even when it expected the call to fail for another reason.
    ///
    /// ```swift
    /// server.refuseRequests(failing: { spec.check($0).map(\.description) }) { problems in
    ///     .json(400, ["error": ["message": .string(problems.joined(separator: "; "))]])
    /// }
    /// ```
    public func refuseRequests(failing check: @escaping RequestCheck, with reply: @escaping RefusalReply) {
        state.withLock { $0.checks.append((check, reply)) }
    }

    /// Refuses every request that departs from `spec` (see ``refuseRequests(failing:with:)``).
    public func refuseRequests(departingFrom spec: OpenAPIRequestChecker, with reply: @escaping RefusalReply) {
        refuseRequests(failing: { spec.check($0).map(\.description) }, with: reply)
    }

    /// The requests refused so far, in arrival order.
    public var refusals: [Refusal] { state.withLock { $0.refusals } }

    /// Rewrites each request as it arrives, before checks and routes: a mutation test makes the
    /// adapter appear to send something else (a renamed field) and expects the check to refuse it.
    /// While a mutation is set, refusals are expected and are not recorded as test issues; the
    /// test reads ``refusals`` instead.
    public func mutateRequests(_ mutation: @escaping RequestMutation) {
        state.withLock { $0.mutation = mutation }
    }

    // MARK: Serving

    fileprivate func respond(_ request: Request, context: FakeRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: maximumRequestSize)
        let components = URLComponents(string: request.uri.description)
        let received = CapturedRequest(
            method: request.method.rawValue,
            path: request.uri.path,
            query: (components?.queryItems ?? []).map { ($0.name, $0.value ?? "") },
            headers: request.headers.map { ($0.name.canonicalName.lowercased(), $0.value) },
            body: body
        )
        let (mutation, checks) = state.withLock { ($0.mutation, $0.checks) }
        let captured = mutation?(received) ?? received
        for (check, reply) in checks {
            let problems = check(captured)
            guard !problems.isEmpty else { continue }
            state.withLock {
                $0.requests.append(captured)
                $0.refusals.append(Refusal(request: captured, problems: problems))
            }
            if mutation == nil {
                Issue.record("the fake refused \(captured): \(problems.joined(separator: "; "))")
            }
            return try await perform(reply(problems), context: context)
        }
        let handler = state.withLock { state -> Handler? in
            state.requests.append(captured)
            let segments = captured.path.split(separator: "/")
            return state.routes.first { route in
                guard route.method == captured.method else { return false }
                if let last = route.pattern.last, last.hasSuffix("...}") {   // `{path...}`: one or more remaining segments
                    return segments.count >= route.pattern.count && zip(route.pattern.dropLast(), segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
                }
                return route.pattern.count == segments.count && zip(route.pattern, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
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
        // A Content-Length given with no body is a HEAD answer's: the size of what a GET would send.
        if fields[.contentLength] == nil || body.readableBytes > 0 { fields[.contentLength] = String(body.readableBytes) }
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

extension FakeHTTPServer.CapturedRequest {
    /// This request with a field of its body renamed: a member of the JSON object at `path`
    /// (`["generationConfig"]` for a nested one; top level by default) or a form field and its nested
    /// keys (`capture_method`, `metadata[...]`). For mutation tests: the adapter appears to have
    /// misspelled a field, and the fake's spec check must refuse it. Other bodies are left as they are.
    public func renamingField(_ name: String, to newName: String, at path: [String] = []) -> Self {
        var copy = self
        let contentType = header("content-type") ?? ""
        if contentType.contains("x-www-form-urlencoded") {
            let pairs = FormDecoder.pairs(bodyText).map { key, value -> String in
                var key = key
                if key == name || key.hasPrefix(name + "[") { key = newName + key.dropFirst(name.count) }
                return FormEncoder.escape(key) + "=" + FormEncoder.escape(value)
            }
            copy.body = ByteBuffer(string: pairs.joined(separator: "&"))
        } else if let json = try? json() {
            copy.body = ByteBuffer(string: Self.renaming(json, name, newName, path[...]).description)
        }
        copy.headers = headers.filter { $0.0 != "content-length" } + [("content-length", String(copy.body.readableBytes))]
        return copy
    }

    private static func renaming(_ value: JSONValue, _ name: String, _ newName: String, _ path: ArraySlice<String>) -> JSONValue {
        guard case .object(var members) = value else { return value }
        if let first = path.first {
            if let inner = members[first] { members[first] = renaming(inner, name, newName, path.dropFirst()) }
        } else if let moved = members.removeValue(forKey: name) {
            members[newName] = moved
        }
        return .object(members)
    }
}

extension FakeHTTPServer {
    /// A mutation test of the server's check: while `call` runs, every request arrives with `field`
    /// renamed to `misspelling` (see ``CapturedRequest/renamingField(_:to:at:)``). The call must fail,
    /// and the server must have refused a request for the misspelled name. Either miss is a test issue,
    /// so a check that lets unknown fields through — or an adapter that stopped sending `field` —
    /// fails the test. Returns the refusals, for further expectations.
    ///
    /// ```swift
    /// await fake.server.expectRefusal(renaming: "max_completion_tokens", to: "max_completion_token") {
    ///     _ = try await model.chat(ChatRequest(messages: [.user("hi")], maxTokens: 5))
    /// }
    /// ```
    @discardableResult
    public func expectRefusal(renaming field: String, to misspelling: String, at path: [String] = [],
                              sourceLocation: SourceLocation = #_sourceLocation,
                              _ call: () async throws -> Void) async -> [Refusal] {
        let before = refusals.count
        mutateRequests { $0.renamingField(field, to: misspelling, at: path) }
        defer { state.withLock { $0.mutation = nil } }
        do {
            try await call()
            Issue.record("the call succeeded with '\(field)' renamed to '\(misspelling)': the check let an unknown field through", sourceLocation: sourceLocation)
        } catch {}
        let caused = Array(refusals.dropFirst(before))
        let named = caused.contains { $0.problems.contains { Self.mentions($0, misspelling) } }
        if !named {
            Issue.record("no refusal named '\(misspelling)' (refusals: \(caused.map(\.description)))", sourceLocation: sourceLocation)
        }
        return caused
    }

    /// Whether `text` names `token` as a whole word (`max_token` is not named by `max_tokens`).
    public static func mentions(_ text: String, _ token: String) -> Bool {
        var searchRange = text.startIndex..<text.endIndex
        while let found = text.range(of: token, range: searchRange) {
            let before = found.lowerBound == text.startIndex ? nil : text[text.index(before: found.lowerBound)]
            let after = found.upperBound == text.endIndex ? nil : text[found.upperBound]
            func isWord(_ character: Character?) -> Bool { character.map { $0.isLetter || $0.isNumber || $0 == "_" } ?? false }
            if !isWord(before) && !isWord(after) { return true }
            searchRange = found.upperBound..<text.endIndex
        }
        return false
    }
}
