import Foundation
import NimbusCore

/// Where registered credentials live. Implementations must make ``recordUse(_:)`` refuse a
/// counter that does not increase, atomically, so that two concurrent sign-ins with a cloned
/// authenticator cannot both pass.
public protocol WebAuthnCredentialStore: Sendable {
    /// Stores a new credential; `alreadyExists` if its id is taken.
    func save(_ credential: WebAuthnCredential) async throws
    /// The credential with `id`, or `nil`.
    func credential(id: [UInt8]) async throws -> WebAuthnCredential?
    /// The credentials of a user (for `excludeCredentials`, `allowCredentials` and account pages).
    func credentials(userHandle: [UInt8]) async throws -> [WebAuthnCredential]
    /// Records a successful authentication (counter, backup state, last use).
    func recordUse(_ credential: WebAuthnCredential) async throws
    /// Removes a credential.
    func delete(id: [UInt8]) async throws
}

/// The embedded credential store: a dictionary in memory.
public actor MemoryWebAuthnCredentialStore: WebAuthnCredentialStore {
    private var byID: [[UInt8]: WebAuthnCredential] = [:]

    /// Creates an empty store.
    public init() {}

    public func save(_ credential: WebAuthnCredential) throws {
        guard byID[credential.id.bytes] == nil else { throw NimbusError(.alreadyExists, "a credential with this id is already registered; registration refused") }
        byID[credential.id.bytes] = credential
    }

    public func credential(id: [UInt8]) -> WebAuthnCredential? { byID[id] }

    public func credentials(userHandle: [UInt8]) -> [WebAuthnCredential] {
        byID.values.filter { $0.userHandle.bytes == userHandle }.sorted { $0.id.base64URL < $1.id.base64URL }
    }

    public func recordUse(_ credential: WebAuthnCredential) throws {
        guard let stored = byID[credential.id.bytes] else { throw NimbusError(.notFound, "credential is not registered (deleted meanwhile?)") }
        if credential.signCount != 0 || stored.signCount != 0, credential.signCount <= stored.signCount {
            throw WebAuthnRejection(.signCountRegressed, "signature counter \(credential.signCount) is not above the stored \(stored.signCount)")
        }
        byID[credential.id.bytes] = credential
    }

    public func delete(id: [UInt8]) { byID[id] = nil }
}
