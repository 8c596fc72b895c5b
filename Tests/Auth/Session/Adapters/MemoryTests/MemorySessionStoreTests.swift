import NimbusCore
import NimbusSession
import NimbusSessionConformance
import NimbusSessionMemory
import NimbusTesting
import Testing

@Suite("Memory sessions", .timeLimit(.minutes(2)))
struct MemorySessionStoreTests {
    @Test("conformance", arguments: SessionConformance.checks)
    func conformance(_ check: SessionConformance.Check) async throws {
        try await check.run(SessionConformance.Harness { MemorySessionStore() })
    }

    @Test("mem:// opens it; unknown options are refused")
    func opener() async throws {
        let driver = try await URLOpenerRegistry.session.withMemory().open("mem://?capacity=10")
        #expect(driver.provider == "memory")
        await #expect(throws: NimbusError.self) { _ = try await URLOpenerRegistry.session.withMemory().open("mem://?ttl=1") }
    }
}
