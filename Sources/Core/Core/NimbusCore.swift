// NimbusCore: what every Nimbus module stands on.
//
// - ``NimbusError``: the one error taxonomy, with `retryAfter` and `isRetryable`.
// - ``Secret``: values that never reach a log.
// - ``RetryPolicy`` and ``RetryBudget``: backoff with full jitter and a shared token bucket.
// - ``IDGenerator``, ``ULID``: time-ordered ids (UUIDv7, ULID).
// - ``URLOpenerRegistry``: open an adapter from a URL such as `redis://host:6379/0`.
// - ``NimbusConfiguration``: environment + YAML/JSON settings through swift-configuration.
// - ``JSONValue``, ``JSONLogHandler``.

/// The version of Nimbus, as the CLI and protocol handshakes (MCP `initialize`, User-Agent) report it.
public enum NimbusVersion {
    /// The current version.
    public static let current = "0.1.0"
}

private let lowerHexDigits: [UInt8] = Array("0123456789abcdef".utf8)

extension Sequence where Element == UInt8 {
    /// Lower-case hexadecimal, two digits per byte (digests, MACs): `SHA256.hash(data: d).hexString`.
    public var hexString: String {
        let digits = lowerHexDigits
        var out: [UInt8] = []
        out.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    /// The string without any trailing repetitions of `suffix` (`"https://x//".trimmingSuffix("/")` is `"https://x"`).
    public func trimmingSuffix(_ suffix: String) -> String {
        guard !suffix.isEmpty else { return self }
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
