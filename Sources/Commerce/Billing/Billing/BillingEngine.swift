import Foundation
import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusTax

/// The billing engine: plans and prices, subscriptions with trials, plan changes prorated to the
/// second, cancellation and pause, usage metering, invoices with discounts and tax, payment through
/// ``PaymentClient``, dunning, credit notes and customer credit — persisted in a ``BillingStore``.
///
/// Time only moves when you say so: ``advance()`` does everything due at the configured clock's
/// `now` (renewals, trial ends, retries), in order, however far the clock jumped — so a test walks a
/// subscription through a year in milliseconds, and a service calls it from a periodic job.
///
/// Invoices have deterministic ids (subscription + period) and payments deterministic idempotency
/// keys (invoice + attempt): running ``advance()`` again after a crash bills nothing twice.
///
/// ```swift
/// let billing = try await BillingEngine(store: SQLiteBillingStore(path: "billing.sqlite"),
///                                       configuration: .init(payments: PaymentClient(driver: stripe), tax: taxCalculator))
/// try await billing.createPlan(Plan(id: "pro", name: "Pro", currency: .eur, charges: [
///     Charge(id: "base", description: "Pro plan", pricing: .flat(try Money("30", .eur))),
///     Charge(id: "calls", description: "API calls", kind: .metered(meter: "api_calls"),
///            pricing: .graduated([PriceTier(upTo: 10_000, unitPrice: .zero(.eur)), PriceTier(upTo: nil, unitPrice: try Money("0.001", .eur))]))]))
/// let subscription = try await billing.subscribe(customerID: "cus_1", planID: "pro")
/// try await billing.recordUsage(UsageEvent(id: requestID, subscriptionID: subscription.id, meter: "api_calls", timestamp: Date()))
/// try await billing.advance()          // from a periodic job
/// ```
public actor BillingEngine {
    /// How prorations are billed when a plan changes.
    public enum ProrationBehavior: String, Sendable, Hashable, Codable {
        /// Prorated lines wait for the next invoice.
        case createProrations = "create_prorations"
        /// An invoice is issued and charged at once.
        case alwaysInvoice = "always_invoice"
        /// No prorations (the new price starts next period).
        case none
    }

    /// Settings.
    public struct Configuration: Sendable {
        /// Where invoices are charged.
        public var payments: PaymentClient
        /// Tax on invoices (`nil`: none).
        public var tax: (any TaxProvider)?
        /// How failed payments are retried.
        public var dunning: DunningPolicy
        /// Rounding of prorated and usage amounts to minor units.
        public var rounding: RoundingMode
        /// The clock (advance a test clock to walk subscriptions through time).
        public var now: @Sendable () -> Date

        /// Creates settings.
        public init(payments: PaymentClient, tax: (any TaxProvider)? = nil, dunning: DunningPolicy = DunningPolicy(),
                    rounding: RoundingMode = .halfUp, now: @escaping @Sendable () -> Date = { Date() }) {
            self.payments = payments
            self.tax = tax
            self.dunning = dunning
            self.rounding = rounding
            self.now = now
        }
    }

    /// The store.
    public let store: any BillingStore
    /// The settings.
    public let configuration: Configuration

    /// Creates an engine and migrates its store.
    public init(store: any BillingStore, configuration: Configuration) async throws {
        self.store = store
        self.configuration = configuration
        try await store.migrate()
    }

    // MARK: Catalog

    /// Adds or replaces a plan. - Throws: `invalidArgument` for charges in another currency or malformed tiers.
    public func createPlan(_ plan: Plan) async throws {
        guard !plan.charges.isEmpty else { throw NimbusError(.invalidArgument, "plan \(plan.id) has no charges") }
        for charge in plan.charges {
            try charge.pricing.validate()
            guard charge.pricing.currency == plan.currency else {
                throw NimbusError(.invalidArgument, "charge \(charge.id) of plan \(plan.id) is in \(charge.pricing.currency.code), the plan in \(plan.currency.code)")
            }
            if case .metered(let meter) = charge.kind, try await load(Meter.self, .meter, meter) == nil {
                throw NimbusError(.notFound, "charge \(charge.id) of plan \(plan.id) uses meter '\(meter)', which does not exist; create it first")
            }
        }
        try await save([.init(kind: .plan, id: plan.id, owner: nil, body: try encode(plan))])
    }

    /// Adds or replaces a meter.
    public func createMeter(_ meter: Meter) async throws {
        try await save([.init(kind: .meter, id: meter.code, owner: nil, body: try encode(meter))])
    }

    /// Adds a customer, or updates one's details (payment method, address, VAT number). The credit
    /// balance belongs to the engine: for a new customer `credit` is the opening balance, for an
    /// existing one it is kept as stored — change it with ``adjustCredit(customerID:by:reason:)``.
    public func saveCustomer(_ customer: BillingCustomer) async throws {
        var updated = customer
        if let existing = try await load(BillingCustomer.self, .customer, customer.id) { updated.credit = existing.credit }
        try await save([.init(kind: .customer, id: updated.id, owner: nil, body: try encode(updated))])
    }

    /// Adds to (or, negative, takes from) a customer's credit balance. - Throws: `invalidArgument` below zero.
    @discardableResult
    public func adjustCredit(customerID: String, by amount: Money) async throws -> Money {
        var customer = try await customer(customerID)
        let balance = try (customer.credit ?? .zero(amount.currency)).adding(amount)
        guard !balance.isNegative else { throw NimbusError(.invalidArgument, "customer \(customerID)'s credit cannot go below zero (\(balance))") }
        customer.credit = balance
        try await save([.init(kind: .customer, id: customer.id, owner: nil, body: try encode(customer))])
        return balance
    }

    /// Adds or replaces a coupon.
    public func createCoupon(_ coupon: Coupon) async throws {
        if case .percentOff(let percent) = coupon.discount, !(percent > 0 && percent <= 100) {
            throw NimbusError(.invalidArgument, "a percentage off is between 0 and 100, not \(percent)")
        }
        try await save([.init(kind: .coupon, id: coupon.id, owner: nil, body: try encode(coupon))])
    }

    /// A plan. - Throws: `notFound`.
    public func plan(_ id: String) async throws -> Plan { try await require(Plan.self, .plan, id) }
    /// A customer. - Throws: `notFound`.
    public func customer(_ id: String) async throws -> BillingCustomer { try await require(BillingCustomer.self, .customer, id) }
    /// A subscription. - Throws: `notFound`.
    public func subscription(_ id: String) async throws -> Subscription { try await require(Subscription.self, .subscription, id) }
    /// An invoice. - Throws: `notFound`.
    public func invoice(_ id: String) async throws -> Invoice { try await require(Invoice.self, .invoice, id) }

    /// A customer's invoices, oldest first.
    public func invoices(customerID: String) async throws -> [Invoice] {
        try await store.documents(.invoice, owner: customerID).map { try decode(Invoice.self, $0) }
    }

    /// A customer's credit notes, oldest first.
    public func creditNotes(customerID: String) async throws -> [CreditNote] {
        try await store.documents(.creditNote, owner: customerID).map { try decode(CreditNote.self, $0) }
    }

    /// Events after sequence number `after`, oldest first (feed them to your webhooks).
    public func events(after: Int64 = 0, limit: Int = 100) async throws -> [(sequence: Int64, event: BillingEvent)] {
        try await store.events(after: after, limit: limit).map { ($0.sequence, try decode(BillingEvent.self, $0.body)) }
    }

    // MARK: Subscriptions

    /// Subscribes a customer to a plan. Without a trial the first period is invoiced and charged at once.
    /// - Parameters:
    ///   - trialDays: overrides the plan's trial (0 for none).
    public func subscribe(customerID: String, planID: String, quantity: Decimal = 1, couponID: String? = nil, trialDays: Int? = nil) async throws -> Subscription {
        let customer = try await customer(customerID)
        let plan = try await plan(planID)
        guard quantity > 0 else { throw NimbusError(.invalidArgument, "a subscription quantity is above zero, not \(quantity)") }
        if let couponID { _ = try await require(Coupon.self, .coupon, couponID) }
        let now = configuration.now()
        let trial = trialDays ?? plan.trialDays
        let id = "sub_\(IDGenerator.shared.ulid())"
        var subscription: Subscription
        if trial > 0 {
            let trialEnd = BillingInterval(.day, count: trial).boundary(1, from: now)
            subscription = Subscription(id: id, customerID: customer.id, planID: plan.id, quantity: quantity, status: .trialing, anchor: trialEnd,
                                        periodIndex: -1, currentPeriodStart: now, currentPeriodEnd: trialEnd, usageFrom: trialEnd, trialEnd: trialEnd,
                                        cancelAtPeriodEnd: false, couponID: couponID, couponRedeemedAt: couponID == nil ? nil : now, couponUses: 0,
                                        pendingLines: [], createdAt: now)
            try await save([document(subscription)], [event(.subscriptionCreated, at: now, subscription: id)])
            return subscription
        }
        subscription = Subscription(id: id, customerID: customer.id, planID: plan.id, quantity: quantity, status: .active, anchor: now,
                                    periodIndex: 0, currentPeriodStart: now, currentPeriodEnd: plan.interval.boundary(1, from: now), usageFrom: now,
                                    trialEnd: nil, cancelAtPeriodEnd: false, couponID: couponID, couponRedeemedAt: couponID == nil ? nil : now,
                                    couponUses: 0, pendingLines: [], createdAt: now)
        let lines = try recurringLines(plan, quantity: quantity, from: subscription.currentPeriodStart, to: subscription.currentPeriodEnd)
        let invoice = try await finalize(id: "in_\(id)_0", customer: customer, subscription: &subscription, plan: plan, lines: lines,
                                         periodStart: subscription.currentPeriodStart, periodEnd: subscription.currentPeriodEnd, at: now,
                                         extraEvents: [event(.subscriptionCreated, at: now, subscription: id)])
        try await collect(invoice.id, at: now)
        return try await self.subscription(id)
    }

    /// Records usage. The event's id deduplicates: a repeat returns `false` and counts nothing.
    /// - Throws: `notFound` for an unknown subscription or meter; `failedPrecondition` for a canceled subscription.
    @discardableResult
    public func recordUsage(_ event: UsageEvent) async throws -> Bool {
        try await recordUsage([event]) == 1
    }

    /// Records a batch of usage in one transaction (ids already recorded are skipped); how many were new.
    /// - Throws: `notFound` for an unknown subscription or meter; `failedPrecondition` for a canceled subscription.
    @discardableResult
    public func recordUsage(_ events: [UsageEvent]) async throws -> Int {
        for id in Set(events.map(\.subscriptionID)) {
            let subscription = try await subscription(id)
            guard subscription.status != .canceled else {
                throw NimbusError(.failedPrecondition, "subscription \(subscription.id) is canceled; usage is no longer recorded")
            }
        }
        for meter in Set(events.map(\.meter)) { _ = try await require(Meter.self, .meter, meter) }
        return try await store.recordUsage(events)
    }

    /// Moves a subscription to another plan (or quantity) now, prorating recurring charges to the second.
    /// Usage so far is billed under the old plan.
    /// - Throws: `invalidArgument` for a plan in another currency or interval (cancel and subscribe instead).
    @discardableResult
    public func changePlan(subscriptionID: String, to planID: String, quantity: Decimal? = nil,
                           proration: ProrationBehavior = .createProrations) async throws -> Subscription {
        var subscription = try await subscription(subscriptionID)
        guard [.active, .trialing, .pastDue].contains(subscription.status) else {
            throw NimbusError(.failedPrecondition, "cannot change the plan of a \(subscription.status.rawValue) subscription")
        }
        let old = try await plan(subscription.planID)
        let new = try await plan(planID)
        guard old.currency == new.currency, old.interval == new.interval else {
            throw NimbusError(.invalidArgument, "plan \(new.id) bills \(new.interval) in \(new.currency.code), \(old.id) \(old.interval) in \(old.currency.code); cancel and subscribe to change either")
        }
        let now = configuration.now()
        let newQuantity = quantity ?? subscription.quantity
        guard newQuantity > 0 else { throw NimbusError(.invalidArgument, "a subscription quantity is above zero") }
        var lines: [InvoiceLine] = []
        if subscription.status != .trialing {
            lines += try await usageLines(subscription, plan: old, from: subscription.usageFrom, to: now)
            if proration != .none {
                let start = subscription.currentPeriodStart, end = subscription.currentPeriodEnd
                let fraction = Decimal(end.timeIntervalSince(now)) / Decimal(end.timeIntervalSince(start))
                for charge in old.charges where charge.kind == .recurring {
                    let full = try charge.pricing.amount(for: subscription.quantity)
                    lines.append(InvoiceLine(description: "Unused time on \(old.name) (\(charge.description)) after \(Self.day(now))", kind: .proration,
                                             quantity: subscription.quantity, amount: full.times(fraction).rounded(configuration.rounding).negated,
                                             periodStart: now, periodEnd: end))
                }
                for charge in new.charges where charge.kind == .recurring {
                    let full = try charge.pricing.amount(for: newQuantity)
                    lines.append(InvoiceLine(description: "Remaining time on \(new.name) (\(charge.description)) after \(Self.day(now))", kind: .proration,
                                             quantity: newQuantity, amount: full.times(fraction).rounded(configuration.rounding),
                                             periodStart: now, periodEnd: end))
                }
            }
            subscription.usageFrom = now
        }
        subscription.planID = new.id
        subscription.quantity = newQuantity
        let changed = event(.subscriptionUpdated, at: now, subscription: subscription.id)
        if proration == .alwaysInvoice && !lines.isEmpty {
            let customer = try await customer(subscription.customerID)
            let pending = subscription.pendingLines
            subscription.pendingLines = []
            let id = "in_\(subscription.id)_change_\(Int(now.timeIntervalSince1970))"
            let invoice = try await finalize(id: id, customer: customer, subscription: &subscription, plan: new, lines: pending + lines,
                                             periodStart: now, periodEnd: subscription.currentPeriodEnd, at: now, extraEvents: [changed])
            try await collect(invoice.id, at: now)
            return try await self.subscription(subscription.id)
        }
        subscription.pendingLines += lines
        try await save([document(subscription)], [changed])
        return subscription
    }

    /// Cancels a subscription: at the end of the period (it renews no more), or now — billing usage so
    /// far and, with `prorate`, crediting unused time to the customer's balance.
    @discardableResult
    public func cancel(subscriptionID: String, atPeriodEnd: Bool = true, prorate: Bool = false) async throws -> Subscription {
        var subscription = try await subscription(subscriptionID)
        guard subscription.status != .canceled else { throw NimbusError(.failedPrecondition, "subscription \(subscriptionID) is already canceled") }
        let now = configuration.now()
        if atPeriodEnd {
            subscription.cancelAtPeriodEnd = true
            try await save([document(subscription)], [event(.subscriptionUpdated, at: now, subscription: subscription.id)])
            return subscription
        }
        let plan = try await plan(subscription.planID)
        var lines = subscription.pendingLines
        if subscription.status != .trialing {
            lines += try await usageLines(subscription, plan: plan, from: subscription.usageFrom, to: now)
            if prorate {
                let start = subscription.currentPeriodStart, end = subscription.currentPeriodEnd
                let fraction = Decimal(end.timeIntervalSince(now)) / Decimal(end.timeIntervalSince(start))
                for charge in plan.charges where charge.kind == .recurring {
                    lines.append(InvoiceLine(description: "Unused time on \(plan.name) (\(charge.description)) after \(Self.day(now))", kind: .proration,
                                             quantity: subscription.quantity,
                                             amount: try charge.pricing.amount(for: subscription.quantity).times(fraction).rounded(configuration.rounding).negated,
                                             periodStart: now, periodEnd: end))
                }
            }
        }
        subscription.pendingLines = []
        subscription.status = .canceled
        subscription.canceledAt = now
        let canceled = event(.subscriptionCanceled, at: now, subscription: subscription.id)
        if lines.isEmpty {
            try await save([document(subscription)], [canceled])
            return subscription
        }
        let customer = try await customer(subscription.customerID)
        let invoice = try await finalize(id: "in_\(subscription.id)_final", customer: customer, subscription: &subscription, plan: plan, lines: lines,
                                         periodStart: subscription.currentPeriodStart, periodEnd: now, at: now, extraEvents: [canceled])
        try await collect(invoice.id, at: now)
        return try await self.subscription(subscription.id)
    }

    /// Pauses collection: renewals issue no invoices until ``resume(subscriptionID:)``; periods keep their dates.
    @discardableResult
    public func pause(subscriptionID: String) async throws -> Subscription {
        var subscription = try await subscription(subscriptionID)
        guard subscription.status == .active else { throw NimbusError(.failedPrecondition, "only an active subscription pauses, not a \(subscription.status.rawValue) one") }
        subscription.status = .paused
        try await save([document(subscription)], [event(.subscriptionPaused, at: configuration.now(), subscription: subscription.id)])
        return subscription
    }

    /// Resumes a paused subscription; billing starts again at the next period.
    @discardableResult
    public func resume(subscriptionID: String) async throws -> Subscription {
        var subscription = try await subscription(subscriptionID)
        guard subscription.status == .paused else { throw NimbusError(.failedPrecondition, "subscription \(subscriptionID) is not paused") }
        subscription.status = .active
        try await save([document(subscription)], [event(.subscriptionResumed, at: configuration.now(), subscription: subscription.id)])
        return subscription
    }

    // MARK: Time

    /// Does everything due at the clock's `now`, oldest first: trial ends, renewals (usage in arrears,
    /// recurring charges in advance, pending prorations), cancellations at period end, and payment
    /// retries. Returns the invoices it finalized.
    @discardableResult
    public func advance() async throws -> [Invoice] {
        let now = configuration.now()
        var created: [Invoice] = []
        while true {
            let subscriptions = try await store.documents(.subscription, owner: nil).map { try decode(Subscription.self, $0) }
                .filter { $0.status != .canceled && $0.currentPeriodEnd <= now }
            let retries = try await store.documents(.invoice, owner: nil).map { try decode(Invoice.self, $0) }
                .filter { $0.status == .open && ($0.nextPaymentAttempt.map { $0 <= now } ?? false) }
            let nextRenewal = subscriptions.min { $0.currentPeriodEnd < $1.currentPeriodEnd }
            let nextRetry = retries.compactMap { invoice in invoice.nextPaymentAttempt.map { (invoice, $0) } }.min { $0.1 < $1.1 }
            if let renewal = nextRenewal, nextRetry.map({ renewal.currentPeriodEnd <= $0.1 }) ?? true {
                if let invoice = try await renew(renewal) { created.append(invoice) }
            } else if let (retry, at) = nextRetry {
                try await collect(retry.id, at: at)
            } else {
                return created
            }
        }
    }

    /// Ends the current period of `subscription` at its end date.
    private func renew(_ stored: Subscription) async throws -> Invoice? {
        var subscription = stored
        let at = subscription.currentPeriodEnd
        let plan = try await plan(subscription.planID)
        let customer = try await customer(subscription.customerID)
        var events: [BillingEvent] = []
        var lines: [InvoiceLine] = []
        let wasTrial = subscription.status == .trialing
        if wasTrial {
            subscription.status = .active
            events.append(event(.subscriptionTrialEnded, at: at, subscription: subscription.id))
        } else {
            lines += try await usageLines(subscription, plan: plan, from: subscription.usageFrom, to: at)
        }
        lines += subscription.pendingLines
        subscription.pendingLines = []
        let nextIndex = subscription.periodIndex + 1
        let nextEnd = plan.interval.boundary(nextIndex + 1, from: subscription.anchor)
        if subscription.cancelAtPeriodEnd {
            subscription.status = .canceled
            subscription.canceledAt = at
            events.append(event(.subscriptionCanceled, at: at, subscription: subscription.id))
        } else if subscription.status != .paused {
            lines += try recurringLines(plan, quantity: subscription.quantity, from: at, to: nextEnd)
        }
        let billedStart = subscription.currentPeriodStart
        if subscription.status != .canceled {
            subscription.periodIndex = nextIndex
            subscription.currentPeriodStart = at
            subscription.currentPeriodEnd = nextEnd
            subscription.usageFrom = at
        }
        guard !lines.isEmpty, subscription.status != .paused || lines.contains(where: { $0.kind != .subscription }) else {
            try await save([document(subscription)], events)
            return nil
        }
        let invoice = try await finalize(id: "in_\(subscription.id)_\(nextIndex)", customer: customer, subscription: &subscription, plan: plan, lines: lines,
                                         periodStart: billedStart, periodEnd: subscription.status == .canceled ? at : nextEnd, at: at, extraEvents: events)
        try await collect(invoice.id, at: at)
        return try await self.invoice(invoice.id)
    }

    // MARK: Lines

    private func recurringLines(_ plan: Plan, quantity: Decimal, from start: Date, to end: Date) throws -> [InvoiceLine] {
        try plan.charges.filter { $0.kind == .recurring }.map { charge in
            InvoiceLine(description: charge.description, kind: .subscription, quantity: quantity,
                        amount: try charge.pricing.amount(for: quantity).rounded(configuration.rounding), periodStart: start, periodEnd: end)
        }
    }

    private func usageLines(_ subscription: Subscription, plan: Plan, from start: Date, to end: Date) async throws -> [InvoiceLine] {
        guard start < end else { return [] }
        var lines: [InvoiceLine] = []
        for charge in plan.charges {
            guard case .metered(let code) = charge.kind else { continue }
            let meter = try await require(Meter.self, .meter, code)
            let events = try await store.usage(subscriptionID: subscription.id, meter: code, from: start, to: end)
            let quantity = try meter.aggregation.quantity(of: events)
            guard quantity > 0 else { continue }
            lines.append(InvoiceLine(description: "\(charge.description) (\(meter.name))", kind: .usage, quantity: quantity,
                                     amount: try charge.pricing.amount(for: quantity).rounded(configuration.rounding), periodStart: start, periodEnd: end))
        }
        return lines
    }

    // MARK: Invoices

    /// Builds, numbers and stores an invoice (discount, tax, customer credit) together with the subscription.
    private func finalize(id: String, customer stored: BillingCustomer, subscription: inout Subscription, plan: Plan, lines input: [InvoiceLine],
                          periodStart: Date, periodEnd: Date, at: Date, extraEvents: [BillingEvent]) async throws -> Invoice {
        if let existing = try await load(Invoice.self, .invoice, id) { return existing }      // a re-run after a crash
        var customer = stored
        let currency = plan.currency
        var lines = input
        let positive = try Money.sum(lines.map(\.amount).filter { !$0.isNegative }, currency: currency)
        if let couponID = subscription.couponID, let coupon = try await load(Coupon.self, .coupon, couponID),
           couponApplies(coupon, subscription, at: at), positive.amount > 0 {
            let off: Money = switch coupon.discount {
            case .percentOff(let percent): positive.times(percent / 100).rounded(configuration.rounding)
            case .amountOff(let amount): amount.currency == currency ? min(amount, positive) : .zero(currency)
            }
            if !off.isZero {
                lines.append(InvoiceLine(description: "Discount (\(coupon.id))", kind: .discount, quantity: 1, amount: off.negated,
                                         periodStart: periodStart, periodEnd: periodEnd))
                subscription.couponUses += 1
            }
        }
        let subtotal = try Money.sum(lines.map(\.amount), currency: currency)
        var quote: TaxQuote?
        var taxAmount = Money.zero(currency)
        if let tax = configuration.tax, !subtotal.isZero {
            let request = TaxRequest(customer: TaxCustomer(country: customer.country, postcode: customer.postcode, vatNumber: customer.vatNumber),
                                     lines: [TaxLineItem(reference: plan.id, amount: subtotal, category: plan.taxCategory)], date: at)
            let taxed = try await tax.quote(request)
            quote = taxed
            taxAmount = taxed.tax
        }
        let total = try subtotal.adding(taxAmount)
        var creditApplied = Money.zero(currency)
        let balance = customer.credit.flatMap { $0.currency == currency ? $0 : nil } ?? .zero(currency)
        if total.isNegative {
            customer.credit = try balance.adding(total.negated)          // a credit invoice feeds the balance
        } else if balance.amount > 0 {
            creditApplied = min(balance, total)
            customer.credit = try balance.subtracting(creditApplied)
        }
        let due = total.isNegative ? Money.zero(currency) : try total.subtracting(creditApplied)
        let number = try await store.nextNumber("invoice")
        var invoice = Invoice(id: id, number: String(format: "INV-%06lld", number), customerID: customer.id, subscriptionID: subscription.id, status: .open,
                              lines: lines, subtotal: subtotal, tax: quote, taxAmount: taxAmount, total: total, creditApplied: creditApplied,
                              credited: .zero(currency), amountDue: due, amountPaid: .zero(currency), attempts: 0, nextPaymentAttempt: nil,
                              paymentID: nil, lastFailure: nil, periodStart: periodStart, periodEnd: periodEnd, createdAt: at, finalizedAt: at, paidAt: nil)
        var events = extraEvents + [event(.invoiceFinalized, at: at, subscription: subscription.id, invoice: id)]
        if due.isZero {
            invoice.status = .paid
            invoice.paidAt = at
            events.append(event(.invoicePaid, at: at, subscription: subscription.id, invoice: id))
        } else {
            invoice.nextPaymentAttempt = at          // collect() charges it now
        }
        var writes = [document(subscription), document(invoice)]
        if customer != stored { writes.append(.init(kind: .customer, id: customer.id, owner: nil, body: try encode(customer))) }
        try await save(writes, events)
        return invoice
    }

    /// Whether a coupon discounts an invoice created `at` (a repeating coupon: until N months after redemption).
    private func couponApplies(_ coupon: Coupon, _ subscription: Subscription, at: Date) -> Bool {
        switch coupon.duration {
        case .once: return subscription.couponUses == 0
        case .forever: return true
        case .repeating(let months):
            guard let redeemed = subscription.couponRedeemedAt else { return false }
            return at < BillingInterval(.month, count: months).boundary(1, from: redeemed)
        }
    }

    /// Charges an open invoice's amount due (an attempt of dunning), with the customer's current payment method.
    private func collect(_ invoiceID: String, at: Date) async throws {
        var invoice = try await invoice(invoiceID)
        guard invoice.status == .open, invoice.amountDue.amount > 0 else { return }
        let customer = try await customer(invoice.customerID)
        let attempt = invoice.attempts + 1
        var failure: PaymentFailure?
        var paymentID: String?
        if let method = customer.paymentMethodID {
            do {
                let payment = try await configuration.payments.create(
                    PaymentRequest(amount: invoice.amountDue, customerID: nil, paymentMethodID: method, confirm: true,
                                   metadata: ["invoice": invoice.id, "customer": customer.id]),
                    idempotencyKey: try IdempotencyKey("\(invoice.id)-attempt-\(attempt)"))
                paymentID = payment.id
                if payment.status != .succeeded {
                    failure = payment.lastFailure ?? PaymentFailure(kind: .other, message: "the payment is \(payment.status.rawValue)")
                }
            } catch let error as NimbusError {
                failure = PaymentFailure(kind: .processingError, providerCode: "\(error.code)", message: error.message)
            }
        } else {
            failure = PaymentFailure(kind: .other, providerCode: "no_payment_method", message: "the customer has no payment method")
        }
        invoice.attempts = attempt
        invoice.paymentID = paymentID ?? invoice.paymentID
        var subscription: Subscription?
        if let id = invoice.subscriptionID { subscription = try await self.subscription(id) }
        var events: [BillingEvent] = []
        if let failure {
            invoice.lastFailure = failure
            events.append(event(.invoicePaymentFailed, at: at, subscription: invoice.subscriptionID, invoice: invoice.id))
            let waits = configuration.dunning.retryAfter
            if attempt <= waits.count {
                invoice.nextPaymentAttempt = at.addingTimeInterval(waits[attempt - 1].nimbusSeconds)
                if subscription?.status == .active { subscription?.status = .pastDue }
            } else {
                invoice.nextPaymentAttempt = nil
                switch configuration.dunning.finalAction {
                case .cancelSubscription:
                    invoice.status = .uncollectible
                    events.append(event(.invoiceUncollectible, at: at, subscription: invoice.subscriptionID, invoice: invoice.id))
                    if var ending = subscription, ending.status != .canceled {
                        ending.status = .canceled
                        ending.canceledAt = at
                        subscription = ending
                        events.append(event(.subscriptionCanceled, at: at, subscription: ending.id))
                    }
                case .markUncollectible:
                    invoice.status = .uncollectible
                    events.append(event(.invoiceUncollectible, at: at, subscription: invoice.subscriptionID, invoice: invoice.id))
                case .leavePastDue:
                    if subscription?.status == .active { subscription?.status = .pastDue }
                }
            }
        } else {
            invoice.status = .paid
            invoice.amountPaid = try invoice.amountPaid.adding(invoice.amountDue)
            invoice.amountDue = .zero(invoice.amountDue.currency)
            invoice.nextPaymentAttempt = nil
            invoice.lastFailure = nil
            invoice.paidAt = at
            events.append(event(.invoicePaid, at: at, subscription: invoice.subscriptionID, invoice: invoice.id))
            if subscription?.status == .pastDue { subscription?.status = .active }
        }
        var writes = [document(invoice)]
        if let subscription { writes.append(document(subscription)) }
        try await save(writes, events)
    }

    /// Charges an open invoice now (after the customer fixed their payment method), outside the retry schedule.
    @discardableResult
    public func payInvoice(_ invoiceID: String) async throws -> Invoice {
        let invoice = try await invoice(invoiceID)
        guard invoice.status == .open else { throw NimbusError(.failedPrecondition, "invoice \(invoiceID) is \(invoice.status.rawValue), not open") }
        try await collect(invoiceID, at: configuration.now())
        return try await self.invoice(invoiceID)
    }

    /// Voids an open invoice: nothing is due any more.
    @discardableResult
    public func voidInvoice(_ invoiceID: String) async throws -> Invoice {
        var invoice = try await invoice(invoiceID)
        guard invoice.status == .open || invoice.status == .draft else {
            throw NimbusError(.failedPrecondition, "only open invoices are voided; \(invoiceID) is \(invoice.status.rawValue) (issue a credit note instead)")
        }
        invoice.status = .void
        invoice.nextPaymentAttempt = nil
        try await settleSubscription(of: &invoice, kind: .invoiceVoided)
        return invoice
    }

    /// Gives up on an open invoice (kept for the books).
    @discardableResult
    public func markUncollectible(_ invoiceID: String) async throws -> Invoice {
        var invoice = try await invoice(invoiceID)
        guard invoice.status == .open else { throw NimbusError(.failedPrecondition, "only open invoices become uncollectible; \(invoiceID) is \(invoice.status.rawValue)") }
        invoice.status = .uncollectible
        invoice.nextPaymentAttempt = nil
        try await settleSubscription(of: &invoice, kind: .invoiceUncollectible)
        return invoice
    }

    /// Stores the invoice; a past-due subscription with nothing else open becomes active again.
    private func settleSubscription(of invoice: inout Invoice, kind: BillingEvent.Kind) async throws {
        var writes = [document(invoice)]
        if let id = invoice.subscriptionID, var subscription = try await load(Subscription.self, .subscription, id), subscription.status == .pastDue {
            let others = try await invoices(customerID: invoice.customerID).filter { $0.id != invoice.id && $0.status == .open && $0.subscriptionID == id }
            if others.isEmpty {
                subscription.status = .active
                writes.append(document(subscription))
            }
        }
        try await save(writes, [event(kind, at: configuration.now(), subscription: invoice.subscriptionID, invoice: invoice.id)])
    }

    /// Issues a credit note against a finalized invoice: on an open invoice it reduces what is due; on a
    /// paid one it is refunded (`.refund`) or added to the customer's credit (`.customerCredit`, the default).
    /// - Throws: `invalidArgument` for more than is left to credit; `failedPrecondition` for a void or draft invoice.
    @discardableResult
    public func createCreditNote(invoiceID: String, amount: Money, reason: String, destination: CreditNote.Destination? = nil) async throws -> CreditNote {
        var invoice = try await invoice(invoiceID)
        guard invoice.status == .open || invoice.status == .paid else {
            throw NimbusError(.failedPrecondition, "credit notes are issued against open or paid invoices; \(invoiceID) is \(invoice.status.rawValue)")
        }
        let left = try invoice.total.subtracting(invoice.credited)
        guard amount.currency == invoice.total.currency, amount.amount > 0, amount <= left else {
            throw NimbusError(.invalidArgument, "a credit note on \(invoiceID) is above zero and at most \(left), not \(amount)")
        }
        let now = configuration.now()
        let target = destination ?? (invoice.status == .open ? .invoice : .customerCredit)
        let number = try await store.nextNumber("credit_note")
        let note = CreditNote(id: "cn_\(IDGenerator.shared.ulid())", number: String(format: "CN-%06lld", number), invoiceID: invoiceID, amount: amount,
                              reason: reason, destination: target, createdAt: now)
        var writes: [BillingDocument] = []
        var events = [event(.creditNoteCreated, at: now, subscription: invoice.subscriptionID, invoice: invoiceID, creditNote: note.id)]
        invoice.credited = try invoice.credited.adding(amount)
        switch target {
        case .invoice:
            guard invoice.status == .open, amount <= invoice.amountDue else {
                throw NimbusError(.invalidArgument, "a credit note onto invoice \(invoiceID) is at most what is due (\(invoice.amountDue))")
            }
            invoice.amountDue = try invoice.amountDue.subtracting(amount)
            if invoice.amountDue.isZero {
                invoice.status = .paid
                invoice.paidAt = now
                invoice.nextPaymentAttempt = nil
                events.append(event(.invoicePaid, at: now, subscription: invoice.subscriptionID, invoice: invoiceID))
            }
        case .refund:
            guard let paymentID = invoice.paymentID, invoice.status == .paid else {
                throw NimbusError(.failedPrecondition, "invoice \(invoiceID) was not paid through a payment; credit the customer instead")
            }
            _ = try await configuration.payments.refund(paymentID, amount: amount, reason: "requested_by_customer",
                                                        idempotencyKey: try IdempotencyKey("\(note.id)-refund"))
        case .customerCredit:
            var customer = try await customer(invoice.customerID)
            customer.credit = try (customer.credit ?? .zero(amount.currency)).adding(amount)
            writes.append(.init(kind: .customer, id: customer.id, owner: nil, body: try encode(customer)))
        }
        writes += [document(invoice), .init(kind: .creditNote, id: note.id, owner: invoice.customerID, body: try encode(note))]
        try await save(writes, events)
        return note
    }

    // MARK: Storage helpers

    private func encode(_ value: some Encodable) throws -> Data { try JSONEncoder.billing.encode(value) }

    private func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do { return try JSONDecoder.billing.decode(T.self, from: data) } catch {
            throw NimbusError(.dataLoss, "a stored \(T.self) cannot be read: \(error)", underlying: error)
        }
    }

    private func load<T: Decodable>(_ type: T.Type, _ kind: BillingDocumentKind, _ id: String) async throws -> T? {
        try await store.document(kind, id: id).map { try decode(T.self, $0) }
    }

    private func require<T: Decodable>(_ type: T.Type, _ kind: BillingDocumentKind, _ id: String) async throws -> T {
        guard let value = try await load(T.self, kind, id) else { throw NimbusError(.notFound, "no \(kind.rawValue) '\(id)'") }
        return value
    }

    private func document(_ subscription: Subscription) -> BillingDocument {
        BillingDocument(kind: .subscription, id: subscription.id, owner: subscription.customerID, body: (try? encode(subscription)) ?? Data())
    }

    private func document(_ invoice: Invoice) -> BillingDocument {
        BillingDocument(kind: .invoice, id: invoice.id, owner: invoice.customerID, body: (try? encode(invoice)) ?? Data())
    }

    private func event(_ kind: BillingEvent.Kind, at: Date, subscription: String? = nil, invoice: String? = nil, creditNote: String? = nil) -> BillingEvent {
        BillingEvent(id: "bevt_\(IDGenerator.shared.ulid())", kind: kind, createdAt: at, subscriptionID: subscription, invoiceID: invoice, creditNoteID: creditNote)
    }

    private func save(_ documents: [BillingDocument], _ events: [BillingEvent] = []) async throws {
        try await store.commit(documents: documents, events: try events.map { try encode($0) })
    }

    static func day(_ date: Date) -> String {
        ISO8601DateFormatter.string(from: date, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
    }
}
