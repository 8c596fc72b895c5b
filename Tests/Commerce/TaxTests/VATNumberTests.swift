import Foundation
import NimbusCore
import NimbusTax
import NimbusTesting
import Testing

@Suite struct VATNumberTests {
    @Test func numbersAreNormalizedAndCheckedWithReasons() throws {
        let german = try VATNumber("de 202.215.610")
        #expect(german.description == "DE202215610" && german.country == "DE")
        #expect(try VATNumber("GR587334155").countryCode == "EL", "GR is read as EL")
        #expect(try VATNumber("EL587334155").country == "GR")
        #expect(try VATNumber("BE594142222").number == "0594142222", "Belgium's old nine digits get their leading 0")
        for valid in ["FR25064285364", "FR20442643045", "DE247209677", "BE0594142222", "ATU87001119", "NL445045358B01", "ESB98955149"] {
            #expect(VATNumber.isValid(valid), "\(valid)")
        }
        func reason(_ text: String) -> String? {
            do { _ = try VATNumber(text); return nil } catch { return (error as? NimbusError)?.message }
        }
        #expect(reason("US123456789")?.contains("EU VAT prefix") == true)
        #expect(reason("DE20221561")?.contains("9 digits expected") == true)
        #expect(reason("DE202215611")?.contains("check digits") == true)
        #expect(reason("DE02221561X")?.contains("not starting with 0") == true)
        #expect(!VATNumber.isValid("FR25064285365"))
        let encoded = try JSONEncoder().encode(german)
        #expect(try JSONDecoder().decode(VATNumber.self, from: encoded) == german)
    }

    /// Deterministic pseudo-random numbers (SplitMix64), so a failure can be replayed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Candidates per country: random bodies in the country's shapes, each completed with every
    /// possible final character (or, for France, every pair of leading check digits), so that both
    /// valid and invalid numbers are compared.
    static func candidates() -> [String] {
        var random = SplitMix(state: 20_261_126)
        func digits(_ count: Int) -> String { String((0..<count).map { _ in Character(String(Int.random(in: 0...9, using: &random))) }) }
        func pick(_ options: String) -> String { String(options.randomElement(using: &random)!) }
        let decimal = "0123456789", upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        var output: [String] = []
        func complete(_ prefix: String, _ head: () -> String, _ finals: String = decimal, bases: Int = 40, suffix: () -> String = { "" }) {
            for _ in 0..<bases {
                let body = head()
                let tail = suffix()
                for final in finals { output.append(prefix + body + String(final) + tail) }
            }
        }
        complete("ATU", { digits(7) })
        complete("BE", { pick("01") + digits(8) })
        complete("BE", { digits(8) }, bases: 10)
        complete("BG", { digits(8) })
        complete("BG", { pick("0123456789") + digits(1) + pick("0124") + digits(1) + pick("012") + digits(4) })
        complete("BG", { digits(9) }, bases: 20)
        complete("CY", { pick("0134569") + digits(7) }, upper)
        complete("CY", { "12" + digits(6) }, upper, bases: 3)
        complete("CZ", { pick("012345678") + digits(6) })
        complete("CZ", { "6" + digits(7) })
        complete("CZ", { digits(2) + pick("0157") + digits(1) + pick("012") + digits(1) + digits(3) })
        complete("CZ", { digits(2) + pick("0156") + digits(1) + pick("012") + digits(1) + digits(2) }, bases: 20)
        complete("DE", { pick("123456789") + digits(7) })
        complete("DK", { pick("123456789") + digits(6) })
        complete("EE", { "10" + digits(6) })
        complete("EL", { digits(8) })
        complete("EL", { digits(7) }, bases: 10)
        complete("ES", { pick("KLMXYZ0123456789") + digits(7) }, "TRWAGMYFPDXBNJZSQVHLCKE")
        complete("ES", { pick("ABCDEFGHJNPQRSUVW") + digits(7) }, decimal + "JABCDEFGHI")
        complete("FI", { digits(7) })
        for _ in 0..<20 {
            let siren = digits(9)
            for check in 0..<100 { output.append("FR" + String(format: "%02d", check) + siren) }
        }
        for _ in 0..<10 { let siren = digits(9); for first in "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ" { output.append("FR\(first)\(pick("ABCDEFGHJKLMNPQRSTUVWXYZ"))" + siren) } }
        complete("HR", { digits(10) })
        complete("HU", { digits(7) })
        complete("IE", { digits(7) }, "WABCDEFGHIJKLMNOPQRSTUV")
        complete("IE", { digits(7) }, "WABCDEFGHIJKLMNOPQRSTUV", suffix: { pick("AHW") })
        complete("IE", { digits(1) + pick(upper + "+*") + digits(5) }, "WABCDEFGHIJKLMNOPQRSTUV")
        complete("IT", { digits(7) + [String(format: "%03d", Int.random(in: 1...100, using: &random)), "120", "121", "888", "999", digits(3)].randomElement(using: &random)! })
        complete("LT", { digits(7) + "1" })
        complete("LT", { digits(10) + "1" })
        complete("LU", { digits(6) + digits(1) })
        complete("LV", { pick("456789") + digits(9) })
        complete("LV", { "32" + digits(8) })
        complete("LV", { pick("0123") + digits(1) + pick("01") + digits(1) + digits(2) + pick("012") + digits(3) })
        complete("MT", { pick("123456789") + digits(6) })
        complete("NL", { digits(8) }, suffix: { "B" + pick("0123456789") + pick("123456789") })
        complete("PL", { digits(9) })
        complete("PT", { pick("123456789") + digits(7) })
        complete("RO", { pick("123456789") + digits(Int.random(in: 1...8, using: &random)) })
        complete("RO", { pick("123456789") + digits(2) + pick("01") + digits(1) + pick("012") + digits(1) + pick("01234") + digits(1) + digits(3) })
        complete("SE", { digits(9) }, suffix: { "01" })
        complete("SI", { pick("123456789") + digits(6) })
        complete("SK", { pick("123456789") + digits(1) + pick("234789") + digits(6) })
        complete("SK", { digits(2) + pick("0156") + digits(1) + pick("012") + digits(1) + digits(3) })
        complete("XI", { digits(8) })
        complete("XI", { pick("0") + digits(7) }, bases: 10)
        complete("XI", { digits(8) }, bases: 10, suffix: { digits(3) })
        complete("GB", { digits(8) })
        for number in ["GD001", "GD499", "GD500", "HA500", "HA499", "HA999"] { output.append("GB" + number) }
        return output
    }

    /// python-stdnum's `eu.vat.is_valid` (`gb.vat` for GB) and ours agree on every candidate.
    @Test(.requires(.commerceSDKs)) func agreesWithPythonStdnumOnValidAndInvalidNumbers() async throws {
        let python = try Peer.commerceSDKs.url()
        let candidates = Self.candidates()
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("vat-candidates-\(UUID().uuidString).txt")
        try candidates.joined(separator: "\n").write(to: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: input) }
        let script = """
            import sys
            from stdnum.eu import vat
            from stdnum.gb import vat as gbvat
            out = []
            for line in open(sys.argv[1]).read().split("\\n"):
                valid = gbvat.is_valid(line[2:]) if line.startswith("GB") else vat.is_valid(line)
                out.append("1" if valid else "0")
            print("".join(out))
            """
        let result = try await ProcessRunner.run(python, ["-c", script, input.path])
        #expect(result.status == 0, "\(result.stderr)")
        let verdicts = Array(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        try #require(verdicts.count == candidates.count, "stdnum answered \(verdicts.count) verdicts for \(candidates.count) candidates")
        var disagreements: [String] = []
        var validByCountry: [String: Int] = [:]
        for (candidate, verdict) in zip(candidates, verdicts) {
            let theirs = verdict == "1"
            if theirs { validByCountry[String(candidate.prefix(2)), default: 0] += 1 }
            if VATNumber.isValid(candidate) != theirs { disagreements.append("\(candidate): stdnum \(theirs), Nimbus \(!theirs)") }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) of \(candidates.count) disagree, e.g. \(disagreements.prefix(15))")
        let missing = Set(VATNumber.countryCodes).subtracting(validByCountry.keys)
        #expect(missing.isEmpty, "every country is exercised with valid numbers too; none for \(missing.sorted())")
    }
}
