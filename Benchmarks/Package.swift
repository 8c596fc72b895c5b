// swift-tools-version: 6.1
//
// Nimbus benchmarks: a package of its own so that ordo-one/benchmark never slows the main
// build. Run with `Benchmarks/run` (starts redis-server and measures redis-benchmark in the
// same run) or `swift package --disable-sandbox benchmark` from this folder.

import PackageDescription

let package = Package(
    name: "NimbusBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Nimbus", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        .executableTarget(
            name: "CacheBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NimbusCache", package: "Nimbus"),
                .product(name: "NimbusCacheMemory", package: "Nimbus"),
                .product(name: "NimbusRedis", package: "Nimbus"),
                .product(name: "NimbusCore", package: "Nimbus"),
            ],
            path: "Benchmarks/CacheBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The upstream of Benchmarks/gateway-vs-litellm: an OpenAI-compatible server with a fixed latency.
        .executableTarget(
            name: "FakeUpstream",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "Benchmarks/FakeUpstream"
        ),
        // Where an upstream call's time goes: raw AsyncHTTPClient, NimbusHTTPClient, the OpenAI adapter.
        .executableTarget(
            name: "ClientLatency",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NimbusHTTP", package: "Nimbus"),
                .product(name: "NimbusLLM", package: "Nimbus"),
                .product(name: "NimbusLLMOpenAI", package: "Nimbus"),
                .product(name: "NimbusCore", package: "Nimbus"),
            ],
            path: "Benchmarks/ClientLatency"
        ),
        // HNSWIndex against hnswlib and BM25Index against SQLite FTS5 (Benchmarks/vector-vs-hnswlib).
        .executableTarget(
            name: "RetrievalBenchmarks",
            dependencies: [
                .product(name: "NimbusVector", package: "Nimbus"),
                .product(name: "NimbusLLMRAG", package: "Nimbus"),
                .product(name: "NimbusEmbeddings", package: "Nimbus"),
                .product(name: "NimbusCore", package: "Nimbus"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Benchmarks/RetrievalBenchmarks"
        ),
        // SigV4 signatures per second against botocore (Benchmarks/sigv4-vs-botocore).
        // Bucket over S3 (moto) and file:// against boto3's s3transfer and cp (Benchmarks/blob-vs-boto3).
        .executableTarget(
            name: "BlobBenchmark",
            dependencies: [
                .product(name: "NimbusBlob", package: "Nimbus"),
                .product(name: "NimbusBlobS3", package: "Nimbus"),
                .product(name: "NimbusBlobFile", package: "Nimbus"),
                .product(name: "NimbusCore", package: "Nimbus"),
            ],
            path: "Benchmarks/BlobBenchmark"
        ),
        .executableTarget(
            name: "SigV4Benchmark",
            dependencies: [
                .product(name: "NimbusAWS", package: "Nimbus"),
                .product(name: "NimbusCore", package: "Nimbus"),
            ],
            path: "Benchmarks/SigV4Benchmark"
        ),
        // Messaging throughput against nats-py and raw SQLite (Benchmarks/messaging-vs-python).
        .executableTarget(
            name: "MessagingBenchmark",
            dependencies: [
                .product(name: "NimbusMessaging", package: "Nimbus"),
                .product(name: "NimbusMessagingNATS", package: "Nimbus"),
                .product(name: "NimbusMessagingRabbitMQ", package: "Nimbus"),
                .product(name: "NimbusMessagingKafka", package: "Nimbus"),
                .product(name: "NimbusMessagingSQLite", package: "Nimbus"),
                .product(name: "NimbusCore", package: "Nimbus"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Benchmarks/MessagingBenchmark"
        ),
        // Rate-limit decisions per second (Benchmarks/ratelimit-vs-redis-benchmark).
        .executableTarget(
            name: "RateLimitBenchmark",
            dependencies: [
                .product(name: "NimbusRateLimit", package: "Nimbus"),
                .product(name: "NimbusRateLimitMemory", package: "Nimbus"),
                .product(name: "NimbusRateLimitRedis", package: "Nimbus"),
                .product(name: "NimbusRedis", package: "Nimbus"),
                .product(name: "NimbusCore", package: "Nimbus"),
            ],
            path: "Benchmarks/RateLimitBenchmark"
        ),
        // Placement quality and lookup speed of the shard selectors (Benchmarks/sharding-distribution).
        .executableTarget(
            name: "ShardingBenchmark",
            dependencies: [.product(name: "NimbusSharding", package: "Nimbus")],
            path: "Benchmarks/ShardingBenchmark"
        ),
        // Notification template renders per second against Jinja2 (Benchmarks/template-vs-jinja2).
        .executableTarget(
            name: "TemplateBenchmark",
            dependencies: [
                .product(name: "NimbusTemplate", package: "Nimbus"),
                .product(name: "NimbusCore", package: "Nimbus"),
            ],
            path: "Benchmarks/TemplateBenchmark"
        ),
    ],
    swiftLanguageModes: [.v6]
)
