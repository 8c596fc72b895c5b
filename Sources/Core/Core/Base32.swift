/// Base32 (RFC 4648 §6), as TOTP secrets and `otpauth://` URIs write bytes.
///
/// ```swift
/// let text = Base32.encode(Array("12345678901234567890".utf8))   // GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
/// let bytes = Base32.decode("gezd gnbv gy3t qojq")              // spaces, lower case, padding: all accepted
/// ```
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// Encodes `bytes` in upper case, with `=` padding only if `padded`.
    public static func encode(_ bytes: some Sequence<UInt8>, padded: Bool = false) -> String {
        var output: [UInt8] = []
        var buffer: UInt64 = 0, bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt64(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[Int((buffer >> UInt64(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[Int((buffer << UInt64(5 - bits)) & 31)]) }
        if padded { while output.count % 8 != 0 { output.append(UInt8(ascii: "=")) } }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes base32 in either case, ignoring spaces, hyphens and trailing `=` padding (as
    /// authenticator apps show secrets in groups).
    /// - Returns: `nil` for any other character, or for trailing bits that are not zero
    ///   (a secret mistyped by one character is refused, not silently changed).
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer: UInt64 = 0, bits = 0
        var padding = false
        for character in text.utf8 {
            switch character {
            case UInt8(ascii: " "), UInt8(ascii: "-"): continue
            case UInt8(ascii: "="): padding = true; continue
            default: break
            }
            guard !padding else { return nil }     // data after padding
            let value: UInt8
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = character - UInt8(ascii: "a")
            case UInt8(ascii: "2")...UInt8(ascii: "7"): value = character - UInt8(ascii: "2") + 26
            default: return nil
            }
            buffer = (buffer << 5) | UInt64(value)
            bits += 5
            if bits >= 8 {
                output.append(UInt8((buffer >> UInt64(bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        guard bits < 5, buffer & ((1 << UInt64(bits)) - 1) == 0 else { return nil }
        return output
    }
}
