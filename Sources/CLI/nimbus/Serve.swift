import ArgumentParser
import Foundation
import Logging
import Metrics
import NimbusCore
import NimbusGateway
import NimbusServer
import Prometheus
import ServiceLifecycle

/// `nimbus serve`: the platform server on embedded defaults.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Nimbus server (health, readiness, metrics, package catalog, mounted services).",
        discussion: """
            State lives under --state-dir (default ./.nimbus). Stops gracefully on SIGTERM or SIGINT.
            Endpoints: /healthz, /readyz, /metrics (Prometheus), /v1/packages, and the LLM gateway:
            /v1/chat/completions, /v1/embeddings, /v1/models (OpenAI-compatible), /v1/messages (Anthropic-compatible),
            /key/generate, /key/info, /key/delete, /v1/gateway/spend.
            With no gateway configuration the gateway serves the embedded memory model ("memory") and the
            offline hashing embedder ("nimbus-hashing-384") and asks for no key.
            Settings: server.host, server.port, server.stateDirectory, gateway.config (env NIMBUS_SERVER_HOST, ...,
            NIMBUS_GATEWAY_CONFIG).
            """
    )

    @Option(help: "Address to listen on (default 127.0.0.1; settings key server.host).")
    var host: String?

    @Option(help: "Port to listen on, 0 for any free port (default 8080; settings key server.port).")
    var port: Int?

    @Option(name: .customLong("state-dir"), help: "Directory for embedded state (default .nimbus).")
    var stateDirectory: String?

    @Option(help: "Settings file (.yaml, .yml or .json).")
    var config: String?

    @Option(name: .customLong("gateway-config"), help: "LLM gateway configuration (YAML): models, deployments, fallbacks, keys (settings key gateway.config).")
    var gatewayConfig: String?

    @Flag(name: .customLong("allow-unauthenticated"), help: "Serve on a non-loopback address without a master key (anyone who reaches it can call your models).")
    var allowUnauthenticated = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("log-format"), help: "json (structured, default) or text.")
    var logFormat: String = "json"

    func run() async throws {
        let settings = try await NimbusConfiguration.reader(file: config)
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level '\(logLevel)'")
        }
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let gatewayFile = gatewayConfig ?? settings.string(forKey: "gateway.config")
        let gatewayConfiguration = try gatewayFile.map { try GatewayConfiguration.load(file: $0) } ?? .embedded
        let configuration = NimbusServer.Configuration(
            host: host ?? settings.string(forKey: "server.host", default: "127.0.0.1"),
            port: port ?? settings.int(forKey: "server.port", default: 8080),
            stateDirectory: stateDirectory ?? settings.string(forKey: "server.stateDirectory", default: ".nimbus"),
            metricsToken: gatewayConfiguration.metricsToken
        )
        let logger = Logger(label: "nimbus.server")
        try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true)
        try gatewayConfiguration.checkExposure(host: configuration.host, allowUnauthenticated: allowUnauthenticated)
        let gateway = try await Gateway(configuration: gatewayConfiguration, stateDirectory: configuration.stateDirectory)
        let app = try NimbusServer.application(configuration: configuration, metrics: registry, modules: [gateway], logger: logger) { channel in
            logger.info("nimbus serving", metadata: [
                "address": "\(channel.localAddress?.description ?? "?")",
                "port": "\(channel.localAddress?.port ?? 0)",
                "stateDirectory": "\(configuration.stateDirectory)",
            ])
        }
        let group = ServiceGroup(configuration: .init(
            services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        ))
        try await group.run()
        logger.info("nimbus stopped")
    }
}
