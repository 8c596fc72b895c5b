import Crypto
import Foundation
import NimbusCore

/// The HMAC hash of a one-time password (RFC 6238 §1.2 allows SHA-1, SHA-256 and SHA-512).
public enum OTPAlgorithm: String, Sendable, Hashable, CaseIterable, Codable {
    case sha1 = "SHA1", sha256 = "SHA256", sha512 = "SHA512"

    /// The secret length RFC 4226/6238 recommend: the hash's output size.
    public var recommendedSecretLength: Int {
        switch self {
        case .sha1: 20
        case .sha256: 32
        case .sha512: 64
        }
    }
}

/// HOTP (RFC 4226): a code from a shared secret and a counter.
///
/// ```swift
/// let hotp = try HOTP(secret: Secret(Array("12345678901234567890".utf8)))
/// hotp.code(counter: 0)   // "755224" (RFC 4226 appendix D)
/// ```
public struct HOTP: Sendable {
    /// The shared secret. Never logged.
    public let secret: Secret<[UInt8]>
    /// Digits per code (6 to 10).
    public let digits: Int
    /// The HMAC hash.
    public let algorithm: OTPAlgorithm

    /// Creates a generator.
    /// - Throws: `invalidArgument` for fewer than 6 or more than 10 digits, or a secret under 16 bytes
    ///   (RFC 4226 §4 requires 128 bits at least).
    public init(secret: Secret<[UInt8]>, digits: Int = 6, algorithm: OTPAlgorithm = .sha1) throws {
        guard (6...10).contains(digits) else { throw NimbusError(.invalidArgument, "a one-time code has 6 to 10 digits, not \(digits)") }
        guard secret.reveal().count >= 16 else {
            throw NimbusError(.invalidArgument, "a one-time password secret needs at least 16 bytes (RFC 4226 §4); this one has \(secret.reveal().count)")
        }
        self.secret = secret
        self.digits = digits
        self.algorithm = algorithm
    }

    /// The code for `counter`, zero-padded to ``digits``.
    public func code(counter: UInt64) -> String {
        let message = withUnsafeBytes(of: counter.bigEndian) { Array($0) }
        let key = SymmetricKey(data: secret.reveal())
        let mac: [UInt8] = switch algorithm {
        case .sha1: Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: key))
        case .sha256: Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
        case .sha512: Array(HMAC<SHA512>.authenticationCode(for: message, using: key))
        }
        // Dynamic truncation (RFC 4226 §5.3).
        let offset = Int(mac[mac.count - 1] & 0x0F)
        let binary = (UInt64(mac[offset] & 0x7F) << 24) | (UInt64(mac[offset + 1]) << 16) | (UInt64(mac[offset + 2]) << 8) | UInt64(mac[offset + 3])
        var modulus: UInt64 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: digits - value.count) + value
    }
}

/// TOTP (RFC 6238): HOTP with the counter taken from the time.
///
/// ```swift
/// let totp = try TOTP(secret: Secret(Base32.decode("JBSWY3DPEHPK3PXP")!))
/// let code = totp.code(at: Date())
/// ```
public struct TOTP: Sendable {
    /// The HOTP underneath (secret, digits, algorithm).
    public let hotp: HOTP
    /// The time step (30 s by default).
    public let period: Duration
    /// The Unix time the steps count from (0 by default).
    public let epoch: Date

    /// Creates a generator.
    /// - Throws: `invalidArgument` as ``HOTP``'s init, or for a period under a second.
    public init(secret: Secret<[UInt8]>, digits: Int = 6, algorithm: OTPAlgorithm = .sha1, period: Duration = .seconds(30),
                epoch: Date = Date(timeIntervalSince1970: 0)) throws {
        guard period >= .seconds(1) else { throw NimbusError(.invalidArgument, "a TOTP period is at least one second, not \(period)") }
        hotp = try HOTP(secret: secret, digits: digits, algorithm: algorithm)
        self.period = period
        self.epoch = epoch
    }

    /// The time step that `date` falls in.
    public func step(at date: Date) -> UInt64 {
        let elapsed = date.timeIntervalSince(epoch)
        return elapsed <= 0 ? 0 : UInt64(elapsed / period.nimbusSeconds)
    }

    /// The code valid at `date`.
    public func code(at date: Date) -> String { hotp.code(counter: step(at: date)) }

    /// The code of time step `step`.
    public func code(step: UInt64) -> String { hotp.code(counter: step) }

    /// When the step `date` falls in ends (for "the code changes in 12 s").
    public func stepEnds(after date: Date) -> Date {
        epoch.addingTimeInterval(Double(step(at: date) + 1) * period.nimbusSeconds)
    }
}
