import Foundation
import NimbusCore
import NimbusCurrency

/// A chargeback: the payer's bank took the money back and the merchant may answer with evidence.
public struct Dispute: Sendable, Hashable, Codable {
    /// Where a dispute stands (Stripe's names; unknown values are kept as they come).
    public struct Status: OpenEnumeration {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// An inquiry before a chargeback; answer it to avoid one.
        public static let warningNeedsResponse = Status(rawValue: "warning_needs_response")
        /// Evidence for an inquiry is being reviewed.
        public static let warningUnderReview = Status(rawValue: "warning_under_review")
        /// The inquiry closed without a chargeback.
        public static let warningClosed = Status(rawValue: "warning_closed")
        /// Funds were taken back; submit evidence before `evidenceDueBy`.
        public static let needsResponse = Status(rawValue: "needs_response")
        /// Evidence is with the bank.
        public static let underReview = Status(rawValue: "under_review")
        /// Decided for the merchant.
        public static let won = Status(rawValue: "won")
        /// Decided for the payer.
        public static let lost = Status(rawValue: "lost")

        /// Whether the dispute is decided or closed.
        public var isClosed: Bool { [.won, .lost, .warningClosed].contains(self) }
    }

    /// Its id (`dp_…`).
    public var id: String
    /// The disputed payment.
    public var paymentID: String
    /// The amount disputed.
    public var amount: Money
    /// Where it stands.
    public var status: Status
    /// The bank's reason (`fraudulent`, `product_not_received`, …).
    public var reason: String
    /// The deadline for evidence, when one is open.
    public var evidenceDueBy: Date?
    /// When it was opened.
    public var createdAt: Date

    /// Creates a dispute.
    public init(id: String, paymentID: String, amount: Money, status: Status, reason: String, evidenceDueBy: Date? = nil, createdAt: Date) {
        self.id = id
        self.paymentID = paymentID
        self.amount = amount
        self.status = status
        self.reason = reason
        self.evidenceDueBy = evidenceDueBy
        self.createdAt = createdAt
    }
}

/// A provider's webhook, normalized: the same kinds whichever provider sent it, with the provider's
/// own event type and the payment, refund or dispute it carries.
///
/// ```swift
/// let event = try await stripe.verifyWebhook(body: body, headers: headers)
/// if event.kind == .paymentSucceeded, let payment = event.payment { try await orders.markPaid(payment.metadata["order"]) }
/// ```
public struct PaymentEvent: Sendable, Hashable, Codable {
    /// What happened.
    public struct Kind: OpenEnumeration {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Funds were collected.
        public static let paymentSucceeded = Kind(rawValue: "payment.succeeded")
        /// An attempt failed (a decline, a failed authentication); the payment needs another method.
        public static let paymentFailed = Kind(rawValue: "payment.failed")
        /// The payer must act (3-D Secure, an approval page).
        public static let paymentRequiresAction = Kind(rawValue: "payment.requires_action")
        /// Funds are authorized and wait for `capture`.
        public static let paymentCapturable = Kind(rawValue: "payment.capturable")
        /// The provider is processing the payment.
        public static let paymentProcessing = Kind(rawValue: "payment.processing")
        /// The payment was canceled.
        public static let paymentCanceled = Kind(rawValue: "payment.canceled")
        /// A refund was created or changed state.
        public static let refundUpdated = Kind(rawValue: "refund.updated")
        /// A dispute was opened.
        public static let disputeCreated = Kind(rawValue: "dispute.created")
        /// A dispute changed (evidence submitted, under review).
        public static let disputeUpdated = Kind(rawValue: "dispute.updated")
        /// A dispute was decided.
        public static let disputeClosed = Kind(rawValue: "dispute.closed")
        /// Any other provider event (see `providerType`).
        public static let other = Kind(rawValue: "other")
    }

    /// The provider's event id (deduplicate on it: providers deliver at least once).
    public var id: String
    /// What happened.
    public var kind: Kind
    /// The provider's own type (`payment_intent.succeeded`, `PAYMENT.CAPTURE.COMPLETED`).
    public var providerType: String
    /// When the provider created the event.
    public var createdAt: Date
    /// The payment, for payment events (and the disputed or refunded one when the provider sends it).
    public var payment: Payment?
    /// The refund, for refund events.
    public var refund: Refund?
    /// The dispute, for dispute events.
    public var dispute: Dispute?

    /// Creates an event.
    public init(id: String, kind: Kind, providerType: String, createdAt: Date, payment: Payment? = nil, refund: Refund? = nil, dispute: Dispute? = nil) {
        self.id = id
        self.kind = kind
        self.providerType = providerType
        self.createdAt = createdAt
        self.payment = payment
        self.refund = refund
        self.dispute = dispute
    }
}

/// Turns a provider's webhook request into a ``PaymentEvent`` after proving it came from the provider
/// (a signature checked in constant time with a timestamp tolerance, or the provider's verify call).
public protocol PaymentWebhookVerifier: Sendable {
    /// Verifies and parses one delivery. `headers` names may be in any case.
    /// - Throws: `unauthenticated` for a missing, wrong or stale signature; `invalidArgument` for a body that is not an event.
    func verifyWebhook(body: [UInt8], headers: [String: String]) async throws -> PaymentEvent
}
