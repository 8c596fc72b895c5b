import Crypto
import Foundation
import NimbusCore
import _CryptoExtras
import SwiftASN1
import X509

/// The attestation object an authenticator returns at registration (WebAuthn §6.5): the statement
/// format, the statement, and the authenticator data with the new credential.
public struct AttestationObject: Sendable, Hashable {
    /// The attestation statement format identifier (`none`, `packed`, `tpm`, …).
    public var format: String
    /// The attestation statement, a CBOR map whose shape depends on ``format``.
    public var statement: CBOR
    /// The authenticator data.
    public var authenticatorData: AuthenticatorData

    /// Parses attestation object bytes.
    public init(bytes: some Collection<UInt8>) throws {
        let item: CBOR
        do { item = try CBOR.decode(bytes) } catch { throw WebAuthnRejection(.malformed, "attestationObject: \(error)") }
        guard let format = item["fmt"]?.text else { throw WebAuthnRejection(.malformed, "attestationObject has no text fmt") }
        guard let statement = item["attStmt"], statement.entries != nil else { throw WebAuthnRejection(.malformed, "attestationObject has no attStmt map") }
        guard let authData = item["authData"]?.bytes else { throw WebAuthnRejection(.malformed, "attestationObject has no authData bytes") }
        self.format = format
        self.statement = statement
        self.authenticatorData = try AuthenticatorData(bytes: authData)
        guard authenticatorData.attestedCredential != nil else {
            throw WebAuthnRejection(.malformed, "the authenticator data of a registration has no attested credential (flag AT)")
        }
    }
}

/// The kinds of attestation WebAuthn §6.5.4 defines, as this relying party classified the statement.
public enum AttestationType: String, Sendable, Hashable, Codable {
    /// No attestation (`none`), or an attestation the relying party chose not to keep.
    case none
    /// Self attestation: signed by the credential key itself.
    case `self`
    /// Basic attestation: an attestation certificate shared by a batch of authenticators.
    case basic
    /// Attestation CA (a TPM's AIK certificate).
    case attestationCA
    /// Anonymization CA (Apple): a per-credential certificate from the vendor's CA.
    case anonymizationCA
}

/// What the relying party learned from an attestation statement.
public struct AttestationResult: Sendable, Hashable {
    /// The statement format.
    public var format: String
    /// The attestation type.
    public var type: AttestationType
    /// The certificate chain of the statement, leaf first (empty for none and self).
    public var trustPath: [Certificate]
    /// Whether ``trustPath`` chains to one of the configured trust anchors.
    public var trusted: Bool
}

/// Which attestations the relying party accepts.
///
/// The default accepts `none` and self attestation and verifies every certificate-based statement
/// fully (signature, certificate requirements, nonce), recording in ``AttestationResult/trusted``
/// whether its chain reaches one of ``trustAnchors``. Set ``requireTrustedChain`` for
/// enterprise deployments that admit only known authenticator models.
public struct AttestationPolicy: Sendable {
    /// The root certificates attestation chains may end in (e.g. from the FIDO Metadata Service).
    public var trustAnchors: [Certificate] = []
    /// Refuse certificate-based attestations whose chain does not reach ``trustAnchors``.
    public var requireTrustedChain = false
    /// Accept `fmt: none`.
    public var allowNone = true
    /// Accept self attestation.
    public var allowSelf = true
    /// Android Key: look at `teeEnforced` only (refuse keys whose properties only software asserts).
    public var androidKeyRequireTEE = false
    /// The formats accepted at all.
    public var formats: Set<String> = ["none", "packed", "fido-u2f", "tpm", "android-key", "apple"]
    /// The time certificate validity is checked at (`nil`: now).
    public var validationTime: Date?

    /// Creates the default policy.
    public init() {}
}

enum AttestationVerifier {
    static let aaguidExtension = try! ASN1ObjectIdentifier(dotRepresentation: "1.3.6.1.4.1.45724.1.1.4")
    static let androidKeyExtension = try! ASN1ObjectIdentifier(dotRepresentation: "1.3.6.1.4.1.11129.2.1.17")
    static let appleNonceExtension = try! ASN1ObjectIdentifier(dotRepresentation: "1.2.840.113635.100.8.2")
    static let tpmKeyPurpose = try! ASN1ObjectIdentifier(dotRepresentation: "2.23.133.8.3")

    /// Verifies `object`'s statement over `clientDataHash` (WebAuthn §8) and classifies it.
    static func verify(_ object: AttestationObject, clientDataHash: [UInt8], policy: AttestationPolicy) async throws -> AttestationResult {
        guard policy.formats.contains(object.format) else {
            let known = ["none", "packed", "fido-u2f", "tpm", "android-key", "apple"].contains(object.format)
            throw WebAuthnRejection(known ? .untrustedAttestation : .unsupportedAttestationFormat, "attestation format \"\(object.format)\" is not accepted (accepted: \(policy.formats.sorted().joined(separator: ", ")))")
        }
        let authData = object.authenticatorData
        let credential = authData.attestedCredential!
        let signed = authData.raw + clientDataHash
        let statement = object.statement
        var result: (type: AttestationType, path: [Certificate])
        switch object.format {
        case "none":
            guard statement.entries?.isEmpty == true else { throw WebAuthnRejection(.invalidAttestation, "a none attestation statement must be empty") }
            guard policy.allowNone else { throw WebAuthnRejection(.untrustedAttestation, "attestation none is not accepted by the policy") }
            return AttestationResult(format: "none", type: .none, trustPath: [], trusted: false)
        case "packed":
            result = try packed(statement, credential: credential, signed: signed)
        case "fido-u2f":
            result = try fidoU2F(statement, authData: authData, clientDataHash: clientDataHash)
        case "tpm":
            result = try TPMAttestation.verify(statement, credential: credential, signed: signed)
        case "android-key":
            result = try androidKey(statement, credential: credential, signed: signed, clientDataHash: clientDataHash, requireTEE: policy.androidKeyRequireTEE)
        case "apple":
            result = try apple(statement, credential: credential, signed: signed)
        default:
            throw WebAuthnRejection(.unsupportedAttestationFormat, "attestation format \"\(object.format)\" is not supported")
        }
        if result.type == .self {
            guard policy.allowSelf else { throw WebAuthnRejection(.untrustedAttestation, "self attestation is not accepted by the policy") }
            return AttestationResult(format: object.format, type: .self, trustPath: [], trusted: false)
        }
        let trusted = try await chainIsTrusted(result.path, anchors: policy.trustAnchors, at: policy.validationTime ?? Date(), tpm: object.format == "tpm")
        if policy.requireTrustedChain, !trusted {
            throw WebAuthnRejection(.untrustedAttestation, "the \(object.format) attestation certificate does not chain to a configured trust anchor")
        }
        return AttestationResult(format: object.format, type: result.type, trustPath: result.path, trusted: trusted)
    }

    // MARK: Formats

    static func certificates(_ statement: CBOR, format: String) throws -> [Certificate] {
        guard let items = statement["x5c"]?.array, !items.isEmpty else { throw WebAuthnRejection(.invalidAttestation, "\(format) attestation has no x5c certificates") }
        return try items.enumerated().map { index, item in
            guard let der = item.bytes else { throw WebAuthnRejection(.invalidAttestation, "\(format) x5c[\(index)] is not a byte string") }
            do { return try Certificate(derEncoded: der) } catch {
                throw WebAuthnRejection(.invalidAttestation, "\(format) x5c[\(index)] is not a DER certificate: \(error)")
            }
        }
    }

    static func algorithm(_ statement: CBOR, format: String) throws -> COSEAlgorithm {
        guard let alg = statement["alg"]?.int else { throw WebAuthnRejection(.invalidAttestation, "\(format) attestation has no alg") }
        let algorithm = COSEAlgorithm(rawValue: alg)
        guard COSEAlgorithm.supported.contains(algorithm) else { throw WebAuthnRejection(.unsupportedAlgorithm, "\(format) attestation signed with \(algorithm), which is not supported") }
        return algorithm
    }

    static func signature(_ statement: CBOR, format: String) throws -> [UInt8] {
        guard let sig = statement["sig"]?.bytes else { throw WebAuthnRejection(.invalidAttestation, "\(format) attestation has no sig") }
        return sig
    }

    /// Whether `signature` over `data` verifies with a certificate's key under `algorithm`.
    static func verify(_ signature: [UInt8], over data: [UInt8], with key: Certificate.PublicKey, algorithm: COSEAlgorithm) -> Bool {
        switch algorithm {
        case .es256: return key.isValidSignature(signature, for: data, signatureAlgorithm: .ecdsaWithSHA256)
        case .es384: return key.isValidSignature(signature, for: data, signatureAlgorithm: .ecdsaWithSHA384)
        case .es512: return key.isValidSignature(signature, for: data, signatureAlgorithm: .ecdsaWithSHA512)
        case .edDSA, .ed25519: return key.isValidSignature(signature, for: data, signatureAlgorithm: .ed25519)
        case .rs256: return key.isValidSignature(signature, for: data, signatureAlgorithm: .sha256WithRSAEncryption)
        case .rs384: return key.isValidSignature(signature, for: data, signatureAlgorithm: .sha384WithRSAEncryption)
        case .rs512: return key.isValidSignature(signature, for: data, signatureAlgorithm: .sha512WithRSAEncryption)
        case .ps256, .ps384, .ps512:
            guard let rsa = _RSA.Signing.PublicKey(key) else { return false }
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch algorithm {
            case .ps384: return rsa.isValidSignature(sig, for: SHA384.hash(data: data), padding: .PSS)
            case .ps512: return rsa.isValidSignature(sig, for: SHA512.hash(data: data), padding: .PSS)
            default: return rsa.isValidSignature(sig, for: SHA256.hash(data: data), padding: .PSS)
            }
        default: return false
        }
    }

    /// The certificate requirements every attestation leaf shares: v3, not a CA, and an AAGUID
    /// extension (when present) equal to the authenticator data's.
    static func checkLeaf(_ leaf: Certificate, aaguid: [UInt8], format: String) throws {
        guard leaf.version == .v3 else { throw WebAuthnRejection(.invalidAttestation, "\(format) attestation certificate is not X.509 v3") }
        let constraints: BasicConstraints?
        do { constraints = try leaf.extensions.basicConstraints } catch { throw WebAuthnRejection(.invalidAttestation, "\(format) attestation certificate basic constraints are malformed") }
        if case .isCertificateAuthority = constraints { throw WebAuthnRejection(.invalidAttestation, "\(format) attestation certificate is a CA certificate") }
        if let ext = leaf.extensions[oid: aaguidExtension] {
            guard !ext.critical else { throw WebAuthnRejection(.invalidAttestation, "the AAGUID extension of the \(format) certificate must not be critical") }
            guard let node = try? DER.parse(Array(ext.value)), case .primitive(let value) = node.content, node.identifier == .octetString else {
                throw WebAuthnRejection(.invalidAttestation, "the AAGUID extension of the \(format) certificate is not an OCTET STRING")
            }
            guard Array(value) == aaguid else { throw WebAuthnRejection(.invalidAttestation, "the \(format) certificate's AAGUID differs from the authenticator data's") }
        }
    }

    static func packed(_ statement: CBOR, credential: AuthenticatorData.AttestedCredential, signed: [UInt8]) throws -> (AttestationType, [Certificate]) {
        let algorithm = try algorithm(statement, format: "packed")
        let sig = try signature(statement, format: "packed")
        guard statement["x5c"] != nil else {
            guard algorithm == credential.publicKey.algorithm else {
                throw WebAuthnRejection(.invalidAttestation, "packed self attestation uses \(algorithm) but the credential key is \(credential.publicKey.algorithm)")
            }
            guard try credential.publicKey.isValidSignature(sig, for: signed) else { throw WebAuthnRejection(.invalidAttestation, "packed self attestation signature does not verify") }
            return (.self, [])
        }
        let chain = try certificates(statement, format: "packed")
        let leaf = chain[0]
        guard verify(sig, over: signed, with: leaf.publicKey, algorithm: algorithm) else {
            throw WebAuthnRejection(.invalidAttestation, "packed attestation signature does not verify with the x5c certificate")
        }
        // §8.2.1: subject C, O, OU = "Authenticator Attestation", CN.
        var attributes: [ASN1ObjectIdentifier: String] = [:]
        for rdn in leaf.subject { for attribute in rdn { attributes[attribute.type] = attribute.value.description } }
        let required: [(ASN1ObjectIdentifier, String)] = [(.RDNAttributeType.countryName, "C"), (.RDNAttributeType.organizationName, "O"), (.RDNAttributeType.commonName, "CN")]
        for (oid, name) in required where attributes[oid]?.isEmpty ?? true {
            throw WebAuthnRejection(.invalidAttestation, "packed attestation certificate subject has no \(name)")
        }
        guard attributes[.RDNAttributeType.organizationalUnitName] == "Authenticator Attestation" else {
            throw WebAuthnRejection(.invalidAttestation, "packed attestation certificate subject OU must be \"Authenticator Attestation\"")
        }
        try checkLeaf(leaf, aaguid: credential.aaguid, format: "packed")
        return (.basic, chain)
    }

    static func fidoU2F(_ statement: CBOR, authData: AuthenticatorData, clientDataHash: [UInt8]) throws -> (AttestationType, [Certificate]) {
        let credential = authData.attestedCredential!
        let sig = try signature(statement, format: "fido-u2f")
        let chain = try certificates(statement, format: "fido-u2f")
        guard chain.count == 1 else { throw WebAuthnRejection(.invalidAttestation, "fido-u2f attestation must carry exactly one certificate, got \(chain.count)") }
        guard P256.Signing.PublicKey(chain[0].publicKey) != nil else { throw WebAuthnRejection(.invalidAttestation, "fido-u2f attestation certificate key is not P-256") }
        guard case .ec2(1, let x, let y) = credential.publicKey.material else {
            throw WebAuthnRejection(.invalidAttestation, "fido-u2f credentials are P-256 keys; this one is \(credential.publicKey.algorithm)")
        }
        let verificationData = [0x00] + authData.rpIDHash + clientDataHash + credential.credentialID + [0x04] + x + y
        guard verify(sig, over: verificationData, with: chain[0].publicKey, algorithm: .es256) else {
            throw WebAuthnRejection(.invalidAttestation, "fido-u2f attestation signature does not verify")
        }
        return (.basic, chain)
    }

    static func androidKey(_ statement: CBOR, credential: AuthenticatorData.AttestedCredential, signed: [UInt8], clientDataHash: [UInt8], requireTEE: Bool) throws -> (AttestationType, [Certificate]) {
        let algorithm = try algorithm(statement, format: "android-key")
        let sig = try signature(statement, format: "android-key")
        let chain = try certificates(statement, format: "android-key")
        let leaf = chain[0]
        guard verify(sig, over: signed, with: leaf.publicKey, algorithm: algorithm) else {
            throw WebAuthnRejection(.invalidAttestation, "android-key attestation signature does not verify")
        }
        guard try leaf.publicKey == credential.publicKey.certificatePublicKey() else {
            throw WebAuthnRejection(.invalidAttestation, "android-key certificate key is not the credential public key")
        }
        guard let ext = leaf.extensions[oid: androidKeyExtension] else {
            throw WebAuthnRejection(.invalidAttestation, "android-key certificate has no key description extension (1.3.6.1.4.1.11129.2.1.17)")
        }
        let description = try AndroidKeyDescription(der: Array(ext.value))
        guard ConstantTime.equals(description.attestationChallenge, clientDataHash) else {
            throw WebAuthnRejection(.invalidAttestation, "android-key attestationChallenge is not the client data hash")
        }
        guard !description.software.allApplications, !description.tee.allApplications else {
            throw WebAuthnRejection(.invalidAttestation, "android-key key is usable by all applications (allApplications is present)")
        }
        let lists = requireTEE ? [description.tee] : [description.tee, description.software]
        guard lists.contains(where: { $0.origin == 0 }) else {
            throw WebAuthnRejection(.invalidAttestation, "android-key key was not generated in the keystore (origin is not KM_ORIGIN_GENERATED)\(requireTEE ? " in teeEnforced" : "")")
        }
        guard lists.contains(where: { $0.purposes.contains(2) }) else {
            throw WebAuthnRejection(.invalidAttestation, "android-key key purpose does not include KM_PURPOSE_SIGN\(requireTEE ? " in teeEnforced" : "")")
        }
        return (.basic, chain)
    }

    static func apple(_ statement: CBOR, credential: AuthenticatorData.AttestedCredential, signed: [UInt8]) throws -> (AttestationType, [Certificate]) {
        let chain = try certificates(statement, format: "apple")
        let leaf = chain[0]
        let nonce = Array(SHA256.hash(data: signed))
        guard let ext = leaf.extensions[oid: appleNonceExtension] else {
            throw WebAuthnRejection(.invalidAttestation, "apple attestation certificate has no nonce extension (1.2.840.113635.100.8.2)")
        }
        var found: [UInt8]?
        if let outer = try? DER.parse(Array(ext.value)), case .constructed(let children) = outer.content {
            for child in children where child.identifier.tagClass == .contextSpecific && child.identifier.tagNumber == 1 {
                if case .constructed(let inner) = child.content, let octets = inner.first(where: { _ in true }),
                   octets.identifier == .octetString, case .primitive(let value) = octets.content {
                    found = Array(value)
                }
            }
        }
        guard let found else { throw WebAuthnRejection(.invalidAttestation, "apple nonce extension is not SEQUENCE { [1] OCTET STRING }") }
        guard ConstantTime.equals(found, nonce) else { throw WebAuthnRejection(.invalidAttestation, "apple attestation nonce is not SHA-256(authData || clientDataHash)") }
        guard try leaf.publicKey == credential.publicKey.certificatePublicKey() else {
            throw WebAuthnRejection(.invalidAttestation, "apple attestation certificate key is not the credential public key")
        }
        return (.anonymizationCA, chain)
    }

    // MARK: Trust

    static func chainIsTrusted(_ path: [Certificate], anchors: [Certificate], at time: Date, tpm: Bool) async throws -> Bool {
        guard let leaf = path.first, !anchors.isEmpty else { return false }
        var verifier = Verifier(rootCertificates: CertificateStore(anchors)) {
            RFC5280Policy(fixedValidationTime: time)
            AttestationExtensionsPolicy(tpm: tpm)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(Array(path.dropFirst())))
        if case .validCertificate = result { return true }
        return false
    }
}

/// Declares the critical extensions the format checks above enforce themselves (a TPM AIK
/// certificate's critical subjectAltName), so chain building does not refuse them as unknown.
struct AttestationExtensionsPolicy: VerifierPolicy {
    let tpm: Bool
    var verifyingCriticalExtensions: [ASN1ObjectIdentifier] { tpm ? [.X509ExtensionID.subjectAlternativeName] : [] }
    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult { .meetsPolicy }
}
