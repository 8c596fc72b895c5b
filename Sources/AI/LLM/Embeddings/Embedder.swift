import Crypto
import Foundation
import Logging
import NIOCore
import NimbusCache
import NimbusCore

/// What an embedding adapter implements: one batch, within the provider's limits. Batching,
/// concurrency, caching, normalization and dimension checks live in ``Embedder``.
public protocol EmbeddingDriver: NimbusDriver {
    /// The most inputs one request may carry.
    var maxBatchSize: Int { get }
    /// Embeds `texts` (at most ``maxBatchSize``), returning one vector per text, in order.
    func embed(_ texts: [String], model: String, dimensions: Int?) async throws -> EmbeddingBatch
}

/// The vectors of one batch and the tokens it used.
public struct EmbeddingBatch: Sendable, Hashable {
    /// One vector per input, in order.
    public var vectors: [[Float]]
    /// Input tokens billed (0 when the provider does not say).
    public var inputTokens: Int

    /// Creates a batch.
    public init(vectors: [[Float]], inputTokens: Int = 0) {
        self.vectors = vectors
        self.inputTokens = inputTokens
    }
}

/// Where embeddings are kept between calls, keyed by model, dimensions and the text's SHA-256.
public protocol EmbeddingCache: Sendable {
    /// The cached vectors for `keys` (missing keys are absent).
    func vectors(for keys: [String]) async throws -> [String: [Float]]
    /// Stores vectors.
    func store(_ vectors: [String: [Float]]) async throws
}

/// Embeddings for texts: the portable type services call, over any provider's driver.
///
/// ```swift
/// let embedder = Embedder(driver: HashingEmbeddingDriver(), configuration: .init(defaultModel: "nimbus-hashing-384"))
/// let vectors = try await embedder.embed(["first document", "second document"])
/// let query = try await embedder.embed("what is in the first document?")
/// ```
public final class Embedder: PortableClient {
    /// Settings that apply whatever the provider.
    public struct Configuration: Sendable {
        /// The model used when a call names none.
        public var defaultModel: String
        /// Ask for this many dimensions (providers that can shorten vectors), and check every vector has it.
        public var dimensions: Int?
        /// Scale every vector to unit length (cosine similarity becomes a dot product).
        public var normalize: Bool
        /// Batches in flight at once.
        public var maxConcurrency: Int
        /// A smaller batch than the provider's limit, if wanted.
        public var batchSize: Int?
        /// Where vectors are kept between calls (`nil`: no caching).
        public var cache: (any EmbeddingCache)?
        /// Retries of a batch that failed retryably (429, 5xx, dropped connections): the only
        /// retries on the path, since adapters make one request per batch.
        public var retry: RetryPolicy

        /// Creates settings.
        public init(defaultModel: String, dimensions: Int? = nil, normalize: Bool = true, maxConcurrency: Int = 4, batchSize: Int? = nil,
                    cache: (any EmbeddingCache)? = nil,
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(8))) {
            self.defaultModel = defaultModel
            self.dimensions = dimensions
            self.normalize = normalize
            self.maxConcurrency = max(1, maxConcurrency)
            self.batchSize = batchSize
            self.cache = cache
            self.retry = retry
        }
    }
    private let driver: any EmbeddingDriver
    /// The settings.
    public let configuration: Configuration
    private let logger: Logger

    /// Creates an embedder.
    public init(driver: any EmbeddingDriver, configuration: Configuration, logger: Logger = Logger(label: "nimbus.embeddings")) {
        self.driver = driver
        self.configuration = configuration
        self.logger = logger
    }

    /// The provider's name.
    public var provider: String { driver.provider }

    /// The driver as its concrete type.
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// Releases the driver.
    public func close() async throws { try await driver.close() }

    /// The vector of one text.
    public func embed(_ text: String, model: String? = nil) async throws -> [Float] {
        guard let vector = try await embed([text], model: model).first else {
            throw NimbusError(.dataLoss, "\(provider) returned no vector")
        }
        return vector
    }

    /// The vectors of `texts`, in order: cached ones from the cache, the rest in batches within the
    /// provider's limit, several batches at once.
    /// - Throws: `invalidArgument` for an empty text; `dataLoss` when the provider returns the wrong
    ///   number of vectors or vectors of the wrong or differing dimensions.
    public func embed(_ texts: [String], model: String? = nil) async throws -> [[Float]] {
        try await embedWithUsage(texts, model: model).vectors
    }

    /// Like ``embed(_:model:)-(String...)``, with the input tokens the provider billed for the uncached texts.
    /// `dimensions` overrides the configured dimensions for this call.
    public func embedWithUsage(_ texts: [String], model: String? = nil, dimensions: Int? = nil) async throws -> EmbeddingBatch {
        let model = model ?? configuration.defaultModel
        let dimensions = dimensions ?? configuration.dimensions
        if let index = texts.firstIndex(where: { $0.isEmpty }) {
            throw NimbusError(.invalidArgument, "input \(index) is empty; providers reject empty texts")
        }
        if texts.isEmpty { return EmbeddingBatch(vectors: []) }
        let keys = texts.map { Self.cacheKey(model: model, dimensions: dimensions, text: $0) }
        var found: [String: [Float]] = [:]
        if let cache = configuration.cache {
            do { found = try await cache.vectors(for: Array(Set(keys))) } catch {
                logger.warning("embedding cache read failed; embedding without it", metadata: ["error": "\(error)"])
            }
        }
        // Each distinct uncached text is embedded once.
        var pending: [String] = []
        var pendingKeys: [String] = []
        var seen = Set<String>()
        for (text, key) in zip(texts, keys) where found[key] == nil && seen.insert(key).inserted {
            pending.append(text)
            pendingKeys.append(key)
        }
        var tokens = 0
        if !pending.isEmpty {
            let size = max(1, min(configuration.batchSize ?? driver.maxBatchSize, driver.maxBatchSize))
            let batches = stride(from: 0, to: pending.count, by: size).map { $0..<min($0 + size, pending.count) }
            let results = try await withThrowingTaskGroup(of: (Int, EmbeddingBatch).self) { group in
                var next = 0
                var results: [Int: EmbeddingBatch] = [:]
                func start(_ index: Int) {
                    let range = batches[index]
                    let slice = Array(pending[range])
                    group.addTask { [driver, retry = configuration.retry] in
                        do {
                            return (index, try await retry.run { _ in try await driver.embed(slice, model: model, dimensions: dimensions) })
                        } catch {
                            throw NimbusError.wrap(error, "\(driver.provider) embeddings with \(model)")
                        }
                    }
                }
                while next < min(configuration.maxConcurrency, batches.count) { start(next); next += 1 }
                for try await (index, batch) in group {
                    guard batch.vectors.count == batches[index].count else {
                        throw NimbusError(.dataLoss, "\(provider) returned \(batch.vectors.count) vectors for \(batches[index].count) inputs")
                    }
                    results[index] = batch
                    if next < batches.count { start(next); next += 1 }
                }
                return results
            }
            var fresh: [String: [Float]] = [:]
            for (index, range) in batches.enumerated() {
                guard let batch = results[index] else { continue }
                tokens += batch.inputTokens
                for (offset, vector) in zip(range, batch.vectors) { fresh[pendingKeys[offset]] = configuration.normalize ? Self.normalized(vector) : vector }
            }
            try checkDimensions(Array(fresh.values), model: model, expected: dimensions)
            found.merge(fresh) { _, new in new }
            if let cache = configuration.cache {
                do { try await cache.store(fresh) } catch {
                    logger.warning("embedding cache write failed", metadata: ["error": "\(error)"])
                }
            }
        }
        let vectors = try keys.map { key in
            guard let vector = found[key] else { throw NimbusError(.internal, "no vector for an input after embedding it") }
            return vector
        }
        try checkDimensions(vectors, model: model, expected: dimensions)
        return EmbeddingBatch(vectors: vectors, inputTokens: tokens)
    }

    private func checkDimensions(_ vectors: [[Float]], model: String, expected: Int?) throws {
        guard let first = vectors.first?.count else { return }
        if let expected, first != expected {
            throw NimbusError(.dataLoss, "\(provider) \(model) returned \(first)-dimensional vectors, expected \(expected); check the model and the dimensions setting")
        }
        if let odd = vectors.first(where: { $0.count != first }) {
            throw NimbusError(.dataLoss, "\(provider) \(model) returned vectors of \(first) and \(odd.count) dimensions; a cache may hold vectors of another model version")
        }
        if first == 0 { throw NimbusError(.dataLoss, "\(provider) \(model) returned empty vectors") }
    }

    /// `embedding:<model>:<dimensions>:<sha256 of the text>`.
    public static func cacheKey(model: String, dimensions: Int?, text: String) -> String {
        let digest = SHA256.hash(data: Data(text.utf8)).hexString
        return "embedding:\(model):\(dimensions.map(String.init) ?? "native"):\(digest)"
    }

    /// `vector` scaled to unit length (a zero vector stays zero).
    public static func normalized(_ vector: [Float]) -> [Float] {
        let norm = vector.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0, norm.isFinite else { return vector }
        return vector.map { $0 / norm }
    }

    /// Cosine similarity of two vectors of one length.
    public static func cosineSimilarity(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count, !a.isEmpty else { return 0 }
        var dot: Float = 0, normA: Float = 0, normB: Float = 0
        for index in a.indices {
            dot += a[index] * b[index]
            normA += a[index] * a[index]
            normB += b[index] * b[index]
        }
        let denominator = normA.squareRoot() * normB.squareRoot()
        return denominator > 0 ? dot / denominator : 0
    }
}

/// An in-process embedding cache that keeps at most `capacity` vectors (least recently stored out first).
public actor MemoryEmbeddingCache: EmbeddingCache {
    private var entries: [String: [Float]] = [:]
    private var order: [String] = []
    private let capacity: Int

    /// Creates a cache.
    public init(capacity: Int = 100_000) { self.capacity = max(1, capacity) }

    public func vectors(for keys: [String]) -> [String: [Float]] {
        var result: [String: [Float]] = [:]
        for key in keys { if let vector = entries[key] { result[key] = vector } }
        return result
    }

    public func store(_ vectors: [String: [Float]]) {
        for (key, vector) in vectors {
            if entries.updateValue(vector, forKey: key) == nil { order.append(key) }
        }
        if order.count > capacity {
            let excess = order.count - capacity
            for key in order.prefix(excess) { entries[key] = nil }
            order.removeFirst(excess)
        }
    }

    /// How many vectors are kept.
    public var count: Int { entries.count }
}

/// Keeps embeddings in a NimbusCache (memory or Redis), as little-endian Float32 bytes.
public struct CachedEmbeddings: EmbeddingCache {
    private let cache: Cache
    private let ttl: Duration?

    /// Stores vectors in `cache`, expiring after `ttl` if given.
    public init(cache: Cache, ttl: Duration? = nil) {
        self.cache = cache
        self.ttl = ttl
    }

    public func vectors(for keys: [String]) async throws -> [String: [Float]] {
        let found = try await cache.getMany(keys)
        var result: [String: [Float]] = [:]
        for (key, var buffer) in found where buffer.readableBytes % 4 == 0 {
            var vector: [Float] = []
            vector.reserveCapacity(buffer.readableBytes / 4)
            while let bits = buffer.readInteger(endianness: .little, as: UInt32.self) { vector.append(Float(bitPattern: bits)) }
            result[key] = vector
        }
        return result
    }

    public func store(_ vectors: [String: [Float]]) async throws {
        var values: [String: ByteBuffer] = [:]
        for (key, vector) in vectors {
            var buffer = ByteBuffer()
            buffer.reserveCapacity(vector.count * 4)
            for value in vector { buffer.writeInteger(value.bitPattern, endianness: .little) }
            values[key] = buffer
        }
        try await cache.setMany(values, ttl: ttl)
    }
}
