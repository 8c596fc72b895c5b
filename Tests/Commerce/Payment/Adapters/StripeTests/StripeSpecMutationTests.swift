import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusTesting
import Testing

/// The fake's spec check is live: a field the adapter sends, misspelled on the way, is refused.
@Suite(.timeLimit(.minutes(1))) struct StripeSpecMutationTests {
    @Test func aMisspelledCaptureMethodIsRefused() async throws {
        let fake = try await StripeFake.start()
        defer { Task { await fake.shutdown() } }
        await fake.server.expectRefusal(renaming: "capture_method", to: "capture_methods") {
            _ = try await PaymentClient(driver: stripeDriver(fake.baseURL), retry: .none)
                .create(PaymentRequest(amount: try Money("10", .eur), captureMethod: .manual, paymentMethodID: "pm_card_visa", confirm: true))
        }
    }
}
