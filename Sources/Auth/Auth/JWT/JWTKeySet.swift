import Crypto
import Foundation
internal import JWTKit
import NimbusCore
import _CryptoExtras

/// One key of a ``JWTKeySet``: its id, the algorithms it may be used with, and whether it can sign.
///
/// A key is bound to its own algorithms: an RSA key verifies RS*/PS* only, an EC key the ES
/// algorithm of its curve, an HMAC secret only the HS algorithm it was given — so a token whose
/// `alg` says HS256 is never checked against an RSA public key taken as an HMAC secret (the
/// classic algorithm-confusion forgery). A JWK's own `alg` narrows that to one algorithm.
public struct JWTKey: Sendable, CustomStringConvertible {
    /// The key id (`kid`), if the key has one.
    public let id: String?
    /// The algorithms this key may be used with.
    public let algorithms: Set<JWSAlgorithm>
    /// Whether the key holds private (or secret) material and can sign.
    public let canSign: Bool
    let implementations: [JWSAlgorithm: any JWTAlgorithm]

    public var description: String {
        "JWTKey(\(id ?? "no kid"), \(algorithms.map(\.rawValue).sorted().joined(separator: "/"))\(canSign ? ", signing" : ""))"
    }

    func implementation(for algorithm: JWSAlgorithm) -> (any JWTAlgorithm)? { implementations[algorithm] }
}

/// A set of keys to verify (and, with private keys, sign) JWTs: a JWKS document, single JWKs,
/// PEM keys or HMAC secrets. Key sets are values; `+` joins two.
///
/// ```swift
/// let keys = try await JWTKeySet(jwks: Data(jwksJSON.utf8))
/// let signing = try await JWTKeySet.hmac(Secret(Array("…32 random bytes…".utf8)), id: "2026-12")
/// let token = try signing.sign(JWTClaims(["sub": "ada"]), expiresIn: .seconds(300))
/// ```
public struct JWTKeySet: Sendable, CustomStringConvertible {
    /// The keys, in the order given.
    public private(set) var keys: [JWTKey]
    /// Keys the JWKS held that cannot verify signatures here (`use: enc`, unknown `kty`, malformed), with why.
    public private(set) var skipped: [String]

    /// An empty set.
    public init() {
        keys = []
        skipped = []
    }

    /// The keys of a JWKS document (RFC 7517 §5). Keys for encryption (`use: enc`) and of types
    /// Nimbus cannot verify with are skipped (listed in ``skipped``), as every JOSE library does, so
    /// one new key type at the provider does not stop the others from working.
    /// - Throws: `invalidArgument` when the document is not a JSON object with a `keys` array.
    public init(jwks json: some Collection<UInt8>) async throws {
        guard let document = try? JSONValue.parse(Array(json)), let entries = document["keys"]?.arrayValue else {
            throw NimbusError(.invalidArgument, "a JWKS document is a JSON object with a \"keys\" array (RFC 7517 §5); this one is not")
        }
        self.init()
        for (index, entry) in entries.enumerated() {
            do { keys.append(try await Self.key(jwk: entry)) }
            catch { skipped.append("key \(index) (\(entry["kid"]?.stringValue ?? "no kid")): \(error)") }
        }
    }

    /// One JWK (public or private; RSA, EC P-256/384/521 or OKP Ed25519).
    /// - Throws: `invalidArgument` for a key Nimbus cannot use to sign or verify, saying why.
    public static func jwk(_ json: JSONValue) async throws -> JWTKeySet {
        var set = JWTKeySet()
        set.keys = [try await key(jwk: json)]
        return set
    }

    /// A shared HMAC secret for `algorithm` (HS256, HS384 or HS512). The secret should be at least
    /// as long as the hash (32, 48, 64 bytes), as RFC 7518 §3.2 requires.
    /// - Throws: `invalidArgument` for a non-HS algorithm or a secret shorter than the hash.
    public static func hmac(_ secret: Secret<[UInt8]>, id: String? = nil, algorithm: JWSAlgorithm = .hs256) async throws -> JWTKeySet {
        let bytes = secret.reveal()
        let digest: DigestAlgorithm, minimum: Int
        switch algorithm {
        case .hs256: (digest, minimum) = (.sha256, 32)
        case .hs384: (digest, minimum) = (.sha384, 48)
        case .hs512: (digest, minimum) = (.sha512, 64)
        default: throw NimbusError(.invalidArgument, "an HMAC secret signs HS256, HS384 or HS512, not \(algorithm.rawValue)")
        }
        guard bytes.count >= minimum else {
            throw NimbusError(.invalidArgument, "an \(algorithm.rawValue) secret must have at least \(minimum) bytes (RFC 7518 §3.2); this one has \(bytes.count)")
        }
        let implementation = try await Self.build { await $0.add(hmac: HMACKey(key: SymmetricKey(data: bytes)), digestAlgorithm: digest, kid: "k") }
        var set = JWTKeySet()
        set.keys = [JWTKey(id: id, algorithms: [algorithm], canSign: true, implementations: [algorithm: implementation])]
        return set
    }

    /// A PEM key: an RSA, EC or Ed25519 private key (signs and verifies) or public key / certificate
    /// (verifies). `algorithms` narrows what it may be used with (default: every algorithm of its type).
    /// - Throws: `invalidArgument` when the PEM is none of those.
    public static func pem(_ pem: String, id: String? = nil, algorithms: Set<JWSAlgorithm>? = nil) async throws -> JWTKeySet {
        var implementations: [JWSAlgorithm: any JWTAlgorithm] = [:]
        var canSign = false
        func allowed(_ family: [JWSAlgorithm]) -> [JWSAlgorithm] { family.filter { algorithms?.contains($0) ?? true } }
        if let key = try? Insecure.RSA.PrivateKey(pem: pem) {
            canSign = true
            for algorithm in allowed(rsaFamily) { implementations[algorithm] = try await rsa(key, algorithm) }
        } else if let key = (try? Insecure.RSA.PublicKey(pem: pem)) ?? (try? Insecure.RSA.PublicKey(certificatePEM: pem)) {
            for algorithm in allowed(rsaFamily) { implementations[algorithm] = try await rsa(key, algorithm) }
        } else if let key = try? ES256PrivateKey(pem: pem) {
            canSign = true
            if !allowed([.es256]).isEmpty { implementations[.es256] = try await build { await $0.add(ecdsa: key, kid: "k") } }
        } else if let key = (try? ES256PublicKey(pem: pem)) ?? (try? ES256PublicKey(certificate: pem)) {
            if !allowed([.es256]).isEmpty { implementations[.es256] = try await build { await $0.add(ecdsa: key, kid: "k") } }
        } else if let key = try? ES384PrivateKey(pem: pem) {
            canSign = true
            if !allowed([.es384]).isEmpty { implementations[.es384] = try await build { await $0.add(ecdsa: key, kid: "k") } }
        } else if let key = (try? ES384PublicKey(pem: pem)) ?? (try? ES384PublicKey(certificate: pem)) {
            if !allowed([.es384]).isEmpty { implementations[.es384] = try await build { await $0.add(ecdsa: key, kid: "k") } }
        } else if let key = try? ES512PrivateKey(pem: pem) {
            canSign = true
            if !allowed([.es512]).isEmpty { implementations[.es512] = try await build { await $0.add(ecdsa: key, kid: "k") } }
        } else if let key = (try? ES512PublicKey(pem: pem)) ?? (try? ES512PublicKey(certificate: pem)) {
            if !allowed([.es512]).isEmpty { implementations[.es512] = try await build { await $0.add(ecdsa: key, kid: "k") } }
        } else if let key = try? EdDSA.PrivateKey(pem: pem) {
            canSign = true
            if !allowed([.eddsa]).isEmpty { implementations[.eddsa] = try await build { await $0.add(eddsa: key, kid: "k") } }
        } else if let key = try? EdDSA.PublicKey(pem: pem) {
            if !allowed([.eddsa]).isEmpty { implementations[.eddsa] = try await build { await $0.add(eddsa: key, kid: "k") } }
        } else {
            throw NimbusError(.invalidArgument, "the PEM is not an RSA (2048 bits or more), EC P-256/384/521 or Ed25519 key or certificate")
        }
        guard !implementations.isEmpty else {
            throw NimbusError(.invalidArgument, "the PEM key cannot be used with any of \(algorithms!.map(\.rawValue).sorted())")
        }
        var set = JWTKeySet()
        set.keys = [JWTKey(id: id, algorithms: Set(implementations.keys), canSign: canSign, implementations: implementations)]
        return set
    }

    /// Both sets' keys (this one's first).
    public static func + (lhs: JWTKeySet, rhs: JWTKeySet) -> JWTKeySet {
        var joined = lhs
        joined.keys += rhs.keys
        joined.skipped += rhs.skipped
        return joined
    }

    /// The keys with id `kid`.
    public func keys(id kid: String) -> [JWTKey] { keys.filter { $0.id == kid } }

    public var description: String { "JWTKeySet(\(keys.map(\.description).joined(separator: ", ")))" }

    // MARK: - Building keys through jwt-kit

    static let rsaFamily: [JWSAlgorithm] = [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512]

    private static func build(_ add: (JWTKeyCollection) async throws -> Void) async throws -> any JWTAlgorithm {
        let collection = JWTKeyCollection()
        try await add(collection)
        return try await collection.getKey(for: "k")
    }

    private static func rsa(_ key: some RSAKey, _ algorithm: JWSAlgorithm) async throws -> any JWTAlgorithm {
        switch algorithm {
        case .rs256: try await build { await $0.add(rsa: key, digestAlgorithm: .sha256, kid: "k") }
        case .rs384: try await build { await $0.add(rsa: key, digestAlgorithm: .sha384, kid: "k") }
        case .rs512: try await build { await $0.add(rsa: key, digestAlgorithm: .sha512, kid: "k") }
        case .ps256: try await build { await $0.add(pss: key, digestAlgorithm: .sha256, kid: "k") }
        case .ps384: try await build { await $0.add(pss: key, digestAlgorithm: .sha384, kid: "k") }
        case .ps512: try await build { await $0.add(pss: key, digestAlgorithm: .sha512, kid: "k") }
        default: throw NimbusError(.invalidArgument, "an RSA key does not sign \(algorithm.rawValue)")
        }
    }

    /// One JWK: the algorithms its type allows (narrowed to its `alg`), each built by jwt-kit.
    static func key(jwk entry: JSONValue) async throws -> JWTKey {
        guard case .object(let fields) = entry, let type = fields["kty"]?.stringValue else {
            throw NimbusError(.invalidArgument, "a JWK is a JSON object with a \"kty\"")
        }
        if let use = fields["use"]?.stringValue, use != "sig" {
            throw NimbusError(.invalidArgument, "the key is for \"use\": \"\(use)\", not signatures")
        }
        let family: [JWSAlgorithm]
        switch type {
        case "RSA": family = rsaFamily
        case "EC":
            switch fields["crv"]?.stringValue {
            case "P-256": family = [.es256]
            case "P-384": family = [.es384]
            case "P-521": family = [.es512]
            default: throw NimbusError(.invalidArgument, "EC curve \(fields["crv"]?.stringValue ?? "(none)") is not P-256, P-384 or P-521")
            }
        case "OKP":
            guard fields["crv"]?.stringValue == "Ed25519" else {
                throw NimbusError(.invalidArgument, "OKP curve \(fields["crv"]?.stringValue ?? "(none)") is not Ed25519")
            }
            family = [.eddsa]
        case "oct":
            guard let secret = fields["k"]?.stringValue.flatMap(Base64URL.decode) else {
                throw NimbusError(.invalidArgument, "an oct JWK has its secret in \"k\" (base64url)")
            }
            let algorithm = fields["alg"]?.stringValue.flatMap(JWSAlgorithm.init(rawValue:)) ?? .hs256
            let single = try await hmac(Secret(secret), id: fields["kid"]?.stringValue, algorithm: algorithm)
            return single.keys[0]
        default: throw NimbusError(.invalidArgument, "key type \"\(type)\" is not RSA, EC, OKP or oct")
        }
        var algorithms = family
        if let declared = fields["alg"]?.stringValue {
            guard let algorithm = JWSAlgorithm(rawValue: declared), family.contains(algorithm) else {
                throw NimbusError(.invalidArgument, "a \(type) key cannot be used with its declared \"alg\": \"\(declared)\"")
            }
            algorithms = [algorithm]
        }
        var implementations: [JWSAlgorithm: any JWTAlgorithm] = [:]
        for algorithm in algorithms {
            var bound = fields
            bound["alg"] = .string(algorithm.rawValue)
            bound["kid"] = .string("k")
            bound["use"] = nil
            bound["key_ops"] = nil
            let jwk: JWK
            do { jwk = try JSONDecoder().decode(JWK.self, from: try JSONEncoder().encode(JSONValue.object(bound))) }
            catch { throw NimbusError(.invalidArgument, "the \(type) JWK is malformed: \(error)", underlying: error) }
            do {
                implementations[algorithm] = try await build { collection in try await collection.add(jwk: jwk) }
            } catch {
                throw NimbusError(.invalidArgument, "the \(type) JWK cannot be used for \(algorithm.rawValue): \(error)", underlying: error)
            }
        }
        return JWTKey(id: fields["kid"]?.stringValue, algorithms: Set(algorithms), canSign: fields["d"] != nil, implementations: implementations)
    }
}
