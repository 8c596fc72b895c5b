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
