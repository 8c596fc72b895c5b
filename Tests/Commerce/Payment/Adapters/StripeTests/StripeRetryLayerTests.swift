import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusTesting
import Testing

/// Retries live in one layer: the driver sends one request per call, `PaymentClient` retries.
@Suite(.timeLimit(.minutes(1))) struct StripeRetryLayerTests {
    @Test func oneFailingCallIsAsManyRequestsAsThePortableClientsAttempts() async throws {
        let fake = try await StripeFake.start()
        defer { Task { await fake.shutdown() } }
        for _ in 0..<6 {
            fake.failNext(.json(503, #"{"error":{"type":"api_error","message":"Stripe is down."}}"#, headers: [("Stripe-Should-Retry", "true")]))
        }
        let client = PaymentClient(driver: stripeDriver(fake.baseURL), retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(2)))
        let error = await #expect(throws: NimbusError.self) {
            _ = try await client.create(PaymentRequest(amount: try Money("10", .eur), paymentMethodID: "pm_card_visa", confirm: true))
        }
        #expect(error?.code == .unavailable)
        let posts = fake.server.requests.filter { $0.method == "POST" }
        #expect(posts.count == 3, "3 attempts of PaymentClient, none added by the driver (before: 3 × 3 = 9)")
        #expect(Set(posts.map { $0.header("idempotency-key") }).count == 1, "one key for every attempt")
        let direct = stripeDriver(fake.baseURL)
        await #expect(throws: NimbusError.self) { _ = try await direct.payment("pi_123") }
        #expect(fake.server.requests.count == 4, "a driver call alone is one request")
    }
}
