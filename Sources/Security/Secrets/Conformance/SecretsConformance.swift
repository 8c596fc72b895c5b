import Foundation
import NimbusCore
import NimbusSecrets
import NimbusTesting
import Testing

/// The behaviour every ``SecretsDriver`` must have behind ``SecretStore``, run against each one;
/// checks of a capability the driver does not claim are skipped by design (an env store cannot write).
///
/// ```swift
/// @Test(arguments: SecretsConformance.checks)
/// func conformance(_ check: SecretsConformance.Check) async throws {
///     try await check.run(SecretsConformance.Harness { VersionedSecrets() })
/// }
/// ```
public enum SecretsConformance {
    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes a driver (one per check; they may share a service, so names are made unique).
        public var makeDriver: @Sendable () async throws -> any SecretsDriver
        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any SecretsDriver) { self.makeDriver = makeDriver }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    static func check(_ name: String, needs: SecretsCapabilities = [], _ body: @escaping @Sendable (SecretStore, String) async throws -> Void) -> Check {
        Check(name) { harness in
            let store = SecretStore(driver: try await harness.makeDriver(), configuration: .init(cacheTTL: .zero, retry: .none))
            guard store.capabilities.isSuperset(of: needs) else { return }
            let prefix = "conformance/\(UUID().uuidString.prefix(8).lowercased())"
            try await store.closing { store in try await body(store, prefix) }
        }
    }

    static func code(_ body: () async throws -> Void) async -> NimbusError.Code? {
        do {
            try await body()
            return nil
        } catch let error as NimbusError {
            return error.code
        } catch {
            return .internal
        }
    }

    /// Every check.
    public static let checks: [Check] = [
        check("text and binary values read back as written", needs: .write) { store, prefix in
            try await store.put("\(prefix)/text", string: "s3cr3t-παράδειγμα")
            #expect(try await store.string("\(prefix)/text").reveal() == "s3cr3t-παράδειγμα")
            let binary: [UInt8] = [0, 0xff, 0xfe, 0x80, 1, 2, 3]
            try await store.put("\(prefix)/binary", value: Secret(binary))
            #expect(try await store.value("\(prefix)/binary").value.reveal() == binary)
            #expect(try await store.value("\(prefix)/binary").string == nil)
            await #expect(code { _ = try await store.string("\(prefix)/binary") } == .invalidArgument)
        },
        check("unknown names and versions are notFound") { store, prefix in
            #expect(await code { _ = try await store.value("\(prefix)/absent") } == .notFound)
            #expect(await code { _ = try await store.versions("\(prefix)/absent") } == .notFound)
            if store.capabilities.contains(.write) {
                try await store.put("\(prefix)/present", string: "x")
                #expect(await code { _ = try await store.value("\(prefix)/present", version: "00000000-0000-4000-8000-000000000000") } == .notFound)
            }
        },
        check("each write makes a new current version; the old ones stay readable", needs: [.write, .versions]) { store, prefix in
            let name = "\(prefix)/db-password"
            let first = try await store.put(name, string: "one")
            let second = try await store.put(name, string: "two")
            #expect(first.version != second.version && second.isCurrent)
            #expect(try await store.string(name).reveal() == "two")
            #expect(try await store.string(name, version: first.version).reveal() == "one")
            let versions = try await store.versions(name)
            #expect(versions.map(\.version) == [second.version, first.version])
            #expect(versions.filter(\.isCurrent).map(\.version) == [second.version])
        },
        check("delete removes the secret with its versions; the name can be used again", needs: [.write, .delete]) { store, prefix in
            let name = "\(prefix)/temporary"
            try await store.put(name, string: "a")
            try await store.put(name, string: "b")
            try await store.delete(name)
            #expect(await code { _ = try await store.value(name) } == .notFound)
            #expect(await code { try await store.delete(name) } == .notFound)
            try await store.put(name, string: "c")
            #expect(try await store.string(name).reveal() == "c")
        },
        check("names are listed by prefix, sorted", needs: [.write, .list]) { store, prefix in
            for name in ["b/two", "a/one", "b/three"] { try await store.put("\(prefix)/\(name)", string: "v") }
            #expect(try await store.names(prefix: "\(prefix)/b/") == ["\(prefix)/b/three", "\(prefix)/b/two"])
            #expect(try await store.names(prefix: "\(prefix)/").count == 3)
        },
        check("invalid names are refused with invalidArgument") { store, _ in
            for name in ["", "../etc/passwd", "/absolute", "a//b", "a/./b", "spaces are not allowed", "semi;colon", String(repeating: "a", count: 257)] {
                #expect(await code { _ = try await store.value(name) } == .invalidArgument, "\(name.prefix(20))")
                #expect(await code { try await store.put(name, string: "x") } == .invalidArgument, "\(name.prefix(20))")
            }
        },
        check("values up to 64 KiB are stored; a larger one is refused and nothing is written", needs: .write) { store, prefix in
            let big = (0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            try await store.put("\(prefix)/big", value: Secret(big))
            #expect(try await store.value("\(prefix)/big").value.reveal() == big)
            #expect(await code { try await store.put("\(prefix)/too-big", value: Secret(big + [0])) } == .invalidArgument)
            #expect(await code { _ = try await store.value("\(prefix)/too-big") } == .notFound)
        },
        check("rotation stores a new value and hands it to the hook; a failing hook puts the old value back", needs: .write) { store, prefix in
            let name = "\(prefix)/api-key"
            try await store.put(name, string: "original")
            let seen = Recorded<(new: String, old: String?)>()
            try await store.rotate(name) { new, previous in
                seen.set((String(decoding: new.reveal(), as: UTF8.self), previous?.string?.reveal()))
            }
            let rotated = try await store.string(name).reveal()
            #expect(rotated != "original" && rotated.count >= 43 && seen.value?.new == rotated && seen.value?.old == "original")
            struct Refused: Error {}
            await #expect(throws: NimbusError.self) { try await store.rotate(name) { _, _ in throw Refused() } }
            #expect(try await store.string(name).reveal() == rotated)
        },
        check("a value never appears in descriptions, dumps or string interpolation", needs: .write) { store, prefix in
            try await store.put("\(prefix)/visible-name", string: "correct-horse-battery-staple")
            let value = try await store.value("\(prefix)/visible-name")
            var dumped = ""
            dump(value, to: &dumped)
            for text in ["\(value)", String(describing: value), String(reflecting: value), dumped] {
                #expect(!text.contains("correct-horse") && !text.contains("99, 111, 114, 114"), "\(text)")
            }
        },
    ]
}

/// A value a `@Sendable` closure sets and the check reads.
private final class Recorded<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value?
    func set(_ value: Value) { lock.withLock { stored = value } }
    var value: Value? { lock.withLock { stored } }
}
