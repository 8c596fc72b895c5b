import NimbusCore
import NimbusEmbeddings
import NimbusEmbeddingsConformance
import NimbusTesting
import Testing

/// The embeddings suite against the embedded hashing embedder (fixed dimensions).
@Suite("Hashing embedder conformance")
struct HashingConformanceTests {
    static let capabilities: Set<ConformanceCapability> = []

    @Test(arguments: EmbeddingsConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<EmbeddingsConformance.Harness>) async throws {
        try await check.run(.init(makeDriver: { HashingEmbeddingDriver(dimensions: 64) }, model: HashingEmbeddingDriver.modelName(64), dimensions: 64))
    }

    @Test func notSupported() {
        #expect(EmbeddingsConformance.suite.unsupported(by: Self.capabilities).map(\.needs) == [[.dimensions]])
    }
}
