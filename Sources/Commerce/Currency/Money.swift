import Foundation
import NimbusCore

/// How a value is brought to fewer digits.
public enum RoundingMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// To nearest, ties to even (banker's rounding): the default, unbiased over many values.
    case halfEven
    /// To nearest, ties away from zero (what most people learned at school).
    case halfUp
    /// To nearest, ties toward zero.
    case halfDown
    /// Away from zero.
    case up
    /// Toward zero (truncation).
    case down
    /// Toward +∞.
    case ceiling
    /// Toward −∞.
    case floor
}

extension Decimal {
    /// The value rounded to `scale` decimal places.
    public func rounded(scale: Int, _ mode: NimbusCurrency.RoundingMode = .halfEven) -> Decimal {
        var value = self, result = Decimal()
        let nsMode: NSDecimalNumber.RoundingMode
        switch mode {
        case .halfEven: nsMode = .bankers
        case .halfUp: nsMode = .plain
        case .ceiling: nsMode = .up
        case .floor: nsMode = .down
        case .up: nsMode = self < 0 ? .down : .up
        case .down: nsMode = self < 0 ? .up : .down
        case .halfDown:
            // Foundation has no half-down: a tie is exactly half a unit away from both neighbours.
            let unit = Decimal(sign: .plus, exponent: -scale, significand: 1)
            let truncated = self.rounded(scale: scale, .down)
            let remainder = self - truncated
            let half = unit / 2
            if abs(remainder) > half { return truncated + (self < 0 ? -unit : unit) }
            return truncated
        }
        NSDecimalRound(&result, &value, scale, nsMode)
        return result
    }
}

/// An exact amount of one currency. Never a `Double`: `Decimal` (38 significant digits), with the
/// currency's minor units applied only when you round. Arithmetic between different currencies is
/// refused; conversion goes through an exchange rate explicitly.
///
/// ```swift
/// let price = try Money("19.99", .eur)
/// let total = try price.times(3).adding(Money("4.50", .eur))       // EUR 64.47
/// let shares = try total.allocate([1, 1, 1])                        // [21.49, 21.49, 21.49] — sums to the total
/// ```
public struct Money: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// The amount (may have more digits than the currency's minor units: unit prices, rates).
    public let amount: Decimal
    /// The currency.
    public let currency: Currency

    /// Creates an amount.
    public init(_ amount: Decimal, _ currency: Currency) {
        self.amount = amount
        self.currency = currency
    }

    /// Parses a plain decimal string (`"19.99"`, `"-0.5"`, `"1e3"` refused). - Throws: `invalidArgument` for anything else.
    public init(_ amount: String, _ currency: Currency) throws {
        let trimmed = amount.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.range(of: #"^[+-]?(\d+(\.\d*)?|\.\d+)$"#, options: .regularExpression) != nil,
              let value = Decimal(string: trimmed, locale: Locale(identifier: "en_US_POSIX")) else {
            throw NimbusError(.invalidArgument, "'\(amount)' is not a decimal amount (digits, one '.', optional sign)")
        }
        self.init(value, currency)
    }

    /// An amount given in minor units (cents): `Money(minorUnits: 1999, .eur)` is EUR 19.99.
    /// - Throws: `invalidArgument` for a currency without minor units.
    public init(minorUnits: Int64, _ currency: Currency) throws {
        guard let digits = currency.minorUnits else {
            throw NimbusError(.invalidArgument, "\(currency.code) has no minor unit; give the amount as a decimal")
        }
        self.init(Decimal(minorUnits) / Self.power(digits), currency)
    }

    /// Zero in `currency`.
    public static func zero(_ currency: Currency) -> Money { Money(0, currency) }

    /// The amount as plain decimal text with at least the currency's minor digits: `"49.90"`, `"500"` (JPY), `"0.0125"`.
    public var amountText: String {
        let text = "\(amount)"
        guard let digits = currency.minorUnits, digits > 0 else { return text }
        let fraction = text.split(separator: ".", maxSplits: 1).dropFirst().first?.count ?? 0
        guard fraction < digits else { return text }
        return text + (fraction == 0 ? "." : "") + String(repeating: "0", count: digits - fraction)
    }

    private enum CodingKeys: String, CodingKey { case amount, currency }

    /// Decodes `{"amount": "49.90", "currency": "EUR"}`; the currency must be in ``CurrencyRegistry/standard``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let code = try container.decode(String.self, forKey: .currency)
        guard let currency = try? CurrencyRegistry.standard.currency(code) else {
            throw DecodingError.dataCorruptedError(forKey: .currency, in: container,
                                                   debugDescription: "unknown currency '\(code)'; register it with CurrencyRegistry.standard.register")
        }
        let text = try container.decode(String.self, forKey: .amount)
        do { self = try Money(text, currency) } catch {
            throw DecodingError.dataCorruptedError(forKey: .amount, in: container, debugDescription: "'\(text)' is not a decimal amount")
        }
    }

    /// Encodes `{"amount": "49.90", "currency": "EUR"}`: the amount as text, so no JSON library turns it into a binary float.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(amountText, forKey: .amount)
        try container.encode(currency.code, forKey: .currency)
    }

    static func power(_ digits: Int) -> Decimal { Decimal(sign: .plus, exponent: digits, significand: 1) }

    /// The amount in minor units. - Throws: `invalidArgument` when it has more digits than the currency's
    /// minor units (round first) or the currency has none; `resourceExhausted` beyond Int64.
    public func minorUnits() throws -> Int64 {
        guard let digits = currency.minorUnits else { throw NimbusError(.invalidArgument, "\(currency.code) has no minor unit") }
        let scaled = amount * Self.power(digits)
        guard scaled == scaled.rounded(scale: 0, .down) else {
            throw NimbusError(.invalidArgument, "\(self) has more than \(digits) decimal places; round it first (rounded(_:))")
        }
        guard let value = Int64(exactly: NSDecimalNumber(decimal: scaled).int64Value), Decimal(value) == scaled else {
            throw NimbusError(.resourceExhausted, "\(self) does not fit in 64-bit minor units")
        }
        return value
    }

    /// Rounded to the currency's minor units (unchanged for currencies without one).
    public func rounded(_ mode: RoundingMode = .halfEven) -> Money {
        guard let digits = currency.minorUnits else { return self }
        return Money(amount.rounded(scale: digits, mode), currency)
    }

    /// Rounded to a cash increment, such as CHF 0.05 or SEK 1: `try price.rounded(toIncrement: Decimal(string: "0.05")!)`.
    /// - Throws: `invalidArgument` for an increment that is not positive.
    public func rounded(toIncrement increment: Decimal, _ mode: RoundingMode = .halfUp) throws -> Money {
        guard increment > 0 else { throw NimbusError(.invalidArgument, "a rounding increment must be positive, not \(increment)") }
        let steps = (amount / increment).rounded(scale: 0, mode)
        return Money(steps * increment, currency)
    }

    private func same(_ other: Money, _ operation: String) throws {
        guard other.currency == currency else {
            throw NimbusError(.invalidArgument, "cannot \(operation) \(other.currency.code) and \(currency.code); convert with an exchange rate first")
        }
    }

    /// self + other. - Throws: `invalidArgument` for different currencies.
    public func adding(_ other: Money) throws -> Money { try same(other, "add"); return Money(amount + other.amount, currency) }
    /// self − other. - Throws: `invalidArgument` for different currencies.
    public func subtracting(_ other: Money) throws -> Money { try same(other, "subtract"); return Money(amount - other.amount, currency) }
    /// self × factor (quantity, rate); not rounded.
    public func times(_ factor: Decimal) -> Money { Money(amount * factor, currency) }
    /// −self.
    public var negated: Money { Money(-amount, currency) }
    /// Whether the amount is zero.
    public var isZero: Bool { amount == 0 }
    /// Whether the amount is below zero.
    public var isNegative: Bool { amount < 0 }

    /// The sum of amounts of one currency. - Throws: `invalidArgument` for mixed currencies.
    public static func sum(_ amounts: [Money], currency: Currency) throws -> Money {
        try amounts.reduce(.zero(currency)) { try $0.adding($1) }
    }

    /// Splits the amount (rounded to minor units first) in proportion to `ratios`, so that the parts
    /// sum exactly to it: each part gets its floor share, and the minor units left over go one each to
    /// the parts with the largest remainders (ties: earlier parts first).
    /// - Throws: `invalidArgument` for no ratios, negative ratios, all zero, or a currency without minor units.
    public func allocate(_ ratios: [Decimal]) throws -> [Money] {
        guard !ratios.isEmpty, ratios.allSatisfy({ $0 >= 0 }), ratios.contains(where: { $0 > 0 }) else {
            throw NimbusError(.invalidArgument, "allocation needs non-negative ratios, at least one above zero: \(ratios)")
        }
        let total = try rounded().minorUnits()
        let magnitude = total.magnitude, sign: Int64 = total < 0 ? -1 : 1
        let sumOfRatios = ratios.reduce(0, +)
        var shares: [Int64] = []
        var remainders: [(index: Int, remainder: Decimal)] = []
        for (index, ratio) in ratios.enumerated() {
            let exact = Decimal(magnitude) * ratio / sumOfRatios
            let floor = exact.rounded(scale: 0, .down)
            shares.append(NSDecimalNumber(decimal: floor).int64Value)
            remainders.append((index, exact - floor))
        }
        var left = Int64(magnitude) - shares.reduce(0, +)
        for entry in remainders.sorted(by: { $0.remainder != $1.remainder ? $0.remainder > $1.remainder : $0.index < $1.index }) where left > 0 {
            shares[entry.index] += 1
            left -= 1
        }
        return try shares.map { try Money(minorUnits: sign * $0, currency) }
    }

    /// Splits into `parts` equal shares that sum exactly (the first ones get the extra minor units).
    public func split(into parts: Int) throws -> [Money] {
        guard parts > 0 else { throw NimbusError(.invalidArgument, "cannot split into \(parts) parts") }
        return try allocate(Array(repeating: 1, count: parts))
    }

    public static func < (lhs: Money, rhs: Money) -> Bool {
        lhs.currency.code != rhs.currency.code ? lhs.currency.code < rhs.currency.code : lhs.amount < rhs.amount
    }

    /// `EUR 19.99` (the amount as stored, not rounded).
    public var description: String { "\(currency.code) \(amount)" }

    /// Formatted for a locale, rounded to the currency's minor units: `1.234,56 €` in `de_DE`, `$1,234.56` in `en_US`.
    public func formatted(locale: Locale = Locale(identifier: "en_US"), mode: RoundingMode = .halfEven) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .currency
        formatter.locale = locale
        formatter.currencyCode = currency.code
        let digits = currency.minorUnits ?? 2
        formatter.minimumFractionDigits = digits
        formatter.maximumFractionDigits = digits
        return formatter.string(from: NSDecimalNumber(decimal: rounded(mode).amount)) ?? description
    }

    /// Parses a locale-formatted amount (`"1.234,56 €"` in `de_DE`, `"$1,234.56"` in `en_US`, or a plain number).
    /// - Throws: `invalidArgument` when the text is not an amount in that locale.
    public init(parsing text: String, _ currency: Currency, locale: Locale) throws {
        let formatter = NumberFormatter()
        formatter.numberStyle = .currency
        formatter.locale = locale
        formatter.currencyCode = currency.code
        let plain = NumberFormatter()
        plain.numberStyle = .decimal
        plain.locale = locale
        // The currency's symbol or code and any kind of space are dropped, then the number is read with
        // the locale's separators (Foundation's currency parsing is unreliable across platforms).
        var core = text
        for token in [formatter.currencySymbol, formatter.internationalCurrencySymbol, currency.code] {
            if let token, !token.isEmpty { core = core.replacingOccurrences(of: token, with: "") }
        }
        core = String(core.unicodeScalars.filter { !CharacterSet.whitespacesAndNewlines.contains($0) && $0 != "\u{00A0}" && $0 != "\u{202F}" })
        // Exact: the text becomes a plain decimal string (no trip through a binary Double).
        let grouping = plain.groupingSeparator ?? ",", decimal = plain.decimalSeparator ?? "."
        if !grouping.isEmpty, grouping != decimal { core = core.replacingOccurrences(of: grouping, with: "") }
        if decimal != "." { core = core.replacingOccurrences(of: decimal, with: ".") }
        if let parsed = try? Money(core, currency) {
            self = parsed
            return
        }
        throw NimbusError(.invalidArgument, "'\(text)' is not a \(currency.code) amount in the \(locale.identifier) format")
    }
}
