import Foundation
import NimbusBilling
import NimbusCore
import Testing

/// Billing stores open by URL: `mem://` in-process and volatile, `sqlite://PATH` persistent.
@Suite("Billing store openers")
struct BillingStoreOpenerTests {
    static let openers = URLOpenerRegistry.billing.withSQLite()

    @Test func sqliteKeepsDocumentsAcrossOpensAndMemDoesNot() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-billing-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = "sqlite://\(directory.path)/nested/billing.sqlite"
        let first = try await Self.openers.open(url)
        try await first.migrate()
        try await first.commit(documents: [BillingDocument(kind: .plan, id: "basic", owner: nil, body: Data("{}".utf8))], events: [])
        try await first.close()
        let second = try await Self.openers.open(url)
        try await second.migrate()
        #expect(try await second.document(.plan, id: "basic") == Data("{}".utf8))
        #expect(second.provider == "sqlite")
        let volatile = try await Self.openers.open("mem://")
        try await volatile.migrate()
        #expect(try await volatile.document(.plan, id: "basic") == nil)
        let typo = await #expect(throws: NimbusError.self) { _ = try await Self.openers.open("sqlite://\(directory.path)/b.sqlite?mode=wal") }
        #expect(typo?.message.contains("mode") == true)
        await #expect(throws: NimbusError.self) { _ = try await Self.openers.open("postgres://db/billing") }
    }
}
