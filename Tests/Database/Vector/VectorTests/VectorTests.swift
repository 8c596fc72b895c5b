import Foundation
import NimbusCore
import NimbusVector
import Testing

/// Deterministic pseudo-random vectors.
func randomVectors(_ count: Int, dimensions: Int, seed: UInt64) -> [[Float]] {
    var state = seed
    func next() -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int64(bitPattern: state >> 11) % 2_000_001) / 1_000_000 - 1
    }
    return (0..<count).map { _ in (0..<dimensions).map { _ in next() } }
}

func records(_ vectors: [[Float]]) -> [VectorRecord] {
    vectors.enumerated().map { index, vector in
        VectorRecord(id: "v\(index)", vector: vector, metadata: ["parity": index % 2 == 0 ? "even" : "odd", "n": .number(Double(index))])
    }
}

@Suite struct VectorMathTests {
    @Test func simdKernelsMatchTheScalarFormulaAtEveryLength() {
        for count in [1, 3, 15, 16, 17, 31, 32, 33, 100, 384] {
            let a = randomVectors(1, dimensions: count, seed: 1)[0], b = randomVectors(1, dimensions: count, seed: 2)[0]
            let dot = zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            let l2 = zip(a, b).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    #expect(abs(VectorMath.dot(pa.baseAddress!, pb.baseAddress!, count: count) - dot) < 1e-3)
                    #expect(abs(VectorMath.squaredDistance(pa.baseAddress!, pb.baseAddress!, count: count) - l2) < 1e-3)
                }
            }
        }
    }
}

@Suite struct VectorStoreTests {
    @Test(arguments: DistanceMetric.allCases)
    func hnswFindsWhatExactSearchFinds(_ metric: DistanceMetric) async throws {
        let data = randomVectors(1500, dimensions: 24, seed: 7)
        let exact = ExactVectorIndex(dimensions: 24, metric: metric)
        let hnsw = HNSWIndex(dimensions: 24, metric: metric, configuration: .init(m: 12, efConstruction: 100, efSearch: 80))
        try await exact.upsert(records(data))
        try await hnsw.upsert(records(data))
        var hits = 0
        let queries = randomVectors(50, dimensions: 24, seed: 99)
        for query in queries {
            let truth = Set(try await exact.search(query, k: 10).map(\.record.id))
            hits += try await hnsw.search(query, k: 10).filter { truth.contains($0.record.id) }.count
        }
        let recall = Double(hits) / Double(queries.count * 10)
        #expect(recall >= 0.95, "recall@10 \(recall) with \(metric)")
        let top = try await hnsw.search(data[5], k: 1)
        #expect(top.first?.record.id == "v5", "a stored vector finds itself")
        #expect(top.first?.record.metadata["parity"] == "odd")
    }

    @Test func upsertsReplaceAndDeletesDisappearInBothStores() async throws {
        for store in [ExactVectorIndex(dimensions: 8) as any VectorStore, HNSWIndex(dimensions: 8) as any VectorStore] {
            let data = randomVectors(200, dimensions: 8, seed: 3)
            try await store.upsert(records(data))
            #expect(try await store.count() == 200)
            try await store.upsert([VectorRecord(id: "v1", vector: data[2], metadata: ["moved": true])])
            #expect(try await store.count() == 200)
            let found = try await store.search(data[2], k: 2).map(\.record.id)
            #expect(Set(found) == ["v1", "v2"], "the replaced vector is found where it now is")
            #expect(try await store.delete(ids: ["v2", "nope"]) == 1)
            #expect(try await store.search(data[2], k: 1).first?.record.id == "v1")
            #expect(try await store.records(ids: ["v1", "v2"]).map(\.id) == ["v1"])
            #expect(try await store.count() == 199)
        }
    }

    @Test func filtersApplyDuringSearchEvenWhenVerySelective() async throws {
        let data = randomVectors(2000, dimensions: 16, seed: 5)
        let hnsw = HNSWIndex(dimensions: 16)
        let exact = ExactVectorIndex(dimensions: 16)
        try await hnsw.upsert(records(data))
        try await exact.upsert(records(data))
        let query = randomVectors(1, dimensions: 16, seed: 11)[0]
        let odd = try await hnsw.search(query, k: 10, filter: .equals("parity", "odd"))
        #expect(odd.count == 10 && odd.allSatisfy { $0.record.metadata["parity"] == "odd" })
        let rare: MetadataFilter = .and([.range("n", min: 100, max: 104), .not(.equals("n", 102))])    // 4 records
        let few = try await hnsw.search(query, k: 10, filter: rare)
        #expect(Set(few.map(\.record.id)) == ["v100", "v101", "v103", "v104"])
        #expect(few.map(\.record.id) == (try await exact.search(query, k: 10, filter: rare)).map(\.record.id))
        #expect(try await hnsw.search(query, k: 3, filter: .oneOf("parity", ["none"])).isEmpty)
    }

    @Test func theIndexSurvivesSaveAndLoadAndRefusesADamagedFile() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-\(IDGenerator.shared.ulid()).hnsw").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let data = randomVectors(500, dimensions: 12, seed: 8)
        let index = HNSWIndex(dimensions: 12, metric: .euclidean)
        try await index.upsert(records(data).map { var r = $0; r.text = "text of \(r.id)"; return r })
        try await index.delete(ids: ["v3"])
        try index.save(to: path)
        let loaded = try HNSWIndex(contentsOf: path)
        #expect(loaded.metric == .euclidean && loaded.dimensions == 12)
        #expect(try await loaded.count() == 499)
        let query = randomVectors(1, dimensions: 12, seed: 4)[0]
        #expect(try await loaded.search(query, k: 5) == (try await index.search(query, k: 5)))
        #expect(try await loaded.records(ids: ["v7"]).first?.text == "text of v7")
        try await loaded.upsert([VectorRecord(id: "new", vector: query)])
        #expect(try await loaded.search(query, k: 1).first?.record.id == "new", "a loaded index takes inserts")

        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes = bytes.prefix(bytes.count / 2)
        try bytes.write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: NimbusError.self) { try HNSWIndex(contentsOf: path) }
        #expect(error?.code == .dataLoss)
        #expect((#expect(throws: NimbusError.self) { try HNSWIndex(contentsOf: path + ".missing") })?.code == .notFound)
    }

    @Test func badVectorsAreRefusedWithTheirId() async throws {
        let store = HNSWIndex(dimensions: 4)
        let wrong = await #expect(throws: NimbusError.self) { try await store.upsert([VectorRecord(id: "short", vector: [1, 2])]) }
        #expect(wrong?.message.contains("'short'") == true)
        await #expect(throws: NimbusError.self) { try await store.upsert([VectorRecord(id: "nan", vector: [1, .nan, 0, 0])]) }
        await #expect(throws: NimbusError.self) { try await store.search([1, 2, 3], k: 1) }
    }

    @Test func mmrTradesRelevanceForDiversity() async throws {
        let store = ExactVectorIndex(dimensions: 2, metric: .cosine)
        try await store.upsert([
            VectorRecord(id: "a", vector: [1, 0]), VectorRecord(id: "a-copy", vector: [0.999, -0.001]),
            VectorRecord(id: "b", vector: [0.8, 0.6]), VectorRecord(id: "far", vector: [-1, 0]),
        ])
        #expect(try await store.search([1, 0.2], k: 2).map(\.record.id) == ["a", "a-copy"])
        #expect(try await store.searchMMR([1, 0.2], k: 2, fetchK: 4, lambda: 0.5).map(\.record.id) == ["a", "b"])
        #expect(try await store.searchMMR([1, 0.2], k: 2, fetchK: 4, lambda: 1).map(\.record.id) == ["a", "a-copy"])
    }

    @Test func tombstonesAreCompactedAway() async throws {
        let index = HNSWIndex(dimensions: 8)
        let data = randomVectors(1400, dimensions: 8, seed: 12)
        try await index.upsert(records(data))
        try await index.delete(ids: (0..<1200).map { "v\($0)" })        // more dead than alive (and > 1024): rebuilt
        #expect(try await index.count() == 200)
        let hits = try await index.search(data[1300], k: 3)
        #expect(hits.first?.record.id == "v1300")
        #expect(hits.allSatisfy { Int($0.record.id.dropFirst())! >= 1200 })
    }
}

@Suite struct SQLiteVectorStoreTests {
    @Test func recordsPersistAndTheFileRemembersItsShape() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-vectors-\(IDGenerator.shared.ulid()).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let data = randomVectors(300, dimensions: 6, seed: 21)
        do {
            let store = try await SQLiteVectorStore(path: path, dimensions: 6, index: .hnsw(.init(m: 8)))
            try await store.upsert(records(data).map { var r = $0; r.text = "doc \(r.id)"; return r })
            try await store.delete(ids: ["v0"])
        }
        let reopened = try await SQLiteVectorStore(path: path, dimensions: 6)
        #expect(try await reopened.count() == 299)
        let hit = try await reopened.search(data[10], k: 1, filter: .equals("parity", "even")).first
        #expect(hit?.record.id == "v10" && hit?.record.text == "doc v10")
        #expect(try await reopened.records(ids: ["v0"]).isEmpty)
        let mismatch = await #expect(throws: NimbusError.self) { try await SQLiteVectorStore(path: path, dimensions: 7) }
        #expect(mismatch?.code == .failedPrecondition)
    }
}

@Suite struct ConcurrentSearchTests {
    @Test(arguments: [true, false])
    func searchesRunAlongsideEachOtherAndAlongsideInserts(_ hnsw: Bool) async throws {
        let data = randomVectors(800, dimensions: 16, seed: 31)
        let store: any VectorStore = hnsw ? HNSWIndex(dimensions: 16) : ExactVectorIndex(dimensions: 16)
        try await store.upsert(Array(records(data).prefix(400)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for batch in stride(from: 400, to: 800, by: 50) { try await store.upsert(Array(records(data)[batch..<(batch + 50)])) }
            }
            for worker in 0..<8 {
                group.addTask {
                    for index in stride(from: worker, to: 400, by: 8) {
                        let hit = try await store.search(data[index], k: 1).first
                        #expect(hit?.record.id == "v\(index)", "a stored vector finds itself while others are inserted")
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.count() == 800)
    }
}
