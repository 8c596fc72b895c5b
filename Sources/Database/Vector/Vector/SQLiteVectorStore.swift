import Foundation
import GRDB
import NimbusCore

/// Vectors persisted in a SQLite file (GRDB), searched through an in-memory index rebuilt when the
/// file is opened: exact by default, HNSW for large collections. Every write goes to SQLite first
/// (one transaction per call), then to the index, so the file is the source of truth.
///
/// ```swift
/// let store = try await SQLiteVectorStore(path: "rag/vectors.sqlite", dimensions: 384, index: .hnsw(.init()))
/// ```
public final class SQLiteVectorStore: VectorStore {
    /// The in-memory index kept beside the file.
    public enum IndexKind: Sendable {
        /// Exact search (recall 1).
        case exact
        /// HNSW with these settings.
        case hnsw(HNSWIndex.Configuration)
    }

    public let dimensions: Int
    public let metric: DistanceMetric
    private let queue: DatabaseQueue
    private let index: any VectorStore

    /// Opens (creating) the store; the file remembers its dimensions and metric and refuses others.
    /// - Throws: `unavailable` if the file cannot be opened, `failedPrecondition` if it holds other dimensions or another metric.
    public init(path: String, dimensions: Int, metric: DistanceMetric = .cosine, index kind: IndexKind = .exact) async throws {
        self.dimensions = dimensions
        self.metric = metric
        do {
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
            queue = try DatabaseQueue(path: path)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.execute(sql: """
                    CREATE TABLE vector_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE vectors (id TEXT PRIMARY KEY, vector BLOB NOT NULL, metadata TEXT NOT NULL, text TEXT);
                    """)
            }
            try migrator.migrate(queue)
        } catch {
            throw NimbusError(.unavailable, "cannot open the vector store at \(path): \(error)", underlying: error)
        }
        let settings = try await queue.write { db -> [String: String] in
            try db.execute(sql: "INSERT OR IGNORE INTO vector_settings VALUES ('dimensions', ?), ('metric', ?)", arguments: [String(dimensions), metric.rawValue])
            return Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT key, value FROM vector_settings").map { ($0["key"] as String, $0["value"] as String) })
        }
        guard settings["dimensions"] == String(dimensions), settings["metric"] == metric.rawValue else {
            throw NimbusError(.failedPrecondition, "the vector store at \(path) holds \(settings["dimensions"] ?? "?")-dimensional \(settings["metric"] ?? "?") vectors, not \(dimensions)-dimensional \(metric.rawValue)")
        }
        switch kind {
        case .exact: index = ExactVectorIndex(dimensions: dimensions, metric: metric)
        case .hnsw(let configuration): index = HNSWIndex(dimensions: dimensions, metric: metric, configuration: configuration)
        }
        let stored = try await queue.read { db in try Row.fetchAll(db, sql: "SELECT id, vector, metadata, text FROM vectors ORDER BY rowid") }
        let decoder = JSONDecoder()
        let records = try stored.map { row -> VectorRecord in
            let id: String = row["id"]
            let blob: Data = row["vector"]
            guard blob.count == dimensions * 4 else {
                throw NimbusError(.dataLoss, "the vector of '\(id)' in \(path) has \(blob.count) bytes, not \(dimensions * 4)")
            }
            let vector = blob.withUnsafeBytes { raw in (0..<dimensions).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
            let metadata: String = row["metadata"]
            return VectorRecord(id: id, vector: vector, metadata: try decoder.decode([String: JSONValue].self, from: Data(metadata.utf8)), text: row["text"])
        }
        try await index.upsert(records)
    }

    public func upsert(_ records: [VectorRecord]) async throws {
        let dimensions = dimensions, metric = metric
        for record in records { _ = try VectorStores.validated(record.vector, dimensions: dimensions, metric: metric, id: record.id) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let rows = try records.map { record in
            (record.id, record.vector.withUnsafeBufferPointer { Data(buffer: $0) }, String(decoding: try encoder.encode(record.metadata), as: UTF8.self), record.text)
        }
        try await queue.write { db in
            for row in rows {
                try db.execute(sql: "INSERT OR REPLACE INTO vectors (id, vector, metadata, text) VALUES (?, ?, ?, ?)", arguments: [row.0, row.1, row.2, row.3])
            }
        }
        try await index.upsert(records)
    }

    @discardableResult public func delete(ids: [String]) async throws -> Int {
        try await queue.write { db in
            for id in ids { try db.execute(sql: "DELETE FROM vectors WHERE id = ?", arguments: [id]) }
        }
        return try await index.delete(ids: ids)
    }

    public func search(_ query: [Float], k: Int, filter: MetadataFilter?) async throws -> [VectorMatch] {
        try await index.search(query, k: k, filter: filter)
    }

    public func records(ids: [String]) async throws -> [VectorRecord] { try await index.records(ids: ids) }

    public func count() async throws -> Int { try await index.count() }
}
