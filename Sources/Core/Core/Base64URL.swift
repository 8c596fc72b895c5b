import Foundation

/// Base64url without padding (RFC 4648 §5), as JWTs, JWKs and WebAuthn write bytes.
///
/// ```swift
/// let segment = Base64URL.encode(Array(#"{"alg":"ES256"}"#.utf8))   // eyJhbGciOiJFUzI1NiJ9
/// let bytes = Base64URL.decode(segment)                              // the JSON's bytes again
/// ```
public enum Base64URL {
    /// Encodes `bytes` with `-` and `_` and no `=` padding.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.last == "=" { text.removeLast() }
        return text
    }

    /// Decodes base64url, padded or not (plain base64's `+` and `/` are refused).
    /// - Returns: `nil` for text that is not base64url.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        guard !text.contains("+"), !text.contains("/") else { return nil }
        var base = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base.count % 4 != 0 { base += "=" }
        return Data(base64Encoded: base).map(Array.init)
    }
}
