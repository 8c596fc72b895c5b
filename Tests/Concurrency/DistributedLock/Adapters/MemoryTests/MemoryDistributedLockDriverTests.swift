import NimbusCore
import NimbusDistributedLock
import NimbusDistributedLockConformance
import NimbusDistributedLockMemory
import NimbusTesting
import Testing

@Suite("Memory locks", .timeLimit(.minutes(2)))
struct MemoryDistributedLockDriverTests {
    @Test("conformance", arguments: DistributedLockConformance.checks)
    func conformance(_ check: DistributedLockConformance.Check) async throws {
        try await check.run(DistributedLockConformance.Harness { MemoryDistributedLockDriver() })
    }

    @Test("mem:// opens through the registry")
    func opener() async throws {
        let locks = try await DistributedLocks.open("mem://", openers: .distributedLock.withMemory())
        #expect(locks.provider == "memory")
        try await locks.close()
    }
}
