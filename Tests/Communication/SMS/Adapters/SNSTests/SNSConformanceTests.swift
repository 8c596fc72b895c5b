import NimbusCore
import NimbusSMS
import NimbusSMSConformance
import NimbusTesting
import Testing
@testable import NimbusSMSSNS

/// The SMS suite against moto (signatures checked): what moto stored is read back from its state.
@Suite("SNS SMS conformance (moto)", .requires(.moto))
struct SNSConformanceTests {
    /// moto accepts any number, so a refused destination cannot be shown here.
    static let capabilities: Set<ConformanceCapability> = [.readBack]

    @Test(arguments: SMSConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ConformanceCheck<SMSConformance.Harness>) async throws {
        let driver = SNSSMSDriver(aws: try SNSTests.aws())
        try await check.run(.init(makeDriver: { driver }, from: try .alphanumericID("Nimbus"), to: try PhoneNumber("+14155550100"),
                                  readBack: { receipt in
            try await SNSTests.stored()[receipt.id].map { SMSConformance.Delivered(to: $0.0, body: $0.1) }
        }))
    }

    @Test func notSupported() {
        #expect(SMSConformance.suite.unsupported(by: Self.capabilities).map(\.needs) == [[.rejectsInvalidNumbers]])
    }
}
