import Foundation
import NimbusFuzzTargets
import Testing

/// Every fuzz target's seed corpus and every input that ever crashed one (`Fixtures/regressions`,
/// written there by `scripts/fuzz` when libFuzzer finds a crash) run through the target: none may trap.
@Suite struct FuzzTargetsTests {
    static func inputs(_ kind: String, _ target: String) throws -> [(String, [UInt8])] {
        let root = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil)).appendingPathComponent("\(kind)/\(target)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return try names.filter { !$0.hasPrefix(".") }.sorted().map { ($0, Array(try Data(contentsOf: root.appendingPathComponent($0)))) }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func seedsAndPastCrashesRunCleanly(_ name: String) throws {
        let target = try #require(FuzzTargets.target(name))
        let seeds = try Self.inputs("corpus", name)
        #expect(!seeds.isEmpty, "\(name) has a seed corpus")
        for (_, bytes) in try Self.inputs("corpus", name) + Self.inputs("regressions", name) { target.run(bytes) }
        // Truncations and single-byte flips of each seed: the shapes a cut connection or a bad proxy produces.
        for (_, bytes) in seeds {
            for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 16)) { target.run(Array(bytes[..<cut])) }
            for index in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 16)) {
                var flipped = bytes
                flipped[index] ^= 0xff
                target.run(flipped)
            }
        }
    }
}
