import Foundation
import NimbusCore
import NimbusCurrency
import NimbusHTTP
import NimbusTesting
import Testing

func fixture(_ name: String) throws -> Data {
    try Data(contentsOf: try #require(Bundle.module.url(forResource: name, withExtension: "xml", subdirectory: "Fixtures")))
}

func day(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withFullDate]
    return formatter.date(from: text)!
}

@Suite struct ExchangeRateTests {
    @Test func theECBFilesParseStrictly() throws {
        let daily = try ECBRateProvider.parse(try fixture("ecb-daily"))
        #expect(daily.count == 1 && daily[0].base == "EUR" && daily[0].date == day("2018-06-11"))
        #expect(daily[0].rates["USD"] == Decimal(string: "1.1790") && daily[0].rates["JPY"] == Decimal(string: "129.62"))
        let history = try ECBRateProvider.parse(try fixture("ecb-90d"))
        #expect(history.count == 61 && history.first?.date == day("2018-03-14") && history.last?.date == day("2018-06-11"))
        let error = #expect(throws: NimbusError.self) { try ECBRateProvider.parse(try fixture("ecb-illegal")) }
        #expect(error?.code == .dataLoss)
        #expect(throws: NimbusError.self) { try ECBRateProvider.parse(Data("<gesmes:Envelope><Cube><Cube time='2018-01-01'><Cube currency='USD' rate='abc'/></Cube></Cube></gesmes:Envelope>".utf8)) }
    }

    @Test func conversionTriangulatesThroughTheBaseAndRoundsExplicitly() async throws {
        let converter = CurrencyConverter(provider: FixedRateProvider(try ECBRateProvider.parse(try fixture("ecb-daily"))))
        let yen = try Currency("JPY")
        // 100 USD → EUR: 100 / 1.1790 = 84.8176… → 84.82; USD → JPY: 100 × 129.62 / 1.1790 = 10994.06… → 10994 (0 decimals).
        #expect(try await converter.convert(Money("100", .usd), to: .eur) == Money("84.82", .eur))
        #expect(try await converter.convert(Money("100", .usd), to: yen) == Money("10994", yen))
        #expect(try await converter.convert(Money("100", .usd), to: .eur, rounding: .up) == Money("84.82", .eur))
        #expect(try await converter.convert(Money("100", .usd), to: .eur, rounding: .down) == Money("84.81", .eur))
        let missing = await #expect(throws: NimbusError.self) { try await converter.convert(Money("1", .usd), to: try Currency("KWD")) }
        #expect(missing?.code == .notFound && missing?.message.contains("KWD") == true)
        // Round trip within one minor unit.
        let there = try await converter.convert(Money("123.45", .usd), to: .eur)
        let back = try await converter.convert(there, to: .usd)
        #expect(abs(try back.subtracting(Money("123.45", .usd)).amount) <= Decimal(string: "0.01")!)
    }

    @Test func historicalDatesTakeTheLastPublishedDay() async throws {
        let provider = FixedRateProvider(try ECBRateProvider.parse(try fixture("ecb-90d")))
        #expect(try await provider.rates(on: day("2018-06-10")).date == day("2018-06-08"), "Sunday takes Friday's rates")
        #expect(try await provider.rates(on: day("2018-06-08")).rates["USD"] == Decimal(string: "1.1754"))
        #expect(try await provider.rates(on: nil).date == day("2018-06-11"))
        await #expect(throws: NimbusError.self) { try await provider.rates(on: day("2017-01-01")) }
    }

    @Test func theECBProviderReadsTheLiveFilesAndRefusesAnErrorPage() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.GET, "/stats/eurofxref/eurofxref-daily.xml", reply: .text(200, String(decoding: try fixture("ecb-daily"), as: UTF8.self),
                                                                                headers: [("Content-Type", "text/xml")]))
        server.route(.GET, "/stats/eurofxref/eurofxref-hist-90d.xml", replies: [
            .text(200, String(decoding: try fixture("ecb-illegal"), as: UTF8.self), headers: [("Content-Type", "text/html")]),
            .text(503, "maintenance", headers: [("Retry-After", "120")]),
        ])
        let http = NimbusHTTPClient(configuration: .init(service: "ecb", retry: .none))
        let ecb = ECBRateProvider(baseURL: server.baseURL, http: http)
        #expect(try await ecb.rates(on: nil).rates["GBP"] == Decimal(string: "0.88180"))
        #expect((await #expect(throws: NimbusError.self) { try await ecb.rates(on: day("2018-06-01")) })?.code == .dataLoss)
        let unavailable = await #expect(throws: NimbusError.self) { try await ecb.rates(on: day("2018-06-01")) }
        #expect(unavailable?.code == .unavailable && unavailable?.retryAfter == .seconds(120))
    }

    @Test func theCacheServesFreshRatesAndStaleOnesOnlyWithinItsLimit() async throws {
        final class Flaky: RateProvider, @unchecked Sendable {
            let lock = NSLock()
            var calls = 0
            var failing = false
            let table: RateTable
            init(_ table: RateTable) { self.table = table }
            func rates(on date: Date?) async throws -> RateTable {
                try lock.withLock {
                    calls += 1
                    if failing { throw NimbusError(.unavailable, "upstream down") }
                    return table
                }
            }
        }
        let upstream = Flaky(RateTable(base: "EUR", date: day("2018-06-11"), rates: ["USD": 1.2]))
        let clock = ManualClock()
        let cache = CachedRateProvider(upstream, maxAge: .seconds(3600), maxStale: .seconds(86_400), clock: clock)
        _ = try await cache.rates(on: nil)
        _ = try await cache.rates(on: nil)
        #expect(upstream.calls == 1)
        clock.advance(by: .seconds(3601))
        upstream.lock.withLock { upstream.failing = true }
        #expect(try await cache.rates(on: nil).rates["USD"] == 1.2, "stale but within a day: served")
        #expect(upstream.calls == 2)
        clock.advance(by: .seconds(86_400))
        await #expect(throws: NimbusError.self) { try await cache.rates(on: nil) }
    }
}

@Suite struct OpenExchangeRatesTests {
    @Test func latestAndHistoricalRatesWithTheAppIDInAHeaderAndDocumentedErrors() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        let body = #"{"disclaimer":"Usage subject to terms","license":"https://openexchangerates.org/license","timestamp":1528675200,"base":"USD","rates":{"EUR":0.848176,"JPY":109.94,"USD":1}}"#
        server.route(.GET, "/api/latest.json") { request in
            request.header("authorization") == "Token app-123"
                ? .json(200, body)
                : .json(401, #"{"error":true,"status":401,"message":"invalid_app_id","description":"Invalid App ID provided."}"#)
        }
        server.route(.GET, "/api/historical/2018-06-10.json", replies: [.json(200, body), .json(200, #"{"base":"USD","rates":"nope"}"#)])
        let http = NimbusHTTPClient(configuration: .init(service: "oxr", retry: .none))
        let oxr = OpenExchangeRatesProvider(appID: Secret("app-123"), baseURL: server.baseURL + "/api", http: http)
        let latest = try await oxr.rates(on: nil)
        #expect(latest.base == "USD" && latest.date == day("2018-06-11") && latest.rates["JPY"] == Decimal(string: "109.94"))
        let converter = CurrencyConverter(provider: oxr)
        #expect(try await converter.convert(Money("10", .eur), to: try Currency("JPY"), on: day("2018-06-10")) == Money("1296", try Currency("JPY")))
        #expect((await #expect(throws: NimbusError.self) { try await oxr.rates(on: day("2018-06-10")) })?.code == .dataLoss)
        let wrongKey = OpenExchangeRatesProvider(appID: Secret("wrong"), baseURL: server.baseURL + "/api", http: http)
        let denied = await #expect(throws: NimbusError.self) { try await wrongKey.rates(on: nil) }
        #expect(denied?.code == .unauthenticated && denied?.message.contains("Invalid App ID") == true)
        #expect(denied?.message.contains("wrong") == false, "the App ID never appears in errors")
    }
}
