import Foundation
import NimbusCore
import NimbusCurrency

/// What to create.
public struct PaymentRequest: Sendable, Hashable {
    /// The amount to collect (rounded to the currency's minor units before sending).
    public var amount: Money
    /// When funds are taken.
    public var captureMethod: CaptureMethod
    /// The customer.
    public var customerID: String?
    /// A payment method to attach (a card token, a saved method).
    public var paymentMethodID: String?
    /// Confirm at once (with the payment method).
    public var confirm: Bool
    /// Your fields.
    public var metadata: [String: String]

    /// Creates a request.
    public init(amount: Money, captureMethod: CaptureMethod = .automatic, customerID: String? = nil, paymentMethodID: String? = nil,
                confirm: Bool = false, metadata: [String: String] = [:]) {
        self.amount = amount
        self.captureMethod = captureMethod
        self.customerID = customerID
        self.paymentMethodID = paymentMethodID
        self.confirm = confirm
        self.metadata = metadata
    }
}

/// A refund.
public struct Refund: Sendable, Hashable, Codable {
    /// Where a refund stands (unknown provider values are kept as they come).
    public struct Status: OpenEnumeration {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Sent back to the payer.
        public static let succeeded = Status(rawValue: "succeeded")
        /// On its way.
        public static let pending = Status(rawValue: "pending")
        /// The payer's bank refused it (the funds return to the merchant balance).
        public static let failed = Status(rawValue: "failed")
        /// Canceled before it was sent.
        public static let canceled = Status(rawValue: "canceled")
    }

    /// Its id.
    public var id: String
    /// The payment refunded.
    public var paymentID: String
    /// How much.
    public var amount: Money
    /// Where it stands.
    public var status: Status
    /// Why (`requested_by_customer`, `duplicate`, `fraudulent`).
    public var reason: String?
    /// When it was created.
    public var createdAt: Date

    /// Creates a refund.
    public init(id: String, paymentID: String, amount: Money, status: Status, reason: String? = nil, createdAt: Date = Date()) {
        self.id = id
        self.paymentID = paymentID
        self.amount = amount
        self.status = status
        self.reason = reason
        self.createdAt = createdAt
    }
}

/// What a payment provider does: the operations every adapter implements (Stripe, PayPal, the
/// embedded engine). Mutating calls receive the idempotency key to send.
public protocol PaymentDriver: NimbusDriver {
    /// Creates a payment (and confirms it when asked).
    func create(_ request: PaymentRequest, idempotencyKey: IdempotencyKey) async throws -> Payment
    /// Confirms a payment, with a payment method if it has none.
    func confirm(_ paymentID: String, paymentMethodID: String?, idempotencyKey: IdempotencyKey) async throws -> Payment
    /// Captures all or part of an authorized payment.
    func capture(_ paymentID: String, amount: Money?, idempotencyKey: IdempotencyKey) async throws -> Payment
    /// Cancels a payment that has not succeeded.
    func cancel(_ paymentID: String, idempotencyKey: IdempotencyKey) async throws -> Payment
    /// Refunds all or part of a succeeded payment (several partial refunds allowed).
    func refund(_ paymentID: String, amount: Money?, reason: String?, idempotencyKey: IdempotencyKey) async throws -> Refund
    /// Reads a payment. - Throws: `notFound` for an unknown id.
    func payment(_ paymentID: String) async throws -> Payment
    /// The refunds of a payment, oldest first.
    func refunds(of paymentID: String) async throws -> [Refund]
    /// The disputes of a payment, oldest first.
    func disputes(of paymentID: String) async throws -> [Dispute]
}

/// The portable payment API: every mutating call gets **one** idempotency key, sent on every retry of
/// that call, so a timeout followed by a retry never charges twice.
///
/// ```swift
/// let payments = PaymentClient(driver: StripePaymentDriver(...))
/// let payment = try await payments.create(PaymentRequest(amount: Money("49.90", .eur), paymentMethodID: "pm_card_visa", confirm: true),
///                                         idempotencyKey: try IdempotencyKey("order-1042"))
/// ```
public struct PaymentClient: PortableClient {
    private let driver: any PaymentDriver
    /// Retries of transient failures (the same key each time).
    public let retry: RetryPolicy

    /// Creates a client.
    public init(driver: any PaymentDriver, retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(300), maxDelay: .seconds(5))) {
        self.driver = driver
        self.retry = retry
    }

    /// The payment domain's openers, empty: adapter modules add their schemes (`.withMemory()`,
    /// `.withSQLite()`, `.withStripe()`, `.withPayPal()`).
    public static var openers: URLOpenerRegistry<any PaymentDriver> { URLOpenerRegistry(domain: "payment") }

    /// Opens the driver that `url`'s scheme names in `openers`.
    ///
    /// ```swift
    /// let payments = try await PaymentClient.open("sqlite://./.nimbus/payments.sqlite",
    ///                                             openers: PaymentClient.openers.withMemory().withSQLite().withStripe())
    /// ```
    public static func open(_ url: String, openers: URLOpenerRegistry<any PaymentDriver>,
                            retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(300), maxDelay: .seconds(5))) async throws -> PaymentClient {
        PaymentClient(driver: try await openers.open(url), retry: retry)
    }

    /// The provider's name (`stripe`, `paypal`, `memory`).
    public var provider: String { driver.provider }

    /// The driver as `T`, for provider calls the portable API does not name.
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// Releases the driver.
    public func close() async throws { try await driver.close() }

    private func run<T: Sendable>(_ key: IdempotencyKey, _ body: @escaping @Sendable (IdempotencyKey) async throws -> T) async throws -> T {
        try await retry.run(clock: ContinuousClock()) { _ in try await body(key) }
    }

    /// Creates a payment; the amount is rounded (half-even) to the currency's minor units.
    public func create(_ request: PaymentRequest, idempotencyKey: IdempotencyKey = IdempotencyKey()) async throws -> Payment {
        guard request.amount.amount > 0 else { throw NimbusError(.invalidArgument, "a payment amount must be above zero, not \(request.amount)") }
        var prepared = request
        prepared.amount = request.amount.rounded()
        let rounded = prepared
        return try await run(idempotencyKey) { try await driver.create(rounded, idempotencyKey: $0) }
    }

    /// Confirms a payment.
    public func confirm(_ paymentID: String, paymentMethodID: String? = nil, idempotencyKey: IdempotencyKey = IdempotencyKey()) async throws -> Payment {
        try await run(idempotencyKey) { try await driver.confirm(paymentID, paymentMethodID: paymentMethodID, idempotencyKey: $0) }
    }

    /// Captures all (`nil`) or part of an authorized payment.
    public func capture(_ paymentID: String, amount: Money? = nil, idempotencyKey: IdempotencyKey = IdempotencyKey()) async throws -> Payment {
        try await run(idempotencyKey) { try await driver.capture(paymentID, amount: amount?.rounded(), idempotencyKey: $0) }
    }

    /// Cancels a payment.
    public func cancel(_ paymentID: String, idempotencyKey: IdempotencyKey = IdempotencyKey()) async throws -> Payment {
        try await run(idempotencyKey) { try await driver.cancel(paymentID, idempotencyKey: $0) }
    }

    /// Refunds all (`nil`) or part of a payment.
    public func refund(_ paymentID: String, amount: Money? = nil, reason: String? = nil, idempotencyKey: IdempotencyKey = IdempotencyKey()) async throws -> Refund {
        try await run(idempotencyKey) { try await driver.refund(paymentID, amount: amount?.rounded(), reason: reason, idempotencyKey: $0) }
    }

    /// Reads a payment (retried freely: reads are safe).
    public func payment(_ paymentID: String) async throws -> Payment {
        try await retry.run(clock: ContinuousClock()) { _ in try await driver.payment(paymentID) }
    }

    /// The refunds of a payment, oldest first.
    public func refunds(of paymentID: String) async throws -> [Refund] {
        try await retry.run(clock: ContinuousClock()) { _ in try await driver.refunds(of: paymentID) }
    }

    /// The disputes of a payment, oldest first.
    public func disputes(of paymentID: String) async throws -> [Dispute] {
        try await retry.run(clock: ContinuousClock()) { _ in try await driver.disputes(of: paymentID) }
    }
}
