import Crypto
import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusLLM
import NimbusVector
import Synchronization

/// A retrieval index in a directory: chunk vectors in SQLite (searched with HNSW in memory), a BM25
/// keyword index, and a manifest naming the embedding model, so a question is never embedded with a
/// different model than the chunks. Re-ingesting a document replaces its chunks; an unchanged
/// document (same content hash) is skipped.
///
/// ```swift
/// let index = try await RAGIndex.open(directory: ".nimbus/rag", embedder: embedder)
/// try await index.ingest(DocumentLoader().load(path: "docs/"), splitter: MarkdownHeaderSplitter())
/// let rag = RAGPipeline(retriever: index.hybridRetriever(), model: model)
/// ```
public final class RAGIndex: Sendable {
    /// What the directory was built with.
    public struct Manifest: Codable, Sendable, Hashable {
        /// The embedding model id.
        public var embeddingModel: String
        /// The embedding provider.
        public var provider: String
        /// Vector length.
        public var dimensions: Int
        /// Format version of the directory.
        public var version: Int
    }

    /// What an ingest did.
    public struct IngestReport: Sendable, Hashable {
        /// Documents read.
        public var documents = 0
        /// Documents skipped because they did not change.
        public var unchanged = 0
        /// Chunks embedded and stored.
        public var chunks = 0
        /// Old chunks removed (replaced documents).
        public var removed = 0
    }

    /// The directory.
    public let directory: String
    /// Embeds chunks and questions.
    public let embedder: Embedder
    /// The manifest.
    public let manifest: Manifest
    /// The chunk vectors (and texts).
    public let vectors: SQLiteVectorStore
    /// The keyword index over the same chunks.
    public let keywords: KeywordRetriever
    private let documents: Synchronization.Mutex<[String: StoredDocument]>

    struct StoredDocument: Codable, Sendable {
        var hash: String
        var chunks: [String]
    }

    private init(directory: String, embedder: Embedder, manifest: Manifest, vectors: SQLiteVectorStore, keywords: KeywordRetriever,
                 documents: [String: StoredDocument]) {
        self.directory = directory
        self.embedder = embedder
        self.manifest = manifest
        self.vectors = vectors
        self.keywords = keywords
        self.documents = Synchronization.Mutex(documents)
    }

    private static func path(_ directory: String, _ name: String) -> String { URL(fileURLWithPath: directory).appendingPathComponent(name).path }

    /// Opens the index in `directory`, creating it if `create` (the embedding model is probed once for its dimensions).
    /// - Throws: `notFound` if there is no index and `create` is false; `failedPrecondition` when the directory
    ///   was built with another embedding model than `embedder`'s.
    public static func open(directory: String, embedder: Embedder, create: Bool = true, hnsw: HNSWIndex.Configuration = .init()) async throws -> RAGIndex {
        let manifestPath = path(directory, "manifest.json")
        let manifest: Manifest
        if let data = FileManager.default.contents(atPath: manifestPath) {
            do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
                throw NimbusError(.dataLoss, "the RAG index manifest at \(manifestPath) is damaged: \(error)", underlying: error)
            }
            guard manifest.embeddingModel == embedder.configuration.defaultModel else {
                throw NimbusError(.failedPrecondition, "the index at \(directory) was built with the embedding model '\(manifest.embeddingModel)' (\(manifest.provider)); "
                                  + "questions must be embedded with the same model — use it, or ingest into a new index")
            }
        } else {
            guard create else { throw NimbusError(.notFound, "no RAG index at \(directory); create one with `nimbus rag ingest PATH --index \(directory)`") }
            let probe = try await embedder.embed("dimension probe")
            manifest = Manifest(embeddingModel: embedder.configuration.defaultModel, provider: embedder.provider, dimensions: probe.count, version: 1)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(manifest).write(to: URL(fileURLWithPath: manifestPath), options: .atomic)
        }
        let vectors = try await SQLiteVectorStore(path: path(directory, "vectors.sqlite"), dimensions: manifest.dimensions, index: .hnsw(hnsw))
        let keywordPath = path(directory, "keywords.json")
        let bm25 = FileManager.default.fileExists(atPath: keywordPath) ? try BM25Index(contentsOf: keywordPath) : BM25Index()
        var documents: [String: StoredDocument] = [:]
        if let data = FileManager.default.contents(atPath: path(directory, "documents.json")) {
            documents = (try? JSONDecoder().decode([String: StoredDocument].self, from: data)) ?? [:]
        }
        return RAGIndex(directory: directory, embedder: embedder, manifest: manifest, vectors: vectors,
                        keywords: KeywordRetriever(index: bm25, store: vectors), documents: documents)
    }

    /// Splits, embeds and stores documents; replaces the chunks of documents seen before.
    @discardableResult
    public func ingest(_ input: [Document], splitter: any TextSplitter = RecursiveSplitter(), batchSize: Int = 64) async throws -> IngestReport {
        var report = IngestReport()
        for document in input {
            report.documents += 1
            let hash = SHA256.hash(data: Data(document.text.utf8)).hexString
            let previous = documents.withLock { $0[document.id] }
            if previous?.hash == hash { report.unchanged += 1; continue }
            if let old = previous?.chunks, !old.isEmpty {
                report.removed += try await vectors.delete(ids: old)
                keywords.withIndex { $0.remove(old) }
            }
            let chunks = splitter.split(document)
            var stored: [String] = []
            for start in stride(from: 0, to: chunks.count, by: max(1, batchSize)) {
                let batch = Array(chunks[start..<min(chunks.count, start + max(1, batchSize))])
                let embedded = try await embedder.embed(batch.map(\.text))
                try await vectors.upsert(zip(batch, embedded).map { ChunkRecords.record($0, vector: $1) })
                keywords.withIndex { $0.add(batch) }
                stored += batch.map(\.id)
            }
            report.chunks += stored.count
            documents.withLock { $0[document.id] = StoredDocument(hash: hash, chunks: stored) }
            try save()
        }
        return report
    }

    /// Writes the keyword index and the document list (vectors are written as they are stored).
    public func save() throws {
        try keywords.withIndex { try $0.save(to: Self.path(directory, "keywords.json")) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = try documents.withLock { try encoder.encode($0) }
        try data.write(to: URL(fileURLWithPath: Self.path(directory, "documents.json")), options: .atomic)
    }

    /// Dense retrieval over the index.
    public func vectorRetriever() -> VectorRetriever { VectorRetriever(embedder: embedder, store: vectors) }

    /// Dense + keyword retrieval fused by reciprocal rank: the default.
    public func hybridRetriever(fusion: Fusion = .reciprocalRank()) -> HybridRetriever {
        HybridRetriever([vectorRetriever(), keywords], fusion: fusion)
    }

    /// The number of documents indexed.
    public var documentCount: Int { documents.withLock { $0.count } }
}
