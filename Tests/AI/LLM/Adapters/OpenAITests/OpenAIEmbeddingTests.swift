import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusLLM
import NimbusLLMOpenAI
import NimbusTesting
import Testing

@Suite(.timeLimit(.minutes(2))) struct OpenAIEmbeddingTests {
    static func base64(_ values: [Float]) -> String {
        var data = Data()
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data.base64EncodedString()
    }

    @Test func embedsInBatchesAsBase64Float32CheckedAgainstTheSpec() async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/v1/embeddings") { request in
            let inputs = try request.json()["input"]?.arrayValue ?? []
            // Answer out of order, as the index field allows.
            let data: [JSONValue] = inputs.indices.reversed().map { index in
                ["object": "embedding", "index": .number(Double(index)), "embedding": .string(Self.base64([Float(index), 0.5, -1]))]
            }
            return .json(200, ["object": "list", "data": .array(data), "model": "text-embedding-3-small",
                               "usage": ["prompt_tokens": .number(Double(inputs.count * 3)), "total_tokens": .number(Double(inputs.count * 3))]])
        }
        let driver = OpenAIEmbeddingDriver(configuration: .init(apiKey: Secret("sk-test-123"), baseURL: fake.baseURL))
        let embedder = Embedder(driver: driver, configuration: .init(defaultModel: "text-embedding-3-small", dimensions: 3, normalize: false, batchSize: 2))
        let result = try await embedder.embedWithUsage(["a", "b", "c"])
        #expect(result.vectors == [[0, 0.5, -1], [1, 0.5, -1], [0, 0.5, -1]])   // batches of two: indexes restart
        #expect(result.inputTokens == 9)
        let bodies = try fake.server.requests.map { try $0.json() }
        #expect(bodies.allSatisfy { $0["encoding_format"] == "base64" && $0["dimensions"] == 3 })
    }

    @Test func embeddingErrorsUseTheSameTaxonomy() async throws {
        let fake = try await OpenAIFake.start()
        defer { Task { await fake.server.shutdown() } }
        fake.server.route(.POST, "/v1/embeddings", reply: OpenAIFake.error(400, "This model's maximum context length is 8192 tokens, however you requested 9000 tokens.",
                                                                            type: "invalid_request_error", code: nil, param: "input"))
        let embedder = Embedder(driver: OpenAIEmbeddingDriver(configuration: .init(apiKey: Secret("sk-test-123"), baseURL: fake.baseURL)),
                                configuration: .init(defaultModel: "text-embedding-3-small"))
        do { _ = try await embedder.embed("long"); Issue.record("expected an error") } catch let error as NimbusError {
            #expect(error.llmFailure?.kind == .contextLengthExceeded)
        }
    }
}
