import Crypto
import NimbusCore
import NimbusPush
import NimbusPushConformance
import NimbusTesting
import Testing
@testable import NimbusPushAPNs

/// The push suite against the local APNs fake (HTTP/2 over TLS, ES256 provider tokens verified).
@Suite("APNs push conformance", .timeLimit(.minutes(1)))
struct APNsConformanceTests {
    static let capabilities: Set<ConformanceCapability> = [.readBack, .deadTokens]

    @Test(arguments: PushConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<PushConformance.Harness>) async throws {
        let key = P256.Signing.PrivateKey()
        let fake = try await APNsFake(publicKey: key.publicKey)
        let driver = try APNsTests.driver(fake, key: key)
        let tokens = [APNsTests.token("a1"), APNsTests.token("a2"), APNsTests.token("a3")]
        do {
            try await check.run(.init(makeDriver: { driver }, tokens: tokens, deadToken: APNsTests.token("dead"), readBack: { token in
                guard let payload = fake.seen.withLock({ $0.last { $0.token == token } })?.payload else { return nil }
                var data: [String: String] = [:]
                for (name, value) in payload.objectValue ?? [:] where name != "aps" { if let text = value.stringValue { data[name] = text } }
                return PushConformance.Delivered(title: payload["aps"]?["alert"]?["title"]?.stringValue, body: payload["aps"]?["alert"]?["body"]?.stringValue, data: data)
            }))
        } catch {
            try? await driver.close()
            await fake.shutdown()
            throw error
        }
        try await driver.close()
        await fake.shutdown()
    }

    @Test func everyCheckRuns() {
        #expect(PushConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }
}
