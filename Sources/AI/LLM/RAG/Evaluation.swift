import Foundation

/// A query with the chunk (or document) ids that answer it, and how well (graded relevance, 1 = relevant).
public struct LabelledQuery: Sendable, Hashable, Codable {
    /// The query.
    public var query: String
    /// Relevant ids → grade.
    public var relevant: [String: Int]

    /// Creates a labelled query.
    public init(query: String, relevant: [String: Int]) {
        self.query = query
        self.relevant = relevant
    }
}

/// Retrieval quality metrics over ranked id lists.
public enum RetrievalMetrics {
    /// The share of relevant ids found in the first `k`.
    public static func recall(at k: Int, ranked: [String], relevant: Set<String>) -> Double {
        guard !relevant.isEmpty else { return 0 }
        return Double(Set(ranked.prefix(k)).intersection(relevant).count) / Double(relevant.count)
    }

    /// 1 / rank of the first relevant id (0 if none).
    public static func reciprocalRank(ranked: [String], relevant: Set<String>) -> Double {
        guard let rank = ranked.firstIndex(where: relevant.contains) else { return 0 }
        return 1 / Double(rank + 1)
    }

    /// Normalized discounted cumulative gain at `k` with graded relevance: Σ (2^g − 1)/log2(rank + 1), over the ideal order's.
    public static func ndcg(at k: Int, ranked: [String], relevance: [String: Int]) -> Double {
        func dcg(_ grades: [Int]) -> Double {
            grades.prefix(k).enumerated().reduce(0) { $0 + (pow(2, Double($1.element)) - 1) / log2(Double($1.offset + 2)) }
        }
        let ideal = dcg(relevance.values.sorted(by: >))
        guard ideal > 0 else { return 0 }
        return dcg(ranked.map { relevance[$0] ?? 0 }) / ideal
    }

    /// Averages over a labelled set.
    public struct Report: Sendable, Hashable {
        /// Mean recall@k.
        public var recall: Double
        /// Mean reciprocal rank.
        public var mrr: Double
        /// Mean nDCG@k.
        public var ndcg: Double
        /// Per query: (recall, reciprocal rank, nDCG).
        public var perQuery: [String: (recall: Double, reciprocalRank: Double, ndcg: Double)]

        public static func == (lhs: Report, rhs: Report) -> Bool {
            lhs.recall == rhs.recall && lhs.mrr == rhs.mrr && lhs.ndcg == rhs.ndcg
        }
        public func hash(into hasher: inout Hasher) { hasher.combine(recall); hasher.combine(mrr); hasher.combine(ndcg) }
    }

    /// Runs `rank` (a retriever's ids for a query) over every labelled query.
    public static func evaluate(_ queries: [LabelledQuery], k: Int, rank: (String) async throws -> [String]) async rethrows -> Report {
        var perQuery: [String: (recall: Double, reciprocalRank: Double, ndcg: Double)] = [:]
        for labelled in queries {
            let ranked = try await rank(labelled.query)
            let relevant = Set(labelled.relevant.filter { $0.value > 0 }.keys)
            perQuery[labelled.query] = (recall(at: k, ranked: ranked, relevant: relevant), reciprocalRank(ranked: Array(ranked.prefix(k)), relevant: relevant),
                                        ndcg(at: k, ranked: ranked, relevance: labelled.relevant))
        }
        let count = Double(max(1, queries.count))
        return Report(recall: perQuery.values.reduce(0) { $0 + $1.recall } / count, mrr: perQuery.values.reduce(0) { $0 + $1.reciprocalRank } / count,
                      ndcg: perQuery.values.reduce(0) { $0 + $1.ndcg } / count, perQuery: perQuery)
    }
}
