import Foundation
import NimbusCore

/// The JSON Web Signature algorithms Nimbus signs and verifies (RFC 7518 §3, RFC 8037).
///
/// `none` is not one of them: an unsigned token is always refused.
public enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable, Codable {
    case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
    case eddsa = "EdDSA"

    /// Whether the key is a shared secret (HMAC): such keys never verify an asymmetric algorithm, and the reverse.
    public var isSymmetric: Bool { [.hs256, .hs384, .hs512].contains(self) }

    /// Every asymmetric algorithm: the default allow-list of a verifier.
    public static let asymmetric: Set<JWSAlgorithm> = Set(allCases.filter { !$0.isSymmetric })
}

/// The claims of a verified (or to-be-signed) JWT: the registered ones typed, every other one as JSON.
///
/// ```swift
/// let claims = try await verifier.verify(token)
/// let user = claims.subject                        // "248289761001"
/// let scopes = claims.scopes                       // ["orders:read"]
/// let profile = try claims.decode(Profile.self)    // any claims of your own
/// ```
public struct JWTClaims: Sendable, Hashable, CustomStringConvertible {
    /// Every claim, as sent.
    public var values: [String: JSONValue]

    /// Claims from a JSON object.
    public init(_ values: [String: JSONValue] = [:]) { self.values = values }

    /// A claim by name.
    public subscript(name: String) -> JSONValue? {
        get { values[name] }
        set { values[name] = newValue }
    }

    /// `iss`: who issued the token.
    public var issuer: String? {
        get { values["iss"]?.stringValue }
        set { values["iss"] = newValue.map(JSONValue.string) }
    }
    /// `sub`: whom the token is about.
    public var subject: String? {
        get { values["sub"]?.stringValue }
        set { values["sub"] = newValue.map(JSONValue.string) }
    }
    /// `aud`: who the token is for (a single string on the wire is one audience).
    public var audience: [String] {
        get {
            if let one = values["aud"]?.stringValue { return [one] }
            return values["aud"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
        set { values["aud"] = newValue.count == 1 ? .string(newValue[0]) : newValue.isEmpty ? nil : .array(newValue.map(JSONValue.string)) }
    }
    /// `exp`: when the token stops being valid.
    public var expiresAt: Date? {
        get { date("exp") }
        set { setDate("exp", newValue) }
    }
    /// `nbf`: when the token starts being valid.
    public var notBefore: Date? {
        get { date("nbf") }
        set { setDate("nbf", newValue) }
    }
    /// `iat`: when the token was issued.
    public var issuedAt: Date? {
        get { date("iat") }
        set { setDate("iat", newValue) }
    }
    /// `jti`: the token's unique id.
    public var id: String? {
        get { values["jti"]?.stringValue }
        set { values["jti"] = newValue.map(JSONValue.string) }
    }
    /// The granted scopes: `scope` (space-separated, RFC 8693/9068) or `scp` (a list or a string, as Entra ID and Okta send it).
    public var scopes: Set<String> {
        var scopes = Set<String>()
        for name in ["scope", "scp"] {
            if let text = values[name]?.stringValue { scopes.formUnion(text.split(separator: " ").map(String.init)) }
            for item in values[name]?.arrayValue ?? [] { if let scope = item.stringValue { scopes.insert(scope) } }
        }
        return scopes
    }

    /// The claims decoded as your own `Decodable` type.
    /// - Throws: `invalidArgument` naming what did not match.
    public func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        do { return try decoder.decode(T.self, from: try JSONEncoder().encode(JSONValue.object(values))) }
        catch { throw NimbusError(.invalidArgument, "the token's claims do not decode as \(T.self): \(error)", underlying: error) }
    }

    /// Subject, issuer and expiry; never the whole token.
    public var description: String {
        "JWTClaims(sub: \(subject ?? "-"), iss: \(issuer ?? "-"), exp: \(expiresAt.map { "\(Int($0.timeIntervalSince1970))" } ?? "-"))"
    }

    private func date(_ name: String) -> Date? { values[name]?.numberValue.map { Date(timeIntervalSince1970: $0) } }
    private mutating func setDate(_ name: String, _ date: Date?) {
        values[name] = date.map { .number(Double(Int64($0.timeIntervalSince1970.rounded(.down)))) }
    }
}

/// Why a token was refused: the ``NimbusError/underlying`` of every `unauthenticated` error a
/// ``JWTVerifier`` throws, so a caller (or a test) can tell an expired token from a forged one.
public struct JWTRejection: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reasons a token is refused.
    public enum Reason: String, Sendable, Hashable {
        /// Not three base64url parts, a header or payload that is not a JSON object, or too large.
        case malformed
        /// `alg` is `none`, unknown, outside the verifier's allow-list, or not one the key may use.
        case algorithmNotAllowed
        /// No key has the token's `kid`, even after the key set was fetched again.
        case unknownKey
        /// The signature does not verify.
        case badSignature
        /// A `crit` header names an extension the verifier does not understand.
        case unsupportedCriticalHeader
        /// `typ` is not the expected one (an ID token offered as an access token, say).
        case wrongType
        /// `exp` is past (beyond the leeway), or missing when required.
        case expired
        /// `nbf` is in the future (beyond the leeway).
        case notYetValid
        /// `iat` is in the future, or older than the verifier's maximum age.
        case badIssuedAt
        /// `iss` is not an accepted issuer.
        case wrongIssuer
        /// No `aud` value is an accepted audience.
        case wrongAudience
        /// A claim the verifier requires is missing.
        case missingClaim
    }

    /// The reason.
    public var reason: Reason

    /// Creates a rejection.
    public init(_ reason: Reason) { self.reason = reason }

    public var description: String { "JWT rejected: \(reason.rawValue)" }
}
