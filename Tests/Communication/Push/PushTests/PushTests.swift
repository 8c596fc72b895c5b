import NimbusCore
import NimbusPush
import Testing
import NimbusPushMemory

@Suite("Push client")
struct PushTests {
    @Test func resultsKeepTheTokensOrderAndSurfaceDeadTokens() async throws {
        let memory = MemoryPushDriver()
        let tokens = (0..<40).map { $0 % 7 == 0 ? "invalid-\($0)" : "token-\($0)" }
        let results = try await PushClient(driver: memory, maxConcurrency: 4).send(PushNotification(title: "Hi"), to: tokens)
        #expect(results.map(\.token) == tokens)
        #expect(results.invalidTokens == tokens.filter { $0.hasPrefix("invalid") } && results.deliveredCount == 34 && memory.sent.count == 34)
        await #expect(throws: NimbusError.self) { try await PushClient(driver: memory).send(PushNotification(collapseKey: String(repeating: "k", count: 65)), to: ["t"]) }
    }
}
