import Foundation
import Logging
import NimbusCore
import Synchronization

/// Secrets by name, from any store: the current value (cached for a while), old versions,
/// writes, and rotation with a hook that applies the new value where it is used.
///
/// ```swift
/// let secrets = try await SecretStore.open("age://./secrets.age?identity=./key.txt", openers: .secrets.withLocal())
/// let password = try await secrets.string("db/password")               // Secret<String>
/// try await secrets.put("stripe/key", string: "sk_live_…")
/// try await secrets.rotate("db/password") { new, _ in try await db.setPassword(new) }
/// ```
///
/// Values are ``Secret``s from the store to the one place they are revealed; names and versions
/// appear in logs and errors, values never do.
public final class SecretStore: PortableClient {
    /// Settings.
    public struct Configuration: Sendable {
        /// How long a current value is served from memory (`.zero`: always ask the store).
        public var cacheTTL: Duration
        /// The largest value accepted by ``put(_:value:)`` (64 KiB, the AWS Secrets Manager limit).
        public var maximumValueSize: Int
        /// Retries of reads.
        public var retry: RetryPolicy

        /// Creates settings (5 minutes of cache, 64 KiB values).
        public init(cacheTTL: Duration = .seconds(300), maximumValueSize: Int = 64 * 1024,
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50), maxDelay: .seconds(1))) {
            self.cacheTTL = cacheTTL
            self.maximumValueSize = maximumValueSize
            self.retry = retry
        }
    }

    /// The settings.
    public let configuration: Configuration
    private let driver: any SecretsDriver
    private let calls: PortableCalls
    private let closed = Atomic<Bool>(false)
    private let cache = Mutex<[String: (value: SecretValue, until: Date)]>([:])
    private let now: @Sendable () -> Date
    static let operations = ["get", "put", "versions", "delete", "list", "rotate"]

    /// Wraps a driver.
    public init(driver: some SecretsDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.secrets"),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.driver = driver
        self.configuration = configuration
        self.now = now
        calls = PortableCalls(domain: "secrets", provider: driver.provider, operations: Self.operations, logger: logger)
    }

    /// Opens the driver `url`'s scheme names.
    public static func open(_ url: String, openers: URLOpenerRegistry<any SecretsDriver>, configuration: Configuration = .init()) async throws -> SecretStore {
        SecretStore(driver: try await openers.open(url), configuration: configuration)
    }

    public var provider: String { driver.provider }
    /// What the store supports.
    public var capabilities: SecretsCapabilities { driver.capabilities }
    public func driver<T>(as type: T.Type) -> T? { driver as? T }
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try await driver.close()
    }

    /// Checks a name: 1 to 256 characters from `A–Z a–z 0–9 / _ + = . @ -`, no leading `/`, no `..` segment.
    public static func validate(name: String) throws {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+=.@-")
        guard (1...256).contains(name.count), name.allSatisfy(allowed.contains), !name.hasPrefix("/"),
              !name.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }) else {
            throw NimbusError(.invalidArgument, "secret name \"\(name.prefix(64))\" is not valid: use 1–256 characters from A–Z a–z 0–9 / _ + = . @ - without empty, . or .. segments")
        }
    }

    private var isClosed: Bool { closed.load(ordering: .relaxed) }

    /// The current value of `name` (from the cache if it is fresh), or the given version (never cached).
    /// - Throws: `notFound` for an unknown name or version.
    public func value(_ name: String, version: String? = nil) async throws -> SecretValue {
        try Self.validate(name: name)
        if version == nil, let hit = cache.withLock({ $0[name] }), hit.until > now() { return hit.value }
        let value = try await calls.run("get", retry: configuration.retry, closed: isClosed) { try await self.driver.value(of: name, version: version) }
        if version == nil, configuration.cacheTTL > .zero {
            let until = now().addingTimeInterval(configuration.cacheTTL.nimbusSeconds)
            cache.withLock { $0[name] = (value, until) }
        }
        return value
    }

    /// The current value of `name` as text.
    /// - Throws: `invalidArgument` when the value is not UTF-8.
    public func string(_ name: String, version: String? = nil) async throws -> Secret<String> {
        guard let text = try await value(name, version: version).string else { throw NimbusError(.invalidArgument, "secret \(name) is binary, not UTF-8 text") }
        return text
    }

    /// Writes a new current version of `name`.
    @discardableResult
    public func put(_ name: String, value: Secret<[UInt8]>) async throws -> SecretVersion {
        try Self.validate(name: name)
        guard value.reveal().count <= configuration.maximumValueSize else {
            throw NimbusError(.invalidArgument, "secret \(name) is \(value.reveal().count) bytes, over the limit of \(configuration.maximumValueSize)")
        }
        guard driver.capabilities.contains(.write) else { throw NimbusError(.unimplemented, "the \(provider) secrets store is read-only") }
        defer { invalidate(name) }
        return try await calls.run("put", retry: .none, closed: isClosed) { try await self.driver.put(name, value: value) }
    }

    /// Writes a new current version of `name` from text.
    @discardableResult
    public func put(_ name: String, string: Secret<String>) async throws -> SecretVersion {
        try await put(name, value: string.map { Array($0.utf8) })
    }

    /// The versions of `name`, newest first.
    public func versions(_ name: String) async throws -> [SecretVersion] {
        try Self.validate(name: name)
        return try await calls.run("versions", retry: configuration.retry, closed: isClosed) { try await self.driver.versions(of: name) }
    }

    /// Deletes `name` with all its versions.
    public func delete(_ name: String) async throws {
        try Self.validate(name: name)
        guard driver.capabilities.contains(.delete) else { throw NimbusError(.unimplemented, "the \(provider) secrets store cannot delete") }
        defer { invalidate(name) }
        try await calls.run("delete", retry: .none, closed: isClosed) { try await self.driver.delete(name) }
    }

    /// The names under `prefix`, sorted.
    public func names(prefix: String = "") async throws -> [String] {
        guard driver.capabilities.contains(.list) else { throw NimbusError(.unimplemented, "the \(provider) secrets store cannot list") }
        return try await calls.run("list", retry: configuration.retry, closed: isClosed) { try await self.driver.names(prefix: prefix) }
    }

    /// Drops `name` from the cache (after a change made elsewhere).
    public func invalidate(_ name: String) { cache.withLock { _ = $0.removeValue(forKey: name) } }

    /// Rotates `name`: makes a new value (by default 32 random bytes as base64url text), stores it
    /// as the new current version, then calls `apply` with the new and the previous value so the
    /// system that uses the secret (a database user, an API key) takes it. If `apply` throws, the
    /// previous value is written back as the current version and the error is rethrown, so the
    /// store never points at a value the system refused.
    @discardableResult
    public func rotate(_ name: String,
                       generate: @Sendable (SecretValue?) async throws -> Secret<[UInt8]> = { _ in Secret(Array(Base64URL.encode(SecureRandom.bytes(32)).utf8)) },
                       apply: @Sendable (_ new: Secret<[UInt8]>, _ previous: SecretValue?) async throws -> Void) async throws -> SecretVersion {
        try Self.validate(name: name)
        invalidate(name)
        let previous: SecretValue?
        do { previous = try await value(name) } catch let error as NimbusError where error.code == .notFound { previous = nil }
        invalidate(name)
        let fresh = try await generate(previous)
        let version = try await put(name, value: fresh)
        do {
            try await apply(fresh, previous)
        } catch {
            if let previous { _ = try? await put(name, value: previous.value) }
            throw NimbusError.wrap(error, "rotating secret \(name): the new value was not applied, the previous value is current again")
        }
        return version
    }
}
