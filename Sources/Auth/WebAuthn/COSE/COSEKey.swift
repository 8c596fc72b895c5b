import Crypto
import _CryptoExtras
import Foundation
import X509

/// A COSE algorithm identifier (the IANA "COSE Algorithms" registry) that a WebAuthn credential
/// or attestation statement names. Unknown values stay representable so that they can be named
/// in errors; only ``supported`` ones verify.
public struct COSEAlgorithm: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// ECDSA with SHA-256 on P-256.
    public static let es256 = COSEAlgorithm(rawValue: -7)
    /// ECDSA with SHA-384 on P-384.
    public static let es384 = COSEAlgorithm(rawValue: -35)
    /// ECDSA with SHA-512 on P-521.
    public static let es512 = COSEAlgorithm(rawValue: -36)
    /// EdDSA (WebAuthn uses it with Ed25519 keys).
    public static let edDSA = COSEAlgorithm(rawValue: -8)
    /// Ed25519 named explicitly (RFC 9864).
    public static let ed25519 = COSEAlgorithm(rawValue: -19)
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    public static let rs256 = COSEAlgorithm(rawValue: -257)
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    public static let rs384 = COSEAlgorithm(rawValue: -258)
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    public static let rs512 = COSEAlgorithm(rawValue: -259)
    /// RSASSA-PSS with SHA-256.
    public static let ps256 = COSEAlgorithm(rawValue: -37)
    /// RSASSA-PSS with SHA-384.
    public static let ps384 = COSEAlgorithm(rawValue: -38)
    /// RSASSA-PSS with SHA-512.
    public static let ps512 = COSEAlgorithm(rawValue: -39)
    /// Ed448 — recognised so it can be refused by name (swift-crypto has no Ed448).
    public static let ed448 = COSEAlgorithm(rawValue: -53)

    /// What this relying party can verify. RS1 (SHA-1) is deliberately absent.
    public static let supported: [COSEAlgorithm] = [.es256, .edDSA, .ed25519, .es384, .es512, .ps256, .ps384, .ps512, .rs256, .rs384, .rs512]

    public var description: String {
        switch self {
        case .es256: "ES256"
        case .es384: "ES384"
        case .es512: "ES512"
        case .edDSA: "EdDSA"
        case .ed25519: "Ed25519"
        case .rs256: "RS256"
        case .rs384: "RS384"
        case .rs512: "RS512"
        case .ps256: "PS256"
        case .ps384: "PS384"
        case .ps512: "PS512"
        case .ed448: "Ed448"
        default: "COSE algorithm \(rawValue)"
        }
    }

    public init(from decoder: any Decoder) throws { self.init(rawValue: try decoder.singleValueContainer().decode(Int.self)) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// A credential public key in COSE_Key form (RFC 9052/9053), bound to one algorithm.
///
/// Parsing checks that the key type, curve and algorithm belong together (an ES256 key must be
/// an EC2 P-256 key with 32-byte coordinates on the curve; an RSA key must be at least 2048 bits),
/// so a verifier never has to ask which algorithm a signature "claims".
///
/// ```swift
/// let key = try COSEKey(cbor: credential.publicKey)
/// guard try key.isValidSignature(signature, for: authenticatorData + clientDataHash) else { … }
/// ```
public struct COSEKey: Sendable, Hashable {
    /// The algorithm the key is bound to.
    public let algorithm: COSEAlgorithm
    /// The key material.
    public let material: Material
    /// The COSE_Key bytes as received (what a credential store keeps).
    public let encoded: [UInt8]

    /// The kinds of key material.
    public enum Material: Sendable, Hashable {
        /// An EC2 key: the curve (1 P-256, 2 P-384, 3 P-521) and its coordinates.
        case ec2(curve: Int, x: [UInt8], y: [UInt8])
        /// An OKP key: the curve (6 Ed25519) and its public bytes.
        case okp(curve: Int, x: [UInt8])
        /// An RSA key: modulus and exponent, big-endian.
        case rsa(n: [UInt8], e: [UInt8])
    }

    /// Parses the CBOR bytes of a COSE_Key.
    /// - Throws: ``WebAuthnRejection`` (`.unsupportedAlgorithm`, `.malformed`) naming what is wrong.
    public init(bytes: some Collection<UInt8>) throws {
        let raw = Array(bytes)
        let item: CBOR
        do { item = try CBOR.decode(raw) } catch { throw WebAuthnRejection(.malformed, "credential public key: \(error)") }
        try self.init(cbor: item, encoded: raw)
    }

    init(cbor item: CBOR, encoded: [UInt8]) throws {
        guard item.entries != nil else { throw WebAuthnRejection(.malformed, "credential public key is not a CBOR map") }
        guard let kty = item[1]?.int else { throw WebAuthnRejection(.malformed, "COSE key has no kty (label 1)") }
        guard let alg = item[3]?.int else { throw WebAuthnRejection(.malformed, "COSE key has no alg (label 3)") }
        let algorithm = COSEAlgorithm(rawValue: alg)
        self.algorithm = algorithm
        self.encoded = encoded
        func bytes(_ label: Int, _ name: String) throws -> [UInt8] {
            guard let b = item[label]?.bytes else { throw WebAuthnRejection(.malformed, "COSE key has no \(name) (label \(label))") }
            return b
        }
        switch (kty, algorithm) {
        case (2, .es256), (2, .es384), (2, .es512):
            let expected: (curve: Int, size: Int) = algorithm == .es256 ? (1, 32) : algorithm == .es384 ? (2, 48) : (3, 66)
            guard let crv = item[-1]?.int, crv == expected.curve else {
                throw WebAuthnRejection(.malformed, "\(algorithm) needs curve \(expected.curve), the key names \(item[-1]?.int.map(String.init) ?? "none")")
            }
            let x = try bytes(-2, "x"), y = try bytes(-3, "y")
            guard x.count == expected.size, y.count == expected.size else {
                throw WebAuthnRejection(.malformed, "\(algorithm) coordinates must be \(expected.size) bytes, got \(x.count) and \(y.count)")
            }
            material = .ec2(curve: crv, x: x, y: y)
        case (1, .edDSA), (1, .ed25519):
            guard let crv = item[-1]?.int else { throw WebAuthnRejection(.malformed, "OKP key has no crv (label -1)") }
            guard crv == 6 else {
                throw WebAuthnRejection(.unsupportedAlgorithm, crv == 7 ? "Ed448 keys are not supported (swift-crypto has no Ed448); offer Ed25519, ES256 or RS256" : "OKP curve \(crv) is not Ed25519")
            }
            let x = try bytes(-2, "x")
            guard x.count == 32 else { throw WebAuthnRejection(.malformed, "an Ed25519 key is 32 bytes, got \(x.count)") }
            material = .okp(curve: crv, x: x)
        case (3, .rs256), (3, .rs384), (3, .rs512), (3, .ps256), (3, .ps384), (3, .ps512):
            material = .rsa(n: try bytes(-1, "n"), e: try bytes(-2, "e"))
        case (_, .ed448):
            throw WebAuthnRejection(.unsupportedAlgorithm, "Ed448 keys are not supported (swift-crypto has no Ed448); offer Ed25519, ES256 or RS256")
        default:
            if COSEAlgorithm.supported.contains(algorithm) {
                throw WebAuthnRejection(.malformed, "COSE key type \(kty) cannot be used with \(algorithm)")
            }
            throw WebAuthnRejection(.unsupportedAlgorithm, "\(algorithm) is not supported; supported: \(COSEAlgorithm.supported.map(\.description).joined(separator: ", "))")
        }
        _ = try verifierKey()
    }

    /// The key as swift-certificates' public key (for comparing with an attestation certificate's key).
    public func certificatePublicKey() throws -> Certificate.PublicKey {
        switch try verifierKey() {
        case .p256(let k): return Certificate.PublicKey(k)
        case .p384(let k): return Certificate.PublicKey(k)
        case .p521(let k): return Certificate.PublicKey(k)
        case .ed25519(let k): return Certificate.PublicKey(k)
        case .rsa(let k): return Certificate.PublicKey(k)
        }
    }

    enum VerifierKey {
        case p256(P256.Signing.PublicKey), p384(P384.Signing.PublicKey), p521(P521.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey), rsa(_RSA.Signing.PublicKey)
    }

    func verifierKey() throws -> VerifierKey {
        do {
            switch material {
            case .ec2(let curve, let x, let y):
                switch curve {
                case 1: return .p256(try P256.Signing.PublicKey(rawRepresentation: x + y))
                case 2: return .p384(try P384.Signing.PublicKey(rawRepresentation: x + y))
                default: return .p521(try P521.Signing.PublicKey(rawRepresentation: x + y))
                }
            case .okp(_, let x): return .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: x))
            case .rsa(let n, let e):
                let key = try _RSA.Signing.PublicKey(n: n, e: e)
                return .rsa(key)
            }
        } catch {
            throw WebAuthnRejection(.malformed, "\(algorithm) public key is not a valid key (\(error)); RSA keys must be 2048 bits or more, EC points on the curve")
        }
    }

    /// Whether `signature` (DER for ECDSA, raw for EdDSA and RSA) signs `data` with this key.
    public func isValidSignature(_ signature: [UInt8], for data: [UInt8]) throws -> Bool {
        switch try verifierKey() {
        case .p256(let k):
            guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(sig, for: SHA256.hash(data: data))
        case .p384(let k):
            guard let sig = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(sig, for: SHA384.hash(data: data))
        case .p521(let k):
            guard let sig = try? P521.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(sig, for: SHA512.hash(data: data))
        case .ed25519(let k):
            return k.isValidSignature(signature, for: data)
        case .rsa(let k):
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            let padding: _RSA.Signing.Padding = [.ps256, .ps384, .ps512].contains(algorithm) ? .PSS : .insecurePKCS1v1_5
            switch algorithm {
            case .rs384, .ps384: return k.isValidSignature(sig, for: SHA384.hash(data: data), padding: padding)
            case .rs512, .ps512: return k.isValidSignature(sig, for: SHA512.hash(data: data), padding: padding)
            default: return k.isValidSignature(sig, for: SHA256.hash(data: data), padding: padding)
            }
        }
    }

    /// Builds the COSE_Key of a P-256 public key (ES256).
    public init(_ key: P256.Signing.PublicKey) {
        let raw = Array(key.rawRepresentation)
        self.init(trusted: .es256, .ec2(curve: 1, x: Array(raw[0..<32]), y: Array(raw[32...])))
    }

    /// Builds the COSE_Key of an Ed25519 public key (EdDSA).
    public init(_ key: Curve25519.Signing.PublicKey) {
        self.init(trusted: .edDSA, .okp(curve: 6, x: Array(key.rawRepresentation)))
    }

    /// Builds the COSE_Key of an RSA public key for `algorithm` (RS256 by default).
    public init(_ key: _RSA.Signing.PublicKey, algorithm: COSEAlgorithm = .rs256) throws {
        let primitives = try key.getKeyPrimitives()
        self.init(trusted: algorithm, .rsa(n: Array(primitives.modulus), e: Array(primitives.publicExponent)))
    }

    private init(trusted algorithm: COSEAlgorithm, _ material: Material) {
        self.algorithm = algorithm
        self.material = material
        var entries: [CBOR.Entry]
        switch material {
        case .ec2(let curve, let x, let y):
            entries = [.init(.int(1), .int(2)), .init(.int(3), .int(algorithm.rawValue)), .init(.int(-1), .int(curve)), .init(.int(-2), .bytes(x)), .init(.int(-3), .bytes(y))]
        case .okp(let curve, let x):
            entries = [.init(.int(1), .int(1)), .init(.int(3), .int(algorithm.rawValue)), .init(.int(-1), .int(curve)), .init(.int(-2), .bytes(x))]
        case .rsa(let n, let e):
            entries = [.init(.int(1), .int(3)), .init(.int(3), .int(algorithm.rawValue)), .init(.int(-1), .bytes(n)), .init(.int(-2), .bytes(e))]
        }
        self.encoded = CBOR.map(entries).encoded()
    }
}
