import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusCurrency
import NimbusHTTP

/// A Stripe API client: form-encoded requests with nested parameters, a pinned `Stripe-Version`,
/// `Idempotency-Key` on every POST, `expand[]`, auto-paging lists, and Stripe's errors mapped to
/// `NimbusError` codes. ``StripePaymentDriver`` is built on it; use it directly for any endpoint
/// Nimbus has no typed call for.
///
/// ```swift
/// let stripe = StripeAPI(configuration: .init(apiKey: Secret(env["STRIPE_SECRET_KEY"]!)))
/// let charge = try await stripe.request(.GET, "/v1/charges/ch_123", expand: ["balance_transaction"])
/// for try await customer in stripe.list("/v1/customers", query: ["email": "ada@example.com"]) { print(customer["id"]) }
/// ```
public struct StripeAPI: Sendable {
    /// The API version this adapter is written and tested against (the spec in its tests).
    public static let pinnedVersion = "2023-08-16"

    /// Settings.
    public struct Configuration: Sendable {
        /// The secret or restricted key (`sk_test_…`, `rk_live_…`). Never logged.
        public var apiKey: Secret<String>
        /// `https://api.stripe.com`, or a fake's address in tests.
        public var baseURL: String
        /// Sent as `Stripe-Version` on every request, so an account upgrade cannot change the answers.
        public var apiVersion: String
        /// A connected account to act on behalf of (`Stripe-Account`, Connect).
        public var stripeAccount: String?
        /// Where the payer returns after a redirect (3-D Secure); sent as `return_url` on confirmations.
        /// Without it Stripe answers `use_stripe_sdk` actions that need Stripe.js, and ``Payment/nextActionURL`` stays empty.
        public var returnURL: String?
        /// The secrets of your webhook endpoints (`whsec_…`; several during a rotation).
        public var webhookSecrets: [Secret<String>]
        /// How old a webhook's signed timestamp may be (Stripe's libraries: 300 s).
        public var webhookTolerance: Duration
        /// The time limit of one attempt (Stripe's libraries: 80 s).
        public var timeout: Duration
        /// Larger answers fail with `resourceExhausted`.
        public var maxResponseSize: Int

        /// Creates settings.
        public init(apiKey: Secret<String>, baseURL: String = "https://api.stripe.com", apiVersion: String = StripeAPI.pinnedVersion,
                    stripeAccount: String? = nil, returnURL: String? = nil, webhookSecrets: [Secret<String>] = [],
                    webhookTolerance: Duration = .seconds(300),
                    timeout: Duration = .seconds(80), maxResponseSize: Int = 16 * 1024 * 1024) {
            self.apiKey = apiKey
            self.baseURL = baseURL
            self.apiVersion = apiVersion
            self.stripeAccount = stripeAccount
            self.returnURL = returnURL
            self.webhookSecrets = webhookSecrets
            self.webhookTolerance = webhookTolerance
            self.timeout = timeout
            self.maxResponseSize = maxResponseSize
        }
    }

    /// The settings.
    public let configuration: Configuration
    let http: NimbusHTTPClient

    /// Creates a client over the shared transport (TLS verification on), or over `httpClient`.
    ///
    /// Each call is one request: retries belong to the portable layer (`PaymentClient`, with one
    /// idempotency key per call), which reads Stripe's `Stripe-Should-Retry` and `Retry-After`
    /// from the error (`isRetryable`, `retryAfter`).
    public init(configuration: Configuration, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.configuration = configuration
        var headers: HTTPHeaders = ["Stripe-Version": configuration.apiVersion, "User-Agent": "Nimbus/\(NimbusVersion.current)"]
        if let account = configuration.stripeAccount { headers.add(name: "Stripe-Account", value: account) }
        http = NimbusHTTPClient(configuration: .init(
            service: "stripe", baseURL: configuration.baseURL, defaultHeaders: headers, auth: .bearer(configuration.apiKey),
            retry: .none, generateIdempotencyKeys: true, timeout: configuration.timeout,
            maxResponseSize: configuration.maxResponseSize), httpClient: httpClient, logger: logger)
    }

    /// The outcome of a call that Stripe answered: the object, or Stripe's error.
    enum Answer: Sendable {
        case object(JSONValue)
        case failure(StripeError, NimbusError)
    }

    /// Sends one request. POST parameters are form-encoded (`metadata[k]=v`, `items[0][price]=…`);
    /// GET parameters go in the query. `expand` adds `expand[]` entries.
    /// - Throws: `NimbusError` mapped from Stripe's error (see ``StripeError``).
    public func request(_ method: HTTPMethod, _ path: String, parameters: JSONValue = [:], expand: [String] = [],
                        idempotencyKey: String? = nil) async throws -> JSONValue {
        switch try await answer(method, path, parameters: parameters, expand: expand, idempotencyKey: idempotencyKey) {
        case .object(let value): return value
        case .failure(_, let error): throw error
        }
    }

    func answer(_ method: HTTPMethod, _ path: String, parameters: JSONValue = [:], expand: [String] = [],
                idempotencyKey: String? = nil) async throws -> Answer {
        var fields = parameters.objectValue ?? [:]
        if !expand.isEmpty { fields["expand"] = .array(expand.map(JSONValue.string)) }
        let encoded = try FormEncoder().encode(JSONValue.object(fields))
        let operation = "\(method.rawValue) \(Self.template(path))"
        var request: NimbusHTTPRequest
        if method == .GET || method == .DELETE {
            request = NimbusHTTPRequest(method, encoded.isEmpty ? path : "\(path)?\(encoded)", operation: operation)
        } else {
            request = NimbusHTTPRequest(method, path, operation: operation)
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = ByteBuffer(string: encoded)
            request.idempotencyKey = idempotencyKey
        }
        let response = try await http.send(request)
        let body = try await response.collect(upTo: configuration.maxResponseSize)
        if response.isSuccess {
            do { return .object(try JSONValue.parse(Array(body.readableBytesView))) } catch {
                throw NimbusError(.internal, "stripe \(operation) answered \(response.status.code) with a body that is not JSON: "
                                  + String(decoding: body.readableBytesView.prefix(200), as: UTF8.self), underlying: error)
            }
        }
        let stripeError = StripeError(response: response, body: body)
        return .failure(stripeError, stripeError.nimbusError(operation: operation, response: response))
    }

    /// Every object of a list endpoint, fetching pages (`limit`, `starting_after`) as the caller reads.
    public func list(_ path: String, query: JSONValue = [:], pageSize: Int = 100, expand: [String] = []) -> AsyncThrowingStream<JSONValue, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var startingAfter: String?
                    while true {
                        var fields = query.objectValue ?? [:]
                        fields["limit"] = .number(Double(min(max(pageSize, 1), 100)))
                        if let startingAfter { fields["starting_after"] = .string(startingAfter) }
                        let page = try await request(.GET, path, parameters: .object(fields), expand: expand.map { "data.\($0)" })
                        guard let data = page["data"]?.arrayValue, let hasMore = page["has_more"]?.boolValue else {
                            throw NimbusError(.internal, "stripe GET \(path) did not answer a list object (data, has_more)")
                        }
                        for object in data { continuation.yield(object) }
                        guard hasMore, let last = data.last?["id"]?.stringValue else { break }
                        startingAfter = last
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// `/v1/payment_intents/pi_3Mt…/capture` → `/v1/payment_intents/{id}/capture`, for metrics and logs:
    /// resource names are lowercase words, ids carry digits or capitals.
    static func template(_ path: String) -> String {
        "/" + path.split(separator: "/").map { segment in
            segment.contains(where: { $0.isNumber || $0.isUppercase }) && segment != "v1" ? "{id}" : String(segment)
        }.joined(separator: "/")
    }
}

/// Stripe's error object (`{"error": {"type", "code", "decline_code", "message", "param", ...}}`).
public struct StripeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `api_error`, `card_error`, `idempotency_error`, `invalid_request_error`; `rate_limit_error` and `authentication_error` in older answers.
    public var type: String
    /// The specific code (`card_declined`, `resource_missing`, `payment_intent_unexpected_state`).
    public var code: String?
    /// For card declines, the issuer's reason (`insufficient_funds`).
    public var declineCode: String?
    /// Stripe's message.
    public var message: String
    /// The parameter at fault.
    public var param: String?
    /// The PaymentIntent the error is about, when Stripe sends it (declines on confirmation).
    public var paymentIntent: JSONValue?
    /// The HTTP status.
    public var status: Int
    /// `Request-Id`, for Stripe support.
    public var requestID: String?

    init(response: NimbusHTTPResponse, body: ByteBuffer) {
        status = Int(response.status.code)
        requestID = response.headers.first(name: "Request-Id")
        let parsed = try? JSONValue.parse(Array(body.readableBytesView))
        if let error = parsed?["error"], error.objectValue != nil {
            type = error["type"]?.stringValue ?? "api_error"
            code = error["code"]?.stringValue
            declineCode = error["decline_code"]?.stringValue
            message = error["message"]?.stringValue ?? "no message"
            param = error["param"]?.stringValue
            paymentIntent = error["payment_intent"].flatMap { $0.objectValue == nil ? nil : $0 }
        } else {
            type = "api_error"
            message = "HTTP \(status) without a Stripe error object: " + String(decoding: body.readableBytesView.prefix(200), as: UTF8.self)
        }
    }

    public var description: String {
        var text = "\(type)"
        if let code { text += "/\(code)" }
        if let declineCode { text += " (\(declineCode))" }
        text += ": \(message)"
        if let param { text += " [param \(param)]" }
        if let requestID { text += " [request \(requestID)]" }
        return text
    }

    /// The portable code for this error.
    func nimbusError(operation: String, response: NimbusHTTPResponse) -> NimbusError {
        let code: NimbusError.Code
        var retryable: Bool?
        switch (status, type, self.code) {
        case (_, "idempotency_error", _):
            code = .invalidArgument
        case (409, _, _):
            code = .unavailable          // another request with the same key is in flight
        case (401, _, _): code = .unauthenticated
        case (403, _, _): code = .permissionDenied
        case (404, _, _), (_, _, "resource_missing"): code = .notFound
        case (429, _, _), (_, _, "rate_limit"): code = .resourceExhausted
        case (402, _, _), (_, "card_error", _): code = .failedPrecondition
        case (_, _, "payment_intent_unexpected_state"), (_, _, "charge_already_captured"), (_, _, "charge_expired_for_capture"):
            code = .failedPrecondition
        case (_, _, "charge_already_refunded"), (_, _, "amount_too_large"), (_, _, "amount_too_small"):
            code = .invalidArgument      // more than is left to refund or capture
        case (400, _, _): code = .invalidArgument
        case (500..., _, _): code = .unavailable
        default: code = HTTPStatusMapping.code(for: response.status)
        }
        // Stripe says outright whether a retry can help.
        if let advice = response.headers.first(name: "Stripe-Should-Retry") { retryable = advice == "true" }
        return NimbusError(code, "stripe \(operation): \(self)", underlying: self, retryAfter: response.retryAfter(), retryable: retryable)
    }
}
