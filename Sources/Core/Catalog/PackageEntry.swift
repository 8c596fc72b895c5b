/// One row of the package list (`seed/packages-todo.md`): where it lives here and how far it is.
public struct PackageEntry: Sendable, Hashable, Codable {
    /// How the seed list marks the row.
    public enum SeedStatus: String, Sendable, Codable, CaseIterable {
        /// ❌ in the list.
        case missing
        /// ✅ in the list (it existed in the company's old code; here it is still to build).
        case exists
        /// 🔄 in the list.
        case partial
        /// A domain of the "What Already Exists" summary.
        case existingDomain = "existing-domain"
    }

    /// How far the module is in this repository.
    public enum Status: String, Sendable, Codable, CaseIterable {
        /// Nothing built yet.
        case planned
        /// Some of it is built and tested; the row's note says what is missing.
        case partial
        /// The module and its tests exist.
        case done
    }

    /// An adapter and the peer its tests run against.
    public struct Adapter: Sendable, Hashable, Codable {
        /// The vendor or engine (`Redis`, `OpenAI`).
        public var name: String
        /// What the tests talk to: a real server started by `scripts/peers`, or a fake server checked against the vendor's spec.
        public var peer: String

        /// Creates an adapter row.
        public init(_ name: String, peer: String) {
            self.name = name
            self.peer = peer
        }
    }

    /// The seed path (`pkg/ai/llm/adapters/openai`, or `pkg/cache/*` for a domain).
    public var seedPath: String
    /// The Swift module (`NimbusLLMOpenAI`).
    public var module: String
    /// Where its code lives (`Sources/AI/LLM/Adapters/OpenAI`).
    public var sourcePath: String
    /// The mark in the seed list.
    public var seed: SeedStatus
    /// The state here.
    public var status: Status
    /// The seed's section (`AI & Machine Learning / LLM Core`).
    public var section: String
    /// The seed's description.
    public var summary: String
    /// The services it enables, as the seed says.
    public var services: String
    /// What runs with no account and no server, if the row has an embedded implementation.
    public var embedded: String?
    /// The adapters and their test peers.
    public var adapters: [Adapter]

    /// Creates a row.
    public init(_ seedPath: String, _ module: String, _ sourcePath: String, seed: SeedStatus, status: Status,
                section: String, summary: String, services: String, embedded: String?, adapters: [Adapter]) {
        self.seedPath = seedPath; self.module = module; self.sourcePath = sourcePath; self.seed = seed
        self.status = status; self.section = section; self.summary = summary; self.services = services
        self.embedded = embedded; self.adapters = adapters
    }

    /// Where its tests live (`Tests/AI/LLM/Adapters/OpenAITests`).
    public var testPath: String { "Tests/" + sourcePath.dropFirst("Sources/".count) + "Tests" }
}
