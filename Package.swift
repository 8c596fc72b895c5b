// swift-tools-version: 6.1
//
// Nimbus — one package, laid out like the package list (see docs/ARCHITECTURE.md).
// Folders under Sources/ mirror the seed taxonomy; a module is `Nimbus` + domain + adapter.
// The helpers below keep each row to one line as the manifest grows to ~150 targets.

import PackageDescription

// MARK: - Dependencies (only the local mirror's packages; see README)

let dependencies: [Package.Dependency] = [
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: ["JSON", "YAML"]),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
    .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    .package(url: "https://github.com/mattpolzin/OpenAPIKit.git", from: "6.4.0", traits: []),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
    .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
    .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
]

// MARK: - Products of the dependencies, named once

enum Dep {
    static let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
    static let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
    static let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
    static let metricsTestKit = Target.Dependency.product(name: "MetricsTestKit", package: "swift-metrics")
    static let coreMetrics = Target.Dependency.product(name: "CoreMetrics", package: "swift-metrics")
    static let tracing = Target.Dependency.product(name: "Tracing", package: "swift-distributed-tracing")
    static let inMemoryTracing = Target.Dependency.product(name: "InMemoryTracing", package: "swift-distributed-tracing")
    static let configuration = Target.Dependency.product(name: "Configuration", package: "swift-configuration")
    static let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
    static let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
    static let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
    static let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
    static let nioHTTP2 = Target.Dependency.product(name: "NIOHTTP2", package: "swift-nio-http2")
    static let x509 = Target.Dependency.product(name: "X509", package: "swift-certificates")
    static let asn1 = Target.Dependency.product(name: "SwiftASN1", package: "swift-asn1")
    static let nioEmbedded = Target.Dependency.product(name: "NIOEmbedded", package: "swift-nio")
    static let nioTestUtils = Target.Dependency.product(name: "NIOTestUtils", package: "swift-nio")
    static let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
    static let cryptoExtras = Target.Dependency.product(name: "_CryptoExtras", package: "swift-crypto")
    static let dequeModule = Target.Dependency.product(name: "DequeModule", package: "swift-collections")
    static let asyncAlgorithms = Target.Dependency.product(name: "AsyncAlgorithms", package: "swift-async-algorithms")
    static let asyncHTTPClient = Target.Dependency.product(name: "AsyncHTTPClient", package: "async-http-client")
    static let serviceLifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
    static let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
    static let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
    static let httpTypes = Target.Dependency.product(name: "HTTPTypes", package: "swift-http-types")
    static let hummingbirdTesting = Target.Dependency.product(name: "HummingbirdTesting", package: "hummingbird")
    static let openAPIKit = Target.Dependency.product(name: "OpenAPIKit", package: "OpenAPIKit")
    static let openAPIKit30 = Target.Dependency.product(name: "OpenAPIKit30", package: "OpenAPIKit")
    static let openAPIKitCompat = Target.Dependency.product(name: "OpenAPIKitCompat", package: "OpenAPIKit")
    static let yams = Target.Dependency.product(name: "Yams", package: "Yams")
    static let grdb = Target.Dependency.product(name: "GRDB", package: "GRDB.swift")
    static let postgresNIO = Target.Dependency.product(name: "PostgresNIO", package: "postgres-nio")
    static let mcp = Target.Dependency.product(name: "MCP", package: "swift-sdk")
    static let systemPackage = Target.Dependency.product(name: "SystemPackage", package: "swift-system")
    static let mustache = Target.Dependency.product(name: "Mustache", package: "swift-mustache")
    static let jwtKit = Target.Dependency.product(name: "JWTKit", package: "jwt-kit")
    static let propertyBased = Target.Dependency.product(name: "PropertyBased", package: "swift-property-based")
}

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

// MARK: - Helpers: one line per module

var targets: [Target] = []
var products: [Product] = []

/// A library module at `Sources/<path>`, published as a product of the same name.
@MainActor func module(_ name: String, _ path: String, _ deps: [Target.Dependency] = [], resources: [Resource]? = nil) {
    targets.append(.target(name: name, dependencies: deps, path: "Sources/\(path)", resources: resources, swiftSettings: swiftSettings))
    products.append(.library(name: name, targets: [name]))
}

/// An adapter module: depends on its domain's portable module plus what it speaks through.
@MainActor func adapter(_ name: String, _ path: String, domain: String, _ deps: [Target.Dependency] = []) {
    module(name, path, [.target(name: domain), "NimbusCore"] + deps)
}

/// The test target of a module, at `Tests/<path>Tests`, with fixtures under `Fixtures/` if any.
@MainActor func tests(_ module: String, _ path: String, _ deps: [Target.Dependency] = [], fixtures: Bool = false) {
    targets.append(.testTarget(
        name: "\(module)Tests",
        dependencies: (module == "NimbusTesting" ? [.target(name: module)] : [.target(name: module), "NimbusTesting"]) + deps,
        path: "Tests/\(path)Tests",
        resources: fixtures ? [.copy("Fixtures")] : nil,
        swiftSettings: swiftSettings
    ))
}

/// Named dependency bundles: what an adapter needs to speak a kind of peer.
enum Bundles {
    /// A vendor HTTP API through `NimbusHTTPClient`.
    static let http: [Target.Dependency] = ["NimbusHTTP", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging]
    /// An AWS service through the model-driven AWS core.
    static let aws: [Target.Dependency] = ["NimbusAWS"]
    /// A Google Cloud API through the GCP core (service accounts, OAuth).
    static let gcp: [Target.Dependency] = ["NimbusGCP", "NimbusHTTP", Dep.asyncHTTPClient, Dep.logging]
    /// An Azure API through the Azure core (Entra ID tokens, Key Vault, ARM).
    static let azure: [Target.Dependency] = ["NimbusAzure", "NimbusHTTP", Dep.asyncHTTPClient, Dep.logging]
    /// PostgreSQL through PostgresNIO and `postgres://` URLs.
    static let postgres: [Target.Dependency] = ["NimbusPostgres", Dep.postgresNIO, Dep.logging]
    /// Redis through Nimbus' RESP client.
    static let redis: [Target.Dependency] = ["NimbusRedis", Dep.nioCore]
    /// An embedded SQLite store.
    static let sqlite: [Target.Dependency] = [Dep.grdb]
}

/// One adapter of a domain: its folder name under `Adapters/` (the module is the domain's name + this),
/// what it needs, what its tests need besides the domain and its conformance module.
struct AdapterSpec {
    var name: String
    var dependencies: [Target.Dependency]
    var testDependencies: [Target.Dependency]
    var fixtures: Bool
    var inCLI: Bool

    static func adapter(_ name: String, _ dependencies: [Target.Dependency] = [], tests: [Target.Dependency] = [], fixtures: Bool = false,
                        cli: Bool = true) -> AdapterSpec {
        AdapterSpec(name: name, dependencies: dependencies, testDependencies: tests, fixtures: fixtures, inCLI: cli)
    }
}

/// What the `nimbus` executable links: every domain declared with `cli: true` adds its portable module and adapters.
var cliDependencies: [Target.Dependency] = []

/// Declares a domain in one call, named and placed the one way (see docs/ARCHITECTURE.md, "Adding a domain"):
/// the portable module `Nimbus<Name>` at `Sources/<path>/<last folder>`, its conformance module at
/// `Sources/<path>/Conformance`, each adapter `Nimbus<Name><Adapter>` at `Sources/<path>/Adapters/<Adapter>`, and
/// their test targets at the same places under `Tests/` — every adapter's tests depend on the conformance module.
@MainActor func domain(_ name: String, at path: String, _ dependencies: [Target.Dependency] = [], tests testDependencies: [Target.Dependency] = [],
                       fixtures: Bool = false, conformance: [Target.Dependency] = [], adapters: [AdapterSpec] = [], cli: Bool = true) {
    let portable = "Nimbus\(name)", suite = "Nimbus\(name)Conformance"
    let folder = path.split(separator: "/").last.map(String.init) ?? name
    module(portable, "\(path)/\(folder)", ["NimbusCore"] + dependencies)
    tests(portable, "\(path)/\(folder)", testDependencies, fixtures: fixtures)
    module(suite, "\(path)/Conformance", [.target(name: portable), "NimbusCore", "NimbusTesting"] + conformance)
    if cli { cliDependencies.append(.target(name: portable)) }
    for spec in adapters {
        let module = portable + spec.name
        adapter(module, "\(path)/Adapters/\(spec.name)", domain: portable, spec.dependencies)
        tests(module, "\(path)/Adapters/\(spec.name)", [.target(name: portable), .target(name: suite)] + spec.testDependencies, fixtures: spec.fixtures)
        if cli && spec.inCLI { cliDependencies.append(.target(name: module)) }
    }
}

// MARK: - Core: what every module stands on

module("NimbusCore", "Core/Core", [Dep.logging, Dep.metrics, Dep.configuration])
module("NimbusHTTP", "Core/HTTP", ["NimbusCore", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioPosix, Dep.nioHTTP1, Dep.crypto,
                                   Dep.logging, Dep.metrics, Dep.tracing])
module("NimbusRedis", "Core/Redis", ["NimbusCore", "NimbusNetwork", Dep.nioCore, Dep.nioPosix, Dep.nioSSL, Dep.dequeModule, Dep.logging])
module("NimbusTesting", "Core/Testing", ["NimbusCore", "NimbusHTTP", "NimbusAzure", Dep.asyncHTTPClient, Dep.crypto, Dep.cryptoExtras, Dep.hummingbird, Dep.httpTypes,
                                         Dep.nioCore, Dep.nioHTTP1, Dep.nioPosix, Dep.openAPIKit, Dep.openAPIKit30, Dep.openAPIKitCompat, Dep.yams],
       resources: [.copy("Fixtures")])
module("NimbusCatalog", "Core/Catalog")
module("NimbusNetwork", "Core/Network", ["NimbusCore", Dep.nioCore, Dep.nioPosix, Dep.nioSSL])
module("NimbusPostgres", "Core/Postgres", ["NimbusCore", Dep.postgresNIO, Dep.nioSSL])

tests("NimbusCore", "Core/Core", fixtures: true)
tests("NimbusHTTP", "Core/HTTP", [Dep.nioCore, Dep.nioHTTP1, Dep.asyncHTTPClient, Dep.metricsTestKit, Dep.logging])
tests("NimbusRedis", "Core/Redis", [Dep.nioCore, Dep.nioPosix, Dep.nioEmbedded, Dep.nioTestUtils])
tests("NimbusTesting", "Core/Testing", [Dep.nioCore, Dep.asyncHTTPClient], fixtures: true)
tests("NimbusCatalog", "Core/Catalog", ["NimbusCore"])

// MARK: - Cache (seed: pkg/cache/* — Redis, memory)

domain("Cache", at: "Cache", [Dep.nioCore, Dep.logging, Dep.metrics], tests: ["NimbusCacheMemory", Dep.nioCore], conformance: [Dep.nioCore], adapters: [
    .adapter("Memory", [Dep.nioCore, Dep.dequeModule]),
    .adapter("Redis", Bundles.redis, tests: ["NimbusRedis"]),
])

// MARK: - Messaging (seed: pkg/messaging/* — Kafka, NATS, RabbitMQ, SQS, SNS, Pub/Sub)

domain("Messaging", at: "Messaging", [Dep.nioCore, Dep.logging, Dep.dequeModule], tests: ["NimbusMessagingSQLite", Dep.nioCore],
       conformance: [Dep.nioCore], adapters: [
    .adapter("SQLite", [Dep.nioCore, Dep.grdb], tests: [Dep.grdb, Dep.nioCore]),
    .adapter("Redis", Bundles.redis, tests: ["NimbusRedis", Dep.nioCore]),
    .adapter("NATS", ["NimbusNetwork", Dep.nioCore, Dep.nioPosix, Dep.nioSSL, Dep.dequeModule, Dep.logging], tests: [Dep.nioCore, Dep.nioEmbedded]),
    .adapter("SQS", Bundles.aws + [Dep.nioCore, Dep.crypto], tests: ["NimbusAWS", Dep.nioCore]),
    .adapter("RabbitMQ", ["NimbusNetwork", Dep.nioCore, Dep.nioPosix, Dep.nioSSL, Dep.dequeModule, Dep.logging] + Bundles.http,
             tests: [Dep.nioCore, Dep.nioSSL], fixtures: true),
    .adapter("Postgres", Bundles.postgres + [Dep.nioCore], tests: ["NimbusPostgres", Dep.postgresNIO, "NimbusMessagingSQLite"], cli: false),
    .adapter("Kafka", ["NimbusNetwork", Dep.nioCore, Dep.nioPosix, Dep.nioSSL, Dep.dequeModule, Dep.logging, Dep.crypto], tests: [Dep.nioCore, Dep.nioPosix], fixtures: true),
    .adapter("PubSub", Bundles.gcp + [Dep.nioCore], tests: ["NimbusGCP", "NimbusHTTP", Dep.nioCore], fixtures: true),
])

// MARK: - Resilience (seed: pkg/resilience/*, pkg/algorithms/ratelimit/*, pkg/api/ratelimit/*)

module("NimbusResilience", "Resilience/Resilience", ["NimbusCore", "NimbusHTTP", Dep.dequeModule, Dep.nioHTTP1])
tests("NimbusResilience", "Resilience/Resilience", ["NimbusHTTP", Dep.nioHTTP1])
domain("RateLimit", at: "Resilience/RateLimit", [Dep.hummingbird, Dep.httpTypes, Dep.logging, Dep.nioCore],
       tests: ["NimbusRateLimitMemory", Dep.hummingbird, Dep.hummingbirdTesting, Dep.httpTypes], adapters: [
    .adapter("Memory"),
    .adapter("Redis", Bundles.redis, tests: ["NimbusRedis"]),
])

// MARK: - Concurrency (seed: pkg/concurrency/distlock/*) — leases with fencing tokens, leader election

domain("DistributedLock", at: "Concurrency/DistributedLock", [Dep.logging], tests: ["NimbusDistributedLockMemory"], adapters: [
    .adapter("Memory"),
    .adapter("Redis", Bundles.redis, tests: ["NimbusRedis"]),
    .adapter("Postgres", Bundles.postgres, tests: ["NimbusPostgres", Dep.postgresNIO]),
    .adapter("Etcd", Bundles.http, tests: ["NimbusHTTP"]),
    .adapter("Redlock", Bundles.redis, tests: ["NimbusRedis"]),
])

// MARK: - Database (seed: pkg/database/*)

domain("Sharding", at: "Database/Sharding", [Dep.logging], tests: ["NimbusShardingMemory"], adapters: [
    .adapter("Memory"),
    .adapter("Postgres", Bundles.postgres, tests: ["NimbusPostgres", Dep.postgresNIO]),
])

module("NimbusVector", "Database/Vector/Vector", ["NimbusCore", Dep.grdb])
tests("NimbusVector", "Database/Vector/Vector")

// MARK: - AI / LLM (seed: pkg/ai/llm/* — the portable model API, its adapters, embeddings)

domain("LLM", at: "AI/LLM", ["NimbusCache", Dep.crypto, Dep.nioCore, Dep.logging, Dep.metrics, Dep.tracing, Dep.asyncAlgorithms],
       tests: ["NimbusLLMScripted", "NimbusCache", "NimbusCacheMemory", Dep.metricsTestKit], adapters: [
    .adapter("Scripted", tests: ["NimbusLLMToolsConformance"]),
    .adapter("Anthropic", Bundles.http, tests: ["NimbusLLMToolsConformance", "NimbusHTTP", Dep.nioCore], fixtures: true),
    .adapter("Gemini", ["NimbusEmbeddings", "NimbusGCP"] + Bundles.http, tests: ["NimbusEmbeddingsConformance", "NimbusLLMToolsConformance", "NimbusEmbeddings", "NimbusHTTP", "NimbusGCP", Dep.nioCore], fixtures: true),
    .adapter("Ollama", ["NimbusEmbeddings"] + Bundles.http, tests: ["NimbusEmbeddingsConformance", "NimbusLLMToolsConformance", "NimbusEmbeddings", "NimbusHTTP", Dep.nioCore], fixtures: true),
    .adapter("OpenAI", ["NimbusEmbeddings"] + Bundles.http, tests: ["NimbusEmbeddingsConformance", "NimbusLLMToolsConformance", "NimbusEmbeddings", "NimbusHTTP", Dep.nioCore], fixtures: true),
])
module("NimbusEmbeddings", "AI/LLM/Embeddings", ["NimbusCore", "NimbusCache", Dep.crypto, Dep.nioCore, Dep.logging])
module("NimbusEmbeddingsConformance", "AI/LLM/EmbeddingsConformance", ["NimbusEmbeddings", "NimbusCore", "NimbusTesting"])
tests("NimbusEmbeddings", "AI/LLM/Embeddings", ["NimbusEmbeddingsConformance", "NimbusCache", "NimbusCacheMemory"])
domain("LLMTools", at: "AI/LLM/Tools", ["NimbusLLM", Dep.logging, Dep.tracing], tests: ["NimbusLLM", "NimbusLLMScripted"],
       conformance: ["NimbusLLMConformance", "NimbusLLM"], adapters: [
    .adapter("MCP", ["NimbusLLM", Dep.mcp, Dep.systemPackage, Dep.httpTypes, Dep.hummingbird] + Bundles.http, tests: ["NimbusLLM", Dep.hummingbird, Dep.mcp], fixtures: true),
], cli: false)
domain("LLMMemory", at: "AI/LLM/Memory", ["NimbusLLM", Dep.crypto], tests: ["NimbusLLM", "NimbusLLMMemoryMemory", "NimbusLLMScripted"], conformance: ["NimbusLLM"], adapters: [
    .adapter("Memory", ["NimbusLLM"]),
    .adapter("SQLite", ["NimbusLLM"] + Bundles.sqlite, tests: ["NimbusLLM"]),
    .adapter("Redis", ["NimbusLLM"] + Bundles.redis, tests: ["NimbusRedis"]),
    .adapter("Postgres", ["NimbusLLM"] + Bundles.postgres, tests: ["NimbusPostgres", Dep.postgresNIO]),
], cli: false)
module("NimbusLLMChains", "AI/LLM/Chains", ["NimbusLLM", "NimbusCore", Dep.tracing])
tests("NimbusLLMChains", "AI/LLM/Chains", ["NimbusLLM", "NimbusLLMScripted", Dep.tracing, Dep.inMemoryTracing])
module("NimbusLLMRAG", "AI/LLM/RAG", ["NimbusLLM", "NimbusEmbeddings", "NimbusVector", "NimbusCore", Dep.grdb])
tests("NimbusLLMRAG", "AI/LLM/RAG", ["NimbusLLM", "NimbusEmbeddings", "NimbusVector", "NimbusLLMScripted"], fixtures: true)

// MARK: - Cloud provider cores: one per provider, every AWS/GCP/Azure adapter builds on them
module("NimbusAWS", "Core/AWS", ["NimbusCore", "NimbusHTTP", Dep.crypto, Dep.cryptoExtras, Dep.x509, Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging], resources: [.copy("Resources/Models")])
tests("NimbusAWS", "Core/AWS", ["NimbusHTTP", Dep.crypto, Dep.cryptoExtras, Dep.x509, Dep.nioCore], fixtures: true)
module("NimbusGCP", "Core/GCP", ["NimbusCore", "NimbusHTTP", Dep.crypto, Dep.cryptoExtras, Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging])
tests("NimbusGCP", "Core/GCP", ["NimbusHTTP", Dep.crypto, Dep.cryptoExtras])
module("NimbusVault", "Core/Vault", ["NimbusCore", "NimbusHTTP", Dep.nioCore, Dep.nioHTTP1])
tests("NimbusVault", "Core/Vault", ["NimbusSecrets", "NimbusSecretsVault", "NimbusSecretsConformance", "NimbusKMS", "NimbusKMSVault", "NimbusKMSConformance",
                                   Dep.crypto, Dep.nioHTTP1], fixtures: true)
module("NimbusAzure", "Core/Azure", ["NimbusCore", "NimbusHTTP", Dep.crypto, Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging])
tests("NimbusAzure", "Core/Azure", ["NimbusHTTP"])

// MARK: - Storage (seed: pkg/blob/*, pkg/storage/*)

domain("Blob", at: "Storage/Blob", [Dep.nioCore, Dep.logging], tests: ["NimbusBlobMemory", Dep.nioCore], conformance: [Dep.nioCore], adapters: [
    .adapter("Memory", [Dep.nioCore]),
    .adapter("File", [Dep.nioCore]),
    .adapter("S3", Bundles.aws + [Dep.nioCore, Dep.nioHTTP1], tests: ["NimbusAWS", "NimbusHTTP", Dep.nioCore, Dep.asyncHTTPClient]),
    .adapter("GCS", Bundles.gcp + [Dep.nioCore, Dep.nioHTTP1], tests: ["NimbusGCP", Dep.nioCore], fixtures: true),
    .adapter("Azure", Bundles.azure + [Dep.nioCore, Dep.nioHTTP1, Dep.crypto], tests: ["NimbusAzure", "NimbusHTTP", Dep.nioCore, Dep.nioHTTP1, Dep.crypto]),
])

domain("Archive", at: "Storage/Archive", ["NimbusBlob", Dep.nioCore, Dep.logging], tests: ["NimbusArchiveFile", "NimbusBlob", Dep.nioCore],
       conformance: ["NimbusBlob", "NimbusBlobConformance", Dep.nioCore], adapters: [
    .adapter("File", ["NimbusBlob", Dep.nioCore, Dep.crypto], tests: [Dep.nioCore]),
    .adapter("S3", Bundles.aws + ["NimbusBlob", "NimbusBlobS3", "NimbusHTTP", Dep.nioCore], tests: ["NimbusAWS", "NimbusBlob", "NimbusBlobS3", "NimbusHTTP", Dep.nioCore]),
    .adapter("GCS", Bundles.gcp + ["NimbusBlob", "NimbusBlobGCS", Dep.nioCore], tests: ["NimbusGCP", "NimbusBlob", Dep.nioCore]),
    .adapter("Azure", Bundles.azure + ["NimbusBlob", "NimbusBlobAzure", Dep.nioCore, Dep.nioHTTP1], tests: ["NimbusAzure", "NimbusBlob", "NimbusBlobAzure", Dep.nioCore]),
    .adapter("Glacier", Bundles.aws + ["NimbusBlob", "NimbusHTTP", Dep.nioCore], tests: ["NimbusAWS", "NimbusBlob", Dep.nioCore, Dep.nioHTTP1, Dep.crypto]),
])

// MARK: - Security & identity (seed: pkg/auth/*, pkg/security/*)

domain("Auth", at: "Auth", ["NimbusHTTP", Dep.jwtKit, Dep.crypto, Dep.cryptoExtras, Dep.logging, Dep.hummingbird, Dep.httpTypes],
       tests: ["NimbusHTTP", Dep.crypto, Dep.cryptoExtras, Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.hummingbird, Dep.hummingbirdTesting, Dep.httpTypes],
       adapters: [
    .adapter("Local", [Dep.crypto, Dep.cryptoExtras]),
    .adapter("Cognito", Bundles.aws + [Dep.crypto], tests: ["NimbusAWS", Dep.crypto]),
    .adapter("EntraID", Bundles.azure + [Dep.nioCore, Dep.nioHTTP1], tests: ["NimbusAzure", "NimbusHTTP", Dep.crypto, Dep.cryptoExtras, Dep.nioHTTP1], fixtures: true),
    .adapter("GCPIdentity", Bundles.gcp + [Dep.nioCore, Dep.nioHTTP1], tests: ["NimbusGCP", "NimbusHTTP", Dep.crypto, Dep.cryptoExtras, Dep.x509, Dep.nioHTTP1], fixtures: true),
])
domain("Session", at: "Auth/Session", [Dep.crypto, Dep.logging, Dep.hummingbird, Dep.httpTypes],
       tests: ["NimbusSessionMemory", Dep.hummingbird, Dep.hummingbirdTesting, Dep.httpTypes], conformance: [Dep.crypto], adapters: [
    .adapter("Memory"),
    .adapter("SQLite", Bundles.sqlite),
    .adapter("Redis", Bundles.redis, tests: ["NimbusRedis"]),
    .adapter("Postgres", Bundles.postgres, tests: ["NimbusPostgres", Dep.postgresNIO]),
], cli: false)
domain("Secrets", at: "Security/Secrets", [Dep.logging], tests: ["NimbusSecretsLocal"], adapters: [
    .adapter("Local", [Dep.crypto], tests: [Dep.crypto]),
    .adapter("AWS", Bundles.aws),
    .adapter("Vault", ["NimbusVault"]),
    .adapter("GCP", Bundles.gcp, tests: ["NimbusGCP", "NimbusHTTP", Dep.nioHTTP1], fixtures: true),
    .adapter("Azure", Bundles.azure, tests: ["NimbusAzure", "NimbusHTTP", Dep.nioHTTP1], fixtures: true),
])
domain("Fraud", at: "Security/Fraud", [Dep.logging], tests: ["NimbusFraudMemory"], adapters: [
    .adapter("Memory"),
    .adapter("Redis", Bundles.redis, tests: ["NimbusRedis"]),
], cli: false)
domain("Captcha", at: "Security/Captcha", [Dep.logging], tests: ["NimbusCaptchaProofOfWork"], adapters: [
    .adapter("ProofOfWork", [Dep.crypto]),
    .adapter("Siteverify", Bundles.http, tests: ["NimbusHTTP", Dep.nioCore, Dep.nioHTTP1]),
], cli: false)
module("NimbusScanning", "Security/Scanning/Scanning", ["NimbusCore"])
tests("NimbusScanning", "Security/Scanning/Scanning")
module("NimbusScanningAWS", "Security/Scanning/Adapters/AWS", ["NimbusScanning", "NimbusCore", "NimbusAWS"])
tests("NimbusScanningAWS", "Security/Scanning/Adapters/AWS", ["NimbusScanning", "NimbusAWS"])
module("NimbusWAF", "Security/WAF/WAF", ["NimbusCore", Dep.crypto, Dep.logging, Dep.hummingbird, Dep.httpTypes], resources: [.copy("Resources/crs")])
tests("NimbusWAF", "Security/WAF/WAF", [Dep.hummingbird, Dep.hummingbirdTesting, Dep.httpTypes], fixtures: true)
module("NimbusWAFAWS", "Security/WAF/Adapters/AWS", ["NimbusCore", "NimbusAWS"])
tests("NimbusWAFAWS", "Security/WAF/Adapters/AWS", ["NimbusAWS"])
domain("KMS", at: "Security/Crypto/KMS", [Dep.crypto, Dep.logging], tests: ["NimbusKMSLocal"], adapters: [
    .adapter("Local", [Dep.crypto]),
    .adapter("AWS", Bundles.aws),
    .adapter("Vault", ["NimbusVault"]),
    .adapter("GCP", Bundles.gcp, tests: ["NimbusGCP", "NimbusHTTP", Dep.crypto, Dep.nioHTTP1], fixtures: true),
    .adapter("Azure", Bundles.azure + [Dep.crypto], tests: ["NimbusAzure", "NimbusHTTP", Dep.crypto, Dep.cryptoExtras, Dep.nioHTTP1], fixtures: true),
])
domain("MFA", at: "Auth/MFA", ["NimbusRateLimit", "NimbusRateLimitMemory", Dep.crypto, Dep.logging], tests: [Dep.crypto, "NimbusMFAConformance"], adapters: [
    .adapter("Redis", Bundles.redis, tests: ["NimbusRedis", Dep.nioCore]),
    .adapter("Notify", ["NimbusNotify", "NimbusEmail", "NimbusSMS"], tests: ["NimbusNotify", "NimbusEmail", "NimbusSMS", "NimbusTemplate", "NimbusEmailMemory", "NimbusSMSMemory"]),
], cli: false)
module("NimbusWebAuthn", "Auth/WebAuthn", ["NimbusCore", Dep.crypto, Dep.cryptoExtras, Dep.x509, Dep.asn1])
tests("NimbusWebAuthn", "Auth/WebAuthn", [Dep.crypto, Dep.cryptoExtras, Dep.x509, Dep.asn1], fixtures: true)

// MARK: - Commerce (seed: pkg/commerce/*) — exact money first; payments, billing and tax build on it

module("NimbusCurrency", "Commerce/Currency", ["NimbusCore", "NimbusHTTP", Dep.nioCore], resources: [.copy("Resources/iso4217.csv"), .copy("Resources/ecb-snapshot.xml")])
tests("NimbusCurrency", "Commerce/Currency", ["NimbusHTTP", Dep.propertyBased], fixtures: true)
domain("Payment", at: "Commerce/Payment", ["NimbusCurrency"], tests: ["NimbusCurrency"], conformance: ["NimbusCurrency"], adapters: [
    .adapter("Memory", ["NimbusCurrency"] + Bundles.sqlite, tests: ["NimbusCurrency"]),
    .adapter("Stripe", ["NimbusCurrency"] + Bundles.http, tests: ["NimbusPaymentMemory", "NimbusCurrency", "NimbusHTTP", Dep.nioHTTP1], fixtures: true),
    .adapter("PayPal", ["NimbusCurrency", Dep.crypto] + Bundles.http, tests: ["NimbusCurrency", "NimbusHTTP", Dep.nioHTTP1], fixtures: true),
])
module("NimbusTax", "Commerce/Tax", ["NimbusCore", "NimbusCurrency", "NimbusHTTP", Dep.nioCore], resources: [.copy("Resources/vat-rates.json")])
tests("NimbusTax", "Commerce/Tax", ["NimbusCurrency", "NimbusHTTP"])
domain("Billing", at: "Commerce/Billing", ["NimbusCurrency", "NimbusPayment", "NimbusTax", Dep.grdb],
       tests: ["NimbusBillingConformance", "NimbusCurrency", "NimbusPayment", "NimbusPaymentMemory", "NimbusTax"],
       conformance: ["NimbusCurrency", "NimbusPayment", "NimbusPaymentMemory", "NimbusTax"], adapters: [
    .adapter("Postgres", Bundles.postgres, tests: ["NimbusPostgres", Dep.postgresNIO]),
])

// MARK: - Communication (seed: pkg/communication/*) — email, SMS, push, chat, templates

domain("Email", at: "Communication/Email", [Dep.crypto, Dep.cryptoExtras, Dep.logging], tests: ["NimbusEmailConformance", Dep.crypto, Dep.cryptoExtras], fixtures: true, adapters: [
    .adapter("Memory"),
    .adapter("File"),
    .adapter("SMTP", ["NimbusNetwork", Dep.nioCore, Dep.nioPosix, Dep.nioSSL, Dep.logging], tests: [Dep.nioCore, Dep.nioEmbedded, Dep.nioSSL, Dep.crypto, Dep.cryptoExtras], fixtures: true),
    .adapter("SendGrid", [Dep.crypto] + Bundles.http, tests: ["NimbusHTTP", Dep.crypto, Dep.nioHTTP1], fixtures: true),
    .adapter("SES", Bundles.aws, tests: ["NimbusAWS", Dep.asyncHTTPClient]),
])
domain("SMS", at: "Communication/SMS", [Dep.logging], tests: ["NimbusSMSMemory"], adapters: [
    .adapter("Memory"),
    .adapter("Twilio", [Dep.crypto] + Bundles.http, tests: ["NimbusHTTP", Dep.nioHTTP1, Dep.crypto], fixtures: true),
    .adapter("SNS", Bundles.aws, tests: ["NimbusAWS", Dep.asyncHTTPClient]),
])
domain("Push", at: "Communication/Push", [Dep.logging], tests: ["NimbusPushMemory"], adapters: [
    .adapter("Memory"),
    .adapter("FCM", Bundles.gcp, tests: ["NimbusGCP", "NimbusHTTP"]),
    .adapter("APNs", [Dep.nioSSL, Dep.crypto] + Bundles.http,
             tests: [Dep.asyncHTTPClient, Dep.nioCore, Dep.nioPosix, Dep.nioHTTP1, Dep.nioHTTP2, Dep.nioSSL, Dep.crypto], fixtures: true),
])
domain("Chat", at: "Communication/Chat", [Dep.logging], tests: ["NimbusChatMemory"], adapters: [
    .adapter("Memory"),
    .adapter("Slack", Bundles.http, tests: ["NimbusHTTP", Dep.nioHTTP1]),
    .adapter("Discord", [Dep.crypto] + Bundles.http, tests: ["NimbusHTTP", Dep.nioHTTP1, Dep.crypto]),
])
module("NimbusNotify", "Communication/Notify", ["NimbusCore", "NimbusEmail", "NimbusSMS", "NimbusPush", "NimbusChat", "NimbusTemplate", Dep.grdb, Dep.logging])
tests("NimbusNotify", "Communication/Notify", ["NimbusEmail", "NimbusSMS", "NimbusPush", "NimbusChat", "NimbusTemplate", "NimbusEmailMemory",
                                              "NimbusSMSMemory", "NimbusPushMemory", "NimbusChatMemory"])
module("NimbusTemplate", "Communication/Template", ["NimbusCore", Dep.mustache])
tests("NimbusTemplate", "Communication/Template")

// MARK: - Services and the command-line tool

module("NimbusServer", "Services/Server", ["NimbusCore", "NimbusCatalog", Dep.hummingbird, Dep.nioCore, Dep.serviceLifecycle,
                                           Dep.prometheus, Dep.metrics, Dep.logging])
tests("NimbusServer", "Services/Server", [Dep.hummingbird, Dep.hummingbirdTesting])

// The llm-gateway service (seed: llm-gateway, over pkg/ai/llm/*)
module("NimbusGateway", "Services/Gateway", ["NimbusServer", "NimbusCore", "NimbusHTTP", "NimbusAuth", "NimbusLLM", "NimbusEmbeddings", "NimbusCache",
                                             "NimbusCacheMemory", "NimbusCacheRedis", "NimbusPostgres", "NimbusLLMScripted", "NimbusLLMOpenAI",
                                             "NimbusLLMAnthropic", "NimbusLLMGemini", "NimbusLLMOllama", "NimbusRateLimit", "NimbusRateLimitMemory", "NimbusRateLimitRedis", Dep.hummingbird, Dep.httpTypes, Dep.asyncHTTPClient,
                                             Dep.nioCore, Dep.nioSSL, Dep.grdb, Dep.postgresNIO, Dep.yams, Dep.crypto, Dep.logging, Dep.metrics,
                                             Dep.serviceLifecycle])
tests("NimbusGateway", "Services/Gateway", ["NimbusLLM", "NimbusAuth", Dep.crypto, "NimbusServer", "NimbusLLMOpenAI", Dep.hummingbird, Dep.hummingbirdTesting, Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.prometheus, Dep.logging, Dep.postgresNIO], fixtures: true)

targets.append(.executableTarget(
    name: "nimbus",
    dependencies: cliDependencies + ["NimbusCore", "NimbusCatalog", "NimbusServer", "NimbusGateway", "NimbusEmbeddings", "NimbusLLMRAG",
                                     "NimbusCurrency", "NimbusTax", "NimbusPostgres", "NimbusAWS", "NimbusTemplate", "NimbusMFA", "NimbusWAF",
                                     Dep.nioCore, Dep.nioPosix, Dep.postgresNIO, Dep.argumentParser, Dep.logging, Dep.serviceLifecycle],
    path: "Sources/CLI/nimbus",
    swiftSettings: swiftSettings
))
products.append(.executable(name: "nimbus", targets: ["nimbus"]))
targets.append(.testTarget(
    name: "nimbusTests",
    dependencies: ["nimbus", "NimbusCatalog", "NimbusTesting", "NimbusHTTP", "NimbusAWS", "NimbusDistributedLock", "NimbusDistributedLockRedis", "NimbusAuth", Dep.crypto, Dep.nioCore],
    path: "Tests/CLI/nimbusTests",
    swiftSettings: swiftSettings
))

// MARK: - Fuzzing (issue 15 §6: parsers that take bytes from the network)

targets.append(.target(name: "NimbusFuzzTargets", dependencies: ["NimbusCore", "NimbusHTTP", "NimbusRedis", "NimbusEmail", "NimbusEmailSMTP",
                                                                 "NimbusPaymentStripe", Dep.nioCore],
                       path: "Fuzz/Targets", swiftSettings: swiftSettings))
products.append(.library(name: "NimbusFuzzTargets", targets: ["NimbusFuzzTargets"]))
tests("NimbusFuzzTargets", "Fuzz/FuzzTargets", fixtures: true)
// The libFuzzer runner exists only for `scripts/fuzz` (NIMBUS_FUZZ=1 with -sanitize=fuzzer): libFuzzer supplies its main.
if Context.environment["NIMBUS_FUZZ"] == "1" {
    targets.append(.executableTarget(name: "nimbus-fuzz", dependencies: ["NimbusFuzzTargets"], path: "Fuzz/Runner", swiftSettings: swiftSettings))
    products.append(.executable(name: "nimbus-fuzz", targets: ["nimbus-fuzz"]))
}

let package = Package(
    name: "Nimbus",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: dependencies,
    targets: targets,
    swiftLanguageModes: [.v6]
)
