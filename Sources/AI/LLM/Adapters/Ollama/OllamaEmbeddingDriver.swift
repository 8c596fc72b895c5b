import AsyncHTTPClient
import Foundation
import Logging
import NimbusCore
import NimbusEmbeddings
import NimbusHTTP
import NimbusLLM

/// Ollama `POST /api/embed`, many inputs per request, with `keep_alive` and `dimensions`.
///
/// ```swift
/// let embedder = Embedder(driver: OllamaEmbeddingDriver(chat: ollama), configuration: .init(defaultModel: "nomic-embed-text"))
/// ```
public struct OllamaEmbeddingDriver: EmbeddingDriver {
    private let model: OllamaChatModelDriver
    public var provider: String { model.provider }
    public var maxBatchSize: Int { 256 }

    /// Uses the chat adapter's client and settings.
    public init(chat: OllamaChatModelDriver) { self.model = chat }

    struct Request: Encodable {
        var model: String
        var input: [String]
        var dimensions: Int?
        var keepAlive: String?
        enum CodingKeys: String, CodingKey { case model, input, dimensions, keepAlive = "keep_alive" }
    }

    struct Response: Decodable {
        var embeddings: [[Float]]
        var promptEvalCount: Int?
        enum CodingKeys: String, CodingKey { case embeddings, promptEvalCount = "prompt_eval_count" }
    }

    public func embed(_ texts: [String], model name: String, dimensions: Int?) async throws -> EmbeddingBatch {
        var request = NimbusHTTPRequest(.POST, "/api/embed", operation: "embed")
        try request.setJSON(Request(model: name, input: texts, dimensions: dimensions, keepAlive: model.configuration.keepAlive), encoder: JSONEncoder())
        request.safeToRetry = true
        let provider = self.provider
        let response = try await model.client.json(request, as: Response.self, decoder: JSONDecoder()) { response, body in
            OllamaStreamDecoder.error(status: Int(response.status.code), raw: String(buffer: body), provider: provider, retryAfter: response.retryAfter())
        }
        return EmbeddingBatch(vectors: response.embeddings, inputTokens: response.promptEvalCount ?? 0)
    }
}
