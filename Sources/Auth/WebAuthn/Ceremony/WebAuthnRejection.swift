/// Why a WebAuthn ceremony was refused. The ``reason`` is stable for programs; the message says
/// exactly which check failed, for logs (it never contains key material or challenges).
///
/// ```swift
/// do { _ = try relyingParty.verifyAuthentication(response, challenge: expected, credential: stored) }
/// catch let rejection as WebAuthnRejection where rejection.reason == .signCountRegressed {
///     // a cloned authenticator: lock the credential and tell the user
/// }
/// ```
public struct WebAuthnRejection: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reasons a registration or an authentication is refused.
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// Bytes that are not what WebAuthn defines (CBOR, authenticator data, client data JSON, base64url).
        case malformed
        /// `clientDataJSON.type` is not `webauthn.create` / `webauthn.get`.
        case wrongType
        /// The challenge is not the one this relying party issued for the ceremony.
        case challengeMismatch
        /// The origin (or top origin, or a cross-origin use) is not one the relying party accepts.
        case originNotAllowed
        /// The authenticator data is for another RP ID.
        case rpIDMismatch
        /// User presence (UP) was not asserted.
        case userNotPresent
        /// User verification (UV) was required and not performed.
        case userNotVerified
        /// The backup state flag is set without backup eligibility, or eligibility changed.
        case inconsistentBackupFlags
        /// The credential algorithm is not one the relying party offered, or not supported at all.
        case unsupportedAlgorithm
        /// An attestation format this relying party does not know.
        case unsupportedAttestationFormat
        /// The attestation statement does not verify (signature, certificate requirements, nonce).
        case invalidAttestation
        /// The attestation is valid but does not chain to a trusted root, or its type is not allowed by policy.
        case untrustedAttestation
        /// The assertion signature does not verify with the stored public key.
        case badSignature
        /// The credential is not one of the allowed ones, or the user handle does not own it.
        case unknownCredential
        /// The signature counter did not increase: the authenticator may have been cloned.
        case signCountRegressed
    }

    /// The reason.
    public var reason: Reason
    /// Which check failed.
    public var message: String

    /// Creates a rejection.
    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { "WebAuthn rejected (\(reason.rawValue)): \(message)" }
}
