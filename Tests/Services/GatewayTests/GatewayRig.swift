import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusGateway
import NimbusHTTP
import NimbusServer
import NimbusTesting
import Prometheus

/// A gateway on a free loopback port, with its own state directory.
final class GatewayRig: Sendable {
    let gateway: Gateway
    let baseURL: String
    let stateDirectory: String
    let registry: PrometheusCollectorRegistry
    private let task: Task<Void, any Error>
    let client = NimbusHTTPClient(configuration: .init(service: "gateway-test", retry: .none, timeout: .seconds(30)))

    private init(gateway: Gateway, baseURL: String, stateDirectory: String, registry: PrometheusCollectorRegistry, task: Task<Void, any Error>) {
        self.gateway = gateway
        self.baseURL = baseURL
        self.stateDirectory = stateDirectory
        self.registry = registry
        self.task = task
    }

    static func start(_ configuration: GatewayConfiguration) async throws -> GatewayRig {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-gateway-\(IDGenerator.shared.ulid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let registry = PrometheusCollectorRegistry()
        let gateway = try await Gateway(configuration: configuration, stateDirectory: directory, metricsFactory: PrometheusMetricsFactory(registry: registry))
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var quiet = Logger(label: "nimbus.gateway-test")
        quiet.logLevel = .critical
        let app = try NimbusServer.application(configuration: .init(host: "127.0.0.1", port: 0, stateDirectory: directory, metricsToken: configuration.metricsToken), metrics: registry,
                                               modules: [gateway], logger: quiet) { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        }
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            throw NimbusError(.unavailable, "the gateway did not start")
        }
        return GatewayRig(gateway: gateway, baseURL: "http://127.0.0.1:\(port)", stateDirectory: directory, registry: registry, task: task)
    }

    func shutdown() async {
        task.cancel()
        _ = try? await task.value
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }

    /// Sends JSON and returns status, headers and the parsed body.
    func call(_ method: HTTPMethod = .POST, _ path: String, _ body: JSONValue? = nil, raw: String? = nil, key: String? = nil,
              header: String = "Authorization") async throws -> (status: Int, headers: HTTPHeaders, body: JSONValue) {
        var request = NimbusHTTPRequest(method, baseURL + path)
        if let body { try request.setJSON(body) }
        if let raw { request.body = ByteBuffer(string: raw); request.headers.add(name: "Content-Type", value: "application/json") }
        if let key { request.headers.add(name: header, value: header == "Authorization" ? "Bearer \(key)" : key) }
        let response = try await client.send(request)
        let bytes = try await response.collect(upTo: 16 * 1024 * 1024)
        let json = (try? JSONValue.parse(Data(bytes.readableBytesView))) ?? .string(String(buffer: bytes))
        return (Int(response.status.code), response.headers, json)
    }

    static func chat(_ text: String, model: String = "memory", stream: Bool = false) -> JSONValue {
        var body: JSONValue = ["model": .string(model), "messages": [["role": "user", "content": .string(text)]]]
        if stream, case .object(var fields) = body { fields["stream"] = true; body = .object(fields) }
        return body
    }
}
