import Foundation
import NimbusCore
import NimbusLLM

/// Reorders retrieved chunks by relevance to the query, more precisely than the first stage.
public protocol Reranker: Sendable {
    /// The `topN` most relevant candidates, most relevant first, with the reranker's score.
    func rerank(_ query: String, _ candidates: [RetrievedChunk], topN: Int) async throws -> [RetrievedChunk]
}

/// A cross-encoder service (a model scoring query–passage pairs: TEI, Cohere, Jina, a local ONNX
/// server...). Implement `scores` over its API and wrap it in ``CrossEncoderReranker``.
public protocol CrossEncoder: Sendable {
    /// One relevance score per passage, in order (higher is more relevant).
    func scores(query: String, passages: [String]) async throws -> [Double]
}

/// Reranks with a ``CrossEncoder``.
public struct CrossEncoderReranker: Reranker {
    /// The service.
    public let encoder: any CrossEncoder

    /// Creates a reranker.
    public init(_ encoder: any CrossEncoder) { self.encoder = encoder }

    public func rerank(_ query: String, _ candidates: [RetrievedChunk], topN: Int) async throws -> [RetrievedChunk] {
        guard !candidates.isEmpty else { return [] }
        let scores = try await encoder.scores(query: query, passages: candidates.map(\.chunk.text))
        guard scores.count == candidates.count else {
            throw NimbusError(.dataLoss, "the cross-encoder returned \(scores.count) scores for \(candidates.count) passages")
        }
        return Array(zip(candidates, scores).map { RetrievedChunk(chunk: $0.chunk, score: $1) }
            .enumerated().sorted { $0.element.score != $1.element.score ? $0.element.score > $1.element.score : $0.offset < $1.offset }
            .map(\.element).prefix(topN))
    }
}

/// Reranks by asking a chat model to grade each passage 0–10 in one structured-output call.
/// Passages the model leaves out keep their order after the graded ones; a reply that is not the
/// asked JSON is an error (`dataLoss`), never a silent reshuffle.
public struct LLMReranker: Reranker {
    /// The grader.
    public let model: ChatModel
    /// Passages are cut to this many characters in the prompt.
    public var maxPassageCharacters: Int

    /// Creates a reranker.
    public init(model: ChatModel, maxPassageCharacters: Int = 1500) {
        self.model = model
        self.maxPassageCharacters = max(100, maxPassageCharacters)
    }

    public func rerank(_ query: String, _ candidates: [RetrievedChunk], topN: Int) async throws -> [RetrievedChunk] {
        guard !candidates.isEmpty else { return [] }
        let passages = candidates.enumerated().map { index, candidate in "[\(index)] \(candidate.chunk.text.prefix(maxPassageCharacters))" }
        let schema: JSONValue = [
            "type": "object",
            "properties": ["grades": ["type": "array", "items": [
                "type": "object", "properties": ["index": ["type": "integer"], "score": ["type": "number", "minimum": 0, "maximum": 10]],
                "required": ["index", "score"], "additionalProperties": false,
            ]]],
            "required": ["grades"], "additionalProperties": false,
        ]
        let request = ChatRequest(messages: [
            .system("Grade how well each numbered passage answers the query, from 0 (unrelated) to 10 (answers it fully). Answer as JSON."),
            .user("Query: \(query)\n\nPassages:\n" + passages.joined(separator: "\n\n")),
        ], responseFormat: .jsonSchema(name: "grades", schema: schema, strict: true), temperature: 0)
        let reply = try await model.chat(request)
        guard let grades = (try? JSONValue.parse(Data(reply.message.text.utf8)))?["grades"]?.arrayValue else {
            throw NimbusError(.dataLoss, "the reranking model did not answer with grades: \(reply.message.text.prefix(200))")
        }
        var scores: [Int: Double] = [:]
        for grade in grades {
            guard let index = grade["index"]?.numberValue.map(Int.init), candidates.indices.contains(index),
                  let score = grade["score"]?.numberValue else { continue }
            scores[index] = score
        }
        let ordered = candidates.indices.sorted { left, right in
            switch (scores[left], scores[right]) {
            case let (l?, r?): return l != r ? l > r : left < right
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return left < right
            }
        }
        return ordered.prefix(topN).map { RetrievedChunk(chunk: candidates[$0].chunk, score: scores[$0] ?? -1) }
    }
}
