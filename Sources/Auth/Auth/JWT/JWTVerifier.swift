import Foundation
internal import JWTKit
import NimbusCore

/// Where a ``JWTVerifier`` gets its keys: a fixed ``JWTKeySet``, or a ``RemoteJWKS`` that
/// fetches the issuer's key set and fetches it again when a token names a key it does not have.
public protocol JWTKeyProvider: Sendable {
    /// The keys to verify with now.
    func currentKeys() async throws -> JWTKeySet
    /// The keys after a token named `kid`, which ``currentKeys()`` lacks: fetched again if the
    /// provider can and may (it limits how often), else the same keys.
    func keys(missing kid: String) async throws -> JWTKeySet
}

extension JWTKeySet: JWTKeyProvider {
    public func currentKeys() async throws -> JWTKeySet { self }
    public func keys(missing kid: String) async throws -> JWTKeySet { self }
}

/// A JWT that passed every check: its header and claims.
public struct VerifiedJWT: Sendable, CustomStringConvertible {
    /// The protected header (`alg`, `kid`, `typ`, …).
    public var header: [String: JSONValue]
    /// The claims.
    public var claims: JWTClaims
    /// The algorithm that verified it.
    public var algorithm: JWSAlgorithm
    /// The id of the key that verified it.
    public var keyID: String?

    public var description: String { "VerifiedJWT(\(algorithm.rawValue), kid: \(keyID ?? "-"), \(claims))" }
}

/// Verifies compact JWS tokens (RFC 7515/7519) the way RFC 8725 (JWT best practices) asks:
/// the algorithm comes from an allow-list and must be one the key itself allows (no `none`, no
/// HS/RS confusion), `crit` extensions must be understood, `exp`/`nbf`/`iat` are checked with a
/// leeway, and `iss`/`aud`/`typ` against what this verifier expects.
///
/// ```swift
/// let verifier = JWTVerifier(
///     keys: RemoteJWKS(url: "https://accounts.example.com/.well-known/jwks.json"),
///     configuration: .init(issuers: ["https://accounts.example.com"], audiences: ["orders-api"]))
/// let token = try await verifier.verify(bearer)
/// print(token.claims.subject ?? "")
/// ```
///
/// Every refusal is a `NimbusError` with code `unauthenticated` whose `underlying` is a
/// ``JWTRejection`` naming the reason; messages never contain the token.
public struct JWTVerifier: Sendable {
    /// What a token must satisfy.
    public struct Configuration: Sendable {
        /// Accepted `iss` values; empty accepts any issuer (only sensible with keys of one issuer).
        public var issuers: Set<String>
        /// Accepted audiences: at least one `aud` value must be among them; empty skips the check.
        public var audiences: Set<String>
        /// Algorithms a token may use (each key narrows this further to its own type).
        public var algorithms: Set<JWSAlgorithm>
        /// Clock skew tolerated on `exp`, `nbf` and `iat`.
        public var leeway: Duration
        /// Whether a token without `exp` is refused.
        public var requireExpiration: Bool
        /// If set, tokens whose `iat` is older than this are refused (and `iat` is required).
        public var maxAge: Duration?
        /// Claims that must be present.
        public var requiredClaims: Set<String>
        /// If set, the `typ` header must be this media type (`at+jwt` for RFC 9068 access tokens);
        /// compared without case and with an optional `application/` prefix.
        public var expectedType: String?
        /// Header parameters this application understands, so a `crit` list may name them.
        public var understoodCriticalHeaders: Set<String>
        /// Longest token accepted, in bytes.
        public var maxTokenSize: Int

        /// Creates a configuration; the defaults accept asymmetric algorithms only, with a minute of leeway.
        public init(issuers: Set<String> = [], audiences: Set<String> = [], algorithms: Set<JWSAlgorithm> = JWSAlgorithm.asymmetric,
                    leeway: Duration = .seconds(60), requireExpiration: Bool = true, maxAge: Duration? = nil,
                    requiredClaims: Set<String> = [], expectedType: String? = nil, understoodCriticalHeaders: Set<String> = [],
                    maxTokenSize: Int = 16 * 1024) {
            self.issuers = issuers
            self.audiences = audiences
            self.algorithms = algorithms
            self.leeway = leeway
            self.requireExpiration = requireExpiration
            self.maxAge = maxAge
            self.requiredClaims = requiredClaims
            self.expectedType = expectedType
            self.understoodCriticalHeaders = understoodCriticalHeaders
            self.maxTokenSize = maxTokenSize
        }
    }

    /// The checks.
    public let configuration: Configuration
    /// The keys.
    public let keys: any JWTKeyProvider
    private let now: @Sendable () -> Date

    /// A verifier with `keys` and `configuration`; `now` is the clock (for tests).
    public init(keys: any JWTKeyProvider, configuration: Configuration = .init(), now: @escaping @Sendable () -> Date = { Date() }) {
        self.keys = keys
        self.configuration = configuration
        self.now = now
    }

    /// Verifies `token` and returns its header and claims.
    /// - Throws: `unauthenticated` with a ``JWTRejection`` for any token that fails a check;
    ///   the key provider's errors (`unavailable` when the JWKS cannot be fetched and none is cached).
    public func verify(_ token: String) async throws -> VerifiedJWT {
        guard token.utf8.count <= configuration.maxTokenSize else {
            throw Self.reject(.malformed, "the token is \(token.utf8.count) bytes, over the limit of \(configuration.maxTokenSize)")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw Self.reject(.malformed, parts.count == 5 ? "the token is an encrypted JWE; only signed JWS tokens are accepted"
                                                            : "a JWS has three base64url parts separated by dots; this has \(parts.count)")
        }
        guard let headerBytes = Base64URL.decode(parts[0]), case .object(let header)? = try? JSONValue.parse(headerBytes) else {
            throw Self.reject(.malformed, "the JOSE header is not base64url-encoded JSON object")
        }
        let algorithm = try checkedAlgorithm(header)
        try checkCritical(header)
        try checkType(header)
        guard let signature = Base64URL.decode(parts[2]) else { throw Self.reject(.malformed, "the signature is not base64url") }
        let kid = header["kid"]?.stringValue
        if header["kid"] != nil, kid == nil { throw Self.reject(.malformed, "the \"kid\" header is not a string") }
        let key = try await key(kid: kid, algorithm: algorithm)
        guard key.algorithms.contains(algorithm), let implementation = key.implementation(for: algorithm) else {
            throw Self.reject(.algorithmNotAllowed, "key \(kid ?? "(no kid)") is not allowed to verify \(algorithm.rawValue) "
                              + "(it allows \(key.algorithms.map(\.rawValue).sorted().joined(separator: ", "))); algorithm confusion refused")
        }
        let signingInput = token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count)
        let valid = (try? implementation.verify(signature, signs: Array(signingInput))) ?? false
        guard valid else { throw Self.reject(.badSignature, "the signature does not verify with key \(kid ?? "(no kid)")") }
        guard let payloadBytes = Base64URL.decode(parts[1]), case .object(let values)? = try? JSONValue.parse(payloadBytes) else {
            throw Self.reject(.malformed, "the payload is not base64url-encoded JSON object")
        }
        let claims = JWTClaims(values)
        try checkClaims(claims)
        return VerifiedJWT(header: header, claims: claims, algorithm: algorithm, keyID: kid)
    }

    /// Verifies a token and checks it grants every one of `scopes`.
    /// - Throws: as ``verify(_:)``; `permissionDenied` naming the missing scopes.
    public func verify(_ token: String, requiring scopes: Set<String>) async throws -> VerifiedJWT {
        let verified = try await verify(token)
        let missing = scopes.subtracting(verified.claims.scopes)
        guard missing.isEmpty else {
            throw NimbusError(.permissionDenied, "the token lacks the scope\(missing.count == 1 ? "" : "s") \(missing.sorted().joined(separator: ", "))")
        }
        return verified
    }

    // MARK: - Checks

    private func checkedAlgorithm(_ header: [String: JSONValue]) throws -> JWSAlgorithm {
        guard let name = header["alg"]?.stringValue else { throw Self.reject(.malformed, "the header has no \"alg\"") }
        guard name.lowercased() != "none" else { throw Self.reject(.algorithmNotAllowed, "unsigned tokens (\"alg\": \"\(name)\") are never accepted") }
        guard let algorithm = JWSAlgorithm(rawValue: name) else {
            throw Self.reject(.algorithmNotAllowed, "\"alg\": \"\(name.prefix(20))\" is not a supported signature algorithm")
        }
        guard configuration.algorithms.contains(algorithm) else {
            throw Self.reject(.algorithmNotAllowed, "\(name) is not among this verifier's algorithms "
                              + "(\(configuration.algorithms.map(\.rawValue).sorted().joined(separator: ", ")))")
        }
        return algorithm
    }

    private func checkCritical(_ header: [String: JSONValue]) throws {
        guard let critical = header["crit"] else { return }
        guard let names = critical.arrayValue?.compactMap(\.stringValue), names.count == critical.arrayValue?.count, !names.isEmpty else {
            throw Self.reject(.malformed, "\"crit\" must be a non-empty array of header names (RFC 7515 §4.1.11)")
        }
        for name in names {
            guard configuration.understoodCriticalHeaders.contains(name), header[name] != nil else {
                throw Self.reject(.unsupportedCriticalHeader, "the token marks \"\(name.prefix(40))\" critical, and this verifier does not understand it")
            }
        }
    }

    private func checkType(_ header: [String: JSONValue]) throws {
        guard let expected = configuration.expectedType else { return }
        func normalized(_ type: String) -> String {
            let lower = type.lowercased()
            return lower.hasPrefix("application/") ? String(lower.dropFirst("application/".count)) : lower
        }
        guard let type = header["typ"]?.stringValue, normalized(type) == normalized(expected) else {
            throw Self.reject(.wrongType, "the token's \"typ\" is \(header["typ"]?.stringValue.map { "\"\($0.prefix(40))\"" } ?? "missing"), not \"\(expected)\"")
        }
    }

    private func key(kid: String?, algorithm: JWSAlgorithm) async throws -> JWTKey {
        if let kid {
            func pick(_ set: JWTKeySet) -> JWTKey? {
                let named = set.keys(id: kid)
                return named.first { $0.algorithms.contains(algorithm) } ?? named.first
            }
            if let key = pick(try await keys.currentKeys()) { return key }
            // A key id not seen yet: the issuer may have rotated its keys.
            if let key = pick(try await keys.keys(missing: kid)) { return key }
            throw Self.reject(.unknownKey, "no key has the id \"\(kid.prefix(64))\"")
        }
        let candidates = try await keys.currentKeys().keys.filter { $0.algorithms.contains(algorithm) }
        guard candidates.count == 1 else {
            throw Self.reject(candidates.isEmpty ? .algorithmNotAllowed : .unknownKey,
                              candidates.isEmpty ? "no key may verify \(algorithm.rawValue)"
                                                 : "the token has no \"kid\" and \(candidates.count) keys could verify it; the issuer must name its key")
        }
        return candidates[0]
    }

    private func checkClaims(_ claims: JWTClaims) throws {
        let now = now(), leeway = configuration.leeway.nimbusSeconds
        for name in ["exp", "nbf", "iat"] where claims[name] != nil && claims[name]?.numberValue == nil {
            throw Self.reject(.malformed, "\"\(name)\" is not a number of seconds")
        }
        if let expires = claims.expiresAt {
            guard now.timeIntervalSince(expires) <= leeway else {
                throw Self.reject(.expired, "the token expired at \(Int(expires.timeIntervalSince1970)) (now \(Int(now.timeIntervalSince1970)))")
            }
        } else if configuration.requireExpiration {
            throw Self.reject(.expired, "the token has no \"exp\", and this verifier requires one")
        }
        if let notBefore = claims.notBefore, notBefore.timeIntervalSince(now) > leeway {
            throw Self.reject(.notYetValid, "the token is not valid before \(Int(notBefore.timeIntervalSince1970)) (now \(Int(now.timeIntervalSince1970)))")
        }
        if let issued = claims.issuedAt, issued.timeIntervalSince(now) > leeway {
            throw Self.reject(.badIssuedAt, "the token claims to be issued in the future (\(Int(issued.timeIntervalSince1970)))")
        }
        if let maxAge = configuration.maxAge {
            guard let issued = claims.issuedAt else { throw Self.reject(.missingClaim, "the token has no \"iat\", and this verifier limits its age") }
            guard now.timeIntervalSince(issued) <= maxAge.nimbusSeconds + leeway else {
                throw Self.reject(.badIssuedAt, "the token was issued at \(Int(issued.timeIntervalSince1970)), longer ago than \(maxAge)")
            }
        }
        if !configuration.issuers.isEmpty {
            guard let issuer = claims.issuer, configuration.issuers.contains(issuer) else {
                throw Self.reject(.wrongIssuer, "the issuer \(claims.issuer.map { "\"\($0.prefix(100))\"" } ?? "(none)") is not accepted")
            }
        }
        if !configuration.audiences.isEmpty {
            guard !configuration.audiences.isDisjoint(with: claims.audience) else {
                throw Self.reject(.wrongAudience, "the token is for \(claims.audience.isEmpty ? "no audience" : claims.audience.prefix(5).joined(separator: ", ")), "
                                  + "not \(configuration.audiences.sorted().joined(separator: " or "))")
            }
        }
        for name in configuration.requiredClaims.sorted() where claims[name] == nil || claims[name] == .null {
            throw Self.reject(.missingClaim, "the token has no \"\(name)\" claim")
        }
    }

    static func reject(_ reason: JWTRejection.Reason, _ message: String) -> NimbusError {
        NimbusError(.unauthenticated, "JWT refused: \(message)", underlying: JWTRejection(reason))
    }
}
