import Foundation
import Hummingbird
import Logging
import MCP
import NimbusCore
import NimbusLLM
import NimbusLLMTools
import NimbusLLMToolsMCP
import NimbusTesting
import SystemPackage
import Testing

func fixture(_ name: String) throws -> String {
    try #require(Bundle.module.url(forResource: name, withExtension: "py", subdirectory: "Fixtures")).path
}

/// The Python reference server over HTTP on a free port, stopped by `stop()`.
struct PythonServer {
    let process: Process
    let url: String

    static func start() async throws -> PythonServer {
        let port = try LocalPorts.free()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Peer.mcpSDK.url())
        process.arguments = [try fixture("mcp_reference_server"), "http", String(port)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        do { try await LocalPorts.waitUntilListening(port) } catch { ProcessRunner.stop(process); throw error }
        return PythonServer(process: process, url: "http://127.0.0.1:\(port)/mcp")
    }

    func stop() { ProcessRunner.stop(process) }
}

/// Registry tools on a Python reference server: the same checks over both transports.
func checkPythonTools(_ source: MCPToolSource) async throws {
    #expect(source.serverInfo.name == "py-reference")
    let tools = try await source.tools()
    #expect(Set(tools.map(\.name)) == ["add", "describe_city", "fail", "delete_everything", "pixel"])
    #expect(tools.first { $0.name == "delete_everything" }?.requiresApproval == true, "destructive tools need approval")
    #expect(tools.first { $0.name == "add" }?.requiresApproval == false)
    let registry = try ToolRegistry(tools)
    let executions = await registry.execute([
        ToolCall(id: "1", name: "add", arguments: #"{"a":2,"b":40}"#),
        ToolCall(id: "2", name: "describe_city", arguments: #"{"city":"Oslo","units":"kelvin"}"#),
        ToolCall(id: "3", name: "describe_city", arguments: #"{"city":"Oslo","units":"imperial"}"#),
        ToolCall(id: "4", name: "fail", arguments: #"{"reason":"test"}"#),
        ToolCall(id: "5", name: "pixel", arguments: "{}"),
        ToolCall(id: "6", name: "delete_everything", arguments: #"{"confirm":true}"#),
    ])
    #expect(executions.map(\.outcome) == [.succeeded, .invalidArguments, .succeeded, .failed, .succeeded, .denied])
    #expect(executions[0].output.text == "42")
    #expect(executions[1].output.text.contains("/units: must be one of"), "the server's schema is checked before sending")
    #expect(executions[2].output.text == "Oslo: 21 degrees F")
    #expect(executions[3].output.isError && executions[3].output.text.contains("failed on purpose: test"))
    guard case .image(.data(let png, let type), _)? = executions[4].output.content.first else {
        Issue.record("pixel did not return an image: \(executions[4].output.content)")
        return
    }
    #expect(type == "image/png" && png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
}

/// A registry to serve: a typed tool, one that needs approval.
func servedRegistry() throws -> ToolRegistry {
    struct AddInput: Codable, Sendable { var a: Int; var b: Int }
    return try ToolRegistry([
        Tool("add", description: "Adds two integers") { (input: AddInput) in input.a + input.b },
        Tool("secret", description: "Reads a secret (needs approval)", requiresApproval: true) { (_: [String: String]) in "s3cr3t" },
    ])
}

/// What the Python client reported about our server (see mcp_reference_client.py).
func checkClientReport(_ path: String) throws {
    let report = try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: path)))
    #expect(report["server"]?["name"] == "nimbus-test")
    #expect(report["tools"]?["add"]?["schema"]?["required"] == ["a", "b"])
    #expect(report["tools"]?["add"]?["destructive"] == false)
    #expect(report["tools"]?["secret"]?["destructive"] == true)
    #expect(report["add"] == ["isError": false, "content": [["type": "text", "text": "42"]]])
    #expect(report["add_bad"]?["isError"] == true)
    #expect(report["add_bad"]?["content"]?.arrayValue?.first?["text"]?.stringValue?.contains("/a: expected integer, got string") == true)
    #expect(report["secret"]?["isError"] == true, "no approver: the call is refused, and the secret is not sent")
    #expect(report["secret"]?.description.contains("s3cr3t") == false)
    #expect(report["unknown"]?["code"] == -32602)
}

@Suite("MCP against the reference Python SDK", .requires(.mcpSDK), .timeLimit(.minutes(2)))
struct MCPReferenceTests {
    @Test func usesThePythonServersToolsOverStdio() async throws {
        let source = try await MCPToolSource.connect(.process(try Peer.mcpSDK.url(), arguments: [try fixture("mcp_reference_server"), "stdio"], quiet: true))
        do { try await checkPythonTools(source) } catch { await source.close(); throw error }
        await source.close()
    }

    @Test func usesThePythonServersToolsOverStreamableHTTP() async throws {
        let server = try await PythonServer.start()
        defer { server.stop() }
        let source = try await MCPToolSource.connect(.http(server.url))
        do { try await checkPythonTools(source) } catch { await source.close(); throw error }
        await source.close()
    }

    @Test func servesARegistryToThePythonClientOverStreamableHTTP() async throws {
        let endpoint = MCPHTTPEndpoint(server: MCPToolServer(registry: try servedRegistry(), name: "nimbus-test"))
        let router = Router()
        router.addMCP(at: "/mcp", endpoint: endpoint)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var quiet = Logger(label: "mcp-test")
        quiet.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0); continuation.finish() }, logger: quiet)
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        defer { task.cancel() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mcp-report-\(IDGenerator.shared.ulid()).json").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try await ProcessRunner.run(try Peer.mcpSDK.url(), [try fixture("mcp_reference_client"), "http", "http://127.0.0.1:\(port)/mcp", out])
        #expect(result.status == 0, "the Python client failed: \(result.output)")
        try checkClientReport(out)
        #expect(await endpoint.sessionCount == 0, "the client's DELETE closed its session")
        await endpoint.closeAll()
    }

    /// Issue 15 §4: the HTTP endpoint can require authentication; a session belongs to its client, and
    /// each client holds a bounded number of sessions.
    @Test func theHTTPEndpointAuthenticatesAndCapsSessionsPerClient() async throws {
        let endpoint = MCPHTTPEndpoint(server: MCPToolServer(registry: try servedRegistry(), name: "nimbus-test"), configuration: .init(
            authenticator: .bearerTokens(["alice": Secret("alice-token-0123"), "bob": Secret("bob-token-456789")]), maxSessionsPerClient: 2))
        defer { Task { await endpoint.closeAll() } }
        let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#
        func post(_ body: String, token: String?, session: String? = nil) async -> MCP.HTTPResponse {
            var headers = ["Content-Type": "application/json", "Accept": "application/json, text/event-stream", "Host": "127.0.0.1:8080"]
            if let token { headers["Authorization"] = "Bearer \(token)" }
            if let session {
                headers["Mcp-Session-Id"] = session
                headers["MCP-Protocol-Version"] = "2025-06-18"
            }
            return await endpoint.handle(MCP.HTTPRequest(method: "POST", headers: headers, body: Data(body.utf8), path: "/mcp"))
        }
        #expect(await post(initialize, token: nil).statusCode == 401)
        #expect(await post(initialize, token: "alice-token-0124").statusCode == 401)
        let first = await post(initialize, token: "alice-token-0123")
        #expect(first.statusCode == 200)
        let session = try #require(first.headers.first { $0.key.lowercased() == "mcp-session-id" }?.value)
        #expect(await post(initialize, token: "alice-token-0123").statusCode == 200)
        let third = await post(initialize, token: "alice-token-0123")
        #expect(third.statusCode == 429, "a third session for alice is over her cap of 2")
        #expect(await post(initialize, token: "bob-token-456789").statusCode == 200, "bob has his own sessions")
        let list = #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#
        #expect(await post(list, token: "bob-token-456789", session: session).statusCode == 404, "bob cannot use alice's session")
        #expect(await post(list, token: "alice-token-0123", session: session).statusCode < 300)
        #expect(await endpoint.sessionCount == 3)
    }

    @Test func servesARegistryToThePythonClientOverStdio() async throws {
        // The Python client speaks MCP on its own stdin/stdout; our server holds the other ends of the pipes.
        let toClient = Pipe(), fromClient = Pipe()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mcp-report-\(IDGenerator.shared.ulid()).json").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Peer.mcpSDK.url())
        process.arguments = [try fixture("mcp_reference_client"), "stdio", out]
        process.standardInput = toClient
        process.standardOutput = fromClient
        let errorsPath = out + ".stderr"
        _ = FileManager.default.createFile(atPath: errorsPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        process.standardError = FileHandle(forWritingAtPath: errorsPath)
        try process.run()
        let server = MCPToolServer(registry: try servedRegistry(), name: "nimbus-test")
        let serving = Task {
            try await server.runStdio(input: FileDescriptor(rawValue: fromClient.fileHandleForReading.fileDescriptor),
                                      output: FileDescriptor(rawValue: toClient.fileHandleForWriting.fileDescriptor))
        }
        let status = try? await ProcessRunner.wait(for: process, timeout: .seconds(60))
        serving.cancel()
        let stderr = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
        #expect(status == 0, "the Python client failed: \(stderr)")
        try checkClientReport(out)
    }

    @Test func aServerThatIsNotThereIsAClearError() async throws {
        let port = try LocalPorts.free()
        let error = await #expect(throws: NimbusError.self) { try await MCPToolSource.connect(.http("http://127.0.0.1:\(port)/mcp"), timeout: .seconds(5)) }
        #expect(error?.code == .unavailable)
        let missing = await #expect(throws: NimbusError.self) { try await MCPToolSource.connect(.process("/nonexistent/mcp-server")) }
        #expect(missing?.message.contains("/nonexistent/mcp-server") == true)
    }
}
