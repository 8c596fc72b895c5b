import Foundation
import NimbusCore
import NimbusCurrency

/// Where a payment is in its life — Stripe's PaymentIntent states, which PayPal's order states and
/// the embedded engine map onto.
///
/// ```text
/// requiresPaymentMethod → requiresConfirmation → (requiresAction) → processing → requiresCapture → succeeded
///                                 any state before succeeded → canceled
/// ```
public enum PaymentStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case requiresPaymentMethod = "requires_payment_method"
    case requiresConfirmation = "requires_confirmation"
    case requiresAction = "requires_action"
    case processing
    case requiresCapture = "requires_capture"
    case succeeded
    case canceled

    /// Whether nothing more can happen to the payment (refunds aside).
    public var isFinal: Bool { self == .succeeded || self == .canceled }

    /// The states a payment may move to from this one.
    public var next: Set<PaymentStatus> {
        switch self {
        case .requiresPaymentMethod: [.requiresConfirmation, .requiresAction, .processing, .requiresCapture, .succeeded, .canceled]
        case .requiresConfirmation: [.requiresPaymentMethod, .requiresAction, .processing, .requiresCapture, .succeeded, .canceled]
        case .requiresAction: [.requiresPaymentMethod, .processing, .requiresCapture, .succeeded, .canceled]
        case .processing: [.requiresPaymentMethod, .requiresCapture, .succeeded, .canceled]
        case .requiresCapture: [.succeeded, .canceled]
        case .succeeded, .canceled: []
        }
    }

    /// Checks a move. - Throws: `failedPrecondition` saying which moves are possible.
    public func checkTransition(to target: PaymentStatus, operation: String) throws {
        guard next.contains(target) else {
            let allowed = next.map(\.rawValue).sorted().joined(separator: ", ")
            throw NimbusError(.failedPrecondition, "cannot \(operation) a payment that is \(rawValue)"
                              + (allowed.isEmpty ? " (it is final)" : " (from here it can become: \(allowed))"))
        }
    }
}

/// When funds are taken.
public enum CaptureMethod: String, Sendable, Hashable, Codable {
    /// On confirmation.
    case automatic
    /// Authorized on confirmation, taken later by `capture` (once, all or part of it).
    case manual
}

/// Why a payment attempt failed, in portable terms (the provider's code is kept).
public struct PaymentFailure: Sendable, Hashable, Codable {
    /// What kind of failure.
    public enum Kind: String, Sendable, Hashable, Codable {
        case cardDeclined = "card_declined"
        case insufficientFunds = "insufficient_funds"
        case expiredCard = "expired_card"
        case incorrectCVC = "incorrect_cvc"
        case authenticationRequired = "authentication_required"
        case processingError = "processing_error"
        case fraudSuspected = "fraud_suspected"
        case other
    }
    /// The kind.
    public var kind: Kind
    /// The provider's own code (`card_declined`, Stripe's `decline_code`, PayPal's issue).
    public var providerCode: String?
    /// A message safe to show the payer.
    public var message: String

    /// Creates a failure.
    public init(kind: Kind, providerCode: String? = nil, message: String) {
        self.kind = kind
        self.providerCode = providerCode
        self.message = message
    }
}

/// A payment: an amount to collect, its state, and what was captured and refunded.
public struct Payment: Sendable, Hashable, Codable {
    /// The provider's id (`pi_…`, a PayPal order id, `pay_…` for the embedded engine).
    public var id: String
    /// The amount to collect.
    public var amount: Money
    /// Where it stands.
    public var status: PaymentStatus
    /// When funds are taken.
    public var captureMethod: CaptureMethod
    /// The customer, if any.
    public var customerID: String?
    /// The payment method attached, if any.
    public var paymentMethodID: String?
    /// What can still be captured (manual capture).
    public var amountCapturable: Money
    /// What was collected.
    public var amountReceived: Money
    /// What was refunded so far.
    public var amountRefunded: Money
    /// The last attempt's failure.
    public var lastFailure: PaymentFailure?
    /// Where to send the payer to authenticate (3-D Secure) when `requiresAction`.
    public var nextActionURL: String?
    /// Your fields (order id...), returned on every read and in webhooks.
    public var metadata: [String: String]
    /// When it was created.
    public var createdAt: Date

    /// Creates a payment.
    public init(id: String, amount: Money, status: PaymentStatus, captureMethod: CaptureMethod, customerID: String? = nil,
                paymentMethodID: String? = nil, amountCapturable: Money? = nil, amountReceived: Money? = nil, amountRefunded: Money? = nil,
                lastFailure: PaymentFailure? = nil, nextActionURL: String? = nil, metadata: [String: String] = [:], createdAt: Date = Date()) {
        self.id = id
        self.amount = amount
        self.status = status
        self.captureMethod = captureMethod
        self.customerID = customerID
        self.paymentMethodID = paymentMethodID
        self.amountCapturable = amountCapturable ?? .zero(amount.currency)
        self.amountReceived = amountReceived ?? .zero(amount.currency)
        self.amountRefunded = amountRefunded ?? .zero(amount.currency)
        self.lastFailure = lastFailure
        self.nextActionURL = nextActionURL
        self.metadata = metadata
        self.createdAt = createdAt
    }

    /// What can still be refunded.
    public var refundable: Money { (try? amountReceived.subtracting(amountRefunded)) ?? .zero(amount.currency) }

    /// Checks a capture of `requested` (all that is capturable when `nil`) and returns the amount.
    /// - Throws: `failedPrecondition` outside `requiresCapture`, `invalidArgument` for another currency, zero, or more than capturable.
    public func checkCapture(_ requested: Money?) throws -> Money {
        guard status == .requiresCapture else {
            throw NimbusError(.failedPrecondition, "cannot capture a payment that is \(status.rawValue); only requires_capture payments are captured")
        }
        return try checkAmount(requested, limit: amountCapturable, operation: "capture", limitName: "capturable")
    }

    /// Checks a refund of `requested` (all that is refundable when `nil`) and returns the amount.
    /// - Throws: `failedPrecondition` unless succeeded, `invalidArgument` for another currency, zero, or more than refundable.
    public func checkRefund(_ requested: Money?) throws -> Money {
        guard status == .succeeded else {
            throw NimbusError(.failedPrecondition, "cannot refund a payment that is \(status.rawValue); only succeeded payments are refunded")
        }
        return try checkAmount(requested, limit: refundable, operation: "refund", limitName: "refundable")
    }

    /// `requested` (or all of `limit`), in the payment's currency, above zero and at most `limit`.
    private func checkAmount(_ requested: Money?, limit: Money, operation: String, limitName: String) throws -> Money {
        let value = requested ?? limit
        guard value.currency == amount.currency else {
            throw NimbusError(.invalidArgument, "\(operation) in \(value.currency.code) for a \(amount.currency.code) payment")
        }
        guard value.amount > 0, value <= limit else {
            throw NimbusError(.invalidArgument, "\(operation) \(value) must be above zero and at most the \(limitName) \(limit)")
        }
        return value
    }
}

/// A key that makes a mutating call safe to repeat: the provider performs it once and answers repeats
/// with the first result. ``PaymentClient`` makes one per call and sends the same on every retry.
public struct IdempotencyKey: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The key (a UUIDv7 by default).
    public let value: String

    /// A new random key.
    public init() { value = IDGenerator.shared.uuidV7().uuidString.lowercased() }

    /// A key you derive (order id + attempt), so a repeat from another process is recognized too.
    /// - Throws: `invalidArgument` for an empty key or one over 255 characters (Stripe's limit).
    public init(_ value: String) throws {
        guard !value.isEmpty, value.count <= 255 else {
            throw NimbusError(.invalidArgument, "an idempotency key has 1 to 255 characters, not \(value.count)")
        }
        self.value = value
    }

    public var description: String { value }
}
