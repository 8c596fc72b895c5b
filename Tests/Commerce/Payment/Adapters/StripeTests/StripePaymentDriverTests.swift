import Foundation
import NIOHTTP1
import NimbusCore
import NimbusCurrency
import NimbusHTTP
import NimbusPayment
import NimbusPaymentConformance
import NimbusPaymentStripe
import NimbusTesting
import Testing

/// One fake Stripe for the whole suite (checks share it; each works on its own payments).
enum SharedStripeFake {
    static let fake = Task { try await StripeFake.start() }
}

func stripeDriver(_ baseURL: String, key: String = StripeFake.apiKey, returnURL: String? = "https://shop.example/return",
                  secrets: [String] = []) -> StripePaymentDriver {
    StripePaymentDriver(configuration: .init(apiKey: Secret(key), baseURL: baseURL, returnURL: returnURL, webhookSecrets: secrets.map { Secret($0) }))
}

@Suite("Stripe payments", .timeLimit(.minutes(2)))
struct StripePaymentDriverTests {
    static let harness = PaymentConformance.Harness(
        makeDriver: { stripeDriver(try await SharedStripeFake.fake.value.baseURL) },
        cards: .init(success: "pm_card_visa", insufficientFunds: "pm_card_visa_chargeDeclinedInsufficientFunds",
                     threeDSecure: "pm_card_threeDSecure2Required", disputed: "pm_card_createDispute"),
        completeAction: { _, payment, succeeded in
            #expect(payment.nextActionURL?.hasSuffix("/3ds/\(payment.id)") == true, "the redirect_to_url of next_action")
            try await SharedStripeFake.fake.value.engine.completeAction(payment.id, succeeded: succeeded)
        })

    @Test("conformance", arguments: PaymentConformance.suite.checks)
    func conformance(_ check: PaymentConformance.Check) async throws {
        try await check.run(Self.harness)
        let mismatches = try await SharedStripeFake.fake.value.mismatches
        #expect(mismatches.isEmpty, "requests departing from Stripe's spec: \(mismatches)")
    }

    @Test func requestsAreFormEncodedWithTheKeyVersionAndIdempotencyKeyAndAmountsInMinorUnits() async throws {
        let fake = try await StripeFake.start()
        defer { Task { await fake.shutdown() } }
        let client = PaymentClient(driver: stripeDriver(fake.baseURL))
        let key = try IdempotencyKey("order-77")
        let payment = try await client.create(PaymentRequest(amount: try Money("1234.5", .eur), captureMethod: .manual, customerID: "cus_A1",
                                                             paymentMethodID: "pm_card_visa", confirm: true,
                                                             metadata: ["order": "77", "note": "a b&c=d"]), idempotencyKey: key)
        #expect(try payment.status == .requiresCapture && payment.amountCapturable == Money("1234.50", .eur))
        let sent = try #require(fake.server.requests.first { $0.method == "POST" })
        #expect(sent.header("authorization") == "Bearer \(StripeFake.apiKey)")
        #expect(sent.header("stripe-version") == StripeAPI.pinnedVersion)
        #expect(sent.header("idempotency-key") == "order-77")
        #expect(sent.header("content-type") == "application/x-www-form-urlencoded")
        let form = try sent.form()
        #expect(form["amount"] == "123450" && form["currency"] == "eur" && form["capture_method"] == "manual" && form["confirm"] == "true")
        #expect(form["metadata"]?["note"] == "a b&c=d" && form["metadata"]?["order"] == "77")
        #expect(form["expand"] == ["latest_charge"] && form["return_url"] == "https://shop.example/return")
        #expect(sent.bodyText.contains("metadata%5Bnote%5D=a+b%26c%3Dd"), "nested keys in brackets, WHATWG escaping: \(sent.bodyText)")

        let yen = try await client.create(PaymentRequest(amount: try Money("500", Currency("JPY")), paymentMethodID: "pm_card_visa", confirm: true))
        #expect(try yen.amountReceived == Money("500", Currency("JPY")))
        let krona = try await client.create(PaymentRequest(amount: try Money("990", Currency("ISK")), paymentMethodID: "pm_card_visa", confirm: true))
        #expect(try krona.amount == Money("990", Currency("ISK")))
        let forms = try fake.server.requests.filter { $0.method == "POST" }.map { try $0.form() }
        #expect(forms[1]["amount"] == "500" && forms[2]["amount"] == "99000", "JPY has no minor unit; Stripe sends ISK with two decimals")
        #expect(fake.mismatches.isEmpty, "\(fake.mismatches)")
    }

    @Test func aLostResponseOr5xxIsRetriedWithTheSameKeyAndChargesOnce() async throws {
        let fake = try await StripeFake.start()
        defer { Task { await fake.shutdown() } }
        let driver = stripeDriver(fake.baseURL)
        fake.failNext(.disconnect, afterProcessing: true)
        let payment = try await PaymentClient(driver: driver).create(PaymentRequest(amount: try Money("10", .usd), paymentMethodID: "pm_card_visa", confirm: true))
        #expect(payment.status == .succeeded)
        fake.failNext(.json(500, #"{"error":{"type":"api_error","message":"Something went wrong on Stripe's end."}}"#,
                            headers: [("Stripe-Should-Retry", "true")]))
        fake.failNext(.json(429, #"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}"#,
                            headers: [("Retry-After", "0")]))
        let refund = try await PaymentClient(driver: driver).refund(payment.id, amount: try Money("4", .usd))
        let posts = fake.server.requests.filter { $0.method == "POST" }
        #expect(posts.count == 5)
        #expect(posts[0].header("idempotency-key") == posts[1].header("idempotency-key"), "the create was retried with its key")
        #expect(Set(posts[2...].map { $0.header("idempotency-key") }).count == 1, "the refund kept its key across 500 and 429")
        let events = try await fake.engine.events()
        #expect(events.filter { $0.kind == .paymentSucceeded }.count == 1)
        #expect(try await driver.refunds(of: payment.id).map(\.id) == [refund.id])
    }

    @Test func errorsMapToCodesThatSayWhatHappenedAndNeverShowTheKey() async throws {
        let fake = try await StripeFake.start()
        defer { Task { await fake.shutdown() } }
        let wrong = stripeDriver(fake.baseURL, key: "sk_test_wrongKeyThatMustNotLeak")
        do {
            _ = try await wrong.payment("pi_123")
            Issue.record("a wrong key must fail")
        } catch let error as NimbusError {
            #expect(error.code == .unauthenticated)
            #expect(!error.description.contains("sk_test_wrongKeyThatMustNotLeak"))
        }
        let driver = stripeDriver(fake.baseURL)
        await #expect(throws: NimbusError.self) { _ = try await driver.payment("pi/../../v1/customers") }
        do {
            _ = try await driver.payment("pi_missing123")
            Issue.record("unknown ids are notFound")
        } catch let error as NimbusError { #expect(error.code == .notFound && error.message.contains("resource_missing")) }
        fake.failNext(.json(429, #"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}"#,
                            headers: [("Retry-After", "7")]))
        do {
            _ = try await driver.create(PaymentRequest(amount: try Money("1", .usd)), idempotencyKey: IdempotencyKey())
            Issue.record("a 429 with no retries left must fail")
        } catch let error as NimbusError {
            #expect(error.code == .resourceExhausted && error.retryAfter == .seconds(7) && error.isRetryable)
        }
        fake.failNext(.json(409, #"{"error":{"type":"idempotency_error","message":"There is currently another in-progress request using this Idempotent Key"}}"#,
                            headers: [("Stripe-Should-Retry", "true")]))
        let conflict = await #expect(throws: NimbusError.self) {
            _ = try await driver.create(PaymentRequest(amount: try Money("1", .usd)), idempotencyKey: IdempotencyKey())
        }
        #expect(conflict?.isRetryable == true, "Stripe-Should-Retry: true makes it retryable")
        await #expect(throws: NimbusError.self) { _ = try await driver.create(PaymentRequest(amount: try Money("0.001", .usd)), idempotencyKey: IdempotencyKey()) }
    }

    @Test func malformedAndUnknownAnswersAreClearErrors() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        let driver = stripeDriver(server.baseURL)
        server.route(.GET, "/v1/payment_intents/pi_html", reply: .text(200, "<html>gateway</html>"))
        server.route(.GET, "/v1/payment_intents/pi_future", reply: .json(200, #"{"object":"payment_intent","id":"pi_future","amount":100,"currency":"usd","status":"requires_magic","amount_capturable":0,"amount_received":0,"created":1,"metadata":{}}"#))
        server.route(.GET, "/v1/payment_intents/pi_money", reply: .json(200, #"{"object":"payment_intent","id":"pi_money","amount":1.5,"currency":"usd","status":"succeeded","created":1}"#))
        server.route(.GET, "/v1/payment_intents/pi_cur", reply: .json(200, #"{"object":"payment_intent","id":"pi_cur","amount":100,"currency":"zzz","status":"succeeded","created":1}"#))
        server.route(.GET, "/v1/payment_intents/pi_502", reply: .text(502, "<html>bad gateway</html>"))
        for (id, code) in [("pi_html", NimbusError.Code.internal), ("pi_future", .dataLoss), ("pi_money", .internal), ("pi_cur", .dataLoss), ("pi_502", .unavailable)] {
            do {
                _ = try await driver.payment(id)
                Issue.record("\(id) must fail")
            } catch let error as NimbusError {
                #expect(error.code == code, "\(id): \(error)")
            }
        }
    }

    @Test func customersAreCreatedReadAndListedAcrossPages() async throws {
        let fake = try await StripeFake.start()
        defer { Task { await fake.shutdown() } }
        let driver = stripeDriver(fake.baseURL)
        var created: [String] = []
        for index in 0..<5 { created.append(try await driver.createCustomer(email: "c\(index % 2)@example.com", name: "C \(index)", metadata: ["i": "\(index)"]).id) }
        var listed: [StripeCustomer] = []
        for try await customer in driver.customers(pageSize: 2) { listed.append(customer) }
        #expect(listed.map(\.id) == created.reversed(), "newest first, all pages")
        #expect(fake.server.requests.filter { $0.method == "GET" && $0.path == "/v1/customers" }.count == 3)
        #expect(fake.server.requests.last { $0.path == "/v1/customers" }?.queryItem("starting_after") == created[1])
        var evens: [String] = []
        for try await customer in driver.customers(email: "c0@example.com") { evens.append(customer.id) }
        #expect(evens == [created[4], created[2], created[0]])
        let one = try await driver.customer(created[3])
        #expect(one.email == "c1@example.com" && one.metadata == ["i": "3"])
        await #expect(throws: NimbusError.self) { _ = try await driver.customer("cus_missing1") }
        #expect(fake.mismatches.isEmpty, "\(fake.mismatches)")
    }
}
