import Foundation
import NimbusCore
import NimbusLLM
import NimbusVector

/// Where a statement comes from: the source document and the exact span of the chunk.
public struct Citation: Sendable, Hashable, Codable {
    /// The number the answer cites (`[1]`).
    public var number: Int
    /// The chunk.
    public var chunkID: String
    /// The source document.
    public var documentID: String
    /// UTF-8 byte offsets of the chunk in its document.
    public var span: Range<Int>
}

/// The passages given to the model, numbered, within a token budget.
public struct AssembledContext: Sendable, Hashable {
    /// The context block to put in the prompt.
    public var text: String
    /// One citation per passage, by number.
    public var citations: [Citation]
    /// Tokens the block takes (estimated).
    public var tokens: Int
    /// Retrieved chunks left out because the budget was spent.
    public var omitted: Int
}

/// Builds the context block: passages in rank order, each numbered and labelled with its source,
/// until the token budget is spent (a passage that does not fit is skipped, smaller ones after it
/// may still fit); duplicates of the same chunk are dropped.
public struct ContextAssembler: Sendable {
    /// The budget for the whole block.
    public var maxTokens: Int
    /// How tokens are counted.
    public var estimator: TokenEstimator

    /// Creates an assembler.
    public init(maxTokens: Int = 3000, estimator: TokenEstimator = TokenEstimator()) {
        self.maxTokens = max(1, maxTokens)
        self.estimator = estimator
    }

    /// The context for `chunks` (best first).
    public func assemble(_ chunks: [RetrievedChunk]) -> AssembledContext {
        var parts: [String] = []
        var citations: [Citation] = []
        var used = 0, omitted = 0
        var seen: Set<String> = []
        for retrieved in chunks where seen.insert(retrieved.chunk.id).inserted {
            let chunk = retrieved.chunk
            let number = citations.count + 1
            let title = chunk.metadata["title"]?.stringValue ?? chunk.documentID
            let heading = chunk.metadata["headings"]?.stringValue.map { " — \($0)" } ?? ""
            let part = "[\(number)] (\(title)\(heading))\n\(chunk.text)"
            let cost = estimator.count(part) + 2
            guard used + cost <= maxTokens else { omitted += 1; continue }
            parts.append(part)
            citations.append(Citation(number: number, chunkID: chunk.id, documentID: chunk.documentID, span: chunk.span))
            used += cost
        }
        return AssembledContext(text: parts.joined(separator: "\n\n"), citations: citations, tokens: used, omitted: omitted)
    }
}

/// An answer and the sources it cites.
public struct RAGAnswer: Sendable, Hashable {
    /// The model's text, with its `[n]` markers.
    public var text: String
    /// The citations the text uses, in order of first use.
    public var citations: [Citation]
    /// Every passage the model was given.
    public var context: AssembledContext
    /// The model's usage.
    public var usage: Usage

    /// Keeps the citations the text refers to (`[2]`, `[1, 3]`, `[1][2]`); numbers with no passage are ignored.
    public static func citations(in text: String, from context: AssembledContext) -> [Citation] {
        var found: [Citation] = []
        var seen: Set<Int> = []
        let byNumber = Dictionary(uniqueKeysWithValues: context.citations.map { ($0.number, $0) })
        var rest = text[...]
        while let open = rest.firstIndex(of: "[") {
            guard let close = rest[open...].firstIndex(of: "]") else { break }
            let inside = rest[rest.index(after: open)..<close]
            for piece in inside.split(separator: ",") {
                if let number = Int(piece.trimmingCharacters(in: .whitespaces)), let citation = byNumber[number], seen.insert(number).inserted {
                    found.append(citation)
                }
            }
            rest = rest[rest.index(after: close)...]
        }
        return found
    }
}

/// Retrieve, (rerank), assemble, answer with citations.
///
/// ```swift
/// let rag = RAGPipeline(retriever: HybridRetriever([dense, keyword]), model: model)
/// let answer = try await rag.ask("How do I rotate the API key?")
/// print(answer.text); for c in answer.citations { print(c.number, c.documentID, c.span) }
/// ```
public struct RAGPipeline: Sendable {
    /// Finds candidates.
    public var retriever: any Retriever
    /// Reorders them (optional).
    public var reranker: (any Reranker)?
    /// Writes the answer.
    public var model: ChatModel
    /// Builds the context.
    public var assembler: ContextAssembler
    /// Candidates retrieved (reranked down to `passages`).
    public var candidates: Int
    /// Passages offered to the assembler.
    public var passages: Int
    /// The system prompt.
    public var instructions: String

    /// The default instructions: answer from the sources only, cite them.
    public static let defaultInstructions = """
        Answer the question using only the numbered sources. Cite every statement with the number of its source in \
        brackets, like [1] or [2, 3]. If the sources do not contain the answer, say that you do not know.
        """

    /// Creates a pipeline.
    public init(retriever: any Retriever, reranker: (any Reranker)? = nil, model: ChatModel, assembler: ContextAssembler = ContextAssembler(),
                candidates: Int = 20, passages: Int = 8, instructions: String = RAGPipeline.defaultInstructions) {
        self.retriever = retriever
        self.reranker = reranker
        self.model = model
        self.assembler = assembler
        self.candidates = max(1, candidates)
        self.passages = max(1, passages)
        self.instructions = instructions
    }

    /// The passages the question would get.
    public func context(for question: String, filter: MetadataFilter? = nil) async throws -> AssembledContext {
        var found = try await retriever.retrieve(question, k: reranker == nil ? passages : candidates, filter: filter)
        if let reranker { found = try await reranker.rerank(question, found, topN: passages) }
        return assembler.assemble(Array(found.prefix(passages)))
    }

    /// Answers a question.
    public func ask(_ question: String, filter: MetadataFilter? = nil) async throws -> RAGAnswer {
        let context = try await context(for: question, filter: filter)
        let reply = try await model.chat(ChatRequest(messages: [
            .system(instructions),
            .user("Sources:\n\n\(context.text.isEmpty ? "(none found)" : context.text)\n\nQuestion: \(question)"),
        ]))
        let text = reply.message.text
        return RAGAnswer(text: text, citations: RAGAnswer.citations(in: text, from: context), context: context, usage: reply.usage)
    }
}
