import Foundation
import NimbusCore
import NimbusHTTP
import NimbusGCP
import NimbusSecrets
import NimbusSecretsConformance
@testable import NimbusSecretsGCP
import NimbusTesting
import Testing

/// No Secret Manager emulator exists: the driver runs against ``FakeSecretManager``, which checks
/// each request body against Google's committed protos.
@Suite("GCP Secret Manager (fake checked against secretmanager/v1 protos)", .timeLimit(.minutes(2)))
struct GCPSecretManagerTests {
    static func driver(_ fake: FakeSecretManager, token: String? = nil) throws -> GCPSecretManager {
        let gcp = try GCPClient(configuration: .init(tokens: GCPStaticToken(Secret(token ?? fake.token)), retry: .none))
        return GCPSecretManager(gcp: gcp, project: fake.project, endpoint: fake.endpoint)
    }

    @Test("conformance", arguments: SecretsConformance.checks)
    func conformance(_ check: SecretsConformance.Check) async throws {
        let fake = try await FakeSecretManager.start()
        try await check.run(SecretsConformance.Harness { try Self.driver(fake) })
        #expect(fake.specMismatches == [])
        await fake.server.shutdown()
    }

    @Test("names map reversibly onto Secret Manager ids; a payload carries its CRC32C; a disabled version is not read")
    func wire() async throws {
        let fake = try await FakeSecretManager.start()
        let store = SecretStore(driver: try Self.driver(fake), configuration: .init(cacheTTL: .zero, retry: .none))
        try await store.put("db/pass.word_1", string: "s3cret")
        #expect(fake.state.withLock { Array($0.secrets.keys) } == ["db_2Fpass_2Eword_5F1"])
        #expect(GCPSecretManager.codec.decode("db_2Fpass_2Eword_5F1") == "db/pass.word_1")
        let add = try #require(fake.server.requests.first { $0.path.hasSuffix(":addVersion") })
        #expect(try add.json()["payload"]?["dataCrc32c"]?.stringValue == String(CRC32C.checksum(Array("s3cret".utf8))))
        try await store.put("db/pass.word_1", string: "second")
        fake.disable("db_2Fpass_2Eword_5F1", version: 2)
        let disabled = await #expect(throws: NimbusError.self) { _ = try await store.value("db/pass.word_1", version: "2") }
        #expect(disabled?.code == .notFound)
        #expect(try await store.versions("db/pass.word_1").map(\.version) == ["1"])
        #expect(fake.specMismatches == [])
        await fake.server.shutdown()
    }

    @Test("a corrupted payload (CRC32C mismatch) is refused as dataLoss; a wrong token is unauthenticated")
    func integrity() async throws {
        let fake = try await FakeSecretManager.start()
        fake.server.route(.GET, "/v1/projects/{p}/secrets/{s}/versions/{v}", reply: .json(200, ["name": "projects/nimbus-test/secrets/x/versions/1",
                                                                                                "payload": ["data": "aGVsbG8=", "dataCrc32c": "12345"]]))
        let store = SecretStore(driver: try Self.driver(fake), configuration: .init(cacheTTL: .zero, retry: .none))
        let corrupted = await #expect(throws: NimbusError.self) { _ = try await store.value("x") }
        #expect(corrupted?.code == .dataLoss)
        let wrong = SecretStore(driver: try Self.driver(fake, token: "ya29.wrong"), configuration: .init(cacheTTL: .zero, retry: .none))
        let refused = await #expect(throws: NimbusError.self) { _ = try await wrong.names() }
        #expect(refused?.code == .unauthenticated)
        await fake.server.shutdown()
    }

    @Test("the fake's check refuses a body the protos do not describe")
    func specRefusesUnknown() async throws {
        let fake = try await FakeSecretManager.start()
        fake.server.mutateRequests { request in
            var changed = request
            if request.path.hasSuffix(":addVersion") { changed.body = .init(string: #"{"payload":{"data":"eA==","checksum":"1"}}"#) }
            return changed
        }
        fake.state.withLock { $0.secrets["m"] = [] }
        let store = SecretStore(driver: try Self.driver(fake), configuration: .init(cacheTTL: .zero, retry: .none))
        await #expect(throws: NimbusError.self) { try await store.put("m", string: "x") }
        #expect(fake.server.refusals.contains { $0.problems.joined().contains("checksum") })
        await fake.server.shutdown()
    }

    @Test("gcpsecrets:// needs a project")
    func opener() async throws {
        await #expect(throws: NimbusError.self) { _ = try await SecretStore.open("gcpsecrets://", openers: .secrets.withGCP()) }
    }
}
