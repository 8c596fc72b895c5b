import Foundation
import NimbusCore

extension JWTKeySet {
    /// Signs `claims` as a compact JWS with a key that can sign (the one with id `keyID`, or the
    /// first signing key), with `algorithm` (default: the key's first algorithm in a fixed order).
    /// `expiresIn` sets `iat` and `exp` from `now` when the claims have no `exp` yet.
    ///
    /// ```swift
    /// var claims = JWTClaims(["scope": "orders:read"])
    /// claims.subject = "ada"
    /// claims.issuer = "https://auth.example.com"
    /// let token = try keys.sign(claims, expiresIn: .seconds(900))
    /// ```
    /// - Throws: `failedPrecondition` when no key can sign with that id and algorithm.
    public func sign(_ claims: JWTClaims, keyID: String? = nil, algorithm: JWSAlgorithm? = nil, type: String? = "JWT",
                     headers: [String: JSONValue] = [:], expiresIn: Duration? = nil, now: Date = Date()) throws -> String {
        let candidates = keys.filter { $0.canSign && (keyID == nil || $0.id == keyID) && (algorithm.map($0.algorithms.contains) ?? true) }
        guard let key = candidates.first else {
            throw NimbusError(.failedPrecondition, "no signing key\(keyID.map { " with id '\($0)'" } ?? "")\(algorithm.map { " for \($0.rawValue)" } ?? "") "
                              + "in \(self); signing needs a private key or an HMAC secret")
        }
        let chosen = algorithm ?? JWSAlgorithm.allCases.first { key.algorithms.contains($0) }!
        var claims = claims
        if let expiresIn, claims.expiresAt == nil {
            claims.issuedAt = claims.issuedAt ?? now
            claims.expiresAt = now.addingTimeInterval(expiresIn.nimbusSeconds)
        }
        var header = headers
        header["alg"] = .string(chosen.rawValue)
        if let type { header["typ"] = .string(type) }
        if let id = key.id { header["kid"] = .string(id) }
        let signingInput = Base64URL.encode(Array(JSONValue.object(header).description.utf8)) + "."
            + Base64URL.encode(Array(JSONValue.object(claims.values).description.utf8))
        let signature = try key.implementation(for: chosen)!.sign(Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }
}
