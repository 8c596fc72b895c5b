import Foundation
import NimbusCore
import NimbusCurrency

/// Where a seller collects tax.
public struct TaxRegistration: Sendable, Hashable, Codable {
    /// How the registration works.
    public enum Scheme: String, Sendable, Hashable, Codable {
        /// Registered in this country (or US state, with `region`).
        case domestic
        /// The EU One-Stop Shop: VAT of the customer's member state on sales to consumers anywhere in the EU.
        case euOSS = "eu_oss"
    }
    /// The country (ISO code); `EU` for the One-Stop Shop.
    public var country: String
    /// A region within it (a US state), if the registration is regional.
    public var region: String?
    /// How it works.
    public var scheme: Scheme
    /// When collection starts.
    public var from: Date
    /// When it ends, if it does.
    public var until: Date?

    /// Creates a registration.
    public init(country: String, region: String? = nil, scheme: Scheme = .domestic, from: Date = .distantPast, until: Date? = nil) {
        self.country = country.uppercased()
        self.region = region?.uppercased()
        self.scheme = scheme
        self.from = from
        self.until = until
    }

    func active(on date: Date) -> Bool { from <= date && (until.map { date < $0 } ?? true) }
}

/// Whether a price includes the tax.
public enum TaxBehavior: String, Sendable, Hashable, Codable {
    /// Tax is added on top (B2B, US).
    case exclusive
    /// The price already contains it (EU consumer prices).
    case inclusive
}

/// Why a line carries no tax.
public enum TaxExemptionReason: String, Sendable, Hashable, Codable {
    /// The seller is not registered where the customer is.
    case notCollecting = "not_collecting"
    /// The product is exempt.
    case productExempt = "product_exempt"
    /// EU B2B across borders: the customer accounts for the VAT.
    case reverseCharge = "reverse_charge"
    /// The product is taxable at 0 %.
    case zeroRated = "zero_rated"
    /// The customer is exempt (a charity, a reseller with a certificate).
    case customerExempt = "customer_exempt"
    /// The address is outside the country's tax territory (the Canary Islands, Heligoland).
    case territoryExcluded = "territory_excluded"
}

/// Who buys, and where.
public struct TaxCustomer: Sendable, Hashable {
    /// Country (ISO code).
    public var country: String
    /// Region (US state, Canadian province), if relevant.
    public var region: String?
    /// Postcode (for territories outside a country's VAT area).
    public var postcode: String?
    /// The customer's VAT number, for B2B. Must be valid (``VATNumber``) to trigger the reverse charge.
    public var vatNumber: String?
    /// An exemption certificate or status.
    public var isExempt: Bool

    /// Creates a customer.
    public init(country: String, region: String? = nil, postcode: String? = nil, vatNumber: String? = nil, isExempt: Bool = false) {
        self.country = country.uppercased()
        self.region = region?.uppercased()
        self.postcode = postcode
        self.vatNumber = vatNumber
        self.isExempt = isExempt
    }
}

/// One line to tax.
public struct TaxLineItem: Sendable, Hashable {
    /// Your reference (invoice line id, SKU).
    public var reference: String
    /// The line's amount (unit price × quantity), with or without tax per `behavior`.
    public var amount: Money
    /// The product's category.
    public var category: TaxCategory
    /// Whether `amount` includes tax.
    public var behavior: TaxBehavior

    /// Creates a line.
    public init(reference: String, amount: Money, category: TaxCategory = .standard, behavior: TaxBehavior = .exclusive) {
        self.reference = reference
        self.amount = amount
        self.category = category
        self.behavior = behavior
    }
}

/// What to tax.
public struct TaxRequest: Sendable, Hashable {
    /// The customer.
    public var customer: TaxCustomer
    /// The lines, all in one currency.
    public var lines: [TaxLineItem]
    /// The date of supply (rates change).
    public var date: Date

    /// Creates a request.
    public init(customer: TaxCustomer, lines: [TaxLineItem], date: Date = Date()) {
        self.customer = customer
        self.lines = lines
        self.date = date
    }
}

/// One taxed line.
public struct TaxedLine: Sendable, Hashable, Codable {
    /// The line's reference.
    public var reference: String
    /// The amount without tax.
    public var net: Money
    /// The tax.
    public var tax: Money
    /// Net plus tax.
    public var gross: Money
    /// The rate in percent.
    public var rate: Decimal
    /// The country (and region) whose tax applies, if any.
    public var jurisdiction: String?
    /// Why there is no tax, when there is none.
    public var exemption: TaxExemptionReason?

    /// Creates a taxed line (for ``SalesTaxProvider`` implementations).
    public init(reference: String, net: Money, tax: Money, gross: Money, rate: Decimal, jurisdiction: String?, exemption: TaxExemptionReason?) {
        self.reference = reference
        self.net = net
        self.tax = tax
        self.gross = gross
        self.rate = rate
        self.jurisdiction = jurisdiction
        self.exemption = exemption
    }
}

/// Tax per jurisdiction and rate: what an invoice's tax summary lists.
public struct TaxBreakdown: Sendable, Hashable, Codable {
    /// The jurisdiction (`DE`, `US-CA`), or `nil` when none applies.
    public var jurisdiction: String?
    /// The rate in percent.
    public var rate: Decimal
    /// The exemption reason, for untaxed groups.
    public var exemption: TaxExemptionReason?
    /// The taxable base.
    public var net: Money
    /// The tax.
    public var tax: Money

    /// Creates a group.
    public init(jurisdiction: String?, rate: Decimal, exemption: TaxExemptionReason?, net: Money, tax: Money) {
        self.jurisdiction = jurisdiction
        self.rate = rate
        self.exemption = exemption
        self.net = net
        self.tax = tax
    }
}

/// The taxes of a request.
public struct TaxQuote: Sendable, Hashable, Codable {
    /// Lines in request order.
    public var lines: [TaxedLine]
    /// Groups by jurisdiction, rate and reason.
    public var breakdown: [TaxBreakdown]
    /// Total without tax.
    public var net: Money
    /// Total tax.
    public var tax: Money
    /// Total with tax.
    public var gross: Money
    /// Text the invoice must carry (the reverse-charge mention).
    public var notes: [String]

    /// Creates a quote.
    public init(lines: [TaxedLine], breakdown: [TaxBreakdown], net: Money, tax: Money, gross: Money, notes: [String]) {
        self.lines = lines
        self.breakdown = breakdown
        self.net = net
        self.tax = tax
        self.gross = gross
        self.notes = notes
    }
}

/// Computes tax quotes; the embedded calculator and US sales-tax services implement it.
public protocol TaxProvider: Sendable {
    /// The taxes of `request`.
    func quote(_ request: TaxRequest) async throws -> TaxQuote
}

/// A US sales-tax service (Avalara, TaxJar, Stripe Tax...) the calculator hands US addresses to.
public protocol SalesTaxProvider: TaxProvider {}

/// The embedded tax engine: VAT for the EU and the UK from ``VATRates``, the One-Stop Shop, the EU
/// B2B reverse charge, product categories, inclusive and exclusive prices, and per-line or
/// per-invoice rounding. US addresses go to a ``SalesTaxProvider`` if one is configured.
///
/// ```swift
/// let tax = TaxCalculator(configuration: .init(homeCountry: "DE", registrations: [
///     TaxRegistration(country: "DE"), TaxRegistration(country: "EU", scheme: .euOSS)]))
/// let quote = try await tax.quote(TaxRequest(customer: TaxCustomer(country: "FR"),
///                                            lines: [TaxLineItem(reference: "ebook", amount: try Money("10.00", .eur), category: .reduced)]))
/// // FR reduced rate 5.5 %: tax EUR 0.55
/// ```
public struct TaxCalculator: TaxProvider {
    /// How totals are rounded.
    public enum Rounding: String, Sendable, Hashable, Codable {
        /// Each line's tax is rounded, then summed.
        case perLine = "per_line"
        /// Tax is computed per jurisdiction and rate on the summed lines and rounded once (then spread back over the lines).
        case perInvoice = "per_invoice"
    }

    /// Settings.
    public struct Configuration: Sendable {
        /// Where the seller is established (ISO code): B2B sales within it are taxed normally.
        public var homeCountry: String
        /// Where the seller collects.
        public var registrations: [TaxRegistration]
        /// Per line or per invoice.
        public var rounding: Rounding
        /// The rounding mode for tax amounts (half-up, the commercial rounding tax administrations use).
        public var roundingMode: RoundingMode
        /// The rates.
        public var rates: VATRates
        /// Where US addresses go.
        public var salesTax: (any SalesTaxProvider)?

        /// Creates settings.
        public init(homeCountry: String, registrations: [TaxRegistration], rounding: Rounding = .perLine, roundingMode: RoundingMode = .halfUp,
                    rates: VATRates = .eu, salesTax: (any SalesTaxProvider)? = nil) {
            self.homeCountry = homeCountry.uppercased()
            self.registrations = registrations
            self.rounding = rounding
            self.roundingMode = roundingMode
            self.rates = rates
            self.salesTax = salesTax
        }
    }

    /// The settings.
    public let configuration: Configuration

    /// Creates a calculator.
    public init(configuration: Configuration) { self.configuration = configuration }

    /// The mention an invoice under the reverse charge carries.
    public static let reverseChargeNote = "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council Directive 2006/112/EC)."

    public func quote(_ request: TaxRequest) async throws -> TaxQuote {
        guard let currency = request.lines.first?.amount.currency else {
            throw NimbusError(.invalidArgument, "a tax request needs at least one line")
        }
        guard request.lines.allSatisfy({ $0.amount.currency == currency }) else {
            throw NimbusError(.invalidArgument, "all lines of a tax request must be in one currency (\(currency.code))")
        }
        let customer = request.customer
        if customer.country == "US" {
            if let salesTax = configuration.salesTax { return try await salesTax.quote(request) }
            if registered(in: "US", region: customer.region, on: request.date) {
                throw NimbusError(.failedPrecondition, "registered for US sales tax in \(customer.region ?? "the US") but no SalesTaxProvider is configured; set Configuration.salesTax")
            }
        }
        let decision = try decide(customer, on: request.date)
        var pending: [(line: TaxLineItem, rate: Decimal, jurisdiction: String?, exemption: TaxExemptionReason?)] = []
        for line in request.lines {
            switch decision {
            case .exempt(let reason):
                pending.append((line, 0, nil, reason))
            case .collect(let country):
                if line.category == .exempt { pending.append((line, 0, country, .productExempt)); continue }
                guard let rate = try configuration.rates.rate(country: country, category: line.category, postcode: customer.postcode, on: request.date) else {
                    pending.append((line, 0, nil, .territoryExcluded))
                    continue
                }
                pending.append((line, rate, country, line.category == .zeroRated ? .zeroRated : nil))
            }
        }
        let taxes = try roundedTaxes(pending.map { ($0.line, $0.rate, $0.jurisdiction) }, currency: currency)
        var lines: [TaxedLine] = []
        for (index, item) in pending.enumerated() {
            let tax = taxes[index]
            let net = item.line.behavior == .inclusive ? try item.line.amount.subtracting(tax) : item.line.amount
            lines.append(TaxedLine(reference: item.line.reference, net: net, tax: tax, gross: try net.adding(tax), rate: item.rate,
                                   jurisdiction: item.jurisdiction, exemption: item.exemption))
        }
        var groups: [TaxBreakdown] = []
        for line in lines {
            if let index = groups.firstIndex(where: { $0.jurisdiction == line.jurisdiction && $0.rate == line.rate && $0.exemption == line.exemption }) {
                groups[index].net = try groups[index].net.adding(line.net)
                groups[index].tax = try groups[index].tax.adding(line.tax)
            } else {
                groups.append(TaxBreakdown(jurisdiction: line.jurisdiction, rate: line.rate, exemption: line.exemption, net: line.net, tax: line.tax))
            }
        }
        let net = try Money.sum(lines.map(\.net), currency: currency)
        let tax = try Money.sum(lines.map(\.tax), currency: currency)
        var notes: [String] = []
        if case .exempt(.reverseCharge) = decision { notes.append(Self.reverseChargeNote) }
        return TaxQuote(lines: lines, breakdown: groups, net: net, tax: tax, gross: try net.adding(tax), notes: notes)
    }

    private enum Decision { case collect(String), exempt(TaxExemptionReason) }

    private func registered(in country: String, region: String? = nil, on date: Date) -> Bool {
        configuration.registrations.contains { registration in
            registration.active(on: date) && registration.scheme == .domestic && registration.country == country
                && (registration.region == nil || registration.region == region)
        }
    }

    private func decide(_ customer: TaxCustomer, on date: Date) throws -> Decision {
        if customer.isExempt { return .exempt(.customerExempt) }
        let country = customer.country
        let inEU = VATRates.euMembers.contains(country)
        let sellerInEU = VATRates.euMembers.contains(configuration.homeCountry)
        if inEU, let vat = customer.vatNumber, !vat.isEmpty {
            let number = try VATNumber(vat)
            guard number.country == country || (number.countryCode == "EL" && country == "GR") else {
                throw NimbusError(.invalidArgument, "VAT number \(number) is not \(country)'s; a B2B customer's VAT number must match their country")
            }
            // Cross-border B2B inside the EU: the customer self-assesses.
            if sellerInEU && country != configuration.homeCountry { return .exempt(.reverseCharge) }
        }
        if registered(in: country, on: date) { return .collect(country) }
        if inEU && configuration.registrations.contains(where: { $0.scheme == .euOSS && $0.active(on: date) }) { return .collect(country) }
        return .exempt(.notCollecting)
    }

    /// Tax per line, rounded per line, or per jurisdiction-and-rate group and spread back.
    private func roundedTaxes(_ items: [(line: TaxLineItem, rate: Decimal, jurisdiction: String?)], currency: Currency) throws -> [Money] {
        func exact(_ line: TaxLineItem, _ rate: Decimal) -> Decimal {
            line.behavior == .exclusive ? line.amount.amount * rate / 100 : line.amount.amount * rate / (100 + rate)
        }
        switch configuration.rounding {
        case .perLine:
            return items.map { Money(exact($0.line, $0.rate), currency).rounded(configuration.roundingMode) }
        case .perInvoice:
            var result = Array(repeating: Money.zero(currency), count: items.count)
            var groups: [String: [Int]] = [:]
            for (index, item) in items.enumerated() {
                groups["\(item.jurisdiction ?? "-")|\(item.rate)|\(item.line.behavior.rawValue)", default: []].append(index)
            }
            for indexes in groups.values {
                let exactTaxes = indexes.map { exact(items[$0].line, items[$0].rate) }
                let total = Money(exactTaxes.reduce(0, +), currency).rounded(configuration.roundingMode)
                guard !total.isZero else { continue }
                let shares = try total.allocate(exactTaxes.map { max($0, 0) })
                for (position, index) in indexes.enumerated() { result[index] = shares[position] }
            }
            return result
        }
    }
}
