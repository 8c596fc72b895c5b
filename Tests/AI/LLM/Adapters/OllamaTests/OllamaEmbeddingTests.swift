import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusLLM
import NimbusLLMOllama
import NimbusTesting
import Testing

@Suite(.timeLimit(.minutes(2))) struct OllamaEmbeddingTests {
    @Test func embedSendsAllInputsAndKeepAlive() async throws {
        let fake = try await OllamaFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/api/embed") { request in
            let inputs = try request.json()["input"]?.arrayValue ?? []
            return .json(200, ["model": "nomic-embed-text", "embeddings": .array(inputs.indices.map { [.number(Double($0)), 2] }),
                               "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": .number(Double(inputs.count))])
        }
        let chat = OllamaChatModelDriver(configuration: .init(baseURL: fake.server.baseURL, keepAlive: "1m"))
        let embedder = Embedder(driver: OllamaEmbeddingDriver(chat: chat), configuration: .init(defaultModel: "nomic-embed-text", normalize: false))
        let result = try await embedder.embedWithUsage(["a", "b"])
        #expect(result.vectors == [[0, 2], [1, 2]])
        #expect(result.inputTokens == 2)
        #expect(try fake.server.requests.first?.json()["keep_alive"] == "1m")
    }
}
