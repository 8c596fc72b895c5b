import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusLLM
import NimbusLLMScripted
import NimbusLLMRAG
import NimbusVector
import Testing

func fixturePath(_ name: String, _ ext: String) throws -> String {
    try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures")).path
}

/// The labelled set: six chunks, three queries.
struct LabelledSet {
    let chunks: [Chunk]
    let queries: [LabelledQuery]

    static func load() throws -> LabelledSet {
        let json = try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: try fixturePath("labelled", "json"))))
        let chunks = (json["chunks"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { id, text in
            Chunk(id: id, documentID: id, text: text.stringValue ?? "", span: 0..<(text.stringValue ?? "").utf8.count)
        }
        let queries = (json["queries"]?.arrayValue ?? []).map { query in
            LabelledQuery(query: query["query"]?.stringValue ?? "",
                          relevant: (query["relevant"]?.objectValue ?? [:]).mapValues { Int($0.numberValue ?? 0) })
        }
        return LabelledSet(chunks: chunks, queries: queries)
    }

    /// The three retrievers over an exact vector store: 4096 hashing dimensions keep hash collisions out of the hand computation.
    func retrievers() async throws -> (bm25: KeywordRetriever, vector: VectorRetriever, hybrid: HybridRetriever) {
        let embedder = Embedder(driver: HashingEmbeddingDriver(dimensions: 4096), configuration: .init(defaultModel: HashingEmbeddingDriver.modelName(4096)))
        let store = ExactVectorIndex(dimensions: 4096)
        let vectors = try await embedder.embed(chunks.map(\.text))
        try await store.upsert(zip(chunks, vectors).map { ChunkRecords.record($0, vector: $1) })
        var bm25 = BM25Index()
        bm25.add(chunks)
        let keyword = KeywordRetriever(index: bm25, store: store)
        let vector = VectorRetriever(embedder: embedder, store: store)
        return (keyword, vector, HybridRetriever([vector, keyword]))
    }
}

@Suite struct RetrievalQualityTests {
    // Worked out by hand (stop words removed for BM25; the hashing embedder keeps them, with word bigrams):
    // "backups retained thirty days": only d2 has backups/retained/thirty; d1 and d3 share "days"; d5 says "backup" (singular),
    //   so no retriever puts d5 (graded 1) in the top 3: recall@3 = 1/2, reciprocal rank 1 for all three.
    // "restore backup snapshot": only d5 shares any word: recall 1, reciprocal rank 1 for all three.
    // "when does the link expire": BM25 keeps when/link/expire; only d6 has "link": rank 1. The embedder also matches "the":
    //   d5 (the ×2 in 11 words, 1.693/4.676 = 0.362) and d1 (the ×2 in 16 words, 1.693/5.645 = 0.300) beat d6 ("link", 1/4.886 = 0.205):
    //   rank 3, reciprocal rank 1/3. Reciprocal-rank fusion: d6 gets 1/61 + 1/63 = 0.0323 > d5's 1/61: rank 1.
    @Test func bm25VectorsAndHybridScoreWhatWasComputedByHand() async throws {
        let set = try LabelledSet.load()
        let (bm25, vector, hybrid) = try await set.retrievers()
        let byHand: [String: (bm25: Double, vector: Double, hybrid: Double)] = [
            "backups retained thirty days": (1, 1, 1), "restore backup snapshot": (1, 1, 1), "when does the link expire": (1, 1.0 / 3, 1),
        ]
        let reports = (
            bm25: try await RetrievalMetrics.evaluate(set.queries, k: 3) { try await bm25.retrieve($0, k: 3).map(\.chunk.id) },
            vector: try await RetrievalMetrics.evaluate(set.queries, k: 3) { try await vector.retrieve($0, k: 3).map(\.chunk.id) },
            hybrid: try await RetrievalMetrics.evaluate(set.queries, k: 3) { try await hybrid.retrieve($0, k: 3).map(\.chunk.id) }
        )
        for (query, expected) in byHand {
            #expect(abs(reports.bm25.perQuery[query]!.reciprocalRank - expected.bm25) < 1e-9, "BM25 \(query)")
            #expect(abs(reports.vector.perQuery[query]!.reciprocalRank - expected.vector) < 1e-9, "vector \(query)")
            #expect(abs(reports.hybrid.perQuery[query]!.reciprocalRank - expected.hybrid) < 1e-9, "hybrid \(query)")
        }
        let recall = (0.5 + 1 + 1) / 3
        #expect(abs(reports.bm25.recall - recall) < 1e-9 && abs(reports.vector.recall - recall) < 1e-9 && abs(reports.hybrid.recall - recall) < 1e-9)
        #expect(abs(reports.bm25.mrr - 1) < 1e-9)
        #expect(abs(reports.vector.mrr - (1 + 1 + 1.0 / 3) / 3) < 1e-9)
        #expect(abs(reports.hybrid.mrr - 1) < 1e-9, "fusion repairs the dense retriever's stop-word miss")
        // nDCG@3 of the first query: d2 (grade 2) first, d5 (grade 1) missing: 3 / (3 + 1/log2 3).
        #expect(abs(reports.bm25.perQuery["backups retained thirty days"]!.ndcg - 3 / (3 + 1 / log2(3.0))) < 1e-9)
        let vectorOrder = try await vector.retrieve("when does the link expire", k: 3).map(\.chunk.id)
        #expect(vectorOrder == ["d5", "d1", "d6"])
    }

    @Test func bm25ScoresFollowTheFormula() throws {
        let set = try LabelledSet.load()
        var index = BM25Index()
        index.add(set.chunks)
        // Token counts without stop words: d1 13, d2 8, d3 8, d4 7, d5 6, d6 10 → avgdl 52/6. restore, backup and snapshot
        // each occur once, only in d5 (6 tokens): idf = ln(1 + 5.5/1.5) each.
        let idf = log(1 + 5.5 / 1.5)
        let termWeight = 2.2 / (1 + 1.2 * (0.25 + 0.75 * 6 / (52.0 / 6)))
        let hits = index.search("restore backup snapshot", k: 5)
        #expect(hits.map(\.id) == ["d5"])
        #expect(abs(hits[0].score - 3 * idf * termWeight) < 1e-9)
        #expect(abs(index.idf("after") - log(1 + 3.5 / 3.5)) < 1e-12, "'after' is in d1, d3 and d6")
    }

    @Test func metricsOnRankingsWorkedOutByHand() {
        #expect(RetrievalMetrics.recall(at: 2, ranked: ["a", "x", "b"], relevant: ["a", "b"]) == 0.5)
        #expect(RetrievalMetrics.reciprocalRank(ranked: ["x", "y", "a"], relevant: ["a"]) == 1.0 / 3)
        #expect(RetrievalMetrics.reciprocalRank(ranked: ["x"], relevant: ["a"]) == 0)
        // Grades a:3, b:1; ranking [b, a]: DCG = 1/1 + 7/log2 3; ideal = 7/1 + 1/log2 3.
        let ndcg = RetrievalMetrics.ndcg(at: 2, ranked: ["b", "a"], relevance: ["a": 3, "b": 1])
        #expect(abs(ndcg - (1 + 7 / log2(3.0)) / (7 + 1 / log2(3.0))) < 1e-12)
    }

    @Test func fusionByRankAndByWeight() {
        func result(_ id: String, _ score: Double) -> RetrievedChunk { RetrievedChunk(chunk: Chunk(id: id, documentID: id, text: id, span: 0..<1), score: score) }
        let dense = [result("a", 0.9), result("b", 0.8), result("c", 0.1)]
        let sparse = [result("c", 12), result("b", 3)]
        // c: 1/63 + 1/61 = 0.0322660 edges out b: 1/62 + 1/62 = 0.0322581; a: 1/61.
        #expect(Fusion.reciprocalRank().fuse([dense, sparse]).map(\.chunk.id) == ["c", "b", "a"])
        #expect(Fusion.weighted([1, 0]).fuse([dense, sparse]).map(\.chunk.id).first == "a")
    }
}

@Suite struct SplitterTests {
    func document(_ text: String) -> Document { Document(id: "doc", text: text, metadata: ["source": "test"]) }

    /// Every chunk is exactly the document's bytes over its span.
    func expectExactSpans(_ chunks: [Chunk], in text: String) {
        let bytes = Array(text.utf8)
        for chunk in chunks {
            #expect(String(decoding: bytes[chunk.span], as: UTF8.self) == chunk.text, "\(chunk.id) \(chunk.span)")
        }
    }

    @Test func recursiveChunksFitOverlapAndKeepExactSpans() {
        let text = (1...40).map { "Sentence number \($0) talks about ünïcödé 🚀 things." }.joined(separator: " ") + "\n\nA second paragraph."
        let chunks = RecursiveSplitter(chunkSize: 200, overlap: 60).split(document(text))
        #expect(chunks.count > 5)
        #expect(chunks.allSatisfy { $0.text.count <= 200 })
        expectExactSpans(chunks, in: text)
        for (previous, next) in zip(chunks, chunks.dropFirst()) {
            #expect(next.span.lowerBound < previous.span.upperBound, "consecutive chunks overlap")
            #expect(next.span.lowerBound > previous.span.lowerBound)
        }
        #expect(chunks.last?.text.hasSuffix("things.\n\nA second paragraph.") == true, "the last chunk starts with its overlap")
        #expect(chunks.allSatisfy { $0.metadata["source"] == "test" && $0.metadata["document"] == "doc" })
    }

    @Test func aWordLongerThanAChunkIsCutBetweenCharacters() {
        let chunks = RecursiveSplitter(chunkSize: 10, overlap: 0).split(document(String(repeating: "x", count: 35)))
        #expect(chunks.map(\.text.count) == [10, 10, 10, 5])
    }

    @Test func tokenChunksStayUnderTheTokenLimit() {
        let estimator = TokenEstimator()
        let text = (1...200).map { "word\($0)" }.joined(separator: " ")
        let chunks = TokenSplitter(tokens: 50, overlap: 10, estimator: estimator).split(document(text))
        #expect(chunks.count > 3)
        #expect(chunks.allSatisfy { estimator.count($0.text) <= 50 })
        expectExactSpans(chunks, in: text)
    }

    @Test func markdownSectionsCarryTheirHeadingPathAndCodeFencesAreNotHeadings() throws {
        let document = try DocumentLoader().loadFile(try fixturePath("guide", "md"))
        #expect(document.metadata["title"] == "Guide")
        let chunks = MarkdownHeaderSplitter(inner: RecursiveSplitter(chunkSize: 500, overlap: 0)).split(document)
        #expect(chunks.map { $0.metadata["headings"]?.stringValue } == ["Guide", "Guide > Install", "Guide > Install > Linux", "Guide > Configure"])
        #expect(chunks[1].text.contains("# not a heading") && chunks[1].metadata["h2"] == "Install")
        #expect(chunks[3].metadata["h3"] == nil, "leaving a level-3 section for a level-2 one drops the level-3 heading")
        expectExactSpans(chunks, in: document.text)
        #expect(Set(chunks.map(\.id)).count == chunks.count)
    }

    @Test func htmlBecomesTextWithHeadingsKept() {
        let (text, title) = HTMLText.convert("""
            <html><head><title>FAQ &amp; Help</title><style>p{color:red}</style></head><body>
            <h1>Billing</h1><p>Invoices   are issued
            monthly &mdash; paid by card.</p><script>var x = "<p>no</p>";</script>
            <!-- a comment --><ul><li>One</li><li>Two &#x263A;</li></ul><h2>Refunds</h2><p>Five&nbsp;days.</p></body></html>
            """)
        #expect(title == "FAQ & Help")
        #expect(text == "# Billing\n\nInvoices are issued monthly — paid by card.\n\n- One\n- Two ☺\n\n## Refunds\n\nFive days.")
    }

    @Test func loadingRefusesWhatItCannotRead() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-rag-\(IDGenerator.shared.ulid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data([0xFF, 0xFE, 0x00]).write(to: directory.appendingPathComponent("bad.txt"))
        try Data("fine".utf8).write(to: directory.appendingPathComponent("good.md"))
        try Data("ignored".utf8).write(to: directory.appendingPathComponent("image.png"))
        #expect(throws: NimbusError.self) { try DocumentLoader().load(path: directory.path) }
        try FileManager.default.removeItem(at: directory.appendingPathComponent("bad.txt"))
        #expect(try DocumentLoader().load(path: directory.path).map(\.text) == ["fine"])
        #expect((#expect(throws: NimbusError.self) { try DocumentLoader().load(path: directory.path + "/missing") })?.code == .notFound)
    }
}

@Suite struct GenerationTests {
    func chunk(_ id: String, _ text: String) -> RetrievedChunk {
        RetrievedChunk(chunk: Chunk(id: id, documentID: "doc-\(id)", text: text, span: 0..<text.utf8.count), score: 1)
    }

    @Test func contextStaysWithinBudgetAndAnswersKeepTheirCitations() {
        let estimator = TokenEstimator()
        let chunks = [chunk("a", "Alpha fact."), chunk("b", String(repeating: "long ", count: 300)), chunk("c", "Gamma fact."), chunk("a", "Alpha fact.")]
        let context = ContextAssembler(maxTokens: 60, estimator: estimator).assemble(chunks)
        #expect(context.citations.map(\.chunkID) == ["a", "c"], "the long passage does not fit; the duplicate is dropped")
        #expect(context.omitted == 1 && context.tokens <= 60)
        #expect(context.text.hasPrefix("[1] (doc-a)\nAlpha fact.") && context.text.contains("[2] (doc-c)\nGamma fact."))
        let cited = RAGAnswer.citations(in: "Gamma holds [2]. Alpha too [1, 2]. Not [7] or [x].", from: context)
        #expect(cited.map(\.number) == [2, 1])
        #expect(cited.first?.documentID == "doc-c" && cited.first?.span == 0..<11)
    }

    @Test func theLLMRerankerOrdersByGradesAndRefusesAnUnreadableReply() async throws {
        let memory = ScriptedChatModelDriver()
        let model = ChatModel(driver: memory, configuration: .init(defaultModel: "memory"))
        memory.enqueue(.text(#"{"grades":[{"index":2,"score":9},{"index":0,"score":3},{"index":7,"score":10}]}"#))
        let reranked = try await LLMReranker(model: model).rerank("q", [chunk("a", "A"), chunk("b", "B"), chunk("c", "C")], topN: 3)
        #expect(reranked.map(\.chunk.id) == ["c", "a", "b"], "ungraded passages keep their order after graded ones; out-of-range indexes are ignored")
        #expect(memory.requests.last?.responseFormat != nil)
        memory.enqueue(.text("I think c is best"))
        let error = await #expect(throws: NimbusError.self) { try await LLMReranker(model: model).rerank("q", [chunk("a", "A")], topN: 1) }
        #expect(error?.code == .dataLoss)
    }

    @Test func multiQueryRetrievalFusesTheRewrites() async throws {
        let set = try LabelledSet.load()
        let (bm25, _, _) = try await set.retrievers()
        let memory = ScriptedChatModelDriver()
        memory.enqueue(.text(#"{"queries":["restore backup snapshot","RESTORE BACKUP SNAPSHOT","card payment"]}"#))
        let retriever = MultiQueryRetriever(base: bm25, model: ChatModel(driver: memory, configuration: .init(defaultModel: "memory")), variants: 3)
        let found = try await retriever.retrieve("bring data back", k: 3).map(\.chunk.id)
        // The original finds nothing; "restore backup snapshot" finds d5, "card payment" d4 (the duplicate rewrite is dropped):
        // both fuse to 1/61, and ties go by id.
        #expect(found == ["d4", "d5"])
        #expect(memory.requests.count == 1)
    }

    @Test func aPipelineAnswersFromTheIndexWithCitationsAndRefusesAnotherEmbeddingModel() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-rag-\(IDGenerator.shared.ulid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let embedder = Embedder(driver: HashingEmbeddingDriver(dimensions: 256), configuration: .init(defaultModel: HashingEmbeddingDriver.modelName(256)))
        let index = try await RAGIndex.open(directory: directory, embedder: embedder)
        let guide = try DocumentLoader().loadFile(try fixturePath("guide", "md"))
        let first = try await index.ingest([guide], splitter: MarkdownHeaderSplitter())
        #expect(first.chunks == 4)
        #expect(try await index.ingest([guide], splitter: MarkdownHeaderSplitter()).unchanged == 1)
        var edited = guide
        edited.text += "\n\n## Uninstall\n\nRemove the package."
        let second = try await index.ingest([edited], splitter: MarkdownHeaderSplitter())
        #expect(second.removed == 4 && second.chunks == 5)
        #expect(try await index.vectors.count() == 5)

        let memory = ScriptedChatModelDriver()
        memory.enqueue(.text("Use the package manager [1]."))
        let pipeline = RAGPipeline(retriever: index.hybridRetriever(), model: ChatModel(driver: memory, configuration: .init(defaultModel: "memory")), passages: 2)
        let answer = try await pipeline.ask("which package manager on linux")
        #expect(answer.citations.count == 1)
        #expect(answer.citations[0].chunkID.hasSuffix("#2"), "the Linux section is the first source: \(answer.context.text)")
        #expect(memory.requests.last?.messages.last?.text.contains("Use the package manager.") == true)

        let reopened = try await RAGIndex.open(directory: directory, embedder: embedder, create: false)
        #expect(try await reopened.hybridRetriever().retrieve("uninstall remove", k: 1).first?.chunk.metadata["h2"] == "Uninstall")
        let other = Embedder(driver: HashingEmbeddingDriver(dimensions: 128), configuration: .init(defaultModel: HashingEmbeddingDriver.modelName(128)))
        let mismatch = await #expect(throws: NimbusError.self) { try await RAGIndex.open(directory: directory, embedder: other) }
        #expect(mismatch?.code == .failedPrecondition)
    }
}
