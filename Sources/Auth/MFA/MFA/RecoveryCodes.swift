import Crypto
import Foundation
import NimbusCore

/// Single-use recovery codes for when the authenticator is lost: shown to the user once, stored
/// only as salted SHA-256 hashes, redeemed once each.
///
/// Codes are 10 characters from a 31-letter alphabet without look-alikes (49 bits each), shown in
/// two groups (`k7m2q-x9vtr`); typing is forgiving about case, spaces and hyphens.
///
/// ```swift
/// let (codes, stored) = RecoveryCodes.generate()     // show `codes` once; keep `stored`
/// if let index = RecoveryCodes.match("K7M2Q X9VTR", in: stored) {
///     stored.remove(at: index)                       // each code works once
/// }
/// ```
public enum RecoveryCodes {
    /// One stored code: a random salt and the SHA-256 of salt + normalized code. Codable for storage.
    public struct Stored: Sendable, Hashable, Codable {
        /// The salt (16 random bytes), base64url.
        public var salt: String
        /// SHA-256(salt ‖ code), base64url.
        public var hash: String
    }

    /// `count` new codes (10 by default) and what to store for them.
    public static func generate(count: Int = 10) -> (codes: [String], stored: [Stored]) {
        var generator = SystemRandomNumberGenerator()
        let letters = Array("abcdefghjkmnpqrstuvwxyz23456789".utf8)   // no 0/o, 1/l/i
        var codes: [String] = [], stored: [Stored] = []
        for _ in 0..<max(1, count) {
            let raw = (0..<10).map { _ in letters[Int.random(in: 0..<letters.count, using: &generator)] }
            let code = String(decoding: raw[0..<5], as: UTF8.self) + "-" + String(decoding: raw[5..<10], as: UTF8.self)
            let salt = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            codes.append(code)
            stored.append(Stored(salt: Base64URL.encode(salt), hash: Base64URL.encode(hash(normalized(code), salt: salt))))
        }
        return (codes, stored)
    }

    /// The index of the stored code `code` matches, or `nil`. Every stored code is checked, so the
    /// time taken does not tell which one matched or how close a guess came.
    public static func match(_ code: String, in stored: [Stored]) -> Int? {
        let typed = normalized(code)
        var found: Int?
        for (index, entry) in stored.enumerated() {
            guard let salt = Base64URL.decode(entry.salt), let expected = Base64URL.decode(entry.hash) else { continue }
            if ConstantTime.equals(expected, hash(typed, salt: salt)), found == nil { found = index }
        }
        return found
    }

    static func normalized(_ code: String) -> String {
        String(code.lowercased().filter { $0 != " " && $0 != "-" })
    }

    static func hash(_ code: String, salt: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: salt + Array(code.utf8)))
    }
}
