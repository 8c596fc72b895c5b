import Foundation
import NimbusCore
import NimbusCurrency

/// How often a plan bills.
public struct BillingInterval: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The unit.
    public enum Unit: String, Sendable, Hashable, Codable { case day, week, month, year }
    /// The unit.
    public var unit: Unit
    /// How many units per period.
    public var count: Int

    /// Creates an interval. - Precondition: `count >= 1`.
    public init(_ unit: Unit, count: Int = 1) {
        self.unit = unit
        self.count = max(1, count)
    }

    /// Monthly.
    public static let month = BillingInterval(.month)
    /// Yearly.
    public static let year = BillingInterval(.year)

    public var description: String { count == 1 ? unit.rawValue : "\(count) \(unit.rawValue)s" }

    static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// The end of the `n`th period after `anchor`, counted from the anchor (so 31 January gives
    /// 28/29 February, then 31 March — the anchor day is kept).
    public func boundary(_ n: Int, from anchor: Date) -> Date {
        let component: Calendar.Component = switch unit {
        case .day: .day
        case .week: .weekOfYear
        case .month: .month
        case .year: .year
        }
        return Self.calendar.date(byAdding: component, value: n * count, to: anchor) ?? anchor
    }
}

/// One tier of tiered pricing.
public struct PriceTier: Sendable, Hashable, Codable {
    /// The last unit in this tier (inclusive); `nil` for the last, open tier.
    public var upTo: Decimal?
    /// The price of each unit in the tier (may be finer than the currency's minor unit).
    public var unitPrice: Money
    /// A fee charged once when the tier is reached.
    public var flatFee: Money?

    /// Creates a tier.
    public init(upTo: Decimal?, unitPrice: Money, flatFee: Money? = nil) {
        self.upTo = upTo
        self.unitPrice = unitPrice
        self.flatFee = flatFee
    }
}

/// How a quantity becomes an amount.
public enum PricingModel: Sendable, Hashable, Codable {
    /// A fixed amount per period, whatever the quantity.
    case flat(Money)
    /// Quantity × unit price.
    case perUnit(Money)
    /// Each unit priced by the tier it falls in (the first 1,000 at one price, the next at another...).
    case graduated([PriceTier])
    /// All units priced by the tier the total reaches.
    case volume([PriceTier])
    /// Per started package of `size` units (`size` 1000, `price` 5.00: 1,001 units cost 10.00).
    case package(size: Decimal, price: Money)

    /// The currency of every amount in the model.
    public var currency: Currency {
        switch self {
        case .flat(let money), .perUnit(let money), .package(_, let money): money.currency
        case .graduated(let tiers), .volume(let tiers): tiers.first?.unitPrice.currency ?? .eur
        }
    }

    /// Checks tiers are ordered, the last is open, and one currency is used.
    public func validate() throws {
        switch self {
        case .graduated(let tiers), .volume(let tiers):
            guard !tiers.isEmpty, tiers.last?.upTo == nil else {
                throw NimbusError(.invalidArgument, "tiers must end with an open tier (upTo: nil)")
            }
            let bounds = tiers.dropLast().compactMap(\.upTo)
            guard bounds.count == tiers.count - 1, zip(bounds, bounds.dropFirst()).allSatisfy({ $0 < $1 }), bounds.allSatisfy({ $0 > 0 }) else {
                throw NimbusError(.invalidArgument, "tier bounds must be positive and increasing")
            }
            let currencies = Set(tiers.flatMap { [$0.unitPrice.currency] + ($0.flatFee.map { [$0.currency] } ?? []) })
            guard currencies.count == 1 else { throw NimbusError(.invalidArgument, "tiers mix currencies: \(currencies.map(\.code).sorted())") }
        case .package(let size, _):
            guard size > 0 else { throw NimbusError(.invalidArgument, "a package size must be above zero") }
        case .flat, .perUnit:
            break
        }
    }

    /// The exact amount for `quantity` (not yet rounded to minor units).
    public func amount(for quantity: Decimal) throws -> Money {
        let zero = Money.zero(currency)
        switch self {
        case .flat(let money):
            return money
        case .perUnit(let unit):
            return unit.times(quantity)
        case .package(let size, let price):
            guard quantity > 0 else { return zero }
            let packages = (quantity / size).rounded(scale: 0, .ceiling)
            return price.times(packages)
        case .graduated(let tiers):
            var total = zero
            var lower: Decimal = 0
            for tier in tiers {
                guard quantity > lower else { break }
                let upper = tier.upTo.map { min($0, quantity) } ?? quantity
                let units = upper - lower
                total = try total.adding(tier.unitPrice.times(units))
                if let fee = tier.flatFee { total = try total.adding(fee) }
                lower = tier.upTo ?? quantity
            }
            return total
        case .volume(let tiers):
            guard quantity > 0 else { return zero }
            let tier = tiers.first { $0.upTo.map { quantity <= $0 } ?? true } ?? tiers[tiers.count - 1]
            var total = tier.unitPrice.times(quantity)
            if let fee = tier.flatFee { total = try total.adding(fee) }
            return total
        }
    }
}

/// How usage events of a meter become one quantity per period.
public enum UsageAggregation: Sendable, Hashable, Codable {
    /// The number of events.
    case count
    /// The number of distinct values of a property (active users).
    case uniqueCount(property: String)
    /// The sum of a numeric property (tokens, GB).
    case sum(property: String)
    /// The largest value of a numeric property (peak seats).
    case max(property: String)
    /// The value in the latest event (storage at period end).
    case latest(property: String)

    /// Aggregates `events` (any order). - Throws: `invalidArgument` when a property is missing or not a number.
    public func quantity(of events: [UsageEvent]) throws -> Decimal {
        func number(_ event: UsageEvent, _ property: String) throws -> Decimal {
            guard let text = event.properties[property], let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else {
                throw NimbusError(.invalidArgument, "usage event \(event.id) has no numeric '\(property)'")
            }
            return value
        }
        switch self {
        case .count:
            return Decimal(events.count)
        case .uniqueCount(let property):
            return Decimal(Set(events.compactMap { $0.properties[property] }).count)
        case .sum(let property):
            return try events.reduce(Decimal(0)) { $0 + (try number($1, property)) }
        case .max(let property):
            return try events.map { try number($0, property) }.max() ?? 0
        case .latest(let property):
            guard let last = events.max(by: { ($0.timestamp, $0.id) < ($1.timestamp, $1.id) }) else { return 0 }
            return try number(last, property)
        }
    }
}

/// Something that measures usage (API calls, tokens, active users).
public struct Meter: Sendable, Hashable, Codable {
    /// Its code, used in usage events.
    public var code: String
    /// A readable name, for invoice lines.
    public var name: String
    /// How events become a quantity.
    public var aggregation: UsageAggregation

    /// Creates a meter.
    public init(code: String, name: String, aggregation: UsageAggregation) {
        self.code = code
        self.name = name
        self.aggregation = aggregation
    }
}

/// One measured occurrence. The `id` deduplicates: the same id recorded twice counts once.
public struct UsageEvent: Sendable, Hashable, Codable {
    /// The idempotency key of the event (your request id, message id...).
    public var id: String
    /// The subscription it belongs to.
    public var subscriptionID: String
    /// The meter's code.
    public var meter: String
    /// When it happened.
    public var timestamp: Date
    /// Its properties (numbers as decimal text).
    public var properties: [String: String]

    /// Creates an event.
    public init(id: String, subscriptionID: String, meter: String, timestamp: Date, properties: [String: String] = [:]) {
        self.id = id
        self.subscriptionID = subscriptionID
        self.meter = meter
        self.timestamp = timestamp
        self.properties = properties
    }
}
