import Foundation
import NimbusBilling
import NimbusCore
import NimbusCurrency
import Testing

func eur(_ text: String) -> Money { try! Money(text, .eur) }

@Suite struct PricingTests {
    let tiers = [PriceTier(upTo: 1000, unitPrice: eur("0"), flatFee: nil), PriceTier(upTo: 10_000, unitPrice: eur("0.002")),
                 PriceTier(upTo: nil, unitPrice: eur("0.001"), flatFee: eur("5"))]

    @Test func graduatedPricesEachUnitInItsTierAndVolumePricesAllAtTheReachedTier() throws {
        let graduated = PricingModel.graduated(tiers)
        #expect(try graduated.amount(for: 0) == eur("0"))
        #expect(try graduated.amount(for: 1000) == eur("0"))
        #expect(try graduated.amount(for: 1500) == eur("1.000"))
        #expect(try graduated.amount(for: 10_000) == eur("18"))
        #expect(try graduated.amount(for: 12_000) == eur("25"), "18 + 2000 × 0.001 + the 5.00 fee of the last tier")
        let volume = PricingModel.volume(tiers)
        #expect(try volume.amount(for: 1500) == eur("3"), "all 1500 at 0.002")
        #expect(try volume.amount(for: 12_000) == eur("17"), "all 12000 at 0.001 + 5.00")
        #expect(try volume.amount(for: 0) == eur("0"))
        #expect(try PricingModel.package(size: 1000, price: eur("5")).amount(for: 1001) == eur("10"))
        #expect(try PricingModel.package(size: 1000, price: eur("5")).amount(for: 1000) == eur("5"))
        #expect(try PricingModel.perUnit(eur("7.5")).amount(for: 3) == eur("22.5"))
        #expect(try PricingModel.flat(eur("10")).amount(for: 99) == eur("10"))
    }

    @Test func malformedTiersAreRefused() {
        #expect(throws: NimbusError.self) { try PricingModel.graduated([PriceTier(upTo: 10, unitPrice: eur("1"))]).validate() }
        #expect(throws: NimbusError.self) {
            try PricingModel.volume([PriceTier(upTo: 10, unitPrice: eur("1")), PriceTier(upTo: 5, unitPrice: eur("1")), PriceTier(upTo: nil, unitPrice: eur("1"))]).validate()
        }
        #expect(throws: NimbusError.self) { try PricingModel.graduated([PriceTier(upTo: 10, unitPrice: eur("1")), PriceTier(upTo: nil, unitPrice: try! Money("1", .usd))]).validate() }
        #expect(throws: NimbusError.self) { try PricingModel.package(size: 0, price: eur("1")).validate() }
    }

    @Test func aggregationsCountSumMaxLatestAndUniqueValues() throws {
        let base = Date(timeIntervalSince1970: 1_700_000_000)
        let events = [("a", "u1", "3", 0), ("b", "u2", "10", 5), ("c", "u1", "4", 2)].map { id, user, tokens, offset in
            UsageEvent(id: id, subscriptionID: "s", meter: "m", timestamp: base.addingTimeInterval(Double(offset)), properties: ["user": user, "tokens": tokens])
        }
        #expect(try UsageAggregation.count.quantity(of: events) == 3)
        #expect(try UsageAggregation.uniqueCount(property: "user").quantity(of: events) == 2)
        #expect(try UsageAggregation.sum(property: "tokens").quantity(of: events) == 17)
        #expect(try UsageAggregation.max(property: "tokens").quantity(of: events) == 10)
        #expect(try UsageAggregation.latest(property: "tokens").quantity(of: events) == 10, "the event at +5 s")
        #expect(throws: NimbusError.self) { try UsageAggregation.sum(property: "bytes").quantity(of: events) }
    }

    @Test func periodsKeepTheAnchorDay() {
        let formatter = ISO8601DateFormatter()
        let anchor = formatter.date(from: "2024-01-31T00:00:00Z")!
        let ends = (1...3).map { formatter.string(from: BillingInterval.month.boundary($0, from: anchor)) }
        #expect(ends == ["2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z", "2024-04-30T00:00:00Z"])
        #expect(formatter.string(from: BillingInterval(.week, count: 2).boundary(1, from: anchor)) == "2024-02-14T00:00:00Z")
        #expect(formatter.string(from: BillingInterval.year.boundary(1, from: formatter.date(from: "2024-02-29T00:00:00Z")!)) == "2025-02-28T00:00:00Z")
    }
}
