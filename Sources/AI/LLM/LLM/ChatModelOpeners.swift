import Logging
import NimbusCore

extension ChatModel {
    /// The chat-model domain's openers, empty: adapter modules add their schemes —
    /// `.withOpenAI()` (`openai://`, `openai-compatible://`, `azure-openai://`), `.withAnthropic()`,
    /// `.withGemini()` (`gemini://`, `vertex://`), `.withOllama()`, `.withMemory()` (`mem://`).
    public static var openers: URLOpenerRegistry<any ChatModelDriver> { URLOpenerRegistry(domain: "chat model") }

    /// Opens a model by URL: the URL picks the adapter and its endpoint; keys come from the
    /// environment (`key=env:NAME`, or the provider's usual variable), never from the URL.
    ///
    /// ```swift
    /// let openers = ChatModel.openers.withOpenAI().withAnthropic().withMemory()
    /// let model = try await ChatModel.open("anthropic://", openers: openers, configuration: .init(defaultModel: "claude-sonnet-4-5"))
    /// let local = try await ChatModel.open("openai-compatible://127.0.0.1:8080/v1", openers: openers, configuration: .init(defaultModel: "memory"))
    /// ```
    /// - Throws: `invalidArgument` for an unknown scheme (listing the known ones) or option; `failedPrecondition` for a key variable that is not set.
    public static func open(_ url: String, openers: URLOpenerRegistry<any ChatModelDriver>, configuration: Configuration,
                            logger: Logger = Logger(label: "nimbus.llm")) async throws -> ChatModel {
        ChatModel(driver: try await openers.open(url), configuration: configuration, logger: logger)
    }
}

/// The options every LLM adapter URL takes besides its own: `key=env:NAME`, `timeout=30s`, `tls=false`.
public enum LLMURLOptions {
    /// The options common to every LLM adapter URL.
    public static let common: Set<String> = ["key", "timeout", "tls"]
}
