import Foundation
import Hummingbird
import HummingbirdTesting
import NimbusCatalog
import NimbusCore
import NimbusServer
import NimbusTesting
import Prometheus
import Testing

@Suite("Nimbus server", .timeLimit(.minutes(2)))
struct ServerTests {
    private func app(modules: [any NimbusServerModule] = []) throws -> some ApplicationProtocol {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-state-\(IDGenerator.shared.ulid())").path
        return try NimbusServer.application(configuration: .init(port: 0, stateDirectory: state), metrics: PrometheusCollectorRegistry(), modules: modules)
    }

    @Test("/healthz, /readyz and /v1/packages answer")
    func endpoints() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                let body = try JSONValue.parse(Data(response.body.readableBytesView))
                #expect(body["status"] == "ok")
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/packages", method: .get) { response in
                let entries = try JSONDecoder().decode([PackageEntry].self, from: Data(response.body.readableBytesView))
                #expect(entries.count == 121)
            }
            try await client.execute(uri: "/v1/packages?status=done", method: .get) { response in
                let entries = try JSONDecoder().decode([PackageEntry].self, from: Data(response.body.readableBytesView))
                #expect(entries.allSatisfy { $0.status == .done })
                #expect(entries.map(\.module) == PackageCatalog.entries.filter { $0.status == .done }.map(\.module))
                #expect(entries.map(\.module).contains("NimbusCache"))
            }
            try await client.execute(uri: "/v1/packages?status=finished", method: .get) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    struct Probe: NimbusServerModule {
        let ready: Bool
        var name: String { "probe" }
        func addRoutes(to router: Router<BasicRequestContext>) {
            router.get("/v1/probe") { _, _ in "probe" }
        }
        func isReady() async -> Bool { ready }
    }

    @Test("mounted modules add routes and take part in readiness")
    func modules() async throws {
        try await app(modules: [Probe(ready: false)]).test(.router) { client in
            try await client.execute(uri: "/v1/probe", method: .get) { response in
                #expect(String(buffer: response.body) == "probe")
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = try JSONValue.parse(Data(response.body.readableBytesView))
                #expect(body["checks"]?["probe"] == false)
            }
        }
    }

    @Test("/metrics speaks the Prometheus text format")
    func metrics() async throws {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(name: "nimbus_test_total").increment()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-state-\(IDGenerator.shared.ulid())").path
        let app = try NimbusServer.application(configuration: .init(port: 0, stateDirectory: state), metrics: registry)
        try await app.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                #expect(String(buffer: response.body).contains("nimbus_test_total 1"))
            }
        }
    }

    @Test("an unwritable state directory is a clear error")
    func badStateDirectory() {
        let error = #expect(throws: NimbusError.self) {
            _ = try NimbusServer.application(configuration: .init(stateDirectory: "/proc/nimbus-cannot-write"), metrics: PrometheusCollectorRegistry())
        }
        #expect(error?.code == .failedPrecondition)
    }
}
