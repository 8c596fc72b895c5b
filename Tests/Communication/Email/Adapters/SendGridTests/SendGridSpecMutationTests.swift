import NimbusCore
import NimbusEmail
import NimbusTesting
import Testing

/// The fake's spec check is live: a field the adapter sends, misspelled on the way, is refused.
@Suite(.timeLimit(.minutes(1))) struct SendGridSpecMutationTests {
    @Test func aMisspelledPersonalizationsIsRefused() async throws {
        let fake = try await SendGridFake.start()
        defer { Task { await fake.server.shutdown() } }
        let message = EmailMessage(from: try EmailAddress("shop@example.com"), to: [try EmailAddress("a@example.org")], subject: "s", text: "t")
        await fake.server.expectRefusal(renaming: "personalizations", to: "personalisations") {
            _ = try await EmailClient(driver: fake.driver()).send(message)
        }
    }
}
