import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusLLM
import NimbusVector
import Synchronization

/// A retrieved chunk and its score in the retriever that returned it (scores of different
/// retrievers are not comparable; fusion uses ranks).
public struct RetrievedChunk: Sendable, Hashable {
    /// The chunk.
    public var chunk: Chunk
    /// Higher is better.
    public var score: Double

    /// Creates a result.
    public init(chunk: Chunk, score: Double) {
        self.chunk = chunk
        self.score = score
    }
}

/// Finds the chunks that answer a query.
public protocol Retriever: Sendable {
    /// The `k` best chunks, best first.
    func retrieve(_ query: String, k: Int, filter: MetadataFilter?) async throws -> [RetrievedChunk]
}

extension Retriever {
    /// The `k` best chunks.
    public func retrieve(_ query: String, k: Int) async throws -> [RetrievedChunk] { try await retrieve(query, k: k, filter: nil) }
}

/// Chunks kept as vector records: the record's text is the chunk's text; its metadata carries the
/// chunk's, plus `document`, `span_start` and `span_end`.
public enum ChunkRecords {
    /// The record for an embedded chunk.
    public static func record(_ chunk: Chunk, vector: [Float]) -> VectorRecord {
        var metadata = chunk.metadata
        metadata["document"] = .string(chunk.documentID)
        metadata["span_start"] = .number(Double(chunk.span.lowerBound))
        metadata["span_end"] = .number(Double(chunk.span.upperBound))
        return VectorRecord(id: chunk.id, vector: vector, metadata: metadata, text: chunk.text)
    }

    /// The chunk a record holds.
    public static func chunk(_ record: VectorRecord) -> Chunk {
        var metadata = record.metadata
        let start = Int(metadata.removeValue(forKey: "span_start")?.numberValue ?? 0)
        let end = Int(metadata.removeValue(forKey: "span_end")?.numberValue ?? 0)
        let document = metadata["document"]?.stringValue ?? record.id.components(separatedBy: "#").first ?? record.id
        return Chunk(id: record.id, documentID: document, text: record.text ?? "", span: start..<max(start, end), metadata: metadata)
    }
}

/// Dense retrieval: embed the query, search a vector store.
public struct VectorRetriever: Retriever {
    /// Embeds queries (the same model as the chunks).
    public let embedder: Embedder
    /// Holds the chunks.
    public let store: any VectorStore

    /// Creates a retriever.
    public init(embedder: Embedder, store: any VectorStore) {
        self.embedder = embedder
        self.store = store
    }

    public func retrieve(_ query: String, k: Int, filter: MetadataFilter?) async throws -> [RetrievedChunk] {
        let vector = try await embedder.embed(query)
        return try await store.search(vector, k: k, filter: filter).map { RetrievedChunk(chunk: ChunkRecords.chunk($0.record), score: Double($0.score)) }
    }
}

/// Keyword retrieval with BM25; chunk texts come from the vector store that holds them.
public final class KeywordRetriever: Retriever {
    private let index: Mutex<BM25Index>
    /// Where chunk texts are read.
    public let store: any VectorStore

    /// Creates a retriever over an index.
    public init(index: BM25Index, store: any VectorStore) {
        self.index = Mutex(index)
        self.store = store
    }

    /// The index, for adding and saving.
    public func withIndex<T>(_ body: (inout BM25Index) throws -> T) rethrows -> T { try index.withLock { try body(&$0) } }

    public func retrieve(_ query: String, k: Int, filter: MetadataFilter?) async throws -> [RetrievedChunk] {
        let hits = index.withLock { $0.search(query, k: k, filter: filter) }
        let records = Dictionary(uniqueKeysWithValues: try await store.records(ids: hits.map(\.id)).map { ($0.id, $0) })
        return hits.compactMap { hit in records[hit.id].map { RetrievedChunk(chunk: ChunkRecords.chunk($0), score: hit.score) } }
    }
}

/// How ranked lists are merged.
public enum Fusion: Sendable, Hashable {
    /// Reciprocal-rank fusion: Σ 1/(k + rank) over the lists (rank from 1) — robust, needs no score calibration.
    case reciprocalRank(k: Double = 60)
    /// Weighted sum of min-max-normalized scores, one weight per list.
    case weighted([Double])

    /// Merges lists of results into one, best first.
    public func fuse(_ lists: [[RetrievedChunk]]) -> [RetrievedChunk] {
        var fused: [String: (chunk: Chunk, score: Double)] = [:]
        for (index, list) in lists.enumerated() {
            switch self {
            case .reciprocalRank(let k):
                for (rank, result) in list.enumerated() {
                    fused[result.chunk.id, default: (result.chunk, 0)].score += 1 / (k + Double(rank + 1))
                }
            case .weighted(let weights):
                let weight = index < weights.count ? weights[index] : 1
                let scores = list.map(\.score)
                let low = scores.min() ?? 0, high = scores.max() ?? 0
                for result in list {
                    let normalized = high > low ? (result.score - low) / (high - low) : 1
                    fused[result.chunk.id, default: (result.chunk, 0)].score += weight * normalized
                }
            }
        }
        return fused.values.sorted { $0.score != $1.score ? $0.score > $1.score : $0.chunk.id < $1.chunk.id }
            .map { RetrievedChunk(chunk: $0.chunk, score: $0.score) }
    }
}

/// Several retrievers (by default dense + keyword) fused — reciprocal-rank fusion unless told otherwise.
///
/// ```swift
/// let hybrid = HybridRetriever([VectorRetriever(embedder: e, store: s), KeywordRetriever(index: bm25, store: s)])
/// ```
public struct HybridRetriever: Retriever {
    /// The retrievers.
    public var retrievers: [any Retriever]
    /// How their lists merge.
    public var fusion: Fusion
    /// How many candidates each retriever gives, as a multiple of `k` (at least 20).
    public var candidatesPerK: Int

    /// Creates a hybrid retriever.
    public init(_ retrievers: [any Retriever], fusion: Fusion = .reciprocalRank(), candidatesPerK: Int = 4) {
        self.retrievers = retrievers
        self.fusion = fusion
        self.candidatesPerK = max(1, candidatesPerK)
    }

    public func retrieve(_ query: String, k: Int, filter: MetadataFilter?) async throws -> [RetrievedChunk] {
        let fetch = max(20, k * candidatesPerK)
        let lists = try await withThrowingTaskGroup(of: (Int, [RetrievedChunk]).self) { group in
            for (index, retriever) in retrievers.enumerated() {
                group.addTask { (index, try await retriever.retrieve(query, k: fetch, filter: filter)) }
            }
            var lists = [[RetrievedChunk]](repeating: [], count: retrievers.count)
            for try await (index, list) in group { lists[index] = list }
            return lists
        }
        return Array(fusion.fuse(lists).prefix(k))
    }
}

/// Asks a model for other phrasings of the query, retrieves for each (and the original), and fuses
/// the lists with reciprocal-rank fusion — recall for questions phrased unlike the documents.
public struct MultiQueryRetriever: Retriever {
    /// The retriever used for each phrasing.
    public var base: any Retriever
    /// Writes the phrasings.
    public var model: ChatModel
    /// How many extra phrasings.
    public var variants: Int

    /// Creates a retriever.
    public init(base: any Retriever, model: ChatModel, variants: Int = 3) {
        self.base = base
        self.model = model
        self.variants = max(1, variants)
    }

    /// The query's rewrites (the original first). A reply that is not the asked JSON leaves only the original.
    public func rewrites(_ query: String) async throws -> [String] {
        let schema: JSONValue = ["type": "object", "properties": ["queries": ["type": "array", "items": ["type": "string"]]],
                                 "required": ["queries"], "additionalProperties": false]
        let request = ChatRequest(messages: [
            .system("You rewrite search queries. Give \(variants) different phrasings of the user's query that could match relevant documents. Answer as JSON."),
            .user(query),
        ], responseFormat: .jsonSchema(name: "rewrites", schema: schema, strict: true), temperature: 0.7)
        let reply = try await model.chat(request)
        let parsed = (try? JSONValue.parse(Data(reply.message.text.utf8)))?["queries"]?.arrayValue?.compactMap(\.stringValue) ?? []
        var seen: Set<String> = [query.lowercased()]
        return [query] + parsed.filter { !$0.isEmpty && seen.insert($0.lowercased()).inserted }.prefix(variants)
    }

    public func retrieve(_ query: String, k: Int, filter: MetadataFilter?) async throws -> [RetrievedChunk] {
        var lists: [[RetrievedChunk]] = []
        for phrasing in try await rewrites(query) { lists.append(try await base.retrieve(phrasing, k: k, filter: filter)) }
        return Array(Fusion.reciprocalRank().fuse(lists).prefix(k))
    }
}
