import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusCurrency
import NimbusHTTP
import NimbusPayment

/// Payments through PayPal's Orders v2 and Payments v2 APIs.
///
/// How PayPal's orders map onto the portable states:
///
/// | PayPal | Payment |
/// |---|---|
/// | `CREATED` (the payer has not approved; ``Payment/nextActionURL`` is the approve link) | `requiresPaymentMethod` |
/// | `PAYER_ACTION_REQUIRED` (3-D Secure, a wallet page; the `payer-action` link) | `requiresAction` |
/// | `APPROVED` | `requiresConfirmation` — ``confirm`` captures (or authorizes, for manual capture) |
/// | `APPROVED` after failed 3-D Secure (liability shift `NO`, authentication `N`/`R`) | `requiresPaymentMethod` |
/// | `COMPLETED` with an authorization `CREATED` | `requiresCapture` |
/// | `COMPLETED` with a capture `COMPLETED` (or refunded) | `succeeded` |
/// | `COMPLETED` with a capture `PENDING` | `processing` |
/// | `COMPLETED` with a capture `DECLINED`/`FAILED` | `requiresPaymentMethod`, with the processor's reason |
/// | `VOIDED`, or an authorization `VOIDED` | `canceled` |
///
/// A payment method is a vaulted card (`payment_source.card.vault_id`). Every mutating call sends
/// `PayPal-Request-Id` — the call's idempotency key, with a suffix per step when one call makes two
/// requests — so a retried call is answered from PayPal's record. PayPal cannot cancel an order
/// before it is authorized (unapproved orders expire); ``cancel`` voids authorizations.
/// Disputes live in PayPal's separate Disputes API, which this driver does not call.
///
/// ```swift
/// let paypal = PayPalPaymentDriver(configuration: .init(clientID: id, clientSecret: Secret(secret), environment: .sandbox,
///                                                       webhookID: "WH-…", returnURL: "https://shop.example/paypal/return"))
/// let payment = try await PaymentClient(driver: paypal).create(PaymentRequest(amount: try Money("30.00", .eur)))
/// // send the payer to payment.nextActionURL; on return: try await payments.confirm(payment.id)
/// ```
public struct PayPalPaymentDriver: PaymentDriver, PaymentWebhookVerifier {
    /// Which PayPal.
    public enum Environment: Sendable {
        case sandbox, live
        /// A fake's address in tests.
        case custom(String)
        var baseURL: String {
            switch self {
            case .sandbox: "https://api-m.sandbox.paypal.com"
            case .live: "https://api-m.paypal.com"
            case .custom(let url): url
            }
        }
    }

    /// Settings.
    public struct Configuration: Sendable {
        /// The REST app's client id.
        public var clientID: String
        /// The REST app's secret. Never logged.
        public var clientSecret: Secret<String>
        /// Sandbox, live, or a fake.
        public var environment: Environment
        /// The id of your webhook (`WH-…`), needed to verify deliveries.
        public var webhookID: String?
        /// How far a delivery's `PAYPAL-TRANSMISSION-TIME` may be from now.
        public var webhookTolerance: Duration
        /// Where the payer returns after approving or 3-D Secure.
        public var returnURL: String?
        /// Where the payer lands when they cancel on PayPal.
        public var cancelURL: String?
        /// The time limit of one attempt.
        public var timeout: Duration

        /// Creates settings.
        public init(clientID: String, clientSecret: Secret<String>, environment: Environment = .sandbox, webhookID: String? = nil,
                    webhookTolerance: Duration = .seconds(300), returnURL: String? = nil, cancelURL: String? = nil,
                    timeout: Duration = .seconds(60)) {
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.environment = environment
            self.webhookID = webhookID
            self.webhookTolerance = webhookTolerance
            self.returnURL = returnURL
            self.cancelURL = cancelURL
            self.timeout = timeout
        }
    }

    public let provider = "paypal"
    /// The settings.
    public let configuration: Configuration
    /// The OAuth2 access tokens (cached, renewed five minutes before they expire).
    public let tokens: AccessTokenCache
    private let http: NimbusHTTPClient

    /// Creates a driver. Each call is one request (the token fetch aside): retries belong to
    /// `PaymentClient`, which sends the same `PayPal-Request-Id` on each attempt.
    public init(configuration: Configuration, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.configuration = configuration
        let base = configuration.environment.baseURL
        let tokenHTTP = NimbusHTTPClient(configuration: .init(service: "paypal", baseURL: base, retry: .none,
                                                              timeout: configuration.timeout), httpClient: httpClient, logger: logger)
        let grant = OAuth2ClientCredentials(tokenURL: base + "/v1/oauth2/token", clientID: configuration.clientID,
                                            clientSecret: configuration.clientSecret, http: tokenHTTP)
        let tokens = AccessTokenCache(refreshAhead: .seconds(300)) { try await grant.fetchToken() }
        self.tokens = tokens
        http = NimbusHTTPClient(configuration: .init(
            service: "paypal", baseURL: base, defaultHeaders: ["Accept": "application/json", "User-Agent": "Nimbus/\(NimbusVersion.current)"],
            auth: tokens.bearerAuth, retry: .none, idempotencyKeyHeader: "PayPal-Request-Id", timeout: configuration.timeout),
            httpClient: httpClient, logger: logger)
    }

    // MARK: PaymentDriver

    public func create(_ request: PaymentRequest, idempotencyKey: IdempotencyKey) async throws -> Payment {
        var unit: [String: JSONValue] = ["amount": ["currency_code": .string(request.amount.currency.code), "value": .string(try PayPalAmount.value(request.amount))]]
        if !request.metadata.isEmpty { unit["custom_id"] = .string(try PayPalMetadata.encode(request.metadata)) }
        var body: [String: JSONValue] = ["intent": .string(request.captureMethod == .automatic ? "CAPTURE" : "AUTHORIZE"), "purchase_units": [.object(unit)]]
        if let method = request.paymentMethodID { body["payment_source"] = paymentSource(method) }
        let order = try await call(.POST, "/v2/checkout/orders", body: .object(body), key: PayPalKeys.step(idempotencyKey, "create"))
        var payment = try PayPalOrders.payment(order)
        if request.confirm, payment.status == .requiresConfirmation {
            payment = try await complete(order, key: idempotencyKey)
        }
        return payment
    }

    public func confirm(_ paymentID: String, paymentMethodID: String?, idempotencyKey: IdempotencyKey) async throws -> Payment {
        var order = try await self.order(paymentID)
        let current = try PayPalOrders.payment(order)
        if current.status == .requiresPaymentMethod, current.lastFailure != nil, order["status"]?.stringValue == "COMPLETED" {
            throw NimbusError(.failedPrecondition, "PayPal order \(paymentID) was declined and PayPal does not attempt a completed order again; create a new payment")
        }
        guard [.requiresPaymentMethod, .requiresConfirmation].contains(current.status) else {
            throw NimbusError(.failedPrecondition, "cannot confirm a payment that is \(current.status.rawValue); only requires_payment_method or requires_confirmation payments are confirmed")
        }
        if let method = paymentMethodID {
            order = try await call(.POST, "/v2/checkout/orders/\(try Self.pathID(paymentID))/confirm-payment-source",
                                   body: ["payment_source": paymentSource(method)], key: nil)
        } else if current.status == .requiresPaymentMethod {
            throw NimbusError(.invalidArgument, "PayPal order \(paymentID) has no approved payment source: send the payer to \(current.nextActionURL ?? "the approve link") or pass a vaulted card")
        }
        guard try PayPalOrders.payment(order).status == .requiresConfirmation else { return try PayPalOrders.payment(order) }
        return try await complete(order, key: idempotencyKey)
    }

    /// Captures (automatic) or authorizes (manual) an approved order.
    private func complete(_ order: JSONValue, key: IdempotencyKey) async throws -> Payment {
        let id = try Self.pathID(order["id"]?.stringValue ?? "")
        let step = order["intent"]?.stringValue == "AUTHORIZE" ? "authorize" : "capture"
        let done = try await call(.POST, "/v2/checkout/orders/\(id)/\(step)", body: [:], key: PayPalKeys.step(key, step))
        return try PayPalOrders.payment(done)
    }

    public func capture(_ paymentID: String, amount: Money?, idempotencyKey: IdempotencyKey) async throws -> Payment {
        let order = try await self.order(paymentID)
        let payment = try PayPalOrders.payment(order)
        let value = try payment.checkCapture(amount)
        guard let authorization = PayPalOrders.openAuthorization(order) else {
            throw NimbusError(.failedPrecondition, "PayPal order \(paymentID) has no open authorization to capture")
        }
        _ = try await call(.POST, "/v2/payments/authorizations/\(try Self.pathID(authorization))/capture",
                           body: ["amount": ["currency_code": .string(value.currency.code), "value": .string(try PayPalAmount.value(value))], "final_capture": true],
                           key: idempotencyKey.paypalValue)
        return try await self.payment(paymentID)
    }

    public func cancel(_ paymentID: String, idempotencyKey: IdempotencyKey) async throws -> Payment {
        let order = try await self.order(paymentID)
        let payment = try PayPalOrders.payment(order)
        try payment.status.checkTransition(to: .canceled, operation: "cancel")
        guard let authorization = PayPalOrders.openAuthorization(order) else {
            throw NimbusError(.unimplemented, "PayPal cannot cancel order \(paymentID) before it is authorized; an order that is never captured expires on its own — drop it")
        }
        _ = try await call(.POST, "/v2/payments/authorizations/\(try Self.pathID(authorization))/void", body: nil, key: idempotencyKey.paypalValue)
        return try await self.payment(paymentID)
    }

    public func refund(_ paymentID: String, amount: Money?, reason: String?, idempotencyKey: IdempotencyKey) async throws -> Refund {
        let order = try await self.order(paymentID)
        let value = try PayPalOrders.payment(order).checkRefund(amount)
        guard let capture = PayPalOrders.refundableCapture(order) else {
            throw NimbusError(.failedPrecondition, "PayPal order \(paymentID) has no completed capture to refund")
        }
        var body: [String: JSONValue] = ["amount": ["currency_code": .string(value.currency.code), "value": .string(try PayPalAmount.value(value))]]
        if let reason { body["note_to_payer"] = .string(String(reason.prefix(255))) }
        let refund = try await call(.POST, "/v2/payments/captures/\(try Self.pathID(capture))/refund", body: .object(body), key: idempotencyKey.paypalValue)
        return try PayPalOrders.refund(refund, paymentID: paymentID, fallbackAmount: value, reason: reason)
    }

    public func payment(_ paymentID: String) async throws -> Payment {
        try PayPalOrders.payment(try await order(paymentID))
    }

    public func refunds(of paymentID: String) async throws -> [Refund] {
        let order = try await order(paymentID)
        return try PayPalOrders.payments(order)["refunds"]?.arrayValue?.map {
            try PayPalOrders.refund($0, paymentID: paymentID, fallbackAmount: nil, reason: nil)
        }.sorted { $0.createdAt < $1.createdAt } ?? []
    }

    /// The disputes opened on the order's captures, through PayPal's Customer Disputes API
    /// (`GET /v1/customer/disputes?disputed_transaction_id=…`, every page); a resolved dispute is read
    /// in full for its outcome (won or lost).
    public func disputes(of paymentID: String) async throws -> [Dispute] {
        let order = try await order(paymentID)
        let captures = PayPalOrders.payments(order)["captures"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
        var result: [Dispute] = []
        for capture in captures {
            var token: String?
            repeat {
                var query = "disputed_transaction_id=\(FormEncoder.escape(capture))&page_size=50"
                if let token { query += "&next_page_token=\(FormEncoder.escape(token))" }
                let page = try await call(.GET, "/v1/customer/disputes?" + query, body: nil, key: nil)
                for item in page["items"]?.arrayValue ?? [] {
                    let full = item["status"]?.stringValue == "RESOLVED" ? try await call(.GET, "/v1/customer/disputes/\(try Self.pathID(item["dispute_id"]?.stringValue ?? ""))", body: nil, key: nil) : item
                    result.append(try PayPalDisputes.dispute(full, paymentID: paymentID))
                }
                token = PayPalOrders.link(page, "next").flatMap { URLComponents(string: $0)?.queryItems?.first { $0.name == "next_page_token" }?.value }
            } while token != nil
        }
        return result.sorted { $0.createdAt < $1.createdAt }
    }

    /// One dispute, in full. Its `paymentID` is the disputed capture's id (a dispute does not name the order).
    public func dispute(_ disputeID: String) async throws -> Dispute {
        let full = try await call(.GET, "/v1/customer/disputes/\(try Self.pathID(disputeID))", body: nil, key: nil)
        let capture = full["disputed_transactions"]?.arrayValue?.first?["seller_transaction_id"]?.stringValue ?? ""
        return try PayPalDisputes.dispute(full, paymentID: capture)
    }

    /// Accepts the buyer's claim: PayPal refunds the buyer and closes the dispute in their favour.
    public func acceptClaim(_ disputeID: String, note: String) async throws {
        var form = MultipartFormData()
        form.append("input", ByteBuffer(string: JSONValue.object(["note": .string(note)]).description), filename: "input.json", contentType: "application/json")
        try await multipart("/v1/customer/disputes/\(try Self.pathID(disputeID))/accept-claim", form)
    }

    /// Answers a dispute with evidence (a tracking number, a refund already made, a note…) and the
    /// documents that back it (PDF, JPG, PNG, GIF; PayPal takes up to 10 MB per file).
    public func provideEvidence(_ disputeID: String, _ evidence: [PayPalDisputeEvidence], documents: [(name: String, contentType: String, bytes: [UInt8])] = []) async throws {
        guard !evidence.isEmpty else { throw NimbusError(.invalidArgument, "provide at least one piece of evidence") }
        var form = MultipartFormData()
        let input: JSONValue = ["evidences": .array(evidence.map(\.json))]
        form.append("input", ByteBuffer(string: input.description), filename: "input.json", contentType: "application/json")
        for document in documents {
            guard document.bytes.count <= 10 * 1024 * 1024 else { throw NimbusError(.invalidArgument, "\(document.name) is over PayPal's 10 MB limit per file") }
            form.append("evidence-file", ByteBuffer(bytes: document.bytes), filename: document.name, contentType: document.contentType)
        }
        try await multipart("/v1/customer/disputes/\(try Self.pathID(disputeID))/provide-evidence", form)
    }

    private func multipart(_ path: String, _ form: MultipartFormData) async throws {
        var request = NimbusHTTPRequest(.POST, path, operation: "POST \(PayPalErrors.template(path))")
        request.headers.add(name: "Content-Type", value: form.contentType)
        request.body = form.encode()
        _ = try await send(request)
    }

    // MARK: Wire

    private func order(_ id: String) async throws -> JSONValue {
        try await call(.GET, "/v2/checkout/orders/\(try Self.pathID(id))", body: nil, key: nil)
    }

    private func paymentSource(_ method: String) -> JSONValue {
        var card: [String: JSONValue] = ["vault_id": .string(method)]
        var context: [String: JSONValue] = [:]
        if let url = configuration.returnURL { context["return_url"] = .string(url) }
        if let url = configuration.cancelURL { context["cancel_url"] = .string(url) }
        if !context.isEmpty { card["experience_context"] = .object(context) }
        return ["card": .object(card)]
    }

    /// One API call: JSON in and out, `Prefer: return=representation`, PayPal's errors mapped. A 401
    /// with a cached token drops the token and tries once more with a new one.
    func call(_ method: HTTPMethod, _ path: String, body: JSONValue?, key: String?) async throws -> JSONValue {
        var request = NimbusHTTPRequest(method, path, operation: "\(method.rawValue) \(PayPalErrors.template(path))")
        request.headers.add(name: "Prefer", value: "return=representation")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = ByteBuffer(string: body.description)
        }
        request.idempotencyKey = key
        let (status, data) = try await send(request)
        if data.readableBytes == 0 { return [:] }          // 204 No Content (void)
        do { return try JSONValue.parse(Array(data.readableBytesView)) } catch {
            throw NimbusError(.internal, "paypal \(request.operation) answered \(status.code) with a body that is not JSON: "
                              + String(decoding: data.readableBytesView.prefix(200), as: UTF8.self), underlying: error)
        }
    }

    /// Sends once, renewing the access token once after a 401; PayPal's errors mapped.
    private func send(_ request: NimbusHTTPRequest) async throws -> (HTTPResponseStatus, ByteBuffer) {
        var response = try await http.send(request)
        if response.status == .unauthorized {
            _ = try? await response.collect(upTo: 64 * 1024)
            await tokens.invalidate()
            response = try await http.send(request)
        }
        let data = try await response.collect(upTo: 8 * 1024 * 1024)
        guard response.isSuccess else { throw PayPalErrors.map(response, data, operation: request.operation) }
        return (response.status, data)
    }

    static func pathID(_ id: String) throws -> String {
        guard !id.isEmpty, id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw NimbusError(.invalidArgument, "'\(id)' is not a PayPal id (letters, digits, - and _)")
        }
        return id
    }

    // MARK: Webhooks

    /// Verifies a delivery with PayPal's `verify-webhook-signature` call (the `PAYPAL-*` transmission
    /// headers, your webhook id, and the event exactly as received), after checking locally that the
    /// transmission time is within the tolerance. Returns the event normalized.
    public func verifyWebhook(body: [UInt8], headers: [String: String]) async throws -> PaymentEvent {
        guard let webhookID = configuration.webhookID else {
            throw NimbusError(.failedPrecondition, "no PayPal webhook id configured; set Configuration.webhookID to the id of your webhook (WH-…)")
        }
        var fields: [String: String] = [:]
        for (name, field) in [("PAYPAL-AUTH-ALGO", "auth_algo"), ("PAYPAL-CERT-URL", "cert_url"), ("PAYPAL-TRANSMISSION-ID", "transmission_id"),
                              ("PAYPAL-TRANSMISSION-SIG", "transmission_sig"), ("PAYPAL-TRANSMISSION-TIME", "transmission_time")] {
            guard let value = headers.header(name), !value.isEmpty else {
                throw NimbusError(.unauthenticated, "the webhook has no \(name) header; is this request from PayPal?")
            }
            fields[field] = value
        }
        guard let sent = PayPalWebhookTime.parse(fields["transmission_time"] ?? "") else {
            throw NimbusError(.unauthenticated, "PAYPAL-TRANSMISSION-TIME '\(fields["transmission_time"] ?? "")' is not a date")
        }
        let age = abs(Date().timeIntervalSince(sent))
        guard age <= configuration.webhookTolerance.nimbusSeconds else {
            throw NimbusError(.unauthenticated, "webhook transmission time is \(Int(age))s away from now, over the \(configuration.webhookTolerance.nimbusFormatted) tolerance (replayed or clock skew)")
        }
        let event = try PayPalWebhookTime.parseBody(body)
        // The event goes back byte for byte: a re-serialized event can fail PayPal's check.
        var payload = "{"
        for (field, value) in fields.sorted(by: { $0.key < $1.key }) { payload += "\(JSONValue.string(field)):\(JSONValue.string(value))," }
        payload += "\"webhook_id\":\(JSONValue.string(webhookID)),\"webhook_event\":" + String(decoding: body, as: UTF8.self) + "}"
        var request = NimbusHTTPRequest(.POST, "/v1/notifications/verify-webhook-signature", operation: "POST /v1/notifications/verify-webhook-signature")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = ByteBuffer(string: payload)
        request.safeToRetry = true
        let response = try await http.send(request)
        let data = try await response.collect(upTo: 64 * 1024)
        guard response.isSuccess else { throw PayPalErrors.map(response, data, operation: request.operation) }
        let verdict = (try? JSONValue.parse(Array(data.readableBytesView)))?["verification_status"]?.stringValue
        guard verdict == "SUCCESS" else {
            throw NimbusError(.unauthenticated, "PayPal did not verify the webhook signature (verification_status \(verdict ?? "missing"))")
        }
        return try PayPalOrders.event(event)
    }
}

extension IdempotencyKey {
    /// The key as `PayPal-Request-Id` takes it (at most 108 characters; longer keys are hashed).
    var paypalValue: String { PayPalKeys.fit(value) }
}

/// `PayPal-Request-Id` values.
enum PayPalKeys {
    static let maxLength = 108

    static func fit(_ value: String) -> String {
        value.count <= maxLength ? value : SHA256.hash(data: Data(value.utf8)).hexString
    }

    /// The key of one step of a call that makes several requests (create, then capture).
    static func step(_ key: IdempotencyKey, _ step: String) -> String {
        fit(key.value + ":" + step)
    }
}

/// PayPal amounts: decimal strings; HUF, JPY and TWD take no decimals at PayPal.
enum PayPalAmount {
    static let wholeOnly: Set<String> = ["HUF", "JPY", "TWD"]

    static func scale(_ currency: Currency) -> Int { wholeOnly.contains(currency.code) ? 0 : (currency.minorUnits ?? 2) }

    static func value(_ money: Money) throws -> String {
        let scale = scale(money.currency)
        guard money.amount.rounded(scale: scale, .down) == money.amount else {
            throw NimbusError(.invalidArgument, "\(money) has more decimals than PayPal takes for \(money.currency.code) (\(scale)); round it first")
        }
        let formatter = NumberFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.numberStyle = .decimal
        formatter.usesGroupingSeparator = false
        formatter.minimumFractionDigits = scale
        formatter.maximumFractionDigits = scale
        guard let text = formatter.string(from: NSDecimalNumber(decimal: money.amount)) else {
            throw NimbusError(.invalidArgument, "cannot write \(money) as a PayPal amount")
        }
        return text
    }

    static func money(_ object: JSONValue?, field: String) throws -> Money {
        guard let code = object?["currency_code"]?.stringValue, let value = object?["value"]?.stringValue else {
            throw NimbusError(.internal, "paypal answered without \(field) (currency_code and value)")
        }
        guard let currency = try? CurrencyRegistry.standard.currency(code) else {
            throw NimbusError(.dataLoss, "paypal answered \(field) in '\(code)', a currency the registry does not know; register it with CurrencyRegistry.standard.register")
        }
        do { return try Money(value, currency) } catch {
            throw NimbusError(.internal, "paypal answered \(field) '\(value)', which is not a decimal amount", underlying: error)
        }
    }
}

/// `metadata` travels in the purchase unit's `custom_id` (127 characters), as compact JSON.
enum PayPalMetadata {
    static func encode(_ metadata: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: try encoder.encode(metadata), as: UTF8.self)
        guard text.count <= 127 else {
            throw NimbusError(.invalidArgument, "PayPal keeps 127 characters of your fields (custom_id); this metadata takes \(text.count) — keep an order id and look the rest up")
        }
        return text
    }

    static func decode(_ customID: String?) -> [String: String] {
        guard let customID else { return [:] }
        if let data = customID.data(using: .utf8), let fields = try? JSONDecoder().decode([String: String].self, from: data) { return fields }
        return ["custom_id": customID]           // set by another integration
    }
}

extension URLOpenerRegistry where Resource == any PaymentDriver {
    /// Adds `paypal://sandbox`, `paypal://live` and `paypal://HOST[:PORT]` (a local server: plain HTTP
    /// on loopback). Credentials come from `PAYPAL_CLIENT_ID` and `PAYPAL_CLIENT_SECRET` in
    /// `environment`, never from the URL; `PAYPAL_RETURN_URL` and `PAYPAL_CANCEL_URL` are where the payer lands.
    public func withPayPal(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("paypal") { url in
            try url.options.validate(known: [], for: "paypal://")
            guard let id = environment["PAYPAL_CLIENT_ID"], let secret = environment["PAYPAL_CLIENT_SECRET"], !id.isEmpty, !secret.isEmpty else {
                throw NimbusError(.unauthenticated, "set PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET to your REST app's credentials")
            }
            let choice: PayPalPaymentDriver.Environment = switch url.host ?? "" {
            case "", "sandbox": .sandbox
            case "live": .live
            default: .custom(url.serviceBaseURL(default: ""))
            }
            return PayPalPaymentDriver(configuration: .init(clientID: id, clientSecret: Secret(secret), environment: choice,
                                                            returnURL: environment["PAYPAL_RETURN_URL"], cancelURL: environment["PAYPAL_CANCEL_URL"]))
        }
        return copy
    }
}
