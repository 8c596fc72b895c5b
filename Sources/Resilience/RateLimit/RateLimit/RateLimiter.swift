import Logging
import NimbusCore
import Synchronization

/// Rate limits and concurrency limits over any ``RateLimitDriver`` (memory, Redis).
///
/// `RateLimiter` owns what is the same for every backend: key prefixing and validation, cost
/// checks, metrics, one error taxonomy and what happens when the backend is down.
///
/// ```swift
/// let limiter = try await RateLimiter.open("redis://127.0.0.1:6379", openers: .rateLimit.withRedis())
/// let decision = try await limiter.acquire("user:42", policy: .gcra("api", limit: 10, per: .seconds(1), burst: 20))
/// guard decision.allowed else { throw TooManyRequests(retryAfter: decision.retryAfter) }
///
/// // Requests per minute and tokens per minute, admitted together or not at all:
/// let both = try await limiter.acquire([
///     RateLimitRequest(key: "key:abc", policy: .slidingWindow("rpm", limit: 60, per: .seconds(60))),
///     RateLimitRequest(key: "key:abc", policy: .tokenBucket("tpm", capacity: 90_000, refill: 90_000, per: .seconds(60)), cost: 1_200),
/// ])
///
/// // At most 4 exports at once per tenant; a crashed holder's slot frees itself after 10 minutes.
/// let report = try await limiter.withSlot("exports:acme", limit: 4, lease: .seconds(600)) { try await export() }
/// ```
public final class RateLimiter: PortableClient {
    /// Settings shared by every backend.
    public struct Configuration: Sendable {
        /// What to do when the backend cannot be reached.
        public enum FailureMode: Sendable, Equatable {
            /// Throw `unavailable` (the caller decides).
            case error
            /// Admit the call (fail open): availability over strictness, as Envoy's default.
            case allow
            /// Refuse the call (fail closed), with a `retryAfter` of one second.
            case deny
        }
        /// Prepended to every key (`ratelimit:`), so limiters sharing one server do not collide.
        public var keyPrefix: String
        /// The longest key accepted, prefix and policy name included.
        public var maximumKeyLength: Int
        /// When the backend is down.
        public var onBackendFailure: FailureMode

        /// Creates settings.
        public init(keyPrefix: String = "ratelimit:", maximumKeyLength: Int = 512, onBackendFailure: FailureMode = .error) {
            self.keyPrefix = keyPrefix
            self.maximumKeyLength = maximumKeyLength
            self.onBackendFailure = onBackendFailure
        }
    }

    private let driver: any RateLimitDriver
    /// The settings this limiter was made with.
    public let configuration: Configuration
    private let logger: Logger
    private let closed = Atomic<Bool>(false)
    private let calls: PortableCalls
    static let operations = ["acquire", "reset", "acquireSlot", "releaseSlot"]

    /// Wraps a driver.
    public init(driver: some RateLimitDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.ratelimit")) {
        self.driver = driver
        self.configuration = configuration
        self.logger = logger
        self.calls = PortableCalls(domain: "ratelimit", provider: driver.provider, operations: Self.operations, logger: logger)
    }

    /// Opens the driver that `url`'s scheme names in `openers`.
    public static func open(_ url: String, openers: URLOpenerRegistry<any RateLimitDriver>, configuration: Configuration = .init(),
                            logger: Logger = Logger(label: "nimbus.ratelimit")) async throws -> RateLimiter {
        RateLimiter(driver: try await openers.open(url), configuration: configuration, logger: logger)
    }

    /// The backend's name (`memory`, `redis`).
    public var provider: String { driver.provider }

    /// The driver itself, if it is a `T`.
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// Releases the driver.
    public func close() async throws {
        guard closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        try await driver.close()
    }

    // MARK: Rates

    /// Charges `cost` units of `key` under `policy`; `cost: 0` only reads where the key stands.
    public func acquire(_ key: String, policy: RateLimitPolicy, cost: Int = 1) async throws -> RateLimitDecision {
        try await acquire([RateLimitRequest(key: key, policy: policy, cost: cost)])
    }

    /// Decides several charges at once: all admitted and charged, or none charged.
    /// - Throws: `invalidArgument` for a bad key, policy or a cost above what the policy could ever admit;
    ///   `unavailable` when the backend is down and ``Configuration/onBackendFailure`` is `.error`.
    public func acquire(_ requests: [RateLimitRequest]) async throws -> RateLimitDecision {
        guard !requests.isEmpty else { return RateLimitDecision(allowed: true, states: []) }
        guard requests.count <= 16 else {
            throw NimbusError(.invalidArgument, "a rate-limit decision takes at most 16 requests (got \(requests.count))")
        }
        let prefixed = try requests.map { request -> RateLimitRequest in
            try request.policy.validate()
            guard request.cost >= 0, request.cost <= request.policy.maximumCost else {
                throw NimbusError(.invalidArgument, "cost \(request.cost) can never be admitted by '\(request.policy.name)' (\(request.policy)); it must be 0...\(request.policy.maximumCost)")
            }
            var copy = request
            copy.key = try storageKey(request.key, policy: request.policy)
            return copy
        }
        do {
            return try await calls.run("acquire", retry: .none, closed: closed.load(ordering: .acquiring)) {
                try await self.driver.acquire(prefixed)
            }
        } catch let error as NimbusError where error.code == .unavailable || error.code == .deadlineExceeded {
            switch configuration.onBackendFailure {
            case .error:
                throw error
            case .allow:
                logger.warning("rate-limit backend unavailable; admitting (fail open)", metadata: ["provider": "\(provider)", "error": "\(error)"])
                return RateLimitDecision(allowed: true, states: requests.map {
                    RateLimitState(policy: $0.policy.name, allowed: true, limit: $0.policy.limit, remaining: $0.policy.burst, resetAfter: .zero, retryAfter: nil)
                })
            case .deny:
                logger.warning("rate-limit backend unavailable; refusing (fail closed)", metadata: ["provider": "\(provider)", "error": "\(error)"])
                return RateLimitDecision(allowed: false, states: requests.map {
                    RateLimitState(policy: $0.policy.name, allowed: false, limit: $0.policy.limit, remaining: 0, resetAfter: .seconds(1), retryAfter: .seconds(1))
                })
            }
        }
    }

    /// Makes `key`'s quota under `policy` whole again.
    public func reset(_ key: String, policy: RateLimitPolicy) async throws {
        try policy.validate()
        let full = try storageKey(key, policy: policy)
        try await calls.run("reset", retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20)), closed: closed.load(ordering: .acquiring)) {
            try await self.driver.reset(key: full, policy: policy)
        }
    }

    // MARK: Concurrency

    /// Takes one of `limit` slots of `key` for at most `lease`; `slot` is `nil` when all are taken.
    public func acquireSlot(_ key: String, limit: Int, lease: Duration) async throws -> ConcurrencyDecision {
        guard limit >= 1 else { throw NimbusError(.invalidArgument, "a concurrency limit must be at least 1 (got \(limit))") }
        guard lease >= .milliseconds(1), lease <= .seconds(86_400) else {
            throw NimbusError(.invalidArgument, "a slot lease must be between 1ms and a day (got \(lease.nimbusFormatted))")
        }
        let full = try storageKey(key, policy: nil)
        return try await calls.run("acquireSlot", retry: .none, closed: closed.load(ordering: .acquiring)) {
            try await self.driver.acquireSlot(key: full, limit: limit, lease: lease)
        }
    }

    /// Gives a slot back; returns whether it was still held (`false` once its lease ran out).
    @discardableResult
    public func releaseSlot(_ slot: ConcurrencySlot) async throws -> Bool {
        try await calls.run("releaseSlot", retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20)), closed: closed.load(ordering: .acquiring)) {
            try await self.driver.releaseSlot(slot)
        }
    }

    /// Runs `body` holding one of `limit` slots of `key`, and gives the slot back after.
    /// - Throws: `resourceExhausted` with a `retryAfter` when every slot is taken.
    public func withSlot<T: Sendable>(_ key: String, limit: Int, lease: Duration, _ body: () async throws -> T) async throws -> T {
        let decision = try await acquireSlot(key, limit: limit, lease: lease)
        guard let slot = decision.slot else {
            throw NimbusError(.resourceExhausted, "all \(limit) slots of '\(key)' are in use; try again later", retryAfter: decision.retryAfter)
        }
        do {
            let value = try await body()
            try? await releaseSlot(slot)
            return value
        } catch {
            try? await releaseSlot(slot)
            throw error
        }
    }

    private func storageKey(_ key: String, policy: RateLimitPolicy?) throws -> String {
        guard !key.isEmpty else { throw NimbusError(.invalidArgument, "a rate-limit key must not be empty") }
        let full = configuration.keyPrefix + (policy.map { $0.name + ":" } ?? "slots:") + key
        guard full.utf8.count <= configuration.maximumKeyLength else {
            throw NimbusError(.invalidArgument, "rate-limit key '\(key.prefix(64))…' is \(full.utf8.count) bytes with its prefix; the limit is \(configuration.maximumKeyLength)")
        }
        return full
    }
}

extension URLOpenerRegistry where Resource == any RateLimitDriver {
    /// An empty registry for rate limiting; adapters add their schemes (`.withMemory()`, `.withRedis()`).
    public static var rateLimit: URLOpenerRegistry<any RateLimitDriver> { URLOpenerRegistry(domain: "ratelimit") }
}
