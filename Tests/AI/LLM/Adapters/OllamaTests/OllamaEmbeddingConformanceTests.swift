import NimbusCore
import NimbusEmbeddings
import NimbusEmbeddingsConformance
import NimbusLLMOllama
import NimbusTesting
import Testing

/// The embeddings suite against the Ollama fake (requests checked against Ollama's API description),
/// which answers each input with its reference vector. The model decides the dimensions.
@Suite("Ollama embeddings conformance", .timeLimit(.minutes(1)))
struct OllamaEmbeddingConformanceTests {
    static let capabilities: Set<ConformanceCapability> = []

    @Test(arguments: EmbeddingsConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<EmbeddingsConformance.Harness>) async throws {
        let fake = try await OllamaFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/api/embed") { request in
            let inputs = try request.json()["input"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let vectors: [JSONValue] = inputs.map { .array(EmbeddingsConformance.referenceVector(for: $0, dimensions: 8).map { .number(Double($0)) }) }
            return .json(200, ["model": "nomic-embed-text", "embeddings": .array(vectors), "prompt_eval_count": .number(Double(inputs.count))])
        }
        let driver = OllamaEmbeddingDriver(chat: OllamaChatModelDriver(configuration: .init(baseURL: fake.server.baseURL)))
        try await check.run(.init(makeDriver: { driver }, model: "nomic-embed-text", dimensions: 8))
    }

    @Test func notSupported() {
        #expect(EmbeddingsConformance.suite.unsupported(by: Self.capabilities).map(\.needs) == [[.dimensions]])
    }
}
