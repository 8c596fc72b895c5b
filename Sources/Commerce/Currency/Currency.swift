import Foundation
import NimbusCore
import Synchronization

/// A currency: its ISO 4217 code (or a custom code), numeric code and minor units.
public struct Currency: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `EUR`, `JPY`, or a custom code (`POINTS`).
    public let code: String
    /// ISO 4217 numeric code (`978`), `nil` for custom currencies.
    public let numericCode: Int?
    /// Digits after the decimal point of the smallest unit (EUR 2, JPY 0, KWD 3); `nil` where ISO defines none (gold, XDR).
    public let minorUnits: Int?
    /// The English name.
    public let name: String

    /// Creates a currency (for custom ones; ISO currencies come from ``CurrencyRegistry``).
    public init(code: String, numericCode: Int? = nil, minorUnits: Int?, name: String) {
        self.code = code
        self.numericCode = numericCode
        self.minorUnits = minorUnits
        self.name = name
    }

    public var description: String { code }

    /// Looks up an ISO 4217 currency in the standard registry. - Throws: `invalidArgument` for an unknown code.
    public init(_ code: String) throws {
        self = try CurrencyRegistry.standard.currency(code)
    }

    /// US dollar.
    public static let usd = Currency(code: "USD", numericCode: 840, minorUnits: 2, name: "US Dollar")
    /// Euro.
    public static let eur = Currency(code: "EUR", numericCode: 978, minorUnits: 2, name: "Euro")
}

/// The currencies a process knows: ISO 4217 (bundled, from the SIX list via datasets/currency-codes)
/// plus custom ones registered at startup (loyalty points, a crypto asset with 8 decimals...).
///
/// ```swift
/// try CurrencyRegistry.standard.register(Currency(code: "PTS", minorUnits: 0, name: "Loyalty points"))
/// let yen = try Currency("JPY")      // minorUnits 0
/// ```
public final class CurrencyRegistry: Sendable {
    private let currencies: Mutex<[String: Currency]>

    /// ISO 4217 and whatever was registered.
    public static let standard = CurrencyRegistry(iso4217: true)

    /// A registry with ISO 4217 (or empty).
    public init(iso4217: Bool = true) {
        currencies = Mutex(iso4217 ? Self.loadISO4217() : [:])
    }

    /// The currency with this code (case-insensitive). - Throws: `invalidArgument` naming the code.
    public func currency(_ code: String) throws -> Currency {
        let key = code.uppercased()
        guard let found = currencies.withLock({ $0[key] }) else {
            throw NimbusError(.invalidArgument, "'\(code)' is not an ISO 4217 currency or a registered one; register custom currencies first")
        }
        return found
    }

    /// Adds a custom currency. - Throws: `alreadyExists` when the code is taken by a different currency;
    /// `invalidArgument` for a code that is not 3–12 letters or digits.
    public func register(_ currency: Currency) throws {
        guard (3...12).contains(currency.code.count), currency.code.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) else {
            throw NimbusError(.invalidArgument, "a currency code is 3 to 12 upper-case letters or digits, not '\(currency.code)'")
        }
        try currencies.withLock { table in
            if let existing = table[currency.code], existing != currency {
                throw NimbusError(.alreadyExists, "the currency code \(currency.code) is already \(existing.name)")
            }
            table[currency.code] = currency
        }
    }

    /// Every known currency, by code.
    public var all: [Currency] { currencies.withLock { $0.values.sorted { $0.code < $1.code } } }

    private static func loadISO4217() -> [String: Currency] {
        guard let url = Bundle.module.url(forResource: "iso4217", withExtension: "csv"),
              let text = try? String(contentsOf: url, encoding: .utf8) else { return [:] }
        var table: [String: Currency] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: ",", maxSplits: 3).map(String.init)
            guard fields.count == 4 else { continue }
            let name = fields[3].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            table[fields[0]] = Currency(code: fields[0], numericCode: Int(fields[1]), minorUnits: Int(fields[2]), name: name)
        }
        return table
    }
}
