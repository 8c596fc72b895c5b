import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusLLM
import NimbusLLMGemini
import NimbusTesting
import Testing

@Suite(.timeLimit(.minutes(2))) struct GeminiEmbeddingTests {
    @Test func batchEmbedContentsFollowsTheProtos() async throws {
        let fake = try await GeminiFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/v1beta/models/{model}") { request in   // the fake's gate checks the body against the protos
            let body = try request.json()
            guard request.path.hasSuffix(":batchEmbedContents") else { return GeminiFake.error(404, "NOT_FOUND", "\(request.path)") }
            let count = body["requests"]?.arrayValue?.count ?? 0
            return .json(200, ["embeddings": .array((0..<count).map { ["values": [.number(Double($0)), 1]] })])
        }
        let chat = GeminiChatModelDriver(configuration: .init(apiKey: Secret("AIza-test"), baseURL: fake.server.baseURL + "/v1beta"))
        let embedder = Embedder(driver: GeminiEmbeddingDriver(chat: chat, taskType: "RETRIEVAL_DOCUMENT"),
                                configuration: .init(defaultModel: "gemini-embedding-001", dimensions: 2, normalize: false))
        #expect(try await embedder.embed(["x", "y"]) == [[0, 1], [1, 1]])
        let body = try #require(fake.server.requests.first).json()
        #expect(body["requests"]?.arrayValue?.first == ["model": "models/gemini-embedding-001", "content": ["parts": [["text": "x"]]],
                                                       "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 2])
    }
}
