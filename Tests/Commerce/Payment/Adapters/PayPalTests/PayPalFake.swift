import Foundation
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

/// A local PayPal: OAuth2 client credentials, Orders v2, Payments v2 and verify-webhook-signature.
/// Every request is checked against PayPal's published OpenAPI documents (committed extracts);
/// `PayPal-Request-Id` repeats are answered from a record, as PayPal does; errors have PayPal's
/// shape (`name`, `message`, `debug_id`, `details[].issue`).
///
/// Vaulted test cards: `card-success`, `card-insufficient-funds` (processor response 5120),
/// `card-3ds` (payer action first), `card-disputed` (succeeds; the buyer then opens a dispute on the capture).
final class PayPalFake: Sendable {
    static let clientID = "AXnimbusClientID"
    static let clientSecret = "ENnimbusClientSecret"
    static let webhookID = "WH-NIMBUS-1"
    static let specs: [(prefix: String, checker: Result<OpenAPIRequestChecker, any Error>)] = [
        ("/v2/checkout/", OpenAPIRequestChecker.fixture("paypal-orders-extract", in: .module)),
        ("/v2/payments/", OpenAPIRequestChecker.fixture("paypal-payments-extract", in: .module)),
        ("/v1/notifications/", OpenAPIRequestChecker.fixture("paypal-webhooks-extract", in: .module)),
        ("/v1/customer/disputes", OpenAPIRequestChecker.fixture("paypal-disputes-extract", in: .module)),
    ]

    /// A dispute the fake keeps: PayPal's detail shape is rendered from it.
    struct DisputeRecord {
        var id: String
        var captureID: String
        var amount: Decimal
        var currency: String
        var status = "WAITING_FOR_SELLER_RESPONSE"
        var outcome: String?
        var evidences: [JSONValue] = []
        var created = Date()
    }

    struct Transaction {
        var id: String
        var status: String
        var amount: Decimal
        var processorCode: String?
        var created = Date()
        var note: String?
    }

    struct Order {
        var id: String
        var intent: String
        var status: String
        var amount: Decimal
        var currency: String
        var customID: String?
        var vaultID: String?
        var authentication: JSONValue?
        var captures: [Transaction] = []
        var authorizations: [Transaction] = []
        var refunds: [Transaction] = []
        var created = Date()
    }

    struct Delivery { var body: String; var headers: [String: String] }

    private struct State {
        var tokens: Set<String> = []
        var tokenRequests = 0
        var orders: [String: Order] = [:]
        var recorded: [String: FakeHTTPServer.Reply] = [:]
        var deliveries: [Delivery] = []
        var faults: [(reply: FakeHTTPServer.Reply, afterProcessing: Bool, pathSuffix: String?)] = []
        var counter = 0
        var disputes: [DisputeRecord] = []
    }

    let server: FakeHTTPServer
    private let state = Mutex(State())

    static func start() async throws -> PayPalFake {
        let fake = PayPalFake(server: try await FakeHTTPServer.start())
        fake.install()
        return fake
    }

    private init(server: FakeHTTPServer) { self.server = server }

    var baseURL: String { server.baseURL }
    /// Requests refused for departing from PayPal's specs (each also fails its test).
    var mismatches: [String] { server.refusals.map(\.description) }
    var tokenRequests: Int { state.withLock { $0.tokenRequests } }
    func shutdown() async { await server.shutdown() }

    /// Revokes every issued token (the next API call gets a 401).
    func expireTokens() { state.withLock { $0.tokens.removeAll() } }

    /// Answers the next request (whose path ends with `pathSuffix`, if given) with `reply` instead —
    /// before doing the work, or after it (the answer is lost on the way back).
    func failNext(_ reply: FakeHTTPServer.Reply, afterProcessing: Bool = false, pathSuffix: String? = nil) {
        state.withLock { $0.faults.append((reply, afterProcessing, pathSuffix)) }
    }

    /// Plays the payer finishing 3-D Secure: the order becomes APPROVED with PayPal's authentication result.
    func completeAction(_ orderID: String, succeeded: Bool) throws {
        try state.withLock { state in
            guard var order = state.orders[orderID], order.status == "PAYER_ACTION_REQUIRED" else {
                throw NimbusError(.failedPrecondition, "order \(orderID) waits for no payer action")
            }
            order.status = "APPROVED"
            order.authentication = ["liability_shift": succeeded ? "POSSIBLE" : "NO",
                                    "three_d_secure": ["enrollment_status": "Y", "authentication_status": succeeded ? "Y" : "N"]]
            state.orders[orderID] = order
        }
    }

    /// Signs and records a webhook delivery, as PayPal would send it.
    func deliver(_ event: JSONValue, at time: Date = Date()) -> (body: [UInt8], headers: [String: String]) {
        let body = event.description
        let transmission = "tx-\(IDGenerator.shared.ulid())"
        let headers = ["PAYPAL-AUTH-ALGO": "SHA256withRSA", "PAYPAL-CERT-URL": "\(baseURL)/v1/notifications/certs/CERT-1",
                       "PAYPAL-TRANSMISSION-ID": transmission, "PAYPAL-TRANSMISSION-SIG": Data("sig-\(transmission)".utf8).base64EncodedString(),
                       "PAYPAL-TRANSMISSION-TIME": ISO8601DateFormatter().string(from: time)]
        state.withLock { $0.deliveries.append(Delivery(body: body, headers: headers)) }
        return (Array(body.utf8), headers)
    }

    // MARK: Serving

    /// How a request departs from PayPal's documents: the API calls from the spec that covers their
    /// path, the token call from the documented client-credentials form.
    static func departures(_ request: FakeHTTPServer.CapturedRequest) -> [String] {
        if request.path == "/v1/oauth2/token" {
            var problems: [String] = []
            if request.bodyText != "grant_type=client_credentials" { problems.append("token body is '\(request.bodyText)'") }
            if request.header("content-type") != "application/x-www-form-urlencoded" { problems.append("token content type is \(request.header("content-type") ?? "missing")") }
            return problems
        }
        switch specs.first(where: { request.path.hasPrefix($0.prefix) })?.checker {
        case .success(let spec)?:
            // verify-webhook-signature carries the event exactly as PayPal delivered it (PayPal's guide:
            // send it back unchanged); events carry fields the published Event schema does not list,
            // so only its other members are held to the schema.
            let opaque = request.path == "/v1/notifications/verify-webhook-signature"
            return spec.check(request).filter { !(opaque && $0.location.hasPrefix("body.webhook_event.") && $0.message.hasPrefix("is not a property")) }
                .map(\.description)
        case .failure(let error)?: return ["the spec extract for \(request.path) did not load: \(error)"]
        case nil: return ["no spec covers \(request.path)"]
        }
    }

    private func install() {
        server.refuseRequests(failing: Self.departures) { problems in
            Self.error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.", issue: "INVALID_PARAMETER_SYNTAX",
                       description: problems.joined(separator: "; "))
        }
        server.route(.POST, "/v1/oauth2/token") { [self] request in token(request) }
        server.route(.GET, "/v1/customer/disputes") { [self] request in authorized(request) ?? listDisputes(request) }
        server.route(.GET, "/v1/customer/disputes/{id}") { [self] request in authorized(request) ?? disputeDetail(segment(request, 4)) }
        server.route(.POST, "/v1/customer/disputes/{id}/accept-claim") { [self] request in authorized(request) ?? acceptClaim(segment(request, 4), request) }
        server.route(.POST, "/v1/customer/disputes/{id}/provide-evidence") { [self] request in authorized(request) ?? provideEvidence(segment(request, 4), request) }
        let routes: [(HTTPMethod, String, @Sendable (FakeHTTPServer.CapturedRequest, JSONValue) throws -> FakeHTTPServer.Reply)] = [
            (.POST, "/v2/checkout/orders", { [self] _, body in try createOrder(body) }),
            (.GET, "/v2/checkout/orders/{id}", { [self] request, _ in try orderReply(segment(request, 4)) }),
            (.POST, "/v2/checkout/orders/{id}/confirm-payment-source", { [self] request, body in try confirmSource(segment(request, 4), body) }),
            (.POST, "/v2/checkout/orders/{id}/capture", { [self] request, _ in try complete(segment(request, 4), "CAPTURE") }),
            (.POST, "/v2/checkout/orders/{id}/authorize", { [self] request, _ in try complete(segment(request, 4), "AUTHORIZE") }),
            (.POST, "/v2/payments/authorizations/{id}/capture", { [self] request, body in try captureAuthorization(segment(request, 4), body) }),
            (.POST, "/v2/payments/authorizations/{id}/void", { [self] request, _ in try void(segment(request, 4)) }),
            (.POST, "/v2/payments/captures/{id}/refund", { [self] request, body in try refund(segment(request, 4), body) }),
            (.POST, "/v1/notifications/verify-webhook-signature", { [self] _, body in verify(body) }),
        ]
        for (method, path, handler) in routes {
            server.route(method, path) { [self] request in handle(request, handler) }
        }
    }

    // MARK: Disputes (Customer Disputes API v1)

    /// `nil` when the request carries a token the fake issued; PayPal's 401 otherwise.
    private func authorized(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply? {
        let token = request.header("authorization").map { String($0.dropFirst("Bearer ".count)) } ?? ""
        return state.withLock { $0.tokens.contains(token) } ? nil
            : .json(401, #"{"name":"AUTHENTICATION_FAILURE","message":"Authentication failed due to invalid authentication credentials or a missing Authorization header."}"#)
    }

    private func disputeObject(_ dispute: DisputeRecord, detail: Bool) -> JSONValue {
        var object: [String: JSONValue] = [
            "dispute_id": .string(dispute.id), "create_time": Self.time(dispute.created), "update_time": Self.time(dispute.created),
            "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED", "status": .string(dispute.status), "dispute_state": .string(dispute.status == "RESOLVED" ? "RESOLVED" : "REQUIRED_ACTION"),
            "dispute_amount": ["currency_code": .string(dispute.currency), "value": .string("\(dispute.amount)")],
            "links": [["href": .string("\(baseURL)/v1/customer/disputes/\(dispute.id)"), "rel": "self", "method": "GET"]],
            "seller_response_due_date": Self.time(dispute.created.addingTimeInterval(10 * 86_400)),
        ]
        if detail {
            object["disputed_transactions"] = [["seller_transaction_id": .string(dispute.captureID)]]
            if let outcome = dispute.outcome { object["dispute_outcome"] = ["outcome_code": .string(outcome)] }
            if !dispute.evidences.isEmpty { object["evidences"] = .array(dispute.evidences) }
        }
        return .object(object)
    }

    /// Lists a capture's disputes, a page at a time (`page_size`, `next_page_token`), as PayPal does.
    private func listDisputes(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let capture = request.queryItem("disputed_transaction_id")
        // Pages of at most two, whatever page_size asks (a server may page shorter), so clients must follow `next`.
        let size = max(1, min(2, Int(request.queryItem("page_size") ?? "10") ?? 10))
        let start = Int(request.queryItem("next_page_token") ?? "0") ?? 0
        let all = state.withLock { $0.disputes }.filter { capture == nil || $0.captureID == capture }
        let page = all.dropFirst(start).prefix(size)
        var body: [String: JSONValue] = ["items": .array(page.map { disputeObject($0, detail: false) })]
        if start + size < all.count {
            body["links"] = [["href": .string("\(baseURL)/v1/customer/disputes?disputed_transaction_id=\(capture ?? "")&page_size=\(size)&next_page_token=\(start + size)"),
                              "rel": "next", "method": "GET"]]
        }
        return .json(200, .object(body))
    }

    private func disputeDetail(_ id: String) -> FakeHTTPServer.Reply {
        guard let dispute = state.withLock({ $0.disputes.first { $0.id == id } }) else { return Self.error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.", issue: "INVALID_RESOURCE_ID") }
        return .json(200, disputeObject(dispute, detail: true))
    }

    /// Opens a dispute on the capture of `paymentID` (the buyer's side, for tests).
    func openDispute(onPayment paymentID: String) throws -> String {
        try state.withLock { state in
            guard let order = state.orders[paymentID], let capture = order.captures.first else { throw PayPalFakeError.notFound(paymentID) }
            state.counter += 1
            let record = DisputeRecord(id: "PP-D-\(state.counter)\(Int.random(in: 1000...9999))", captureID: capture.id, amount: capture.amount, currency: order.currency)
            state.disputes.append(record)
            return record.id
        }
    }

    /// The `input` part of a multipart dispute action, parsed.
    private func input(_ request: FakeHTTPServer.CapturedRequest) throws -> (JSONValue, [MultipartFormData.Part]) {
        let form = try MultipartFormData.parse(request.body, contentType: request.header("content-type") ?? "")
        guard let part = form.parts.first(where: { $0.name == "input" }) else { throw NimbusError(.invalidArgument, "no input part") }
        return (try JSONValue.parse(Data(part.body.readableBytesView)), form.parts.filter { $0.name != "input" })
    }

    private func acceptClaim(_ id: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard let (input, _) = try? input(request), input["note"]?.stringValue?.isEmpty == false else {
            return Self.error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.", issue: "MISSING_REQUIRED_PARAMETER")
        }
        return state.withLock { state in
            guard let index = state.disputes.firstIndex(where: { $0.id == id }) else { return Self.error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.", issue: "INVALID_RESOURCE_ID") }
            guard state.disputes[index].status != "RESOLVED" else { return Self.error(422, "UNPROCESSABLE_ENTITY", "The requested action could not be performed.", issue: "DISPUTE_ALREADY_RESOLVED") }
            state.disputes[index].status = "RESOLVED"
            state.disputes[index].outcome = "RESOLVED_BUYER_FAVOUR"
            return .json(200, ["links": [["href": .string("\(baseURL)/v1/customer/disputes/\(id)"), "rel": "self", "method": "GET"]]])
        }
    }

    private func provideEvidence(_ id: String, _ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard let (input, files) = try? input(request), let evidences = input["evidences"]?.arrayValue, !evidences.isEmpty,
              evidences.allSatisfy({ $0["evidence_type"]?.stringValue != nil }), files.allSatisfy({ $0.name == "evidence-file" && $0.filename != nil }) else {
            return Self.error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.", issue: "INVALID_EVIDENCE")
        }
        return state.withLock { state in
            guard let index = state.disputes.firstIndex(where: { $0.id == id }) else { return Self.error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.", issue: "INVALID_RESOURCE_ID") }
            guard state.disputes[index].status == "WAITING_FOR_SELLER_RESPONSE" else {
                return Self.error(422, "UNPROCESSABLE_ENTITY", "The requested action could not be performed.", issue: "NOT_AVAILABLE_TO_SUBMIT_EVIDENCE")
            }
            state.disputes[index].status = "UNDER_REVIEW"
            state.disputes[index].evidences = evidences
            return .json(200, ["links": [["href": .string("\(baseURL)/v1/customer/disputes/\(id)"), "rel": "self", "method": "GET"]]])
        }
    }

    private func token(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let expected = "Basic " + Data("\(Self.clientID):\(Self.clientSecret)".utf8).base64EncodedString()
        guard request.header("authorization") == expected else {
            return .json(401, #"{"error":"invalid_client","error_description":"Client Authentication failed"}"#)
        }
        let token = state.withLock { state -> String in
            state.tokenRequests += 1
            let token = "A21AA\(IDGenerator.shared.ulid())"
            state.tokens.insert(token)
            return token
        }
        return .json(200, ["scope": "https://uri.paypal.com/services/payments/payment", "access_token": .string(token), "token_type": "Bearer",
                           "app_id": "APP-80W284485P519543T", "expires_in": 32400, "nonce": "2024-01-01T00:00:00Z-nonce"])
    }

    private func handle(_ request: FakeHTTPServer.CapturedRequest,
                        _ handler: @Sendable (FakeHTTPServer.CapturedRequest, JSONValue) throws -> FakeHTTPServer.Reply) -> FakeHTTPServer.Reply {
        let token = request.header("authorization").map { String($0.dropFirst("Bearer ".count)) } ?? ""
        guard state.withLock({ $0.tokens.contains(token) }) else {
            return .json(401, #"{"name":"AUTHENTICATION_FAILURE","message":"Authentication failed due to invalid authentication credentials or a missing Authorization header.","links":[{"href":"https://developer.paypal.com/docs/api/overview/#error","rel":"information_link"}]}"#)
        }
        let fault = state.withLock { state in
            state.faults.firstIndex { $0.pathSuffix.map(request.path.hasSuffix) ?? true }.map { state.faults.remove(at: $0) }
        }
        if let fault, !fault.afterProcessing { return fault.reply }
        let recordKey = request.header("paypal-request-id").map { "\(request.path)#\($0)" }
        if let recordKey, let recorded = state.withLock({ $0.recorded[recordKey] }) {
            return fault?.reply ?? recorded
        }
        let body: JSONValue
        do { body = request.body.readableBytes == 0 ? [:] : try request.json() } catch {
            return Self.error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.", issue: "MALFORMED_REQUEST_JSON")
        }
        let reply: FakeHTTPServer.Reply
        do { reply = try handler(request, body) } catch let error as PayPalFakeError {
            reply = error.reply
        } catch {
            reply = Self.error(500, "INTERNAL_SERVER_ERROR", "An internal server error occurred.", issue: nil)
        }
        if let recordKey, case .response(let status, _, _) = reply, status < 500 {
            state.withLock { $0.recorded[recordKey] = reply }
        }
        return fault?.reply ?? reply
    }

    // MARK: Orders

    private func nextID(_ prefix: String) -> String {
        state.withLock { state in
            state.counter += 1
            return "\(prefix)\(String(format: "%05d", state.counter))NMB\(Int.random(in: 100_000...999_999))"
        }
    }

    private func createOrder(_ body: JSONValue) throws -> FakeHTTPServer.Reply {
        guard let intent = body["intent"]?.stringValue, let unit = body["purchase_units"]?.arrayValue?.first,
              let currency = unit["amount"]?["currency_code"]?.stringValue, let valueText = unit["amount"]?["value"]?.stringValue,
              let value = Decimal(string: valueText) else {
            throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: "MISSING_REQUIRED_PARAMETER")
        }
        let decimals = valueText.split(separator: ".").dropFirst().first?.count ?? 0
        if decimals > (["JPY", "HUF", "TWD"].contains(currency) ? 0 : 2) {
            throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: "DECIMAL_PRECISION")
        }
        var order = Order(id: nextID("5O19"), intent: intent, status: "CREATED", amount: value, currency: currency, customID: unit["custom_id"]?.stringValue)
        if let vault = body["payment_source"]?["card"]?["vault_id"]?.stringValue {
            try attach(vault, to: &order)
        }
        state.withLock { $0.orders[order.id] = order }
        return .json(201, render(order))
    }

    private func attach(_ vault: String, to order: inout Order) throws {
        switch vault {
        case "card-success", "card-insufficient-funds", "card-disputed": order.status = "APPROVED"
        case "card-3ds": order.status = "PAYER_ACTION_REQUIRED"
        default: throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: "INVALID_RESOURCE_ID", description: "vault id \(vault) does not exist")
        }
        order.vaultID = vault
        order.authentication = nil
    }

    private func confirmSource(_ id: String, _ body: JSONValue) throws -> FakeHTTPServer.Reply {
        guard let vault = body["payment_source"]?["card"]?["vault_id"]?.stringValue else {
            throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: "MISSING_REQUIRED_PARAMETER")
        }
        return try state.withLock { state in
            guard var order = state.orders[id] else { throw PayPalFakeError.notFound(id) }
            guard ["CREATED", "APPROVED", "PAYER_ACTION_REQUIRED"].contains(order.status) else {
                throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: "ORDER_ALREADY_CAPTURED")
            }
            try attach(vault, to: &order)
            state.orders[id] = order
            return .json(200, render(order))
        }
    }

    private func complete(_ id: String, _ intent: String) throws -> FakeHTTPServer.Reply {
        try state.withLock { state in
            guard var order = state.orders[id] else { throw PayPalFakeError.notFound(id) }
            guard order.intent == intent else {
                throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: intent == "CAPTURE" ? "ACTION_DOES_NOT_MATCH_INTENT" : "ACTION_DOES_NOT_MATCH_INTENT")
            }
            guard order.status == "APPROVED" else {
                throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: order.status == "COMPLETED" ? "ORDER_ALREADY_CAPTURED" : "ORDER_NOT_APPROVED")
            }
            let declined = order.vaultID == "card-insufficient-funds"
            state.counter += 1
            let transaction = Transaction(id: "\(intent == "CAPTURE" ? "3C6" : "0AW")\(state.counter)NMB\(Int.random(in: 10_000...99_999))",
                                          status: intent == "CAPTURE" ? (declined ? "DECLINED" : "COMPLETED") : (declined ? "DENIED" : "CREATED"),
                                          amount: order.amount, processorCode: declined ? "5120" : "0000")
            if intent == "CAPTURE" { order.captures.append(transaction) } else { order.authorizations.append(transaction) }
            if intent == "CAPTURE", order.vaultID == "card-disputed" {
                state.disputes.append(DisputeRecord(id: "PP-D-\(state.counter)\(Int.random(in: 1000...9999))", captureID: transaction.id,
                                                    amount: order.amount, currency: order.currency))
            }
            order.status = "COMPLETED"
            state.orders[id] = order
            return .json(201, render(order))
        }
    }

    private func captureAuthorization(_ authorizationID: String, _ body: JSONValue) throws -> FakeHTTPServer.Reply {
        try state.withLock { state in
            guard let (orderID, index) = state.orders.lazy.compactMap({ key, order in order.authorizations.firstIndex { $0.id == authorizationID }.map { (key, $0) } }).first,
                  var order = state.orders[orderID] else { throw PayPalFakeError.notFound(authorizationID) }
            var authorization = order.authorizations[index]
            guard authorization.status == "CREATED" else {
                throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: authorization.status == "VOIDED" ? "AUTHORIZATION_VOIDED" : "AUTHORIZATION_ALREADY_CAPTURED")
            }
            let amount = body["amount"]?["value"]?.stringValue.flatMap { Decimal(string: $0) } ?? authorization.amount
            guard amount > 0, amount <= authorization.amount else {
                throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: "AMOUNT_CANNOT_BE_SPECIFIED")
            }
            state.counter += 1
            let capture = Transaction(id: "3C6\(state.counter)NMB\(Int.random(in: 10_000...99_999))", status: "COMPLETED", amount: amount, processorCode: "0000")
            order.captures.append(capture)
            authorization.status = body["final_capture"]?.boolValue == false && amount < authorization.amount ? "PARTIALLY_CAPTURED" : "CAPTURED"
            order.authorizations[index] = authorization
            state.orders[orderID] = order
            return .json(201, transactionObject(capture, order))
        }
    }

    private func void(_ authorizationID: String) throws -> FakeHTTPServer.Reply {
        try state.withLock { state in
            guard let (orderID, index) = state.orders.lazy.compactMap({ key, order in order.authorizations.firstIndex { $0.id == authorizationID }.map { (key, $0) } }).first,
                  var order = state.orders[orderID] else { throw PayPalFakeError.notFound(authorizationID) }
            guard order.authorizations[index].status == "CREATED" else { throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: "CANNOT_BE_VOIDED") }
            order.authorizations[index].status = "VOIDED"
            state.orders[orderID] = order
            return .response(status: 204, headers: [], body: .init())
        }
    }

    private func refund(_ captureID: String, _ body: JSONValue) throws -> FakeHTTPServer.Reply {
        try state.withLock { state in
            guard let (orderID, index) = state.orders.lazy.compactMap({ key, order in order.captures.firstIndex { $0.id == captureID }.map { (key, $0) } }).first,
                  var order = state.orders[orderID] else { throw PayPalFakeError.notFound(captureID) }
            let capture = order.captures[index]
            let refunded = order.refunds.reduce(Decimal(0)) { $0 + $1.amount }
            guard ["COMPLETED", "PARTIALLY_REFUNDED"].contains(capture.status) else {
                throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: "CAPTURE_FULLY_REFUNDED")
            }
            let amount = body["amount"]?["value"]?.stringValue.flatMap { Decimal(string: $0) } ?? (capture.amount - refunded)
            guard amount > 0, amount <= capture.amount - refunded else {
                throw PayPalFakeError(422, "UNPROCESSABLE_ENTITY", issue: "REFUND_AMOUNT_EXCEEDED")
            }
            state.counter += 1
            let refund = Transaction(id: "1JU\(state.counter)NMB\(Int.random(in: 10_000...99_999))", status: "COMPLETED", amount: amount,
                                     note: body["note_to_payer"]?.stringValue)
            order.refunds.append(refund)
            order.captures[index].status = refunded + amount == capture.amount ? "REFUNDED" : "PARTIALLY_REFUNDED"
            state.orders[orderID] = order
            return .json(201, transactionObject(refund, order))
        }
    }

    private func verify(_ body: JSONValue) -> FakeHTTPServer.Reply {
        let deliveries = state.withLock { $0.deliveries }
        let matched = deliveries.contains { delivery in
            body["webhook_id"]?.stringValue == Self.webhookID
                && body["auth_algo"]?.stringValue == delivery.headers["PAYPAL-AUTH-ALGO"]
                && body["cert_url"]?.stringValue == delivery.headers["PAYPAL-CERT-URL"]
                && body["transmission_id"]?.stringValue == delivery.headers["PAYPAL-TRANSMISSION-ID"]
                && body["transmission_sig"]?.stringValue == delivery.headers["PAYPAL-TRANSMISSION-SIG"]
                && body["transmission_time"]?.stringValue == delivery.headers["PAYPAL-TRANSMISSION-TIME"]
                && body["webhook_event"] == (try? JSONValue.parse(Array(delivery.body.utf8)))
        }
        return .json(200, ["verification_status": matched ? "SUCCESS" : "FAILURE"])
    }

    private func orderReply(_ id: String) throws -> FakeHTTPServer.Reply {
        guard let order = state.withLock({ $0.orders[id] }) else { throw PayPalFakeError.notFound(id) }
        return .json(200, render(order))
    }

    // MARK: Rendering

    static func value(_ amount: Decimal, _ currency: String) -> String {
        let scale = ["JPY", "HUF", "TWD"].contains(currency) ? 0 : 2
        var rounded = Decimal()
        var source = amount
        NSDecimalRound(&rounded, &source, scale, .plain)
        let formatter = NumberFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.minimumFractionDigits = scale
        formatter.maximumFractionDigits = scale
        formatter.usesGroupingSeparator = false
        return formatter.string(from: NSDecimalNumber(decimal: rounded)) ?? "\(rounded)"
    }

    private func money(_ amount: Decimal, _ order: Order) -> JSONValue {
        ["currency_code": .string(order.currency), "value": .string(Self.value(amount, order.currency))]
    }

    private static func time(_ date: Date) -> JSONValue { .string(ISO8601DateFormatter().string(from: date)) }

    private func transactionObject(_ transaction: Transaction, _ order: Order) -> JSONValue {
        var object: [String: JSONValue] = ["id": .string(transaction.id), "status": .string(transaction.status),
                                           "amount": money(transaction.amount, order), "create_time": Self.time(transaction.created),
                                           "update_time": Self.time(transaction.created)]
        if let code = transaction.processorCode { object["processor_response"] = ["response_code": .string(code)] }
        if let note = transaction.note { object["note_to_payer"] = .string(note) }
        if let custom = order.customID { object["custom_id"] = .string(custom) }
        object["supplementary_data"] = ["related_ids": ["order_id": .string(order.id)]]
        object["links"] = [["href": .string("\(baseURL)/v2/payments/\(transaction.id)"), "rel": "self", "method": "GET"]]
        return .object(object)
    }

    private func render(_ order: Order) -> JSONValue {
        var unit: [String: JSONValue] = ["reference_id": "default", "amount": money(order.amount, order)]
        if let custom = order.customID { unit["custom_id"] = .string(custom) }
        var payments: [String: JSONValue] = [:]
        if !order.captures.isEmpty { payments["captures"] = .array(order.captures.map { transactionObject($0, order) }) }
        if !order.authorizations.isEmpty { payments["authorizations"] = .array(order.authorizations.map { transactionObject($0, order) }) }
        if !order.refunds.isEmpty { payments["refunds"] = .array(order.refunds.map { transactionObject($0, order) }) }
        if !payments.isEmpty { unit["payments"] = .object(payments) }
        var links: [JSONValue] = [["href": .string("\(baseURL)/v2/checkout/orders/\(order.id)"), "rel": "self", "method": "GET"]]
        switch order.status {
        case "CREATED": links.append(["href": .string("https://www.sandbox.paypal.com/checkoutnow?token=\(order.id)"), "rel": "approve", "method": "GET"])
        case "PAYER_ACTION_REQUIRED": links.append(["href": .string("\(baseURL)/webapps/helios?action=verify&flow=3ds&cart_id=\(order.id)"), "rel": "payer-action", "method": "GET"])
        case "APPROVED": links.append(["href": .string("\(baseURL)/v2/checkout/orders/\(order.id)/capture"), "rel": "capture", "method": "POST"])
        default: break
        }
        var object: [String: JSONValue] = ["id": .string(order.id), "intent": .string(order.intent), "status": .string(order.status),
                                           "purchase_units": [.object(unit)], "create_time": Self.time(order.created), "links": .array(links)]
        if let vault = order.vaultID {
            var card: [String: JSONValue] = ["vault_id": .string(vault), "last_digits": "1111", "brand": "VISA", "type": "CREDIT"]
            if let authentication = order.authentication { card["authentication_result"] = authentication }
            object["payment_source"] = ["card": .object(card)]
        }
        return .object(object)
    }

    private func segment(_ request: FakeHTTPServer.CapturedRequest, _ index: Int) -> String {
        String(request.path.split(separator: "/")[index - 1])
    }

    static func error(_ status: Int, _ name: String, _ message: String, issue: String?, description: String? = nil) -> FakeHTTPServer.Reply {
        var body: [String: JSONValue] = ["name": .string(name), "message": .string(message), "debug_id": .string("f\(Int.random(in: 100_000_000...999_999_999))")]
        if let issue { body["details"] = [["issue": .string(issue), "description": .string(description ?? issue.lowercased().replacingOccurrences(of: "_", with: " "))]] }
        return .json(status, .object(body))
    }
}

struct PayPalFakeError: Error {
    let reply: FakeHTTPServer.Reply

    init(_ status: Int, _ name: String, issue: String, description: String? = nil) {
        reply = PayPalFake.error(status, name, "The requested action could not be performed, semantically incorrect, or failed business validation.",
                                 issue: issue, description: description)
    }

    static func notFound(_ id: String) -> PayPalFakeError {
        PayPalFakeError(reply: PayPalFake.error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.", issue: "INVALID_RESOURCE_ID",
                                                description: "Specified resource ID \(id) does not exist."))
    }

    private init(reply: FakeHTTPServer.Reply) { self.reply = reply }
}
