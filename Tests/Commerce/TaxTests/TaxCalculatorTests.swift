import Foundation
import NimbusCore
import NimbusCurrency
import NimbusHTTP
import NimbusTax
import NimbusTesting
import Testing

func day(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withFullDate]
    return formatter.date(from: text)!
}

@Suite struct VATRatesTests {
    @Test func ratesFollowTheirHistoryAndTerritories() throws {
        let rates = VATRates.eu
        #expect(rates.countries.count == 28 && rates.countries.contains("GR") && rates.countries.contains("GB"))
        #expect(try rates.rate(country: "DE", category: .standard, on: day("2020-08-01")) == 16, "the German 2020 cut")
        #expect(try rates.rate(country: "DE", category: .reduced, on: day("2020-08-01")) == 5)
        #expect(try rates.rate(country: "DE", category: .standard, on: day("2021-01-01")) == 19)
        #expect(try rates.rate(country: "DE", category: .standard, on: day("2020-06-30")) == 19)
        #expect(try rates.rate(country: "FR", category: .reducedAlternative, on: day("2024-03-01")) == 10)
        #expect(try rates.rate(country: "FR", category: .superReduced, on: day("2024-03-01")) == Decimal(string: "2.1"))
        #expect(try rates.rate(country: "FR", category: .standard, on: day("2013-01-01")) == Decimal(string: "19.6"))
        #expect(try rates.rate(country: "DE", category: .superReduced, on: day("2024-03-01")) == 7, "no super-reduced rate: the reduced one")
        #expect(try rates.rate(country: "ES", category: .standard, postcode: "35001", on: day("2024-03-01")) == nil, "Canary Islands")
        #expect(try rates.rate(country: "DE", category: .standard, postcode: "27498", on: day("2024-03-01")) == nil, "Heligoland")
        #expect(try rates.rate(country: "FR", category: .standard, postcode: "97110", on: day("2024-03-01")) == Decimal(string: "8.5"), "Guadeloupe")
        #expect(try rates.rate(country: "FR", category: .standard, postcode: "75001", on: day("2024-03-01")) == 20)
        #expect(throws: NimbusError.self) { try rates.rate(country: "US", category: .standard, on: Date()) }
        #expect(throws: NimbusError.self) { try VATRates(json: Data(#"{"items":{"XX":[{"effective_from":"2020-01-01","rates":{}}]}}"#.utf8)) }
    }
}

/// A stand-in US sales-tax service: 7.25 % on everything, exclusive.
struct FlatSalesTax: SalesTaxProvider {
    func quote(_ request: TaxRequest) async throws -> TaxQuote {
        let currency = request.lines[0].amount.currency
        let lines = try request.lines.map { line -> TaxedLine in
            let tax = line.amount.times(Decimal(string: "0.0725")!).rounded(.halfUp)
            return TaxedLine(reference: line.reference, net: line.amount, tax: tax, gross: try line.amount.adding(tax), rate: Decimal(string: "7.25")!,
                             jurisdiction: "US-\(request.customer.region ?? "")", exemption: nil)
        }
        let net = try Money.sum(lines.map(\.net), currency: currency), tax = try Money.sum(lines.map(\.tax), currency: currency)
        return TaxQuote(lines: lines, breakdown: [], net: net, tax: tax, gross: try net.adding(tax), notes: [])
    }
}

@Suite struct TaxCalculatorTests {
    let germanSeller = TaxCalculator(configuration: .init(homeCountry: "DE", registrations: [
        TaxRegistration(country: "DE"), TaxRegistration(country: "EU", scheme: .euOSS, from: day("2021-07-01")), TaxRegistration(country: "GB")]))
    let date = day("2024-05-02")

    func eur(_ text: String) throws -> Money { try Money(text, .eur) }

    @Test func consumersPayTheirCountrysRateThroughTheOneStopShop() async throws {
        let quote = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "FR"), lines: [
            TaxLineItem(reference: "ebook", amount: try eur("10.00"), category: .reduced, behavior: .inclusive),
            TaxLineItem(reference: "course", amount: try eur("100.00"), category: .standard, behavior: .exclusive),
        ], date: date))
        // FR reduced 5.5 % inside 10.00: 10 × 5.5 / 105.5 = 0.5213 → 0.52; standard 20 % on 100.00.
        #expect(try quote.lines[0].tax == eur("0.52") && quote.lines[0].net == eur("9.48") && quote.lines[0].gross == eur("10.00"))
        #expect(try quote.lines[1].tax == eur("20.00") && quote.lines[1].gross == eur("120.00"))
        #expect(quote.lines.allSatisfy { $0.jurisdiction == "FR" && $0.exemption == nil })
        #expect(try quote.net == eur("109.48") && quote.tax == eur("20.52") && quote.gross == eur("130.00"))
        #expect(quote.breakdown.map(\.rate) == [Decimal(string: "5.5")!, 20])
        // Before the seller joined the OSS, sales to French consumers were not collected.
        let before = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "FR"), lines: [
            TaxLineItem(reference: "x", amount: try eur("10.00"))], date: day("2021-06-30")))
        #expect(before.lines[0].exemption == .notCollecting && before.tax.isZero)
    }

    @Test func crossBorderBusinessesReverseChargeAndDomesticOnesPayVAT() async throws {
        let french = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "FR", vatNumber: "FR25064285364"), lines: [
            TaxLineItem(reference: "license", amount: try eur("1000.00"))], date: date))
        #expect(french.tax.isZero && french.lines[0].exemption == .reverseCharge && french.notes == [TaxCalculator.reverseChargeNote])
        let german = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "DE", vatNumber: "DE202215610"), lines: [
            TaxLineItem(reference: "license", amount: try eur("1000.00"))], date: date))
        #expect(try german.tax == eur("190.00") && german.notes.isEmpty)
        await #expect(throws: NimbusError.self) {
            _ = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "FR", vatNumber: "FR25064285365"), lines: [
                TaxLineItem(reference: "x", amount: try eur("1"))], date: date))
        }
        await #expect(throws: NimbusError.self, "a German number for a French customer") {
            _ = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "FR", vatNumber: "DE202215610"), lines: [
                TaxLineItem(reference: "x", amount: try eur("1"))], date: date))
        }
    }

    @Test func categoriesTerritoriesAndExemptCustomersGiveTheirReasons() async throws {
        let quote = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "DE"), lines: [
            TaxLineItem(reference: "insurance", amount: try eur("50.00"), category: .exempt),
            TaxLineItem(reference: "export", amount: try eur("50.00"), category: .zeroRated),
            TaxLineItem(reference: "bread", amount: try eur("50.00"), category: .reduced),
        ], date: date))
        #expect(quote.lines.map(\.exemption) == [.productExempt, .zeroRated, nil])
        #expect(try quote.lines[2].tax == eur("3.50"))
        let canary = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "ES", postcode: "35 001"), lines: [
            TaxLineItem(reference: "x", amount: try eur("10"))], date: date))
        #expect(canary.lines[0].exemption == .territoryExcluded && canary.tax.isZero)
        let charity = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "DE", isExempt: true), lines: [
            TaxLineItem(reference: "x", amount: try eur("10"))], date: date))
        #expect(charity.lines[0].exemption == .customerExempt)
        let british = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "GB"), lines: [
            TaxLineItem(reference: "x", amount: try Money("10.00", Currency("GBP")))], date: date))
        #expect(try british.tax == Money("2.00", Currency("GBP")))
        let swiss = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "CH"), lines: [
            TaxLineItem(reference: "x", amount: try Money("10.00", Currency("CHF")))], date: date))
        #expect(swiss.lines[0].exemption == .notCollecting)
    }

    @Test func perInvoiceRoundingRoundsOnceAndSpreadsTheCentsBack() async throws {
        let lines = (0..<10).map { TaxLineItem(reference: "l\($0)", amount: try! Money("0.10", .eur)) }
        let perLine = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "DE"), lines: lines, date: date))
        #expect(try perLine.tax == eur("0.20"), "0.019 rounds up to 0.02 ten times")
        let invoiceCalculator = TaxCalculator(configuration: .init(homeCountry: "DE", registrations: [TaxRegistration(country: "DE")], rounding: .perInvoice))
        let perInvoice = try await invoiceCalculator.quote(TaxRequest(customer: TaxCustomer(country: "DE"), lines: lines, date: date))
        #expect(try perInvoice.tax == eur("0.19"), "19 % of 1.00, rounded once")
        #expect(try Money.sum(perInvoice.lines.map(\.tax), currency: .eur) == perInvoice.tax, "line taxes add up to the total")
        #expect(try perInvoice.breakdown.first?.tax == eur("0.19") && perInvoice.breakdown.first?.net == eur("1.00"))
    }

    @Test func usAddressesGoToTheSalesTaxProviderWhenThereIsOne() async throws {
        let usd = Currency.usd
        let request = TaxRequest(customer: TaxCustomer(country: "US", region: "CA"), lines: [TaxLineItem(reference: "x", amount: try Money("100.00", usd))], date: date)
        let noNexus = try await germanSeller.quote(request)
        #expect(noNexus.lines[0].exemption == .notCollecting)
        let registered = TaxCalculator(configuration: .init(homeCountry: "US", registrations: [TaxRegistration(country: "US", region: "CA")]))
        await #expect(throws: NimbusError.self) { _ = try await registered.quote(request) }
        let delegated = TaxCalculator(configuration: .init(homeCountry: "US", registrations: [TaxRegistration(country: "US", region: "CA")], salesTax: FlatSalesTax()))
        let quote = try await delegated.quote(request)
        #expect(try quote.tax == Money("7.25", usd) && quote.lines[0].jurisdiction == "US-CA")
        await #expect(throws: NimbusError.self) {
            _ = try await germanSeller.quote(TaxRequest(customer: TaxCustomer(country: "DE"), lines: [
                TaxLineItem(reference: "a", amount: try eur("1")), TaxLineItem(reference: "b", amount: try Money("1", usd))]))
        }
    }
}

@Suite struct VIESClientTests {
    @Test func registeredUnregisteredAndUnavailableAreToldApart() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/check-vat-number") { request in
            let body = try request.json()
            switch body["vatNumber"]?.stringValue {
            case "202215610":
                #expect(body["countryCode"] == "DE" && body["requesterMemberStateCode"] == "FR" && body["requesterNumber"] == "25064285364")
                return .json(200, #"{"countryCode":"DE","vatNumber":"202215610","requestDate":"2024-05-02T10:00:00.000Z","valid":true,"requestIdentifier":"WAPIAAAAW","name":"ACME GMBH","address":"MAIN ST 1\n10115 BERLIN","traderName":"---"}"#)
            case "247209677":
                return .json(200, #"{"countryCode":"DE","vatNumber":"247209677","requestDate":"2024-05-02T10:00:00.000Z","valid":false,"name":"---","address":"---"}"#)
            case "445045358B01":
                return .json(200, #"{"actionSucceed":false,"errorWrappers":[{"error":"MS_UNAVAILABLE","message":"The service is unavailable for this member state"}]}"#)
            default:
                return .json(400, #"{"actionSucceed":false,"errorWrappers":[{"error":"INVALID_INPUT"}]}"#)
            }
        }
        let vies = VIESClient(http: NimbusHTTPClient(configuration: .init(service: "vies", baseURL: server.baseURL, retry: .none)))
        let valid = try await vies.check(try VATNumber("DE202215610"), requester: try VATNumber("FR25064285364"))
        #expect(valid.isValid && valid.name == "ACME GMBH" && valid.requestIdentifier == "WAPIAAAAW")
        let invalid = try await vies.check(try VATNumber("DE247209677"))
        #expect(!invalid.isValid && invalid.name == nil, "'---' means not disclosed")
        do {
            _ = try await vies.check(try VATNumber("NL445045358B01"))
            Issue.record("MS_UNAVAILABLE must not read as a verdict")
        } catch let error as NimbusError {
            #expect(error.code == .unavailable && error.isRetryable && error.message.contains("MS_UNAVAILABLE"))
        }
        await #expect(throws: NimbusError.self) { _ = try await vies.check(try VATNumber("ATU87001119")) }
    }
}
