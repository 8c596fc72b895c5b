import Crypto
import Foundation
import NimbusCore

/// Verifies webhook signatures: HMAC over the signed payload, compared in constant time,
/// against one or more secrets (rotation) and one or more candidate signatures, with a
/// timestamp tolerance against replays.
///
/// Vendors differ only in what they sign and how they ship it; an adapter builds the signed
/// payload (Stripe: `"\(t).\(body)"`) and the candidates (every `v1=` value) and calls this.
///
/// ```swift
/// try WebhookSignature.verify(
///     payload: Data("\(timestamp).".utf8) + body, candidates: v1Signatures,
///     secrets: [Secret(current), Secret(previous)], algorithm: .sha256, encoding: .hex,
///     timestamp: Date(timeIntervalSince1970: Double(timestamp)), tolerance: .seconds(300))
/// ```
public enum WebhookSignature {
    /// The HMAC hash.
    public enum Algorithm: Sendable { case sha1, sha256, sha512 }
    /// How the signature is written.
    public enum Encoding: Sendable { case hex, base64 }

    /// The signature of `payload` with `secret`.
    public static func sign(payload: some DataProtocol, secret: Secret<String>, algorithm: Algorithm = .sha256, encoding: Encoding = .hex) -> String {
        let mac = hmac(payload: payload, key: Array(secret.reveal().utf8), algorithm: algorithm)
        switch encoding {
        case .hex: return mac.hexString
        case .base64: return Data(mac).base64EncodedString()
        }
    }

    /// A vendor's timestamp header in Unix seconds (`1700000000`, or `1700000000.123`), read without
    /// ever trapping: anything but 1 to 11 digits with an optional fraction (`nan`, `1e300`, a sign,
    /// `-9223372036854775808`) is refused before the signature is looked at.
    /// - Throws: `unauthenticated` naming the header.
    public static func timestamp(_ text: String, header: String) throws -> Date {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts.first ?? "", fraction = parts.count > 1 ? parts[1] : "0"
        guard (1...11).contains(whole.count), (1...9).contains(fraction.count),
              whole.allSatisfy({ $0.isASCII && $0.isNumber }), fraction.allSatisfy({ $0.isASCII && $0.isNumber }),
              let seconds = Double("\(whole).\(fraction)") else {
            throw NimbusError(.unauthenticated, "the \(header) header '\(text.prefix(40))' is not a Unix time in seconds")
        }
        return Date(timeIntervalSince1970: seconds)
    }

    /// Checks that a signed timestamp is within `tolerance` of `now` — for every vendor's scheme
    /// (HMAC here, ECDSA for SendGrid, Ed25519 for Discord).
    /// - Throws: `unauthenticated` naming `source` and the age (replayed or clock skew).
    public static func checkAge(_ timestamp: Date, tolerance: Duration, now: Date = Date(), source: String = "webhook") throws {
        let age = abs(now.timeIntervalSince(timestamp))
        guard age.isFinite, age <= tolerance.nimbusSeconds else {
            throw NimbusError(.unauthenticated, "\(source) timestamp is \(describeAge(age)) away from now, over the \(tolerance.nimbusFormatted) tolerance (replayed or clock skew)")
        }
    }

    /// `42s`, or `very far` for ages no clock skew explains (never an integer conversion that could trap).
    static func describeAge(_ age: Double) -> String {
        age.isFinite && age < 1e12 ? "\(Int(age))s" : "very far"
    }

    /// Checks that one of `candidates` is the signature of `payload` under one of `secrets`, and that
    /// `timestamp` (when the vendor signs one) is within `tolerance` of `now`.
    /// - Throws: `unauthenticated`, saying whether the signature or the time was wrong (never which secret).
    public static func verify(
        payload: some DataProtocol, candidates: [String], secrets: [Secret<String>],
        algorithm: Algorithm = .sha256, encoding: Encoding = .hex,
        timestamp: Date? = nil, tolerance: Duration = .seconds(300), now: Date = Date()
    ) throws {
        guard !secrets.isEmpty else { throw NimbusError(.failedPrecondition, "no webhook secret configured; set the endpoint's signing secret") }
        guard !candidates.isEmpty else { throw NimbusError(.unauthenticated, "webhook request carries no signature") }
        if let timestamp { try checkAge(timestamp, tolerance: tolerance, now: now) }
        let decoded = candidates.compactMap { decode($0, encoding) }
        var matched = false
        for secret in secrets {
            let expected = hmac(payload: payload, key: Array(secret.reveal().utf8), algorithm: algorithm)
            for candidate in decoded {
                // Evaluate every pair, so the time taken does not tell which one matched.
                matched = ConstantTime.equals(expected, candidate) || matched
            }
        }
        guard matched else { throw NimbusError(.unauthenticated, "webhook signature does not match any configured secret") }
    }

    static func hmac(payload: some DataProtocol, key: [UInt8], algorithm: Algorithm) -> [UInt8] {
        let key = SymmetricKey(data: key)
        switch algorithm {
        case .sha1: return Array(HMAC<Insecure.SHA1>.authenticationCode(for: payload, using: key))
        case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: payload, using: key))
        case .sha512: return Array(HMAC<SHA512>.authenticationCode(for: payload, using: key))
        }
    }

    static func decode(_ text: String, _ encoding: Encoding) -> [UInt8]? {
        switch encoding {
        case .base64: return Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)).map(Array.init)
        case .hex:
            let chars = Array(text.trimmingCharacters(in: .whitespaces).utf8)
            guard chars.count % 2 == 0 else { return nil }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(chars.count / 2)
            var index = 0
            while index < chars.count {
                guard let high = hexValue(chars[index]), let low = hexValue(chars[index + 1]) else { return nil }
                bytes.append(high << 4 | low)
                index += 2
            }
            return bytes
        }
    }

    private static func hexValue(_ char: UInt8) -> UInt8? {
        switch char {
        case 48...57: char - 48
        case 65...70: char - 55
        case 97...102: char - 87
        default: nil
        }
    }
}
