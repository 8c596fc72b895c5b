import Foundation
import NimbusCore
import NimbusTesting
import NimbusCurrency
import NimbusPayment
import Synchronization
import Testing

/// The behaviour every ``PaymentDriver`` must have — the embedded engine, Stripe and PayPal — stated
/// once and run against each.
///
/// ```swift
/// @Test(arguments: PaymentConformance.checks)
/// func conformance(_ check: PaymentConformance.Check) async throws {
///     try await check.run(PaymentConformance.Harness(
///         makeDriver: { try MemoryPaymentDriver() },
///         cards: .init(success: TestCard.visa, insufficientFunds: TestCard.insufficientFunds,
///                      threeDSecure: TestCard.threeDSecureRequired, disputed: TestCard.disputed),
///         completeAction: { driver, payment, succeeded in try await (driver as! MemoryPaymentDriver).completeAction(payment.id, succeeded: succeeded) }))
/// }
/// ```
public enum PaymentConformance {
    /// Payment methods with known outcomes at the provider under test.
    public struct Cards: Sendable {
        /// Succeeds.
        public var success: String
        /// Declined for insufficient funds.
        public var insufficientFunds: String
        /// Needs the payer to act (3-D Secure, an approval page) before it succeeds.
        public var threeDSecure: String
        /// Succeeds and is then disputed (the dispute check fails without one).
        public var disputed: String?

        /// Creates the set.
        public init(success: String, insufficientFunds: String, threeDSecure: String, disputed: String?) {
            self.success = success
            self.insufficientFunds = insufficientFunds
            self.threeDSecure = threeDSecure
            self.disputed = disputed
        }
    }

    /// How a check reaches the provider under test.
    public struct Harness: Sendable {
        /// Makes a driver (one per check).
        public var makeDriver: @Sendable () async throws -> any PaymentDriver
        /// The test payment methods.
        public var cards: Cards
        /// Plays the payer completing (or failing) the action a `requiresAction` payment waits for.
        public var completeAction: @Sendable (_ driver: any PaymentDriver, _ payment: Payment, _ succeeded: Bool) async throws -> Void
        /// How the provider behaves where providers differ (``ConformanceCapability/retriesAfterDecline``,
        /// ``ConformanceCapability/cancelsBeforeAuthorization``, ``ConformanceCapability/refusesKeyReuseWithOtherParameters``):
        /// the checks assert the behaviour the provider has, either way.
        public var capabilities: Set<ConformanceCapability>
        /// The currency the checks charge in.
        public var currency: Currency

        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any PaymentDriver, cards: Cards,
                    completeAction: @escaping @Sendable (any PaymentDriver, Payment, Bool) async throws -> Void,
                    capabilities: Set<ConformanceCapability> = PaymentConformance.allCapabilities, currency: Currency = .eur) {
            self.makeDriver = makeDriver
            self.cards = cards
            self.completeAction = completeAction
            self.capabilities = capabilities
            self.currency = currency
        }
    }

    /// One named behaviour (the conformance kit's check over this harness).
    public typealias Check = ConformanceCheck<Harness>

    /// What a check works with.
    struct Context: Sendable {
        let harness: Harness
        let driver: any PaymentDriver
        var client: PaymentClient { PaymentClient(driver: driver, retry: .init(maxAttempts: 3, baseDelay: .milliseconds(5), maxDelay: .milliseconds(20))) }
        var cards: Cards { harness.cards }
        func money(_ text: String) throws -> Money { try Money(text, harness.currency) }
        func pay(_ amount: String, card: String, capture: CaptureMethod = .automatic) async throws -> Payment {
            try await client.create(PaymentRequest(amount: try money(amount), captureMethod: capture, paymentMethodID: card, confirm: true,
                                                   metadata: ["check": "conformance"]))
        }
    }

    /// A check that runs on a fresh driver.
    static func check(_ name: String, _ body: @escaping @Sendable (Context) async throws -> Void) -> Check {
        Check(name) { harness in try await body(Context(harness: harness, driver: try await harness.makeDriver())) }
    }

    static func expectError(_ code: NimbusError.Code, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                            _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("\(what): expected \(code), but it succeeded", sourceLocation: sourceLocation)
        } catch let error as NimbusError {
            #expect(error.code == code, "\(what): \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(what): expected NimbusError.\(code), got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Every check.
    /// Every behaviour where providers differ; a harness names the ones its provider has.
    public static let allCapabilities: Set<ConformanceCapability> = [.retriesAfterDecline, .cancelsBeforeAuthorization, .refusesKeyReuseWithOtherParameters]

    /// The suite (every check runs on every driver: where providers differ, each asserts the provider's own behaviour).
    public static let suite = ConformanceSuite<Harness>(domain: "payment", checks: checks)

    static let checks: [Check] = [
        check("automatic capture collects the whole amount and keeps metadata") { context in
            let payment = try await context.pay("49.90", card: context.cards.success)
            #expect(payment.status == .succeeded)
            #expect(try payment.amount == context.money("49.90") && payment.amountReceived == payment.amount)
            #expect(payment.metadata["check"] == "conformance")
            let read = try await context.client.payment(payment.id)
            #expect(read.status == .succeeded && read.amountReceived == payment.amount && read.metadata == payment.metadata)
        },
        check("a payment created without a method is confirmed later") { context in
            let created = try await context.client.create(PaymentRequest(amount: try context.money("12.00")))
            #expect(created.status == .requiresPaymentMethod)
            #expect(created.amountReceived.isZero)
            let confirmed = try await context.client.confirm(created.id, paymentMethodID: context.cards.success)
            #expect(try confirmed.id == created.id && confirmed.status == .succeeded && confirmed.amountReceived == context.money("12.00"))
            await expectError(.failedPrecondition, "confirming a succeeded payment") {
                _ = try await context.client.confirm(created.id, paymentMethodID: context.cards.success)
            }
        },
        check("manual capture takes part of the authorization and releases the rest") { context in
            let authorized = try await context.pay("100.00", card: context.cards.success, capture: .manual)
            #expect(try authorized.status == .requiresCapture && authorized.amountCapturable == context.money("100.00"))
            #expect(authorized.amountReceived.isZero)
            await expectError(.invalidArgument, "capturing more than authorized") {
                _ = try await context.client.capture(authorized.id, amount: try context.money("100.01"))
            }
            let captured = try await context.client.capture(authorized.id, amount: try context.money("60.00"))
            #expect(try captured.status == .succeeded && captured.amountReceived == context.money("60.00"))
            #expect(captured.amountCapturable.isZero)
            await expectError(.failedPrecondition, "capturing twice") { _ = try await context.client.capture(authorized.id) }
            await expectError(.invalidArgument, "refunding more than captured") {
                _ = try await context.client.refund(authorized.id, amount: try context.money("60.01"))
            }
        },
        check("several partial refunds add up and never exceed what was received") { context in
            let payment = try await context.pay("30.00", card: context.cards.success)
            let first = try await context.client.refund(payment.id, amount: try context.money("10.00"), reason: "requested_by_customer")
            #expect(try first.amount == context.money("10.00") && first.paymentID == payment.id && first.status != .failed)
            let rest = try await context.client.refund(payment.id)            // everything left
            #expect(try rest.amount == context.money("20.00"))
            let refunds = try await context.client.refunds(of: payment.id)
            #expect(refunds.map(\.id) == [first.id, rest.id])
            #expect(try try await context.client.payment(payment.id).amountRefunded == context.money("30.00"))
            await expectError(.invalidArgument, "refunding a fully refunded payment") {
                _ = try await context.client.refund(payment.id, amount: try context.money("0.01"))
            }
        },
        check("a declined card leaves the payment needing a method; another card completes it") { context in
            let declined = try await context.pay("25.00", card: context.cards.insufficientFunds)
            #expect(declined.status == .requiresPaymentMethod)
            #expect(declined.lastFailure?.kind == .insufficientFunds, "failure: \(String(describing: declined.lastFailure))")
            #expect(declined.amountReceived.isZero)
            guard context.harness.capabilities.contains(.retriesAfterDecline) else {
                await expectError(.failedPrecondition, "confirming a payment the provider closed after a decline") {
                    _ = try await context.client.confirm(declined.id, paymentMethodID: context.cards.success)
                }
                return
            }
            let retried = try await context.client.confirm(declined.id, paymentMethodID: context.cards.success)
            #expect(try retried.status == .succeeded && retried.lastFailure == nil && retried.amountReceived == context.money("25.00"))
        },
        check("3-D Secure: the payment waits for the payer, then succeeds, or fails back to needing a method") { context in
            let waiting = try await context.pay("80.00", card: context.cards.threeDSecure)
            #expect(waiting.status == .requiresAction)
            #expect(waiting.nextActionURL != nil, "the payer needs somewhere to go")
            try await context.harness.completeAction(context.driver, waiting, true)
            var done = try await context.client.payment(waiting.id)
            if done.status == .requiresConfirmation {          // providers where the merchant takes the funds after approval (PayPal)
                done = try await context.client.confirm(waiting.id)
            }
            #expect(try done.status == .succeeded && done.amountReceived == context.money("80.00"))

            let failing = try await context.pay("81.00", card: context.cards.threeDSecure)
            try await context.harness.completeAction(context.driver, failing, false)
            let failed = try await context.client.payment(failing.id)
            #expect(failed.status == .requiresPaymentMethod && failed.lastFailure?.kind == .authenticationRequired)
        },
        check("cancel works until the payment succeeds, and never after") { context in
            let open = try await context.client.create(PaymentRequest(amount: try context.money("5.00")))
            if context.harness.capabilities.contains(.cancelsBeforeAuthorization) {
                let canceled = try await context.client.cancel(open.id)
                #expect(canceled.status == .canceled)
                await expectError(.failedPrecondition, "confirming a canceled payment") {
                    _ = try await context.client.confirm(open.id, paymentMethodID: context.cards.success)
                }
            } else {
                await expectError(.unimplemented, "canceling a payment the provider lets expire") { _ = try await context.client.cancel(open.id) }
            }
            let authorized = try await context.pay("7.00", card: context.cards.success, capture: .manual)
            #expect(try await context.client.cancel(authorized.id).status == .canceled, "an authorization is voided")
            let paid = try await context.pay("6.00", card: context.cards.success)
            await expectError(.failedPrecondition, "canceling a succeeded payment") { _ = try await context.client.cancel(paid.id) }
        },
        check("a repeated idempotency key returns the first result and moves money once") { context in
            let key = IdempotencyKey()
            let request = PaymentRequest(amount: try context.money("15.00"), paymentMethodID: context.cards.success, confirm: true)
            let first = try await context.client.create(request, idempotencyKey: key)
            let again = try await context.client.create(request, idempotencyKey: key)
            #expect(again.id == first.id && again.status == .succeeded)
            var other = request
            other.amount = try context.money("16.00")
            if context.harness.capabilities.contains(.refusesKeyReuseWithOtherParameters) {
                await expectError(.invalidArgument, "the key reused with another amount") { _ = try await context.client.create(other, idempotencyKey: key) }
            } else {
                let reused = try await context.client.create(other, idempotencyKey: key)
                #expect(reused.id == first.id, "the provider answers a reused key with the first result")
            }
            let refundKey = IdempotencyKey()
            let refund = try await context.client.refund(first.id, amount: try context.money("5.00"), idempotencyKey: refundKey)
            let repeated = try await context.client.refund(first.id, amount: try context.money("5.00"), idempotencyKey: refundKey)
            #expect(repeated.id == refund.id)
            #expect(try await context.client.refunds(of: first.id).count == 1)
            #expect(try try await context.client.payment(first.id).amountRefunded == context.money("5.00"))
        },
        check("a response lost after the provider acted is retried with the same key and charges once") { context in
            let lossy = ResponseLosingDriver(context.driver)
            let client = PaymentClient(driver: lossy, retry: .init(maxAttempts: 3, baseDelay: .milliseconds(5), maxDelay: .milliseconds(20)))
            let payment = try await client.create(PaymentRequest(amount: try context.money("9.99"), paymentMethodID: context.cards.success, confirm: true))
            #expect(payment.status == .succeeded)
            let refund = try await client.refund(payment.id, amount: try context.money("1.00"))
            #expect(try await context.client.refunds(of: payment.id).map(\.id) == [refund.id], "one refund, not two")
            #expect(lossy.lost == 2, "each call lost its first response")
        },
        check("unknown ids are notFound") { context in
            await expectError(.notFound, "reading an unknown payment") { _ = try await context.driver.payment("pay_doesnotexist0000") }
            await expectError(.notFound, "refunding an unknown payment") {
                _ = try await context.client.refund("pay_doesnotexist0000", amount: try context.money("1.00"))
            }
        },
        check("a disputed payment shows its dispute") { context in
            let card = try #require(context.cards.disputed, "every payment driver shows disputes: name the harness's disputed test card")
            let payment = try await context.pay("42.00", card: card)
            #expect(payment.status == .succeeded)
            let disputes = try await context.client.disputes(of: payment.id)
            #expect(disputes.count == 1)
            #expect(try disputes.first?.paymentID == payment.id && disputes.first?.amount == context.money("42.00"))
            #expect(disputes.first.map { !$0.status.isClosed } == true)
            #expect(try await context.client.disputes(of: context.pay("1.00", card: context.cards.success).id).isEmpty)
        },
    ]
}

/// Performs each call, then loses its first answer as a dropped connection would — so the client's
/// retry reaches a provider that has already acted.
final class ResponseLosingDriver: PaymentDriver {
    let base: any PaymentDriver
    private let lostCount = Mutex(0)
    private let seenKeys = Mutex<Set<String>>([])
    var provider: String { base.provider }
    var lost: Int { lostCount.withLock { $0 } }

    init(_ base: any PaymentDriver) { self.base = base }

    private func deliver<T>(_ key: IdempotencyKey, _ result: T) throws -> T {
        let first = seenKeys.withLock { $0.insert(key.value).inserted }
        if first {
            lostCount.withLock { $0 += 1 }
            throw NimbusError(.unavailable, "connection reset before the response arrived")
        }
        return result
    }

    func create(_ request: PaymentRequest, idempotencyKey: IdempotencyKey) async throws -> Payment {
        try deliver(idempotencyKey, try await base.create(request, idempotencyKey: idempotencyKey))
    }
    func confirm(_ paymentID: String, paymentMethodID: String?, idempotencyKey: IdempotencyKey) async throws -> Payment {
        try deliver(idempotencyKey, try await base.confirm(paymentID, paymentMethodID: paymentMethodID, idempotencyKey: idempotencyKey))
    }
    func capture(_ paymentID: String, amount: Money?, idempotencyKey: IdempotencyKey) async throws -> Payment {
        try deliver(idempotencyKey, try await base.capture(paymentID, amount: amount, idempotencyKey: idempotencyKey))
    }
    func cancel(_ paymentID: String, idempotencyKey: IdempotencyKey) async throws -> Payment {
        try deliver(idempotencyKey, try await base.cancel(paymentID, idempotencyKey: idempotencyKey))
    }
    func refund(_ paymentID: String, amount: Money?, reason: String?, idempotencyKey: IdempotencyKey) async throws -> Refund {
        try deliver(idempotencyKey, try await base.refund(paymentID, amount: amount, reason: reason, idempotencyKey: idempotencyKey))
    }
    func payment(_ paymentID: String) async throws -> Payment { try await base.payment(paymentID) }
    func refunds(of paymentID: String) async throws -> [Refund] { try await base.refunds(of: paymentID) }
    func disputes(of paymentID: String) async throws -> [Dispute] { try await base.disputes(of: paymentID) }
}

extension ConformanceCapability {
    /// A declined payment can be confirmed again with another method (Stripe, the engine); without it the
    /// provider closes it and confirming again is `failedPrecondition` (PayPal).
    public static let retriesAfterDecline: ConformanceCapability = "retriesAfterDecline"
    /// A payment never authorized can be canceled; without it canceling is `unimplemented` (PayPal lets orders expire).
    public static let cancelsBeforeAuthorization: ConformanceCapability = "cancelsBeforeAuthorization"
    /// A key repeated with other parameters is refused (Stripe, the engine); without it the first result comes back (PayPal).
    public static let refusesKeyReuseWithOtherParameters: ConformanceCapability = "refusesKeyReuseWithOtherParameters"
}
