import ArgumentParser
import Foundation
import NimbusCore
import NimbusEmbeddings
import NimbusGateway
import NimbusLLM
import NimbusLLMOpenAI

/// `nimbus llm`: chat with, embed with and list the models of a gateway configuration — or of any
/// OpenAI-compatible server (a running `nimbus serve`, vLLM, Ollama's `/v1`...).
struct LLMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llm",
        abstract: "Chat, embed and list models (embedded memory model by default).",
        discussion: """
            Models come from --gateway-config (the YAML `nimbus serve` reads), or from an OpenAI-compatible
            server with --base-url (key in NIMBUS_LLM_API_KEY). With neither, the embedded memory model
            ("memory") and the offline hashing embedder ("nimbus-hashing-384") answer.
            """,
        subcommands: [Chat.self, Embed.self, Models.self]
    )

    /// Where the models come from.
    struct Source: ParsableArguments {
        @Option(name: .customLong("gateway-config"), help: "Gateway configuration (YAML) naming models and deployments.")
        var gatewayConfig: String?

        @Option(name: .customLong("base-url"), help: "An OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 (key: NIMBUS_LLM_API_KEY).")
        var baseURL: String?

        func gatewayConfiguration() throws -> GatewayConfiguration {
            try gatewayConfig.map { try GatewayConfiguration.load(file: $0) } ?? .embedded
        }

        var apiKey: Secret<String>? {
            ProcessInfo.processInfo.environment["NIMBUS_LLM_API_KEY"].flatMap { $0.isEmpty ? nil : Secret($0) }
        }

        func chatModel() throws -> ChatModel {
            if let baseURL {
                let driver = OpenAIChatModelDriver(configuration: .compatible(baseURL: baseURL, apiKey: apiKey, provider: "openai-compatible"))
                return ChatModel(driver: driver, configuration: .init(defaultModel: "memory"))
            }
            return try Gateway.chatModel(configuration: gatewayConfiguration())
        }

        /// The embedder named `model` (default: the first configured one; offline: the hashing embedder).
        func embedder(model: String?) throws -> Embedder {
            if let baseURL {
                return Embedder(driver: OpenAIEmbeddingDriver(configuration: .compatible(baseURL: baseURL, apiKey: apiKey)),
                                configuration: .init(defaultModel: model ?? "nimbus-hashing-384", normalize: false))
            }
            let embedders = try Gateway.embedders(configuration: gatewayConfiguration())
            guard let name = model ?? embedders.keys.sorted().first, let found = embedders[name] else {
                throw ValidationError("no embedding model '\(model ?? "")'; configured: \(embedders.keys.sorted().joined(separator: ", "))")
            }
            return found
        }
    }

    struct Chat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a prompt and stream the reply to standard output.")
        @OptionGroup var source: Source
        @Option(help: "Model name (default: the first configured model).") var model: String?
        @Option(help: "A system prompt.") var system: String?
        @Option(name: .customLong("max-tokens"), help: "The most tokens to generate.") var maxTokens: Int?
        @Option(help: "Sampling temperature (0...2).") var temperature: Double?
        @Flag(name: .customLong("no-stream"), help: "Wait for the whole reply.") var noStream = false
        @Flag(help: "Print the whole response as JSON.") var json = false
        @Argument(help: "The prompt.") var prompt: String

        func run() async throws {
            let model = try source.chatModel()
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
        @OptionGroup var source: Source
        @Option(help: "Embedding model name (default: the first configured one).") var model: String?
        @Argument(help: "Texts to embed.") var texts: [String]

        func run() async throws {
            let embedder = try source.embedder(model: model)
            let vectors = try await embedder.embed(texts)
            for (text, vector) in zip(texts, vectors) {
                let line: JSONValue = ["text": .string(text), "dimensions": .number(Double(vector.count)), "vector": .array(vector.map { .number(Double($0)) })]
                print(line.description)
            }
        }
    }

    struct Models: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the model names served.")
        @OptionGroup var source: Source

        func run() async throws {
            let model = try source.chatModel()
            for descriptor in try await model.models() { print("\(descriptor.id)\t\(descriptor.ownedBy)") }
            if source.baseURL == nil {
                for name in try Gateway.embedders(configuration: source.gatewayConfiguration()).keys.sorted() { print("\(name)\tembeddings") }
            }
        }
    }
}
