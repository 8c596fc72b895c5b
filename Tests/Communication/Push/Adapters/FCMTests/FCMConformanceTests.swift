import NimbusCore
import NimbusPush
import NimbusPushConformance
import NimbusTesting
import Testing
@testable import NimbusPushFCM

/// The push suite against the local FCM HTTP v1 fake (service-account OAuth verified).
@Suite("FCM push conformance", .timeLimit(.minutes(1)))
struct FCMConformanceTests {
    static let capabilities: Set<ConformanceCapability> = [.readBack, .deadTokens]

    @Test(arguments: PushConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<PushConformance.Harness>) async throws {
        let fake = try await FCMFake()
        defer { Task { await fake.shutdown() } }
        let driver = try fake.driver()
        try await check.run(.init(makeDriver: { driver }, tokens: ["tok-a", "tok-b", "tok-c"], deadToken: "tok-unregistered", readBack: { token in
            let messages = fake.server.requests.compactMap { try? $0.json()["message"] }.filter { $0?["token"]?.stringValue == token }
            guard let message = messages.last ?? nil else { return nil }
            let data = (message["data"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
            return PushConformance.Delivered(title: message["notification"]?["title"]?.stringValue, body: message["notification"]?["body"]?.stringValue, data: data)
        }))
    }

    @Test func everyCheckRuns() {
        #expect(PushConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }
}
