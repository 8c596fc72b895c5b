import ArgumentParser
import Foundation
import NimbusCore
import NimbusCurrency

/// `nimbus fx`: exchange rates and conversion.
struct FXCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fx",
        abstract: "Convert money between currencies with ECB reference rates.",
        subcommands: [Convert.self]
    )

    struct Convert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert AMOUNT from one currency to another: nimbus fx convert 100 USD EUR [--date 2024-05-02].",
            discussion: """
                With no network needed, rates come from the ECB snapshot shipped with Nimbus (its last day is printed; --date \
                within its 90 days). --live fetches the ECB's current files (daily, or the 90-day history with --date); \
                --rates reads an eurofxref XML file.
                """)
        @Argument(help: "The amount, a decimal number (100, 12.5).") var amount: String
        @Argument(help: "The currency to convert from (ISO 4217 code).") var from: String
        @Argument(help: "The currency to convert to.") var to: String
        @Option(help: "Use the rates of this day (YYYY-MM-DD); weekends and holidays take the last working day's.") var date: String?
        @Option(help: "An ECB eurofxref XML file to read instead of the shipped snapshot.") var rates: String?
        @Flag(help: "Fetch the ECB's current rates instead of the shipped snapshot.") var live = false
        @Option(help: "Rounding: half-even (default), half-up, half-down, up, down, ceiling, floor.") var rounding: String = "half-even"
        @Flag(help: "Print JSON (amount, currency, rate, date).") var json = false

        func run() async throws {
            let source = try Currency(from.uppercased())
            let target = try Currency(to.uppercased())
            let money = try Money(amount, source)
            guard let mode = RoundingMode.allCases.first(where: { $0.cliName == rounding }) else {
                throw ValidationError("--rounding '\(rounding)' is not one of \(RoundingMode.allCases.map(\.cliName).joined(separator: ", "))")
            }
            var day: Date?
            if let date {
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: "UTC")
                formatter.dateFormat = "yyyy-MM-dd"
                guard let parsed = formatter.date(from: date) else { throw ValidationError("--date '\(date)' is not YYYY-MM-DD") }
                day = parsed
            }
            let provider: any RateProvider
            let origin: String
            if let rates {
                provider = FixedRateProvider(try ECBRateProvider.parse(try Data(contentsOf: URL(fileURLWithPath: rates))))
                origin = rates
            } else if live {
                provider = ECBRateProvider()
                origin = "ECB"
            } else {
                provider = try ECBRateProvider.snapshot()
                origin = "ECB snapshot shipped with Nimbus; --live for today's"
            }
            let table = try await provider.rates(on: day)
            let converted = try await CurrencyConverter(provider: FixedRateProvider([table])).convert(money, to: target, on: day, rounding: mode)
            let rate = try table.rate(from: source.code, to: target.code)
            let dateText = ISO8601DateFormatter.string(from: table.date, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
            if json {
                print(JSONValue.object(["amount": .string("\(converted.amount)"), "currency": .string(target.code),
                                        "rate": .string("\(rate)"), "date": .string(dateText), "source": .string(origin)]).description)
            } else {
                print("\(converted.amount) \(target.code)  (rate \(rate), \(dateText), \(origin))")
            }
        }
    }
}

extension RoundingMode {
    /// `halfEven` → `half-even`.
    var cliName: String {
        rawValue.reduce(into: "") { name, character in
            if character.isUppercase { name += "-" + character.lowercased() } else { name.append(character) }
        }
    }
}
