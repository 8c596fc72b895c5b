import Foundation
import NimbusCore
import NimbusCurrency
import NimbusHTTP
import NimbusPayment
import NimbusPaymentMemory
import NIOHTTP1
import NimbusTesting
import Synchronization
import Testing

/// A local Stripe: every request is checked against Stripe's OpenAPI document (the committed
/// extract) and must carry the key, the pinned `Stripe-Version` and, on POSTs, an `Idempotency-Key`;
/// answers are Stripe's documented objects (fixtures3.json examples with the fake's state filled in)
/// and Stripe's error shapes. The payment state machine behind it is the embedded engine, driven
/// through the same test cards Stripe's test mode accepts.
final class StripeFake: Sendable {
    static let spec = OpenAPIRequestChecker.fixture("stripe-payments-extract", in: .module)
    static let templates: JSONValue = {
        let url = Bundle.module.url(forResource: "stripe-fixtures-extract", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONValue.parse(try! Data(contentsOf: url))
    }()
    static let apiKey = "sk_test_nimbusFakeKey"

    let server: FakeHTTPServer
    let engine: MemoryPaymentDriver
    private struct State {
        var returnURLs: [String: String] = [:]
        var customers: [JSONValue] = []
        var faults: [(reply: FakeHTTPServer.Reply, afterProcessing: Bool)] = []
    }
    private let state = Mutex(State())

    static func start() async throws -> StripeFake {
        let fake = StripeFake(server: try await FakeHTTPServer.start(), engine: try MemoryPaymentDriver())
        fake.install()
        return fake
    }

    private init(server: FakeHTTPServer, engine: MemoryPaymentDriver) {
        self.server = server
        self.engine = engine
    }

    var baseURL: String { server.baseURL }
    /// Requests refused for departing from the spec or the headers Stripe requires (each also fails its test).
    var mismatches: [String] { server.refusals.map(\.description) }
    func shutdown() async { await server.shutdown() }

    /// Answers the next request with `reply` instead — before doing the work, or after it (the
    /// answer is lost on the way back).
    func failNext(_ reply: FakeHTTPServer.Reply, afterProcessing: Bool = false) {
        state.withLock { $0.faults.append((reply, afterProcessing)) }
    }

    // MARK: Routing

    /// Every request must match the spec extract and carry the pinned version and, on POSTs, an idempotency key.
    static func departures(_ request: FakeHTTPServer.CapturedRequest) -> [String] {
        var problems: [String]
        switch spec {
        case .success(let checker): problems = checker.check(request).map(\.description)
        case .failure(let error): problems = ["the spec extract did not load: \(error)"]
        }
        if request.header("stripe-version") != StripeFakeVersion.pinned { problems.append("Stripe-Version is \(request.header("stripe-version") ?? "missing")") }
        if request.method == "POST", request.header("idempotency-key")?.isEmpty ?? true { problems.append("POST without Idempotency-Key") }
        return problems
    }

    private func install() {
        server.refuseRequests(failing: Self.departures) { problems in
            Self.error(400, ["type": "invalid_request_error", "message": .string("Invalid request (spec): " + problems.joined(separator: "; "))])
        }
        let routes: [(NIOHTTP1Method, String, @Sendable (FakeHTTPServer.CapturedRequest, JSONValue) async throws -> FakeHTTPServer.Reply)] = [
            (.POST, "/v1/payment_intents", { [self] request, params in try await createIntent(params, key(request)) }),
            (.GET, "/v1/payment_intents/{id}", { [self] request, params in
                try await render(try await engine.payment(segment(request, 3)), params) }),
            (.POST, "/v1/payment_intents/{id}/confirm", { [self] request, params in try await confirm(segment(request, 3), params, key(request)) }),
            (.POST, "/v1/payment_intents/{id}/capture", { [self] request, params in
                let payment = try await engine.payment(segment(request, 3))
                let amount = try params["amount_to_capture"].map { try money($0, currencyOf: payment) }
                return try await render(try await engine.capture(segment(request, 3), amount: amount, idempotencyKey: key(request)), params) }),
            (.POST, "/v1/payment_intents/{id}/cancel", { [self] request, params in
                try await render(try await engine.cancel(segment(request, 3), idempotencyKey: key(request)), params) }),
            (.POST, "/v1/refunds", { [self] request, params in
                guard let id = params["payment_intent"]?.stringValue else { throw StripeFakeError.invalid("Must provide payment_intent or charge.", param: "payment_intent") }
                let payment = try await engine.payment(id)
                if payment.status == .succeeded && payment.refundable.isZero {
                    throw StripeFakeError.stripe(400, code: "charge_already_refunded", "Charge ch_\(id) has already been refunded.")
                }
                let amount = try params["amount"].map { try money($0, currencyOf: payment) }
                let refund = try await engine.refund(id, amount: amount, reason: params["reason"]?.stringValue, idempotencyKey: key(request))
                return .json(200, try refundObject(refund)) }),
            (.GET, "/v1/refunds", { [self] _, params in
                try await page(try await engine.refunds(of: params["payment_intent"]?.stringValue ?? "").reversed().map(refundObject), params, "/v1/refunds") }),
            (.GET, "/v1/disputes", { [self] _, params in
                try await page(try await engine.disputes(of: params["payment_intent"]?.stringValue ?? "").reversed().map(disputeObject), params, "/v1/disputes") }),
            (.POST, "/v1/customers", { [self] _, params in .json(200, createCustomer(params)) }),
            (.GET, "/v1/customers", { [self] _, params in
                let email = params["email"]?.stringValue
                let all = state.withLock { $0.customers }.reversed().filter { email == nil || $0["email"]?.stringValue == email }
                return try await page(Array(all), params, "/v1/customers") }),
            (.GET, "/v1/customers/{id}", { [self] request, _ in
                let id = segment(request, 3)
                guard let customer = state.withLock({ $0.customers.first { $0["id"]?.stringValue == id } }) else {
                    throw StripeFakeError.missing("customer", id)
                }
                return .json(200, customer) }),
        ]
        for (method, path, handler) in routes {
            server.route(method.nio, path) { [self] request in await handle(request, handler) }
        }
    }

    private func handle(_ request: FakeHTTPServer.CapturedRequest,
                        _ handler: @Sendable (FakeHTTPServer.CapturedRequest, JSONValue) async throws -> FakeHTTPServer.Reply) async -> FakeHTTPServer.Reply {
        guard request.header("authorization") == "Bearer \(Self.apiKey)" else {
            return Self.error(401, ["type": "invalid_request_error",
                                    "message": .string("Invalid API Key provided: \(Self.redact(request.header("authorization") ?? ""))")])
        }
        let fault = state.withLock { $0.faults.isEmpty ? nil : $0.faults.removeFirst() }
        if let fault, !fault.afterProcessing { return fault.reply }
        let params: JSONValue
        do {
            params = request.method == "GET" ? try FormDecoder.decode(request.query.map { "\(FormEncoder.escape($0.0))=\(FormEncoder.escape($0.1))" }.joined(separator: "&"))
                                             : try request.form()
        } catch {
            return Self.error(400, ["type": "invalid_request_error", "message": .string("Invalid request: \(error)")])
        }
        let reply: FakeHTTPServer.Reply
        do { reply = try await handler(request, params) } catch {
            reply = Self.errorReply(error)
        }
        if let fault, fault.afterProcessing { return fault.reply }
        return reply
    }

    // MARK: PaymentIntents

    private func createIntent(_ params: JSONValue, _ key: IdempotencyKey) async throws -> FakeHTTPServer.Reply {
        guard let amountText = params["amount"]?.stringValue, let units = Int64(amountText) else {
            throw StripeFakeError.invalid("Missing required param: amount.", param: "amount")
        }
        guard let code = params["currency"]?.stringValue, code == code.lowercased(), let currency = try? CurrencyRegistry.standard.currency(code.uppercased()) else {
            throw StripeFakeError.invalid("Invalid currency: \(params["currency"]?.stringValue ?? "").", param: "currency")
        }
        let amount = Money(Decimal(units) / pow(10, Self.scale(currency)), currency)
        let confirm = params["confirm"]?.stringValue == "true"
        let request = PaymentRequest(amount: amount, captureMethod: params["capture_method"]?.stringValue == "manual" ? .manual : .automatic,
                                     customerID: params["customer"]?.stringValue, paymentMethodID: params["payment_method"]?.stringValue,
                                     confirm: confirm, metadata: (params["metadata"]?.objectValue ?? [:]).compactMapValues(\.stringValue))
        let payment = try await engine.create(request, idempotencyKey: key)
        if let url = params["return_url"]?.stringValue { state.withLock { $0.returnURLs[payment.id] = url } }
        return try await answerConfirmation(payment, params)
    }

    private func confirm(_ id: String, _ params: JSONValue, _ key: IdempotencyKey) async throws -> FakeHTTPServer.Reply {
        if let url = params["return_url"]?.stringValue { state.withLock { $0.returnURLs[id] = url } }
        let payment = try await engine.confirm(id, paymentMethodID: params["payment_method"]?.stringValue, idempotencyKey: key)
        return try await answerConfirmation(payment, params)
    }

    /// A confirmation that ended in a decline is a 402 card_error carrying the intent, as Stripe answers.
    private func answerConfirmation(_ payment: Payment, _ params: JSONValue) async throws -> FakeHTTPServer.Reply {
        let object = try await intentObject(payment, params)
        guard let failure = payment.lastFailure, payment.status == .requiresPaymentMethod, failure.kind != .authenticationRequired else {
            return .json(200, object)
        }
        var error = Self.lastPaymentError(failure).objectValue ?? [:]
        error["payment_intent"] = object
        return Self.error(402, error)
    }

    private func render(_ payment: Payment, _ params: JSONValue) async throws -> FakeHTTPServer.Reply {
        .json(200, try await intentObject(payment, params))
    }

    private func intentObject(_ payment: Payment, _ params: JSONValue) async throws -> JSONValue {
        guard var object = Self.templates["payment_intent"]?.objectValue else { throw StripeFakeError.internalError("no payment_intent template") }
        let expand = Set((params["expand"]?.arrayValue ?? []).compactMap(\.stringValue))
        object["id"] = .string(payment.id)
        object["client_secret"] = .string("\(payment.id)_secret_fake")
        object["amount"] = try Self.units(payment.amount)
        object["amount_capturable"] = try Self.units(payment.amountCapturable)
        object["amount_received"] = try Self.units(payment.amountReceived)
        object["currency"] = .string(payment.amount.currency.code.lowercased())
        object["capture_method"] = .string(payment.captureMethod.rawValue)
        object["status"] = .string(payment.status.rawValue)
        object["customer"] = payment.customerID.map(JSONValue.string) ?? .null
        object["payment_method"] = payment.paymentMethodID.map(JSONValue.string) ?? .null
        object["metadata"] = .object(payment.metadata.mapValues(JSONValue.string))
        object["created"] = .number(payment.createdAt.timeIntervalSince1970.rounded(.down))
        object["canceled_at"] = payment.status == .canceled ? .number(Date().timeIntervalSince1970.rounded(.down)) : .null
        object["last_payment_error"] = payment.lastFailure.map(Self.lastPaymentError) ?? .null
        if payment.status == .requiresAction {
            if let returnURL = state.withLock({ $0.returnURLs[payment.id] }) {
                object["next_action"] = ["type": "redirect_to_url",
                                         "redirect_to_url": ["url": .string("\(baseURL)/3ds/\(payment.id)"), "return_url": .string(returnURL)]]
            } else {
                object["next_action"] = ["type": "use_stripe_sdk", "use_stripe_sdk": [:]]
            }
        } else {
            object["next_action"] = .null
        }
        let received = !payment.amountReceived.isZero
        if expand.contains("latest_charge") && received {
            object["latest_charge"] = ["id": .string("ch_\(payment.id)"), "object": "charge", "amount": try Self.units(payment.amountReceived),
                                       "amount_refunded": try Self.units(payment.amountRefunded), "refunded": .bool(payment.refundable.isZero)]
        } else {
            object["latest_charge"] = received ? .string("ch_\(payment.id)") : .null
        }
        return .object(object)
    }

    static func lastPaymentError(_ failure: PaymentFailure) -> JSONValue {
        let code = failure.providerCode ?? "card_declined"
        if failure.kind == .authenticationRequired {
            return ["type": "invalid_request_error", "code": "payment_intent_authentication_failure", "message": .string(failure.message)]
        }
        // Stripe: expired_card and incorrect_cvc are codes of their own; other declines are card_declined + decline_code.
        if ["expired_card", "incorrect_cvc", "processing_error"].contains(code) {
            return ["type": "card_error", "code": .string(code), "message": .string(failure.message)]
        }
        return ["type": "card_error", "code": "card_declined", "decline_code": .string(code), "message": .string(failure.message)]
    }

    private func refundObject(_ refund: Refund) throws -> JSONValue {
        guard var object = Self.templates["refund"]?.objectValue else { throw StripeFakeError.internalError("no refund template") }
        object["id"] = .string(refund.id)
        object["amount"] = try Self.units(refund.amount)
        object["currency"] = .string(refund.amount.currency.code.lowercased())
        object["payment_intent"] = .string(refund.paymentID)
        object["charge"] = .string("ch_\(refund.paymentID)")
        object["status"] = .string(refund.status.rawValue)
        object["reason"] = refund.reason.map(JSONValue.string) ?? .null
        object["created"] = .number(refund.createdAt.timeIntervalSince1970.rounded(.down))
        return .object(object)
    }

    private func disputeObject(_ dispute: Dispute) throws -> JSONValue {
        guard var object = Self.templates["dispute"]?.objectValue else { throw StripeFakeError.internalError("no dispute template") }
        object["id"] = .string(dispute.id)
        object["amount"] = try Self.units(dispute.amount)
        object["currency"] = .string(dispute.amount.currency.code.lowercased())
        object["payment_intent"] = .string(dispute.paymentID)
        object["charge"] = .string("ch_\(dispute.paymentID)")
        object["status"] = .string(dispute.status.rawValue)
        object["reason"] = .string(dispute.reason)
        object["created"] = .number(dispute.createdAt.timeIntervalSince1970.rounded(.down))
        if var details = object["evidence_details"]?.objectValue {
            details["due_by"] = dispute.evidenceDueBy.map { .number($0.timeIntervalSince1970.rounded(.down)) } ?? .null
            object["evidence_details"] = .object(details)
        }
        return .object(object)
    }

    private func createCustomer(_ params: JSONValue) -> JSONValue {
        var object = Self.templates["customer"]?.objectValue ?? [:]
        object["id"] = .string("cus_\(IDGenerator.shared.ulid())")
        object["email"] = params["email"] ?? .null
        object["name"] = params["name"] ?? .null
        object["metadata"] = params["metadata"] ?? [:]
        object["created"] = .number(Date().timeIntervalSince1970.rounded(.down))
        state.withLock { $0.customers.append(.object(object)) }
        return .object(object)
    }

    /// A Stripe list page: newest first, `limit` (default 10, at most 100) after `starting_after`.
    private func page(_ all: [JSONValue], _ params: JSONValue, _ url: String) async throws -> FakeHTTPServer.Reply {
        let limit = params["limit"]?.stringValue.flatMap(Int.init) ?? 10
        guard (1...100).contains(limit) else { throw StripeFakeError.invalid("Invalid limit: must be between 1 and 100", param: "limit") }
        var start = 0
        if let after = params["starting_after"]?.stringValue {
            guard let index = all.firstIndex(where: { $0["id"]?.stringValue == after }) else { throw StripeFakeError.missing("object", after) }
            start = index + 1
        }
        let slice = Array(all[min(start, all.count)..<min(start + limit, all.count)])
        return .json(200, ["object": "list", "url": .string(url), "has_more": .bool(start + limit < all.count), "data": .array(slice)])
    }

    // MARK: Helpers

    private func segment(_ request: FakeHTTPServer.CapturedRequest, _ index: Int) -> String {
        String(request.path.split(separator: "/")[index - 1])
    }

    private func key(_ request: FakeHTTPServer.CapturedRequest) throws -> IdempotencyKey {
        try IdempotencyKey(request.header("idempotency-key") ?? IDGenerator.shared.ulid().description)
    }

    private func money(_ value: JSONValue, currencyOf payment: Payment) throws -> Money {
        guard let text = value.stringValue, let units = Int64(text) else { throw StripeFakeError.invalid("Invalid integer: \(value)", param: "amount") }
        return Money(Decimal(units) / pow(10, Self.scale(payment.amount.currency)), payment.amount.currency)
    }

    /// Stripe's documented exceptions to ISO 4217: ISK and UGX are sent with two decimals.
    static func scale(_ currency: Currency) -> Int { ["ISK", "UGX"].contains(currency.code) ? 2 : (currency.minorUnits ?? 2) }

    static func units(_ money: Money) throws -> JSONValue {
        .number(NSDecimalNumber(decimal: money.amount * pow(10, scale(money.currency))).doubleValue)
    }

    static func redact(_ header: String) -> String {
        let key = header.replacingOccurrences(of: "Bearer ", with: "")
        return key.count > 8 ? String(key.prefix(8)) + String(repeating: "*", count: 12) + String(key.suffix(4)) : "****"
    }

    static func error(_ status: Int, _ error: [String: JSONValue], headers: [(String, String)] = []) -> FakeHTTPServer.Reply {
        .json(status, ["error": .object(error)], headers: [("Request-Id", "req_\(IDGenerator.shared.ulid())")] + headers)
    }

    /// The engine's errors, answered the way Stripe answers the same situations.
    static func errorReply(_ error: any Error) -> FakeHTTPServer.Reply {
        switch error {
        case let fake as StripeFakeError:
            switch fake {
            case .invalid(let message, let param): return Self.error(400, ["type": "invalid_request_error", "message": .string(message), "param": .string(param)])
            case .missing(let kind, let id):
                return Self.error(404, ["type": "invalid_request_error", "code": "resource_missing", "message": .string("No such \(kind): '\(id)'")])
            case .internalError(let message): return Self.error(500, ["type": "api_error", "message": .string(message)])
            case .stripe(let status, let code, let message):
                return Self.error(status, ["type": "invalid_request_error", "code": .string(code), "message": .string(message)])
            }
        case let error as NimbusError:
            switch error.code {
            case .notFound:
                return Self.error(404, ["type": "invalid_request_error", "code": "resource_missing", "param": "intent", "message": .string(error.message)])
            case .failedPrecondition:
                return Self.error(400, ["type": "invalid_request_error", "code": "payment_intent_unexpected_state", "message": .string(error.message)])
            case .invalidArgument where error.message.contains("idempotency key"):
                return Self.error(400, ["type": "idempotency_error",
                                        "message": "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than the one used in the original request."])
            case .invalidArgument where error.message.contains("at most"):
                return Self.error(400, ["type": "invalid_request_error", "code": "amount_too_large", "param": "amount", "message": .string(error.message)])
            case .invalidArgument:
                return Self.error(400, ["type": "invalid_request_error", "message": .string(error.message)])
            default:
                return Self.error(500, ["type": "api_error", "message": .string(error.message)])
            }
        default:
            return Self.error(500, ["type": "api_error", "message": .string("\(error)")])
        }
    }
}

enum StripeFakeError: Error {
    case invalid(String, param: String)
    case missing(String, String)
    case internalError(String)
    case stripe(Int, code: String, String)
}

enum StripeFakeVersion {
    /// The API version of the committed spec extract (info.version of spec3.yaml @ 63a6746).
    static let pinned = "2023-08-16"
}

/// The two methods the fake routes.
enum NIOHTTP1Method {
    case GET, POST
    var nio: NIOHTTP1.HTTPMethod { self == .GET ? .GET : .POST }
}
