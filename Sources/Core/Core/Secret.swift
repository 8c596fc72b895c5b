/// A value that must never reach a log, a description or a dump.
///
/// `description`, `debugDescription`, string interpolation, `dump` and swift-log metadata all
/// print `<redacted>`. Read the value with ``reveal()`` at the one place it is sent.
///
/// ```swift
/// let key = Secret("sk-live-...")
/// logger.info("using \(key)")             // using <redacted>
/// request.headers.add(name: "Authorization", value: "Bearer \(key.reveal())")
/// ```
public struct Secret<Value: Sendable>: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let value: Value

    /// Wraps a value.
    public init(_ value: Value) { self.value = value }

    /// The wrapped value. Call it only where the value leaves the process for its intended peer.
    public func reveal() -> Value { value }

    /// Transforms the wrapped value without revealing it to the caller's logs.
    public func map<T: Sendable>(_ transform: (Value) throws -> T) rethrows -> Secret<T> {
        Secret<T>(try transform(value))
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "Secret(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

extension Secret: Equatable where Value: Equatable {}
extension Secret: Hashable where Value: Hashable {}

extension Secret: Decodable where Value: Decodable {
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(Value.self))
    }
}

extension Secret: ExpressibleByStringLiteral, ExpressibleByUnicodeScalarLiteral, ExpressibleByExtendedGraphemeClusterLiteral where Value == String {
    public init(stringLiteral value: String) { self.init(value) }
}

/// Comparison whose time depends only on the inputs' lengths, never on where they differ: for
/// secrets, tokens and signatures an attacker may probe.
public enum ConstantTime {
    /// Whether two byte strings are equal.
    public static func equals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<lhs.count { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}

extension Secret where Value == String {
    /// Whether `candidate` is this secret, compared in constant time.
    ///
    /// ```swift
    /// guard masterKey.matches(bearerToken) else { return .unauthorized }
    /// ```
    public func matches(_ candidate: String) -> Bool { ConstantTime.equals(Array(candidate.utf8), Array(value.utf8)) }
}

/// Bytes from the system's cryptographically secure generator: keys, challenges, nonces, ids.
public enum SecureRandom {
    /// `count` random bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<max(0, count)).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// A code of `count` decimal digits (1–18), every value equally likely (no modulo bias):
    /// confirmation and one-time codes.
    ///
    /// ```swift
    /// let code = SecureRandom.digits(6)      // "048213"
    /// ```
    public static func digits(_ count: Int) -> String {
        precondition((1...18).contains(count), "SecureRandom.digits takes 1–18 digits")
        var limit: UInt64 = 1
        for _ in 0..<count { limit *= 10 }
        var generator = SystemRandomNumberGenerator()
        let text = String(UInt64.random(in: 0..<limit, using: &generator))   // the standard library samples without bias
        return String(repeating: "0", count: count - text.count) + text
    }
}
