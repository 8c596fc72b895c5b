import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NimbusCore
import NimbusEmbeddings
import NimbusHTTP
import NimbusLLM

/// OpenAI (and Azure OpenAI, and compatible servers) `POST /embeddings`, up to 2048 inputs per
/// request, vectors fetched as base64 float32 as OpenAI's SDKs do.
///
/// ```swift
/// let embedder = Embedder(driver: OpenAIEmbeddingDriver(chat: openAI), configuration: .init(defaultModel: "text-embedding-3-small"))
/// ```
public struct OpenAIEmbeddingDriver: EmbeddingDriver {
    private let model: OpenAIChatModelDriver
    public var provider: String { model.provider }
    public var maxBatchSize: Int { 2048 }

    /// Uses the chat adapter's client, credentials and flavor.
    public init(chat: OpenAIChatModelDriver) { self.model = chat }

    /// Creates a client from settings.
    public init(configuration: OpenAIChatModelDriver.Configuration, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.model = OpenAIChatModelDriver(configuration: configuration, httpClient: httpClient, logger: logger)
    }

    struct Request: Encodable {
        var input: [String]
        var model: String
        var dimensions: Int?
        var encodingFormat: String
        enum CodingKeys: String, CodingKey { case input, model, dimensions, encodingFormat = "encoding_format" }
    }

    struct Response: Decodable {
        var data: [Item]
        var usage: Usage?
        struct Item: Decodable {
            var index: Int
            var embedding: Vector
        }
        struct Usage: Decodable { var promptTokens: Int?; enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens" } }
        /// An array of numbers, or base64 little-endian float32.
        struct Vector: Decodable {
            var values: [Float]
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let numbers = try? container.decode([Float].self) { values = numbers; return }
                let text = try container.decode(String.self)
                guard let data = Data(base64Encoded: text), data.count % 4 == 0 else {
                    throw DecodingError.dataCorruptedError(in: container, debugDescription: "embedding is neither numbers nor base64 float32")
                }
                values = stride(from: 0, to: data.count, by: 4).map { offset in
                    Float(bitPattern: UInt32(data[data.startIndex + offset]) | UInt32(data[data.startIndex + offset + 1]) << 8
                          | UInt32(data[data.startIndex + offset + 2]) << 16 | UInt32(data[data.startIndex + offset + 3]) << 24)
                }
            }
        }
    }

    public func embed(_ texts: [String], model name: String, dimensions: Int?) async throws -> EmbeddingBatch {
        var request = NimbusHTTPRequest(.POST, model.path("embeddings", model: name), operation: "embeddings.create")
        try request.setJSON(Request(input: texts, model: name, dimensions: dimensions, encodingFormat: "base64"), encoder: JSONEncoder())
        request.safeToRetry = true
        let provider = self.provider
        let response = try await model.client.json(request, as: Response.self, decoder: JSONDecoder()) { response, body in
            OpenAIErrors.error(for: response, body: body, provider: provider)
        }
        let ordered = response.data.sorted { $0.index < $1.index }
        guard ordered.map(\.index) == Array(0..<texts.count) else {
            throw LLMFailure(kind: .malformedResponse, provider: provider, message: "expected embeddings 0..<\(texts.count), got indexes \(ordered.map(\.index))").nimbusError()
        }
        return EmbeddingBatch(vectors: ordered.map(\.embedding.values), inputTokens: response.usage?.promptTokens ?? 0)
    }
}
