import Foundation
import NimbusCore
import NimbusFraud
import NimbusFraudMemory
import NimbusTesting
import Testing

/// The generated payment stream of `scripts/fraud/train` (known fraud patterns), its models trained
/// with scikit-learn, and Nimbus computing the same features and the same probabilities — then
/// precision and recall of the rules, each model and the engine on the held-out 30%.
@Suite("Fraud scoring agrees with scikit-learn and is measured", .requires(.fraudSDKs), .timeLimit(.minutes(3)))
struct FraudEvaluationTests {
    struct Dataset {
        var events: [(event: PaymentEvent, label: Bool, pattern: String, test: Bool)]
        var features: [String: [Double]]
        var probabilities: [String: (logistic: Double, gbt: Double)]
        var logistic: FraudModel
        var gbt: FraudModel
    }

    static func rows(_ path: String) throws -> [[String: String]] {
        // Byte-wise: splitting 3.5 MB by Character (grapheme clusters) is slow in debug builds.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let lines = data.split(separator: UInt8(ascii: "\n")).map { line in
            line.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map { String(decoding: $0.filter { $0 != 13 }, as: UTF8.self) }
        }
        guard let header = lines.first else { return [] }
        return lines.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
    }

    /// The dataset, generated and parsed once for both tests.
    static let shared = Task<Dataset, any Error> { try await generate() }
    static func load() async throws -> Dataset { try await shared.value }

    static func generate() async throws -> Dataset {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fraud-\(UUID().uuidString)").path
        let run = try await ProcessRunner.run(try Peer.fraudSDKs.url(), [(Peer.packageRoot() ?? ".") + "/scripts/fraud/train", directory])
        guard run.status == 0 else { throw NimbusError(.internal, "scripts/fraud/train failed: \(run.output)") }
        let events = try rows(directory + "/events.csv").map { row -> (PaymentEvent, Bool, String, Bool) in
            let event = PaymentEvent(id: row["id"]!, time: Date(timeIntervalSince1970: Double(row["time"]!)!), account: row["account"]!, card: row["card"]!,
                                     cardCountry: row["card_country"]!, device: row["device"]!, ipCountry: row["ip_country"]!, amount: Double(row["amount"]!)!,
                                     email: row["email"]!, accountCreated: Date(timeIntervalSince1970: Double(row["account_created"]!)!),
                                     shippingCountry: row["shipping"]!, billingCountry: row["billing"]!)
            return (event, row["label"] == "1", row["pattern"]!, row["split"] == "test")
        }
        var features: [String: [Double]] = [:]
        for row in try rows(directory + "/features.csv") { features[row["id"]!] = FraudFeatures.names.map { Double(row[$0]!)! } }
        var probabilities: [String: (Double, Double)] = [:]
        for row in try rows(directory + "/probabilities.csv") { probabilities[row["id"]!] = (Double(row["logistic"]!)!, Double(row["gbt"]!)!) }
        return Dataset(events: events.map { ($0.0, $0.1, $0.2, $0.3) }, features: features, probabilities: probabilities,
                       logistic: try FraudModel(json: Data(contentsOf: URL(fileURLWithPath: directory + "/logistic.json"))),
                       gbt: try FraudModel(json: Data(contentsOf: URL(fileURLWithPath: directory + "/gbt.json"))))
    }

    struct Score: CustomStringConvertible {
        var tp = 0, fp = 0, fn = 0, tn = 0
        mutating func add(flagged: Bool, fraud: Bool) {
            switch (flagged, fraud) {
            case (true, true): tp += 1
            case (true, false): fp += 1
            case (false, true): fn += 1
            case (false, false): tn += 1
            }
        }
        var precision: Double { tp + fp == 0 ? 0 : Double(tp) / Double(tp + fp) }
        var recall: Double { tp + fn == 0 ? 0 : Double(tp) / Double(tp + fn) }
        var description: String { String(format: "precision %.3f recall %.3f (tp %d fp %d fn %d tn %d)", precision, recall, tp, fp, fn, tn) }
    }

    @Test("features equal the script's, probabilities equal sklearn's, and precision/recall clear their floors")
    func evaluate() async throws {
        let data = try await Self.load()
        #expect(data.events.count == 30_000 && data.events.filter(\.test).count == 9_000)
        let engine = try RiskEngine(model: data.gbt, velocity: MemoryVelocityStore())
        var rules = Score(), logistic = Score(), gbt = Score(), engineScore = Score()
        var featureMismatches = 0, worstLogistic = 0.0, worstGBT = 0.0
        var byPattern: [String: Score] = [:]
        for (index, (event, fraud, pattern, test)) in data.events.enumerated() {
            // 30 000 synchronous scorings: give the cooperative pool back now and then.
            if index % 500 == 0 { await Task.yield() }
            let decision = try await engine.assess(event)
            if decision.features.values != data.features[event.id] { featureMismatches += 1 }
            guard test else { continue }
            let expected = try #require(data.probabilities[event.id])
            let pLogistic = try data.logistic.probability(decision.features.values)
            worstLogistic = max(worstLogistic, abs(pLogistic - expected.logistic))
            worstGBT = max(worstGBT, abs(decision.score - expected.gbt))
            rules.add(flagged: !decision.matchedRules.isEmpty, fraud: fraud)
            logistic.add(flagged: pLogistic >= 0.5, fraud: fraud)
            gbt.add(flagged: decision.score >= 0.5, fraud: fraud)
            engineScore.add(flagged: decision.action != .approve, fraud: fraud)
            byPattern[pattern, default: Score()].add(flagged: decision.action != .approve, fraud: fraud)
        }
        #expect(featureMismatches == 0, "\(featureMismatches) events got other features than the script computed")
        #expect(worstLogistic < 1e-9 && worstGBT < 1e-9, "largest differences from sklearn: logistic \(worstLogistic), gbt \(worstGBT)")
        print("fraud evaluation on 9000 held-out events (\(rules.tp + rules.fn) fraud):")
        print("  rules only:          \(rules)")
        print("  logistic regression: \(logistic)")
        print("  gradient-boosted:    \(gbt)")
        print("  engine (rules + gbt, review or decline): \(engineScore)")
        for (pattern, score) in byPattern.sorted(by: { $0.key < $1.key }) { print("  \(pattern): flagged \(score.tp + score.fp) of \(score.tp + score.fp + score.fn + score.tn), fraud caught \(score.tp)/\(score.tp + score.fn)") }
        print("  largest |p - sklearn p|: logistic \(worstLogistic), gbt \(worstGBT)")
        #expect(gbt.precision >= 0.9 && gbt.recall >= 0.9, "\(gbt)")
        #expect(logistic.precision >= 0.85 && logistic.recall >= 0.85, "\(logistic)")
        #expect(engineScore.recall >= gbt.recall && engineScore.precision >= 0.85, "\(engineScore)")
    }

    @Test("decisions carry reasons: the rule that matched and the features that pushed the score")
    func reasons() async throws {
        let data = try await Self.load()
        let engine = try RiskEngine(model: data.gbt, velocity: MemoryVelocityStore())
        let t = Date(timeIntervalSince1970: 1_767_240_000)
        var last: RiskDecision?
        for index in 0..<6 {   // one device, six fresh cards, small amounts: card testing
            last = try await engine.assess(PaymentEvent(id: "ct-\(index)", time: t.addingTimeInterval(Double(index * 20)), account: "acct-x", card: "card-\(index)",
                                                        cardCountry: "US", device: "dev-x", ipCountry: "US", amount: 1.5, email: "a@example.org",
                                                        accountCreated: t.addingTimeInterval(-86400 * 100), shippingCountry: "US", billingCountry: "US"))
        }
        let decision = try #require(last)
        #expect(decision.action == .decline)
        #expect(decision.matchedRules == ["card-testing"])
        #expect(decision.reasons.first == "card-testing: 6 different cards on this device today")
        #expect(decision.reasons.contains { $0.hasPrefix("model: device_cards_24h") }, "\(decision.reasons)")
    }
}
