import Foundation
import Logging
import MCP
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP

/// MCP's Streamable HTTP transport (spec 2025-03-26 and later), client side, on ``NimbusHTTPClient``:
/// each message is a POST; the server answers 202, one JSON message, or an SSE stream of messages
/// ending with the response. The `Mcp-Session-Id` the server assigns and the negotiated
/// `MCP-Protocol-Version` are sent on every later request; closing sends `DELETE`.
///
/// It exists because the SDK's own HTTP client transport reads SSE answers only on Apple platforms;
/// this one streams them on Linux too, with TLS verification, retries of nothing unsafe, size limits
/// and metrics from ``NimbusHTTPClient``.
///
/// ```swift
/// let transport = StreamableHTTPClientTransport(url: "https://tools.internal/mcp", auth: .bearer(token))
/// let client = MCP.Client(name: "agent", version: "1.0")
/// try await client.connect(transport: transport)
/// ```
public actor StreamableHTTPClientTransport: MCP.Transport {
    public nonisolated let logger: Logger
    private let url: String
    private let http: NimbusHTTPClient
    private let streamTimeout: Duration
    private var sessionID: String?
    private var protocolVersion: String?
    private var readers: [Task<Void, Never>] = []
    private let incoming: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation

    /// Creates a transport to the server's MCP endpoint.
    /// - Parameters:
    ///   - streamTimeout: how long one answer (an SSE stream of a long tool call included) may take.
    public init(url: String, auth: AuthMiddleware? = nil, headers: HTTPHeaders = [:], streamTimeout: Duration = .seconds(300),
                httpClient: NimbusHTTPClient? = nil, logger: Logger = Logger(label: "nimbus.mcp.http")) {
        self.url = url
        self.logger = logger
        self.streamTimeout = streamTimeout
        self.http = httpClient ?? NimbusHTTPClient(configuration: .init(service: "mcp", defaultHeaders: headers, auth: auth,
                                                                        retry: .none, timeout: streamTimeout), logger: logger)
        (incoming, continuation) = AsyncThrowingStream.makeStream()
    }

    public func connect() async throws {}

    public func disconnect() async {
        for reader in readers { reader.cancel() }
        readers = []
        if let sessionID {
            var request = NimbusHTTPRequest(.DELETE, url, operation: "mcp.session.delete")
            request.headers.add(name: "Mcp-Session-Id", value: sessionID)
            request.timeout = .seconds(5)
            _ = try? await http.send(request)      // a server may answer 405: sessions then just expire
        }
        sessionID = nil
        continuation.finish()
    }

    public func receive() -> AsyncThrowingStream<Data, any Error> { incoming }

    public func send(_ data: Data) async throws {
        var request = NimbusHTTPRequest(.POST, url, body: ByteBuffer(bytes: data), operation: "mcp.message")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        if let sessionID { request.headers.add(name: "Mcp-Session-Id", value: sessionID) }
        if let protocolVersion { request.headers.add(name: "MCP-Protocol-Version", value: protocolVersion) }
        request.timeout = streamTimeout
        let response = try await http.send(request)
        if let assigned = response.headers.first(name: "Mcp-Session-Id"), !assigned.isEmpty { sessionID = assigned }
        guard response.isSuccess else {
            let body = (try? await response.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
            if response.status == .notFound, sessionID != nil {
                sessionID = nil
                throw NimbusError(.unavailable, "the MCP server at \(url) no longer knows this session (404); connect again to start a new one")
            }
            throw response.error("the MCP server at \(url) answered \(response.status.code): \(body.prefix(300))")
        }
        if response.status == .accepted { return }
        let type = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        if type.contains("text/event-stream") {
            let body = response.body, continuation = continuation, url = url, logger = logger
            let reader = Task { [weak self] in
                do {
                    for try await event in ServerSentEventStream(body) where event.event == nil || event.event == "message" {
                        guard !event.data.isEmpty else { continue }    // priming events carry only an id
                        let message = Data(event.data.utf8)
                        await self?.sniffProtocolVersion(message)
                        continuation.yield(message)
                    }
                } catch is CancellationError {
                } catch {
                    logger.warning("MCP answer stream broke", metadata: ["url": "\(url)", "error": "\(error)"])
                    continuation.finish(throwing: NimbusError(.unavailable, "the MCP server's answer stream from \(url) broke: \(error)", underlying: error))
                }
            }
            readers.removeAll { $0.isCancelled }
            readers.append(reader)
        } else if type.contains("application/json") {
            let message = Data(try await response.collect().readableBytesView)
            sniffProtocolVersion(message)
            continuation.yield(message)
        } else {
            let body = (try? await response.collect(upTo: 4 * 1024)).map { String(buffer: $0) } ?? ""
            throw NimbusError(.dataLoss, "the MCP server at \(url) answered with Content-Type '\(type)', not JSON or an event stream: \(body.prefix(200))")
        }
    }

    /// Remembers the protocol version the server chose in its `initialize` result.
    private func sniffProtocolVersion(_ message: Data) {
        guard protocolVersion == nil, let json = try? JSONValue.parse(message),
              let version = json["result"]?["protocolVersion"]?.stringValue else { return }
        protocolVersion = version
    }
}
