import Foundation
import NimbusCore
import NimbusLLMMemory
import NimbusLLMMemoryConformance
import NimbusLLMMemoryRedis
import NimbusRedis
import NimbusTesting
import Testing

@Suite("Redis conversation store (real redis-server)", .requires(.redis), .timeLimit(.minutes(2)))
struct RedisConversationStoreTests {
    @Test(arguments: ConversationStoreConformance.checks)
    func conforms(_ check: ConversationStoreConformance.Check) async throws {
        let client = try RedisClient(url: try Peer.redis.url())
        defer { Task { try? await client.shutdown() } }
        // Redis keeps time itself, so the TTL checks sleep: units of 1 s stay clear of a loaded machine's stalls.
        try await check.run(.init(makeStore: { ttl in RedisConversationStore(client: client, defaultTTL: ttl) },
                                  advance: { try await Task.sleep(for: $0) }, unit: .seconds(1)))
    }

    @Test func aCorruptEntryIsDataLossNamingTheMessage() async throws {
        let client = try RedisClient(url: try Peer.redis.url())
        defer { Task { try? await client.shutdown() } }
        let store = RedisConversationStore(client: client, keyPrefix: "test:\(IDGenerator.shared.ulid()):")
        try await store.append([.user("fine")], to: "c")
        try await client.send(RedisCommand("RPUSH", "\(store.keyPrefix){c}:messages", "{not json"))
        let error = await #expect(throws: NimbusError.self) { try await store.messages(of: "c") }
        #expect(error?.code == .dataLoss)
        #expect(error?.message.contains("message 1") == true)
    }

    @Test func opensByURLWithItsOwnClientAndClosesIt() async throws {
        let prefix = "url:\(IDGenerator.shared.ulid()):"
        let store = try await ConversationMemory.openers.withRedis().open("\(try Peer.redis.url())?ttl=1h&prefix=\(prefix)")
        try await store.append([.user("by url")], to: "c")
        #expect(try await store.messages(of: "c").map(\.text) == ["by url"] && store.provider == "redis")
        #expect((store as? RedisConversationStore)?.keyPrefix == prefix)
        try await store.close()
        let typo = await #expect(throws: NimbusError.self) { try await ConversationMemory.openers.withRedis().open("\(try Peer.redis.url())?tll=1h") }
        #expect(typo?.message.contains("tll") == true)
    }

}
