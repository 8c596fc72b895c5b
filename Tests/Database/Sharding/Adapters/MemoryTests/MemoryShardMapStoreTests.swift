import NimbusCore
import NimbusSharding
import NimbusShardingConformance
import NimbusShardingMemory
import NimbusTesting
import Testing

@Suite("Memory shard maps")
struct MemoryShardMapStoreTests {
    @Test("conformance", arguments: ShardMapStoreConformance.checks)
    func conformance(_ check: ShardMapStoreConformance.Check) async throws {
        try await check.run(ShardMapStoreConformance.Harness { MemoryShardMapStore() })
    }
}
