import Foundation
import NimbusCore
import NimbusCurrency
import NimbusPayment

/// Stripe amounts: integers in the currency's smallest unit — ISO 4217's minor units, except the
/// currencies Stripe keeps two decimals for although ISO has none (ISK, UGX: amounts ×100).
enum StripeAmount {
    static let twoDecimalDespiteISO: Set<String> = ["ISK", "UGX"]

    static func scale(_ currency: Currency) -> Int {
        twoDecimalDespiteISO.contains(currency.code) ? 2 : (currency.minorUnits ?? 2)
    }

    static func minorUnits(_ money: Money) throws -> Int64 {
        let scaled = money.amount * pow(10, scale(money.currency))
        guard scaled == scaled.rounded(scale: 0, .down) else {
            throw NimbusError(.invalidArgument, "\(money) is finer than Stripe's smallest \(money.currency.code) unit; round it first")
        }
        guard scaled < 100_000_000_000, scaled >= 0 else { throw NimbusError(.invalidArgument, "\(money) is beyond what Stripe accepts") }
        return NSDecimalNumber(decimal: scaled).int64Value
    }

    static func money(_ units: Double?, _ currencyCode: String?, field: String) throws -> Money {
        guard let units, let currencyCode else { throw NimbusError(.internal, "stripe answered without \(field) or its currency") }
        guard let currency = try? CurrencyRegistry.standard.currency(currencyCode.uppercased()) else {
            throw NimbusError(.dataLoss, "stripe answered \(field) in '\(currencyCode)', a currency the registry does not know; register it with CurrencyRegistry.standard.register")
        }
        guard units == units.rounded(), abs(units) < 1e15 else { throw NimbusError(.internal, "stripe answered \(field) \(units), not an integer amount") }
        return Money(Decimal(Int64(units)) / pow(10, scale(currency)), currency)
    }
}

/// Stripe's objects → the portable model.
enum StripeObjects {
    static func metadata(_ object: JSONValue) -> [String: String] {
        (object["metadata"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
    }

    /// An expandable field: an id, or the expanded object's id.
    static func reference(_ value: JSONValue?) -> String? {
        value?.stringValue ?? value?["id"]?.stringValue
    }

    static func require(_ object: JSONValue, is kind: String) throws {
        guard object["object"]?.stringValue == kind else {
            throw NimbusError(.internal, "stripe answered a \(object["object"]?.stringValue ?? "non-object") where a \(kind) was expected")
        }
    }

    static func payment(_ object: JSONValue) throws -> Payment {
        try require(object, is: "payment_intent")
        guard let id = object["id"]?.stringValue else { throw NimbusError(.internal, "stripe payment_intent without an id") }
        let currency = object["currency"]?.stringValue
        guard let statusText = object["status"]?.stringValue, let status = PaymentStatus(rawValue: statusText) else {
            throw NimbusError(.dataLoss, "stripe payment_intent \(id) has status '\(object["status"]?.stringValue ?? "null")', which this Nimbus version does not know; "
                              + "pin Stripe-Version to \(StripeAPI.pinnedVersion) or update Nimbus")
        }
        let captureText = object["capture_method"]?.stringValue ?? "automatic"
        let amount = try StripeAmount.money(object["amount"]?.numberValue, currency, field: "amount")
        var payment = Payment(
            id: id, amount: amount, status: status,
            captureMethod: captureText == "manual" ? .manual : .automatic,     // automatic and automatic_async both take funds at once
            customerID: reference(object["customer"]), paymentMethodID: reference(object["payment_method"]),
            amountCapturable: try StripeAmount.money(object["amount_capturable"]?.numberValue ?? 0, currency, field: "amount_capturable"),
            amountReceived: try StripeAmount.money(object["amount_received"]?.numberValue ?? 0, currency, field: "amount_received"),
            metadata: metadata(object),
            createdAt: Date(timeIntervalSince1970: object["created"]?.numberValue ?? 0))
        if let error = object["last_payment_error"], error.objectValue != nil {
            payment.lastFailure = failure(error)
        }
        if status == .requiresAction, let action = object["next_action"] {
            payment.nextActionURL = action["redirect_to_url"]?["url"]?.stringValue
        }
        // The refunded total lives on the charge; Stripe sends it when latest_charge is expanded.
        if let charge = object["latest_charge"], charge.objectValue != nil, let refunded = charge["amount_refunded"]?.numberValue {
            payment.amountRefunded = try StripeAmount.money(refunded, currency, field: "latest_charge.amount_refunded")
        }
        return payment
    }

    static func failure(_ error: JSONValue) -> PaymentFailure {
        let code = error["code"]?.stringValue
        let decline = error["decline_code"]?.stringValue
        let kind: PaymentFailure.Kind
        switch decline ?? code ?? "" {
        case "insufficient_funds": kind = .insufficientFunds
        case "expired_card": kind = .expiredCard
        case "incorrect_cvc", "invalid_cvc": kind = .incorrectCVC
        case "fraudulent", "stolen_card", "lost_card", "pickup_card", "merchant_blacklist": kind = .fraudSuspected
        case "processing_error", "try_again_later", "issuer_not_available": kind = .processingError
        case "authentication_required", "payment_intent_authentication_failure", "authentication_not_handled": kind = .authenticationRequired
        case "card_declined", "generic_decline", "do_not_honor", "transaction_not_allowed", "card_not_supported", "call_issuer", "card_velocity_exceeded":
            kind = .cardDeclined
        default: kind = error["type"]?.stringValue == "card_error" ? .cardDeclined : .other
        }
        return PaymentFailure(kind: kind, providerCode: decline ?? code, message: error["message"]?.stringValue ?? "The payment failed.")
    }

    static func refund(_ object: JSONValue) throws -> Refund {
        try require(object, is: "refund")
        guard let id = object["id"]?.stringValue, let status = object["status"]?.stringValue else {
            throw NimbusError(.internal, "stripe refund without an id or status")
        }
        return Refund(id: id, paymentID: reference(object["payment_intent"]) ?? reference(object["charge"]) ?? "",
                      amount: try StripeAmount.money(object["amount"]?.numberValue, object["currency"]?.stringValue, field: "amount"),
                      status: Refund.Status(rawValue: status), reason: object["reason"]?.stringValue,
                      createdAt: Date(timeIntervalSince1970: object["created"]?.numberValue ?? 0))
    }

    static func dispute(_ object: JSONValue) throws -> Dispute {
        try require(object, is: "dispute")
        guard let id = object["id"]?.stringValue, let status = object["status"]?.stringValue else {
            throw NimbusError(.internal, "stripe dispute without an id or status")
        }
        return Dispute(id: id, paymentID: reference(object["payment_intent"]) ?? reference(object["charge"]) ?? "",
                       amount: try StripeAmount.money(object["amount"]?.numberValue, object["currency"]?.stringValue, field: "amount"),
                       status: Dispute.Status(rawValue: status), reason: object["reason"]?.stringValue ?? "general",
                       evidenceDueBy: object["evidence_details"]?["due_by"]?.numberValue.map { Date(timeIntervalSince1970: $0) },
                       createdAt: Date(timeIntervalSince1970: object["created"]?.numberValue ?? 0))
    }

    static let kinds: [String: PaymentEvent.Kind] = [
        "payment_intent.succeeded": .paymentSucceeded,
        "payment_intent.payment_failed": .paymentFailed,
        "payment_intent.requires_action": .paymentRequiresAction,
        "payment_intent.amount_capturable_updated": .paymentCapturable,
        "payment_intent.processing": .paymentProcessing,
        "payment_intent.canceled": .paymentCanceled,
        "refund.created": .refundUpdated, "refund.updated": .refundUpdated, "refund.failed": .refundUpdated,
        "charge.refund.updated": .refundUpdated,
        "charge.dispute.created": .disputeCreated,
        "charge.dispute.updated": .disputeUpdated, "charge.dispute.funds_withdrawn": .disputeUpdated,
        "charge.dispute.funds_reinstated": .disputeUpdated,
        "charge.dispute.closed": .disputeClosed,
    ]

    /// A Stripe event → a normalized one; the object is read for the kinds Nimbus knows.
    static func event(_ object: JSONValue) throws -> PaymentEvent {
        guard object["object"]?.stringValue == "event", let id = object["id"]?.stringValue, let type = object["type"]?.stringValue,
              let created = object["created"]?.numberValue, let data = object["data"]?["object"] else {
            throw NimbusError(.invalidArgument, "the webhook body is not a Stripe event (object, id, type, created, data.object)")
        }
        let kind = kinds[type] ?? .other
        var event = PaymentEvent(id: id, kind: kind, providerType: type, createdAt: Date(timeIntervalSince1970: created))
        do {
            switch data["object"]?.stringValue {
            case "payment_intent" where kind != .other: event.payment = try payment(data)
            case "refund" where kind != .other: event.refund = try refund(data)
            case "dispute" where kind != .other: event.dispute = try dispute(data)
            default: break
            }
        } catch let error as NimbusError {
            throw NimbusError(.invalidArgument, "Stripe event \(id) (\(type)) carries an object Nimbus cannot read: \(error.message)", underlying: error)
        }
        return event
    }
}
