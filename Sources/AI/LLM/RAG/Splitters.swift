import Foundation
import NimbusCore
import NimbusLLM

/// Cuts documents into chunks.
public protocol TextSplitter: Sendable {
    /// The chunks of a document, in order, each with its exact span.
    func split(_ document: Document) -> [Chunk]
}

/// LangChain's recursive character splitter, keeping exact spans: split at the first separator that
/// occurs (paragraphs, then lines, then sentences, then words, then characters), merge the pieces
/// back up to `chunkSize`, and start each chunk with up to `overlap` of the previous one. The size
/// is measured in characters, or in tokens with ``TokenSplitter``.
///
/// ```swift
/// let chunks = RecursiveSplitter(chunkSize: 1000, overlap: 150).split(document)
/// ```
public struct RecursiveSplitter: TextSplitter {
    /// The largest chunk, in the splitter's measure.
    public var chunkSize: Int
    /// How much of the previous chunk each chunk repeats.
    public var overlap: Int
    /// Tried in order; "" splits between characters.
    public var separators: [String]
    /// The measure of a piece of text (characters by default).
    public var length: @Sendable (Substring) -> Int

    /// The default separators: paragraphs, lines, sentence ends, clause ends, words, characters.
    public static let defaultSeparators = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]

    /// Creates a splitter measuring characters.
    public init(chunkSize: Int = 1000, overlap: Int = 150, separators: [String] = RecursiveSplitter.defaultSeparators,
                length: @escaping @Sendable (Substring) -> Int = { $0.count }) {
        self.chunkSize = max(1, chunkSize)
        self.overlap = min(max(0, overlap), max(0, chunkSize - 1))
        self.separators = separators
        self.length = length
    }

    public func split(_ document: Document) -> [Chunk] {
        split(document, range: document.text.startIndex..<document.text.endIndex, metadata: [:], firstIndex: 0)
    }

    /// Splits one region of the document; chunk numbers start at `firstIndex`.
    func split(_ document: Document, range: Range<String.Index>, metadata: [String: JSONValue], firstIndex: Int) -> [Chunk] {
        let text = document.text
        let pieces = atoms(text, range, separators[...])
        var chunks: [Chunk] = []
        var current: [Range<String.Index>] = []
        var currentLength = 0

        func emit() {
            guard let first = current.first, let last = current.last,
                  let trimmed = Self.trimmed(text, first.lowerBound..<last.upperBound) else { return }
            let start = text.utf8.distance(from: text.startIndex, to: trimmed.lowerBound)
            let end = start + text.utf8.distance(from: trimmed.lowerBound, to: trimmed.upperBound)
            var fields = document.metadata.merging(metadata) { _, new in new }
            fields["document"] = .string(document.id)
            chunks.append(Chunk(id: "\(document.id)#\(firstIndex + chunks.count)", documentID: document.id, text: String(text[trimmed]),
                                span: start..<end, metadata: fields))
        }

        for piece in pieces {
            let pieceLength = length(text[piece])
            if currentLength + pieceLength > chunkSize, !current.isEmpty {
                emit()
                // Keep a tail of the chunk just emitted as the overlap, as long as the new piece still fits.
                var kept: [Range<String.Index>] = []
                var keptLength = 0
                for previous in current.reversed() {
                    let previousLength = length(text[previous])
                    guard keptLength + previousLength <= overlap, keptLength + previousLength + pieceLength <= chunkSize else { break }
                    kept.insert(previous, at: 0)
                    keptLength += previousLength
                }
                current = kept
                currentLength = keptLength
            }
            current.append(piece)
            currentLength += pieceLength
        }
        emit()
        return chunks
    }

    /// Pieces no larger than `chunkSize`, covering the range in order; separators stay at the end of
    /// the piece they close, so the pieces put together give back the text.
    private func atoms(_ text: String, _ range: Range<String.Index>, _ separators: ArraySlice<String>) -> [Range<String.Index>] {
        if length(text[range]) <= chunkSize { return [range] }
        guard let separator = separators.first(where: { $0.isEmpty || text[range].contains($0) }) else { return [range] }
        let rest = separators.drop { $0 != separator }.dropFirst()
        var pieces: [Range<String.Index>] = []
        if separator.isEmpty {
            var index = range.lowerBound
            while index < range.upperBound {
                let next = text.index(after: index)
                pieces.append(index..<next)
                index = next
            }
            return pieces
        }
        var start = range.lowerBound
        while start < range.upperBound, let found = text.range(of: separator, range: start..<range.upperBound) {
            pieces.append(start..<found.upperBound)
            start = found.upperBound
        }
        if start < range.upperBound { pieces.append(start..<range.upperBound) }
        return pieces.flatMap { piece in length(text[piece]) <= chunkSize ? [piece] : atoms(text, piece, rest.isEmpty ? [""] : rest) }
    }

    /// The range without leading and trailing whitespace (`nil` if nothing is left).
    static func trimmed(_ text: String, _ range: Range<String.Index>) -> Range<String.Index>? {
        var lower = range.lowerBound, upper = range.upperBound
        while lower < upper, text[lower].isWhitespace { lower = text.index(after: lower) }
        while upper > lower, text[text.index(before: upper)].isWhitespace { upper = text.index(before: upper) }
        return lower < upper ? lower..<upper : nil
    }
}

/// The recursive splitter measuring tokens with a model-aware estimate, so chunks fit an embedding
/// model's input limit.
public struct TokenSplitter: TextSplitter {
    private let splitter: RecursiveSplitter

    /// Creates a splitter for chunks of at most `tokens` tokens, `overlap` of them shared.
    public init(tokens: Int = 400, overlap: Int = 60, estimator: TokenEstimator = TokenEstimator()) {
        splitter = RecursiveSplitter(chunkSize: tokens, overlap: overlap) { estimator.count(String($0)) }
    }

    public func split(_ document: Document) -> [Chunk] { splitter.split(document) }
}

/// Splits Markdown at its headings first — each section is split on its own by `inner` — and
/// records the heading path on every chunk (`h1`, `h2`..., and `headings`: "Guide > Install").
/// Headings inside code fences are ignored.
public struct MarkdownHeaderSplitter: TextSplitter {
    /// Splits each section.
    public var inner: RecursiveSplitter
    /// The deepest heading level that starts a section.
    public var maxLevel: Int

    /// Creates a splitter.
    public init(inner: RecursiveSplitter = RecursiveSplitter(), maxLevel: Int = 3) {
        self.inner = inner
        self.maxLevel = min(6, max(1, maxLevel))
    }

    public func split(_ document: Document) -> [Chunk] {
        let text = document.text
        var sections: [(start: String.Index, path: [(Int, String)])] = [(text.startIndex, [])]
        var path: [(Int, String)] = []
        var fenced = false
        var lineStart = text.startIndex
        while lineStart < text.endIndex {
            let lineEnd = text[lineStart...].firstIndex(of: "\n") ?? text.endIndex
            let line = String(text[lineStart..<lineEnd])
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") || trimmed.hasPrefix("~~~") {
                fenced.toggle()
            } else if !fenced, let heading = MarkdownText.heading(line), heading.level <= maxLevel {
                path.removeAll { $0.0 >= heading.level }
                path.append((heading.level, heading.text))
                sections.append((lineStart, path))
            }
            lineStart = lineEnd < text.endIndex ? text.index(after: lineEnd) : text.endIndex
        }
        var chunks: [Chunk] = []
        for (index, section) in sections.enumerated() {
            let end = index + 1 < sections.count ? sections[index + 1].start : text.endIndex
            guard section.start < end else { continue }
            var metadata: [String: JSONValue] = [:]
            for (level, title) in section.path { metadata["h\(level)"] = .string(title) }
            if !section.path.isEmpty { metadata["headings"] = .string(section.path.map(\.1).joined(separator: " > ")) }
            chunks += inner.split(document, range: section.start..<end, metadata: metadata, firstIndex: chunks.count)
        }
        return chunks
    }
}
