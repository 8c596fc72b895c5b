import ArgumentParser
import Foundation
import NimbusCore
import NimbusLLM
import NimbusLLMRAG

/// `nimbus rag`: build a retrieval index from files and ask questions against it.
struct RAGCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rag",
        abstract: "Retrieval-augmented generation over local files (offline by default: hashing embedder, memory model).",
        subcommands: [Ingest.self, Ask.self]
    )

    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Split, embed and index text, Markdown and HTML files (re-ingesting replaces changed files).")
        @OptionGroup var connection: LLMCommand.Connection
        @Option(help: "The index directory.") var index: String
        @Option(name: .customLong("embedding-model"), help: "Embedding model (default: the hashing embedder's name for hashing://).") var embeddingModel: String?
        @Option(name: .customLong("chunk-size"), help: "The largest chunk, in characters.") var chunkSize = 1000
        @Option(help: "Characters each chunk repeats from the previous one.") var overlap = 150
        @Argument(help: "A file or a directory.") var path: String

        func run() async throws {
            let embedder = try await connection.embedder(model: embeddingModel)
            let index = try await RAGIndex.open(directory: index, embedder: embedder)
            let documents = try DocumentLoader().load(path: path)
            let splitter = MarkdownHeaderSplitter(inner: RecursiveSplitter(chunkSize: chunkSize, overlap: overlap))
            let report = try await index.ingest(documents, splitter: splitter)
            print("documents: \(report.documents) (\(report.unchanged) unchanged), chunks stored: \(report.chunks), replaced: \(report.removed), "
                  + "index: \(index.documentCount) documents, \(try await index.vectors.count()) chunks, model \(index.manifest.embeddingModel)")
        }
    }

    struct Ask: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Answer a question from the index, citing the passages used.")
        @OptionGroup var connection: LLMCommand.Connection
        @Option(help: "The index directory.") var index: String
        @Option(name: .customLong("embedding-model"), help: "Embedding model (must be the one the index was built with).") var embeddingModel: String?
        @Option(help: "Chat model (default: memory for mem://).") var model: String?
        @Option(help: "Passages given to the model.") var passages = 6
        @Flag(help: "Print the answer, citations and passages as JSON.") var json = false
        @Argument(help: "The question.") var question: String

        func run() async throws {
            let embedder = try await connection.embedder(model: embeddingModel)
            let index = try await RAGIndex.open(directory: index, embedder: embedder, create: false)
            let chatModel = try await connection.chatModel(defaultModel: model)
            let pipeline = RAGPipeline(retriever: index.hybridRetriever(), model: chatModel, passages: passages)
            let answer = try await pipeline.ask(question)
            if json {
                let citations: [JSONValue] = answer.context.citations.map { citation in
                    ["number": .number(Double(citation.number)), "document": .string(citation.documentID), "chunk": .string(citation.chunkID),
                     "span": [.number(Double(citation.span.lowerBound)), .number(Double(citation.span.upperBound))],
                     "cited": .bool(answer.citations.contains(citation))]
                }
                print((["answer": .string(answer.text), "sources": .array(citations)] as JSONValue).description)
                return
            }
            print(answer.text)
            print("\nSources:")
            for citation in answer.context.citations {
                let mark = answer.citations.contains(citation) ? "*" : " "
                print("\(mark)[\(citation.number)] \(citation.documentID) bytes \(citation.span.lowerBound)..<\(citation.span.upperBound)")
            }
        }
    }
}
