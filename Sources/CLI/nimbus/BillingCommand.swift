import ArgumentParser
import Foundation
import NimbusBilling
import NimbusBillingPostgres
import NimbusPostgres
import NimbusCore
import NimbusCurrency
import NimbusPayment
import NimbusTax

/// `nimbus billing`: the embedded billing engine, on local files.
struct BillingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing",
        abstract: "Plans, customers, subscriptions, usage and invoices with the embedded engine (SQLite).",
        subcommands: [AddMeter.self, AddPlan.self, AddCustomer.self, Subscribe.self, Usage.self, Advance.self, Invoices.self]
    )

    struct Engine: ParsableArguments {
        @Option(help: "The billing store: sqlite://PATH (default sqlite://./.nimbus/billing.sqlite), mem:// or postgres://… (settings key billing.url, env NIMBUS_BILLING_URL).") var url: String?
        @Option(name: .customLong("payment-url"), help: "Where invoices are charged (settings key payment.url, env NIMBUS_PAYMENT_URL; default sqlite://./.nimbus/payments.sqlite, the embedded engine).") var paymentURL: String?
        @Option(name: .customLong("tax-home"), help: "Where the seller is established, to add VAT to invoices (ISO code).") var taxHome: String?
        @Option(name: .customLong("tax-registration"), help: "Where the seller collects VAT (repeatable; EU-OSS for the One-Stop Shop).") var taxRegistration: [String] = []
        @Option(help: "The engine's clock: act as of this instant (YYYY-MM-DD or ISO 8601; default now).") var at: String?

        /// Runs `body` on an engine over the store the URL names, and closes the store (its connection
        /// pool, for PostgreSQL) whatever happens.
        func run<Result>(_ body: (BillingEngine) async throws -> Result) async throws -> Result {
            let store = try await URLOpenerRegistry.billing.withSQLite().withPostgres()
                .open(try await DomainURL.resolve(url, key: "billing.url", default: "sqlite://./.nimbus/billing.sqlite"))
            do {
                let result = try await body(try await open(store))
                try await store.close()
                return result
            } catch {
                try? await store.close()
                throw error
            }
        }

        private func open(_ store: any BillingStore) async throws -> BillingEngine {
            var now = Date()
            if let at {
                let formatter = ISO8601DateFormatter()
                guard let parsed = formatter.date(from: at.count == 10 ? at + "T00:00:00Z" : at) else { throw ValidationError("--at '\(at)' is not a date") }
                now = parsed
            }
            let instant = now
            var tax: (any TaxProvider)?
            if let taxHome {
                tax = TaxCalculator(configuration: .init(homeCountry: taxHome, registrations: taxRegistration.map { entry in
                    entry.uppercased() == "EU-OSS" ? TaxRegistration(country: "EU", scheme: .euOSS) : TaxRegistration(country: entry)
                }))
            }
            let payments = try await PaymentClient.open(try await DomainURL.resolve(paymentURL, key: "payment.url", default: PayCommand.Provider.defaultURL),
                                                        openers: PayCommand.Provider.openers)
            return try await BillingEngine(store: store, configuration: .init(payments: payments, tax: tax, now: { instant }))
        }
    }


    struct AddMeter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add-meter", abstract: "Add a meter: --aggregation count | unique:PROP | sum:PROP | max:PROP | latest:PROP.")
        @OptionGroup var engine: Engine
        @Argument(help: "The meter's code (used in usage events).") var code: String
        @Option(help: "A readable name.") var name: String?
        @Option(help: "How events aggregate.") var aggregation: String = "count"
        func run() async throws {
            let parts = aggregation.split(separator: ":", maxSplits: 1).map(String.init)
            let kind: UsageAggregation
            switch (parts[0], parts.count > 1 ? parts[1] : nil) {
            case ("count", nil): kind = .count
            case ("unique", let property?): kind = .uniqueCount(property: property)
            case ("sum", let property?): kind = .sum(property: property)
            case ("max", let property?): kind = .max(property: property)
            case ("latest", let property?): kind = .latest(property: property)
            default: throw ValidationError("--aggregation '\(aggregation)' is not count, unique:PROP, sum:PROP, max:PROP or latest:PROP")
            }
            try await engine.run { try await $0.createMeter(Meter(code: code, name: name ?? code, aggregation: kind)) }
            print("meter \(code) saved")
        }
    }

    struct AddPlan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add-plan", abstract: "Add a plan from a JSON file (the Plan type's JSON), or a flat plan from options.")
        @OptionGroup var engine: Engine
        @Argument(help: "The plan's id.") var id: String
        @Option(help: "A JSON file with the whole plan (charges, tiers).") var file: String?
        @Option(help: "A flat recurring price (10.00), for a simple plan.") var price: String?
        @Option(help: "The currency of --price.") var currency: String = "EUR"
        @Option(help: "month or year.") var interval: String = "month"
        @Option(name: .customLong("trial-days"), help: "Free trial days.") var trialDays: Int = 0
        func run() async throws {
            let plan: Plan
            if let file {
                do { plan = try JSONDecoder().decode(Plan.self, from: try Data(contentsOf: URL(fileURLWithPath: file))) } catch {
                    throw ValidationError("\(file) is not a plan: \(error)")
                }
            } else if let price {
                let money = try Money(price, try Currency(currency.uppercased()))
                guard let unit = BillingInterval.Unit(rawValue: interval) else { throw ValidationError("--interval is day, week, month or year") }
                plan = Plan(id: id, name: id, currency: money.currency, interval: BillingInterval(unit), charges: [
                    Charge(id: "base", description: id, pricing: .flat(money))], trialDays: trialDays)
            } else {
                throw ValidationError("give --file PLAN.json or --price AMOUNT")
            }
            try await engine.run { try await $0.createPlan(plan) }
            print("plan \(plan.id) saved")
        }
    }

    struct AddCustomer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add-customer", abstract: "Add or update a customer.")
        @OptionGroup var engine: Engine
        @Argument(help: "The customer's id.") var id: String
        @Option(help: "Name.") var name: String
        @Option(help: "Country (ISO code).") var country: String
        @Option(help: "Email.") var email: String?
        @Option(name: .customLong("vat-number"), help: "VAT number (B2B).") var vatNumber: String?
        @Option(help: "Payment method charged for invoices (a test card with mem://).") var method: String?
        func run() async throws {
            try await engine.run { try await $0.saveCustomer(BillingCustomer(id: id, name: name, email: email, country: country.uppercased(), vatNumber: vatNumber, paymentMethodID: method)) }
            print("customer \(id) saved")
        }
    }

    struct Subscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Subscribe a customer to a plan (the first invoice is charged at once unless in trial).")
        @OptionGroup var engine: Engine
        @Argument(help: "The customer.") var customer: String
        @Argument(help: "The plan.") var plan: String
        @Option(help: "Quantity (seats).") var quantity: String = "1"
        @Option(help: "A coupon.") var coupon: String?
        @Option(name: .customLong("trial-days"), help: "Override the plan's trial.") var trialDays: Int?
        func run() async throws {
            guard let amount = Decimal(string: quantity) else { throw ValidationError("--quantity '\(quantity)' is not a number") }
            try Output.printJSON(try await engine.run { try await $0.subscribe(customerID: customer, planID: plan, quantity: amount, couponID: coupon, trialDays: trialDays) })
        }
    }

    struct Usage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record one usage event (its --id deduplicates).")
        @OptionGroup var engine: Engine
        @Argument(help: "The subscription.") var subscription: String
        @Argument(help: "The meter.") var meter: String
        @Option(help: "The event's idempotency key (default: a new one).") var id: String?
        @Option(help: "A property, key=value (repeatable).") var property: [String] = []
        func run() async throws {
            var properties: [String: String] = [:]
            for pair in property {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw ValidationError("--property '\(pair)' is not key=value") }
                properties[parts[0]] = parts[1]
            }
            let new = try await engine.run { billing in
                try await billing.recordUsage(UsageEvent(id: id ?? IDGenerator.shared.ulid().description, subscriptionID: subscription, meter: meter,
                                                         timestamp: billing.configuration.now(), properties: properties))
            }
            print(new ? "recorded" : "duplicate (already recorded)")
        }
    }

    struct Advance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run everything due (renewals, trial ends, payment retries) as of --at (default now).")
        @OptionGroup var engine: Engine
        func run() async throws {
            let invoices = try await engine.run { try await $0.advance() }
            for invoice in invoices {
                print("\(invoice.number ?? invoice.id)  \(invoice.status.rawValue)  total \(invoice.total.amountText) \(invoice.total.currency.code)  due \(invoice.amountDue.amountText)")
            }
            if invoices.isEmpty { print("nothing due") }
        }
    }

    struct Invoices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a customer's invoices.")
        @OptionGroup var engine: Engine
        @Argument(help: "The customer.") var customer: String
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            let invoices = try await engine.run { try await $0.invoices(customerID: customer) }
            if json { return try Output.printJSON(invoices) }
            for invoice in invoices {
                print("\(invoice.number ?? invoice.id)  \(BillingEngineDay.string(invoice.createdAt))  \(invoice.status.rawValue)  subtotal \(invoice.subtotal.amountText)  tax \(invoice.taxAmount.amountText)  total \(invoice.total.amountText) \(invoice.total.currency.code)")
            }
        }
    }
}

enum BillingEngineDay {
    static func string(_ date: Date) -> String {
        ISO8601DateFormatter.string(from: date, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
    }
}
