import Logging
import NimbusCore

extension Embedder {
    /// The embeddings domain's openers: `hashing://` here (`.withHashing()`); adapter modules add
    /// `openai://`, `openai-compatible://`, `gemini://`, `ollama://`.
    public static var openers: URLOpenerRegistry<any EmbeddingDriver> { URLOpenerRegistry(domain: "embeddings") }

    /// Opens an embedder by URL.
    ///
    /// ```swift
    /// let embedder = try await Embedder.open("hashing://?dimensions=384", openers: Embedder.openers.withHashing(),
    ///                                        configuration: .init(defaultModel: "nimbus-hashing-384"))
    /// ```
    public static func open(_ url: String, openers: URLOpenerRegistry<any EmbeddingDriver>, configuration: Configuration,
                            logger: Logger = Logger(label: "nimbus.embeddings")) async throws -> Embedder {
        Embedder(driver: try await openers.open(url), configuration: configuration, logger: logger)
    }
}

extension URLOpenerRegistry where Resource == any EmbeddingDriver {
    /// Adds `hashing://?dimensions=384`: the offline feature-hashing embedder (no model, no network).
    public func withHashing() -> Self {
        var copy = self
        copy.register("hashing") { url in
            try url.options.validate(known: ["dimensions"], for: "hashing://")
            let dimensions = try url.options.int("dimensions") ?? 384
            guard (8...8192).contains(dimensions) else { throw NimbusError(.invalidArgument, "hashing://?dimensions=\(dimensions): use 8 to 8192") }
            return HashingEmbeddingDriver(dimensions: dimensions)
        }
        return copy
    }
}
