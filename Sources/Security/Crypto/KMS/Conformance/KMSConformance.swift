import Foundation
import NimbusCore
import NimbusKMS
import NimbusTesting
import Testing

/// The behaviour every ``KMSDriver`` must have behind ``KeyManagement``, run against each one:
///
/// ```swift
/// @Test(arguments: KMSConformance.checks)
/// func conformance(_ check: KMSConformance.Check) async throws {
///     try await check.run(KMSConformance.Harness { try LocalKeyring(path: nil) })
/// }
/// ```
public enum KMSConformance {
    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes a fresh driver (one per check; they may share a service).
        public var makeDriver: @Sendable () async throws -> any KMSDriver
        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any KMSDriver) { self.makeDriver = makeDriver }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    static func check(_ name: String, _ body: @escaping @Sendable (KeyManagement, String) async throws -> Void) -> Check {
        Check(name) { harness in
            let kms = KeyManagement(driver: try await harness.makeDriver(), configuration: .init(maximumPlaintextSize: 1024 * 1024, retry: .none))
            try await kms.closing { kms in try await body(kms, try await kms.createKey(description: "conformance")) }
        }
    }

    static func refused(_ body: () async throws -> Void) async -> NimbusError.Code? {
        do {
            try await body()
            return nil
        } catch let error as NimbusError {
            return error.code
        } catch {
            return .internal
        }
    }

    static let context = ["tenant": "acme", "table": "customers", "column": "ssn"]

    /// Every check.
    public static let checks: [Check] = [
        check("an envelope opens with its context, and only with it") { kms, key in
            let secret = Array("078-05-1120".utf8)
            let envelope = try await kms.encrypt(secret, keyID: key, context: context)
            #expect(try await kms.decrypt(envelope, context: context) == secret)
            #expect(!envelope.ciphertext.isEmpty && envelope.ciphertext != secret)
            var other = context
            other["tenant"] = "globex"
            #expect(await refused { _ = try await kms.decrypt(envelope, context: other) } != nil)
            #expect(await refused { _ = try await kms.decrypt(envelope, context: [:]) } != nil)
            var extra = context
            extra["more"] = "x"
            #expect(await refused { _ = try await kms.decrypt(envelope, context: extra) } != nil)
            let empty = try await kms.encrypt([], keyID: key)
            #expect(try await kms.decrypt(empty) == [])
        },
        check("every part of an envelope is authenticated: a flipped bit anywhere is refused") { kms, key in
            let envelope = try await kms.encrypt(Array("payload".utf8), keyID: key, context: context)
            for part in 0..<4 {
                var tampered = envelope
                switch part {
                case 0: tampered.ciphertext[0] ^= 1
                case 1: tampered.tag[0] ^= 1
                case 2: tampered.nonce[0] ^= 1
                default: tampered.wrappedKey[tampered.wrappedKey.count - 1] ^= 1
                }
                #expect(await refused { _ = try await kms.decrypt(tampered, context: context) } != nil, "part \(part)")
            }
        },
        check("each message gets its own data key and nonce") { kms, key in
            let first = try await kms.encrypt(Array("same".utf8), keyID: key, context: context)
            let second = try await kms.encrypt(Array("same".utf8), keyID: key, context: context)
            #expect(first.wrappedKey != second.wrappedKey && first.nonce != second.nonce && first.ciphertext != second.ciphertext)
        },
        check("after a rotation old envelopes still open; re-encryption rewraps without touching the data") { kms, key in
            let before = try await kms.encrypt(Array("old".utf8), keyID: key, context: context)
            try await kms.rotateKey(key)
            #expect(try await kms.decrypt(before, context: context) == Array("old".utf8))
            let moved = try await kms.reEncrypt(before, context: context)
            #expect(moved.wrappedKey != before.wrappedKey && moved.ciphertext == before.ciphertext)
            #expect(try await kms.decrypt(moved, context: context) == Array("old".utf8))
            #expect(await refused { _ = try await kms.reEncrypt(before, context: [:]) } != nil)
        },
        check("re-encryption moves an envelope to another master key") { kms, key in
            let other = try await kms.createKey(description: "other")
            let envelope = try await kms.encrypt(Array("move me".utf8), keyID: key, context: context)
            let moved = try await kms.reEncrypt(envelope, context: context, to: other)
            #expect(moved.keyID != envelope.keyID)
            #expect(try await kms.decrypt(moved, context: context) == Array("move me".utf8))
        },
        check("an unknown master key is notFound; an oversized plaintext is refused before any call") { kms, _ in
            #expect(await refused { _ = try await kms.encrypt([1], keyID: "no-such-key-\(IDGenerator.shared.ulid())") } == .notFound)
            #expect(await refused { _ = try await kms.encrypt(Array(repeating: 0, count: 1024 * 1024 + 1), keyID: "any") } == .invalidArgument)
        },
        check("envelopes survive serialization; bytes that are not an envelope are refused") { kms, key in
            let envelope = try await kms.encrypt(Array("stored".utf8), keyID: key, context: context)
            let restored = try Envelope(serialized: envelope.serialized)
            #expect(restored == envelope)
            #expect(try await kms.decrypt(restored, context: context) == Array("stored".utf8))
            for bad in [[], Array("NKE2".utf8), Array(envelope.serialized.prefix(20)), Array("NKE1".utf8) + [0xFF, 0xFF, 0xFF, 0xFF]] {
                #expect(throws: NimbusError.self) { _ = try Envelope(serialized: bad) }
            }
        },
    ]
}
