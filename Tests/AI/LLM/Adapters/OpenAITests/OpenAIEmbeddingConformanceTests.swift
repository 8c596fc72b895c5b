import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusEmbeddingsConformance
import NimbusLLMOpenAI
import NimbusTesting
import Testing

/// The embeddings suite against OpenAI's spec-checked fake, which answers each input with its
/// reference vector (base64 float32, as the adapter asks).
@Suite("OpenAI embeddings conformance", .timeLimit(.minutes(1)))
struct OpenAIEmbeddingConformanceTests {
    static let capabilities: Set<ConformanceCapability> = [.dimensions]

    @Test(arguments: EmbeddingsConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<EmbeddingsConformance.Harness>) async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/v1/embeddings") { request in
            let body = try request.json()
            let inputs = body["input"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let dimensions = body["dimensions"]?.numberValue.map(Int.init) ?? 8
            let data: [JSONValue] = inputs.enumerated().reversed().map { index, text in   // out of order, as `index` allows
                ["object": "embedding", "index": .number(Double(index)),
                 "embedding": .string(OpenAIEmbeddingTests.base64(EmbeddingsConformance.referenceVector(for: text, dimensions: dimensions)))]
            }
            return .json(200, ["object": "list", "data": .array(data), "model": "text-embedding-3-small",
                               "usage": ["prompt_tokens": .number(Double(inputs.count)), "total_tokens": .number(Double(inputs.count))]])
        }
        let driver = OpenAIEmbeddingDriver(configuration: .init(apiKey: Secret("sk-test-123"), baseURL: fake.baseURL))
        try await check.run(.init(makeDriver: { driver }, model: "text-embedding-3-small", dimensions: 16))
    }

    @Test func everyCheckRuns() {
        #expect(EmbeddingsConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }
}
