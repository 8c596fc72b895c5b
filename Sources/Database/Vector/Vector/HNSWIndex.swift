import Foundation
import NimbusCore
import Synchronization

/// Approximate nearest-neighbour search with a hierarchical navigable small-world graph, written here:
/// SIMD distances, incremental inserts, deletes (tombstones that keep routing, compacted when they
/// outnumber live records), metadata filters applied during the search (with an exact fallback when a
/// filter is too selective for the beam), and a single-file binary format saved atomically.
///
/// ```swift
/// let index = HNSWIndex(dimensions: 384, configuration: .init(m: 16, efConstruction: 200, efSearch: 64))
/// try await index.upsert(records)
/// let hits = try await index.search(query, k: 10)
/// try index.save(to: "/var/lib/rag/index.hnsw")
/// let reopened = try HNSWIndex(contentsOf: "/var/lib/rag/index.hnsw")
/// ```
public final class HNSWIndex: VectorStore {
    /// Graph and search settings.
    public struct Configuration: Sendable, Hashable {
        /// Links per node on upper levels (level 0 has 2·M). 12–48; more is better recall and more memory.
        public var m: Int
        /// Beam width while building: better graphs, slower inserts.
        public var efConstruction: Int
        /// Beam width while searching (at least k): the recall/speed dial.
        public var efSearch: Int
        /// Seed of the level generator (same seed and order, same graph).
        public var seed: UInt64

        /// Creates settings.
        public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, seed: UInt64 = 42) {
            self.m = m
            self.efConstruction = efConstruction
            self.efSearch = efSearch
            self.seed = seed
        }
    }

    struct State {
        var graph: HNSWGraph
        var records: [VectorRecord?] = []        // by node; vectors live in the graph; nil once deleted
        var nodes: [String: Int32] = [:]
        var efSearch: Int
    }

    public let dimensions: Int
    public let metric: DistanceMetric
    /// The settings it was built with.
    public let configuration: Configuration
    private let state: ReadWriteLocked<State>
    private let scratchPool = Mutex<[SearchScratch]>([])

    /// Creates an empty index.
    public init(dimensions: Int, metric: DistanceMetric = .cosine, configuration: Configuration = Configuration()) {
        self.dimensions = max(1, dimensions)
        self.metric = metric
        self.configuration = configuration
        state = ReadWriteLocked(State(graph: HNSWGraph(dimensions: max(1, dimensions), metric: metric, m: configuration.m,
                                             efConstruction: configuration.efConstruction, seed: configuration.seed), efSearch: configuration.efSearch))
    }

    /// The search beam width, changeable at any time (the recall/speed dial).
    public var efSearch: Int {
        get { state.read { $0.efSearch } }
        set { state.write { $0.efSearch = max(1, newValue) } }
    }

    public func upsert(_ records: [VectorRecord]) async throws {
        try upsertNow(records)
    }

    /// ``upsert(_:)`` without suspending (bulk loads, benchmarks).
    public func upsertNow(_ records: [VectorRecord]) throws {
        let prepared = try VectorStores.validated(records, dimensions: dimensions, metric: metric)
        state.write { state in
            state.graph.reserve(state.graph.count + prepared.count)
            for record in prepared {
                if let old = state.nodes[record.id] {
                    state.graph.markDeleted(old)
                    state.records[Int(old)] = nil
                }
                let node = state.graph.insert(record.vector)
                var stored = record
                stored.vector = []
                state.records.append(stored)
                state.nodes[record.id] = node
                assert(Int(node) == state.records.count - 1)
            }
            if state.graph.deletedCount > max(1024, state.nodes.count) { Self.compact(&state, configuration) }
        }
    }

    @discardableResult public func delete(ids: [String]) async throws -> Int {
        state.write { state in
            var removed = 0
            for id in ids {
                guard let node = state.nodes.removeValue(forKey: id) else { continue }
                state.graph.markDeleted(node)
                state.records[Int(node)] = nil
                removed += 1
            }
            if state.graph.deletedCount > max(1024, state.nodes.count) { Self.compact(&state, configuration) }
            return removed
        }
    }

    public func search(_ query: [Float], k: Int, filter: MetadataFilter?) async throws -> [VectorMatch] {
        try searchNow(query, k: k, filter: filter)
    }

    /// ``search(_:k:filter:)`` without suspending (benchmarks, tight loops). Searches run concurrently;
    /// inserts and deletes wait for them and exclude them.
    public func searchNow(_ query: [Float], k: Int, filter: MetadataFilter? = nil) throws -> [VectorMatch] {
        let prepared = try VectorStores.validated(query, dimensions: dimensions, metric: metric)
        guard k > 0 else { return [] }
        let scratch = scratchPool.withLock { $0.popLast() } ?? SearchScratch()
        defer { scratchPool.withLock { if $0.count < 64 { $0.append(scratch) } } }
        let dimensions = dimensions, metric = metric
        return state.read { state in
            let records = state.records
            let found: [(Float, Int32)] = prepared.withUnsafeBufferPointer { q in
                if filter == nil, state.graph.deletedCount == 0 {
                    return state.graph.search(q.baseAddress!, k: k, ef: state.efSearch, accept: nil, scratch: scratch)
                }
                let accept: (Int32) -> Bool = { node in
                    guard let record = records[Int(node)] else { return false }
                    return filter?.matches(record.metadata) ?? true
                }
                let hits = state.graph.search(q.baseAddress!, k: k, ef: state.efSearch, accept: accept, scratch: scratch)
                if hits.count >= k || filter == nil { return hits }
                // A selective filter can starve the beam: score the matching records exactly instead.
                var top = TopK(k)
                for node in 0..<state.graph.count where accept(Int32(node)) {
                    top.offer(-state.graph.distance(q.baseAddress!, Int32(node)), Int32(node))
                }
                return top.sorted().map { (-$0.score, $0.slot) }
            }
            return found.map { distance, node in
                var record = records[Int(node)]!
                record.vector = Array(UnsafeBufferPointer(start: state.graph.vector(node), count: dimensions))
                return VectorMatch(record: record, score: Self.score(distance, metric))
            }
        }
    }

    /// Distance ("lower is closer") back to the store's score ("higher is closer").
    static func score(_ distance: Float, _ metric: DistanceMetric) -> Float {
        switch metric {
        case .cosine: 1 - distance
        case .dot, .euclidean: -distance
        }
    }

    public func records(ids: [String]) async throws -> [VectorRecord] {
        let dimensions = dimensions
        return state.read { state in
            ids.compactMap { id in
                guard let node = state.nodes[id], var record = state.records[Int(node)] else { return nil }
                record.vector = Array(UnsafeBufferPointer(start: state.graph.vector(node), count: dimensions))
                return record
            }
        }
    }

    public func count() async throws -> Int { state.read { $0.nodes.count } }

    /// Rebuilds the graph from the live records only (drops tombstones).
    public func compact() {
        let configuration = configuration
        state.write { Self.compact(&$0, configuration) }
    }

    private static func compact(_ state: inout State, _ configuration: Configuration) {
        let old = state.graph
        let graph = HNSWGraph(dimensions: old.dimensions, metric: old.metric, m: configuration.m, efConstruction: configuration.efConstruction,
                              seed: configuration.seed, capacity: max(1024, state.nodes.count))
        var records: [VectorRecord?] = []
        var nodes: [String: Int32] = [:]
        for (node, record) in state.records.enumerated() {
            guard let record else { continue }
            let vector = Array(UnsafeBufferPointer(start: old.vector(Int32(node)), count: old.dimensions))
            nodes[record.id] = graph.insert(vector)
            records.append(record)
        }
        state.graph = graph
        state.records = records
        state.nodes = nodes
    }

    // MARK: Persistence

    private static let magic = Array("NIMBUSHNSW".utf8)
    private static let formatVersion: UInt32 = 1

    /// Writes the index to `path` (a temporary file renamed over it, so readers never see half a file).
    public func save(to path: String) throws {
        let data: Data = state.read { state in
            var writer = BinaryWriter()
            writer.bytes(Self.magic)
            writer.u32(Self.formatVersion)
            writer.u32(UInt32(dimensions))
            writer.string(metric.rawValue)
            writer.u32(UInt32(configuration.m))
            writer.u32(UInt32(configuration.efConstruction))
            writer.u32(UInt32(state.efSearch))
            writer.u64(configuration.seed)
            let graph = state.graph
            writer.u32(UInt32(graph.count))
            writer.i32(graph.entryPoint)
            writer.i32(graph.maxLevel)
            writer.floats(UnsafeBufferPointer(start: graph.vectors, count: graph.count * dimensions))
            writer.int32s(UnsafeBufferPointer(start: graph.links0, count: graph.count * (graph.m0 + 1)))
            writer.int32s(UnsafeBufferPointer(start: graph.levels, count: graph.count))
            writer.int32s(UnsafeBufferPointer(start: graph.upperOffsets, count: graph.count))
            writer.u32(UInt32(graph.upperCount))
            writer.int32s(UnsafeBufferPointer(start: graph.upperLinks, count: graph.upperCount))
            writer.bytes(Array(UnsafeBufferPointer(start: graph.deleted, count: graph.count)))
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            writer.data((try? encoder.encode(state.records)) ?? Data("[]".utf8))
            return writer.data
        }
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(IDGenerator.shared.ulid()).tmp")
        do {
            try data.write(to: temporary)
            if FileManager.default.fileExists(atPath: path) {
                _ = try FileManager.default.replaceItemAt(url, withItemAt: temporary)
            } else {
                try FileManager.default.moveItem(at: temporary, to: url)
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw NimbusError(.unavailable, "cannot write the HNSW index to \(path): \(error)", underlying: error)
        }
    }

    /// Opens an index saved with ``save(to:)``.
    /// - Throws: `notFound` for a missing file; `dataLoss` for a file that is not a complete index of this format.
    public convenience init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NimbusError(.notFound, "no HNSW index at \(path)")
        }
        var reader = BinaryReader(data: data, path: path)
        do {
            guard try reader.bytes(Self.magic.count) == Self.magic else { throw reader.corrupt("it does not start with the HNSW index signature") }
            let version = try reader.u32()
            guard version == Self.formatVersion else { throw reader.corrupt("format version \(version) is not \(Self.formatVersion)") }
            let dimensions = Int(try reader.u32())
            guard let metric = DistanceMetric(rawValue: try reader.string()) else { throw reader.corrupt("unknown metric") }
            let configuration = Configuration(m: Int(try reader.u32()), efConstruction: Int(try reader.u32()), efSearch: Int(try reader.u32()),
                                              seed: try reader.u64())
            self.init(dimensions: dimensions, metric: metric, configuration: configuration)
            let count = Int(try reader.u32())
            let entryPoint = try reader.i32(), maxLevel = try reader.i32()
            let vectors = try reader.floats(count * dimensions)
            let m0 = 2 * max(2, configuration.m)
            let links0 = try reader.int32s(count * (m0 + 1))
            let levels = try reader.int32s(count)
            let upperOffsets = try reader.int32s(count)
            let upperLinks = try reader.int32s(Int(try reader.u32()))
            let deleted = try reader.bytes(count)
            let records = try JSONDecoder().decode([VectorRecord?].self, from: try reader.rest())
            guard records.count == count, entryPoint < Int32(count), links0.allSatisfy({ $0 >= 0 && $0 < max(Int32(count), Int32(m0 + 1)) }) else {
                throw reader.corrupt("its parts do not agree")
            }
            state.write { state in
                state.graph.restore(count: count, vectors: vectors, links0: links0, levels: levels, upperOffsets: upperOffsets,
                                    upperLinks: upperLinks, deleted: deleted, entryPoint: entryPoint, maxLevel: maxLevel)
                state.records = records
                for (node, record) in records.enumerated() { if let record { state.nodes[record.id] = Int32(node) } }
            }
        } catch let error as NimbusError {
            throw error
        } catch {
            throw reader.corrupt("\(error)")
        }
    }
}

/// Little-endian binary encoding for index files.
struct BinaryWriter {
    var data = Data()
    mutating func bytes(_ bytes: [UInt8]) { data.append(contentsOf: bytes) }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    mutating func string(_ value: String) { u32(UInt32(value.utf8.count)); data.append(contentsOf: value.utf8) }
    mutating func floats(_ values: UnsafeBufferPointer<Float>) { data.append(UnsafeBufferPointer(start: UnsafeRawPointer(values.baseAddress)?.assumingMemoryBound(to: UInt8.self), count: values.count * 4)) }
    mutating func int32s(_ values: UnsafeBufferPointer<Int32>) { data.append(UnsafeBufferPointer(start: UnsafeRawPointer(values.baseAddress)?.assumingMemoryBound(to: UInt8.self), count: values.count * 4)) }
    mutating func data(_ value: Data) { u64(UInt64(value.count)); data.append(value) }
}

/// Reads what ``BinaryWriter`` wrote, failing with `dataLoss` on a short or inconsistent file.
struct BinaryReader {
    let data: Data
    let path: String
    var offset = 0

    func corrupt(_ reason: String) -> NimbusError {
        NimbusError(.dataLoss, "the HNSW index at \(path) is damaged (\(reason)); rebuild it from its source records")
    }

    mutating func take(_ count: Int) throws -> Data {
        guard count >= 0, offset + count <= data.count else { throw corrupt("it ends early at byte \(data.count)") }
        defer { offset += count }
        return data.subdata(in: (data.startIndex + offset)..<(data.startIndex + offset + count))
    }
    mutating func bytes(_ count: Int) throws -> [UInt8] { Array(try take(count)) }
    mutating func u32() throws -> UInt32 { UInt32(littleEndian: try take(4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }) }
    mutating func i32() throws -> Int32 { Int32(bitPattern: try u32()) }
    mutating func u64() throws -> UInt64 { UInt64(littleEndian: try take(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }) }
    mutating func string() throws -> String { String(decoding: try take(Int(try u32())), as: UTF8.self) }
    mutating func floats(_ count: Int) throws -> [Float] {
        let chunk = try take(count * 4)
        return chunk.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }
    mutating func int32s(_ count: Int) throws -> [Int32] {
        let chunk = try take(count * 4)
        return chunk.withUnsafeBytes { raw in (0..<count).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) } }
    }
    mutating func rest() throws -> Data { try take(Int(try u64())) }
}
