import ArgumentParser
import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusLLM
import NimbusLLMAnthropic
import NimbusLLMGemini
import NimbusLLMOllama
import NimbusLLMOpenAI
import NimbusLLMScripted

/// `nimbus llm`: chat with, embed with and list the models of any provider, by URL — or of any
/// OpenAI-compatible server (a running `nimbus serve`, vLLM, Ollama's `/v1`...).
struct LLMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llm",
        abstract: "Chat, embed and list models (embedded memory model by default).",
        discussion: """
            --url picks the chat model (NIMBUS_LLM_URL; default mem://, the embedded memory model): openai://, \
            openai-compatible://127.0.0.1:8080/v1 (a running `nimbus serve`), azure-openai://RESOURCE.openai.azure.com?deployment=D, \
            anthropic://, gemini://, vertex://?project=P&location=L, ollama://. --embed-url picks the embedder \
            (NIMBUS_EMBEDDINGS_URL; default hashing://?dimensions=384, offline). Keys come from the provider's usual \
            variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY…) or key=env:NAME in the URL, never the URL itself.
            """,
        subcommands: [Chat.self, Embed.self, Models.self]
    )

    /// Where the models come from: the same `--url` as every domain.
    struct Connection: ParsableArguments {
        @Option(help: "The chat model's URL (default: NIMBUS_LLM_URL, else mem://).") var url: String?
        @Option(name: .customLong("embed-url"), help: "The embedder's URL (default: NIMBUS_EMBEDDINGS_URL, else hashing://?dimensions=384).")
        var embedURL: String?

        static let chatOpeners = ChatModel.openers.withOpenAI().withAnthropic().withGemini().withOllama().withMemory()
        static let embeddingOpeners = Embedder.openers.withOpenAI().withGemini().withOllama().withHashing()

        func chatModel(defaultModel: String?) async throws -> ChatModel {
            let resolved = try await DomainURL.resolve(url, key: "llm.url", default: "mem://")
            let fallback = defaultModel ?? (resolved.hasPrefix("mem") ? "memory" : "")
            return try await ChatModel.open(resolved, openers: Self.chatOpeners, configuration: .init(defaultModel: fallback))
        }

        /// The embedder (its model: `model`, else the hashing embedder's name for `hashing://`).
        func embedder(model: String?) async throws -> Embedder {
            let resolved = try await DomainURL.resolve(embedURL, key: "embeddings.url", default: "hashing://?dimensions=384")
            let driver = try await Self.embeddingOpeners.open(resolved)
            let name = model ?? (driver as? HashingEmbeddingDriver).map { HashingEmbeddingDriver.modelName($0.dimensions) }
            guard let name else { throw ValidationError("name the embedding model with --model (the \(driver.provider) embedder serves several)") }
            return Embedder(driver: driver, configuration: .init(defaultModel: name, normalize: false))
        }
    }

    struct Chat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a prompt and stream the reply to standard output.")
        @OptionGroup var connection: Connection
        @Option(help: "Model name (default: the first configured model).") var model: String?
        @Option(help: "A system prompt.") var system: String?
        @Option(name: .customLong("max-tokens"), help: "The most tokens to generate.") var maxTokens: Int?
        @Option(help: "Sampling temperature (0...2).") var temperature: Double?
        @Flag(name: .customLong("no-stream"), help: "Wait for the whole reply.") var noStream = false
        @Flag(help: "Print the whole response as JSON.") var json = false
        @Argument(help: "The prompt.") var prompt: String

        func run() async throws {
            let model = try await connection.chatModel(defaultModel: self.model)
            var messages: [ChatMessage] = []
            if let system { messages.append(.system(system)) }
            messages.append(.user(prompt))
            let request = ChatRequest(model: self.model, messages: messages, temperature: temperature, maxTokens: maxTokens)
            let response: ChatResponse
            if noStream || json {
                response = try await model.chat(request)
                if !json { print(response.text) }
            } else {
                var accumulator = ChatResponseAccumulator()
                for try await event in try await model.stream(request) {
                    accumulator.add(event)
                    if case .textDelta(let text) = event { FileHandle.standardOutput.write(Data(text.utf8)) }
                }
                FileHandle.standardOutput.write(Data("\n".utf8))
                response = try accumulator.response()
            }
            if json {
                try Output.printJSON(response)
            }
            for call in response.toolCalls { print("tool call \(call.name)(\(call.arguments))") }
            let cost = model.configuration.catalog.cost(of: response.usage, model: response.model)
            FileHandle.standardError.write(Data("[\(response.model)] \(response.finishReason) · \(response.usage.inputTokens) in, \(response.usage.outputTokens) out\(cost.map { " · $\($0)" } ?? "")\n".utf8))
        }
    }

    struct Embed: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one JSON line per text: its vector and dimensions.")
        @OptionGroup var connection: Connection
        @Option(help: "Embedding model name (default: the first configured one).") var model: String?
        @Argument(help: "Texts to embed.") var texts: [String]

        func run() async throws {
            let embedder = try await connection.embedder(model: model)
            let vectors = try await embedder.embed(texts)
            for (text, vector) in zip(texts, vectors) {
                let line: JSONValue = ["text": .string(text), "dimensions": .number(Double(vector.count)), "vector": .array(vector.map { .number(Double($0)) })]
                print(line.description)
            }
        }
    }

    struct Models: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the model names served.")
        @OptionGroup var connection: Connection

        func run() async throws {
            let model = try await connection.chatModel(defaultModel: nil)
            for descriptor in try await model.models() { print("\(descriptor.id)\t\(descriptor.ownedBy)") }
            if let embedder = try? await connection.embedder(model: nil) { print("\(embedder.configuration.defaultModel)\tembeddings") }
        }
    }
}
