import Foundation
import NimbusCore
import NimbusTesting
import NimbusWAF
import Testing

/// CRS's own go-ftw regression tests (Fixtures/crs-ftw.json) run through NimbusWAF with the bundled
/// CRS at paranoia level 4 in detection mode, as CRS's CI runs them: for each stage, every
/// `expect_ids` rule must log and no `no_expect_ids` rule may. The per-family figures are printed.
///
/// The whole set takes about two minutes of one core, which starves the suites that run beside it
/// on a two-core CI machine, so every 4th stage runs by default (1 231 stages, every family);
/// `NIMBUS_WAF_FTW_STEP=1 swift test --filter CRSRegressionTests` runs all 4 924 (the figures in docs/security.md).
@Suite("OWASP CRS regression tests (go-ftw YAML)", .timeLimit(.minutes(5)))
struct CRSRegressionTests {
    struct Stage: Decodable, Sendable {
        var family: String
        var rule: Int?
        var test: Int?
        var method: String?
        var uri: String
        var version: String?
        var headers: [String: String]?
        var missing: [String]?
        var data: String?
        var raw: String?
        var expect: [Int]?
        var no_expect: [Int]?
    }
    struct Fixture: Decodable { var default_headers: [String: String]; var stages: [Stage] }

    static func fixture() throws -> Fixture {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/crs-ftw", withExtension: "json"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    /// The request go-ftw would send: its default headers, then Content-Type, Content-Length and
    /// Connection completed for a body (go-ftw's `autocomplete_headers`).
    static func request(_ stage: Stage, defaults: [String: String]) -> WAFRequest {
        if let raw = stage.raw, let bytes = Data(base64Encoded: raw), let request = try? WAFRequest(raw: Array(bytes)) { return request }
        var headers: [(name: String, value: String)] = defaults.filter { !(stage.missing ?? []).contains($0.key) && stage.headers?[$0.key] == nil }
            .sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        headers += (stage.headers ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let body = Array((stage.data ?? "").utf8)
        let names = Set(headers.map { $0.name.lowercased() })
        if !body.isEmpty {
            if !names.contains("content-type") { headers.append(("Content-Type", "application/x-www-form-urlencoded")) }
            if !names.contains("content-length") { headers.append(("Content-Length", String(body.count))) }
        }
        if !names.contains("connection") { headers.append(("Connection", "close")) }
        return WAFRequest(method: stage.method ?? "GET", uri: stage.uri, version: stage.version ?? "HTTP/1.1", headers: headers, body: body)
    }

    struct Tally: Sendable {
        var detected = 0, attacks = 0, clean = 0, benign = 0
        var missedRules: [Int: Int] = [:]
        mutating func add(_ other: Tally) {
            detected += other.detected; attacks += other.attacks; clean += other.clean; benign += other.benign
            missedRules.merge(other.missedRules, uniquingKeysWith: +)
        }
    }

    @Test("per rule family: share of expect_ids stages detected, share of no_expect_ids stages without a false positive")
    func regression() async throws {
        let fixture = try Self.fixture()
        #expect(fixture.stages.count == 4924)
        let step = max(1, Int(ProcessInfo.processInfo.environment["NIMBUS_WAF_FTW_STEP"] ?? "") ?? 4)
        let rules = try WAFRuleSet.coreRuleSet()
        var configuration = WAF.Configuration(mode: .detect, paranoiaLevel: 4)
        configuration.settings = ["crs_validate_utf8_encoding": "1", "arg_name_length": "100", "arg_length": "400", "total_arg_length": "64000",
                                  "max_num_args": "255", "max_file_size": "64100", "combined_file_sizes": "65535"]
        let waf = WAF(rules: rules, configuration: configuration)
        let defaults = fixture.default_headers
        let stages = stride(from: 0, to: fixture.stages.count, by: step).map { fixture.stages[$0] }
        // The evaluation is CPU-bound and synchronous: it runs on one dispatch thread, off Swift's
        // cooperative pool, so the other suites running in parallel keep their threads.
        let tallies: [String: Tally] = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var total: [String: Tally] = [:]
                for stage in stages {
                    let started = ContinuousClock.now
                    let matched = waf.evaluate(Self.request(stage, defaults: defaults)).matchedIDs
                    let took = ContinuousClock.now - started
                    if took > .seconds(2) { print("slow stage: rule \(stage.rule ?? 0) test \(stage.test ?? 0) took \(took)") }
                    var tally = Tally()
                    if let expect = stage.expect, !expect.isEmpty {
                        tally.attacks = 1
                        if Set(expect).isSubset(of: matched) { tally.detected = 1 } else { tally.missedRules[stage.rule ?? 0] = 1 }
                    }
                    if let none = stage.no_expect, !none.isEmpty {
                        tally.benign = 1
                        if Set(none).isDisjoint(with: matched) { tally.clean = 1 }
                    }
                    total[stage.family, default: Tally()].add(tally)
                }
                continuation.resume(returning: total)
            }
        }
        var overall = Tally()
        print("CRS regression (\(stages.count) of \(fixture.stages.count) stages; paranoia 4, \(rules.ruleCount) rules; never match: \(rules.unsupported.count) libinjection, \(rules.uncompiled.count) uncompiled patterns):")
        print("family | detected / attack stages | clean / benign stages")
        for (family, tally) in tallies.sorted(by: { $0.key < $1.key }) {
            overall.add(tally)
            print(String(format: "%@ | %d/%d (%.1f%%) | %d/%d (%.1f%%)", family, tally.detected, tally.attacks, tally.attacks == 0 ? 100 : 100 * Double(tally.detected) / Double(tally.attacks),
                         tally.clean, tally.benign, tally.benign == 0 ? 100 : 100 * Double(tally.clean) / Double(tally.benign)))
        }
        let detection = Double(overall.detected) / Double(max(1, overall.attacks)), clean = Double(overall.clean) / Double(max(1, overall.benign))
        print(String(format: "all | %d/%d (%.1f%%) | %d/%d (%.1f%%)", overall.detected, overall.attacks, 100 * detection, overall.clean, overall.benign, 100 * clean))
        if !rules.uncompiled.isEmpty { print("uncompiled: \(rules.uncompiled.keys.sorted())") }
        print("most missed rules (rule: stages): " + overall.missedRules.sorted { $0.value > $1.value }.prefix(25).map { "\($0.key): \($0.value)" }.joined(separator: ", "))
        #expect(overall.attacks + overall.benign >= stages.count)
        #expect(detection >= 0.93, "detection \(detection)")
        #expect(clean >= 0.99, "no false positive in \(clean)")
    }
}
