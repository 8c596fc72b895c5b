import Foundation
import NIOHTTP1
import NimbusCore
import NimbusCurrency
import NimbusHTTP
import NimbusPayment
import NimbusPaymentConformance
import NimbusPaymentPayPal
import NimbusTesting
import Testing

enum SharedPayPalFake {
    static let fake = Task { try await PayPalFake.start() }
}

func paypalDriver(_ baseURL: String, secret: String = PayPalFake.clientSecret) -> PayPalPaymentDriver {
    PayPalPaymentDriver(configuration: .init(clientID: PayPalFake.clientID, clientSecret: Secret(secret), environment: .custom(baseURL),
                                             webhookID: PayPalFake.webhookID, returnURL: "https://shop.example/paypal/return",
                                             cancelURL: "https://shop.example/paypal/cancel"))
}

@Suite("PayPal payments", .timeLimit(.minutes(3)))
struct PayPalPaymentDriverTests {
    static let harness = PaymentConformance.Harness(
        makeDriver: { paypalDriver(try await SharedPayPalFake.fake.value.baseURL) },
        cards: .init(success: "card-success", insufficientFunds: "card-insufficient-funds", threeDSecure: "card-3ds", disputed: "card-disputed"),
        completeAction: { _, payment, succeeded in
            #expect(payment.nextActionURL?.contains("flow=3ds") == true, "the payer-action link")
            try await SharedPayPalFake.fake.value.completeAction(payment.id, succeeded: succeeded)
        },
        capabilities: [])   // PayPal: closed after a decline, orders expire, a reused key answers the first result

    @Test("conformance", arguments: PaymentConformance.suite.checks)
    func conformance(_ check: PaymentConformance.Check) async throws {
        try await check.run(Self.harness)
        let mismatches = try await SharedPayPalFake.fake.value.mismatches
        #expect(mismatches.isEmpty, "requests departing from PayPal's spec: \(mismatches)")
    }

    @Test func ordersCarryAmountsIntentMetadataAndTheRequestIDAndTheTokenIsReused() async throws {
        let fake = try await PayPalFake.start()
        defer { Task { await fake.shutdown() } }
        let client = PaymentClient(driver: paypalDriver(fake.baseURL))
        let key = try IdempotencyKey("order-88")
        let payment = try await client.create(PaymentRequest(amount: try Money("1234.5", .eur), captureMethod: .manual, paymentMethodID: "card-success",
                                                             confirm: true, metadata: ["order": "88"]), idempotencyKey: key)
        #expect(try payment.status == .requiresCapture && payment.amountCapturable == Money("1234.50", .eur) && payment.metadata == ["order": "88"])
        let posts = fake.server.requests.filter { $0.method == "POST" && $0.path.hasPrefix("/v2/") }
        #expect(posts.map(\.path) == ["/v2/checkout/orders", "/v2/checkout/orders/\(payment.id)/authorize"])
        #expect(posts.map { $0.header("paypal-request-id") } == ["order-88:create", "order-88:authorize"])
        #expect(posts.allSatisfy { $0.header("prefer") == "return=representation" && $0.header("authorization")?.hasPrefix("Bearer A21AA") == true })
        let body = try posts[0].json()
        #expect(body["intent"] == "AUTHORIZE" && body["purchase_units"]?.arrayValue?.first?["amount"] == ["currency_code": "EUR", "value": "1234.50"])
        #expect(body["payment_source"]?["card"]?["vault_id"] == "card-success")
        #expect(body["payment_source"]?["card"]?["experience_context"]?["return_url"] == "https://shop.example/paypal/return")

        let yen = try await client.create(PaymentRequest(amount: try Money("500", Currency("JPY")), paymentMethodID: "card-success", confirm: true))
        #expect(try yen.amountReceived == Money("500", Currency("JPY")))
        let forint = try await client.create(PaymentRequest(amount: try Money("1500", Currency("HUF")), paymentMethodID: "card-success", confirm: true))
        #expect(forint.status == .succeeded)
        await #expect(throws: NimbusError.self) {
            _ = try await client.create(PaymentRequest(amount: try Money("1500.50", Currency("HUF")), paymentMethodID: "card-success"))
        }
        let values = try fake.server.requests.filter { $0.path == "/v2/checkout/orders" && $0.method == "POST" }
            .map { try $0.json()["purchase_units"]?.arrayValue?.first?["amount"]?["value"]?.stringValue }
        #expect(values == ["1234.50", "500", "1500"], "HUF and JPY have no decimals at PayPal")
        #expect(fake.tokenRequests == 1, "one token for every call")
        await #expect(throws: NimbusError.self) {
            _ = try await client.create(PaymentRequest(amount: try Money("1", .eur), metadata: ["long": String(repeating: "x", count: 200)]))
        }
        #expect(fake.mismatches.isEmpty, "\(fake.mismatches)")
    }

    @Test func aRevokedTokenIsReplacedOnceAndBadCredentialsSaySo() async throws {
        let fake = try await PayPalFake.start()
        defer { Task { await fake.shutdown() } }
        let driver = paypalDriver(fake.baseURL)
        let payment = try await driver.create(PaymentRequest(amount: try Money("3", .usd)), idempotencyKey: IdempotencyKey())
        fake.expireTokens()
        #expect(try await driver.payment(payment.id).id == payment.id)
        #expect(fake.tokenRequests == 2)
        do {
            _ = try await paypalDriver(fake.baseURL, secret: "wrong-secret-value").payment(payment.id)
            Issue.record("wrong credentials must fail")
        } catch let error as NimbusError {
            #expect(error.code == .unauthenticated && error.message.contains("invalid_client"))
            #expect(!error.description.contains("wrong-secret-value"))
        }
    }

    @Test func lostAnswersAndServerErrorsAreRetriedWithTheSameRequestID() async throws {
        let fake = try await PayPalFake.start()
        defer { Task { await fake.shutdown() } }
        let driver = paypalDriver(fake.baseURL)
        fake.failNext(.disconnect, afterProcessing: true)
        let payment = try await PaymentClient(driver: driver).create(PaymentRequest(amount: try Money("10", .usd), paymentMethodID: "card-success", confirm: true))
        #expect(payment.status == .succeeded)
        fake.failNext(.json(503, #"{"name":"SERVICE_UNAVAILABLE","message":"Service Unavailable.","debug_id":"x1"}"#, headers: [("Retry-After", "0")]), pathSuffix: "/refund")
        fake.failNext(.json(429, #"{"name":"RATE_LIMIT_REACHED","message":"Too many requests. Blocked due to rate limiting.","debug_id":"x2"}"#, headers: [("Retry-After", "0")]), pathSuffix: "/refund")
        _ = try await PaymentClient(driver: driver).refund(payment.id, amount: try Money("4", .usd))
        #expect(try await driver.refunds(of: payment.id).count == 1)
        let creates = fake.server.requests.filter { $0.method == "POST" && $0.path == "/v2/checkout/orders" }
        #expect(creates.count == 2 && creates[0].header("paypal-request-id") == creates[1].header("paypal-request-id"))
        let refunds = fake.server.requests.filter { $0.path.hasSuffix("/refund") }
        #expect(refunds.count == 3 && Set(refunds.map { $0.header("paypal-request-id") }).count == 1, "\(fake.server.requests.map { "\($0.method) \($0.path)" })")
    }

    @Test func paypalErrorsAndOddAnswersAreMappedClearly() async throws {
        let fake = try await PayPalFake.start()
        defer { Task { await fake.shutdown() } }
        let driver = paypalDriver(fake.baseURL)
        func failure(_ body: () async throws -> Void) async -> NimbusError? {
            do { try await body(); return nil } catch { return error as? NimbusError }
        }
        let missing = await failure { _ = try await driver.payment("5O19MISSING0001") }
        #expect(missing?.code == .notFound && missing?.message.contains("debug_id") == true)
        #expect(await failure { _ = try await driver.payment("../v1/oauth2/token") }?.code == .invalidArgument)
        let unknownCard = await failure { _ = try await driver.create(PaymentRequest(amount: try Money("1", .usd), paymentMethodID: "card-nope"), idempotencyKey: IdempotencyKey()) }
        #expect(unknownCard?.code == .invalidArgument && unknownCard?.message.contains("INVALID_RESOURCE_ID") == true)
        #expect(await failure { _ = try await driver.disputes(of: "5O19X") }?.code == .notFound, "disputes are read through the Customer Disputes API")
        fake.failNext(.json(200, #"{"id":"5O19ODD","status":"MYSTERY","intent":"CAPTURE","purchase_units":[{"amount":{"currency_code":"USD","value":"1.00"}}]}"#))
        #expect(await failure { _ = try await driver.payment("5O19ODD") }?.code == .dataLoss)
        fake.failNext(.json(200, #"{"id":"5O19ODD","status":"CREATED","intent":"CAPTURE","purchase_units":[{"amount":{"currency_code":"USD","value":"one"}}]}"#))
        #expect(await failure { _ = try await driver.payment("5O19ODD") }?.code == .internal)
        fake.failNext(.text(200, "<html>maintenance</html>"))
        #expect(await failure { _ = try await driver.payment("5O19ODD") }?.code == .internal)
    }

    @Test func webhooksAreVerifiedByPayPalAndTimeChecked() async throws {
        let fake = try await PayPalFake.start()
        defer { Task { await fake.shutdown() } }
        let driver = paypalDriver(fake.baseURL)
        let event: JSONValue = ["id": "WH-7Y7254563A4550640-11V2185806837105M", "event_version": "1.0", "create_time": "2024-05-01T12:00:00.123Z",
                                "resource_type": "capture", "event_type": "PAYMENT.CAPTURE.COMPLETED", "summary": "Payment completed for $ 7.5 USD",
                                "resource": ["id": "3C679366HH908993F", "status": "COMPLETED", "amount": ["currency_code": "USD", "value": "7.50"],
                                             "custom_id": #"{"order":"5"}"#, "supplementary_data": ["related_ids": ["order_id": "5O190127TN364715T"]],
                                             "create_time": "2024-05-01T12:00:00Z"]]
        let (body, headers) = fake.deliver(event)
        let verified = try await driver.verifyWebhook(body: body, headers: headers)
        #expect(verified.kind == .paymentSucceeded && verified.payment?.id == "5O190127TN364715T")
        #expect(try verified.payment?.amountReceived == Money("7.50", .usd) && verified.payment?.metadata == ["order": "5"])
        let sent = try #require(fake.server.requests.last { $0.path == "/v1/notifications/verify-webhook-signature" })
        #expect(sent.bodyText.contains(String(decoding: body, as: UTF8.self)), "the event is sent back byte for byte")

        func refusal(_ body: [UInt8], _ headers: [String: String]) async -> NimbusError? {
            do { _ = try await driver.verifyWebhook(body: body, headers: headers); return nil } catch { return error as? NimbusError }
        }
        var tampered = headers
        tampered["PAYPAL-TRANSMISSION-SIG"] = "Zm9yZ2Vk"
        #expect(await refusal(body, tampered)?.code == .unauthenticated)
        #expect(await refusal(Array(body.dropLast()) + Array(#","extra":1}"#.utf8), headers)?.code == .unauthenticated, "a changed event")
        var missing = headers
        missing["PAYPAL-CERT-URL"] = nil
        #expect(await refusal(body, missing)?.code == .unauthenticated)
        let old = fake.deliver(event, at: Date().addingTimeInterval(-600))
        #expect(await refusal(old.body, old.headers)?.message.contains("tolerance") == true)
        let refundEvent: JSONValue = ["id": "WH-2", "event_type": "PAYMENT.CAPTURE.REFUNDED", "create_time": "2024-05-02T12:00:00Z",
                                      "resource": ["id": "1JU08902781691411", "status": "COMPLETED", "amount": ["currency_code": "USD", "value": "2.00"],
                                                   "supplementary_data": ["related_ids": ["order_id": "5O190127TN364715T"]]]]
        let refund = fake.deliver(refundEvent)
        let refundVerified = try await driver.verifyWebhook(body: refund.body, headers: refund.headers)
        #expect(refundVerified.kind == .refundUpdated && refundVerified.refund?.status == .succeeded && refundVerified.refund?.paymentID == "5O190127TN364715T")
        #expect(fake.mismatches.isEmpty, "\(fake.mismatches)")
    }
}
