import Foundation
import NimbusCore

/// An embedder that needs no model and no network: feature hashing of word unigrams and bigrams
/// into a fixed number of dimensions, signed, with sublinear term frequency, L2-normalized.
///
/// It is **lexical**: texts that share words (after lowercasing) are close; synonyms and paraphrases
/// are not. It makes retrieval, caching and clustering code run anywhere — tests, `nimbus serve`
/// on embedded defaults — and is a fair keyword-overlap baseline. Use a real model for semantics.
///
/// The hash is FNV-1a 64, so vectors are the same in every process and on every machine.
///
/// ```swift
/// let embedder = Embedder(driver: HashingEmbeddingDriver(dimensions: 384), configuration: .init(defaultModel: HashingEmbeddingDriver.modelName(384)))
/// ```
public struct HashingEmbeddingDriver: EmbeddingDriver {
    /// Vector length.
    public let dimensions: Int
    /// The longest word n-gram hashed (1: words only, 2: words and word pairs).
    public let maxNGram: Int
    public var provider: String { "hashing" }
    public var maxBatchSize: Int { 4096 }

    /// The model name for a dimension count (`nimbus-hashing-384`).
    public static func modelName(_ dimensions: Int) -> String { "nimbus-hashing-\(dimensions)" }

    /// Creates an embedder.
    public init(dimensions: Int = 384, maxNGram: Int = 2) {
        self.dimensions = max(8, dimensions)
        self.maxNGram = max(1, min(3, maxNGram))
    }

    public func embed(_ texts: [String], model: String, dimensions requested: Int?) async throws -> EmbeddingBatch {
        // Feature hashing works for any width: a request for other dimensions hashes into that many buckets.
        let width = requested ?? dimensions
        guard (8...8192).contains(width) else {
            throw NimbusError(.invalidArgument, "the hashing embedder makes 8 to 8192 dimensions, not \(width)")
        }
        var tokens = 0
        let vectors = texts.map { text -> [Float] in
            let words = Self.words(text)
            tokens += words.count
            return vector(words, width: width)
        }
        return EmbeddingBatch(vectors: vectors, inputTokens: tokens)
    }

    /// The vector of one text.
    public func vector(_ text: String) -> [Float] { vector(Self.words(text)) }

    func vector(_ words: [String], width: Int? = nil) -> [Float] {
        let dimensions = width ?? self.dimensions
        var counts: [UInt64: Float] = [:]
        for n in 1...maxNGram where words.count >= n {
            for start in 0...(words.count - n) {
                let gram = words[start..<(start + n)].joined(separator: " ")
                counts[Self.fnv1a(gram) &+ UInt64(n), default: 0] += 1
            }
        }
        var vector = [Float](repeating: 0, count: dimensions)
        for (hash, count) in counts {
            let index = Int(hash % UInt64(dimensions))
            let sign: Float = (hash >> 63) == 0 ? 1 : -1
            vector[index] += sign * (1 + Float(log(Double(count))))
        }
        return Embedder.normalized(vector)
    }

    /// Lowercased runs of letters and digits.
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        for scalar in text.lowercased().unicodeScalars {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                current.unicodeScalars.append(scalar)
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// FNV-1a, 64 bits.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
