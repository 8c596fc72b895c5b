import NimbusCore
import NimbusSMS
import NimbusSMSConformance
import NimbusTesting
import Testing
@testable import NimbusSMSTwilio

/// The SMS suite against Twilio's spec-checked fake (Twilio's test numbers included).
@Suite("Twilio SMS conformance", .timeLimit(.minutes(1)))
struct TwilioConformanceTests {
    static let capabilities: Set<ConformanceCapability> = [.readBack, .rejectsInvalidNumbers]

    @Test(arguments: SMSConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<SMSConformance.Harness>) async throws {
        let fake = try await TwilioFake()
        defer { Task { await fake.shutdown() } }
        let driver = TwilioSMSDriver(configuration: try TwilioConfiguration(accountSID: TwilioFake.accountSID, credentials: .authToken(Secret(TwilioFake.authToken)),
                                                                             baseURL: fake.baseURL))
        try await check.run(.init(makeDriver: { driver }, from: .number(try PhoneNumber("+15005550006")), to: try PhoneNumber("+14155550100"),
                                  invalidNumber: try PhoneNumber("+15005550001"),
                                  readBack: { receipt in
            fake.stored(receipt.id).map { SMSConformance.Delivered(to: $0["to"]?.stringValue ?? "", body: $0["body"]?.stringValue ?? "") }
        }))
    }

    @Test func everyCheckRuns() {
        #expect(SMSConformance.suite.unsupported(by: Self.capabilities).isEmpty)
    }
}
