import Foundation
import NimbusBilling
import NimbusCore
import NimbusTesting
import NimbusCurrency
import NimbusPayment
import NimbusPaymentMemory
import NimbusTax
import Synchronization
import Testing

/// Billing scenarios, run against every ``BillingStore`` (SQLite, PostgreSQL): each walks a
/// subscription through time with a test clock, pays through the embedded payment engine, taxes
/// with the embedded calculator (German VAT, 19 %), and checks every invoice to the cent.
///
/// ```swift
/// @Test(arguments: BillingConformance.checks)
/// func conformance(_ check: BillingConformance.Check) async throws {
///     try await check.run(.init { try SQLiteBillingStore() })
/// }
/// ```
public enum BillingConformance {
    /// How a scenario reaches the store under test.
    public struct Harness: Sendable {
        /// Makes a fresh store (one per scenario).
        public var makeStore: @Sendable () async throws -> any BillingStore
        /// Creates a harness.
        public init(makeStore: @escaping @Sendable () async throws -> any BillingStore) { self.makeStore = makeStore }
    }

    /// One named scenario (the conformance kit's check over this harness).
    public typealias Check = ConformanceCheck<Harness>


    /// A test clock the scenario moves.
    typealias Clock = ManualDate

    /// What a scenario works with: the engine, its clock, the payment engine behind it.
    struct Context: Sendable {
        let clock: Clock
        let payments: MemoryPaymentDriver
        let billing: BillingEngine

        init(store: any BillingStore, dunning: DunningPolicy = DunningPolicy(retryAfter: [.seconds(3 * 86_400), .seconds(5 * 86_400)])) async throws {
            let clock = Clock(BillingConformance.date("2025-01-15"))
            self.clock = clock
            payments = try MemoryPaymentDriver(now: { clock.now })
            let tax = TaxCalculator(configuration: .init(homeCountry: "DE", registrations: [TaxRegistration(country: "DE")]))
            billing = try await BillingEngine(store: store, configuration: .init(
                payments: PaymentClient(driver: payments, retry: .init(maxAttempts: 1, baseDelay: .milliseconds(1), maxDelay: .milliseconds(1))),
                tax: tax, dunning: dunning, now: { clock.now }))
        }

        /// Moves the clock and runs what is due.
        @discardableResult
        func advance(to day: String) async throws -> [Invoice] {
            clock.set(BillingConformance.date(day))
            return try await billing.advance()
        }

        /// The standard catalog: an API-calls meter, Basic (10.00 + calls over 1,000 at 0.002) and Pro (30.00 + calls over 5,000 at 0.001).
        func catalog() async throws {
            try await billing.createMeter(Meter(code: "api_calls", name: "API calls", aggregation: .count))
            try await billing.createPlan(Plan(id: "basic", name: "Basic", currency: .eur, charges: [
                Charge(id: "base", description: "Basic plan", pricing: .flat(money("10.00"))),
                Charge(id: "calls", description: "API calls", kind: .metered(meter: "api_calls"), pricing: .graduated([
                    PriceTier(upTo: 1000, unitPrice: money("0")), PriceTier(upTo: nil, unitPrice: money("0.002"))])),
            ]))
            try await billing.createPlan(Plan(id: "pro", name: "Pro", currency: .eur, charges: [
                Charge(id: "base", description: "Pro plan", pricing: .flat(money("30.00"))),
                Charge(id: "calls", description: "API calls", kind: .metered(meter: "api_calls"), pricing: .graduated([
                    PriceTier(upTo: 5000, unitPrice: money("0")), PriceTier(upTo: nil, unitPrice: money("0.001"))])),
            ]))
            try await billing.saveCustomer(BillingCustomer(id: "cus_ada", name: "Ada", country: "DE", postcode: "10115", paymentMethodID: TestCard.visa))
        }

        /// `count` calls spread over the day `day`, with ids `prefix-0`…
        func calls(_ count: Int, on day: String, subscription: String, prefix: String) async throws {
            let start = BillingConformance.date(day)
            let events = (0..<count).map {
                UsageEvent(id: "\(prefix)-\($0)", subscriptionID: subscription, meter: "api_calls", timestamp: start.addingTimeInterval(Double($0 % 80_000)))
            }
            try await billing.recordUsage(events)
        }
    }

    static func money(_ text: String) -> Money { (try? Money(text, .eur)) ?? .zero(.eur) }

    static func date(_ day: String) -> Date {
        let formatter = ISO8601DateFormatter()
        return formatter.date(from: day.count == 10 ? day + "T00:00:00Z" : day) ?? Date(timeIntervalSince1970: 0)
    }

    static func expectTotals(_ invoices: [Invoice], _ expected: [String], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let totals = invoices.map { $0.total.amountText }
        #expect(totals == expected, "\(what): invoice totals", sourceLocation: sourceLocation)
    }

    /// A scenario that runs on a fresh store.
    static func check(_ name: String, _ body: @escaping @Sendable (Context) async throws -> Void) -> Check {
        Check(name) { harness in try await body(try await Context(store: try await harness.makeStore())) }
    }

    /// Every scenario.
    public static let checks: [Check] = [
        check("a year of a subscription: usage, an upgrade, a failed payment recovered by dunning, a downgrade") { context in
            try await context.catalog()
            let billing = context.billing
            let subscription = try await billing.subscribe(customerID: "cus_ada", planID: "basic")
            let id = subscription.id
            #expect(subscription.status == .active && subscription.currentPeriodEnd == date("2025-02-15"))
            // January: 1,500 calls, and 100 of them sent twice (deduplicated by id).
            try await context.calls(1500, on: "2025-01-20", subscription: id, prefix: "jan")
            try await context.calls(100, on: "2025-01-21", subscription: id, prefix: "jan")
            try await context.advance(to: "2025-02-15")            // 500 billable calls × 0.002 + Basic
            try await context.calls(800, on: "2025-02-20", subscription: id, prefix: "feb")
            // 1 March, half-way through a 28-day period: upgrade, invoiced at once.
            context.clock.set(date("2025-03-01"))
            try await billing.changePlan(subscriptionID: id, to: "pro", proration: .alwaysInvoice)
            try await context.calls(6000, on: "2025-03-05", subscription: id, prefix: "mar")
            try await context.advance(to: "2025-03-15")            // 1,000 calls over Pro's 5,000 × 0.001 + Pro
            try await context.calls(4000, on: "2025-03-20", subscription: id, prefix: "apr")
            try await context.advance(to: "2025-04-15")
            try await context.advance(to: "2025-05-15")
            try await context.calls(12_000, on: "2025-05-20", subscription: id, prefix: "may")
            try await context.advance(to: "2025-06-15")
            // July: the card now has insufficient funds.
            try await billing.saveCustomer(BillingCustomer(id: "cus_ada", name: "Ada", country: "DE", postcode: "10115", paymentMethodID: TestCard.insufficientFunds))
            let july = try await context.advance(to: "2025-07-15")
            #expect(july.first?.status == .open && july.first?.lastFailure?.kind == .insufficientFunds)
            #expect(try await billing.subscription(id).status == .pastDue)
            try await context.advance(to: "2025-07-18")            // retry 1 of 2 fails
            #expect(try await billing.invoice(july[0].id).attempts == 2)
            context.clock.set(date("2025-07-20"))
            try await billing.saveCustomer(BillingCustomer(id: "cus_ada", name: "Ada", country: "DE", postcode: "10115", paymentMethodID: TestCard.visa))
            try await context.advance(to: "2025-07-23")            // retry 2 succeeds with the new card
            let recovered = try await billing.invoice(july[0].id)
            #expect(recovered.status == .paid && recovered.attempts == 3 && recovered.paidAt == date("2025-07-23"))
            #expect(try await billing.subscription(id).status == .active)
            try await context.advance(to: "2025-08-15")
            try await context.calls(2000, on: "2025-08-20", subscription: id, prefix: "aug")
            // 1 September, 14 days before the end of a 31-day period: downgrade, prorated on the next invoice.
            context.clock.set(date("2025-09-01"))
            try await billing.changePlan(subscriptionID: id, to: "basic")
            try await context.calls(1200, on: "2025-09-05", subscription: id, prefix: "sep")
            for day in ["2025-09-15", "2025-10-15", "2025-11-15", "2025-12-15", "2026-01-15"] { try await context.advance(to: day) }

            let invoices = try await billing.invoices(customerID: "cus_ada")
            expectTotals(invoices, [
                "11.90",    // 15 Jan: Basic 10.00 + 19 %
                "13.09",    // 15 Feb: 500 calls 1.00 + Basic 10.00 = 11.00 + 2.09
                "11.90",    // 1 Mar: Pro 30.00 × 14/28 − Basic 10.00 × 14/28 = 10.00 + 1.90 (800 Basic calls are free)
                "36.89",    // 15 Mar: 1,000 Pro calls 1.00 + Pro 30.00 = 31.00 + 5.89
                "35.70",    // 15 Apr: 4,000 calls free + Pro 30.00
                "35.70",    // 15 May
                "44.03",    // 15 Jun: 7,000 calls 7.00 + 30.00 = 37.00 + 7.03
                "35.70",    // 15 Jul: failed twice, paid on 23 Jul
                "35.70",    // 15 Aug
                "1.63",     // 15 Sep: 200 Basic calls 0.40 − 13.55 unused Pro (30 × 14/31) + 4.52 Basic (10 × 14/31) + Basic 10.00 = 1.37 + 0.26
                "11.90", "11.90", "11.90", "11.90",   // Oct to Jan
            ], "the year")
            #expect(invoices.map(\.number) == (1...14).map { String(format: "INV-%06d", $0) })
            #expect(invoices.allSatisfy { $0.status == .paid && $0.amountDue.isZero })
            #expect(invoices[2].lines.map(\.amount.amountText) == ["0.00", "-5.00", "15.00"])
            #expect(invoices[9].lines.map(\.amount.amountText) == ["0.40", "0.00", "-13.55", "4.52", "10.00"])
            #expect(invoices[1].lines.first?.quantity == 1500, "the repeated ids were counted once")
            // What the payment engine collected is exactly what the invoices say.
            let collected = try await context.payments.events().filter { $0.kind == .paymentSucceeded }.compactMap(\.payment?.amountReceived)
            #expect(try Money.sum(collected, currency: .eur) == Money.sum(invoices.map(\.total), currency: .eur))
            #expect(try Money.sum(invoices.map(\.total), currency: .eur).amountText == "309.84")
            let kinds = try await billing.events(limit: 1000).map(\.event.kind)
            #expect(kinds.filter { $0 == .invoicePaymentFailed }.count == 2 && kinds.filter { $0 == .invoicePaid }.count == 14)
        },
        check("a trial bills nothing, then a once coupon and a repeating coupon discount the right invoices; cancel at period end stops renewal") { context in
            try await context.catalog()
            let billing = context.billing
            try await billing.createCoupon(Coupon(id: "WELCOME", discount: .percentOff(50), duration: .once))
            try await billing.createCoupon(Coupon(id: "FIVE", discount: .amountOff(money("5.00")), duration: .repeating(months: 2)))
            let trial = try await billing.subscribe(customerID: "cus_ada", planID: "pro", couponID: "WELCOME", trialDays: 14)
            #expect(trial.status == .trialing && trial.currentPeriodEnd == date("2025-01-29"))
            try await context.calls(9000, on: "2025-01-20", subscription: trial.id, prefix: "trial")   // free during the trial
            #expect(try await context.advance(to: "2025-01-28").isEmpty)
            let first = try await context.advance(to: "2025-01-29")
            expectTotals(first, ["17.85"], "trial end: Pro 30.00 − 50 % = 15.00 + 2.85")
            #expect(try await billing.subscription(trial.id).status == .active)
            expectTotals(try await context.advance(to: "2025-02-28"), ["35.70"], "the once coupon is spent")

            try await billing.saveCustomer(BillingCustomer(id: "cus_bo", name: "Bo", country: "DE", paymentMethodID: TestCard.visa))
            let repeating = try await billing.subscribe(customerID: "cus_bo", planID: "basic", couponID: "FIVE")
            try await context.advance(to: "2025-03-28")
            try await context.advance(to: "2025-04-28")
            try await billing.cancel(subscriptionID: repeating.id, atPeriodEnd: true)
            try await context.advance(to: "2025-05-28")
            try await context.advance(to: "2025-06-28")
            expectTotals(try await billing.invoices(customerID: "cus_bo"), ["5.95", "5.95", "11.90"],
                         "28 Feb and 28 Mar fall within two months of redemption, 28 Apr does not; nothing after the cancellation")
            let ended = try await billing.subscription(repeating.id)
            #expect(ended.status == .canceled && ended.canceledAt == date("2025-05-28"))
            await #expect(throws: NimbusError.self) {
                try await billing.recordUsage(UsageEvent(id: "late", subscriptionID: repeating.id, meter: "api_calls", timestamp: context.clock.now))
            }
        },
        check("canceling now bills usage so far and credits unused time, which pays the next invoice") { context in
            try await context.catalog()
            let billing = context.billing
            let first = try await billing.subscribe(customerID: "cus_ada", planID: "pro")
            try await context.calls(5500, on: "2025-01-20", subscription: first.id, prefix: "a")
            context.clock.set(date("2025-01-31"))   // 15 of 31 days left
            let canceled = try await billing.cancel(subscriptionID: first.id, atPeriodEnd: false, prorate: true)
            #expect(canceled.status == .canceled)
            // 500 calls over Pro's 5,000: 0.50; unused Pro 30.00 × 15/31 = 14.516 → −14.52; subtotal −14.02, tax −2.66.
            let invoices = try await billing.invoices(customerID: "cus_ada")
            expectTotals(invoices, ["35.70", "-16.68"], "the final invoice is a credit")
            #expect(try await billing.customer("cus_ada").credit?.amountText == "16.68")
            let second = try await billing.subscribe(customerID: "cus_ada", planID: "basic")
            let next = try await billing.invoices(customerID: "cus_ada").last!
            #expect(next.subscriptionID == second.id && next.total.amountText == "11.90" && next.creditApplied.amountText == "11.90" && next.amountDue.isZero)
            #expect(next.status == .paid)
            #expect(try await billing.customer("cus_ada").credit?.amountText == "4.78")
            await #expect(throws: NimbusError.self) { try await billing.adjustCredit(customerID: "cus_ada", by: money("-4.79")) }
            #expect(try await billing.adjustCredit(customerID: "cus_ada", by: money("-4.78")).isZero)
        },
        check("pause skips invoices until resumed; credit notes reduce, refund or credit; void and uncollectible close invoices") { context in
            try await context.catalog()
            let billing = context.billing
            let subscription = try await billing.subscribe(customerID: "cus_ada", planID: "basic")
            try await billing.pause(subscriptionID: subscription.id)
            #expect(try await context.advance(to: "2025-02-15").isEmpty, "no invoice while paused")
            try await billing.resume(subscriptionID: subscription.id)
            expectTotals(try await context.advance(to: "2025-03-15"), ["11.90"], "billing starts again at the next period")

            let paid = try await billing.invoices(customerID: "cus_ada")[0]
            let refund = try await billing.createCreditNote(invoiceID: paid.id, amount: money("5.00"), reason: "outage", destination: .refund)
            #expect(refund.number == "CN-000001" && refund.destination == .refund)
            #expect(try await context.payments.refunds(of: paid.paymentID!).map(\.amount.amountText) == ["5.00"])
            let credit = try await billing.createCreditNote(invoiceID: paid.id, amount: money("6.90"), reason: "goodwill")
            #expect(credit.destination == .customerCredit && credit.number == "CN-000002")
            #expect(try await billing.customer("cus_ada").credit?.amountText == "6.90")
            await #expect(throws: NimbusError.self, "no more than the invoice total") {
                try await billing.createCreditNote(invoiceID: paid.id, amount: money("0.01"), reason: "too much")
            }
            // An open invoice: the card fails, a credit note reduces what is due, voiding ends it.
            try await billing.saveCustomer(BillingCustomer(id: "cus_ada", name: "Ada", country: "DE", paymentMethodID: TestCard.insufficientFunds))
            let failed = try await context.advance(to: "2025-04-15")[0]
            #expect(failed.status == .open && failed.creditApplied.amountText == "6.90" && failed.amountDue.amountText == "5.00")
            let reduced = try await billing.createCreditNote(invoiceID: failed.id, amount: money("2.00"), reason: "discount")
            let afterNote = try await billing.invoice(failed.id)
            #expect(reduced.destination == .invoice && afterNote.amountDue.amountText == "3.00")
            let voided = try await billing.voidInvoice(failed.id)
            #expect(voided.status == .void)
            #expect(try await billing.subscription(subscription.id).status == .active, "nothing open any more")
            await #expect(throws: NimbusError.self) { try await billing.voidInvoice(paid.id) }
            let next = try await context.advance(to: "2025-05-15")[0]
            let uncollectible = try await billing.markUncollectible(next.id)
            #expect(uncollectible.status == .uncollectible)
            #expect(try await context.advance(to: "2025-05-20").isEmpty)
            #expect(try await billing.invoice(next.id).attempts == 1, "no retries after giving up")
        },
        check("dunning retries on schedule, then cancels the subscription and marks the invoice uncollectible") { context in
            try await context.catalog()
            let billing = context.billing
            try await billing.saveCustomer(BillingCustomer(id: "cus_ada", name: "Ada", country: "DE", paymentMethodID: TestCard.declined))
            let subscription = try await billing.subscribe(customerID: "cus_ada", planID: "basic")
            let invoice = try await billing.invoices(customerID: "cus_ada")[0]
            #expect(invoice.status == .open && invoice.nextPaymentAttempt == date("2025-01-18"))
            try await context.advance(to: "2025-02-01")       // both retries (18 Jan, 23 Jan) fail
            let given = try await billing.invoice(invoice.id)
            #expect(given.status == .uncollectible && given.attempts == 3 && given.nextPaymentAttempt == nil)
            let ended = try await billing.subscription(subscription.id)
            #expect(ended.status == .canceled && ended.canceledAt == date("2025-01-23"))
            #expect(try await context.advance(to: "2025-03-01").isEmpty, "a canceled subscription does not renew")
            let attempts = try await context.payments.events().filter { $0.kind == .paymentFailed }.count
            #expect(attempts == 3, "one payment per attempt, each with its own idempotency key")
        },
        check("advance is idempotent and a jump over several periods bills each one in order") { context in
            try await context.catalog()
            let billing = context.billing
            let subscription = try await billing.subscribe(customerID: "cus_ada", planID: "basic")
            try await context.calls(1100, on: "2025-02-20", subscription: subscription.id, prefix: "x")
            let jumped = try await context.advance(to: "2025-05-20")
            expectTotals(jumped, ["11.90", "12.14", "11.90", "11.90"], "15 Feb, 15 Mar (100 calls 0.20), 15 Apr, 15 May")
            #expect(try await billing.advance().isEmpty)
            #expect(try await billing.invoices(customerID: "cus_ada").count == 5)
            #expect(try await billing.recordUsage(UsageEvent(id: "x-1", subscriptionID: subscription.id, meter: "api_calls", timestamp: context.clock.now)) == false)
            await #expect(throws: NimbusError.self) { try await billing.subscribe(customerID: "cus_nobody", planID: "basic") }
            await #expect(throws: NimbusError.self) { try await billing.changePlan(subscriptionID: subscription.id, to: "missing") }
            try await billing.createPlan(Plan(id: "yearly", name: "Yearly", currency: .eur, interval: .year, charges: [
                Charge(id: "base", description: "Yearly", pricing: .flat(money("100")))]))
            await #expect(throws: NimbusError.self, "interval changes are refused") { try await billing.changePlan(subscriptionID: subscription.id, to: "yearly") }
            await #expect(throws: NimbusError.self) {
                try await billing.createPlan(Plan(id: "bad", name: "Bad", currency: .eur, charges: [
                    Charge(id: "x", description: "x", kind: .metered(meter: "nope"), pricing: .perUnit(money("1")))]))
            }
        },
    ]
}
