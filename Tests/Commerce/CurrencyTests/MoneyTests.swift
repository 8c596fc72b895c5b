import Foundation
import NimbusCore
import NimbusCurrency
import PropertyBased
import Testing

func money(_ text: String, _ code: String = "EUR") throws -> Money { try Money(text, try Currency(code)) }

@Suite struct CurrencyRegistryTests {
    @Test func iso4217ComesWithMinorUnitsAndCustomCurrenciesCanBeAdded() throws {
        #expect(try Currency("jpy").minorUnits == 0)
        #expect(try Currency("KWD").minorUnits == 3)
        #expect(try Currency("CLF").minorUnits == 4)
        #expect(try Currency("XAU").minorUnits == nil)
        #expect(try Currency("EUR") == .eur && Currency.usd.numericCode == 840)
        #expect(CurrencyRegistry.standard.all.count >= 170)
        let error = #expect(throws: NimbusError.self) { try Currency("XYZ") }
        #expect(error?.message.contains("XYZ") == true)
        let registry = CurrencyRegistry()
        try registry.register(Currency(code: "PTS", minorUnits: 0, name: "Points"))
        #expect(try registry.currency("PTS").minorUnits == 0)
        #expect(throws: NimbusError.self) { try registry.register(Currency(code: "EUR", minorUnits: 3, name: "Fake euro")) }
        #expect(throws: NimbusError.self) { try registry.register(Currency(code: "x", minorUnits: 0, name: "Bad")) }
    }
}

@Suite struct MoneyTests {
    @Test func amountsAreExactAndCurrenciesDoNotMix() throws {
        #expect(try money("0.1").adding(money("0.2")) == money("0.3"), "no binary floating point anywhere")
        #expect(try money("19.99").times(3).adding(money("4.50")) == money("64.47"))
        let mixed = #expect(throws: NimbusError.self) { try money("1").adding(money("1", "USD")) }
        #expect(mixed?.message.contains("exchange rate") == true)
        for bad in ["", "1,5", "1e3", "abc", "1.2.3", "--1"] { #expect(throws: NimbusError.self) { try money(bad) } }
        #expect(try Money(minorUnits: 1999, .eur) == money("19.99"))
        #expect(try Money(minorUnits: 5, try Currency("JPY")) == money("5", "JPY"))
        #expect(try money("19.99").minorUnits() == 1999)
        #expect(throws: NimbusError.self) { try money("19.999").minorUnits() }
        #expect(throws: NimbusError.self) { try Money(minorUnits: 1, try Currency("XAU")) }
    }

    @Test(arguments: [
        ("2.345", RoundingMode.halfEven, "2.34"), ("2.355", .halfEven, "2.36"), ("2.345", .halfUp, "2.35"), ("2.345", .halfDown, "2.34"),
        ("2.3451", .halfDown, "2.35"), ("-2.345", .halfUp, "-2.35"), ("-2.345", .halfDown, "-2.34"), ("2.341", .up, "2.35"),
        ("-2.341", .up, "-2.35"), ("2.349", .down, "2.34"), ("-2.349", .down, "-2.34"), ("-2.341", .ceiling, "-2.34"), ("-2.341", .floor, "-2.35"),
    ])
    func roundingModes(_ input: String, _ mode: RoundingMode, _ expected: String) throws {
        #expect(try money(input).rounded(mode) == money(expected))
    }

    @Test func minorUnitsAndCashRoundingFollowTheCurrency() throws {
        #expect(try money("1234.5", "JPY").rounded() == money("1234", "JPY"), "half-even: 1234.5 → 1234")
        #expect(try money("1.23456", "KWD").rounded() == money("1.235", "KWD"))
        let chf = try money("1.27", "CHF")
        #expect(try chf.rounded(toIncrement: Decimal(string: "0.05")!) == money("1.25", "CHF"))
        #expect(try money("1.275", "CHF").rounded(toIncrement: Decimal(string: "0.05")!) == money("1.30", "CHF"))
        #expect(throws: NimbusError.self) { try chf.rounded(toIncrement: 0) }
        #expect(try money("0.0375").amount == Decimal(string: "0.0375"), "unit prices keep their extra digits until rounded")
    }

    @Test func allocationNeverLosesOrInventsAMinorUnit() throws {
        #expect(try money("100").split(into: 3) == [money("33.34"), money("33.33"), money("33.33")])
        #expect(try money("0.05").allocate([3, 7]) == [money("0.02"), money("0.03")])   // 1.5 → 1 and 3.5 → 3, one cent left: the larger remainder (tie: first) gets it
        #expect(try money("-10").split(into: 3) == [money("-3.34"), money("-3.33"), money("-3.33")])
        #expect(try money("10", "JPY").allocate([1, 0, 1]) == [money("5", "JPY"), money("0", "JPY"), money("5", "JPY")])
        #expect(throws: NimbusError.self) { try money("1").allocate([]) }
        #expect(throws: NimbusError.self) { try money("1").allocate([0, 0]) }
        #expect(throws: NimbusError.self) { try money("1").allocate([-1, 2]) }
    }

    @Test func formattingAndParsingFollowTheLocale() throws {
        let amount = try money("1234.56")
        #expect(amount.formatted(locale: Locale(identifier: "en_US")).contains("1,234.56"))
        let german = amount.formatted(locale: Locale(identifier: "de_DE"))
        #expect(german.contains("1.234,56") && german.contains("€"))
        #expect(try Money(parsing: german, .eur, locale: Locale(identifier: "de_DE")) == amount)
        #expect(try Money(parsing: "1.234,56", .eur, locale: Locale(identifier: "de_DE")) == amount)
        #expect(try money("1234", "JPY").formatted(locale: Locale(identifier: "ja_JP")).contains("1,234"))
        #expect(throws: NimbusError.self) { try Money(parsing: "twelve", .eur, locale: Locale(identifier: "en_US")) }
    }
}

@Suite struct MoneyProperties {
    static let cents = Gen.int(in: -1_000_000_000_000...1_000_000_000_000)
    static let ratios = Gen.int(in: 0...1000).array(of: 1...12)

    @Test func allocationSumsToTheTotal() async {
        await propertyCheck(count: 300, input: Self.cents, Self.ratios) { cents, ratios in
            guard ratios.contains(where: { $0 > 0 }) else { return }
            let total = try! Money(minorUnits: Int64(cents), .eur)
            let parts = try! total.allocate(ratios.map { Decimal($0) })
            #expect(try! Money.sum(parts, currency: .eur) == total)
            #expect(parts.count == ratios.count)
            for (part, ratio) in zip(parts, ratios) where ratio == 0 { #expect(part.isZero) }
        }
    }

    @Test func evenSplitsDifferByAtMostOneMinorUnit() async {
        await propertyCheck(count: 300, input: Self.cents, Gen.int(in: 1...50)) { cents, parts in
            let shares = try! Money(minorUnits: Int64(cents), .eur).split(into: parts).map { try! $0.minorUnits() }
            #expect(shares.reduce(0, +) == Int64(cents))
            #expect((shares.max() ?? 0) - (shares.min() ?? 0) <= 1)
        }
    }

    @Test func largeAmountsStayExact() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...Int(Int64.max / 4))) { cents in
            let value = try! Money(minorUnits: Int64(cents), .eur)
            #expect(try! value.adding(value).subtracting(value).minorUnits() == Int64(cents), "no overflow, no precision loss at 18 digits")
        }
    }
}

@Suite struct MoneyCodingTests {
    @Test func moneyTravelsAsTextAndACodeNeverAsAFloat() throws {
        let values = [try Money("49.9", .eur), try Money("0.1", .usd), try Money("500", Currency("JPY")), try Money("0.012345", .usd),
                      try Money("-12345678901234567.89", .eur)]
        let data = try JSONEncoder().encode(values)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#"{"amount":"49.90","currency":"EUR"}"#) || text.contains(#"{"currency":"EUR","amount":"49.90"}"#))
        #expect(text.contains(#""500""#) && text.contains(#""0.012345""#) && text.contains(#""-12345678901234567.89""#))
        #expect(try JSONDecoder().decode([Money].self, from: data) == values)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Money.self, from: Data(#"{"amount":"1.00","currency":"XYZ"}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Money.self, from: Data(#"{"amount":"1e3","currency":"EUR"}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Money.self, from: Data(#"{"amount":1.5,"currency":"EUR"}"#.utf8)) }
    }
}
