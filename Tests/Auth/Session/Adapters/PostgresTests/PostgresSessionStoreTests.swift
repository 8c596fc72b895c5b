import NimbusCore
import NimbusSession
import NimbusSessionConformance
import NimbusSessionPostgres
import NimbusTesting
import Testing

@Suite("PostgreSQL sessions (real server)", .requires(.postgres), .timeLimit(.minutes(2)))
struct PostgresSessionStoreTests {
    @Test("conformance", arguments: SessionConformance.checks)
    func conformance(_ check: SessionConformance.Check) async throws {
        // A database per check: purge compares expiries with each check's own clock.
        let url = try await Peer.freshPostgresDatabase(prefix: "nimbus_session")
        try await check.run(SessionConformance.Harness { try await URLOpenerRegistry.session.withPostgres().open(url) })
    }
}
