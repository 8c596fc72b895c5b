import NimbusCore
import NimbusEmbeddings
import NimbusEmbeddingsConformance
import NimbusTesting
import Testing

/// The embeddings suite against the embedded hashing embedder (384 native dimensions, asked for 64).
@Suite("Hashing embedder conformance")
struct HashingConformanceTests {
    static let capabilities: Set<ConformanceCapability> = [.dimensions]

    @Test(arguments: EmbeddingsConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<EmbeddingsConformance.Harness>) async throws {
        try await check.run(.init(makeDriver: { HashingEmbeddingDriver(dimensions: 384) }, model: HashingEmbeddingDriver.modelName(384), dimensions: 64))
    }

    @Test func everyCheckRuns() {
        #expect(EmbeddingsConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }
}
