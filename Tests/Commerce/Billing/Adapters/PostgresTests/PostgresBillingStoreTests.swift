import Foundation
import NimbusBilling
import NimbusBillingConformance
import NimbusBillingPostgres
import NimbusCore
import NimbusPostgres
import NimbusTesting
import PostgresNIO
import Testing

@Suite("Billing on PostgreSQL (real server)", .requires(.postgres), .timeLimit(.minutes(3)))
struct PostgresBillingStoreTests {
    @Test("conformance", arguments: BillingConformance.checks)
    func conformance(_ check: BillingConformance.Check) async throws {
        let client = PostgresClient(configuration: try .init(url: try await Peer.freshPostgresDatabase(prefix: "nimbus_billing")))
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        try await check.run(.init { PostgresBillingStore(client: client) })
    }

    @Test func numbersStayUniqueUnderConcurrencyAndUsageBatchesSkipDuplicates() async throws {
        let client = PostgresClient(configuration: try .init(url: try await Peer.freshPostgresDatabase(prefix: "nimbus_billing")))
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        let store = PostgresBillingStore(client: client)
        try await store.migrate()
        try await store.migrate()          // idempotent
        let numbers = try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<30 { group.addTask { try await store.nextNumber("invoice") } }
            return try await group.reduce(into: [Int64]()) { $0.append($1) }
        }
        #expect(Set(numbers) == Set(1...30))
        let base = Date(timeIntervalSince1970: 1_750_000_000)
        let events = (0..<500).map { UsageEvent(id: "e\($0 % 400)", subscriptionID: "s", meter: "m", timestamp: base.addingTimeInterval(Double($0))) }
        #expect(try await store.recordUsage(events) == 400)
        #expect(try await store.recordUsage(Array(events.prefix(10))) == 0)
        #expect(try await store.usage(subscriptionID: "s", meter: "m", from: base, to: base.addingTimeInterval(100)).count == 100)
        try await store.commit(documents: [BillingDocument(kind: .invoice, id: "in_1", owner: "c", body: Data(#"{"v":1}"#.utf8)),
                                           BillingDocument(kind: .invoice, id: "in_2", owner: "c", body: Data(#"{"v":2}"#.utf8))], events: [])
        try await store.commit(documents: [BillingDocument(kind: .invoice, id: "in_1", owner: "c", body: Data(#"{"v":3}"#.utf8))], events: [])
        #expect(try await store.documents(.invoice, owner: "c").map { String(decoding: $0, as: UTF8.self) } == [#"{"v":3}"#, #"{"v":2}"#],
                "an update keeps the document's place")
    }
}
