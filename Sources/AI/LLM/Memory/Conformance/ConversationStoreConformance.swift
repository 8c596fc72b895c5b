import Foundation
import NimbusCore
import NimbusTesting
import NimbusLLM
import NimbusLLMMemory
import Testing

/// The behaviour every ``ConversationStore`` must have, stated once and run against each store
/// (memory, SQLite, Redis, PostgreSQL).
///
/// ```swift
/// @Test(arguments: ConversationStoreConformance.checks)
/// func conformance(_ check: ConversationStoreConformance.Check) async throws {
///     let clock = ManualClock()
///     try await check.run(.init(makeStore: { ttl in MemoryConversationStore(clock: clock, defaultTTL: ttl) },
///                               advance: { clock.advance(by: $0) }))
/// }
/// ```
/// Each check uses its own random conversation ids, so checks can run in parallel on one server.
public enum ConversationStoreConformance {
    /// How a check reaches the store under test.
    public struct Harness: Sendable {
        /// Makes a store whose conversations live `defaultTTL` after their last append (`nil`: forever).
        public var makeStore: @Sendable (_ defaultTTL: Duration?) async throws -> any ConversationStore
        /// Lets at least `duration` pass for the store: advance its clock, or sleep for a server.
        public var advance: @Sendable (Duration) async throws -> Void
        /// The TTL the expiry checks use: short for stores on real time, so the checks sleep little.
        public var unit: Duration

        /// Creates a harness.
        public init(makeStore: @escaping @Sendable (_ defaultTTL: Duration?) async throws -> any ConversationStore,
                    advance: @escaping @Sendable (Duration) async throws -> Void, unit: Duration = .seconds(60)) {
            self.makeStore = makeStore
            self.advance = advance
            self.unit = unit
        }
    }

    /// One named behaviour (the conformance kit's check over this harness).
    public typealias Check = ConformanceCheck<Harness>

    /// A check that runs with a fresh conversation-id prefix.
    static func check(_ name: String, _ body: @escaping @Sendable (Harness, String) async throws -> Void) -> Check {
        Check(name) { harness in try await body(harness, "conformance-\(IDGenerator.shared.ulid())-") }
    }

    /// A history with a parallel tool round, a single tool round, and multimodal and reasoning parts:
    /// what a store must give back exactly.
    public static func sampleHistory() -> [ChatMessage] {
        let a = ToolCall(id: "a", name: "weather", arguments: #"{"city":"Oslo"}"#)
        let b = ToolCall(id: "b", name: "weather", arguments: #"{"city":"Rome"}"#)
        let c = ToolCall(id: "c", name: "time", arguments: "{}")
        return [
            .system("Be brief."),
            ChatMessage(role: .user, content: [.text("Weather in Oslo and Rome? Ünïcödé ✓"), .image(.url("https://example.com/sky.png"))]),
            .assistant("", toolCalls: [a, b]), .tool(callID: "a", "-3"), .tool(callID: "b", "21"),
            ChatMessage(role: .assistant, content: [.reasoning("compare", signature: "sig"), .text("Oslo -3, Rome 21.")]),
            .user("And the time?"),
            .assistant("", toolCalls: [c]), .tool(callID: "c", "12:00"),
            .assistant("Noon."),
        ]
    }

    /// Every check.
    public static let checks: [Check] = [
        check("messages come back exactly and in order, appended in several calls") { harness, prefix in
            let store = try await harness.makeStore(nil)
            let history = sampleHistory()
            try await store.append(Array(history[0..<2]), to: prefix + "c")
            try await store.append(Array(history[2..<5]), to: prefix + "c")
            try await store.append(Array(history[5...]), to: prefix + "c")
            #expect(try await store.messages(of: prefix + "c") == history)
            #expect(try await store.messages(of: prefix + "other").isEmpty)
        },
        check("conversations expire their TTL after the last append, and a TTL can be changed or removed") { harness, prefix in
            let unit = harness.unit
            let store = try await harness.makeStore(unit * 2)
            // Stores on real time can be stalled by a loaded machine; an attempt whose "still alive"
            // reading came too late to mean anything is repeated (up to 5 times) instead of failing.
            let attempts = 5
            for attempt in 1...attempts {
                let a = prefix + "a\(attempt)", b = prefix + "b\(attempt)", short = prefix + "s\(attempt)"
                let started = ContinuousClock.now
                try await store.append([.user("hi")], to: a)
                try await store.append([.user("kept")], to: b)
                try await store.setTimeToLive(nil, for: b)
                try await store.append([.user("short")], to: short)
                try await store.setTimeToLive(unit / 2, for: short)
                try await harness.advance(unit)
                try await store.append([.assistant("hello")], to: a)   // renews a's TTL
                let renewed = ContinuousClock.now
                #expect(try await store.messages(of: short).isEmpty)
                try await harness.advance(unit + unit / 2)
                let alive = try await store.messages(of: a).map(\.text)
                // A server's clock can lag too (Redis stamps expiries with a cached time): a renewal that
                // took more than half the TTL is treated as stalled.
                let stalled = renewed - started >= unit || ContinuousClock.now - renewed >= unit * 2
                // On a loaded CI machine a real-time store can still lose a reading to timing the
                // brackets above do not see: only a store that fails every attempt fails.
                if (stalled || alive != ["hi", "hello"]), attempt < attempts { continue }
                #expect(alive == ["hi", "hello"])
                try await harness.advance(unit)
                #expect(try await store.messages(of: a).isEmpty)
                #expect(try await store.messages(of: b).map(\.text) == ["kept"])
                try await store.append([.user("again")], to: a)         // an expired conversation starts anew
                #expect(try await store.messages(of: a).map(\.text) == ["again"])
                break
            }
            try await store.setTimeToLive(unit, for: prefix + "never-created")
            #expect(try await store.messages(of: prefix + "never-created").isEmpty)
        },
        check("concurrent appends to one conversation each land whole") { harness, prefix in
            let store = try await harness.makeStore(nil)
            let conversation = prefix + "busy"
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        let call = ToolCall(id: "call\(index)", name: "t", arguments: "{}")
                        try await store.append([.assistant("", toolCalls: [call]), .tool(callID: "call\(index)", "\(index)")], to: conversation)
                    }
                }
                try await group.waitForAll()
            }
            let messages = try await store.messages(of: conversation)
            #expect(messages.count == 80)
            try ChatRequest(messages: [.user("go")] + messages).validate()   // each call is followed by its own result
        },
        check("delete says whether the conversation existed; export and import round-trip through JSON") { harness, prefix in
            let store = try await harness.makeStore(nil)
            try await store.append(sampleHistory(), to: prefix + "s")
            let data = try JSONEncoder().encode(try await store.export(prefix + "s"))
            var exported = try JSONDecoder().decode(Conversation.self, from: data)
            exported.id = prefix + "copy"
            try await store.append([.user("replaced")], to: prefix + "copy")
            try await store.importConversation(exported)
            #expect(try await store.messages(of: prefix + "copy") == sampleHistory())
            #expect(try await store.delete(prefix + "s"))
            #expect(try await store.delete(prefix + "s") == false)
            #expect(try await store.messages(of: prefix + "s").isEmpty)
        },
    ]
}
