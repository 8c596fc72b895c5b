import Foundation
import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusTax

/// One priced component of a plan.
public struct Charge: Sendable, Hashable, Codable {
    /// What is charged for.
    public enum Kind: Sendable, Hashable, Codable {
        /// Billed in advance each period for the subscription's quantity (seats, a base fee).
        case recurring
        /// Billed in arrears for a meter's usage in the period.
        case metered(meter: String)
    }
    /// Its id within the plan.
    public var id: String
    /// The invoice line text.
    public var description: String
    /// Recurring or metered.
    public var kind: Kind
    /// How the quantity is priced.
    public var pricing: PricingModel

    /// Creates a charge.
    public init(id: String, description: String, kind: Kind = .recurring, pricing: PricingModel) {
        self.id = id
        self.description = description
        self.kind = kind
        self.pricing = pricing
    }
}

/// What a customer subscribes to.
public struct Plan: Sendable, Hashable, Codable {
    /// Its id.
    public var id: String
    /// A name for invoices.
    public var name: String
    /// The currency of every charge.
    public var currency: Currency
    /// How often it bills.
    public var interval: BillingInterval
    /// The charges.
    public var charges: [Charge]
    /// Days of free trial for new subscriptions.
    public var trialDays: Int
    /// The tax category of the plan's charges.
    public var taxCategory: TaxCategory

    /// Creates a plan.
    public init(id: String, name: String, currency: Currency, interval: BillingInterval = .month, charges: [Charge], trialDays: Int = 0,
                taxCategory: TaxCategory = .standard) {
        self.id = id
        self.name = name
        self.currency = currency
        self.interval = interval
        self.charges = charges
        self.trialDays = trialDays
        self.taxCategory = taxCategory
    }
}

/// Who pays.
public struct BillingCustomer: Sendable, Hashable, Codable {
    /// Its id.
    public var id: String
    /// Name.
    public var name: String
    /// Email.
    public var email: String?
    /// Country (ISO), for tax.
    public var country: String
    /// Postcode, for tax.
    public var postcode: String?
    /// VAT number (B2B).
    public var vatNumber: String?
    /// The payment method charged for invoices (a card token, a vault id).
    public var paymentMethodID: String?
    /// Credit the customer holds, spent on the next invoices (credit notes, goodwill).
    public var credit: Money?

    /// Creates a customer.
    public init(id: String, name: String, email: String? = nil, country: String, postcode: String? = nil, vatNumber: String? = nil,
                paymentMethodID: String? = nil, credit: Money? = nil) {
        self.id = id
        self.name = name
        self.email = email
        self.country = country
        self.postcode = postcode
        self.vatNumber = vatNumber
        self.paymentMethodID = paymentMethodID
        self.credit = credit
    }
}

/// A discount.
public struct Coupon: Sendable, Hashable, Codable {
    /// How much.
    public enum Discount: Sendable, Hashable, Codable {
        /// A percentage of the subtotal.
        case percentOff(Decimal)
        /// A fixed amount off (at most the subtotal).
        case amountOff(Money)
    }
    /// For how long.
    public enum Duration: Sendable, Hashable, Codable {
        /// The first invoice only.
        case once
        /// Invoices for periods starting within this many months of the redemption.
        case repeating(months: Int)
        /// Every invoice.
        case forever
    }
    /// Its code.
    public var id: String
    /// How much.
    public var discount: Discount
    /// For how long.
    public var duration: Duration

    /// Creates a coupon.
    public init(id: String, discount: Discount, duration: Duration) {
        self.id = id
        self.discount = discount
        self.duration = duration
    }
}

/// A subscription's state.
public enum SubscriptionStatus: String, Sendable, Hashable, Codable {
    /// In a free trial.
    case trialing
    /// Paid up.
    case active
    /// An invoice failed and is being retried (dunning).
    case pastDue = "past_due"
    /// Collection paused: no invoices until resumed.
    case paused
    /// Ended.
    case canceled
}

/// A customer's subscription to a plan.
public struct Subscription: Sendable, Hashable, Codable {
    /// Its id.
    public var id: String
    /// The customer.
    public var customerID: String
    /// The plan.
    public var planID: String
    /// The quantity of recurring charges (seats).
    public var quantity: Decimal
    /// Where it stands.
    public var status: SubscriptionStatus
    /// The instant periods are counted from (the billing anchor).
    public var anchor: Date
    /// The index of the current period (0 = the first after the anchor).
    public var periodIndex: Int
    /// The current period.
    public var currentPeriodStart: Date
    /// The current period's end (the next bill).
    public var currentPeriodEnd: Date
    /// Usage counts for this subscription's plan from here (a plan change moves it).
    public var usageFrom: Date
    /// When the trial ends, if there is one.
    public var trialEnd: Date?
    /// Ends at the current period's end instead of renewing.
    public var cancelAtPeriodEnd: Bool
    /// When it ended.
    public var canceledAt: Date?
    /// The coupon applied, and when.
    public var couponID: String?
    /// When the coupon was redeemed.
    public var couponRedeemedAt: Date?
    /// How many invoices the coupon has discounted.
    public var couponUses: Int
    /// Lines waiting for the next invoice (prorations, old-plan usage after a change).
    public var pendingLines: [InvoiceLine]
    /// When it was created.
    public var createdAt: Date
}

/// One invoice line.
public struct InvoiceLine: Sendable, Hashable, Codable {
    /// What kind of line.
    public enum Kind: String, Sendable, Hashable, Codable {
        case subscription, usage, proration, discount, credit
    }
    /// The text.
    public var description: String
    /// What kind.
    public var kind: Kind
    /// The quantity.
    public var quantity: Decimal
    /// The amount (negative for prorated credit and discounts), rounded to minor units.
    public var amount: Money
    /// The service period it covers.
    public var periodStart: Date
    /// The period end.
    public var periodEnd: Date

    /// Creates a line.
    public init(description: String, kind: Kind, quantity: Decimal, amount: Money, periodStart: Date, periodEnd: Date) {
        self.description = description
        self.kind = kind
        self.quantity = quantity
        self.amount = amount
        self.periodStart = periodStart
        self.periodEnd = periodEnd
    }
}

/// An invoice's state.
public enum InvoiceStatus: String, Sendable, Hashable, Codable {
    /// Being prepared; can change.
    case draft
    /// Final and due.
    case open
    /// Settled.
    case paid
    /// Canceled (a mistake); nothing is due.
    case void
    /// Given up on after dunning; kept for the books.
    case uncollectible
}

/// A bill.
public struct Invoice: Sendable, Hashable, Codable {
    /// Its id (deterministic per subscription period, so a re-run never bills twice).
    public var id: String
    /// Its sequential number once final (`INV-000001`).
    public var number: String?
    /// The customer.
    public var customerID: String
    /// The subscription.
    public var subscriptionID: String?
    /// Where it stands.
    public var status: InvoiceStatus
    /// The lines before tax (discounts included).
    public var lines: [InvoiceLine]
    /// Sum of the lines.
    public var subtotal: Money
    /// The tax quote (lines and breakdown).
    public var tax: TaxQuote?
    /// Total tax.
    public var taxAmount: Money
    /// Subtotal plus tax.
    public var total: Money
    /// Customer credit spent on it.
    public var creditApplied: Money
    /// Credit notes issued against it.
    public var credited: Money
    /// What is left to pay.
    public var amountDue: Money
    /// What was paid.
    public var amountPaid: Money
    /// Payment attempts so far.
    public var attempts: Int
    /// When dunning tries next.
    public var nextPaymentAttempt: Date?
    /// The last payment's id.
    public var paymentID: String?
    /// Why the last attempt failed.
    public var lastFailure: PaymentFailure?
    /// The period it bills.
    public var periodStart: Date
    /// The period end.
    public var periodEnd: Date
    /// When it was created.
    public var createdAt: Date
    /// When it was finalized, paid, voided.
    public var finalizedAt: Date?
    /// When it was paid.
    public var paidAt: Date?
}

/// A reduction of an invoice after it was finalized.
public struct CreditNote: Sendable, Hashable, Codable {
    /// Where the credit goes.
    public enum Destination: String, Sendable, Hashable, Codable {
        /// Reduces what is due on an open invoice.
        case invoice
        /// Refunded through the payment provider.
        case refund
        /// Added to the customer's credit balance.
        case customerCredit = "customer_credit"
    }
    /// Its id.
    public var id: String
    /// Its number (`CN-000001`).
    public var number: String
    /// The invoice.
    public var invoiceID: String
    /// How much (tax included).
    public var amount: Money
    /// Why.
    public var reason: String
    /// Where it went.
    public var destination: Destination
    /// When.
    public var createdAt: Date
}

/// How failed payments are retried.
public struct DunningPolicy: Sendable, Hashable, Codable {
    /// What happens after the last retry fails.
    public enum FinalAction: String, Sendable, Hashable, Codable {
        /// Cancel the subscription and mark the invoice uncollectible.
        case cancelSubscription = "cancel_subscription"
        /// Mark the invoice uncollectible, keep the subscription past due.
        case markUncollectible = "mark_uncollectible"
        /// Leave everything as it is (past due, invoice open).
        case leavePastDue = "leave_past_due"
    }
    /// The waits before each retry, after the first failure.
    public var retryAfter: [Duration]
    /// What happens at the end.
    public var finalAction: FinalAction

    /// Creates a policy (by default: retry after 1, 3 and 5 days, then cancel).
    public init(retryAfter: [Duration] = [.seconds(86_400), .seconds(3 * 86_400), .seconds(5 * 86_400)], finalAction: FinalAction = .cancelSubscription) {
        self.retryAfter = retryAfter
        self.finalAction = finalAction
    }
}

/// What happened in billing — for webhooks to your own systems.
public struct BillingEvent: Sendable, Hashable, Codable {
    /// What happened.
    public struct Kind: OpenEnumeration {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public static let subscriptionCreated = Kind(rawValue: "subscription.created")
        public static let subscriptionUpdated = Kind(rawValue: "subscription.updated")
        public static let subscriptionTrialEnded = Kind(rawValue: "subscription.trial_ended")
        public static let subscriptionPaused = Kind(rawValue: "subscription.paused")
        public static let subscriptionResumed = Kind(rawValue: "subscription.resumed")
        public static let subscriptionCanceled = Kind(rawValue: "subscription.canceled")
        public static let invoiceFinalized = Kind(rawValue: "invoice.finalized")
        public static let invoicePaid = Kind(rawValue: "invoice.paid")
        public static let invoicePaymentFailed = Kind(rawValue: "invoice.payment_failed")
        public static let invoiceVoided = Kind(rawValue: "invoice.voided")
        public static let invoiceUncollectible = Kind(rawValue: "invoice.marked_uncollectible")
        public static let creditNoteCreated = Kind(rawValue: "credit_note.created")
    }
    /// Its id.
    public var id: String
    /// What happened.
    public var kind: Kind
    /// When (the engine's clock).
    public var createdAt: Date
    /// The subscription concerned.
    public var subscriptionID: String?
    /// The invoice concerned.
    public var invoiceID: String?
    /// The credit note concerned.
    public var creditNoteID: String?
}
