import Foundation
import NimbusCore
import NimbusFraud
import NimbusTesting
import Testing

/// The behaviour every ``VelocityStore`` must have, run against each one:
///
/// ```swift
/// @Test(arguments: VelocityConformance.checks)
/// func conformance(_ check: VelocityConformance.Check) async throws {
///     try await check.run(VelocityConformance.Harness { MemoryVelocityStore() })
/// }
/// ```
public enum VelocityConformance {
    /// How a check reaches the store under test.
    public struct Harness: Sendable {
        /// Makes a store (one per check; they may share a server, so keys are made unique).
        public var makeStore: @Sendable () async throws -> any VelocityStore
        /// Creates a harness.
        public init(makeStore: @escaping @Sendable () async throws -> any VelocityStore) { self.makeStore = makeStore }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    static func check(_ name: String, _ body: @escaping @Sendable (any VelocityStore, String) async throws -> Void) -> Check {
        Check(name) { harness in
            let store = try await harness.makeStore()
            do {
                try await body(store, "conformance:\(UUID().uuidString.prefix(8)):")
                try await store.close()
            } catch {
                try? await store.close()
                throw error
            }
        }
    }

    static let t0 = Date(timeIntervalSince1970: 1_767_225_600)
    static func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    /// Every check.
    public static let checks: [Check] = [
        check("counts members in the window before and after this one") { store, key in
            var observations: [VelocityObservation] = []
            for (index, second) in [0.0, 600, 1200, 3599].enumerated() {
                observations.append(try await store.observe(key + "card", member: "evt-\(index)", at: at(second), window: .seconds(3600), retain: .seconds(3600)))
            }
            #expect(observations.map(\.countBefore) == [0, 1, 2, 3])
            #expect(observations.map(\.countAfter) == [1, 2, 3, 4])
            #expect(observations.allSatisfy { !$0.seenBefore })
            // An hour after the first, the first has left the window (the boundary itself is inside).
            let later = try await store.observe(key + "card", member: "evt-4", at: at(3600), window: .seconds(3600), retain: .seconds(3600))
            #expect(later.countBefore == 4 && later.countAfter == 5)
            let after = try await store.observe(key + "card", member: "evt-5", at: at(3601), window: .seconds(3600), retain: .seconds(3600))
            #expect(after.countBefore == 4 && after.countAfter == 5)
        },
        check("a member seen again keeps one entry with its latest time; seenBefore says it was known") { store, key in
            let first = try await store.observe(key + "device", member: "card-a", at: at(0), window: .seconds(86400), retain: .seconds(86400))
            let other = try await store.observe(key + "device", member: "card-b", at: at(10), window: .seconds(86400), retain: .seconds(86400))
            let again = try await store.observe(key + "device", member: "card-a", at: at(20), window: .seconds(86400), retain: .seconds(86400))
            #expect(!first.seenBefore && !other.seenBefore && again.seenBefore)
            #expect(again.countBefore == 2 && again.countAfter == 2)
            // card-a's latest time is 20 s, so at 86 415 s it is still in the window and card-b is not.
            let late = try await store.observe(key + "device", member: "card-c", at: at(86_415), window: .seconds(86400), retain: .seconds(86400))
            #expect(late.countBefore == 1 && late.countAfter == 2)
        },
        check("members older than the retention are forgotten") { store, key in
            _ = try await store.observe(key + "acct", member: "dev-1", at: at(0), window: .seconds(60), retain: .seconds(600))
            let inside = try await store.observe(key + "acct", member: "dev-1", at: at(599), window: .seconds(60), retain: .seconds(600))
            #expect(inside.seenBefore)
            let outside = try await store.observe(key + "acct", member: "dev-1", at: at(1300), window: .seconds(60), retain: .seconds(600))
            #expect(!outside.seenBefore && outside.countBefore == 0)
        },
        check("keys are independent") { store, key in
            _ = try await store.observe(key + "a", member: "m", at: at(0), window: .seconds(60), retain: .seconds(60))
            let b = try await store.observe(key + "b", member: "m", at: at(1), window: .seconds(60), retain: .seconds(60))
            #expect(!b.seenBefore && b.countBefore == 0 && b.countAfter == 1)
        },
        check("concurrent observations are atomic: 40 at once see 40 distinct counts") { store, key in
            let counts = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<40 {
                    group.addTask { try await store.observe(key + "burst", member: "evt-\(index)", at: at(Double(index % 5)), window: .seconds(3600), retain: .seconds(3600)).countBefore }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(counts.sorted() == Array(0..<40))
        },
    ]
}
