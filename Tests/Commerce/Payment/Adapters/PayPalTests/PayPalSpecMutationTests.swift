import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusTesting
import Testing

/// The fake's spec check is live: a field the adapter sends, misspelled on the way, is refused.
@Suite(.timeLimit(.minutes(3))) struct PayPalSpecMutationTests {
    @Test func aMisspelledPurchaseUnitsIsRefused() async throws {
        let fake = try await PayPalFake.start()
        defer { Task { await fake.shutdown() } }
        await fake.server.expectRefusal(renaming: "purchase_units", to: "purchase_unit") {
            _ = try await PaymentClient(driver: paypalDriver(fake.baseURL), retry: .none)
                .create(PaymentRequest(amount: try Money("10", .eur), paymentMethodID: "card-success", confirm: true))
        }
    }
}
