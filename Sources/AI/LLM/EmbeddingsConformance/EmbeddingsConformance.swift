import NimbusCore
import NimbusEmbeddings
import NimbusTesting
import Testing

/// The behaviour every ``EmbeddingDriver`` must have, stated once and run by each driver's tests
/// (the hashing embedder, OpenAI, Gemini and Ollama against their spec-checked fakes).
///
/// Fakes answer with ``referenceVector(for:dimensions:)`` — a vector derived from the text — so a
/// check can tell whether each vector came back for its own input.
public enum EmbeddingsConformance {
    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes a driver (one per check).
        public var makeDriver: @Sendable () async throws -> any EmbeddingDriver
        /// The model to ask for.
        public var model: String
        /// The dimensions to ask for, when the provider can shorten vectors (capability
        /// ``ConformanceCapability/dimensions``), or the dimensions it makes otherwise.
        public var dimensions: Int

        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any EmbeddingDriver, model: String, dimensions: Int) {
            self.makeDriver = makeDriver
            self.model = model
            self.dimensions = dimensions
        }

        func embedder(batchSize: Int? = nil, askDimensions: Bool, normalize: Bool = false) async throws -> (Embedder, CountingEmbeddingDriver) {
            let counting = CountingEmbeddingDriver(try await makeDriver())
            return (Embedder(driver: counting, configuration: .init(defaultModel: model, dimensions: askDimensions ? dimensions : nil, normalize: normalize,
                                                                    maxConcurrency: 2, batchSize: batchSize, retry: .none)), counting)
        }
    }

    /// A vector that depends on every character of `text` (for fakes to answer with).
    public static func referenceVector(for text: String, dimensions: Int) -> [Float] {
        var vector = [Float](repeating: 0, count: max(1, dimensions))
        for (index, scalar) in text.unicodeScalars.enumerated() {
            vector[(index &* 31 &+ Int(scalar.value)) % vector.count] += Float(scalar.value % 251) / 251 + 0.25
        }
        vector[0] += Float(text.unicodeScalars.count)
        return vector
    }

    static let texts = ["the first document", "Zweites Dokument — Grüße", "третий", "第四の文書", "a fifth text", "", "six"]

    /// Every check.
    public static let suite = ConformanceSuite<Harness>(domain: "embeddings", checks: [
        ConformanceCheck("batched vectors come back one per input, each for its own text, in the input order") { harness in
            let inputs = texts.filter { !$0.isEmpty }
            let (batched, counting) = try await harness.embedder(batchSize: 2, askDimensions: false)
            let vectors = try await batched.embed(inputs)
            #expect(vectors.count == inputs.count)
            #expect(counting.calls == (inputs.count + 1) / 2, "batches of two")
            let (single, _) = try await harness.embedder(askDimensions: false)
            for (index, text) in inputs.enumerated() {
                let alone = try await single.embed(text)
                #expect(alone == vectors[index], "the vector for \"\(text)\" differs when embedded alone")
            }
            #expect(Set(vectors.map { $0.map(\.bitPattern) }).count == inputs.count, "different texts, different vectors")
        },
        ConformanceCheck("every vector has the dimensions asked for", needs: [.dimensions]) { harness in
            let (embedder, _) = try await harness.embedder(askDimensions: true)
            let vectors = try await embedder.embed(Array(texts.prefix(3)))
            #expect(vectors.allSatisfy { $0.count == harness.dimensions }, "\(vectors.map(\.count))")
        },
        ConformanceCheck("normalized vectors have unit length") { harness in
            let (embedder, _) = try await harness.embedder(askDimensions: false, normalize: true)
            for vector in try await embedder.embed(Array(texts.prefix(3))) {
                let length = vector.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                #expect(abs(length - 1) < 1e-5, "length \(length)")
            }
        },
        ConformanceCheck("no input, no call") { harness in
            let (embedder, counting) = try await harness.embedder(askDimensions: false)
            #expect(try await embedder.embed([String]()).isEmpty)
            #expect(counting.calls == 0)
        },
    ])
}

extension ConformanceCapability {
    /// The provider can make vectors of the dimensions asked for (OpenAI `dimensions`, Gemini `outputDimensionality`).
    public static let dimensions: ConformanceCapability = "dimensions"
}

/// Counts what reaches the driver under test.
final class CountingEmbeddingDriver: EmbeddingDriver {
    let inner: any EmbeddingDriver
    private let counter = CallCounter()
    init(_ inner: any EmbeddingDriver) { self.inner = inner }
    var provider: String { inner.provider }
    var maxBatchSize: Int { inner.maxBatchSize }
    var calls: Int { counter.count }
    func embed(_ texts: [String], model: String, dimensions: Int?) async throws -> EmbeddingBatch {
        counter.record()
        return try await inner.embed(texts, model: model, dimensions: dimensions)
    }
    func close() async throws { try await inner.close() }
}
