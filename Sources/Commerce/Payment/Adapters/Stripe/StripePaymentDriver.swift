import AsyncHTTPClient
import Foundation
import Logging
import NimbusCore
import NimbusCurrency
import NimbusHTTP
import NIOHTTP1
import NimbusPayment

/// Payments through Stripe's PaymentIntents, Refunds and Disputes APIs.
///
/// A card decline on confirmation is not thrown: the payment comes back `requiresPaymentMethod`
/// with ``Payment/lastFailure`` set (Stripe's `card_error` with its `decline_code`), ready to be
/// confirmed with another method — the same as the other drivers.
///
/// ```swift
/// let stripe = StripePaymentDriver(configuration: .init(apiKey: Secret(key), returnURL: "https://shop.example/return",
///                                                       webhookSecrets: [Secret(endpointSecret)]))
/// let payments = PaymentClient(driver: stripe)
/// let payment = try await payments.create(PaymentRequest(amount: try Money("20.00", .usd), paymentMethodID: "pm_card_visa", confirm: true),
///                                         idempotencyKey: try IdempotencyKey("order-1042"))
/// ```
public struct StripePaymentDriver: PaymentDriver, PaymentWebhookVerifier {
    public let provider = "stripe"
    /// The underlying API client, for calls Nimbus has no typed form of.
    public let api: StripeAPI

    /// Creates a driver.
    public init(configuration: StripeAPI.Configuration, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        api = StripeAPI(configuration: configuration, httpClient: httpClient, logger: logger)
    }

    // MARK: PaymentDriver

    public func create(_ request: PaymentRequest, idempotencyKey: IdempotencyKey) async throws -> Payment {
        var fields: [String: JSONValue] = [
            "amount": .number(Double(try StripeAmount.minorUnits(request.amount))),
            "currency": .string(request.amount.currency.code.lowercased()),
            "capture_method": .string(request.captureMethod.rawValue),
        ]
        if let customer = request.customerID { fields["customer"] = .string(customer) }
        if let method = request.paymentMethodID { fields["payment_method"] = .string(method) }
        if !request.metadata.isEmpty { fields["metadata"] = .object(request.metadata.mapValues(JSONValue.string)) }
        if request.confirm {
            fields["confirm"] = true
            if let returnURL = api.configuration.returnURL { fields["return_url"] = .string(returnURL) }
        }
        return try await intent(.POST, "/v1/payment_intents", fields, idempotencyKey)
    }

    public func confirm(_ paymentID: String, paymentMethodID: String?, idempotencyKey: IdempotencyKey) async throws -> Payment {
        var fields: [String: JSONValue] = [:]
        if let method = paymentMethodID { fields["payment_method"] = .string(method) }
        if let returnURL = api.configuration.returnURL { fields["return_url"] = .string(returnURL) }
        return try await intent(.POST, "/v1/payment_intents/\(try Self.pathID(paymentID))/confirm", fields, idempotencyKey)
    }

    public func capture(_ paymentID: String, amount: Money?, idempotencyKey: IdempotencyKey) async throws -> Payment {
        var fields: [String: JSONValue] = [:]
        if let amount { fields["amount_to_capture"] = .number(Double(try StripeAmount.minorUnits(amount))) }
        return try await intent(.POST, "/v1/payment_intents/\(try Self.pathID(paymentID))/capture", fields, idempotencyKey)
    }

    public func cancel(_ paymentID: String, idempotencyKey: IdempotencyKey) async throws -> Payment {
        try await intent(.POST, "/v1/payment_intents/\(try Self.pathID(paymentID))/cancel", [:], idempotencyKey)
    }

    public func refund(_ paymentID: String, amount: Money?, reason: String?, idempotencyKey: IdempotencyKey) async throws -> Refund {
        var fields: [String: JSONValue] = ["payment_intent": .string(paymentID)]
        if let amount { fields["amount"] = .number(Double(try StripeAmount.minorUnits(amount))) }
        if let reason { fields["reason"] = .string(reason) }
        return try StripeObjects.refund(try await api.request(.POST, "/v1/refunds", parameters: .object(fields), idempotencyKey: idempotencyKey.value))
    }

    public func payment(_ paymentID: String) async throws -> Payment {
        // The refunded total lives on the charge: expanding it costs nothing extra.
        try StripeObjects.payment(try await api.request(.GET, "/v1/payment_intents/\(try Self.pathID(paymentID))", expand: ["latest_charge"]))
    }

    public func refunds(of paymentID: String) async throws -> [Refund] {
        var refunds: [Refund] = []
        for try await object in api.list("/v1/refunds", query: ["payment_intent": .string(paymentID)]) { refunds.append(try StripeObjects.refund(object)) }
        return refunds.reversed()       // Stripe lists newest first
    }

    public func disputes(of paymentID: String) async throws -> [Dispute] {
        var disputes: [Dispute] = []
        for try await object in api.list("/v1/disputes", query: ["payment_intent": .string(paymentID)]) { disputes.append(try StripeObjects.dispute(object)) }
        return disputes.reversed()
    }

    /// A PaymentIntent call; a decline answered as `card_error` with the intent attached returns that intent.
    private func intent(_ method: HTTPMethod, _ path: String, _ fields: [String: JSONValue], _ key: IdempotencyKey) async throws -> Payment {
        switch try await api.answer(method, path, parameters: .object(fields), expand: ["latest_charge"], idempotencyKey: key.value) {
        case .object(let object):
            return try StripeObjects.payment(object)
        case .failure(let stripeError, let error):
            if stripeError.type == "card_error", let intent = stripeError.paymentIntent {
                return try StripeObjects.payment(intent)
            }
            throw error
        }
    }

    /// Ids go into paths: refuse anything that would change the path.
    static func pathID(_ id: String) throws -> String {
        guard !id.isEmpty, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw NimbusError(.invalidArgument, "'\(id)' is not a Stripe id (letters, digits and underscores)")
        }
        return id
    }

    // MARK: Webhooks

    /// Verifies a webhook delivery (`Stripe-Signature: t=…,v1=…[,v1=…]`) against the configured endpoint
    /// secrets — HMAC-SHA256 over `"{t}.{body}"`, compared in constant time, `t` within the tolerance —
    /// and returns it normalized.
    public func verifyWebhook(body: [UInt8], headers: [String: String]) async throws -> PaymentEvent {
        try StripeWebhook.verify(body: body, signatureHeader: headers.header("Stripe-Signature"), secrets: api.configuration.webhookSecrets,
                                 tolerance: api.configuration.webhookTolerance)
        return try StripeObjects.event(try StripeWebhook.parse(body))
    }

    // MARK: Customers

    /// Creates a customer.
    public func createCustomer(email: String? = nil, name: String? = nil, metadata: [String: String] = [:],
                               idempotencyKey: IdempotencyKey = IdempotencyKey()) async throws -> StripeCustomer {
        var fields: [String: JSONValue] = [:]
        if let email { fields["email"] = .string(email) }
        if let name { fields["name"] = .string(name) }
        if !metadata.isEmpty { fields["metadata"] = .object(metadata.mapValues(JSONValue.string)) }
        return try StripeCustomer(try await api.request(.POST, "/v1/customers", parameters: .object(fields), idempotencyKey: idempotencyKey.value))
    }

    /// Reads a customer. - Throws: `notFound` for an unknown or deleted one.
    public func customer(_ id: String) async throws -> StripeCustomer {
        let object = try await api.request(.GET, "/v1/customers/\(try Self.pathID(id))")
        if object["deleted"]?.boolValue == true { throw NimbusError(.notFound, "stripe customer \(id) was deleted") }
        return try StripeCustomer(object)
    }

    /// Every customer (optionally with one email), fetched page by page as you read.
    public func customers(email: String? = nil, pageSize: Int = 100) -> AsyncThrowingStream<StripeCustomer, any Error> {
        let pages = api.list("/v1/customers", query: email.map { ["email": .string($0)] } ?? [:], pageSize: pageSize)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await object in pages { continuation.yield(try StripeCustomer(object)) }
                    continuation.finish()
                } catch { continuation.finish(throwing: error) }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// A Stripe customer.
public struct StripeCustomer: Sendable, Hashable {
    /// `cus_…`.
    public var id: String
    /// Email.
    public var email: String?
    /// Name.
    public var name: String?
    /// Your fields.
    public var metadata: [String: String]
    /// When it was created.
    public var createdAt: Date

    init(_ object: JSONValue) throws {
        guard object["object"]?.stringValue == "customer", let id = object["id"]?.stringValue, let created = object["created"]?.numberValue else {
            throw NimbusError(.internal, "stripe answered something that is not a customer: \(String(describing: object).prefix(200))")
        }
        self.id = id
        email = object["email"]?.stringValue
        name = object["name"]?.stringValue
        metadata = StripeObjects.metadata(object)
        createdAt = Date(timeIntervalSince1970: created)
    }
}

extension URLOpenerRegistry where Resource == any PaymentDriver {
    /// Adds `stripe://` (api.stripe.com) and `stripe://HOST[:PORT]` (a local server: plain HTTP on
    /// loopback). The secret key comes from `STRIPE_SECRET_KEY` in `environment`, never from the URL;
    /// `STRIPE_RETURN_URL` is where 3-D Secure returns.
    public func withStripe(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("stripe") { url in
            try url.options.validate(known: [], for: "stripe://")
            guard let key = environment["STRIPE_SECRET_KEY"], !key.isEmpty else {
                throw NimbusError(.unauthenticated, "set STRIPE_SECRET_KEY to your Stripe secret key (sk_test_… for test mode)")
            }
            return StripePaymentDriver(configuration: .init(apiKey: Secret(key), baseURL: url.serviceBaseURL(default: "https://api.stripe.com"),
                                                            returnURL: environment["STRIPE_RETURN_URL"]))
        }
        return copy
    }
}
