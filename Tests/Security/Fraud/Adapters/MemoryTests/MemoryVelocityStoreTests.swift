import NimbusCore
import NimbusFraud
import NimbusFraudConformance
import NimbusFraudMemory
import NimbusTesting
import Testing

@Suite("Memory velocity counters", .timeLimit(.minutes(2)))
struct MemoryVelocityStoreTests {
    @Test("conformance", arguments: VelocityConformance.checks)
    func conformance(_ check: VelocityConformance.Check) async throws {
        try await check.run(VelocityConformance.Harness { MemoryVelocityStore() })
    }
}
