import Foundation
import NimbusCore
import NimbusLLM
import NimbusLLMMemory
import NimbusLLMMemoryConformance
import NimbusLLMMemorySQLite
import NimbusTesting
import Testing

@Suite struct SQLiteConversationStoreConformanceTests {
    @Test(arguments: ConversationStoreConformance.checks)
    func sqliteStoreConforms(_ check: ConversationStoreConformance.Check) async throws {
        let file = SQLiteConversationStoreTests.path()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let now = SQLiteConversationStoreTests.Now()
        try await check.run(.init(makeStore: { ttl in try SQLiteConversationStore(path: file, defaultTTL: ttl) { now.date } },
                                  advance: { now.advance(Double($0.nimbusMilliseconds) / 1000) }))
    }

    @Test func opensByURLAndKeepsConversationsAcrossOpens() async throws {
        let file = SQLiteConversationStoreTests.path()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let openers = ConversationMemory.openers.withSQLite()
        let first = try await openers.open("sqlite://\(file)?ttl=1h")
        try await first.append([.user("kept")], to: "c")
        try await first.close()
        let again = try await openers.open("sqlite://\(file)")
        #expect(try await again.messages(of: "c").map(\.text) == ["kept"] && again.provider == "sqlite")
    }
}

/// The history the persistence test stores.
func storedHistory() -> [ChatMessage] {
    [.system("Be brief."), .user("Weather in Oslo?"), .assistant("", toolCalls: [ToolCall(id: "a", name: "weather", arguments: #"{"city":"Oslo"}"#)]),
     .tool(callID: "a", "-3"), .assistant("Oslo -3.")]
}

@Suite struct SQLiteConversationStoreTests {
    final class Now: @unchecked Sendable {
        private let lock = NSLock()
        private var value = Date(timeIntervalSince1970: 1_800_000_000)
        var date: Date { lock.withLock { value } }
        func advance(_ seconds: TimeInterval) { lock.withLock { value += seconds } }
    }

    static func path() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-conversations-\(IDGenerator.shared.ulid()).sqlite").path
    }

    @Test func conversationsPersistAcrossReopeningAndExpire() async throws {
        let file = Self.path()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let now = Now()
        let store = try SQLiteConversationStore(path: file, defaultTTL: .seconds(60)) { now.date }
        try await store.append(storedHistory(), to: "s1")
        try await store.append([.user("kept")], to: "s2")
        try await store.setTimeToLive(nil, for: "s2")
        let reopened = try SQLiteConversationStore(path: file, defaultTTL: .seconds(60)) { now.date }
        #expect(try await reopened.messages(of: "s1") == storedHistory())
        now.advance(61)
        #expect(try await reopened.messages(of: "s1").isEmpty)
        #expect(try await reopened.messages(of: "s2").map(\.text) == ["kept"])
        #expect(try await reopened.delete("s2"))
        #expect(try await reopened.delete("s2") == false)
    }
}

