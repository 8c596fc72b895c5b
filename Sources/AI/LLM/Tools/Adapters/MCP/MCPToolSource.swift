import Foundation
import Logging
import MCP
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import NimbusLLM
import NimbusLLMTools
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The tools of an MCP server, as registry ``Tool``s: connect over stdio (a process it starts) or
/// Streamable HTTP, list the server's tools (every page), and call them through the registry like
/// any local tool — arguments are checked against the server's schema before they are sent.
///
/// ```swift
/// let github = try await MCPToolSource.connect(.process("/usr/local/bin/github-mcp", arguments: ["stdio"]))
/// var tools = ToolRegistry()
/// for tool in try await github.tools() { try tools.register(tool) }
/// ...
/// await github.close()
/// ```
public final class MCPToolSource: Sendable {
    /// Where the server is.
    public enum Endpoint: Sendable {
        /// A program speaking MCP on its stdin/stdout (its stderr goes to this process' stderr unless `quiet`).
        case process(String, arguments: [String] = [], environment: [String: String]? = nil, quiet: Bool = false)
        /// A Streamable HTTP endpoint (`https://host/mcp`).
        case http(String, auth: AuthMiddleware? = nil, headers: [(String, String)] = [])
    }

    /// The SDK client underneath.
    public let client: MCP.Client
    /// The server's name and version, from `initialize`.
    public let serverInfo: MCP.Server.Info
    private let process: Process?

    private let logger: Logger

    private init(client: MCP.Client, serverInfo: MCP.Server.Info, process: Process?, logger: Logger) {
        self.client = client
        self.serverInfo = serverInfo
        self.process = process
        self.logger = logger
    }

    /// Connects and initializes. - Throws: `unavailable` when the program cannot start or the server does not answer within `timeout`.
    public static func connect(_ endpoint: Endpoint, clientName: String = "nimbus", clientVersion: String = NimbusVersion.current,
                               timeout: Duration = .seconds(30), logger: Logger = Logger(label: "nimbus.mcp.client")) async throws -> MCPToolSource {
        let client = MCP.Client(name: clientName, version: clientVersion)
        let transport: any MCP.Transport
        var process: Process?
        switch endpoint {
        case .process(let executable, let arguments, let environment, let quiet):
            let (started, stdio) = try launch(executable, arguments, environment, quiet: quiet)
            process = started
            transport = stdio
        case .http(let url, let auth, let headers):
            var fields = HTTPHeaders()
            for (name, value) in headers { fields.add(name: name, value: value) }
            transport = StreamableHTTPClientTransport(url: url, auth: auth, headers: fields, logger: logger)
        }
        do {
            let result = try await withTimeLimit(timeout, "connecting to the MCP server") { try await client.connect(transport: transport) }
            return MCPToolSource(client: client, serverInfo: result.serverInfo, process: process, logger: logger)
        } catch {
            await client.disconnect()
            process.map(terminate)
            if let nimbus = error as? NimbusError, nimbus.code != .deadlineExceeded { throw nimbus }
            throw NimbusError(.unavailable, "the MCP server did not initialize: \((error as? NimbusError)?.message ?? "\(error)")", underlying: error)
        }
    }

    /// The server's tools as registry tools (all pages). Tools the server marks destructive need approval
    /// unless `requiresApproval` says otherwise; `prefix` avoids name clashes between servers.
    public func tools(prefix: String = "", timeout: Duration = .seconds(60),
                      requiresApproval: @Sendable (MCP.Tool) -> Bool = { $0.annotations.destructiveHint == true }) async throws -> [NimbusLLMTools.Tool] {
        var listed: [MCP.Tool] = []
        var cursor: String?
        repeat {
            let current = cursor
            let page = try await mapped("tools/list") { try await self.client.listTools(cursor: current) }
            listed += page.tools
            cursor = page.nextCursor
        } while cursor != nil && listed.count < 10_000
        let client = client
        return try listed.map { remote in
            let definition = ToolDefinition(name: prefix + remote.name, description: remote.description, parameters: try MCPConversions.json(remote.inputSchema))
            // A third party's schema: keywords it uses that draft 2020-12 does not define, and references it
            // makes to other documents, do not check anything — say so instead of letting them pass unnoticed.
            let unknown = JSONSchema.unknownKeywords(in: definition.parameters), outside = JSONSchema.unresolvedReferences(in: definition.parameters)
            if !unknown.isEmpty || !outside.isEmpty {
                logger.warning("an MCP tool's input schema has parts that check nothing", metadata: [
                    "server": "\(serverInfo.name)", "tool": "\(remote.name)",
                    "unknownKeywords": "\(unknown.joined(separator: ", "))", "unresolvedReferences": "\(outside.joined(separator: ", "))",
                ])
            }
            return try NimbusLLMTools.Tool(definition: definition, requiresApproval: requiresApproval(remote), timeout: timeout) { invocation in
                let arguments = try invocation.arguments.objectValue?.mapValues(MCPConversions.value)
                let result = try await MCPToolSource.mapped("tools/call \(remote.name)") {
                    try await client.callTool(name: remote.name, arguments: arguments)
                }
                return ToolOutput(content: MCPConversions.parts(result.content), isError: result.isError ?? false)
            }
        }
    }

    /// Disconnects, and stops the program it started (SIGTERM, then SIGKILL after 2 s).
    public func close() async {
        await client.disconnect()
        process.map(Self.terminate)
    }

    func mapped<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T) async throws -> T {
        try await Self.mapped(what, body)
    }

    /// MCP errors as `NimbusError`s that say which call failed.
    static func mapped<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as MCPError {
            let code: NimbusError.Code = switch error {
            case .invalidParams, .invalidRequest: .invalidArgument
            case .methodNotFound: .unimplemented
            case .connectionClosed, .transportError: .unavailable
            default: .internal
            }
            throw NimbusError(code, "MCP \(what) failed: \(error.errorDescription ?? "\(error)")", underlying: error)
        }
    }

    private static func launch(_ executable: String, _ arguments: [String], _ environment: [String: String]?,
                               quiet: Bool) throws -> (Process, StdioTransport) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.contains("/") ? executable : "/usr/bin/env")
        process.arguments = executable.contains("/") ? arguments : [executable] + arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
        let toChild = Pipe(), fromChild = Pipe()
        process.standardInput = toChild
        process.standardOutput = fromChild
        if quiet { process.standardError = FileHandle.nullDevice }
        do { try process.run() } catch {
            throw NimbusError(.unavailable, "cannot start the MCP server '\(executable)': \(error)", underlying: error)
        }
        let transport = StdioTransport(input: FileDescriptor(rawValue: fromChild.fileHandleForReading.fileDescriptor),
                                       output: FileDescriptor(rawValue: toChild.fileHandleForWriting.fileDescriptor))
        return (process, transport)
    }

    private static func terminate(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) {
            if process.isRunning { kill(pid, SIGKILL) }
        }
    }
}
