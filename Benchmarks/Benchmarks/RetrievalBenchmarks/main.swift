// The Nimbus side of Benchmarks/vector-vs-hnswlib (see its `run`):
//
//   RetrievalBenchmarks text DIR             embed a real text set (Debian's license and copyright texts) with the
//                                            offline hashing embedder: DIR/text.base, DIR/text.query, DIR/text.corpus
//   RetrievalBenchmarks hnsw DIR NAME EFS    build HNSWIndex (M 16, efConstruction 200) over NAME.base, then recall@10
//                                            and queries/s per ef against NAME.truth, one query at a time, one thread
//   RetrievalBenchmarks bm25 DIR             BM25Index vs SQLite FTS5 (bm25 ranking) on the same text chunks and queries
import Foundation
import GRDB
import NimbusCore
import NimbusEmbeddings
import NimbusLLMRAG
import NimbusVector

func write(_ path: String, _ rows: [[Float]]) throws {
    var data = Data()
    withUnsafeBytes(of: Int32(rows.count).littleEndian) { data.append(contentsOf: $0) }
    withUnsafeBytes(of: Int32(rows.first?.count ?? 0).littleEndian) { data.append(contentsOf: $0) }
    for row in rows { row.withUnsafeBufferPointer { data.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: $0.count * 4)) } }
    try data.write(to: URL(fileURLWithPath: path))
}

func read<T>(_ path: String, as: T.Type) throws -> [[T]] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return data.withUnsafeBytes { raw in
        let count = Int(raw.loadUnaligned(fromByteOffset: 0, as: Int32.self)), dims = Int(raw.loadUnaligned(fromByteOffset: 4, as: Int32.self))
        return (0..<count).map { row in (0..<dims).map { raw.loadUnaligned(fromByteOffset: 8 + (row * dims + $0) * 4, as: T.self) } }
    }
}

/// Paragraphs of the license and copyright texts every Debian system carries.
func textCorpus() -> [String] {
    var files = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/share/common-licenses"))?.map { "/usr/share/common-licenses/\($0)" } ?? []
    for package in (try? FileManager.default.contentsOfDirectory(atPath: "/usr/share/doc")) ?? [] {
        files.append("/usr/share/doc/\(package)/copyright")
    }
    var seen: Set<String> = []
    var paragraphs: [String] = []
    for file in files.sorted() {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
        for paragraph in text.components(separatedBy: "\n\n") {
            let cleaned = paragraph.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            if cleaned.count >= 80, seen.insert(cleaned).inserted { paragraphs.append(String(cleaned.prefix(1500))) }
        }
    }
    return paragraphs
}

let arguments = CommandLine.arguments
let directory = arguments.count > 2 ? arguments[2] : "."
switch arguments.count > 1 ? arguments[1] : "" {
case "text":
    var paragraphs = textCorpus()
    var generator = SystemRandomNumberGenerator()
    _ = generator
    // A fixed shuffle (LCG) so the held-out queries are the same on every run.
    var state: UInt64 = 20_261_125
    for index in stride(from: paragraphs.count - 1, to: 0, by: -1) {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        paragraphs.swapAt(index, Int(state >> 33) % (index + 1))
    }
    let queries = Array(paragraphs.prefix(1000)), base = Array(paragraphs.dropFirst(1000))
    let embedder = HashingEmbeddingDriver(dimensions: 384)
    try write("\(directory)/text.base", base.map(embedder.vector))
    try write("\(directory)/text.query", queries.map(embedder.vector))
    // Keyword queries: four words from the start of each held-out paragraph.
    let keywordQueries = queries.map { $0.split(separator: " ").prefix(4).joined(separator: " ") }
    try JSONEncoder().encode(["chunks": base, "queries": keywordQueries]).write(to: URL(fileURLWithPath: "\(directory)/text.corpus"))
    print("RESULT text base=\(base.count) queries=\(queries.count) dimensions=384")

case "hnsw":
    let name = arguments[3]
    let efs = arguments[4].split(separator: ",").compactMap { Int($0) }
    let base = try read("\(directory)/\(name).base", as: Float.self)
    let queries = try read("\(directory)/\(name).query", as: Float.self)
    let truth = try read("\(directory)/\(name).truth", as: Int32.self)
    let index = HNSWIndex(dimensions: base[0].count, metric: .euclidean, configuration: .init(m: 16, efConstruction: 200))
    let records = base.enumerated().map { VectorRecord(id: String($0.offset), vector: $0.element) }
    let clock = ContinuousClock()
    let built = try clock.measure { try index.upsertNow(records) }
    print("RESULT nimbus \(name) build_seconds=\(String(format: "%.2f", Double(built.components.seconds) + Double(built.components.attoseconds) / 1e18))")
    for ef in efs {
        index.efSearch = ef
        var hits = 0
        let elapsed = try clock.measure {
            for (row, query) in queries.enumerated() {
                let found = try index.searchNow(query, k: 10)
                let expected = Set(truth[row].map { String($0) })
                hits += found.filter { expected.contains($0.record.id) }.count
            }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("RESULT nimbus \(name) ef=\(ef) recall=\(String(format: "%.4f", Double(hits) / Double(queries.count * 10))) qps=\(Int(Double(queries.count) / seconds))")
    }

case "bm25":
    let corpus = try JSONDecoder().decode([String: [String]].self, from: Data(contentsOf: URL(fileURLWithPath: "\(directory)/text.corpus")))
    let texts = corpus["chunks"] ?? [], queries = corpus["queries"] ?? []
    let chunks = texts.enumerated().map { Chunk(id: String($0.offset), documentID: String($0.offset), text: $0.element, span: 0..<$0.element.utf8.count) }
    let clock = ContinuousClock()
    var index = BM25Index()
    let indexing = clock.measure { index.add(chunks) }
    let rounds = 5
    var found = 0
    let searching = clock.measure {
        for _ in 0..<rounds { for query in queries { found += index.search(query, k: 10).count } }
    }
    func seconds(_ duration: Duration) -> Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }
    print("RESULT bm25 nimbus chunks=\(chunks.count) index_seconds=\(String(format: "%.2f", seconds(indexing))) qps=\(Int(Double(queries.count * rounds) / seconds(searching))) hits=\(found / rounds)")

    let path = "\(directory)/fts5.sqlite"
    try? FileManager.default.removeItem(atPath: path)
    let queue = try DatabaseQueue(path: path)
    let ftsIndexing = try clock.measure {
        try queue.write { db in
            try db.execute(sql: "CREATE VIRTUAL TABLE chunks USING fts5(text, tokenize = 'unicode61')")
            for text in texts { try db.execute(sql: "INSERT INTO chunks (text) VALUES (?)", arguments: [text]) }
        }
    }
    // The same terms as BM25 sees them, OR-ed (BM25 scores any match), each quoted as an FTS5 string.
    let tokenizer = KeywordTokenizer()
    let ftsQueries = queries.map { tokenizer.tokens($0).map { "\"\($0)\"" }.joined(separator: " OR ") }.filter { !$0.isEmpty }
    var ftsFound = 0
    let ftsSearching = try clock.measure {
        try queue.read { db in
            let statement = try db.makeStatement(sql: "SELECT rowid FROM chunks WHERE chunks MATCH ? ORDER BY rank LIMIT 10")
            for _ in 0..<rounds {
                for query in ftsQueries { ftsFound += try Int.fetchAll(statement, arguments: [query]).count }
            }
        }
    }
    print("RESULT bm25 fts5 chunks=\(texts.count) index_seconds=\(String(format: "%.2f", seconds(ftsIndexing))) qps=\(Int(Double(ftsQueries.count * rounds) / seconds(ftsSearching))) hits=\(ftsFound / rounds)")

default:
    FileHandle.standardError.write(Data("usage: RetrievalBenchmarks text|hnsw|bm25 DIR [NAME EFS]\n".utf8))
    exit(2)
}
