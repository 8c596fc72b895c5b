import Foundation
import NimbusCore
import NIOCore
import NimbusHTTP
import Synchronization
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Rates of one day against a base currency: `rates["USD"] = 1.1790` means 1 base = 1.1790 USD.
public struct RateTable: Sendable, Hashable {
    /// The currency every rate is quoted against (EUR for the ECB).
    public var base: String
    /// The day the rates are for (UTC midnight).
    public var date: Date
    /// Quote currency code → units of it per one base unit.
    public var rates: [String: Decimal]

    /// Creates a table.
    public init(base: String, date: Date, rates: [String: Decimal]) {
        self.base = base
        self.date = date
        self.rates = rates
    }

    /// Units of `to` per one unit of `from`, triangulated through the base when neither is it
    /// (USD→JPY = JPY per EUR ÷ USD per EUR). - Throws: `notFound` naming the missing currency.
    public func rate(from: String, to: String) throws -> Decimal {
        if from == to { return 1 }
        func perBase(_ code: String) throws -> Decimal {
            if code == base { return 1 }
            guard let rate = rates[code], rate > 0 else {
                throw NimbusError(.notFound, "no \(code) rate against \(base) on \(RateTable.day(date))")
            }
            return rate
        }
        return try perBase(to) / perBase(from)
    }

    static func day(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: date)
    }

    static func parseDay(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.date(from: text)
    }
}

/// Where exchange rates come from.
public protocol RateProvider: Sendable {
    /// The rates in force on `date` (the last published on or before it), or the latest for `nil`.
    func rates(on date: Date?) async throws -> RateTable
}

extension ECBRateProvider {
    /// The ECB reference rates shipped with Nimbus (90 days, ending on ``snapshotDate``): the offline
    /// default of `nimbus fx`, for examples and tests with no network. Live rates need ``ECBRateProvider``.
    ///
    /// ```swift
    /// let converter = CurrencyConverter(provider: try ECBRateProvider.snapshot())
    /// let euros = try await converter.convert(try Money("100", .usd), to: .eur)   // at the snapshot's last rate
    /// ```
    /// - Throws: `dataLoss` when the installed resource is missing or damaged.
    public static func snapshot() throws -> FixedRateProvider {
        guard let url = Bundle.module.url(forResource: "ecb-snapshot", withExtension: "xml") else {
            throw NimbusError(.dataLoss, "the ECB rate snapshot is missing from NimbusCurrency's resources; reinstall Nimbus")
        }
        return FixedRateProvider(try parse(try Data(contentsOf: url)))
    }
}

/// Rates you set (contracts, tests, a treasury table).
public struct FixedRateProvider: RateProvider {
    /// Tables by day, oldest first.
    public let tables: [RateTable]

    /// Creates a provider with one or more tables.
    public init(_ tables: [RateTable]) { self.tables = tables.sorted { $0.date < $1.date } }

    public func rates(on date: Date?) async throws -> RateTable { try Self.pick(tables, on: date) }

    /// The last table on or before `date` (latest for `nil`). - Throws: `notFound` before the first table.
    static func pick(_ tables: [RateTable], on date: Date?) throws -> RateTable {
        guard let date else {
            guard let latest = tables.last else { throw NimbusError(.notFound, "no exchange rates are loaded") }
            return latest
        }
        guard let table = tables.last(where: { $0.date <= date }) else {
            throw NimbusError(.notFound, "no exchange rates on or before \(RateTable.day(date)) (the oldest are from \(tables.first.map { RateTable.day($0.date) } ?? "never"))")
        }
        return table
    }
}

/// The European Central Bank's euro reference rates: the daily file for the latest rates, the 90-day
/// history for dates (weekends and holidays take the last working day's). Parsed strictly: a page
/// that is not the ECB's XML (a proxy error page, a truncated body) is `dataLoss`, never empty rates.
public struct ECBRateProvider: RateProvider {
    /// The ECB's site (overridable for tests and mirrors).
    public var baseURL: String
    private let http: NimbusHTTPClient

    /// Creates a provider.
    public init(baseURL: String = "https://www.ecb.europa.eu", http: NimbusHTTPClient? = nil) {
        self.baseURL = baseURL
        self.http = http ?? NimbusHTTPClient(configuration: .init(service: "ecb", timeout: .seconds(20)))
    }

    public func rates(on date: Date?) async throws -> RateTable {
        let path = date == nil ? "/stats/eurofxref/eurofxref-daily.xml" : "/stats/eurofxref/eurofxref-hist-90d.xml"
        let response = try await http.send(NimbusHTTPRequest(.GET, baseURL + path, operation: "ecb.eurofxref"), errorMapper: { response, body in
            response.error("the ECB answered \(response.status.code) for \(path): \(String(buffer: body).prefix(200))")
        })
        let body = try await response.collect(upTo: 4 * 1024 * 1024)
        return try FixedRateProvider.pick(try Self.parse(Data(body.readableBytesView)), on: date)
    }

    /// Every day in an eurofxref file, oldest first. - Throws: `dataLoss` for anything that is not one.
    public static func parse(_ data: Data) throws -> [RateTable] {
        let delegate = ECBParser()
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        guard parser.parse(), delegate.problem == nil, delegate.sawEnvelope else {
            let reason = delegate.problem ?? parser.parserError.map { "\($0)" } ?? "it is not an ECB eurofxref document"
            throw NimbusError(.dataLoss, "the ECB rates could not be read: \(reason)")
        }
        guard !delegate.tables.isEmpty else { throw NimbusError(.dataLoss, "the ECB rates file holds no day") }
        return delegate.tables.sorted { $0.date < $1.date }
    }
}

private final class ECBParser: NSObject, XMLParserDelegate {
    var tables: [RateTable] = []
    var problem: String?
    var sawEnvelope = false

    func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if element == "gesmes:Envelope" || element.hasSuffix("Envelope") { sawEnvelope = true }
        guard element == "Cube" else { return }
        if let time = attributes["time"] {
            guard let date = RateTable.parseDay(time) else { problem = "bad date '\(time)'"; parser.abortParsing(); return }
            tables.append(RateTable(base: "EUR", date: date, rates: [:]))
        } else if let currency = attributes["currency"], let rateText = attributes["rate"] {
            guard !tables.isEmpty, let rate = Decimal(string: rateText, locale: Locale(identifier: "en_US_POSIX")), rate > 0,
                  currency.count == 3 else {
                problem = "bad rate '\(rateText)' for '\(currency)'"
                parser.abortParsing()
                return
            }
            tables[tables.count - 1].rates[currency] = rate
        }
    }
}

/// A provider in front of another that keeps the latest table for `maxAge` (rates change daily) and
/// each historical day for good. When the upstream fails, a latest table up to `maxStale` old is served
/// instead of failing; older than that, the upstream's error is thrown.
public final class CachedRateProvider<C: Clock>: RateProvider where C.Duration == Duration {
    private let upstream: any RateProvider
    private let maxAge: Duration
    private let maxStale: Duration
    private let clock: C
    private let state = Mutex<(latest: (RateTable, C.Instant)?, days: [Date: RateTable])>((nil, [:]))

    /// Creates a cache.
    public init(_ upstream: any RateProvider, maxAge: Duration = .seconds(3600), maxStale: Duration = .seconds(3 * 86_400), clock: C) {
        self.upstream = upstream
        self.maxAge = maxAge
        self.maxStale = maxStale
        self.clock = clock
    }

    public func rates(on date: Date?) async throws -> RateTable {
        if let date {
            let day = Calendar(identifier: .gregorian).startOfDay(for: date)
            if let cached = state.withLock({ $0.days[day] }) { return cached }
            let table = try await upstream.rates(on: date)
            state.withLock { $0.days[day] = table }
            return table
        }
        let now = clock.now
        let cached = state.withLock { $0.latest }
        if let (table, fetched) = cached, fetched.duration(to: now) < maxAge { return table }
        do {
            let table = try await upstream.rates(on: nil)
            state.withLock { $0.latest = (table, now) }
            return table
        } catch {
            if let (table, fetched) = cached, fetched.duration(to: now) < maxStale { return table }
            throw error
        }
    }
}

extension CachedRateProvider where C == ContinuousClock {
    /// A cache on the system clock.
    public convenience init(_ upstream: any RateProvider, maxAge: Duration = .seconds(3600), maxStale: Duration = .seconds(3 * 86_400)) {
        self.init(upstream, maxAge: maxAge, maxStale: maxStale, clock: ContinuousClock())
    }
}

/// Converts money with a provider's rates, rounding explicitly.
///
/// ```swift
/// let converter = CurrencyConverter(provider: CachedRateProvider(ECBRateProvider()))
/// let inYen = try await converter.convert(Money("100", .usd), to: Currency("JPY"))                 // rounded half-even to 0 decimals
/// let then = try await converter.convert(price, to: .usd, on: invoiceDate, rounding: .halfUp)
/// ```
public struct CurrencyConverter: Sendable {
    /// Where rates come from.
    public let provider: any RateProvider

    /// Creates a converter.
    public init(provider: any RateProvider) { self.provider = provider }

    /// `money` in `currency` at the rate in force on `date` (latest for `nil`), rounded to its minor units.
    public func convert(_ money: Money, to currency: Currency, on date: Date? = nil, rounding: RoundingMode = .halfEven) async throws -> Money {
        if money.currency == currency { return money }
        let table = try await provider.rates(on: date)
        let rate = try table.rate(from: money.currency.code, to: currency.code)
        return Money(money.amount * rate, currency).rounded(rounding)
    }
}

/// Open Exchange Rates (`openexchangerates.org`): `latest.json` and `historical/YYYY-MM-DD.json`
/// with an App ID (sent as a header, never in logged URLs). The free plan's base is USD; other bases
/// need a paid plan, so the default is to triangulate from USD.
public struct OpenExchangeRatesProvider: RateProvider {
    /// The API root (overridable for tests).
    public var baseURL: String
    /// The base currency asked for (`USD` on the free plan).
    public var base: String
    private let appID: Secret<String>
    private let http: NimbusHTTPClient

    /// Creates a provider.
    public init(appID: Secret<String>, base: String = "USD", baseURL: String = "https://openexchangerates.org/api", http: NimbusHTTPClient? = nil) {
        self.baseURL = baseURL
        self.base = base
        self.appID = appID
        self.http = http ?? NimbusHTTPClient(configuration: .init(service: "openexchangerates", timeout: .seconds(20)))
    }

    private struct Reply: Decodable {
        var base: String
        var timestamp: Int64
        var rates: [String: Decimal]
    }

    private struct Failure: Decodable {
        var status: Int?
        var message: String?
        var description: String?
    }

    public func rates(on date: Date?) async throws -> RateTable {
        let path = date.map { "/historical/\(RateTable.day($0)).json" } ?? "/latest.json"
        let url = baseURL + path + (base == "USD" ? "" : "?base=\(base)")
        var request = NimbusHTTPRequest(.GET, url, operation: "openexchangerates.rates")
        request.headers.add(name: "Authorization", value: "Token \(appID.reveal())")
        let response = try await http.send(request, errorMapper: { response, body in
            let failure = try? JSONDecoder().decode(Failure.self, from: Data(body.readableBytesView))
            let reason = [failure?.message, failure?.description].compactMap { $0 }.joined(separator: ": ")
            var error = response.error("Open Exchange Rates answered \(response.status.code)\(reason.isEmpty ? "" : ": \(reason)")")
            if failure?.message == "invalid_app_id" || failure?.message == "missing_app_id" { error.code = .unauthenticated }
            if failure?.message == "not_allowed" || failure?.message == "access_restricted" { error.code = .permissionDenied }
            return error
        })
        let reply: Reply
        do {
            reply = try JSONDecoder().decode(Reply.self, from: Data(try await response.collect(upTo: 1024 * 1024).readableBytesView))
        } catch {
            throw NimbusError(.dataLoss, "the Open Exchange Rates reply is not the documented JSON: \(error)", underlying: error)
        }
        guard !reply.rates.isEmpty, reply.rates.values.allSatisfy({ $0 > 0 }) else {
            throw NimbusError(.dataLoss, "the Open Exchange Rates reply holds no usable rates")
        }
        let day = Calendar(identifier: .gregorian).startOfDay(for: Date(timeIntervalSince1970: TimeInterval(reply.timestamp)))
        return RateTable(base: reply.base, date: date.map { Calendar(identifier: .gregorian).startOfDay(for: $0) } ?? day, rates: reply.rates)
    }
}
