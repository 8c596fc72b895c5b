import Foundation
import NimbusCore

/// A vector with its id, metadata and (optionally) the text it embeds.
public struct VectorRecord: Sendable, Hashable, Codable {
    /// Unique within a store; upserting an existing id replaces it.
    public var id: String
    /// The embedding.
    public var vector: [Float]
    /// Filterable fields (`source`, `lang`, `year`...).
    public var metadata: [String: JSONValue]
    /// The text, for stores that keep it.
    public var text: String?

    /// Creates a record.
    public init(id: String, vector: [Float], metadata: [String: JSONValue] = [:], text: String? = nil) {
        self.id = id
        self.vector = vector
        self.metadata = metadata
        self.text = text
    }
}

/// A search hit.
public struct VectorMatch: Sendable, Hashable {
    /// The record (its vector as stored: normalized for cosine stores).
    public var record: VectorRecord
    /// Higher is closer (cosine similarity, inner product, or −squared distance).
    public var score: Float

    /// Creates a match.
    public init(record: VectorRecord, score: Float) {
        self.record = record
        self.score = score
    }
}

/// A condition on metadata.
///
/// ```swift
/// let filter: MetadataFilter = .and([.equals("lang", "en"), .range("year", min: 2020)])
/// ```
public indirect enum MetadataFilter: Sendable, Hashable {
    /// The field equals the value.
    case equals(String, JSONValue)
    /// The field is missing or differs.
    case notEquals(String, JSONValue)
    /// The field is one of the values (or, for an array field, contains one of them).
    case oneOf(String, [JSONValue])
    /// A number within bounds (inclusive).
    case range(String, min: Double? = nil, max: Double? = nil)
    /// The field is present.
    case exists(String)
    /// All hold.
    case and([MetadataFilter])
    /// Any holds.
    case or([MetadataFilter])
    /// Does not hold.
    case not(MetadataFilter)

    /// Whether `metadata` satisfies the filter.
    public func matches(_ metadata: [String: JSONValue]) -> Bool {
        switch self {
        case .equals(let key, let value):
            guard let field = metadata[key] else { return false }
            return field == value || (field.arrayValue?.contains(value) ?? false)
        case .notEquals(let key, let value): return !MetadataFilter.equals(key, value).matches(metadata)
        case .oneOf(let key, let values):
            guard let field = metadata[key] else { return false }
            if let elements = field.arrayValue { return elements.contains { values.contains($0) } }
            return values.contains(field)
        case .range(let key, let minimum, let maximum):
            guard let number = metadata[key]?.numberValue else { return false }
            return (minimum.map { number >= $0 } ?? true) && (maximum.map { number <= $0 } ?? true)
        case .exists(let key): return metadata[key] != nil
        case .and(let filters): return filters.allSatisfy { $0.matches(metadata) }
        case .or(let filters): return filters.contains { $0.matches(metadata) }
        case .not(let filter): return !filter.matches(metadata)
        }
    }
}

/// A store of vectors searched by similarity: the in-memory exact index, the HNSW index and the
/// SQLite store all have this shape.
public protocol VectorStore: Sendable {
    /// The vectors' length.
    var dimensions: Int { get }
    /// How closeness is measured.
    var metric: DistanceMetric { get }
    /// Inserts or replaces records. - Throws: `invalidArgument` for a vector of the wrong length or with NaN/∞.
    func upsert(_ records: [VectorRecord]) async throws
    /// Removes records. - Returns: how many existed.
    @discardableResult func delete(ids: [String]) async throws -> Int
    /// The `k` closest records that pass `filter`, closest first.
    func search(_ query: [Float], k: Int, filter: MetadataFilter?) async throws -> [VectorMatch]
    /// Records by id (missing ids are skipped).
    func records(ids: [String]) async throws -> [VectorRecord]
    /// How many records are stored.
    func count() async throws -> Int
}

extension VectorStore {
    /// The `k` closest records.
    public func search(_ query: [Float], k: Int) async throws -> [VectorMatch] { try await search(query, k: k, filter: nil) }

    /// Maximal marginal relevance: `k` records chosen from the `fetchK` closest, each maximizing
    /// `λ·similarity(query) − (1−λ)·max similarity(already chosen)` — relevant and not redundant.
    /// `lambda` 1 is plain similarity, 0 pure diversity.
    public func searchMMR(_ query: [Float], k: Int, fetchK: Int = 20, lambda: Float = 0.5, filter: MetadataFilter? = nil) async throws -> [VectorMatch] {
        let candidates = try await search(query, k: max(k, fetchK), filter: filter)
        return VectorStores.maximalMarginalRelevance(query: VectorStores.prepare(query, metric), candidates: candidates, k: k, lambda: lambda, metric: metric)
    }
}

/// Helpers shared by the stores.
public enum VectorStores {
    /// Checks a vector and prepares it for `metric` (normalized for cosine).
    /// - Throws: `invalidArgument` naming the problem.
    public static func validated(_ vector: [Float], dimensions: Int, metric: DistanceMetric, id: String? = nil) throws -> [Float] {
        let what = id.map { "the vector of '\($0)'" } ?? "the query vector"
        guard vector.count == dimensions else {
            throw NimbusError(.invalidArgument, "\(what) has \(vector.count) dimensions; this store holds \(dimensions)")
        }
        guard vector.allSatisfy(\.isFinite) else { throw NimbusError(.invalidArgument, "\(what) contains NaN or infinity") }
        return prepare(vector, metric)
    }

    /// Records with their vectors checked and prepared for `metric`.
    /// - Throws: `invalidArgument` naming the first record whose vector is unusable.
    public static func validated(_ records: [VectorRecord], dimensions: Int, metric: DistanceMetric) throws -> [VectorRecord] {
        try records.map { record in
            var copy = record
            copy.vector = try validated(record.vector, dimensions: dimensions, metric: metric, id: record.id)
            return copy
        }
    }

    /// Normalized for cosine, unchanged otherwise.
    public static func prepare(_ vector: [Float], _ metric: DistanceMetric) -> [Float] {
        metric == .cosine ? VectorMath.normalized(vector) : vector
    }

    /// The score of two prepared vectors.
    public static func score(_ a: [Float], _ b: [Float], _ metric: DistanceMetric) -> Float {
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in VectorMath.score(metric, pa.baseAddress!, pb.baseAddress!, count: min(pa.count, pb.count)) } }
    }

    /// MMR selection over candidates (their `record.vector` prepared for `metric`).
    public static func maximalMarginalRelevance(query: [Float], candidates: [VectorMatch], k: Int, lambda: Float, metric: DistanceMetric) -> [VectorMatch] {
        var remaining = candidates
        var chosen: [VectorMatch] = []
        while chosen.count < k, !remaining.isEmpty {
            var bestIndex = 0, bestValue = -Float.infinity
            for (index, candidate) in remaining.enumerated() {
                let redundancy = chosen.map { score(candidate.record.vector, $0.record.vector, metric) }.max() ?? 0
                let value = lambda * candidate.score - (1 - lambda) * (chosen.isEmpty ? 0 : redundancy)
                if value > bestValue { bestValue = value; bestIndex = index }
            }
            chosen.append(remaining.remove(at: bestIndex))
        }
        return chosen
    }
}
