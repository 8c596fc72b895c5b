import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusTesting
import Testing

/// Retries live in one layer: the driver sends one request per call, `PaymentClient` retries.
@Suite(.timeLimit(.minutes(3))) struct PayPalRetryLayerTests {
    @Test func oneFailingCallIsAsManyRequestsAsThePortableClientsAttempts() async throws {
        let fake = try await PayPalFake.start()
        defer { Task { await fake.shutdown() } }
        for _ in 0..<6 {
            fake.failNext(.json(503, #"{"name":"SERVICE_UNAVAILABLE","message":"Service Unavailable.","debug_id":"90957fca61718"}"#))
        }
        let client = PaymentClient(driver: paypalDriver(fake.baseURL), retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2)))
        let error = await #expect(throws: NimbusError.self) {
            _ = try await client.create(PaymentRequest(amount: try Money("10", .eur), paymentMethodID: "card-success", confirm: true))
        }
        #expect(error?.code == .unavailable)
        let orders = fake.server.requests.filter { $0.path.hasPrefix("/v2/") }
        #expect(orders.count == 3, "3 attempts of PaymentClient, none added by the driver (before: 3 × 3 = 9)")
        #expect(Set(orders.map { $0.header("paypal-request-id") }).count == 1, "one PayPal-Request-Id for every attempt")
    }
}
