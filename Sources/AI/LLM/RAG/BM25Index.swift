import Foundation
import NimbusCore
import NimbusVector

/// Lower-cased words and numbers, split at anything that is not a letter or digit (any script);
/// English stop words dropped unless `keepStopWords`.
public struct KeywordTokenizer: Sendable, Hashable {
    /// Keep "the", "of"...
    public var keepStopWords: Bool

    /// Creates a tokenizer.
    public init(keepStopWords: Bool = false) { self.keepStopWords = keepStopWords }

    static let stopWords: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of", "on", "or",
        "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with", "what", "which", "who",
        "how", "do", "does", "i", "you", "we", "can",
    ]

    /// The tokens of `text`.
    public func tokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        for scalar in text.lowercased().unicodeScalars {
            if CharacterSet.alphanumerics.contains(scalar) {
                current.unicodeScalars.append(scalar)
            } else if !current.isEmpty {
                if keepStopWords || !Self.stopWords.contains(current) { tokens.append(current) }
                current = ""
            }
        }
        if !current.isEmpty, keepStopWords || !Self.stopWords.contains(current) { tokens.append(current) }
        return tokens
    }
}

/// Okapi BM25 keyword search over chunks (Lucene's idf, `ln(1 + (N − n + ½)/(n + ½))`, always
/// positive), with incremental adds and removes, metadata filters and a JSON file format.
///
/// ```swift
/// var index = BM25Index()
/// index.add(chunks)
/// let hits = index.search("reset a password", k: 10)
/// ```
public struct BM25Index: Sendable {
    /// Term-frequency saturation.
    public var k1: Double
    /// Length normalization (0: none, 1: full).
    public var b: Double
    /// How text becomes terms.
    public let tokenizer: KeywordTokenizer

    struct Entry: Codable, Sendable {
        var terms: [String: Int]
        var length: Int
        var metadata: [String: JSONValue]
    }

    private var entries: [String: Entry] = [:]
    private var postings: [String: [String: Int]] = [:]     // term → chunk id → frequency
    private var totalLength = 0

    /// Creates an empty index.
    public init(k1: Double = 1.2, b: Double = 0.75, tokenizer: KeywordTokenizer = KeywordTokenizer()) {
        self.k1 = k1
        self.b = b
        self.tokenizer = tokenizer
    }

    /// The number of chunks indexed.
    public var count: Int { entries.count }

    /// Adds (or replaces) chunks.
    public mutating func add(_ chunks: [Chunk]) {
        for chunk in chunks {
            remove([chunk.id])
            var terms: [String: Int] = [:]
            let tokens = tokenizer.tokens(chunk.text)
            for token in tokens { terms[token, default: 0] += 1 }
            entries[chunk.id] = Entry(terms: terms, length: tokens.count, metadata: chunk.metadata)
            totalLength += tokens.count
            for (term, frequency) in terms { postings[term, default: [:]][chunk.id] = frequency }
        }
    }

    /// Removes chunks by id.
    public mutating func remove(_ ids: [String]) {
        for id in ids {
            guard let entry = entries.removeValue(forKey: id) else { continue }
            totalLength -= entry.length
            for term in entry.terms.keys {
                postings[term]?[id] = nil
                if postings[term]?.isEmpty == true { postings[term] = nil }
            }
        }
    }

    /// The inverse document frequency of a term.
    public func idf(_ term: String) -> Double {
        let n = Double(postings[term]?.count ?? 0), total = Double(entries.count)
        return log(1 + (total - n + 0.5) / (n + 0.5))
    }

    /// The `k` best chunk ids for `query`, best first, with their scores (ties broken by id).
    public func search(_ query: String, k: Int, filter: MetadataFilter? = nil) -> [(id: String, score: Double)] {
        guard k > 0, !entries.isEmpty else { return [] }
        let average = Double(totalLength) / Double(entries.count)
        var scores: [String: Double] = [:]
        for term in Set(tokenizer.tokens(query)) {
            guard let list = postings[term] else { continue }
            let weight = idf(term)
            for (id, frequency) in list {
                guard let entry = entries[id] else { continue }
                if let filter, !filter.matches(entry.metadata) { continue }
                let tf = Double(frequency)
                scores[id, default: 0] += weight * tf * (k1 + 1) / (tf + k1 * (1 - b + b * Double(entry.length) / max(average, 1e-9)))
            }
        }
        return scores.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(k).map { ($0.key, $0.value) }
    }

    // MARK: Persistence

    private struct Stored: Codable {
        var k1: Double
        var b: Double
        var keepStopWords: Bool
        var entries: [String: Entry]
    }

    /// Writes the index as JSON (atomically).
    public func save(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        do {
            let data = try encoder.encode(Stored(k1: k1, b: b, keepStopWords: tokenizer.keepStopWords, entries: entries))
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw NimbusError(.unavailable, "cannot write the keyword index to \(path): \(error)", underlying: error)
        }
    }

    /// Reads an index written by ``save(to:)``.
    /// - Throws: `notFound` for a missing file, `dataLoss` for one that does not decode.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw NimbusError(.notFound, "no keyword index at \(path)") }
        let stored: Stored
        do { stored = try JSONDecoder().decode(Stored.self, from: data) } catch {
            throw NimbusError(.dataLoss, "the keyword index at \(path) is damaged (\(error)); rebuild it", underlying: error)
        }
        self.init(k1: stored.k1, b: stored.b, tokenizer: KeywordTokenizer(keepStopWords: stored.keepStopWords))
        entries = stored.entries
        for (id, entry) in entries {
            totalLength += entry.length
            for (term, frequency) in entry.terms { postings[term, default: [:]][id] = frequency }
        }
    }
}
