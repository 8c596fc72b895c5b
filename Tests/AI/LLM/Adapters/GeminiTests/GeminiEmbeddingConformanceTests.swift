import NimbusCore
import NimbusEmbeddings
import NimbusEmbeddingsConformance
import NimbusLLMGemini
import NimbusTesting
import Testing

/// The embeddings suite against the Gemini fake (bodies checked against the protos), which answers
/// each request with its reference vector.
@Suite("Gemini embeddings conformance", .timeLimit(.minutes(1)))
struct GeminiEmbeddingConformanceTests {
    static let capabilities: Set<ConformanceCapability> = [.dimensions]

    @Test(arguments: EmbeddingsConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<EmbeddingsConformance.Harness>) async throws {
        let fake = try await GeminiFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/v1beta/models/{model}") { request in
            guard request.path.hasSuffix(":batchEmbedContents") else { return GeminiFake.error(404, "NOT_FOUND", "\(request.path)") }
            let requests = try request.json()["requests"]?.arrayValue ?? []
            let embeddings: [JSONValue] = requests.map { entry in
                let text = entry["content"]?["parts"]?.arrayValue?.compactMap { $0["text"]?.stringValue }.joined() ?? ""
                let dimensions = entry["outputDimensionality"]?.numberValue.map(Int.init) ?? 8
                return ["values": .array(EmbeddingsConformance.referenceVector(for: text, dimensions: dimensions).map { .number(Double($0)) })]
            }
            return .json(200, ["embeddings": .array(embeddings)])
        }
        let chat = GeminiChatModelDriver(configuration: .init(apiKey: Secret("AIza-test"), baseURL: fake.server.baseURL + "/v1beta"))
        let driver = GeminiEmbeddingDriver(chat: chat, taskType: "RETRIEVAL_DOCUMENT")
        try await check.run(.init(makeDriver: { driver }, model: "gemini-embedding-001", dimensions: 16))
    }

    @Test func everyCheckRuns() {
        #expect(EmbeddingsConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }
}
