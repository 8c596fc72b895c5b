import Foundation
import NimbusCore
import NimbusLLM
import NimbusLLMMemory
import NimbusTesting
import Testing

/// A history with two tool rounds (one with parallel calls) between user turns.
func toolHistory() -> [ChatMessage] {
    let a = ToolCall(id: "a", name: "weather", arguments: #"{"city":"Oslo"}"#)
    let b = ToolCall(id: "b", name: "weather", arguments: #"{"city":"Rome"}"#)
    let c = ToolCall(id: "c", name: "time", arguments: "{}")
    return [
        .system("Be brief."),
        .user("Weather in Oslo and Rome?"),
        .assistant("", toolCalls: [a, b]), .tool(callID: "a", "-3"), .tool(callID: "b", "21"),
        .assistant("Oslo -3, Rome 21."),
        .user("And the time?"),
        .assistant("", toolCalls: [c]), .tool(callID: "c", "12:00"),
        .assistant("Noon."),
        .user("Thanks"),
    ]
}

@Suite struct MemoryPolicyTests {
    @Test func noWindowSizeEverSeparatesACallFromItsResults() async throws {
        let history = toolHistory()
        for size in 1...12 {
            let window = try await SlidingWindow(maxMessages: size).select(from: history)
            try ChatRequest(messages: window).validate()     // the provider's rule: no orphan results, results right after their call
            #expect(window.first?.role == .system)
            #expect(window.count - 1 <= size)
            #expect(window.last == history.last)
        }
        for budget in stride(from: 20, through: 200, by: 5) {
            let window = try await TokenLimited(maxTokens: budget, model: "gpt-4o").select(from: history)
            try ChatRequest(messages: window).validate()
            #expect(TokenEstimator.forModel("gpt-4o").count(messages: window) <= budget)
        }
    }

    @Test func theWindowCutsBeforeAToolRoundRatherThanInsideIt() async throws {
        let window = try await SlidingWindow(maxMessages: 3).select(from: toolHistory())
        // The last three messages would start with the lone tool result "12:00": the whole round is dropped instead.
        #expect(window.map(\.text) == ["Be brief.", "Noon.", "Thanks"])
        let wider = try await SlidingWindow(maxMessages: 4).select(from: toolHistory())
        #expect(wider.count == 5)
        #expect(wider[1].toolCalls.map(\.id) == ["c"])
        #expect(wider[2].toolCallID == "c")
    }

    @Test func orphanResultsAreDroppedAndTheSystemPromptMustFit() async throws {
        let broken: [ChatMessage] = [.user("q"), .tool(callID: "ghost", "x"), .assistant("a")]
        #expect(try await FullBuffer().select(from: broken).map(\.role) == [.user, .assistant])
        await #expect(throws: NimbusError.self) {
            try await TokenLimited(maxTokens: 5, model: "gpt-4o").select(from: [.system(String(repeating: "long ", count: 50)), .user("hi")])
        }
    }
}

@Suite struct ConversationStoreTests {
    @Test func conversationsExpireAfterTheirTTLOnTheInjectedClock() async throws {
        let clock = ManualClock()
        let store = MemoryConversationStore(clock: clock, defaultTTL: .seconds(60))
        try await store.append([.user("hi")], to: "c1")
        try await store.append([.user("other")], to: "c2")
        try await store.setTimeToLive(nil, for: "c2")
        clock.advance(by: .seconds(30))
        try await store.append([.assistant("hello")], to: "c1")       // an append renews the TTL
        clock.advance(by: .seconds(45))
        #expect(try await store.messages(of: "c1").count == 2)
        clock.advance(by: .seconds(16))
        #expect(try await store.messages(of: "c1").isEmpty)
        #expect(try await store.messages(of: "c2").count == 1)
    }

    @Test func concurrentAppendsToOneConversationAllLandWhole() async throws {
        let store = MemoryConversationStore()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let call = ToolCall(id: "call\(index)", name: "t", arguments: "{}")
                    try await store.append([.assistant("", toolCalls: [call]), .tool(callID: "call\(index)", "\(index)")], to: "busy")
                }
            }
            try await group.waitForAll()
        }
        let messages = try await store.messages(of: "busy")
        #expect(messages.count == 400)
        try ChatRequest(messages: [.user("go")] + messages).validate()   // every call is followed by its own result
    }

    @Test func exportAndImportRoundTripThroughJSON() async throws {
        let store = MemoryConversationStore()
        try await store.append(toolHistory(), to: "session-1")
        let exported = try await store.export("session-1")
        let data = try JSONEncoder().encode(exported)
        let copy = MemoryConversationStore()
        try await copy.importConversation(try JSONDecoder().decode(Conversation.self, from: data))
        #expect(try await copy.messages(of: "session-1") == toolHistory())
        #expect(try await copy.delete("session-1"))
        #expect(try await copy.delete("session-1") == false)
    }

    @Test func memoryBuildsTheNextRequestThroughItsPolicy() async throws {
        let memory = ConversationMemory(store: MemoryConversationStore(), policy: SlidingWindow(maxMessages: 3))
        try await memory.append(toolHistory(), to: "s")
        let context = try await memory.context(for: "s")
        #expect(context.first?.role == .system)
        try ChatRequest(messages: context).validate()
    }
}

@Suite struct SQLiteConversationStoreTests {
    final class Now: @unchecked Sendable {
        private let lock = NSLock()
        private var value = Date(timeIntervalSince1970: 1_800_000_000)
        var date: Date { lock.withLock { value } }
        func advance(_ seconds: TimeInterval) { lock.withLock { value += seconds } }
    }

    func path() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-conversations-\(IDGenerator.shared.ulid()).sqlite").path
    }

    @Test func conversationsPersistAcrossReopeningAndExpire() async throws {
        let file = path()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let now = Now()
        let store = try SQLiteConversationStore(path: file, defaultTTL: .seconds(60)) { now.date }
        try await store.append(toolHistory(), to: "s1")
        try await store.append([.user("kept")], to: "s2")
        try await store.setTimeToLive(nil, for: "s2")
        let reopened = try SQLiteConversationStore(path: file, defaultTTL: .seconds(60)) { now.date }
        #expect(try await reopened.messages(of: "s1") == toolHistory())
        now.advance(61)
        #expect(try await reopened.messages(of: "s1").isEmpty)
        #expect(try await reopened.messages(of: "s2").map(\.text) == ["kept"])
        #expect(try await reopened.delete("s2"))
        #expect(try await reopened.delete("s2") == false)
    }

    @Test func concurrentAppendsLandWholeInSQLite() async throws {
        let file = path()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let store = try SQLiteConversationStore(path: file)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask {
                    let call = ToolCall(id: "call\(index)", name: "t", arguments: "{}")
                    try await store.append([.assistant("", toolCalls: [call]), .tool(callID: "call\(index)", "\(index)")], to: "busy")
                }
            }
            try await group.waitForAll()
        }
        let messages = try await store.messages(of: "busy")
        #expect(messages.count == 100)
        try ChatRequest(messages: [.user("go")] + messages).validate()
        let exported = try await store.export("busy")
        let copy = MemoryConversationStore()
        try await copy.importConversation(exported)
        #expect(try await copy.messages(of: "busy") == messages)
    }
}
