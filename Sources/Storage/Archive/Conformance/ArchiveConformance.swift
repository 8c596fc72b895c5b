import Foundation
import NIOCore
import NimbusArchive
import NimbusBlob
import NimbusBlobConformance
import NimbusCore
import NimbusTesting
import Testing

/// The behaviour every ``ArchiveDriver`` must have — archive, request a restore, wait, read — stated
/// once and run against each store.
///
/// ```swift
/// @Test(arguments: ArchiveConformance.suite.checks(supportedBy: capabilities))
/// func conformance(_ check: ArchiveConformance.Check) async throws {
///     try await check.run(ArchiveConformance.Harness(makeDriver: { try FileArchiveDriver(configuration: .init(directory: dir)) }))
/// }
/// ```
public enum ArchiveConformance {
    /// How a check reaches the store under test.
    public struct Harness: Sendable {
        /// Makes a driver on the store under test.
        public var makeDriver: @Sendable () async throws -> any ArchiveDriver
        /// How often a wait polls, and for how long at most (a restore on the store under test must finish within it).
        public var pollEvery: Duration
        public var timeout: Duration

        public init(makeDriver: @escaping @Sendable () async throws -> any ArchiveDriver, pollEvery: Duration = .milliseconds(200), timeout: Duration = .seconds(60)) {
            self.makeDriver = makeDriver; self.pollEvery = pollEvery; self.timeout = timeout
        }
    }

    public typealias Check = ConformanceCheck<Harness>

    /// An unknown id is `notFound` (a Glacier vault cannot tell without a job).
    public static let knowsMissingObjects: ConformanceCapability = "knowsMissingObjects"
    /// The store has a tier read without a restore (S3 Glacier Instant Retrieval, the embedded `online` tier).
    public static let instantTier: ConformanceCapability = "instantTier"
    /// `describe` reports an archived object's size before any restore.
    public static let reportsSize: ConformanceCapability = "reportsSize"
    /// The coldest tier needs a restore before a read (every GCS class is read at once).
    public static let coldTier: ConformanceCapability = "coldTier"

    static func check(_ name: String, needs: Set<ConformanceCapability> = [], _ body: @escaping @Sendable (Archive, String, Harness) async throws -> Void) -> Check {
        Check(name, needs: needs) { harness in
            let archive = Archive(driver: try await harness.makeDriver(),
                                  configuration: .init(retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(200))))
            let prefix = "conformance/\(IDGenerator.shared.ulid().description.lowercased())/"
            try await archive.closing { try await body($0, prefix, harness) }
        }
    }

    static func code(_ body: () async throws -> Void) async -> NimbusError.Code? {
        do { try await body(); return nil } catch let error as NimbusError { return error.code } catch { return .internal }
    }

    /// The coldest tier's fastest speed: the quickest restore the store offers.
    static func fastest(_ archive: Archive) throws -> RestoreSpeed {
        // The default tier is the coldest; its quickest speed.
        try #require(archive.tiers.last?.speeds.first, "the coldest tier of \(archive.provider) offers no restore speed")
    }

    /// Every check.
    public static let suite = ConformanceSuite<Harness>(domain: "archive", checks: [
        check("archive, request a restore, wait until readable, read: the same bytes; unreadable before", needs: [coldTier]) { archive, prefix, harness in
            let data = BlobConformance.bytes(300 * 1024 + 5, seed: 4)
            let stored = try await archive.store(prefix + "backup.tar", data)
            #expect(stored.state == .archived && stored.size == Int64(data.readableBytes) && stored.name == prefix + "backup.tar")
            #expect(try await archive.describe(stored.id).state == .archived)
            #expect(await code { _ = try await archive.get(stored.id) } == .failedPrecondition, "an archived object is not readable")
            let asked = try await archive.requestRestore(stored.id, speed: try fastest(archive), days: 1)
            #expect(!(asked.state == .archived), "after a request the object is restoring or restored, not \(asked.state)")
            let ready = try await archive.waitUntilReadable(stored.id, pollEvery: harness.pollEvery, timeout: harness.timeout)
            #expect(ready.state.isReadable)
            #expect(try await archive.get(stored.id) == data)
            try await archive.delete(stored.id)
        },
        check("waiting on an archived object with no restore asked is failedPrecondition, not an endless wait", needs: [coldTier]) { archive, prefix, harness in
            let stored = try await archive.store(prefix + "idle", ByteBuffer(string: "idle"))
            #expect(await code { _ = try await archive.waitUntilReadable(stored.id, pollEvery: harness.pollEvery, timeout: harness.timeout) } == .failedPrecondition)
            try await archive.delete(stored.id)
        },
        check("a restore asked twice is one restore; asking for a readable object changes nothing", needs: [coldTier]) { archive, prefix, harness in
            let stored = try await archive.store(prefix + "twice", ByteBuffer(string: "twice"))
            let speed = try fastest(archive)
            _ = try await archive.requestRestore(stored.id, speed: speed)
            _ = try await archive.requestRestore(stored.id, speed: speed)
            _ = try await archive.waitUntilReadable(stored.id, pollEvery: harness.pollEvery, timeout: harness.timeout)
            let again = try await archive.requestRestore(stored.id, speed: speed)
            #expect(again.state.isReadable)
            #expect(String(buffer: try await archive.get(stored.id)) == "twice")
            try await archive.delete(stored.id)
        },
        check("tiers state their restore times and cost; an unknown tier, a speed the tier lacks and 0 days are invalidArgument") { archive, prefix, _ in
            #expect(!archive.tiers.isEmpty)
            for tier in archive.tiers { #expect(tier.readableWithoutRestore || !tier.restoreTimes.isEmpty, "\(tier)") }
            #expect(await code { _ = try await archive.store(prefix + "x", ByteBuffer(string: "x"), tier: "NO_SUCH_TIER") } == .invalidArgument)
            let stored = try await archive.store(prefix + "speeds", ByteBuffer(string: "speeds"))
            #expect(await code { _ = try await archive.requestRestore(stored.id, days: 0) } == .invalidArgument)
            let cold = try #require(archive.tiers.last)
            if !cold.readableWithoutRestore, let missing = RestoreSpeed.allCases.first(where: { cold.restoreTimes[$0] == nil }) {
                #expect(await code { _ = try await archive.requestRestore(stored.id, speed: missing) } == .invalidArgument)
            }
            try await archive.delete(stored.id)
        },
        check("names with spaces, unicode and slashes are kept") { archive, prefix, _ in
            let name = prefix + "db backups/2026 12/ünïcode ✓.tar"
            let stored = try await archive.store(name, ByteBuffer(string: "named"))
            #expect(stored.name == name)
            try await archive.delete(stored.id)
        },
        check("an unknown id is notFound for describe, restore, read and delete", needs: [knowsMissingObjects]) { archive, prefix, _ in
            #expect(await code { _ = try await archive.describe(prefix + "absent") } == .notFound)
            #expect(await code { _ = try await archive.requestRestore(prefix + "absent") } == .notFound)
            #expect(await code { _ = try await archive.get(prefix + "absent") } == .notFound)
            #expect(await code { try await archive.delete(prefix + "absent") } == .notFound)
            let stored = try await archive.store(prefix + "gone", ByteBuffer(string: "gone"))
            try await archive.delete(stored.id)
            #expect(await code { _ = try await archive.describe(stored.id) } == .notFound)
        },
        check("an archived object's size is known before any restore", needs: [reportsSize]) { archive, prefix, _ in
            let stored = try await archive.store(prefix + "sized", BlobConformance.bytes(12_345))
            #expect(try await archive.describe(stored.id).size == 12_345)
            try await archive.delete(stored.id)
        },
        check("an instant tier reads at once, without a restore", needs: [instantTier]) { archive, prefix, _ in
            let instant = try #require(archive.tiers.first { $0.readableWithoutRestore })
            let stored = try await archive.store(prefix + "instant", ByteBuffer(string: "at once"), tier: instant.name)
            #expect(try await archive.describe(stored.id).state == .online)
            #expect(String(buffer: try await archive.get(stored.id)) == "at once")
            try await archive.delete(stored.id)
        },
    ])
}
