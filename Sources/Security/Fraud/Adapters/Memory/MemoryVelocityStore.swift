import Foundation
import NimbusCore
import NimbusFraud
import Synchronization

/// Velocity counters in this process's memory (`mem://`), the embedded default. Keys whose
/// members have all passed their retention are dropped as they are touched, and every 10 000
/// observations the whole map is swept.
public final class MemoryVelocityStore: VelocityStore {
    private struct State {
        var keys: [String: [String: Int64]] = [:]    // key → member → latest time (ms)
        var retention: [String: Int64] = [:]         // key → retention (ms)
        var observations = 0
    }
    private let state = Mutex(State())

    /// An empty store.
    public init() {}

    public var provider: String { "memory" }

    /// The number of keys held (for tests and metrics).
    public var keyCount: Int { state.withLock { $0.keys.count } }

    public func observe(_ key: String, member: String, at time: Date, window: Duration, retain: Duration) async throws -> VelocityObservation {
        let now = time.nimbusMilliseconds, since = now - window.nimbusMilliseconds, cutoff = now - retain.nimbusMilliseconds
        return state.withLock { state in
            var members = state.keys[key] ?? [:]
            let seen = members[member].map { $0 >= cutoff } ?? false
            let before = members.values.reduce(0) { $1 >= since ? $0 + 1 : $0 }
            members[member] = max(members[member] ?? .min, now)
            members = members.filter { $0.value >= cutoff }
            let after = members.values.reduce(0) { $1 >= since ? $0 + 1 : $0 }
            state.keys[key] = members
            state.retention[key] = retain.nimbusMilliseconds
            state.observations += 1
            if state.observations % 10_000 == 0 {
                for (name, entries) in state.keys {
                    let limit = now - (state.retention[name] ?? 0)
                    if entries.values.allSatisfy({ $0 < limit }) { state.keys[name] = nil; state.retention[name] = nil }
                }
            }
            return VelocityObservation(seenBefore: seen, countBefore: before, countAfter: after)
        }
    }
}

extension URLOpenerRegistry where Resource == any VelocityStore {
    /// Adds `mem://`.
    public func withMemory() -> Self { withInProcess { MemoryVelocityStore() } }
}
