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
    static let nioEmbedded = Target.Dependency.product(name: "NIOEmbedded", package: "swift-nio")
    static let nioTestUtils = Target.Dependency.product(name: "NIOTestUtils", package: "swift-nio")
    static let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
    static let cryptoExtras = Target.Dependency.product(name: "_CryptoExtras", package: "swift-crypto")
    static let dequeModule = Target.Dependency.product(name: "DequeModule", package: "swift-collections")
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

// MARK: - Core: what every module stands on

module("NimbusCore", "Core/Core", [Dep.logging, Dep.configuration])
module("NimbusHTTP", "Core/HTTP", ["NimbusCore", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioPosix, Dep.nioHTTP1, Dep.crypto,
                                   Dep.logging, Dep.metrics, Dep.tracing])
module("NimbusRedis", "Core/Redis", ["NimbusCore", Dep.nioCore, Dep.nioPosix, Dep.nioSSL, Dep.dequeModule, Dep.logging])
module("NimbusTesting", "Core/Testing", ["NimbusCore", "NimbusHTTP", Dep.cryptoExtras, Dep.hummingbird, Dep.httpTypes, Dep.nioCore, Dep.nioHTTP1, Dep.nioPosix,
                                         Dep.openAPIKit, Dep.openAPIKit30, Dep.openAPIKitCompat, Dep.yams])
module("NimbusCatalog", "Core/Catalog")
module("NimbusPostgres", "Core/Postgres", ["NimbusCore", Dep.postgresNIO, Dep.nioSSL])

tests("NimbusCore", "Core/Core")
tests("NimbusHTTP", "Core/HTTP", [Dep.nioCore, Dep.nioHTTP1, Dep.asyncHTTPClient, Dep.metricsTestKit, Dep.logging])
tests("NimbusRedis", "Core/Redis", [Dep.nioCore, Dep.nioPosix, Dep.nioEmbedded, Dep.nioTestUtils])
tests("NimbusTesting", "Core/Testing", [Dep.nioCore, Dep.asyncHTTPClient], fixtures: true)
tests("NimbusCatalog", "Core/Catalog")

// MARK: - Cache (seed: pkg/cache/* — Redis, memory)

module("NimbusCache", "Cache/Cache", ["NimbusCore", Dep.nioCore, Dep.logging, Dep.metrics])
module("NimbusCacheConformance", "Cache/Conformance", ["NimbusCache", "NimbusCore", Dep.nioCore, "NimbusTesting"])
adapter("NimbusCacheMemory", "Cache/Adapters/Memory", domain: "NimbusCache", [Dep.nioCore, Dep.dequeModule])
adapter("NimbusCacheRedis", "Cache/Adapters/Redis", domain: "NimbusCache", ["NimbusRedis", Dep.nioCore])

tests("NimbusCache", "Cache/Cache", ["NimbusCacheMemory", Dep.nioCore])
tests("NimbusCacheMemory", "Cache/Adapters/Memory", ["NimbusCacheConformance", "NimbusCache"])
tests("NimbusCacheRedis", "Cache/Adapters/Redis", ["NimbusCacheConformance", "NimbusCache", "NimbusRedis"])

// MARK: - Database (seed: pkg/database/*)

module("NimbusVector", "Database/Vector/Vector", ["NimbusCore", Dep.grdb])
tests("NimbusVector", "Database/Vector/Vector")

// MARK: - AI / LLM (seed: pkg/ai/llm/* — the portable model API, its adapters, embeddings)

module("NimbusLLM", "AI/LLM/LLM", ["NimbusCore", "NimbusCache", Dep.crypto, Dep.nioCore, Dep.logging, Dep.metrics, Dep.tracing])
module("NimbusEmbeddings", "AI/LLM/Embeddings", ["NimbusCore", "NimbusCache", Dep.crypto, Dep.nioCore, Dep.logging])
module("NimbusEmbeddingsConformance", "AI/LLM/EmbeddingsConformance", ["NimbusEmbeddings", "NimbusCore", "NimbusTesting"])
module("NimbusLLMMemory", "AI/LLM/Memory/Memory", ["NimbusLLM", "NimbusCore", Dep.grdb, Dep.crypto])
module("NimbusLLMMemoryConformance", "AI/LLM/Memory/Conformance", ["NimbusLLMMemory", "NimbusLLM", "NimbusCore", "NimbusTesting"])
adapter("NimbusLLMMemoryRedis", "AI/LLM/Memory/Adapters/Redis", domain: "NimbusLLMMemory", ["NimbusLLM", "NimbusRedis", Dep.nioCore])
adapter("NimbusLLMMemoryPostgres", "AI/LLM/Memory/Adapters/Postgres", domain: "NimbusLLMMemory", ["NimbusLLM", "NimbusPostgres", Dep.postgresNIO, Dep.logging])
module("NimbusLLMConformance", "AI/LLM/Conformance", ["NimbusLLM", "NimbusCore", "NimbusTesting"])
module("NimbusLLMTools", "AI/LLM/Tools/Tools", ["NimbusLLM", "NimbusCore", Dep.logging, Dep.tracing])
module("NimbusLLMToolsConformance", "AI/LLM/Tools/Conformance", ["NimbusLLMTools", "NimbusLLMConformance", "NimbusLLM", "NimbusCore", "NimbusTesting"])
module("NimbusLLMChains", "AI/LLM/Chains", ["NimbusLLM", "NimbusCore", Dep.tracing])
module("NimbusLLMRAG", "AI/LLM/RAG", ["NimbusLLM", "NimbusEmbeddings", "NimbusVector", "NimbusCore", Dep.grdb])
adapter("NimbusLLMToolsMCP", "AI/LLM/Tools/Adapters/MCP", domain: "NimbusLLMTools", ["NimbusLLM", "NimbusHTTP", Dep.mcp, Dep.systemPackage, Dep.httpTypes,
                                                                                      Dep.hummingbird, Dep.nioCore, Dep.nioHTTP1, Dep.logging])
adapter("NimbusLLMScripted", "AI/LLM/Adapters/Scripted", domain: "NimbusLLM")
adapter("NimbusLLMAnthropic", "AI/LLM/Adapters/Anthropic", domain: "NimbusLLM", ["NimbusHTTP", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging])
adapter("NimbusLLMGemini", "AI/LLM/Adapters/Gemini", domain: "NimbusLLM", ["NimbusEmbeddings", "NimbusHTTP", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging])
adapter("NimbusLLMOllama", "AI/LLM/Adapters/Ollama", domain: "NimbusLLM", ["NimbusEmbeddings", "NimbusHTTP", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging])
adapter("NimbusLLMOpenAI", "AI/LLM/Adapters/OpenAI", domain: "NimbusLLM", ["NimbusEmbeddings", "NimbusHTTP", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging])

tests("NimbusLLM", "AI/LLM/LLM", ["NimbusLLMScripted", "NimbusCache", "NimbusCacheMemory", Dep.metricsTestKit])
tests("NimbusEmbeddings", "AI/LLM/Embeddings", ["NimbusEmbeddingsConformance", "NimbusCache", "NimbusCacheMemory"])
tests("NimbusLLMMemory", "AI/LLM/Memory/Memory", ["NimbusLLM", "NimbusLLMMemoryConformance", "NimbusLLMScripted"])
tests("NimbusLLMMemoryRedis", "AI/LLM/Memory/Adapters/Redis", ["NimbusLLMMemoryConformance", "NimbusLLMMemory", "NimbusRedis"])
tests("NimbusLLMMemoryPostgres", "AI/LLM/Memory/Adapters/Postgres", ["NimbusLLMMemoryConformance", "NimbusLLMMemory", "NimbusPostgres", Dep.postgresNIO])
tests("NimbusLLMTools", "AI/LLM/Tools/Tools", ["NimbusLLM", "NimbusLLMScripted"])
tests("NimbusLLMChains", "AI/LLM/Chains", ["NimbusLLM", "NimbusLLMScripted", Dep.tracing, Dep.inMemoryTracing])
tests("NimbusLLMRAG", "AI/LLM/RAG", ["NimbusLLM", "NimbusEmbeddings", "NimbusVector", "NimbusLLMScripted"], fixtures: true)
tests("NimbusLLMToolsMCP", "AI/LLM/Tools/Adapters/MCP", ["NimbusLLMTools", "NimbusLLM", Dep.hummingbird, Dep.mcp], fixtures: true)
tests("NimbusLLMScripted", "AI/LLM/Adapters/Scripted", ["NimbusLLMConformance", "NimbusLLMToolsConformance", "NimbusLLM"])
tests("NimbusLLMAnthropic", "AI/LLM/Adapters/Anthropic", ["NimbusLLMConformance", "NimbusLLMToolsConformance", "NimbusLLM", "NimbusHTTP", Dep.nioCore], fixtures: true)
tests("NimbusLLMGemini", "AI/LLM/Adapters/Gemini", ["NimbusEmbeddingsConformance", "NimbusLLMConformance", "NimbusLLMToolsConformance", "NimbusLLM", "NimbusEmbeddings", "NimbusHTTP", Dep.nioCore], fixtures: true)
tests("NimbusLLMOllama", "AI/LLM/Adapters/Ollama", ["NimbusEmbeddingsConformance", "NimbusLLMConformance", "NimbusLLMToolsConformance", "NimbusLLM", "NimbusEmbeddings", "NimbusHTTP", Dep.nioCore], fixtures: true)
tests("NimbusLLMOpenAI", "AI/LLM/Adapters/OpenAI", ["NimbusEmbeddingsConformance", "NimbusLLMConformance", "NimbusLLMToolsConformance", "NimbusLLM", "NimbusEmbeddings", "NimbusHTTP", Dep.nioCore], fixtures: true)

// MARK: - Cloud provider cores: one per provider, every AWS/GCP/Azure adapter builds on them
module("NimbusAWS", "Core/AWS", ["NimbusCore", "NimbusHTTP", Dep.crypto, Dep.cryptoExtras, Dep.x509, Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging], resources: [.copy("Resources/Models")])
tests("NimbusAWS", "Core/AWS", ["NimbusHTTP", Dep.crypto, Dep.cryptoExtras, Dep.x509], fixtures: true)
module("NimbusGCP", "Core/GCP", ["NimbusCore", "NimbusHTTP", Dep.crypto, Dep.cryptoExtras, Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging])
tests("NimbusGCP", "Core/GCP", ["NimbusHTTP", Dep.crypto, Dep.cryptoExtras])
module("NimbusAzure", "Core/Azure", ["NimbusCore", "NimbusHTTP", Dep.crypto, Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging])
tests("NimbusAzure", "Core/Azure", ["NimbusHTTP"])

// MARK: - Commerce (seed: pkg/commerce/*) — exact money first; payments, billing and tax build on it

module("NimbusCurrency", "Commerce/Currency", ["NimbusCore", "NimbusHTTP", Dep.nioCore], resources: [.copy("Resources/iso4217.csv"), .copy("Resources/ecb-snapshot.xml")])
tests("NimbusCurrency", "Commerce/Currency", ["NimbusHTTP", Dep.propertyBased], fixtures: true)
module("NimbusPayment", "Commerce/Payment/Payment", ["NimbusCore", "NimbusCurrency"])
tests("NimbusPayment", "Commerce/Payment/Payment", ["NimbusCurrency"])
module("NimbusPaymentConformance", "Commerce/Payment/Conformance", ["NimbusPayment", "NimbusCurrency", "NimbusCore", "NimbusTesting"])
adapter("NimbusPaymentMemory", "Commerce/Payment/Adapters/Memory", domain: "NimbusPayment", ["NimbusCurrency", Dep.grdb])
tests("NimbusPaymentMemory", "Commerce/Payment/Adapters/Memory", ["NimbusPaymentConformance", "NimbusPayment", "NimbusCurrency"])
adapter("NimbusPaymentStripe", "Commerce/Payment/Adapters/Stripe", domain: "NimbusPayment", ["NimbusCurrency", "NimbusHTTP", Dep.asyncHTTPClient, Dep.logging, Dep.nioCore, Dep.nioHTTP1])
adapter("NimbusPaymentPayPal", "Commerce/Payment/Adapters/PayPal", domain: "NimbusPayment", ["NimbusCurrency", "NimbusHTTP", Dep.asyncHTTPClient, Dep.logging, Dep.nioCore, Dep.nioHTTP1, Dep.crypto])
tests("NimbusPaymentPayPal", "Commerce/Payment/Adapters/PayPal", ["NimbusPaymentConformance", "NimbusPayment", "NimbusCurrency", "NimbusHTTP", Dep.nioHTTP1], fixtures: true)
module("NimbusTax", "Commerce/Tax", ["NimbusCore", "NimbusCurrency", "NimbusHTTP", Dep.nioCore], resources: [.copy("Resources/vat-rates.json")])
tests("NimbusTax", "Commerce/Tax", ["NimbusCurrency", "NimbusHTTP"])
module("NimbusBilling", "Commerce/Billing/Billing", ["NimbusCore", "NimbusCurrency", "NimbusPayment", "NimbusTax", Dep.grdb])
module("NimbusBillingConformance", "Commerce/Billing/Conformance", ["NimbusBilling", "NimbusCore", "NimbusCurrency", "NimbusPayment", "NimbusPaymentMemory", "NimbusTax", "NimbusTesting"])
adapter("NimbusBillingPostgres", "Commerce/Billing/Adapters/Postgres", domain: "NimbusBilling", ["NimbusPostgres", Dep.postgresNIO, Dep.logging])
tests("NimbusBillingPostgres", "Commerce/Billing/Adapters/Postgres", ["NimbusBillingConformance", "NimbusBilling", "NimbusPostgres", Dep.postgresNIO])
tests("NimbusBilling", "Commerce/Billing/Billing", ["NimbusBillingConformance", "NimbusCurrency", "NimbusPayment", "NimbusPaymentMemory", "NimbusTax"])
tests("NimbusPaymentStripe", "Commerce/Payment/Adapters/Stripe", ["NimbusPaymentConformance", "NimbusPaymentMemory", "NimbusPayment", "NimbusCurrency", "NimbusHTTP", Dep.nioHTTP1], fixtures: true)

// MARK: - Communication (seed: pkg/communication/*) — email, SMS, push, chat, templates

module("NimbusEmail", "Communication/Email/Email", ["NimbusCore", Dep.crypto, Dep.cryptoExtras, Dep.logging])
tests("NimbusEmail", "Communication/Email/Email", ["NimbusEmailConformance", Dep.crypto, Dep.cryptoExtras], fixtures: true)
module("NimbusEmailConformance", "Communication/Email/Conformance", ["NimbusEmail", "NimbusCore", "NimbusTesting"])
adapter("NimbusEmailMemory", "Communication/Email/Adapters/Memory", domain: "NimbusEmail")
tests("NimbusEmailMemory", "Communication/Email/Adapters/Memory", ["NimbusEmail", "NimbusEmailConformance"])
adapter("NimbusEmailFile", "Communication/Email/Adapters/File", domain: "NimbusEmail")
tests("NimbusEmailFile", "Communication/Email/Adapters/File", ["NimbusEmail", "NimbusEmailConformance"])
adapter("NimbusEmailSMTP", "Communication/Email/Adapters/SMTP", domain: "NimbusEmail", [Dep.nioCore, Dep.nioPosix, Dep.nioSSL, Dep.logging])
adapter("NimbusEmailSendGrid", "Communication/Email/Adapters/SendGrid", domain: "NimbusEmail", ["NimbusHTTP", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.crypto, Dep.logging])
tests("NimbusEmailSendGrid", "Communication/Email/Adapters/SendGrid", ["NimbusEmail", "NimbusEmailConformance", "NimbusHTTP", Dep.crypto, Dep.nioHTTP1], fixtures: true)
adapter("NimbusEmailSES", "Communication/Email/Adapters/SES", domain: "NimbusEmail", ["NimbusAWS"])
tests("NimbusEmailSES", "Communication/Email/Adapters/SES", ["NimbusEmail", "NimbusEmailConformance", "NimbusAWS", Dep.asyncHTTPClient])
tests("NimbusEmailSMTP", "Communication/Email/Adapters/SMTP", ["NimbusEmail", "NimbusEmailConformance", Dep.nioCore, Dep.nioEmbedded, Dep.nioSSL, Dep.crypto, Dep.cryptoExtras], fixtures: true)

module("NimbusChat", "Communication/Chat/Chat", ["NimbusCore", Dep.logging])
tests("NimbusChat", "Communication/Chat/Chat", ["NimbusChatMemory"])
adapter("NimbusChatMemory", "Communication/Chat/Adapters/Memory", domain: "NimbusChat")
tests("NimbusChatMemory", "Communication/Chat/Adapters/Memory", ["NimbusChat", "NimbusChatConformance"])
module("NimbusChatConformance", "Communication/Chat/Conformance", ["NimbusChat", "NimbusCore", "NimbusTesting"])
adapter("NimbusChatSlack", "Communication/Chat/Adapters/Slack", domain: "NimbusChat", ["NimbusHTTP", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.logging])
tests("NimbusChatSlack", "Communication/Chat/Adapters/Slack", ["NimbusChat", "NimbusChatConformance", "NimbusHTTP", Dep.nioHTTP1])
adapter("NimbusChatDiscord", "Communication/Chat/Adapters/Discord", domain: "NimbusChat", ["NimbusHTTP", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.crypto, Dep.logging])
tests("NimbusChatDiscord", "Communication/Chat/Adapters/Discord", ["NimbusChat", "NimbusChatConformance", "NimbusHTTP", Dep.nioHTTP1, Dep.crypto])
module("NimbusPush", "Communication/Push/Push", ["NimbusCore", Dep.logging])
tests("NimbusPush", "Communication/Push/Push", ["NimbusPushMemory"])
adapter("NimbusPushMemory", "Communication/Push/Adapters/Memory", domain: "NimbusPush")
tests("NimbusPushMemory", "Communication/Push/Adapters/Memory", ["NimbusPush", "NimbusPushConformance"])
module("NimbusPushConformance", "Communication/Push/Conformance", ["NimbusPush", "NimbusCore", "NimbusTesting"])
adapter("NimbusPushFCM", "Communication/Push/Adapters/FCM", domain: "NimbusPush", ["NimbusGCP", "NimbusHTTP", Dep.asyncHTTPClient, Dep.logging])
tests("NimbusPushFCM", "Communication/Push/Adapters/FCM", ["NimbusPush", "NimbusPushConformance", "NimbusGCP", "NimbusHTTP"])
adapter("NimbusPushAPNs", "Communication/Push/Adapters/APNs", domain: "NimbusPush", ["NimbusHTTP", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.nioSSL, Dep.crypto, Dep.logging])
tests("NimbusPushAPNs", "Communication/Push/Adapters/APNs", ["NimbusPush", "NimbusPushConformance", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioPosix, Dep.nioHTTP1, Dep.nioHTTP2, Dep.nioSSL, Dep.crypto], fixtures: true)
module("NimbusNotify", "Communication/Notify", ["NimbusCore", "NimbusEmail", "NimbusSMS", "NimbusPush", "NimbusChat", "NimbusTemplate", Dep.grdb, Dep.logging])
tests("NimbusNotify", "Communication/Notify", ["NimbusEmail", "NimbusSMS", "NimbusPush", "NimbusChat", "NimbusTemplate", "NimbusEmailMemory",
                                              "NimbusSMSMemory", "NimbusPushMemory", "NimbusChatMemory"])
module("NimbusTemplate", "Communication/Template", ["NimbusCore", Dep.mustache])
tests("NimbusTemplate", "Communication/Template")
module("NimbusSMS", "Communication/SMS/SMS", ["NimbusCore", Dep.logging])
tests("NimbusSMS", "Communication/SMS/SMS", ["NimbusSMSMemory"])
adapter("NimbusSMSMemory", "Communication/SMS/Adapters/Memory", domain: "NimbusSMS")
tests("NimbusSMSMemory", "Communication/SMS/Adapters/Memory", ["NimbusSMS", "NimbusSMSConformance"])
module("NimbusSMSConformance", "Communication/SMS/Conformance", ["NimbusSMS", "NimbusCore", "NimbusTesting"])
adapter("NimbusSMSTwilio", "Communication/SMS/Adapters/Twilio", domain: "NimbusSMS", ["NimbusHTTP", Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.crypto, Dep.logging])
adapter("NimbusSMSSNS", "Communication/SMS/Adapters/SNS", domain: "NimbusSMS", ["NimbusAWS"])
tests("NimbusSMSSNS", "Communication/SMS/Adapters/SNS", ["NimbusSMS", "NimbusSMSConformance", "NimbusAWS", Dep.asyncHTTPClient])
tests("NimbusSMSTwilio", "Communication/SMS/Adapters/Twilio", ["NimbusSMS", "NimbusSMSConformance", "NimbusHTTP", Dep.nioHTTP1, Dep.crypto], fixtures: true)

// MARK: - Services and the command-line tool

module("NimbusServer", "Services/Server", ["NimbusCore", "NimbusCatalog", Dep.hummingbird, Dep.nioCore, Dep.serviceLifecycle,
                                           Dep.prometheus, Dep.metrics, Dep.logging])
tests("NimbusServer", "Services/Server", [Dep.hummingbird, Dep.hummingbirdTesting])

// The llm-gateway service (seed: llm-gateway, over pkg/ai/llm/*)
module("NimbusGateway", "Services/Gateway", ["NimbusServer", "NimbusCore", "NimbusHTTP", "NimbusLLM", "NimbusEmbeddings", "NimbusCache",
                                             "NimbusCacheMemory", "NimbusCacheRedis", "NimbusPostgres", "NimbusLLMScripted", "NimbusLLMOpenAI",
                                             "NimbusLLMAnthropic", "NimbusLLMGemini", "NimbusLLMOllama", Dep.hummingbird, Dep.httpTypes, Dep.asyncHTTPClient,
                                             Dep.nioCore, Dep.nioSSL, Dep.grdb, Dep.postgresNIO, Dep.yams, Dep.crypto, Dep.logging, Dep.metrics,
                                             Dep.serviceLifecycle])
tests("NimbusGateway", "Services/Gateway", ["NimbusLLM", "NimbusServer", "NimbusLLMOpenAI", Dep.hummingbird, Dep.hummingbirdTesting, Dep.asyncHTTPClient, Dep.nioCore, Dep.nioHTTP1, Dep.prometheus, Dep.logging, Dep.postgresNIO], fixtures: true)

targets.append(.executableTarget(
    name: "nimbus",
    dependencies: ["NimbusCore", "NimbusCatalog", "NimbusServer", "NimbusCache", "NimbusCacheMemory", "NimbusCacheRedis",
                   "NimbusGateway", "NimbusLLM", "NimbusEmbeddings", "NimbusLLMScripted", "NimbusLLMOpenAI", "NimbusLLMAnthropic",
                   "NimbusLLMGemini", "NimbusLLMOllama", "NimbusLLMRAG", "NimbusCurrency", "NimbusPayment", "NimbusPaymentMemory",
                   "NimbusPaymentStripe", "NimbusPaymentPayPal", "NimbusTax", "NimbusBilling", "NimbusBillingPostgres", "NimbusPostgres", "NimbusAWS",
                   "NimbusEmail", "NimbusEmailMemory", "NimbusEmailFile", "NimbusEmailSMTP", "NimbusEmailSES", "NimbusEmailSendGrid", "NimbusSMS",
                   "NimbusSMSMemory", "NimbusSMSTwilio", "NimbusSMSSNS", "NimbusPush", "NimbusPushMemory", "NimbusPushFCM", "NimbusChat",
                   "NimbusChatMemory", "NimbusChatSlack", "NimbusChatDiscord", "NimbusTemplate", Dep.postgresNIO, Dep.argumentParser, Dep.logging, Dep.serviceLifecycle],
    path: "Sources/CLI/nimbus",
    swiftSettings: swiftSettings
))
products.append(.executable(name: "nimbus", targets: ["nimbus"]))
targets.append(.testTarget(
    name: "nimbusTests",
    dependencies: ["nimbus", "NimbusCatalog", "NimbusTesting", "NimbusHTTP", "NimbusAWS"],
    path: "Tests/CLI/nimbusTests",
    swiftSettings: swiftSettings
))

let package = Package(
    name: "Nimbus",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: dependencies,
    targets: targets,
    swiftLanguageModes: [.v6]
)
