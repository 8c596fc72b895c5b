import Foundation
import NimbusBilling
import NimbusBillingConformance
import Testing

@Suite("Billing on SQLite", .timeLimit(.minutes(3)))
struct SQLiteBillingTests {
    @Test("conformance", arguments: BillingConformance.checks)
    func conformance(_ check: BillingConformance.Check) async throws {
        try await check.run(.init { try SQLiteBillingStore() })
    }

    @Test func aFileStoreKeepsEverythingAcrossRestarts() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("billing-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try SQLiteBillingStore(path: path)
        try await first.migrate()
        try await first.commit(documents: [BillingDocument(kind: .plan, id: "p", owner: nil, body: Data("{}".utf8))], events: [Data("{\"a\":1}".utf8)])
        #expect(try await first.nextNumber("invoice") == 1)
        let usage = UsageEvent(id: "u1", subscriptionID: "s", meter: "m", timestamp: Date(timeIntervalSince1970: 100))
        #expect(try await first.recordUsage([usage, usage]) == 1)
        let second = try SQLiteBillingStore(path: path)
        try await second.migrate()
        #expect(try await second.document(.plan, id: "p") == Data("{}".utf8))
        #expect(try await second.recordUsage([usage]) == 0)
        #expect(try await second.nextNumber("invoice") == 2)
        #expect(try await second.events(after: 0, limit: 10).count == 1)
        #expect(try await second.usage(subscriptionID: "s", meter: "m", from: Date(timeIntervalSince1970: 100), to: Date(timeIntervalSince1970: 101)).count == 1)
        #expect(try await second.usage(subscriptionID: "s", meter: "m", from: Date(timeIntervalSince1970: 0), to: Date(timeIntervalSince1970: 100)).isEmpty)
    }
}
