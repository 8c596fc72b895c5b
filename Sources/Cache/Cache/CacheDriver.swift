import NIOCore
import NimbusCore

/// What a cache adapter implements: only what differs between backends. Users call ``Cache``,
/// which adds key prefixing, validation, coding, retries, metrics and error normalisation.
///
/// Keys reach the driver already prefixed and validated. A driver throws `NimbusError`s; the
/// conformance suite (`NimbusCacheConformance`) states the behaviour every driver must have.
public protocol CacheDriver: NimbusDriver {

    /// The values of `keys`, in order; `nil` where a key is missing or expired.
    func get(_ keys: [String]) async throws -> [ByteBuffer?]

    /// Writes `entries`; with ``CacheWriteCondition/ifAbsent`` only where the key is missing.
    /// Returns, per entry, whether it was written.
    func set(_ entries: [CacheEntry], condition: CacheWriteCondition) async throws -> [Bool]

    /// Removes `keys`; returns how many existed.
    func delete(_ keys: [String]) async throws -> Int

    /// Adds `delta` to the integer at `key` (a missing key counts as 0) and returns the result.
    /// `ttl` applies only when the call creates the key, so a counter's window is not extended.
    /// - Throws: `invalidArgument` when the stored value is not a decimal 64-bit integer.
    func increment(_ key: String, by delta: Int64, ttl: Duration?) async throws -> Int64
}

/// One value to write.
public struct CacheEntry: Sendable, Hashable {
    /// The key, prefixed.
    public var key: String
    /// The bytes.
    public var value: ByteBuffer
    /// How long the value lives; `nil` for no expiry.
    public var ttl: Duration?

    /// Creates an entry.
    public init(key: String, value: ByteBuffer, ttl: Duration?) {
        self.key = key
        self.value = value
        self.ttl = ttl
    }
}

/// When a write happens.
public enum CacheWriteCondition: Sendable, Hashable {
    /// Always (overwrite).
    case always
    /// Only if the key is missing or expired.
    case ifAbsent
}
