import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MCP
import NIOCore
import NimbusCore
import NimbusLLM
import NimbusLLMTools
import SystemPackage

/// Serves a ``ToolRegistry`` as an MCP server: `tools/list` gives each tool's schema (tools that
/// need approval are marked destructive), `tools/call` runs it through the registry — arguments
/// checked, time limit, approvals — and returns its content, with `isError` for failures. Unknown
/// tools are a JSON-RPC invalid-params error, as the spec asks.
///
/// ```swift
/// let server = MCPToolServer(registry: tools, name: "billing-tools")
/// try await server.runStdio()                              // for desktop clients that start a process
/// // or over Streamable HTTP, in a Hummingbird router:
/// let endpoint = MCPHTTPEndpoint(server: server)
/// router.addMCP(at: "/mcp", endpoint: endpoint)
/// ```
public struct MCPToolServer: Sendable {
    /// The tools.
    public var registry: ToolRegistry
    /// The name and version announced in `initialize`.
    public var name: String
    /// The version announced.
    public var version: String
    /// Instructions announced to clients.
    public var instructions: String?
    /// Asked before calls to tools that need approval (without one, such calls are refused).
    public var approver: ToolApprover?

    /// Creates a server.
    public init(registry: ToolRegistry, name: String = "nimbus", version: String = NimbusVersion.current,
                instructions: String? = nil, approver: ToolApprover? = nil) {
        self.registry = registry
        self.name = name
        self.version = version
        self.instructions = instructions
        self.approver = approver
    }

    /// A new SDK server answering `tools/list` and `tools/call` (one per session or connection).
    public func makeServer() async throws -> MCP.Server {
        let server = MCP.Server(name: name, version: version, instructions: instructions,
                                capabilities: .init(tools: .init(listChanged: false)))
        let tools = try registry.all.map { tool in
            MCP.Tool(name: tool.name, description: tool.definition.description, inputSchema: try MCPConversions.value(tool.definition.parameters),
                     annotations: .init(destructiveHint: tool.requiresApproval))
        }
        let registry = registry, approver = approver
        await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: tools) }
        await server.withMethodHandler(CallTool.self) { parameters in
            guard registry[parameters.name] != nil else {
                throw MCPError.invalidParams("Unknown tool: \(parameters.name). Available: \(registry.all.map(\.name).joined(separator: ", "))")
            }
            let arguments = try MCPConversions.json(.object(parameters.arguments ?? [:]))
            let call = ToolCall(id: "mcp_\(IDGenerator.shared.ulid())", name: parameters.name, arguments: arguments.description)
            let execution = await registry.execute([call], approver: approver)[0]
            return CallTool.Result(content: MCPConversions.content(execution.output.content), isError: execution.output.isError)
        }
        return server
    }

    /// Serves newline-delimited JSON-RPC on two file descriptors (by default this process' stdin and
    /// stdout) until the client closes its end.
    public func runStdio(input: SystemPackage.FileDescriptor = .standardInput, output: SystemPackage.FileDescriptor = .standardOutput,
                         logger: Logger? = nil) async throws {
        let server = try await makeServer()
        try await server.start(transport: StdioTransport(input: input, output: output, logger: logger))
        await server.waitUntilCompleted()
    }
}

/// A Streamable HTTP MCP endpoint: one session (an SDK server and its stateful transport) per client,
/// created by `initialize`, found by `Mcp-Session-Id`, ended by `DELETE` or after being idle.
public actor MCPHTTPEndpoint {
    /// Settings.
    public struct Configuration: Sendable {
        /// DNS-rebinding protection: which `Host` and `Origin` values are accepted (default: localhost
        /// only; name your public host names, or use `.disabled` behind a gateway that checks them).
        public var originValidator: OriginValidator
        /// Sessions unused this long are closed.
        public var sessionIdleTimeout: Duration
        /// The most sessions at once; `initialize` beyond it gets 503.
        public var maxSessions: Int
        /// Who may call (`nil`: anyone who can reach the endpoint — fine on loopback, not beyond).
        public var authenticator: Authenticator?
        /// The most sessions one authenticated client may hold; `initialize` beyond it gets 429.
        /// Applies when an ``authenticator`` names clients (without one every caller is the same client,
        /// and only ``maxSessions`` applies).
        public var maxSessionsPerClient: Int

        /// Creates settings.
        public init(originValidator: OriginValidator = .localhost(), sessionIdleTimeout: Duration = .seconds(1800), maxSessions: Int = 1000,
                    authenticator: Authenticator? = nil, maxSessionsPerClient: Int = 16) {
            self.originValidator = originValidator
            self.sessionIdleTimeout = sessionIdleTimeout
            self.maxSessions = max(1, maxSessions)
            self.authenticator = authenticator
            self.maxSessionsPerClient = max(1, maxSessionsPerClient)
        }
    }

    /// Decides who is calling from a request's headers: a client name, or `nil` to refuse with 401.
    /// A session belongs to the client that opened it; another client's requests do not find it.
    ///
    /// ```swift
    /// let endpoint = MCPHTTPEndpoint(server: tools, configuration: .init(
    ///     originValidator: .disabled, authenticator: .bearerTokens(["ci": Secret(ciToken), "ide": Secret(ideToken)])))
    /// ```
    public struct Authenticator: Sendable {
        let identify: @Sendable (_ headers: [String: String]) async -> String?

        /// An authenticator from a function of the request headers (names as sent; look them up case-insensitively).
        public init(_ identify: @escaping @Sendable (_ headers: [String: String]) async -> String?) { self.identify = identify }

        /// `Authorization: Bearer <token>`, each token naming a client; compared in constant time.
        public static func bearerTokens(_ tokens: [String: Secret<String>]) -> Authenticator {
            Authenticator { headers in
                guard let value = headers.first(where: { $0.key.lowercased() == "authorization" })?.value, value.hasPrefix("Bearer ") else { return nil }
                let presented = String(value.dropFirst(7))
                var found: String?
                for (client, token) in tokens where token.matches(presented) { found = client }   // no early exit: same time for every token
                return found
            }
        }
    }

    private struct Session {
        let server: MCP.Server
        let transport: StatefulHTTPServerTransport
        var lastUsed: ContinuousClock.Instant
        let client: String?
    }

    private let server: MCPToolServer
    private let configuration: Configuration
    private var sessions: [String: Session] = [:]
    private let logger: Logger

    /// Creates an endpoint for a tool server.
    public init(server: MCPToolServer, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "nimbus.mcp.server")) {
        self.server = server
        self.configuration = configuration
        self.logger = logger
    }

    /// The number of open sessions.
    public var sessionCount: Int { sessions.count }

    /// Answers one HTTP request.
    public func handle(_ request: MCP.HTTPRequest) async -> MCP.HTTPResponse {
        expireIdleSessions()
        var client: String?
        if let authenticator = configuration.authenticator {
            guard let identified = await authenticator.identify(request.headers) else {
                return .error(statusCode: 401, .invalidRequest("Unauthorized: send Authorization: Bearer <token>"), extraHeaders: ["WWW-Authenticate": "Bearer"])
            }
            client = identified
        }
        if let id = request.header(HTTPHeaderName.sessionID) {
            guard var session = sessions[id], session.client == client else {
                return .error(statusCode: 404, .invalidRequest("Not Found: unknown or expired session; initialize again"))
            }
            session.lastUsed = .now
            sessions[id] = session
            let response = await session.transport.handleRequest(request)
            if request.method.uppercased() == "DELETE", response.statusCode == 200 { await close(id) }
            return response
        }
        guard request.method.uppercased() == "POST", Self.isInitialize(request.body) else {
            return .error(statusCode: 400, .invalidRequest("Bad Request: send initialize first, then the Mcp-Session-Id it returns"))
        }
        guard sessions.count < configuration.maxSessions else {
            return .error(statusCode: 503, .internalError("too many MCP sessions; retry later"), extraHeaders: ["Retry-After": "5"])
        }
        if let client, sessions.values.filter({ $0.client == client }).count >= configuration.maxSessionsPerClient {
            return .error(statusCode: 429, .invalidRequest("Too Many Requests: this client has \(configuration.maxSessionsPerClient) sessions open, its limit; "
                                                           + "end one with DELETE or let it expire"), extraHeaders: ["Retry-After": "5"])
        }
        let id = UUID().uuidString
        let transport = StatefulHTTPServerTransport(
            sessionIDGenerator: FixedSessionID(id: id),
            validationPipeline: StandardValidationPipeline(validators: [
                configuration.originValidator, AcceptHeaderValidator(mode: .sseRequired), ContentTypeValidator(),
                ProtocolVersionValidator(), SessionValidator(),
            ]))
        do {
            let sdkServer = try await server.makeServer()
            try await sdkServer.start(transport: transport)
            sessions[id] = Session(server: sdkServer, transport: transport, lastUsed: .now, client: client)
        } catch {
            logger.error("cannot start an MCP session", metadata: ["error": "\(error)"])
            return .error(statusCode: 500, .internalError("cannot start a session: \(error)"))
        }
        let response = await transport.handleRequest(request)
        if response.statusCode >= 400 { await close(id) }
        return response
    }

    /// Closes every session (on shutdown).
    public func closeAll() async {
        for id in Array(sessions.keys) { await close(id) }
    }

    private func close(_ id: String) async {
        guard let session = sessions.removeValue(forKey: id) else { return }
        await session.server.stop()
    }

    private func expireIdleSessions() {
        let now = ContinuousClock.now
        for (id, session) in sessions where now - session.lastUsed > configuration.sessionIdleTimeout {
            sessions[id] = nil
            Task { await session.server.stop() }
        }
    }

    static func isInitialize(_ body: Data?) -> Bool {
        guard let body, let json = try? JSONValue.parse(body) else { return false }
        if json["method"] == "initialize" { return true }
        return json.arrayValue?.contains { $0["method"] == "initialize" } ?? false
    }

    private struct FixedSessionID: SessionIDGenerator {
        let id: String
        func generateSessionID() -> String { id }
    }
}

extension Router {
    /// Mounts an MCP endpoint at `path` (POST, GET and DELETE), reading request bodies up to `maxBodySize`.
    public func addMCP(at path: RouterPath, endpoint: MCPHTTPEndpoint, maxBodySize: Int = 4 * 1024 * 1024) {
        let handler: @Sendable (Request, Context) async throws -> Response = { request, _ in
            let body: ByteBuffer
            do { body = try await request.body.collect(upTo: maxBodySize) } catch {
                throw HTTPError(.contentTooLarge, message: "MCP messages are limited to \(maxBodySize) bytes")
            }
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            if let authority = request.head.authority { headers["Host"] = authority }
            let answer = await endpoint.handle(MCP.HTTPRequest(method: request.method.rawValue, headers: headers,
                                                               body: body.readableBytes > 0 ? Data(body.readableBytesView) : nil, path: request.uri.path))
            var fields = HTTPFields()
            for (name, value) in answer.headers { if let name = HTTPField.Name(name) { fields[name] = value } }
            let status = HTTPResponse.Status(code: answer.statusCode)
            switch answer {
            case .stream(let stream, _):
                return Response(status: status, headers: fields, body: ResponseBody(asyncSequence: stream.map { ByteBuffer(bytes: $0) }))
            default:
                return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.bodyData ?? Data())))
            }
        }
        on(path, method: .post, use: handler)
        on(path, method: .get, use: handler)
        on(path, method: .delete, use: handler)
    }
}
