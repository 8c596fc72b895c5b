import Crypto
import _CryptoExtras
import Foundation
import NimbusCore
import SwiftASN1
import X509

/// An authenticator in software — the counterpart of a browser's virtual authenticator — for
/// tests and tools: it answers ``RegistrationOptions`` and ``AuthenticationOptions`` with the
/// JSON a browser would send, signing with keys it keeps in memory.
///
/// ```swift
/// var authenticator = SoftwareAuthenticator(origin: "https://example.org")
/// let registration = try authenticator.register(rp.registrationOptions(for: user))
/// let assertion = try authenticator.authenticate(rp.authenticationOptions())
/// ```
public struct SoftwareAuthenticator: Sendable {
    /// How the authenticator attests new credentials.
    public enum Attestation: Sendable {
        /// `fmt: none`.
        case none
        /// `packed` signed by the credential key.
        case packedSelf
        /// `packed` signed by an attestation key whose certificate chain (leaf first) is sent as `x5c`.
        case packed(key: P256.Signing.PrivateKey, chain: [Certificate])
    }

    /// A private key the authenticator holds.
    public enum PrivateKey: Sendable {
        case p256(P256.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)

        /// The COSE_Key of the public half.
        public func coseKey() throws -> COSEKey {
            switch self {
            case .p256(let k): COSEKey(k.publicKey)
            case .ed25519(let k): COSEKey(k.publicKey)
            case .rsa(let k): try COSEKey(k.publicKey)
            }
        }

        /// A WebAuthn signature (DER ECDSA, raw EdDSA, PKCS#1 v1.5 RSA) over `data`.
        public func sign(_ data: [UInt8]) throws -> [UInt8] {
            switch self {
            case .p256(let k): Array(try k.signature(for: data).derRepresentation)
            case .ed25519(let k): Array(try k.signature(for: data))
            case .rsa(let k): Array(try k.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5).rawRepresentation)
            }
        }
    }

    /// A credential the authenticator created.
    public struct Credential: Sendable {
        public var id: [UInt8]
        public var rpID: String
        public var userHandle: [UInt8]
        public var key: PrivateKey
        public var signCount: UInt32
    }

    /// The origin written into client data.
    public var origin: String
    /// The top origin written into client data (a cross-origin iframe), if any.
    public var topOrigin: String?
    /// The attestation created at registration.
    public var attestation: Attestation
    /// The model's AAGUID.
    public var aaguid: [UInt8]
    /// Whether the user is verified (UV).
    public var verifiesUser: Bool
    /// The BE flag.
    public var backupEligible: Bool
    /// The BS flag.
    public var backedUp: Bool
    /// Whether the counter increments (false: always 0, as synced passkeys do).
    public var countsSignatures: Bool
    /// The credentials created so far.
    public private(set) var credentials: [Credential] = []

    /// Creates an authenticator.
    public init(origin: String, topOrigin: String? = nil, attestation: Attestation = .none, aaguid: [UInt8] = Array(repeating: 0, count: 16),
                verifiesUser: Bool = true, backupEligible: Bool = false, backedUp: Bool = false, countsSignatures: Bool = true) {
        self.origin = origin
        self.topOrigin = topOrigin
        self.attestation = attestation
        self.aaguid = aaguid
        self.verifiesUser = verifiesUser
        self.backupEligible = backupEligible
        self.backedUp = backedUp
        self.countsSignatures = countsSignatures
    }

    /// The client data JSON a browser writes (member order as Chrome's).
    public func clientDataJSON(type: String, challenge: [UInt8]) -> [UInt8] {
        func quoted(_ s: String) -> String { String(decoding: (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8), as: UTF8.self) }
        var json = "{\"type\":\(quoted(type)),\"challenge\":\(quoted(Base64URL.encode(challenge))),\"origin\":\(quoted(origin)),\"crossOrigin\":\(topOrigin != nil)"
        if let topOrigin { json += ",\"topOrigin\":\(quoted(topOrigin))" }
        return Array((json + "}").utf8)
    }

    private var flags: AuthenticatorData.Flags {
        var flags: AuthenticatorData.Flags = [.userPresent]
        if verifiesUser { flags.insert(.userVerified) }
        if backupEligible { flags.insert(.backupEligible) }
        if backedUp { flags.insert(.backedUp) }
        return flags
    }

    /// Creates a credential for `options` (the first offered algorithm it supports) and returns the registration response.
    public mutating func register(_ options: RegistrationOptions) throws -> RegistrationResponse {
        guard let algorithm = options.pubKeyCredParams.map(\.alg).first(where: { [.es256, .edDSA, .ed25519, .rs256].contains($0) }) else {
            throw WebAuthnRejection(.unsupportedAlgorithm, "the software authenticator supports ES256, EdDSA and RS256 only")
        }
        let key: PrivateKey = switch algorithm {
        case .es256: .p256(P256.Signing.PrivateKey())
        case .rs256: .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048))
        default: .ed25519(Curve25519.Signing.PrivateKey())
        }
        return try register(options, key: key)
    }

    /// Registers a credential with a given key (and, optionally, a given credential id).
    public mutating func register(_ options: RegistrationOptions, key: PrivateKey, credentialID: [UInt8]? = nil) throws -> RegistrationResponse {
        let id = credentialID ?? SecureRandom.bytes(32)
        let rpIDHash = Array(SHA256.hash(data: Array(options.rp.id.utf8)))
        let count: UInt32 = countsSignatures ? 1 : 0
        let coseKey = try key.coseKey()
        let authData = AuthenticatorData.encode(rpIDHash: rpIDHash, flags: flags, signCount: count, credential: (aaguid, id, coseKey))
        let clientData = clientDataJSON(type: "webauthn.create", challenge: options.challenge.bytes)
        let signed = authData + Array(SHA256.hash(data: clientData))
        let statement: CBOR, format: String
        switch attestation {
        case .none:
            (format, statement) = ("none", .map([]))
        case .packedSelf:
            (format, statement) = ("packed", .map([.init(.text("alg"), .int(coseKey.algorithm.rawValue)), .init(.text("sig"), .bytes(try key.sign(signed)))]))
        case .packed(let attestationKey, let chain):
            var der: [CBOR] = []
            for certificate in chain {
                var serializer = DER.Serializer()
                try serializer.serialize(certificate)
                der.append(.bytes(serializer.serializedBytes))
            }
            let sig = Array(try attestationKey.signature(for: signed).derRepresentation)
            (format, statement) = ("packed", .map([.init(.text("alg"), .int(COSEAlgorithm.es256.rawValue)), .init(.text("sig"), .bytes(sig)), .init(.text("x5c"), .array(der))]))
        }
        let object = CBOR.map([.init(.text("fmt"), .text(format)), .init(.text("attStmt"), statement), .init(.text("authData"), .bytes(authData))])
        credentials.append(Credential(id: id, rpID: options.rp.id, userHandle: options.user.id.bytes, key: key, signCount: count))
        var response = RegistrationResponse.Response(clientDataJSON: clientData, attestationObject: object.encoded(), transports: ["internal"])
        response.publicKeyAlgorithm = coseKey.algorithm.rawValue
        response.authenticatorData = Base64URLBytes(authData)
        return RegistrationResponse(rawId: id, response: response, authenticatorAttachment: "platform", clientExtensionResults: ["credProps": .object(["rk": .bool(true)])])
    }

    /// Signs an assertion for `options` with the newest allowed credential it holds (any of its
    /// credentials for the RP ID when `allowCredentials` is empty).
    public mutating func authenticate(_ options: AuthenticationOptions) throws -> AuthenticationResponse {
        let allowed = Set(options.allowCredentials.map(\.id.bytes))
        guard let index = credentials.lastIndex(where: { $0.rpID == options.rpId && (allowed.isEmpty || allowed.contains($0.id)) }) else {
            throw WebAuthnRejection(.unknownCredential, "the software authenticator holds no credential for \(options.rpId)")
        }
        if countsSignatures { credentials[index].signCount += 1 }
        let credential = credentials[index]
        let rpIDHash = Array(SHA256.hash(data: Array(options.rpId.utf8)))
        let authData = AuthenticatorData.encode(rpIDHash: rpIDHash, flags: flags, signCount: credential.signCount)
        let clientData = clientDataJSON(type: "webauthn.get", challenge: options.challenge.bytes)
        let signature = try credential.key.sign(authData + Array(SHA256.hash(data: clientData)))
        return AuthenticationResponse(rawId: credential.id, response: .init(clientDataJSON: clientData, authenticatorData: authData, signature: signature, userHandle: credential.userHandle),
                                      authenticatorAttachment: "platform")
    }

    /// Sets a credential's counter (to act as a cloned authenticator, say).
    public mutating func setSignCount(_ count: UInt32, credentialID: [UInt8]) {
        for index in credentials.indices where credentials[index].id == credentialID { credentials[index].signCount = count }
    }
}
