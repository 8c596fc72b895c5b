import AsyncHTTPClient
import Foundation
import Logging
import NimbusCore
import NimbusEmbeddings
import NimbusHTTP
import NimbusLLM

/// Gemini `batchEmbedContents` (up to 100 texts per request), with an optional task type and
/// `outputDimensionality`.
///
/// ```swift
/// let embedder = Embedder(driver: GeminiEmbeddingDriver(chat: gemini, taskType: "RETRIEVAL_DOCUMENT"),
///                         configuration: .init(defaultModel: "gemini-embedding-001", dimensions: 768))
/// ```
public struct GeminiEmbeddingDriver: EmbeddingDriver {
    private let model: GeminiChatModelDriver
    /// `RETRIEVAL_QUERY`, `RETRIEVAL_DOCUMENT`, `SEMANTIC_SIMILARITY`... (`nil`: the model's default).
    public var taskType: String?
    public var provider: String { model.provider }
    public var maxBatchSize: Int { 100 }

    /// Uses the chat adapter's client and credentials.
    public init(chat: GeminiChatModelDriver, taskType: String? = nil) {
        self.model = chat
        self.taskType = taskType
    }

    struct Request: Encodable {
        var requests: [Item]
        struct Item: Encodable {
            var model: String
            var content: GeminiWire.Content
            var taskType: String?
            var outputDimensionality: Int?
        }
    }

    struct Response: Decodable {
        var embeddings: [Embedding]?
        struct Embedding: Decodable { var values: [Float] }
    }

    public func embed(_ texts: [String], model name: String, dimensions: Int?) async throws -> EmbeddingBatch {
        let resource = name.contains("/") ? name : "models/\(name)"
        let body = Request(requests: texts.map {
            .init(model: resource, content: .init(role: nil, parts: [.init(text: $0)]), taskType: taskType, outputDimensionality: dimensions)
        })
        var request = NimbusHTTPRequest(.POST, "\(model.modelPath(name)):batchEmbedContents", operation: "models.batchEmbedContents")
        try request.setJSON(body, encoder: JSONEncoder())
        request.safeToRetry = true
        let provider = self.provider
        let response = try await model.client.json(request, as: Response.self, decoder: JSONDecoder()) { response, body in
            GeminiErrors.error(for: response, body: body, provider: provider)
        }
        return EmbeddingBatch(vectors: (response.embeddings ?? []).map(\.values))
    }
}
