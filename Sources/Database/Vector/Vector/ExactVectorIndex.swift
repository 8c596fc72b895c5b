import Foundation
import NimbusCore
import Synchronization

/// A bounded collection of the `k` best (highest-score) entries.
struct TopK {
    private(set) var items: [(score: Float, slot: Int32)] = []
    let k: Int
    init(_ k: Int) { self.k = k; items.reserveCapacity(k) }

    /// The worst score kept, once full.
    var threshold: Float { items.count < k ? -.infinity : items[0].score }

    // A min-heap on score: the root is the worst of the best.
    mutating func offer(_ score: Float, _ slot: Int32) {
        if items.count < k {
            items.append((score, slot))
            var child = items.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard items[child].score < items[parent].score else { break }
                items.swapAt(child, parent)
                child = parent
            }
        } else if score > items[0].score {
            items[0] = (score, slot)
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count, items[left].score < items[smallest].score { smallest = left }
                if right < items.count, items[right].score < items[smallest].score { smallest = right }
                guard smallest != parent else { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }

    /// Best first.
    func sorted() -> [(score: Float, slot: Int32)] { items.sorted { $0.score > $1.score } }
}

/// Exact nearest-neighbour search in memory: every vector is scored (SIMD), so recall is 1. The
/// right choice up to ~100k vectors of a few hundred dimensions, and the reference the HNSW index
/// is measured against.
///
/// ```swift
/// let store = ExactVectorIndex(dimensions: 384, metric: .cosine)
/// try await store.upsert([VectorRecord(id: "a", vector: v, metadata: ["lang": "en"])])
/// let hits = try await store.search(query, k: 5, filter: .equals("lang", "en"))
/// ```
public final class ExactVectorIndex: VectorStore {
    struct State {
        var vectors = ContiguousArray<Float>()
        var records: [VectorRecord] = []        // vectors emptied; the flat array holds them
        var slots: [String: Int] = [:]
    }

    public let dimensions: Int
    public let metric: DistanceMetric
    private let state = ReadWriteLocked(State())

    /// Creates an empty index.
    public init(dimensions: Int, metric: DistanceMetric = .cosine) {
        self.dimensions = max(1, dimensions)
        self.metric = metric
    }

    public func upsert(_ records: [VectorRecord]) async throws {
        let prepared = try VectorStores.validated(records, dimensions: dimensions, metric: metric)
        let dimensions = dimensions
        state.write { state in
            for record in prepared {
                var stored = record
                stored.vector = []
                if let slot = state.slots[record.id] {
                    state.records[slot] = stored
                    for index in 0..<dimensions { state.vectors[slot * dimensions + index] = record.vector[index] }
                } else {
                    state.slots[record.id] = state.records.count
                    state.records.append(stored)
                    state.vectors.append(contentsOf: record.vector)
                }
            }
        }
    }

    @discardableResult public func delete(ids: [String]) async throws -> Int {
        let dimensions = dimensions
        return state.write { state in
            var removed = 0
            for id in ids {
                guard let slot = state.slots.removeValue(forKey: id) else { continue }
                let last = state.records.count - 1
                if slot != last {
                    state.records[slot] = state.records[last]
                    state.slots[state.records[slot].id] = slot
                    for index in 0..<dimensions { state.vectors[slot * dimensions + index] = state.vectors[last * dimensions + index] }
                }
                state.records.removeLast()
                state.vectors.removeLast(dimensions)
                removed += 1
            }
            return removed
        }
    }

    public func search(_ query: [Float], k: Int, filter: MetadataFilter?) async throws -> [VectorMatch] {
        let prepared = try VectorStores.validated(query, dimensions: dimensions, metric: metric)
        guard k > 0 else { return [] }
        let dimensions = dimensions, metric = metric
        return state.read { state in
            var top = TopK(k)
            prepared.withUnsafeBufferPointer { q in
                state.vectors.withUnsafeBufferPointer { all in
                    for slot in 0..<state.records.count {
                        if let filter, !filter.matches(state.records[slot].metadata) { continue }
                        top.offer(VectorMath.score(metric, q.baseAddress!, all.baseAddress! + slot * dimensions, count: dimensions), Int32(slot))
                    }
                }
            }
            return top.sorted().map { VectorMatch(record: state.record(Int($0.slot), dimensions), score: $0.score) }
        }
    }

    public func records(ids: [String]) async throws -> [VectorRecord] {
        let dimensions = dimensions
        return state.read { state in ids.compactMap { state.slots[$0].map { state.record($0, dimensions) } } }
    }

    public func count() async throws -> Int { state.read { $0.records.count } }
}

extension ExactVectorIndex.State {
    func record(_ slot: Int, _ dimensions: Int) -> VectorRecord {
        var record = records[slot]
        record.vector = Array(vectors[(slot * dimensions)..<((slot + 1) * dimensions)])
        return record
    }
}
