import Foundation
import Logging
import NIOCore
import NimbusCore
import Synchronization

/// A key-value cache with expiry, over any ``CacheDriver`` (memory, Redis...).
///
/// `Cache` owns what must be the same for every backend: key prefixing and validation,
/// `Codable` values, the default TTL, retries of idempotent calls, metrics and one error
/// taxonomy. Open one from a URL or wrap a driver:
///
/// ```swift
/// let cache = try await Cache.open("redis://127.0.0.1:6379/0", openers: .cache.withRedis())
/// try await cache.set("user:42", User(name: "Ada"), ttl: .seconds(300))
/// let user = try await cache.get("user:42", as: User.self)
/// let hits = try await cache.increment("hits:\(day)", ttl: .seconds(86_400))
/// try await cache.close()
/// ```
public final class Cache: PortableClient {
    /// Settings shared by every backend.
    public struct Configuration: Sendable {
        /// Prepended to every key, so that services sharing one server do not collide (`billing:`).
        public var keyPrefix: String
        /// The TTL of writes that do not name one; `nil` keeps values until evicted or deleted.
        public var defaultTTL: Duration?
        /// The longest key accepted, prefix included.
        public var maximumKeyLength: Int
        /// The largest value accepted.
        public var maximumValueSize: Int
        /// Retries of idempotent calls (`get`, `set`, `delete`); `setIfAbsent` and `increment` run once.
        public var retry: RetryPolicy
        /// How `Codable` values are encoded.
        public var encoder: JSONEncoder
        /// How `Codable` values are decoded.
        public var decoder: JSONDecoder

        /// Creates settings.
        public init(
            keyPrefix: String = "", defaultTTL: Duration? = nil, maximumKeyLength: Int = 1024,
            maximumValueSize: Int = 64 * 1024 * 1024,
            retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(500)),
            encoder: JSONEncoder = JSONEncoder(), decoder: JSONDecoder = JSONDecoder()
        ) {
            self.keyPrefix = keyPrefix; self.defaultTTL = defaultTTL; self.maximumKeyLength = maximumKeyLength
            self.maximumValueSize = maximumValueSize; self.retry = retry; self.encoder = encoder; self.decoder = decoder
        }
    }

    private let driver: any CacheDriver
    /// The settings this cache was made with.
    public let configuration: Configuration
    private let logger: Logger
    private let closed = Atomic<Bool>(false)
    private let calls: PortableCalls
    static let operations = ["get", "set", "setIfAbsent", "getMany", "setMany", "delete", "increment"]

    /// Wraps a driver.
    public init(driver: some CacheDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.cache")) {
        self.driver = driver
        self.configuration = configuration
        self.logger = logger
        self.calls = PortableCalls(domain: "cache", provider: driver.provider, operations: Self.operations, logger: logger)
    }

    /// Opens the driver that `url`'s scheme names in `openers`.
    public static func open(_ url: String, openers: URLOpenerRegistry<any CacheDriver>, configuration: Configuration = .init(),
                            logger: Logger = Logger(label: "nimbus.cache")) async throws -> Cache {
        Cache(driver: try await openers.open(url), configuration: configuration, logger: logger)
    }

    /// The backend's name (`memory`, `redis`).
    public var provider: String { driver.provider }

    /// The driver itself, if it is a `T`: the escape hatch to backend-specific calls.
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    // MARK: Bytes

    /// The bytes at `key`, or `nil`.
    public func get(_ key: String) async throws -> ByteBuffer? {
        let full = try prefixed(key)
        return try await run("get", idempotent: true) { try await self.driver.get([full]).first ?? nil }
    }

    /// Writes bytes at `key`.
    public func set(_ key: String, bytes: ByteBuffer, ttl: Duration? = nil) async throws {
        let entry = try entry(key, bytes, ttl)
        _ = try await run("set", idempotent: true) { try await self.driver.set([entry], condition: .always) }
    }

    /// Writes bytes at `key` only if it is missing; returns whether it wrote.
    public func setIfAbsent(_ key: String, bytes: ByteBuffer, ttl: Duration? = nil) async throws -> Bool {
        let entry = try entry(key, bytes, ttl)
        return try await run("setIfAbsent", idempotent: false) { try await self.driver.set([entry], condition: .ifAbsent).first ?? false }
    }

    /// The values of `keys` that exist, keyed without the prefix.
    public func getMany(_ keys: [String]) async throws -> [String: ByteBuffer] {
        guard !keys.isEmpty else { return [:] }
        let full = try keys.map(prefixed)
        let values = try await run("getMany", idempotent: true) { try await self.driver.get(full) }
        guard values.count == keys.count else {
            throw NimbusError(.internal, "cache driver \(driver.provider) returned \(values.count) values for \(keys.count) keys")
        }
        var result: [String: ByteBuffer] = [:]
        for (key, value) in zip(keys, values) { if let value { result[key] = value } }
        return result
    }

    /// Writes several values at once (one round trip where the backend allows).
    public func setMany(_ values: [String: ByteBuffer], ttl: Duration? = nil) async throws {
        guard !values.isEmpty else { return }
        let entries = try values.sorted { $0.key < $1.key }.map { try entry($0.key, $0.value, ttl) }
        _ = try await run("setMany", idempotent: true) { try await self.driver.set(entries, condition: .always) }
    }

    /// Removes `keys`; returns how many existed.
    @discardableResult
    public func delete(_ keys: String...) async throws -> Int { try await delete(keys) }

    /// Removes `keys`; returns how many existed.
    @discardableResult
    public func delete(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        let full = try keys.map(prefixed)
        return try await run("delete", idempotent: true) { try await self.driver.delete(full) }
    }

    /// Adds `delta` to the counter at `key` (missing counts as 0); `ttl` applies when the call creates it.
    public func increment(_ key: String, by delta: Int64 = 1, ttl: Duration? = nil) async throws -> Int64 {
        let full = try prefixed(key)
        let ttl = try validTTL(ttl ?? configuration.defaultTTL)
        return try await run("increment", idempotent: false) { try await self.driver.increment(full, by: delta, ttl: ttl) }
    }

    // MARK: Codable

    /// The value at `key` decoded as `T`, or `nil`.
    /// - Throws: `failedPrecondition` when the stored bytes are not a `T`.
    public func get<T: Decodable>(_ key: String, as type: T.Type) async throws -> T? {
        guard let buffer = try await get(key) else { return nil }
        do {
            return try configuration.decoder.decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw NimbusError(.failedPrecondition, "cache value at '\(key)' is not a \(T.self) (\(error)); it was written with another type — delete it or read it as bytes", underlying: error)
        }
    }

    /// Encodes `value` as JSON and writes it at `key`.
    public func set<T: Encodable>(_ key: String, _ value: T, ttl: Duration? = nil) async throws {
        try await set(key, bytes: try encode(value, key), ttl: ttl)
    }

    /// Encodes `value` and writes it only if `key` is missing; returns whether it wrote.
    public func setIfAbsent<T: Encodable>(_ key: String, _ value: T, ttl: Duration? = nil) async throws -> Bool {
        try await setIfAbsent(key, bytes: try encode(value, key), ttl: ttl)
    }

    // MARK: Lifecycle

    /// Closes the driver. Later calls throw `failedPrecondition`.
    public func close() async throws {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        try await driver.close()
    }

    // MARK: Shared plumbing

    private func encode<T: Encodable>(_ value: T, _ key: String) throws -> ByteBuffer {
        do { return ByteBuffer(bytes: try configuration.encoder.encode(value)) }
        catch { throw NimbusError(.invalidArgument, "cannot encode \(T.self) for cache key '\(key)': \(error)", underlying: error) }
    }

    private func prefixed(_ key: String) throws -> String {
        guard !key.isEmpty else { throw NimbusError(.invalidArgument, "cache keys must not be empty") }
        let full = configuration.keyPrefix + key
        guard full.utf8.count <= configuration.maximumKeyLength else {
            throw NimbusError(.invalidArgument, "cache key of \(full.utf8.count) bytes is over the \(configuration.maximumKeyLength)-byte limit; hash long keys")
        }
        return full
    }

    private func validTTL(_ ttl: Duration?) throws -> Duration? {
        guard let ttl else { return nil }
        guard ttl > .zero else { throw NimbusError(.invalidArgument, "cache TTL must be positive, got \(ttl); use delete to remove a value") }
        return ttl
    }

    private func entry(_ key: String, _ bytes: ByteBuffer, _ ttl: Duration?) throws -> CacheEntry {
        guard bytes.readableBytes <= configuration.maximumValueSize else {
            throw NimbusError(.resourceExhausted, "cache value of \(bytes.readableBytes) bytes for '\(key)' is over the \(configuration.maximumValueSize)-byte limit")
        }
        return CacheEntry(key: try prefixed(key), value: bytes, ttl: try validTTL(ttl ?? configuration.defaultTTL))
    }

    private func run<T: Sendable>(_ operation: String, idempotent: Bool, _ body: @Sendable () async throws -> T) async throws -> T {
        try await calls.run(operation, retry: idempotent ? configuration.retry : .none, closed: closed.load(ordering: .relaxed), body)
    }
}

extension URLOpenerRegistry where Resource == any CacheDriver {
    /// An empty registry for the cache domain; adapters add their schemes (`.withMemory()`, `.withRedis()`).
    public static var cache: URLOpenerRegistry<any CacheDriver> { URLOpenerRegistry(domain: "cache") }
}
