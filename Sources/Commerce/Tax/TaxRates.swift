import Foundation
import NimbusCore

/// What a product is, for tax: which of a country's rates applies.
public enum TaxCategory: String, Sendable, Hashable, Codable, CaseIterable {
    /// The standard rate.
    case standard
    /// The (first) reduced rate — food, books, medicines in many countries.
    case reduced
    /// A country's second reduced rate (France's 10 %, ...); the first reduced rate where there is none.
    case reducedAlternative = "reduced_alternative"
    /// The super-reduced rate (below 5 %); the reduced rate where there is none.
    case superReduced = "super_reduced"
    /// The parking rate (Belgium, Ireland, Luxembourg, Austria, Portugal); the standard rate elsewhere.
    case parking
    /// Taxable at 0 % (exports, some newspapers).
    case zeroRated = "zero_rated"
    /// Outside the tax (medical care, insurance, education): no tax and not part of the taxable base.
    case exempt
}

/// VAT rates by country, with their history and the territories a country's VAT does not reach
/// (the Canary Islands, Heligoland, ...). The EU table ships with Nimbus (``eu``); load another with
/// ``init(json:)`` in the same format.
///
/// ```swift
/// let rate = try VATRates.eu.rate(country: "DE", category: .reduced, on: date)     // 7
/// ```
public struct VATRates: Sendable {
    /// One period of a country's rates.
    public struct Period: Sendable, Hashable {
        /// The first day it applies.
        public var effectiveFrom: Date
        /// Rates in percent by kind (`standard`, `reduced`, `reduced1`, `reduced2`, `super_reduced`, `parking`).
        public var rates: [String: Decimal]
        /// Postcode patterns (regular expressions) with their own standard rate.
        public var exceptions: [(name: String, postcode: String, standard: Decimal)]

        public static func == (lhs: Period, rhs: Period) -> Bool {
            lhs.effectiveFrom == rhs.effectiveFrom && lhs.rates == rhs.rates && lhs.exceptions.map(\.name) == rhs.exceptions.map(\.name)
        }
        public func hash(into hasher: inout Hasher) { hasher.combine(effectiveFrom); hasher.combine(rates) }
    }

    /// Periods by country, newest first.
    public let periods: [String: [Period]]
    /// Why the table is empty, when loading it failed (every lookup then throws this).
    private let loadProblem: NimbusError?

    /// The EU (and UK) rates shipped with Nimbus: ibericode/vat-rates @ 5abb1e1. A damaged install gives an
    /// empty table whose lookups throw `dataLoss`, rather than a crash.
    public static let eu: VATRates = {
        do {
            guard let url = Bundle.module.url(forResource: "vat-rates", withExtension: "json") else {
                throw NimbusError(.dataLoss, "vat-rates.json is missing from NimbusTax's resources")
            }
            return try VATRates(json: try Data(contentsOf: url))
        } catch {
            return VATRates(empty: NimbusError(.dataLoss, "NimbusTax's bundled VAT table cannot be read (\(error)); reinstall or load one with VATRates(json:)"))
        }
    }()

    private init(empty problem: NimbusError) {
        periods = [:]
        loadProblem = problem
    }

    /// Reads the ibericode/vat-rates format. - Throws: `invalidArgument` naming what is malformed.
    public init(json: Data) throws {
        let root: JSONValue
        do { root = try JSONValue.parse(json) } catch { throw NimbusError(.invalidArgument, "VAT rates are not JSON: \(error)", underlying: error) }
        guard let items = root["items"]?.objectValue else { throw NimbusError(.invalidArgument, "VAT rates have no 'items' object") }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        var periods: [String: [Period]] = [:]
        for (country, list) in items {
            var parsed: [Period] = []
            for (index, period) in (list.arrayValue ?? []).enumerated() {
                let where_ = "items.\(country)[\(index)]"
                guard let from = period["effective_from"]?.stringValue else { throw NimbusError(.invalidArgument, "\(where_) has no effective_from") }
                let start = from.hasPrefix("0000") ? Date.distantPast : formatter.date(from: from)
                guard let start else { throw NimbusError(.invalidArgument, "\(where_).effective_from '\(from)' is not a date") }
                var rates: [String: Decimal] = [:]
                for (kind, value) in period["rates"]?.objectValue ?? [:] {
                    guard let number = value.numberValue, let rate = Decimal(string: Self.text(number)) else {
                        throw NimbusError(.invalidArgument, "\(where_).rates.\(kind) is not a number")
                    }
                    rates[kind] = rate
                }
                guard rates["standard"] != nil else { throw NimbusError(.invalidArgument, "\(where_) has no standard rate") }
                let exceptions = try (period["exceptions"]?.arrayValue ?? []).map { exception -> (String, String, Decimal) in
                    guard let name = exception["name"]?.stringValue, let postcode = exception["postcode"]?.stringValue,
                          let standard = exception["standard"]?.numberValue.flatMap({ Decimal(string: Self.text($0)) }) else {
                        throw NimbusError(.invalidArgument, "\(where_) has a malformed exception")
                    }
                    return (name, postcode, standard)
                }
                parsed.append(Period(effectiveFrom: start, rates: rates, exceptions: exceptions))
            }
            periods[country] = parsed.sorted { $0.effectiveFrom > $1.effectiveFrom }
        }
        self.periods = periods
        loadProblem = nil
    }

    /// `19.6` stays `19.6` (not `19.600000000000001`).
    private static func text(_ number: Double) -> String { String(format: "%.6f", number) }

    /// The countries in the table.
    public var countries: [String] { periods.keys.sorted() }

    /// The period in force on `date`. - Throws: `notFound` for a country not in the table.
    public func period(country: String, on date: Date) throws -> Period {
        if let loadProblem { throw loadProblem }
        guard let list = periods[country.uppercased()] else {
            throw NimbusError(.notFound, "no VAT rates for '\(country)'; the table covers \(countries.joined(separator: ", "))")
        }
        guard let period = list.first(where: { $0.effectiveFrom <= date }) else {
            throw NimbusError(.notFound, "no VAT rates for \(country) on \(date)")
        }
        return period
    }

    /// The rate in percent for a category, or `nil` when the place is outside the country's VAT
    /// territory (a postcode exception at 0 %). Exempt and zero-rated products are 0.
    public func rate(country: String, category: TaxCategory, postcode: String? = nil, on date: Date) throws -> Decimal? {
        let period = try period(country: country, on: date)
        var standard = period.rates["standard"] ?? 0
        if let postcode {
            let compact = postcode.replacingOccurrences(of: " ", with: "")
            for exception in period.exceptions where compact.range(of: "^(\(exception.postcode))$", options: .regularExpression) != nil {
                if exception.standard == 0 { return nil }
                standard = exception.standard
            }
        }
        let rates = period.rates
        switch category {
        case .standard: return standard
        case .reduced: return rates["reduced"] ?? rates["reduced1"] ?? standard
        case .reducedAlternative: return rates["reduced2"] ?? rates["reduced"] ?? rates["reduced1"] ?? standard
        case .superReduced: return rates["super_reduced"] ?? rates["reduced"] ?? rates["reduced1"] ?? standard
        case .parking: return rates["parking"] ?? standard
        case .zeroRated, .exempt: return 0
        }
    }

    /// The EU member states (ISO codes).
    public static let euMembers: Set<String> = ["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
                                               "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"]
}
