import Foundation
import NimbusCore

/// A data key: its plaintext (for one encryption, then forgotten) and the same key wrapped by a
/// master key (stored beside the data).
public struct DataKey: Sendable {
    /// The 32-byte key. Never logged.
    public var plaintext: Secret<[UInt8]>
    /// The key wrapped by the master key: only the KMS can unwrap it.
    public var wrapped: [UInt8]
    /// The master key (id, as the KMS names it) that wrapped it.
    public var keyID: String

    /// Creates a data key.
    public init(plaintext: Secret<[UInt8]>, wrapped: [UInt8], keyID: String) {
        self.plaintext = plaintext
        self.wrapped = wrapped
        self.keyID = keyID
    }
}

/// What a key management service implements: master keys that never leave it, wrapping and
/// unwrapping data keys bound to an encryption context. ``KeyManagement`` does the envelope
/// encryption of the data itself, the same for every driver.
public protocol KMSDriver: NimbusDriver {
    /// Creates a master key; returns its id.
    func createKey(description: String) async throws -> String

    /// A new 32-byte data key, and the same wrapped by master key `keyID` (its current version),
    /// bound to `context`.
    /// - Throws: `notFound` for an unknown key.
    func generateDataKey(keyID: String, context: [String: String]) async throws -> DataKey

    /// Unwraps a data key; `context` must be the one it was wrapped with.
    /// - Throws: `permissionDenied` (or `invalidArgument`) when the context differs or the wrapped
    ///   key was altered; `notFound` for an unknown master key.
    func decryptDataKey(_ wrapped: [UInt8], context: [String: String]) async throws -> DataKey

    /// Makes a new version of master key `keyID` current; older versions still unwrap.
    func rotateKey(_ keyID: String) async throws

    /// Unwraps and wraps again with the current version of `keyID` (the same key after a rotation,
    /// or another), without the data key leaving the service where it can. The result's
    /// ``DataKey/plaintext`` may be empty when the service does not hand it out.
    func reEncrypt(_ wrapped: [UInt8], context: [String: String], to keyID: String) async throws -> DataKey
}

extension URLOpenerRegistry where Resource == any KMSDriver {
    /// An empty registry for the KMS domain; adapters add their schemes (`.withLocal()`, `.withAWS()`).
    public static var kms: URLOpenerRegistry<any KMSDriver> { URLOpenerRegistry(domain: "kms") }
}

/// The layout drivers use when the service's ciphertext does not name its master key (Vault
/// Transit, Cloud KMS, Key Vault): the key's name, a newline, the service's ciphertext. Also the
/// naming of keys those drivers create.
public enum WrappedKey {
    /// `nimbus-<description as a slug, at most slugLength characters>-<ULID>`: unique, readable in the console.
    public static func newKeyName(description: String, slugLength: Int) -> String {
        let slug = String(description.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(slugLength))
        return "nimbus-\(slug.isEmpty ? "key" : slug)-\(IDGenerator.shared.ulid().description.lowercased())"
    }

    /// `name` ‖ newline ‖ `ciphertext`.
    public static func joining(_ name: String, _ ciphertext: [UInt8]) -> [UInt8] { Array("\(name)\n".utf8) + ciphertext }

    /// The name and the ciphertext, or `nil` when there is no newline, the name is not UTF-8, or either part is empty.
    public static func split(_ wrapped: [UInt8]) -> (name: String, ciphertext: [UInt8])? {
        guard let newline = wrapped.firstIndex(of: 0x0A), newline > 0, newline + 1 < wrapped.count,
              let name = String(validating: wrapped[..<newline], as: UTF8.self) else { return nil }
        return (name, Array(wrapped[(newline + 1)...]))
    }
}
