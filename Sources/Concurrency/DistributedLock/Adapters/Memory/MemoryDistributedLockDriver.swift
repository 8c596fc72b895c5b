import NimbusCore
import NimbusDistributedLock
import Synchronization

/// Locks in this process's memory: the embedded driver for tests, single-process services and
/// examples (`mem://`). Leases expire on an injectable clock; tokens grow per name, forever.
///
/// ```swift
/// let clock = ManualClock()
/// let locks = DistributedLocks(driver: MemoryDistributedLockDriver(clock: NimbusClock(clock)))
/// ```
public final class MemoryDistributedLockDriver: DistributedLockDriver {
    public var provider: String { "memory" }
    private let clock: NimbusClock
    private let state = Mutex(State())

    private struct Lease {
        var owner: String
        var token: UInt64
        var expiresAt: Duration
    }

    private struct State {
        var leases: [String: Lease] = [:]
        var lastToken: [String: UInt64] = [:]
        var fenced: [String: FencedValue] = [:]
    }

    /// Creates an empty table.
    public init(clock: NimbusClock = .continuous) { self.clock = clock }

    public func tryAcquire(_ name: String, owner: String, ttl: Duration) async throws -> UInt64? {
        let now = clock.offset
        return state.withLock { state in
            if let lease = state.leases[name], lease.expiresAt > now { return nil }
            let token = state.lastToken[name, default: 0] + 1
            state.lastToken[name] = token
            state.leases[name] = Lease(owner: owner, token: token, expiresAt: now + ttl)
            return token
        }
    }

    public func renew(_ name: String, owner: String, token: UInt64, ttl: Duration) async throws -> Bool {
        let now = clock.offset
        return state.withLock { state in
            guard let lease = state.leases[name], lease.owner == owner, lease.token == token, lease.expiresAt > now else { return false }
            state.leases[name]?.expiresAt = now + ttl
            return true
        }
    }

    public func release(_ name: String, owner: String, token: UInt64) async throws -> Bool {
        let now = clock.offset
        return state.withLock { state in
            guard let lease = state.leases[name], lease.owner == owner, lease.token == token else { return false }
            state.leases[name] = nil
            return lease.expiresAt > now
        }
    }

    public func holder(of name: String) async throws -> LockHolder? {
        let now = clock.offset
        return state.withLock { state in
            guard let lease = state.leases[name], lease.expiresAt > now else { return nil }
            return LockHolder(owner: lease.owner, token: lease.token, expiresIn: lease.expiresAt - now)
        }
    }

    public func fencedWrite(_ resource: String, value: String, token: UInt64) async throws -> Bool {
        state.withLock { state in
            if let current = state.fenced[resource], current.token > token { return false }
            state.fenced[resource] = FencedValue(value: value, token: token)
            return true
        }
    }

    public func fencedRead(_ resource: String) async throws -> FencedValue? {
        state.withLock { $0.fenced[resource] }
    }
}

extension URLOpenerRegistry where Resource == any DistributedLockDriver {
    /// Adds `mem://` (no options).
    public func withMemory() -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: [], for: "memory locks")
            return MemoryDistributedLockDriver()
        }
        return copy
    }
}
