import Foundation
import NimbusCore
import NimbusSession
import NimbusSessionConformance
import NimbusSessionSQLite
import NimbusTesting
import Testing

@Suite("SQLite sessions", .timeLimit(.minutes(2)))
struct SQLiteSessionStoreTests {
    @Test("conformance", arguments: SessionConformance.checks)
    func conformance(_ check: SessionConformance.Check) async throws {
        try await check.run(SessionConformance.Harness { try SQLiteSessionStore(path: nil) })
    }

    @Test("sessions survive reopening the file")
    func persistent() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sessions-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let key = try SessionSigningKey(id: "k", secret: Secret(Array(repeating: 3, count: 32)))
        let first = try SessionManager(driver: try SQLiteSessionStore(path: path), configuration: .init(keys: [key]))
        let (_, cookie) = try await first.create(userID: "ada", data: ["n": 1])
        try await first.close()
        let second = try SessionManager(driver: try await URLOpenerRegistry.session.withSQLite().open("sqlite://\(path)"), configuration: .init(keys: [key]))
        let loaded = try await second.load(cookieHeader: String(cookie.split(separator: ";")[0]))
        #expect(loaded?.userID == "ada" && loaded?.data["n"] == 1)
        try await second.close()
    }
}
