import ArgumentParser
import Foundation
import NimbusCore
import NimbusCurrency
import NimbusTax

/// `nimbus tax`: VAT quotes and VAT-number checks with the embedded engine.
struct TaxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tax",
        abstract: "Quote VAT for a sale and check VAT numbers (EU rates shipped with Nimbus).",
        subcommands: [Quote.self, Validate.self]
    )

    struct Quote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tax a sale: nimbus tax quote --seller DE --registration DE --registration EU-OSS --country FR --line ebook=10.00:reduced:inclusive.",
            discussion: "A line is REFERENCE=AMOUNT[:CATEGORY[:inclusive|exclusive]]; categories: \(TaxCategory.allCases.map(\.rawValue).joined(separator: ", ")).")
        @Option(help: "Where the seller is established (ISO country code).") var seller: String
        @Option(help: "Where the seller collects: a country code, US-CA for a US state, EU-OSS for the One-Stop Shop (repeatable).") var registration: [String] = []
        @Option(help: "The customer's country.") var country: String
        @Option(help: "The customer's region (US state).") var region: String?
        @Option(help: "The customer's postcode.") var postcode: String?
        @Option(name: .customLong("vat-number"), help: "The customer's VAT number (B2B).") var vatNumber: String?
        @Option(help: "The currency of the lines.") var currency: String = "EUR"
        @Option(help: "A line, REFERENCE=AMOUNT[:CATEGORY[:inclusive]] (repeatable).") var line: [String]
        @Option(help: "The date of supply (YYYY-MM-DD; default today).") var date: String?
        @Flag(name: .customLong("per-invoice"), help: "Round tax once per rate instead of per line.") var perInvoice = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let money = try Currency(currency.uppercased())
            var registrations: [TaxRegistration] = []
            for entry in registration {
                let upper = entry.uppercased()
                if upper == "EU-OSS" { registrations.append(TaxRegistration(country: "EU", scheme: .euOSS)); continue }
                let parts = upper.split(separator: "-", maxSplits: 1).map(String.init)
                registrations.append(TaxRegistration(country: parts[0], region: parts.count > 1 ? parts[1] : nil))
            }
            let lines = try line.map { text -> TaxLineItem in
                let pair = text.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2 else { throw ValidationError("--line '\(text)' is not REFERENCE=AMOUNT[:CATEGORY[:inclusive]]") }
                let fields = pair[1].split(separator: ":").map(String.init)
                guard let category = TaxCategory(rawValue: fields.count > 1 ? fields[1] : "standard") else {
                    throw ValidationError("--line '\(text)': category '\(fields[1])' is not one of \(TaxCategory.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let behavior: TaxBehavior = fields.count > 2 && fields[2] == "inclusive" ? .inclusive : .exclusive
                return TaxLineItem(reference: pair[0], amount: try Money(fields[0], money), category: category, behavior: behavior)
            }
            var when = Date()
            if let date {
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withFullDate]
                guard let parsed = formatter.date(from: date) else { throw ValidationError("--date '\(date)' is not YYYY-MM-DD") }
                when = parsed
            }
            let calculator = TaxCalculator(configuration: .init(homeCountry: seller, registrations: registrations, rounding: perInvoice ? .perInvoice : .perLine))
            let quote = try await calculator.quote(TaxRequest(customer: TaxCustomer(country: country, region: region, postcode: postcode, vatNumber: vatNumber),
                                                              lines: lines, date: when))
            if json {
                try Output.printJSON(quote)
                return
            }
            for taxed in quote.lines {
                let why = taxed.exemption.map { " (\($0.rawValue))" } ?? ""
                print("\(taxed.reference): net \(taxed.net.amountText)  tax \(taxed.tax.amountText) at \(taxed.rate)% \(taxed.jurisdiction ?? "-")\(why)  gross \(taxed.gross.amountText)")
            }
            print("total: net \(quote.net.amountText)  tax \(quote.tax.amountText)  gross \(quote.gross.amountText) \(money.code)")
            for note in quote.notes { print(note) }
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a VAT number's syntax and check digits (exit 1 when invalid).")
        @Argument(help: "The VAT number, with its country prefix.") var number: String
        func run() async throws {
            do {
                print("valid: \(try VATNumber(number))")
            } catch let error as NimbusError {
                FileHandle.standardError.write(Data("invalid: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
