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
    ],
    swiftLanguageModes: [.v6]
)
