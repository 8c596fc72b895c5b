/// Header names compare without regard to ASCII case (HTTP, MIME, SMTP): one helper for every
/// place that looks a header up, so none lower-cases copies or forgets to.
///
/// ```swift
/// let headers = [("Content-Type", "application/json"), ("Stripe-Signature", "t=1,v1=…")]
/// headers.header("stripe-signature")                 // "t=1,v1=…"
/// ["X-Twilio-Signature": "…"].header("x-twilio-signature")
/// "Content-Type".equalsIgnoringASCIICase("content-type")   // true
/// ```
extension StringProtocol {
    /// Whether the two are equal when ASCII letters are compared without regard to case (other
    /// bytes must be equal).
    public func equalsIgnoringASCIICase(_ other: some StringProtocol) -> Bool {
        let left = utf8, right = other.utf8
        guard left.count == right.count else { return false }
        for (a, b) in zip(left, right) where a != b {
            let lowered = a | 0x20
            guard lowered == b | 0x20, lowered >= UInt8(ascii: "a"), lowered <= UInt8(ascii: "z") else { return false }
        }
        return true
    }
}

extension Array where Element == (String, String) {
    /// The value of the first header named `name`, whatever the case of the names.
    public func header(_ name: String) -> String? {
        first { $0.0.equalsIgnoringASCIICase(name) }?.1
    }
}

extension Dictionary where Key == String, Value == String {
    /// The value of the header named `name`, whatever the case of the names (webhook deliveries
    /// hand headers over as a dictionary).
    public func header(_ name: String) -> String? {
        if let exact = self[name] { return exact }
        return first { $0.key.equalsIgnoringASCIICase(name) }?.value
    }
}
