import Foundation
import Hummingbird
import Logging
import NIOCore
import NimbusCatalog
import NimbusCore
import Prometheus
import ServiceLifecycle

/// A service mounted on the Nimbus server (the LLM gateway, later the control plane): it adds
/// routes, may run background services, and says whether it is ready.
public protocol NimbusServerModule: Sendable {
    /// The module's name, shown by `/readyz`.
    var name: String { get }
    /// Adds the module's routes.
    func addRoutes(to router: Router<BasicRequestContext>)
    /// Long-running work to run beside the HTTP server (stopped gracefully with it).
    var services: [any Service] { get }
    /// Whether the module can serve traffic now.
    func isReady() async -> Bool
}

extension NimbusServerModule {
    public var services: [any Service] { [] }
    public func isReady() async -> Bool { true }
}

/// The `nimbus serve` application: a Hummingbird server on embedded defaults, with health,
/// readiness, Prometheus metrics, the package catalog, and whatever modules are mounted.
///
/// ```swift
/// let app = try NimbusServer.application(configuration: .init(port: 8080), metrics: registry)
/// try await app.runService()          // stops on SIGTERM/SIGINT
/// ```
public enum NimbusServer {
    /// Where and how the server runs.
    public struct Configuration: Sendable {
        /// The listening address (loopback by default: expose it on purpose).
        public var host: String
        /// The port; 0 picks a free one.
        public var port: Int
        /// Where embedded implementations keep their state.
        public var stateDirectory: String
        /// A bearer token `/metrics` requires (`nil`: open).
        public var metricsToken: Secret<String>?

        /// Creates a configuration.
        public init(host: String = "127.0.0.1", port: Int = 8080, stateDirectory: String = ".nimbus", metricsToken: Secret<String>? = nil) {
            self.host = host
            self.port = port
            self.stateDirectory = stateDirectory
            self.metricsToken = metricsToken
        }
    }

    /// The server's identity in `/healthz`.
    public static let version = "0.1.0"

    /// Builds the application. Creates the state directory if needed.
    /// - Throws: `failedPrecondition` if the state directory cannot be created.
    public static func application(
        configuration: Configuration,
        metrics: PrometheusCollectorRegistry,
        modules: [any NimbusServerModule] = [],
        logger: Logger = Logger(label: "nimbus.server"),
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        do {
            try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true)
        } catch {
            throw NimbusError(.failedPrecondition, "cannot create the state directory \(configuration.stateDirectory): \(error); pass --state-dir with a writable path", underlying: error)
        }
        let router = router(configuration: configuration, metrics: metrics, modules: modules)
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "nimbus/\(version)"),
            services: modules.flatMap(\.services),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }

    /// The routes, separate from the server so tests can drive them directly.
    public static func router(configuration: Configuration, metrics: PrometheusCollectorRegistry,
                              modules: [any NimbusServerModule]) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: LogRequestsMiddleware(.debug, includeHeaders: .none))
        router.add(middleware: MetricsMiddleware())
        let started = Date()

        router.get("/healthz") { _, _ in
            jsonResponse(["status": "ok", "version": .string(version), "uptimeSeconds": .number(Date().timeIntervalSince(started).rounded())])
        }
        router.get("/readyz") { _, _ in
            var checks: [String: JSONValue] = [:]
            var ready = true
            let writable = FileManager.default.isWritableFile(atPath: configuration.stateDirectory)
            checks["stateDirectory"] = .bool(writable)
            ready = ready && writable
            for module in modules {
                let moduleReady = await module.isReady()
                checks[module.name] = .bool(moduleReady)
                ready = ready && moduleReady
            }
            return jsonResponse(["status": .string(ready ? "ready" : "not ready"), "checks": .object(checks)], status: ready ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { request, _ in
            if let token = configuration.metricsToken {
                let sent = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil } ?? ""
                guard token.matches(sent) else {
                    return Response(status: .unauthorized, headers: [.contentType: "text/plain; charset=utf-8", .wwwAuthenticate: "Bearer"],
                                    body: .init(byteBuffer: ByteBuffer(string: "/metrics needs Authorization: Bearer <metrics_token>\n")))
                }
            }
            var buffer: [UInt8] = []
            metrics.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        router.get("/v1/packages") { request, _ in
            var entries = PackageCatalog.entries
            if let status = request.uri.queryParameters.get("status") {
                guard let wanted = PackageEntry.Status(rawValue: status) else {
                    return jsonResponse(["error": ["message": .string("unknown status '\(status)'; use planned, partial or done")]], status: .badRequest)
                }
                entries = entries.filter { $0.status == wanted }
            }
            let body = try PackageCatalog.render(.json, entries: entries)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        for module in modules { module.addRoutes(to: router) }
        return router
    }

    static func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: value.description + "\n")))
    }
}
