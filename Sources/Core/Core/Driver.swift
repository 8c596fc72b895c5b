/// What every adapter's driver is, whatever its domain: the base that `CacheDriver`,
/// `EmailDriver`, `PaymentDriver`, `ChatModelDriver`… refine (gocloud.dev's shape).
///
/// A driver implements only what differs between vendors; the domain's portable type (a
/// ``PortableClient``) adds validation, retries, metrics and one error taxonomy on top.
///
/// ```swift
/// public protocol QueueDriver: NimbusDriver {
///     func send(_ message: QueueMessage) async throws -> String
/// }
///
/// struct MemoryQueueDriver: QueueDriver {
///     var provider: String { "memory" }
///     func send(_ message: QueueMessage) async throws -> String { … }
///     // close() comes from the default: nothing to release
/// }
/// ```
public protocol NimbusDriver: Sendable {
    /// The provider's short name in logs, metrics and errors (`redis`, `stripe`, `memory`).
    var provider: String { get }

    /// Releases connections, files and memory. The portable type calls it once, from its own
    /// `close()`, and makes no call after it. The default does nothing.
    func close() async throws
}

extension NimbusDriver {
    /// Nothing to release.
    public func close() async throws {}
}

/// The surface every domain's portable type has, so that a hundred domains read alike:
///
/// - `init(driver:configuration:…)` wraps a driver;
/// - `static func open(_ url:openers:…)` opens one through the domain's ``URLOpenerRegistry``
///   (`mem://` in-process and volatile; `sqlite://PATH` / `file://PATH` persistent; vendor schemes);
/// - ``driver(as:)`` is the escape hatch to the adapter's own calls;
/// - ``close()`` releases the driver.
///
/// ```swift
/// let cache = try await Cache.open("mem://", openers: Cache.openers)
/// defer { … }                                   // close before exit
/// let redis = cache.driver(as: RedisCacheDriver.self)
/// try await cache.close()
/// ```
public protocol PortableClient: Sendable {
    /// The driver's provider name (`redis`, `ses`, `memory`).
    var provider: String { get }
    /// The driver as `T`, if it is one: the escape hatch to provider features the portable API does not name.
    func driver<T>(as type: T.Type) -> T?
    /// Releases the driver (connections, pools, files). Call it before the process exits.
    func close() async throws
}

extension PortableClient {
    /// Runs `body` with this client, then closes it — also when `body` throws — so that nothing
    /// is left to a fire-and-forget task at exit.
    ///
    /// ```swift
    /// let receipt = try await EmailClient.open(url, openers: openers).closing { try await $0.send(message) }
    /// ```
    public func closing<Result>(_ body: (Self) async throws -> Result) async throws -> Result {
        let result: Result
        do {
            result = try await body(self)
        } catch {
            try? await close()
            throw error
        }
        try await close()
        return result
    }
}
