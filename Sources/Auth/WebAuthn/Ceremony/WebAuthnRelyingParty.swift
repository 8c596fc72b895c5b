import Crypto
import Foundation
import NimbusCore
import X509

/// A WebAuthn Level 3 relying party: it issues registration and authentication options and
/// verifies what the browser returns (§7.1 and §7.2), refusing anything that does not match the
/// challenge, the origin, the RP ID, the user-verification requirement, the stored key or the
/// signature counter.
///
/// ```swift
/// let rp = WebAuthnRelyingParty(.init(id: "example.org", name: "Example", origins: ["https://example.org"]))
/// // Registration
/// let options = rp.registrationOptions(for: WebAuthnUser(id: handle, name: "ada@example.org", displayName: "Ada"))
/// session["webauthn.challenge"] = options.challenge.base64URL          // send `options` as JSON
/// let credential = try await rp.verifyRegistration(response, challenge: options.challenge.bytes)
/// try await store.save(credential)
/// // Sign-in
/// let request = rp.authenticationOptions()
/// let result = try rp.verifyAuthentication(assertion, challenge: request.challenge.bytes, credential: stored)
/// try await store.recordUse(result.credential)
/// ```
///
/// Challenges are single-use: take the expected one out of the session before verifying.
public struct WebAuthnRelyingParty: Sendable {
    /// What the relying party is and what it asks of authenticators.
    public struct Configuration: Sendable {
        /// The RP ID: a registrable domain suffix of the origins (`example.org`).
        public var id: String
        /// The name shown by the authenticator.
        public var name: String
        /// The exact origins the ceremonies may come from (`https://example.org`, `https://login.example.org:8443`).
        public var origins: Set<String>
        /// Whether ceremonies may run in a cross-origin iframe (`crossOrigin: true`).
        public var allowCrossOrigin = false
        /// When not empty, the only top-level origins a cross-origin ceremony may come from (one
        /// that names no `topOrigin` is then refused).
        public var allowedTopOrigins: Set<String> = []
        /// Whether the user must be verified (PIN, biometrics).
        public var userVerification: UserVerification = .preferred
        /// Whether to ask for a discoverable credential (a passkey).
        public var residentKey: ResidentKey = .preferred
        /// The attestation conveyance asked for (`none`, `indirect`, `direct`, `enterprise`).
        public var attestation = "none"
        /// The credential algorithms offered, most preferred first.
        public var algorithms: [COSEAlgorithm] = [.edDSA, .es256, .rs256]
        /// How long the browser should wait.
        public var timeout: Duration = .seconds(300)
        /// Which attestations are accepted.
        public var attestationPolicy = AttestationPolicy()
        /// The number of random challenge bytes.
        public var challengeLength = 32

        /// Creates a configuration.
        public init(id: String, name: String, origins: Set<String>) {
            self.id = id
            self.name = name
            self.origins = origins
        }
    }

    /// `UserVerificationRequirement`.
    public enum UserVerification: String, Sendable, Hashable, Codable {
        case required, preferred, discouraged
    }

    /// `ResidentKeyRequirement`.
    public enum ResidentKey: String, Sendable, Hashable, Codable {
        case required, preferred, discouraged
    }

    /// The configuration.
    public let configuration: Configuration
    private let rpIDHash: [UInt8]

    /// Creates a relying party.
    public init(_ configuration: Configuration) {
        self.configuration = configuration
        rpIDHash = Array(SHA256.hash(data: Array(configuration.id.utf8)))
    }

    private func newChallenge() -> [UInt8] { SecureRandom.bytes(max(16, configuration.challengeLength)) }

    private var timeoutMilliseconds: Int { Int(configuration.timeout.components.seconds * 1000) }

    // MARK: Registration

    /// Options for `navigator.credentials.create`.
    /// - Parameters:
    ///   - user: the account; its `id` is the user handle returned by discoverable sign-ins.
    ///   - excluding: the user's existing credentials, so the same authenticator is not registered twice.
    ///   - attachment: `platform` or `cross-platform`, or `nil` for either.
    ///   - hints: `security-key`, `client-device`, `hybrid`.
    public func registrationOptions(for user: WebAuthnUser, excluding: [CredentialDescriptor] = [], attachment: String? = nil, hints: [String] = []) -> RegistrationOptions {
        RegistrationOptions(
            rp: .init(id: configuration.id, name: configuration.name),
            user: user,
            challenge: Base64URLBytes(newChallenge()),
            pubKeyCredParams: configuration.algorithms.map { .init(alg: $0) },
            timeout: timeoutMilliseconds,
            excludeCredentials: excluding,
            authenticatorSelection: .init(authenticatorAttachment: attachment, residentKey: configuration.residentKey.rawValue,
                                          requireResidentKey: configuration.residentKey == .required,
                                          userVerification: configuration.userVerification.rawValue),
            hints: hints,
            attestation: configuration.attestation,
            extensions: ["credProps": true]
        )
    }

    /// Verifies a registration (§7.1) and returns the credential to store.
    /// - Parameters:
    ///   - response: the browser's `RegistrationResponseJSON`.
    ///   - challenge: the challenge of the options this response answers.
    ///   - userHandle: the user the options were made for (stored with the credential).
    /// - Throws: ``WebAuthnRejection`` naming the failed check.
    public func verifyRegistration(_ response: RegistrationResponse, challenge: [UInt8], userHandle: [UInt8]) async throws -> WebAuthnCredential {
        guard response.type == "public-key" else { throw WebAuthnRejection(.malformed, "credential type is \"\(response.type)\", not public-key") }
        guard response.id == response.rawId.base64URL else { throw WebAuthnRejection(.malformed, "id is not the base64url of rawId") }
        let clientDataJSON = response.response.clientDataJSON.bytes
        let clientData = try CollectedClientData(json: clientDataJSON)
        try check(clientData, type: "webauthn.create", challenge: challenge)
        let clientDataHash = Array(SHA256.hash(data: clientDataJSON))
        let object = try AttestationObject(bytes: response.response.attestationObject.bytes)
        let authData = object.authenticatorData
        try check(authData)
        let credential = authData.attestedCredential!
        guard credential.credentialID == response.rawId.bytes else {
            throw WebAuthnRejection(.malformed, "the attested credential id is not rawId")
        }
        guard configuration.algorithms.contains(credential.publicKey.algorithm) else {
            throw WebAuthnRejection(.unsupportedAlgorithm, "the credential uses \(credential.publicKey.algorithm), which was not offered (\(configuration.algorithms.map(\.description).joined(separator: ", ")))")
        }
        let attestation = try await AttestationVerifier.verify(object, clientDataHash: clientDataHash, policy: configuration.attestationPolicy)
        return WebAuthnCredential(
            id: credential.credentialID, publicKey: credential.publicKey.encoded, algorithm: credential.publicKey.algorithm,
            signCount: authData.signCount, userHandle: userHandle, aaguid: credential.aaguid,
            transports: response.response.transports ?? [],
            backupEligible: authData.flags.contains(.backupEligible), backedUp: authData.flags.contains(.backedUp),
            userVerified: authData.flags.contains(.userVerified),
            attestationFormat: attestation.format, attestationType: attestation.type, attestationTrusted: attestation.trusted
        )
    }

    // MARK: Authentication

    /// Options for `navigator.credentials.get`.
    /// - Parameter allowing: the user's credentials; empty asks for a discoverable credential (passkey).
    public func authenticationOptions(allowing: [CredentialDescriptor] = [], hints: [String] = []) -> AuthenticationOptions {
        AuthenticationOptions(challenge: Base64URLBytes(newChallenge()), timeout: timeoutMilliseconds, rpId: configuration.id,
                              allowCredentials: allowing, userVerification: configuration.userVerification.rawValue, hints: hints)
    }

    /// What a successful authentication established.
    public struct AuthenticationResult: Sendable, Hashable {
        /// The credential with its new counter, backup state and last-use time: store it.
        public var credential: WebAuthnCredential
        /// Whether the user was verified in this ceremony.
        public var userVerified: Bool
    }

    /// Verifies an assertion (§7.2) against the stored credential.
    /// - Parameters:
    ///   - response: the browser's `AuthenticationResponseJSON`.
    ///   - challenge: the challenge of the options this response answers.
    ///   - credential: the stored credential whose id is `response.rawId`.
    /// - Throws: ``WebAuthnRejection``; `.signCountRegressed` means the authenticator may be cloned.
    public func verifyAuthentication(_ response: AuthenticationResponse, challenge: [UInt8], credential: WebAuthnCredential, now: Date = Date()) throws -> AuthenticationResult {
        guard response.type == "public-key" else { throw WebAuthnRejection(.malformed, "credential type is \"\(response.type)\", not public-key") }
        guard response.id == response.rawId.base64URL else { throw WebAuthnRejection(.malformed, "id is not the base64url of rawId") }
        guard ConstantTime.equals(response.rawId.bytes, credential.id.bytes) else {
            throw WebAuthnRejection(.unknownCredential, "the assertion is for another credential")
        }
        if let handle = response.response.userHandle, !handle.bytes.isEmpty, !ConstantTime.equals(handle.bytes, credential.userHandle.bytes) {
            throw WebAuthnRejection(.unknownCredential, "the assertion's user handle does not own this credential")
        }
        let clientDataJSON = response.response.clientDataJSON.bytes
        let clientData = try CollectedClientData(json: clientDataJSON)
        try check(clientData, type: "webauthn.get", challenge: challenge)
        let authData = try AuthenticatorData(bytes: response.response.authenticatorData.bytes)
        try check(authData)
        guard authData.attestedCredential == nil else { throw WebAuthnRejection(.malformed, "assertion authenticator data must not carry attested credential data") }
        guard authData.flags.contains(.backupEligible) == credential.backupEligible else {
            throw WebAuthnRejection(.inconsistentBackupFlags, "backup eligibility changed since registration")
        }
        let key = try COSEKey(bytes: credential.publicKey.bytes)
        let signed = authData.raw + Array(SHA256.hash(data: clientDataJSON))
        guard try key.isValidSignature(response.response.signature.bytes, for: signed) else {
            throw WebAuthnRejection(.badSignature, "the assertion signature does not verify with the stored \(key.algorithm) key")
        }
        if authData.signCount != 0 || credential.signCount != 0, authData.signCount <= credential.signCount {
            throw WebAuthnRejection(.signCountRegressed, "signature counter \(authData.signCount) is not above the stored \(credential.signCount): the authenticator may be cloned")
        }
        var updated = credential
        updated.signCount = authData.signCount
        updated.backedUp = authData.flags.contains(.backedUp)
        updated.lastUsedAt = now
        return AuthenticationResult(credential: updated, userVerified: authData.flags.contains(.userVerified))
    }

    // MARK: Shared checks

    private func check(_ clientData: CollectedClientData, type: String, challenge: [UInt8]) throws {
        guard clientData.type == type else { throw WebAuthnRejection(.wrongType, "clientDataJSON.type is \"\(clientData.type)\", expected \"\(type)\"") }
        guard !challenge.isEmpty, ConstantTime.equals(clientData.challenge, challenge) else {
            throw WebAuthnRejection(.challengeMismatch, "clientDataJSON.challenge is not the challenge issued for this ceremony")
        }
        guard configuration.origins.contains(clientData.origin) else {
            throw WebAuthnRejection(.originNotAllowed, "origin \(clientData.origin) is not one of \(configuration.origins.sorted().joined(separator: ", "))")
        }
        if clientData.crossOrigin {
            guard configuration.allowCrossOrigin else { throw WebAuthnRejection(.originNotAllowed, "the ceremony ran in a cross-origin iframe, which is not allowed") }
            if !configuration.allowedTopOrigins.isEmpty {
                guard let top = clientData.topOrigin, configuration.allowedTopOrigins.contains(top) else {
                    throw WebAuthnRejection(.originNotAllowed, "cross-origin use from top origin \(clientData.topOrigin ?? "(none)") is not allowed")
                }
            }
        } else if let top = clientData.topOrigin, !configuration.origins.contains(top) {
            throw WebAuthnRejection(.originNotAllowed, "top origin \(top) is not one of the relying party's origins")
        }
    }

    private func check(_ authData: AuthenticatorData) throws {
        guard ConstantTime.equals(authData.rpIDHash, rpIDHash) else {
            throw WebAuthnRejection(.rpIDMismatch, "the authenticator data is scoped to another RP ID than \(configuration.id)")
        }
        guard authData.flags.contains(.userPresent) else { throw WebAuthnRejection(.userNotPresent, "user presence (UP) is not set") }
        if configuration.userVerification == .required, !authData.flags.contains(.userVerified) {
            throw WebAuthnRejection(.userNotVerified, "user verification is required and UV is not set")
        }
    }
}

/// A registered credential, as the relying party stores it (`Codable`: keep it in any database).
public struct WebAuthnCredential: Sendable, Hashable, Codable {
    /// The credential id.
    public var id: Base64URLBytes
    /// The COSE_Key bytes.
    public var publicKey: Base64URLBytes
    /// The key's algorithm.
    public var algorithm: COSEAlgorithm
    /// The last signature counter seen.
    public var signCount: UInt32
    /// The user handle of the account that owns it.
    public var userHandle: Base64URLBytes
    /// The authenticator model (all zeroes when undisclosed).
    public var aaguid: Base64URLBytes
    /// Transports reported at registration (for `allowCredentials`).
    public var transports: [String]
    /// BE: a synced passkey.
    public var backupEligible: Bool
    /// BS at the last ceremony.
    public var backedUp: Bool
    /// Whether the user was verified at registration.
    public var userVerified: Bool
    /// The attestation format.
    public var attestationFormat: String
    /// The attestation type.
    public var attestationType: AttestationType
    /// Whether the attestation chained to a trust anchor.
    public var attestationTrusted: Bool
    /// When it was last used to sign in.
    public var lastUsedAt: Date?

    /// Creates a credential record.
    public init(id: [UInt8], publicKey: [UInt8], algorithm: COSEAlgorithm, signCount: UInt32, userHandle: [UInt8], aaguid: [UInt8] = Array(repeating: 0, count: 16),
                transports: [String] = [], backupEligible: Bool = false, backedUp: Bool = false, userVerified: Bool = false,
                attestationFormat: String = "none", attestationType: AttestationType = .none, attestationTrusted: Bool = false, lastUsedAt: Date? = nil) {
        self.id = Base64URLBytes(id)
        self.publicKey = Base64URLBytes(publicKey)
        self.algorithm = algorithm
        self.signCount = signCount
        self.userHandle = Base64URLBytes(userHandle)
        self.aaguid = Base64URLBytes(aaguid)
        self.transports = transports
        self.backupEligible = backupEligible
        self.backedUp = backedUp
        self.userVerified = userVerified
        self.attestationFormat = attestationFormat
        self.attestationType = attestationType
        self.attestationTrusted = attestationTrusted
        self.lastUsedAt = lastUsedAt
    }

    /// The descriptor for `excludeCredentials` / `allowCredentials`.
    public var descriptor: CredentialDescriptor { CredentialDescriptor(id: id.bytes, transports: transports.isEmpty ? nil : transports) }
}
