import NimbusCore
import NimbusSMS
import NimbusTesting
import Testing
@testable import NimbusSMSTwilio

/// The fake's spec check is live: a field the adapter sends, misspelled on the way, is refused.
@Suite(.timeLimit(.minutes(1))) struct TwilioSpecMutationTests {
    @Test func aMisspelledBodyIsRefused() async throws {
        let fake = try await TwilioFake()
        defer { Task { await fake.shutdown() } }
        let driver = TwilioSMSDriver(configuration: try TwilioConfiguration(accountSID: TwilioFake.accountSID, credentials: .authToken(Secret(TwilioFake.authToken)),
                                                                             baseURL: fake.baseURL))
        await fake.server.expectRefusal(renaming: "Body", to: "Bodies") {
            _ = try await SMSClient(driver: driver, configuration: .init(retry: .none))
                .send(SMSMessage(from: .number(try PhoneNumber("+15005550006")), to: try PhoneNumber("+14155550100"), body: "hello"))
        }
    }
}
