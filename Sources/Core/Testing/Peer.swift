import Foundation
import NimbusCore
import NimbusHTTP
import Testing

/// A real server that adapter tests talk to (`redis`, `moto`, `postgres`...), started by
/// `scripts/peers up NAME`, which exports its address as `NIMBUS_PEER_<NAME>_URL` and writes it
/// to `.nimbus/peers/env` as well.
///
/// Under CI (`CI=true`) a missing peer is a failure, never a skip. Locally a test that needs a
/// missing peer is skipped, and the skip says which command starts it:
///
/// ```swift
/// @Test(.requires(.redis))
/// func roundTrip() async throws {
///     let client = try RedisClient(url: try Peer.redis.url())
/// }
/// ```
public struct Peer: Sendable, Hashable, CustomStringConvertible {
    /// The peer's name (`redis`, `redis-tls`); its URL variable is `NIMBUS_PEER_<NAME>_URL`.
    public let name: String
    /// The name `scripts/peers up` takes to start it (`redis` for `redis-tls`).
    public let script: String

    /// Names a peer that `scripts/peers up <script>` starts (by default, its own name).
    public init(_ name: String, script: String? = nil) {
        self.name = name
        self.script = script ?? name
    }

    /// redis-server.
    public static let redis = Peer("redis")

    /// redis-server's TLS listener (same server as ``redis``); its CA is ``setting(_:)`` `NIMBUS_PEER_REDIS_TLS_CA`.
    public static let redisTLS = Peer("redis-tls", script: "redis")

    /// PostgreSQL (`postgres://postgres@127.0.0.1:54329/postgres?sslmode=disable`).
    public static let postgres = Peer("postgres")

    /// nats-server with JetStream (`nats://127.0.0.1:42220`).
    public static let nats = Peer("nats")
    /// rabbitmq-server with the management plugin (`amqp://guest:guest@127.0.0.1:56720/%2F?management=http://127.0.0.1:15673`).
    public static let rabbitmq = Peer("rabbitmq")
    /// rabbitmq-server's TLS listener (same server); its CA is ``setting(_:)`` `NIMBUS_PEER_RABBITMQ_TLS_CA`.
    public static let rabbitmqTLS = Peer("rabbitmq-tls", script: "rabbitmq")
    /// Three independent redis-servers for Redlock (`redlock://?servers=127.0.0.1:63801,127.0.0.1:63802,127.0.0.1:63803`).
    public static let redlock = Peer("redlock")
    /// etcd 3.4 from Debian, its JSON gateway on `http://127.0.0.1:23790`.
    public static let etcd = Peer("etcd")

    /// The official OpenAI and Anthropic Python SDKs in a venv; ``url()`` is that venv's `python`.
    public static let llmSDKs = Peer("llm-sdks")

    /// The reference MCP Python SDK (pip `mcp`) in a venv; ``url()`` is that venv's `python`.
    public static let mcpSDK = Peer("mcp-sdk")

    /// moto_server with signature and IAM checks; ``setting(_:)`` `NIMBUS_PEER_MOTO_ACCESS_KEY_ID` / `_SECRET_ACCESS_KEY`
    /// are the keys of its allow-all user, `NIMBUS_PEER_MOTO_S3_URL` a second moto without checks (for S3).
    public static let moto = Peer("moto")

    /// Microsoft's azure-storage-blob Python SDK in a venv; ``url()`` is that venv's `python`.
    public static let azureSDK = Peer("azure-sdk")

    /// gcp-storage-emulator: Cloud Storage's JSON API.
    public static let gcs = Peer("gcs")

    /// The official Stripe Python library and python-stdnum in a venv; ``url()`` is that venv's `python`.
    public static let commerceSDKs = Peer("commerce-sdks")

    /// aiosmtpd: `smtp://127.0.0.1:2525` (STARTTLS, AUTH `nimbus`/`peer-password` or XOAUTH2 `peer-oauth-token`), 2465 (implicit
    /// TLS), 2526 (plain, no AUTH). ``setting(_:)`` `NIMBUS_PEER_SMTP_MAILDIR` holds what it received, `NIMBUS_PEER_SMTP_CA` its
    /// CA certificate, `NIMBUS_PEER_SMTP_PYTHON` a python with dkimpy and the `email` package.
    public static let smtp = Peer("smtp")

    /// The official Twilio, SendGrid and Slack Python libraries in a venv; ``url()`` is that venv's `python`.
    public static let commsSDKs = Peer("comms-sdks")

    /// botocore, pinned to the release of the committed AWS models, in a venv; ``url()`` is that venv's `python`.
    public static let botocore = Peer("botocore")
    /// schemathesis in a venv; ``url()`` is its `st` command.
    public static let schemathesis = Peer("schemathesis")
    /// kafka-python in a venv; ``url()`` is that venv's `python` (scripts/kafka/kafka-python-oracle runs on it).
    public static let kafkaPython = Peer("kafka-python")
    /// pyotp, authlib, py_webauthn and fido2 in a venv; ``url()`` is that venv's `python`.
    public static let authSDKs = Peer("auth-sdks")
    /// Debian's `oathtool`; ``url()`` is the command's path.
    public static let oathtool = Peer("oathtool")
    /// scikit-learn in a venv (scripts/fraud/train); ``url()`` is that venv's `python`.
    public static let fraudSDKs = Peer("fraud-sdks")
    /// Debian's `age`; ``url()`` is the command's path (`age-keygen` is beside it).
    public static let age = Peer("age")
    /// glewlwyd, an OpenID Connect server; ``url()`` is its issuer (`…/api/oidc`). Its admin API and
    /// signing keys are in the settings `NIMBUS_PEER_GLEWLWYD_ADMIN_URL` and `NIMBUS_PEER_GLEWLWYD_JWKS_FILE`.
    public static let glewlwyd = Peer("glewlwyd")

    /// Another value `scripts/peers` exported (a CA file, a token), from the environment or `.nimbus/peers/env`.
    public static func setting(_ variable: String) -> String? {
        if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty { return value }
        return envFile()[variable]
    }

    /// The keys of moto's allow-all IAM user (moto checks signatures against them).
    /// - Throws: `unavailable` when the moto peer exported none (it is not up).
    public static func motoKeys() throws -> (accessKeyID: String, secretAccessKey: Secret<String>) {
        guard let id = setting("NIMBUS_PEER_MOTO_ACCESS_KEY_ID"), let secret = setting("NIMBUS_PEER_MOTO_SECRET_ACCESS_KEY") else {
            throw NimbusError(.unavailable, "the moto peer exported no IAM keys; run scripts/peers up moto")
        }
        return (id, Secret(secret))
    }

    /// The environment variable that carries the peer's URL.
    public var variable: String { "NIMBUS_PEER_\(name.uppercased().replacingOccurrences(of: "-", with: "_"))_URL" }

    /// The command that starts the peer.
    public var startCommand: String { "scripts/peers up \(script)" }

    public var description: String { name }

    /// Whether this run is under CI, where missing peers fail instead of skipping.
    public static var isCI: Bool {
        let value = ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? ""
        return value == "true" || value == "1" || value == "yes"
    }

    /// The peer's URL, from the environment or `.nimbus/peers/env`; `nil` if it is not running.
    public var configuredURL: String? {
        if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty { return value }
        return Peer.envFile()[variable]
    }

    /// The peer's URL. - Throws: `unavailable`, naming the command that starts the peer.
    public func url() throws -> String {
        guard let url = configuredURL else {
            throw NimbusError(.unavailable, "peer '\(name)' is not running (\(variable) is unset\(Peer.isCI ? " under CI=true, so this test fails" : "")); start it with: \(startCommand)")
        }
        return url
    }

    /// Whether tests that need this peer should run: always under CI (so that they fail loudly
    /// if it is missing), otherwise only when it is running.
    public var shouldRun: Bool { Peer.isCI || configuredURL != nil }

    /// Reads `KEY=value` (or `KEY='value'`) lines from `.nimbus/peers/env` at the package root.
    static func envFile() -> [String: String] {
        guard let root = packageRoot(),
              let text = try? String(contentsOfFile: root + "/.nimbus/peers/env", encoding: .utf8) else { return [:] }
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { continue }
            var key = String(trimmed[..<equals])
            if key.hasPrefix("export ") { key = String(key.dropFirst(7)) }
            var value = Substring(trimmed[trimmed.index(after: equals)...])
            if value.count >= 2, value.hasPrefix("'"), value.hasSuffix("'") { value = value.dropFirst().dropLast() }   // scripts/peers quotes values
            values[key] = String(value)
        }
        return values
    }

    /// The directory holding `Package.swift`, searched upwards from the working directory and from this file.
    public static func packageRoot(from file: String = #filePath) -> String? {
        for start in [FileManager.default.currentDirectoryPath, file] {
            var url = URL(fileURLWithPath: start)
            for _ in 0..<12 {
                if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path),
                   FileManager.default.fileExists(atPath: url.appendingPathComponent("scripts/peers").path) {
                    return url.path
                }
                url.deleteLastPathComponent()
            }
        }
        return nil
    }

    /// The built `nimbus` binary: next to the test runner, or in the package's `.build/debug`.
    /// - Throws: `failedPrecondition` naming where it looked when it was not built.
    public static func nimbusBinary() throws -> URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("nimbus"),
            Bundle.main.bundleURL.appendingPathComponent("nimbus"),
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("nimbus"),
        ] + (packageRoot().map { [URL(fileURLWithPath: "\($0)/.build/debug/nimbus")] } ?? [])
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw NimbusError(.failedPrecondition, "the nimbus binary was not built next to the tests (looked in \(candidates.map(\.path))); run swift build first")
        }
        return found
    }

    /// Runs the built `nimbus` binary with `arguments`, as a user would.
    public static func runNimbus(_ arguments: [String], environment: [String: String] = [:], input: [UInt8]? = nil) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(nimbusBinary().path, arguments, environment: environment, input: input)
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test only where `peer` can be reached — and always under CI, where a missing peer
    /// then fails the test. The skip message names the command that starts the peer.
    public static func requires(_ peer: Peer) -> Self {
        .enabled(if: peer.shouldRun, "peer '\(peer.name)' is not running; start it with: \(peer.startCommand)")
    }
}

extension Peer {
    /// A new, empty database on the PostgreSQL peer (made with `psql`), so tests that create tables
    /// can run in parallel. - Returns: its URL.
    /// One fresh database per `prefix` for the whole test process: for suites whose checks each use
    /// names of their own, so that twelve checks do not create twelve databases at once.
    public static func sharedPostgresDatabase(prefix: String) async throws -> String {
        try await SharedPostgresDatabases.shared.url(prefix: prefix)
    }

    public static func freshPostgresDatabase(prefix: String = "nimbus_test") async throws -> String {
        let base = try Peer.postgres.url()
        let name = "\(prefix)_\(IDGenerator.shared.ulid().description.lowercased())"
        let psqlURL = base.replacingOccurrences(of: "?sslmode=disable", with: "")
        let result = try await ProcessRunner.run("/usr/bin/env", ["psql", psqlURL, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE DATABASE \(name)"])
        guard result.status == 0 else {
            throw NimbusError(.unavailable, "psql could not create database \(name) on \(base): \(result.output)")
        }
        return base.replacingOccurrences(of: "/postgres?", with: "/\(name)?")
    }
}

extension Peer {
    /// moto's `/moto-api/data.json` (every model it holds, so tests can see what a send stored). It is built while
    /// other tests change those models, so a read can fail with a 500 page: it is read again, up to 5 times.
    public static func motoState() async throws -> JSONValue {
        let http = NimbusHTTPClient(configuration: .init(service: "moto-api", retry: .none, timeout: .seconds(20)))
        var lastError: (any Error)?
        for attempt in 0..<5 {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(200 * attempt)) }
            do {
                let response = try await http.send(NimbusHTTPRequest(.GET, try moto.url() + "/moto-api/data.json", operation: "moto data.json"))
                let body = Array(try await response.collect(upTo: 256 * 1024 * 1024).readableBytesView)
                guard response.isSuccess else { throw NimbusError(.unavailable, "moto answered \(response.status.code) for data.json") }
                return try JSONValue.parse(body)
            } catch { lastError = error }
        }
        throw lastError ?? NimbusError(.unavailable, "moto's data.json could not be read")
    }
}

/// The databases of ``Peer/sharedPostgresDatabase(prefix:)``, created once each (concurrent first calls wait for one creation).
actor SharedPostgresDatabases {
    static let shared = SharedPostgresDatabases()
    private var databases: [String: Task<String, any Error>] = [:]

    func url(prefix: String) async throws -> String {
        if let existing = databases[prefix] { return try await existing.value }
        let creation = Task { try await Peer.freshPostgresDatabase(prefix: prefix) }
        databases[prefix] = creation
        return try await creation.value
    }
}
