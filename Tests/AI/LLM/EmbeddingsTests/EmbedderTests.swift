import Foundation
import NimbusCache
import NimbusCacheMemory
import NimbusCore
import NimbusEmbeddings
import Synchronization
import Testing

/// A driver that records its batches and answers with vectors derived from the text.
final class RecordingDriver: EmbeddingDriver {
    let provider = "recording"
    let maxBatchSize: Int
    let dimensions: Int
    let batches = Mutex<[[String]]>([])
    let inFlight = Mutex<(now: Int, peak: Int)>((0, 0))
    let dropOne: Bool

    init(maxBatchSize: Int, dimensions: Int = 3, dropOne: Bool = false) {
        self.maxBatchSize = maxBatchSize
        self.dimensions = dimensions
        self.dropOne = dropOne
    }

    func embed(_ texts: [String], model: String, dimensions: Int?) async throws -> EmbeddingBatch {
        batches.withLock { $0.append(texts) }
        inFlight.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
        try await Task.sleep(for: .milliseconds(5))
        inFlight.withLock { $0.now -= 1 }
        var vectors = texts.map { text in (0..<self.dimensions).map { Float(text.count + $0) } }
        if dropOne { vectors.removeLast() }
        return EmbeddingBatch(vectors: vectors, inputTokens: texts.count * 2)
    }
}

@Suite struct EmbedderTests {
    @Test func batchesWithinTheProviderLimitWithBoundedConcurrencyAndKeepsOrder() async throws {
        let driver = RecordingDriver(maxBatchSize: 3)
        let embedder = Embedder(driver: driver, configuration: .init(defaultModel: "m", normalize: false, maxConcurrency: 2))
        let texts = (1...10).map { String(repeating: "a", count: $0) }
        let result = try await embedder.embedWithUsage(texts)
        #expect(result.vectors.map { $0[0] } == (1...10).map(Float.init))
        #expect(result.inputTokens == 20)
        #expect(driver.batches.withLock { $0.map(\.count) }.sorted() == [1, 3, 3, 3])
        #expect(driver.inFlight.withLock { $0.peak } <= 2)
    }

    @Test func cachedAndRepeatedTextsAreEmbeddedOnce() async throws {
        let driver = RecordingDriver(maxBatchSize: 100)
        let cache = MemoryEmbeddingCache()
        let embedder = Embedder(driver: driver, configuration: .init(defaultModel: "m", cache: cache))
        _ = try await embedder.embed(["one", "two", "one"])
        #expect(driver.batches.withLock { $0 } == [["one", "two"]])
        let again = try await embedder.embed(["two", "three"])
        #expect(driver.batches.withLock { $0 }.last == ["three"])
        #expect(abs(again[0].reduce(0) { $0 + $1 * $1 } - 1) < 1e-5, "vectors are normalized")
        #expect(await cache.count == 3)
    }

    @Test func aNimbusCacheKeepsVectorsAsFloatBytes() async throws {
        let cache = Cache(driver: MemoryCacheDriver())
        let driver = RecordingDriver(maxBatchSize: 10, dimensions: 5)
        let embedder = Embedder(driver: driver, configuration: .init(defaultModel: "m", normalize: false, cache: CachedEmbeddings(cache: cache)))
        let first = try await embedder.embed("hello")
        let second = try await Embedder(driver: RecordingDriver(maxBatchSize: 1, dimensions: 5), configuration: .init(defaultModel: "m", normalize: false, cache: CachedEmbeddings(cache: cache))).embed("hello")
        #expect(first == second)
        #expect(first == [5, 6, 7, 8, 9])
    }

    @Test func wrongCountsDimensionsAndEmptyInputsAreClearErrors() async throws {
        let short = Embedder(driver: RecordingDriver(maxBatchSize: 10, dropOne: true), configuration: .init(defaultModel: "m"))
        await #expect(throws: NimbusError.self) { try await short.embed(["a", "b"]) }
        let wrongDimensions = Embedder(driver: RecordingDriver(maxBatchSize: 10), configuration: .init(defaultModel: "m", dimensions: 8))
        do { _ = try await wrongDimensions.embed(["a"]); Issue.record("expected dataLoss") } catch let error as NimbusError { #expect(error.code == .dataLoss) }
        do { _ = try await short.embed(["a", ""]); Issue.record("expected invalidArgument") } catch let error as NimbusError { #expect(error.code == .invalidArgument) }
        #expect(try await short.embed([]).isEmpty)
    }

    @Test func theHashingEmbedderIsDeterministicAndLexical() async throws {
        let embedder = Embedder(driver: HashingEmbeddingDriver(dimensions: 256), configuration: .init(defaultModel: HashingEmbeddingDriver.modelName(256)))
        let vectors = try await embedder.embed(["The cat sat on the mat", "the CAT sat on a mat!", "Quarterly revenue grew by 12 percent"])
        #expect(vectors.allSatisfy { $0.count == 256 })
        let close = Embedder.cosineSimilarity(vectors[0], vectors[1])
        let far = Embedder.cosineSimilarity(vectors[0], vectors[2])
        #expect(close > 0.6)
        #expect(far < 0.2)
        // The same numbers in every process: FNV-1a, not Swift's seeded Hasher.
        #expect(HashingEmbeddingDriver(dimensions: 16).vector("hello world").map { ($0 * 1000).rounded() } == HashingEmbeddingDriver(dimensions: 16).vector("Hello, world").map { ($0 * 1000).rounded() })
        // Other dimensions are honoured (issue 15 §5): the same words hash into that many buckets.
        #expect(try await HashingEmbeddingDriver(dimensions: 16).embed(["x"], model: "m", dimensions: 32).vectors.first?.count == 32)
        for width in [4, 9000] {
            await #expect(throws: NimbusError.self) { try await HashingEmbeddingDriver(dimensions: 16).embed(["x"], model: "m", dimensions: width) }
        }
    }
}
