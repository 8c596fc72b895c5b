import Foundation
import Logging
import NimbusCore
import Synchronization

/// Named locks shared by processes, over any ``DistributedLockDriver`` (memory, Redis, PostgreSQL).
///
/// A lock is a **lease**: it lasts `ttl` unless renewed, so a crashed holder cannot keep it. Every
/// acquisition carries a **fencing token** that grows with each holder; pass it to the storage you
/// protect (``fencedWrite(_:value:token:)`` or your own `WHERE token <= $1` check), because a holder
/// that was paused past its lease (GC, `SIGSTOP`, a slow disk) still believes it holds the lock —
/// the token is how storage tells it apart from the new holder.
///
/// ```swift
/// let locks = try await DistributedLocks.open("redis://127.0.0.1:6379", openers: .distributedLock.withRedis())
/// try await locks.withLock("invoice-run", ttl: .seconds(30), timeout: .seconds(10)) { lock in
///     for invoice in pending {
///         try await lock.checkHeld()                               // stop early once the lease is lost
///         try await ledger.write(invoice, fencingToken: lock.token)
///     }
/// }
/// ```
public final class DistributedLocks: PortableClient {
    /// Settings shared by every backend.
    public struct Configuration: Sendable {
        /// Prepended to every lock name (`locks:`), so services sharing a server do not collide.
        public var keyPrefix: String
        /// The longest name accepted, prefix included.
        public var maximumNameLength: Int
        /// Renewals happen every `ttl × renewFraction` (⅓: two renewals may fail before the lease ends).
        public var renewFraction: Double
        /// The first wait between attempts of ``DistributedLocks/lock(_:ttl:timeout:)``; it doubles up to ``maximumPollInterval``.
        public var pollInterval: Duration
        /// The longest wait between attempts.
        public var maximumPollInterval: Duration
        /// Retries of calls that are safe to repeat (renew, release, reads).
        public var retry: RetryPolicy
        /// The clock of keep-alives and waits (tests use a `ManualClock`).
        public var clock: NimbusClock

        /// Creates settings.
        public init(keyPrefix: String = "locks:", maximumNameLength: Int = 512, renewFraction: Double = 1.0 / 3,
                    pollInterval: Duration = .milliseconds(25), maximumPollInterval: Duration = .seconds(1),
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(200)),
                    clock: NimbusClock = .continuous) {
            self.keyPrefix = keyPrefix; self.maximumNameLength = maximumNameLength
            self.renewFraction = min(0.9, max(0.05, renewFraction)); self.pollInterval = pollInterval
            self.maximumPollInterval = maximumPollInterval; self.retry = retry; self.clock = clock
        }
    }

    private let driver: any DistributedLockDriver
    /// The settings.
    public let configuration: Configuration
    let logger: Logger
    private let closed = Atomic<Bool>(false)
    private let calls: PortableCalls
    static let operations = ["tryAcquire", "renew", "release", "holder", "fencedWrite", "fencedRead"]

    /// Wraps a driver.
    public init(driver: some DistributedLockDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.lock")) {
        self.driver = driver
        self.configuration = configuration
        self.logger = logger
        self.calls = PortableCalls(domain: "lock", provider: driver.provider, operations: Self.operations, logger: logger)
    }

    /// Opens the driver that `url`'s scheme names in `openers`.
    public static func open(_ url: String, openers: URLOpenerRegistry<any DistributedLockDriver>, configuration: Configuration = .init(),
                            logger: Logger = Logger(label: "nimbus.lock")) async throws -> DistributedLocks {
        DistributedLocks(driver: try await openers.open(url), configuration: configuration, logger: logger)
    }

    /// The backend's name (`memory`, `redis`, `postgres`).
    public var provider: String { driver.provider }

    /// The driver itself, if it is a `T`.
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// Releases the driver. Held locks are not released: their leases run out.
    public func close() async throws {
        guard closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        try await driver.close()
    }

    /// A unique owner id for this process and call: `host:pid:ulid`.
    public static func makeOwner() -> String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(IDGenerator.shared.ulid())"
    }

    // MARK: Leases

    /// Takes `name` if it is free. The handle renews the lease every `ttl × renewFraction` until
    /// released (pass `keepAlive: false` to renew by hand).
    public func tryLock(_ name: String, ttl: Duration, owner: String = DistributedLocks.makeOwner(), keepAlive: Bool = true) async throws -> LockHandle? {
        let key = try key(name)
        try validate(ttl: ttl)
        guard let token = try await run("tryAcquire", retry: .none, { try await self.driver.tryAcquire(key, owner: owner, ttl: ttl) }) else { return nil }
        let handle = LockHandle(locks: self, name: name, key: key, owner: owner, token: token, ttl: ttl)
        if keepAlive { handle.startKeepAlive() }
        return handle
    }

    /// Takes `name`, waiting up to `timeout` (polling with exponential backoff and jitter).
    /// - Throws: `deadlineExceeded` naming the holder when the lock stayed taken.
    public func lock(_ name: String, ttl: Duration, timeout: Duration, owner: String = DistributedLocks.makeOwner(), keepAlive: Bool = true) async throws -> LockHandle {
        let clock = configuration.clock
        let deadline = clock.offset + timeout
        var interval = configuration.pollInterval
        while true {
            if let handle = try await tryLock(name, ttl: ttl, owner: owner, keepAlive: keepAlive) { return handle }
            let left = deadline - clock.offset
            guard left > .zero else {
                let holder = try? await holder(of: name)
                throw NimbusError(.deadlineExceeded, "lock '\(name)' stayed taken for \(timeout.nimbusFormatted)"
                                  + (holder.map { " (held by \($0.owner), token \($0.token), \($0.expiresIn.nimbusFormatted) left)" } ?? ""))
            }
            let jittered = Duration.nanoseconds(Int64.random(in: 0...max(1, interval.nimbusNanoseconds)))
            try await clock.sleep(min(jittered, left))
            interval = min(interval * 2, configuration.maximumPollInterval)
        }
    }

    /// Runs `body` holding `name` (waiting up to `timeout` for it), renewing the lease meanwhile and
    /// releasing it after. If the lease is lost while `body` runs, `body` is cancelled and
    /// `failedPrecondition` is thrown: whatever it did after the loss must be fenced by `lock.token`.
    public func withLock<T: Sendable>(_ name: String, ttl: Duration, timeout: Duration = .zero,
                                      _ body: @escaping @Sendable (LockHandle) async throws -> T) async throws -> T {
        let handle = try await lock(name, ttl: ttl, timeout: timeout)
        return try await withHeld(handle, body)
    }

    /// Runs `body` while `handle` is held, then releases it; cancels `body` and throws
    /// `failedPrecondition` when the lease is lost first.
    func withHeld<T: Sendable>(_ handle: LockHandle, _ body: @escaping @Sendable (LockHandle) async throws -> T) async throws -> T {
        let result: Result<T, any Error> = await withTaskGroup(of: Result<T, any Error>?.self) { group in
            group.addTask {
                do { return .success(try await body(handle)) } catch { return .failure(error) }
            }
            group.addTask {
                await handle.lost()
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(NimbusError(.failedPrecondition, "lock '\(handle.name)' (token \(handle.token)) was lost while its work ran; the work was cancelled — anything it wrote after the loss must be fenced by the token"))
        }
        try? await handle.release()
        return try result.get()
    }

    /// Who holds `name` now, if anyone.
    public func holder(of name: String) async throws -> LockHolder? {
        let key = try key(name)
        return try await run("holder", retry: configuration.retry) { try await self.driver.holder(of: key) }
    }

    // MARK: Fenced writes

    /// Writes `value` to `resource` only if `token` is not older than the last writer's; returns
    /// whether it wrote. Use it (or the same check in your own storage) for every write a lock protects.
    public func fencedWrite(_ resource: String, value: String, token: UInt64) async throws -> Bool {
        let key = try key(resource, kind: "fenced:")
        return try await run("fencedWrite", retry: configuration.retry) { try await self.driver.fencedWrite(key, value: value, token: token) }
    }

    /// The last fenced write to `resource`.
    public func fencedRead(_ resource: String) async throws -> FencedValue? {
        let key = try key(resource, kind: "fenced:")
        return try await run("fencedRead", retry: configuration.retry) { try await self.driver.fencedRead(key) }
    }

    // MARK: For handles

    func renew(key: String, owner: String, token: UInt64, ttl: Duration) async throws -> Bool {
        try await run("renew", retry: configuration.retry) { try await self.driver.renew(key, owner: owner, token: token, ttl: ttl) }
    }

    func release(key: String, owner: String, token: UInt64) async throws -> Bool {
        try await run("release", retry: configuration.retry) { try await self.driver.release(key, owner: owner, token: token) }
    }

    private func run<T: Sendable>(_ operation: String, retry: RetryPolicy, _ body: @Sendable () async throws -> T) async throws -> T {
        try await calls.run(operation, retry: retry, closed: closed.load(ordering: .acquiring), body)
    }

    private func key(_ name: String, kind: String = "") throws -> String {
        guard !name.isEmpty else { throw NimbusError(.invalidArgument, "a lock name must not be empty") }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw NimbusError(.invalidArgument, "lock name '\(name.prefix(64))' contains control characters")
        }
        let full = configuration.keyPrefix + kind + name
        guard full.utf8.count <= configuration.maximumNameLength else {
            throw NimbusError(.invalidArgument, "lock name '\(name.prefix(64))…' is \(full.utf8.count) bytes with its prefix; the limit is \(configuration.maximumNameLength)")
        }
        return full
    }

    private func validate(ttl: Duration) throws {
        guard ttl >= .milliseconds(10), ttl <= .seconds(86_400) else {
            throw NimbusError(.invalidArgument, "a lock TTL must be between 10ms and a day (got \(ttl.nimbusFormatted))")
        }
    }
}

/// A held lease: its fencing token, renewal, release, and notice of its loss.
public final class LockHandle: Sendable {
    /// The lock's name (without the prefix).
    public let name: String
    /// Who holds it.
    public let owner: String
    /// The fencing token: pass it with every write the lock protects.
    public let token: UInt64
    /// The lease's length.
    public let ttl: Duration
    let key: String
    private let locks: DistributedLocks
    private let state = Mutex(State())
    private let changed = AsyncSignal()

    private struct State {
        var held = true
        var released = false
        var keepAlive: Task<Void, Never>?
        var lastRenewal: Duration = .zero
    }

    init(locks: DistributedLocks, name: String, key: String, owner: String, token: UInt64, ttl: Duration) {
        self.locks = locks; self.name = name; self.key = key; self.owner = owner; self.token = token; self.ttl = ttl
        let now = locks.configuration.clock.offset
        state.withLock { $0.lastRenewal = now }
    }

    /// Whether the lease is believed held: not released, and not lost to a refused renewal or to
    /// renewals failing past the TTL. (A paused process cannot know; that is what the token is for.)
    public var isHeld: Bool {
        let now = locks.configuration.clock.offset
        return state.withLock { $0.held && now - $0.lastRenewal < ttl }
    }

    /// Throws `failedPrecondition` if the lease is no longer held.
    public func checkHeld() throws {
        guard isHeld else {
            throw NimbusError(.failedPrecondition, "lock '\(name)' (token \(token)) is no longer held; stop, and let the new holder work")
        }
    }

    /// Extends the lease by its TTL now; returns `false` (and marks it lost) if it was no longer held.
    @discardableResult
    public func renew() async throws -> Bool {
        let start = locks.configuration.clock.offset
        let renewed = try await locks.renew(key: key, owner: owner, token: token, ttl: ttl)
        if renewed {
            state.withLock { if $0.held { $0.lastRenewal = start } }
        } else {
            markLost()
        }
        return renewed
    }

    /// Gives the lease up and stops renewing it.
    public func release() async throws {
        let task = state.withLock { state -> Task<Void, Never>? in
            state.released = true
            defer { state.keepAlive = nil }
            return state.keepAlive
        }
        task?.cancel()
        let wasHeld = state.withLock { state in
            defer { state.held = false }
            return state.held
        }
        changed.signal()
        if wasHeld { _ = try await locks.release(key: key, owner: owner, token: token) }
    }

    /// Returns once the lease is lost or released.
    public func lost() async {
        while true {
            let version = changed.version
            if !state.withLock({ $0.held }) { return }
            do { try await changed.wait(since: version) } catch { return }
        }
    }

    func markLost() {
        let wasHeld = state.withLock { state in
            defer { state.held = false }
            return state.held
        }
        if wasHeld {
            locks.logger.warning("lock lost", metadata: ["lock": "\(name)", "token": "\(token)"])
            changed.signal()
        }
    }

    /// Renews every `ttl × renewFraction`; a refused renewal, or failing renewals past the TTL, mark the lease lost.
    func startKeepAlive() {
        let clock = locks.configuration.clock
        let every = ttl * locks.configuration.renewFraction
        let task = Task { [weak self] in
            while !Task.isCancelled {
                do { try await clock.sleep(every) } catch { return }
                guard let self, !Task.isCancelled else { return }
                do {
                    if try await self.renew() == false { return }
                } catch {
                    self.locks.logger.warning("lock renewal failed", metadata: ["lock": "\(self.name)", "error": "\(error)"])
                    if !self.isHeld { self.markLost(); return }
                }
            }
        }
        let cancelNow = state.withLock { state -> Bool in
            if state.released || !state.held { return true }
            state.keepAlive = task
            return false
        }
        if cancelNow { task.cancel() }
    }

    deinit {
        state.withLock { $0.keepAlive?.cancel() }
    }
}

extension URLOpenerRegistry where Resource == any DistributedLockDriver {
    /// An empty registry for locks; adapters add their schemes (`.withMemory()`, `.withRedis()`, `.withPostgres()`).
    public static var distributedLock: URLOpenerRegistry<any DistributedLockDriver> { URLOpenerRegistry(domain: "lock") }
}
