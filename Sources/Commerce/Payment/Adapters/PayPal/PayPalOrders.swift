import Foundation
import NIOCore
import NimbusCore
import NimbusCurrency
import NimbusHTTP
import NimbusPayment

/// PayPal orders, captures and refunds → the portable model.
enum PayPalOrders {
    static func payments(_ order: JSONValue) -> JSONValue {
        order["purchase_units"]?.arrayValue?.first?["payments"] ?? [:]
    }

    static func link(_ object: JSONValue, _ relation: String) -> String? {
        object["links"]?.arrayValue?.first { $0["rel"]?.stringValue == relation }?["href"]?.stringValue
    }

    static func date(_ value: JSONValue?) -> Date? {
        value?.stringValue.flatMap(PayPalWebhookTime.parse)
    }

    /// The authorization that can still be captured or voided.
    static func openAuthorization(_ order: JSONValue) -> String? {
        payments(order)["authorizations"]?.arrayValue?.first { ["CREATED", "PENDING"].contains($0["status"]?.stringValue ?? "") }?["id"]?.stringValue
    }

    /// The capture that refunds draw from.
    static func refundableCapture(_ order: JSONValue) -> String? {
        payments(order)["captures"]?.arrayValue?.first { ["COMPLETED", "PARTIALLY_REFUNDED"].contains($0["status"]?.stringValue ?? "") }?["id"]?.stringValue
    }

    static func payment(_ order: JSONValue) throws -> Payment {
        guard let id = order["id"]?.stringValue, let status = order["status"]?.stringValue else {
            throw NimbusError(.internal, "paypal answered an order without an id or status")
        }
        guard let unit = order["purchase_units"]?.arrayValue?.first else {
            throw NimbusError(.internal, "paypal order \(id) has no purchase unit")
        }
        let amount = try PayPalAmount.money(unit["amount"], field: "purchase_units[0].amount")
        let zero = Money.zero(amount.currency)
        let intent = order["intent"]?.stringValue ?? "CAPTURE"
        let payments = payments(order)
        let captures = payments["captures"]?.arrayValue ?? []
        let authorizations = payments["authorizations"]?.arrayValue ?? []
        let refunds = payments["refunds"]?.arrayValue ?? []
        func total(_ items: [JSONValue], _ statuses: Set<String>, _ field: String) throws -> Money {
            try items.filter { statuses.contains($0["status"]?.stringValue ?? "") }
                .reduce(zero) { try $0.adding(try PayPalAmount.money($1["amount"], field: field)) }
        }
        var payment = Payment(id: id, amount: amount, status: .requiresPaymentMethod, captureMethod: intent == "AUTHORIZE" ? .manual : .automatic,
                              metadata: PayPalMetadata.decode(unit["custom_id"]?.stringValue),
                              createdAt: date(order["create_time"]) ?? Date(timeIntervalSince1970: 0))
        payment.paymentMethodID = order["payment_source"]?["card"]?["vault_id"]?.stringValue
        payment.amountReceived = try total(captures, ["COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"], "captures[].amount")
        payment.amountRefunded = try total(refunds, ["COMPLETED", "PENDING"], "refunds[].amount")

        switch status {
        case "CREATED", "SAVED":
            payment.status = .requiresPaymentMethod
            payment.nextActionURL = link(order, "approve")
        case "PAYER_ACTION_REQUIRED":
            payment.status = .requiresAction
            payment.nextActionURL = link(order, "payer-action") ?? link(order, "approve")
        case "APPROVED":
            if let failure = authenticationFailure(order) {
                payment.status = .requiresPaymentMethod
                payment.lastFailure = failure
            } else {
                payment.status = .requiresConfirmation
            }
        case "VOIDED":
            payment.status = .canceled
        case "COMPLETED":
            if intent == "AUTHORIZE" {
                let statuses = Set(authorizations.compactMap { $0["status"]?.stringValue })
                if statuses.contains("CAPTURED") || statuses.contains("PARTIALLY_CAPTURED") || !payment.amountReceived.isZero {
                    payment.status = .succeeded
                } else if statuses.contains("CREATED") || statuses.contains("PENDING") {
                    payment.status = .requiresCapture
                    payment.amountCapturable = try total(authorizations, ["CREATED", "PENDING"], "authorizations[].amount")
                } else if statuses.contains("VOIDED") || statuses.contains("EXPIRED") {
                    payment.status = .canceled
                } else {
                    payment.status = .requiresPaymentMethod
                    payment.lastFailure = declined(authorizations.last)
                }
            } else {
                let statuses = Set(captures.compactMap { $0["status"]?.stringValue })
                if !statuses.isDisjoint(with: ["COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"]) {
                    payment.status = .succeeded
                } else if statuses.contains("PENDING") {
                    payment.status = .processing
                } else {
                    payment.status = .requiresPaymentMethod
                    payment.lastFailure = declined(captures.last)
                }
            }
        default:
            throw NimbusError(.dataLoss, "paypal order \(id) has status '\(status)', which this Nimbus version does not know; update Nimbus")
        }
        return payment
    }

    /// PayPal's advice for 3-D Secure results: liability not shifted and authentication failed or
    /// rejected means do not charge.
    static func authenticationFailure(_ order: JSONValue) -> PaymentFailure? {
        guard let result = order["payment_source"]?["card"]?["authentication_result"], result.objectValue != nil else { return nil }
        let shifted = result["liability_shift"]?.stringValue
        let outcome = result["three_d_secure"]?["authentication_status"]?.stringValue
        guard shifted == "NO", ["N", "R"].contains(outcome ?? "") else { return nil }
        return PaymentFailure(kind: .authenticationRequired, providerCode: "3ds_\(outcome ?? "N")".lowercased(),
                              message: "The payer did not complete 3-D Secure authentication.")
    }

    /// A declined capture or authorization, with the card processor's reason.
    static func declined(_ transaction: JSONValue?) -> PaymentFailure {
        let code = transaction?["processor_response"]?["response_code"]?.stringValue
        let (kind, message): (PaymentFailure.Kind, String) = switch code {
        case "5120": (.insufficientFunds, "Your card has insufficient funds.")
        case "5400": (.expiredCard, "Your card has expired.")
        case "5110", "00N7": (.incorrectCVC, "Your card's security code is incorrect.")
        case "9500", "5930": (.fraudSuspected, "Your card was declined.")
        case "5650": (.authenticationRequired, "The card issuer requires authentication.")
        case "1000", "1300", "9100", "9520": (.processingError, "An error occurred while processing your card. Try again in a little bit.")
        default: (.cardDeclined, "Your card was declined.")
        }
        return PaymentFailure(kind: kind, providerCode: code ?? transaction?["status"]?.stringValue ?? "DECLINED", message: message)
    }

    static func refund(_ object: JSONValue, paymentID: String, fallbackAmount: Money?, reason: String?) throws -> Refund {
        guard let id = object["id"]?.stringValue, let status = object["status"]?.stringValue else {
            throw NimbusError(.internal, "paypal answered a refund without an id or status")
        }
        let amount: Money
        if object["amount"] != nil { amount = try PayPalAmount.money(object["amount"], field: "refund amount") }
        else if let fallbackAmount { amount = fallbackAmount }
        else { throw NimbusError(.internal, "paypal refund \(id) has no amount") }
        let mapped: Refund.Status = switch status {
        case "COMPLETED": .succeeded
        case "PENDING": .pending
        case "FAILED": .failed
        case "CANCELLED": .canceled
        default: Refund.Status(rawValue: status.lowercased())
        }
        return Refund(id: id, paymentID: paymentID, amount: amount, status: mapped, reason: object["note_to_payer"]?.stringValue ?? reason,
                      createdAt: date(object["create_time"]) ?? Date())
    }

    static let kinds: [String: PaymentEvent.Kind] = [
        "PAYMENT.CAPTURE.COMPLETED": .paymentSucceeded,
        "PAYMENT.CAPTURE.DECLINED": .paymentFailed,
        "PAYMENT.CAPTURE.DENIED": .paymentFailed,
        "PAYMENT.CAPTURE.PENDING": .paymentProcessing,
        "PAYMENT.AUTHORIZATION.CREATED": .paymentCapturable,
        "PAYMENT.AUTHORIZATION.VOIDED": .paymentCanceled,
        "CHECKOUT.ORDER.VOIDED": .paymentCanceled,
        "CHECKOUT.PAYMENT-APPROVAL.REVERSED": .paymentFailed,
        "PAYMENT.CAPTURE.REFUNDED": .refundUpdated,
        "PAYMENT.CAPTURE.REVERSED": .refundUpdated,
        "CUSTOMER.DISPUTE.CREATED": .disputeCreated,
        "CUSTOMER.DISPUTE.UPDATED": .disputeUpdated,
        "CUSTOMER.DISPUTE.RESOLVED": .disputeClosed,
    ]

    /// A PayPal webhook event → a normalized one. Capture events carry the payment as far as the
    /// capture tells it (the order id, the amount); refund events the refund.
    static func event(_ object: JSONValue) throws -> PaymentEvent {
        guard let id = object["id"]?.stringValue, let type = object["event_type"]?.stringValue else {
            throw NimbusError(.invalidArgument, "the webhook body is not a PayPal event (id, event_type)")
        }
        let kind = kinds[type] ?? .other
        var event = PaymentEvent(id: id, kind: kind, providerType: type, createdAt: date(object["create_time"]) ?? Date())
        guard let resource = object["resource"], resource.objectValue != nil else { return event }
        let orderID = resource["supplementary_data"]?["related_ids"]?["order_id"]?.stringValue
        do {
            switch type {
            case "PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.DECLINED", "PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.PENDING":
                let amount = try PayPalAmount.money(resource["amount"], field: "resource.amount")
                let status: PaymentStatus = kind == .paymentSucceeded ? .succeeded : kind == .paymentProcessing ? .processing : .requiresPaymentMethod
                event.payment = Payment(id: orderID ?? resource["id"]?.stringValue ?? id, amount: amount, status: status, captureMethod: .automatic,
                                        amountReceived: kind == .paymentSucceeded ? amount : nil,
                                        lastFailure: kind == .paymentFailed ? declined(resource) : nil,
                                        metadata: PayPalMetadata.decode(resource["custom_id"]?.stringValue),
                                        createdAt: date(resource["create_time"]) ?? event.createdAt)
            case "PAYMENT.AUTHORIZATION.CREATED":
                let amount = try PayPalAmount.money(resource["amount"], field: "resource.amount")
                event.payment = Payment(id: orderID ?? resource["id"]?.stringValue ?? id, amount: amount, status: .requiresCapture, captureMethod: .manual,
                                        amountCapturable: amount, metadata: PayPalMetadata.decode(resource["custom_id"]?.stringValue),
                                        createdAt: date(resource["create_time"]) ?? event.createdAt)
            case "PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED":
                event.refund = try refund(resource, paymentID: orderID ?? "", fallbackAmount: nil, reason: nil)
            default: break
            }
        } catch let error as NimbusError {
            throw NimbusError(.invalidArgument, "PayPal event \(id) (\(type)) carries a resource Nimbus cannot read: \(error.message)", underlying: error)
        }
        return event
    }
}

/// PayPal's error bodies (`name`, `message`, `debug_id`, `details[].issue`) → `NimbusError`.
enum PayPalErrors {
    static let stateIssues: Set<String> = [
        "ORDER_ALREADY_CAPTURED", "ORDER_NOT_APPROVED", "ORDER_ALREADY_AUTHORIZED", "ORDER_COMPLETED_OR_VOIDED", "ORDER_EXPIRED",
        "AUTHORIZATION_ALREADY_CAPTURED", "AUTHORIZATION_VOIDED", "AUTHORIZATION_EXPIRED", "PREVIOUSLY_VOIDED", "CANNOT_BE_VOIDED",
        "INSTRUMENT_DECLINED", "PAYER_ACTION_REQUIRED", "TRANSACTION_REFUSED", "CAPTURE_FULLY_REFUNDED", "MAX_NUMBER_OF_REFUNDS_EXCEEDED",
        "PAYER_CANNOT_PAY", "COMPLIANCE_VIOLATION",
    ]

    static func map(_ response: NimbusHTTPResponse, _ body: ByteBuffer, operation: String) -> NimbusError {
        let json = try? JSONValue.parse(Array(body.readableBytesView))
        let name = json?["name"]?.stringValue ?? json?["error"]?.stringValue ?? "HTTP_\(response.status.code)"
        let message = json?["message"]?.stringValue ?? json?["error_description"]?.stringValue
            ?? String(decoding: body.readableBytesView.prefix(200), as: UTF8.self)
        let issues = (json?["details"]?.arrayValue ?? []).compactMap { detail -> String? in
            guard let issue = detail["issue"]?.stringValue else { return nil }
            return issue + (detail["description"]?.stringValue.map { " (\($0))" } ?? "")
        }
        let issueNames = Set((json?["details"]?.arrayValue ?? []).compactMap { $0["issue"]?.stringValue })
        let code: NimbusError.Code
        switch response.status.code {
        case 400: code = .invalidArgument
        case 401: code = .unauthenticated
        case 403: code = .permissionDenied
        case 404: code = .notFound
        case 409: code = .unavailable                // the same PayPal-Request-Id is still being processed
        case 422: code = issueNames.isDisjoint(with: stateIssues) ? .invalidArgument : .failedPrecondition
        case 429: code = .resourceExhausted
        case 500...: code = .unavailable
        default: code = HTTPStatusMapping.code(for: response.status)
        }
        var text = "paypal \(operation): \(name): \(message)"
        if !issues.isEmpty { text += " — " + issues.joined(separator: "; ") }
        if let debug = json?["debug_id"]?.stringValue { text += " [debug_id \(debug)]" }
        return NimbusError(code, text, retryAfter: response.retryAfter(), retryable: response.status.code == 409 ? true : nil)
    }

    /// `/v2/checkout/orders/5O190127TN364715T/capture` → `/v2/checkout/orders/{id}/capture`.
    static func template(_ path: String) -> String {
        "/" + path.split(separator: "/").map { segment in
            segment.count > 8 && segment.contains(where: \.isNumber) ? "{id}" : String(segment)
        }.joined(separator: "/")
    }
}

/// PayPal's times (`2024-05-01T12:00:00Z`, with or without fractions) and webhook bodies.
enum PayPalWebhookTime {
    static func parse(_ text: String) -> Date? { Date(iso8601: text) }

    static func parseBody(_ body: [UInt8]) throws -> JSONValue {
        do { return try JSONValue.parse(body) } catch {
            throw NimbusError(.invalidArgument, "the webhook body is not JSON: \(error)", underlying: error)
        }
    }
}
