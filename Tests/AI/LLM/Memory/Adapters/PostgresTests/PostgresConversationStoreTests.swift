import Foundation
import NimbusCore
import NimbusLLMMemory
import NimbusLLMMemoryConformance
import NimbusLLMMemoryPostgres
import NimbusPostgres
import NimbusTesting
import PostgresNIO
import Synchronization
import Testing

@Suite("PostgreSQL conversation store (real server)", .requires(.postgres), .timeLimit(.minutes(2)))
struct PostgresConversationStoreTests {
    final class Now: Sendable {
        private let seconds = Mutex(1_800_000_000.0)
        var date: Date { Date(timeIntervalSince1970: seconds.withLock { $0 }) }
        func advance(_ duration: Duration) { seconds.withLock { $0 += Double(duration.nimbusMilliseconds) / 1000 } }
    }

    @Test(arguments: ConversationStoreConformance.checks)
    func conforms(_ check: ConversationStoreConformance.Check) async throws {
        let client = PostgresClient(configuration: try .init(url: try await Peer.freshPostgresDatabase(prefix: "nimbus_memory")))
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        let now = Now()
        try await PostgresConversationStore(client: client).migrate()
        try await check.run(.init(makeStore: { ttl in PostgresConversationStore(client: client, defaultTTL: ttl) { now.date } },
                                  advance: { now.advance($0) }))
    }

    @Test func expiredConversationsArePurged() async throws {
        let client = PostgresClient(configuration: try .init(url: try await Peer.freshPostgresDatabase(prefix: "nimbus_memory")))
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        let now = Now()
        let store = PostgresConversationStore(client: client, defaultTTL: .seconds(10)) { now.date }
        try await store.migrate()
        try await store.append([.user("a")], to: "old")
        now.advance(.seconds(5))
        try await store.append([.user("b")], to: "new")
        now.advance(.seconds(6))
        #expect(try await store.purgeExpired() == 1)
        #expect(try await store.messages(of: "new").map(\.text) == ["b"])
    }

    @Test func opensByURLOwningItsPoolAndCreatingItsTables() async throws {
        let url = try await Peer.freshPostgresDatabase(prefix: "nimbus_memory")
        let store = try await ConversationMemory.openers.withPostgres().open(url + (url.contains("?") ? "&" : "?") + "ttl=1h")
        try await store.append([.user("by url")], to: "c")
        #expect(try await store.messages(of: "c").map(\.text) == ["by url"] && store.provider == "postgres")
        try await store.close()
    }

}
