import NimbusCore
import NimbusRateLimit
import Synchronization

/// The embedded rate limiter: every key's state in this process's memory, behind one lock, so
/// decisions are atomic among this process's tasks (not across processes: use Redis for that).
///
/// Memory is bounded: cells that no longer matter (their quota is whole again) are swept as the
/// table grows, and past ``maxKeys`` the cells closest to expiry are dropped first — the only
/// effect of dropping one is that its key starts again with a whole quota.
///
/// ```swift
/// let limiter = RateLimiter(driver: MemoryRateLimitDriver())
/// let clock = ManualClock()
/// let testLimiter = RateLimiter(driver: MemoryRateLimitDriver(time: .clock(clock)))
/// ```
public final class MemoryRateLimitDriver: RateLimitDriver {
    public var provider: String { "memory" }
    /// The most keys (cells and slot sets together) kept.
    public let maxKeys: Int
    private let time: RateLimitTime
    private let state = Mutex(State())

    private struct Entry {
        var cell: RateLimitCell
        var expiresAt: Int64
    }

    private struct State {
        var cells: [String: Entry] = [:]
        var slots: [String: [String: Int64]] = [:]    // key → slot id → lease end
        var sweepAt = 1024
    }

    /// Creates an empty table.
    public init(time: RateLimitTime = .monotonic, maxKeys: Int = 1_000_000) {
        self.time = time
        self.maxKeys = max(16, maxKeys)
    }

    /// Keys with state (for tests and metrics).
    public var keyCount: Int { state.withLock { $0.cells.count + $0.slots.count } }

    public func acquire(_ requests: [RateLimitRequest]) async throws -> RateLimitDecision {
        let now = time.microseconds()
        return state.withLock { state in
            let outcomes = requests.map { request in
                let entry = state.cells[request.key]
                let cell = entry.map { $0.expiresAt > now ? $0.cell : RateLimitCell() } ?? RateLimitCell()
                return RateLimitAlgorithms.decide(request.policy, cost: request.cost, cell: cell, now: now)
            }
            let allowed = outcomes.allSatisfy(\.allowed)
            if allowed {
                for (request, outcome) in zip(requests, outcomes) where request.cost > 0 {
                    state.cells[request.key] = Entry(cell: outcome.next, expiresAt: now + max(1, outcome.ttl))
                }
                sweepIfNeeded(&state, now: now)
            }
            return RateLimitDecision(allowed: allowed, states: zip(requests, outcomes).map {
                RateLimitAlgorithms.state($1, policy: $0.policy, charged: allowed, cost: $0.cost)
            })
        }
    }

    public func reset(key: String, policy: RateLimitPolicy) async throws {
        _ = state.withLock { $0.cells.removeValue(forKey: key) }
    }

    public func acquireSlot(key: String, limit: Int, lease: Duration) async throws -> ConcurrencyDecision {
        let now = time.microseconds()
        let leaseMicros = lease.nimbusMicroseconds
        return state.withLock { state in
            var held = (state.slots[key] ?? [:]).filter { $0.value > now }
            guard held.count < limit else {
                state.slots[key] = held
                let soonest = held.values.min().map { Duration.microseconds($0 - now) }
                return ConcurrencyDecision(slot: nil, inUse: held.count, retryAfter: soonest)
            }
            let id = IDGenerator.shared.ulid().description
            held[id] = now + leaseMicros
            state.slots[key] = held
            sweepIfNeeded(&state, now: now)
            return ConcurrencyDecision(slot: ConcurrencySlot(key: key, id: id), inUse: held.count, retryAfter: nil)
        }
    }

    public func releaseSlot(_ slot: ConcurrencySlot) async throws -> Bool {
        let now = time.microseconds()
        return state.withLock { state in
            guard let end = state.slots[slot.key]?.removeValue(forKey: slot.id) else { return false }
            if state.slots[slot.key]?.isEmpty == true { state.slots[slot.key] = nil }
            return end > now
        }
    }

    /// Drops cells whose quota is whole again once the table doubles; past `maxKeys`, the soonest-expiring.
    private func sweepIfNeeded(_ state: inout State, now: Int64) {
        let count = state.cells.count + state.slots.count
        guard count >= state.sweepAt || count > maxKeys else { return }
        state.cells = state.cells.filter { $0.value.expiresAt > now }
        state.slots = state.slots.compactMapValues { held in
            let live = held.filter { $0.value > now }
            return live.isEmpty ? nil : live
        }
        if state.cells.count + state.slots.count > maxKeys {
            let excess = state.cells.count + state.slots.count - maxKeys + maxKeys / 10
            for key in state.cells.sorted(by: { $0.value.expiresAt < $1.value.expiresAt }).prefix(excess).map(\.key) {
                state.cells.removeValue(forKey: key)
            }
        }
        state.sweepAt = max(1024, min(maxKeys, (state.cells.count + state.slots.count) * 2))
    }
}

extension URLOpenerRegistry where Resource == any RateLimitDriver {
    /// Adds `mem://` (option: `maxKeys`).
    public func withMemory() -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: ["maxKeys"], for: "memory rate limiter")
            return MemoryRateLimitDriver(maxKeys: try url.options.int("maxKeys") ?? 1_000_000)
        }
        return copy
    }
}
