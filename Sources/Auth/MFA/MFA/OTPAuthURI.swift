import Foundation
import NimbusCore

/// An `otpauth://` provisioning URI, the Key URI Format every authenticator app reads from a QR
/// code: `otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&period=30`.
///
/// ```swift
/// let secret = OTPAuthURI.newSecret()
/// let uri = OTPAuthURI(kind: .totp, secret: secret, account: "ada@example.com", issuer: "Example")
/// print(uri.uri)                               // show it as a QR code
/// let again = try OTPAuthURI(parsing: uri.uri) // what an app reads back
/// ```
public struct OTPAuthURI: Sendable {
    /// Time- or counter-based.
    public enum Kind: String, Sendable, Hashable { case totp, hotp }

    /// Time- or counter-based.
    public var kind: Kind
    /// The shared secret. Never logged.
    public var secret: Secret<[UInt8]>
    /// The account name shown in the app (an email, a user name).
    public var account: String
    /// The service's name, shown in the app and used to tell accounts apart.
    public var issuer: String?
    /// The HMAC hash.
    public var algorithm: OTPAlgorithm
    /// Digits per code.
    public var digits: Int
    /// The TOTP period, in seconds.
    public var period: Int
    /// The HOTP counter to start from.
    public var counter: UInt64

    /// Creates a URI's content.
    public init(kind: Kind = .totp, secret: Secret<[UInt8]>, account: String, issuer: String?, algorithm: OTPAlgorithm = .sha1,
                digits: Int = 6, period: Int = 30, counter: UInt64 = 0) {
        self.kind = kind
        self.secret = secret
        self.account = account
        self.issuer = issuer
        self.algorithm = algorithm
        self.digits = digits
        self.period = period
        self.counter = counter
    }

    /// A new random secret of `algorithm`'s recommended length, from the system's secure generator.
    public static func newSecret(for algorithm: OTPAlgorithm = .sha1) -> Secret<[UInt8]> {
        var generator = SystemRandomNumberGenerator()
        return Secret((0..<algorithm.recommendedSecretLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// The URI text. The label is `issuer:account`, percent-encoded; the issuer is repeated as a parameter.
    public var uri: String {
        var label = Self.escape(account)
        if let issuer { label = Self.escape(issuer) + ":" + label }
        var items = ["secret=" + Base32.encode(secret.reveal())]
        if let issuer { items.append("issuer=" + Self.escape(issuer)) }
        items.append("algorithm=" + algorithm.rawValue)
        items.append("digits=\(digits)")
        switch kind {
        case .totp: items.append("period=\(period)")
        case .hotp: items.append("counter=\(counter)")
        }
        return "otpauth://\(kind.rawValue)/\(label)?\(items.joined(separator: "&"))"
    }

    /// A generator for this URI's parameters.
    /// - Throws: `invalidArgument` as ``TOTP``'s init, or for an HOTP URI.
    public func totp() throws -> TOTP {
        guard kind == .totp else { throw NimbusError(.invalidArgument, "this is an HOTP URI, not TOTP") }
        return try TOTP(secret: secret, digits: digits, algorithm: algorithm, period: .seconds(period))
    }

    /// Reads a URI.
    /// - Throws: `invalidArgument` naming what is wrong: not `otpauth://totp|hotp/`, no or bad `secret`,
    ///   an unknown algorithm, digits outside 6–10, a period under 1 s, an HOTP URI without `counter`,
    ///   or an issuer in the label that differs from the `issuer` parameter.
    public init(parsing text: String) throws {
        guard let components = URLComponents(string: text), components.scheme?.lowercased() == "otpauth",
              let host = components.host?.lowercased(), let kind = Kind(rawValue: host) else {
            throw NimbusError(.invalidArgument, "a provisioning URI starts with otpauth://totp/ or otpauth://hotp/")
        }
        var label = components.percentEncodedPath
        if label.hasPrefix("/") { label.removeFirst() }
        let labelParts = label.split(separator: ":", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
        let labelIssuer = labelParts.count == 2 ? labelParts[0] : nil
        let account = (labelParts.last ?? "").trimmingCharacters(in: .whitespaces)
        var parameters: [String: String] = [:]
        for item in components.queryItems ?? [] where parameters[item.name.lowercased()] == nil {
            parameters[item.name.lowercased()] = item.value ?? ""
        }
        guard let encoded = parameters["secret"], let secret = Base32.decode(encoded), !secret.isEmpty else {
            throw NimbusError(.invalidArgument, "the URI has no secret, or its secret is not base32")
        }
        let issuer = parameters["issuer"] ?? labelIssuer
        if let labelIssuer, let parameter = parameters["issuer"], labelIssuer != parameter {
            throw NimbusError(.invalidArgument, "the label's issuer '\(labelIssuer)' differs from the issuer parameter '\(parameter)'")
        }
        let algorithm: OTPAlgorithm
        if let name = parameters["algorithm"] {
            guard let known = OTPAlgorithm(rawValue: name.uppercased()) else {
                throw NimbusError(.invalidArgument, "algorithm '\(name)' is not SHA1, SHA256 or SHA512")
            }
            algorithm = known
        } else { algorithm = .sha1 }
        let digits = try parameters["digits"].map { value -> Int in
            guard let digits = Int(value), (6...10).contains(digits) else { throw NimbusError(.invalidArgument, "digits '\(value)' is not 6 to 10") }
            return digits
        } ?? 6
        let period = try parameters["period"].map { value -> Int in
            guard let period = Int(value), period >= 1 else { throw NimbusError(.invalidArgument, "period '\(value)' is not a whole number of seconds") }
            return period
        } ?? 30
        var counter: UInt64 = 0
        if kind == .hotp {
            guard let value = parameters["counter"], let parsed = UInt64(value) else {
                throw NimbusError(.invalidArgument, "an HOTP URI needs a counter")
            }
            counter = parsed
        }
        self.init(kind: kind, secret: Secret(secret), account: account, issuer: issuer, algorithm: algorithm, digits: digits, period: period,
                  counter: counter)
    }

    static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~@")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

extension OTPAuthURI: CustomStringConvertible {
    /// The URI without its secret.
    public var description: String { "otpauth://\(kind.rawValue)/\(issuer.map { $0 + ":" } ?? "")\(account) (\(algorithm.rawValue), \(digits) digits)" }
}
