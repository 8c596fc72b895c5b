import Foundation
import NimbusCore
import NimbusSession
import Synchronization

/// Sessions in this process's memory (`mem://`): for one instance, tests and development. They are
/// lost on restart; ended sessions are dropped whenever the store passes `capacity`.
public final class MemorySessionStore: SessionStoreDriver {
    private struct State {
        var records: [String: SessionRecord] = [:]
        var byUser: [String: Set<String>] = [:]
    }
    private let state = Mutex(State())
    /// Sessions kept before ended ones are purged on insert.
    public let capacity: Int

    /// An empty store.
    public init(capacity: Int = 1_000_000) { self.capacity = max(1, capacity) }

    public var provider: String { "memory" }

    /// How many sessions are stored (ended ones included until purged).
    public var count: Int { state.withLock { $0.records.count } }

    public func insert(_ session: SessionRecord) async throws {
        let now = Date()
        try state.withLock { state in
            guard state.records[session.key] == nil else { throw NimbusError(.alreadyExists, "a session with this key exists") }
            if state.records.count >= capacity { Self.purge(&state, now: now) }
            guard state.records.count < capacity else {
                throw NimbusError(.resourceExhausted, "the memory session store holds \(capacity) live sessions; use a persistent store")
            }
            state.records[session.key] = session
            if let user = session.userID { state.byUser[user, default: []].insert(session.key) }
        }
    }

    public func find(_ key: String, now: Date) async throws -> SessionRecord? {
        state.withLock { state in state.records[key].flatMap { $0.expiresAt > now ? $0 : nil } }
    }

    public func update(_ session: SessionRecord, expectedVersion: Int64) async throws -> Bool {
        state.withLock { state in
            guard let stored = state.records[session.key], stored.version == expectedVersion else { return false }
            if stored.userID != session.userID {
                if let old = stored.userID { state.byUser[old]?.remove(session.key) }
                if let new = session.userID { state.byUser[new, default: []].insert(session.key) }
            }
            state.records[session.key] = session
            return true
        }
    }

    public func remove(_ keys: [String]) async throws -> Int {
        state.withLock { state in
            var removed = 0
            for key in keys {
                guard let record = state.records.removeValue(forKey: key) else { continue }
                removed += 1
                if let user = record.userID {
                    state.byUser[user]?.remove(key)
                    if state.byUser[user]?.isEmpty == true { state.byUser[user] = nil }
                }
            }
            return removed
        }
    }

    public func sessions(ofUser userID: String, now: Date) async throws -> [SessionRecord] {
        state.withLock { state in
            (state.byUser[userID] ?? []).compactMap { state.records[$0] }.filter { $0.expiresAt > now }
                .sorted { ($0.createdAt, $0.key) < ($1.createdAt, $1.key) }
        }
    }

    public func purge(now: Date) async throws -> Int { state.withLock { Self.purge(&$0, now: now) } }

    private static func purge(_ state: inout State, now: Date) -> Int {
        let ended = state.records.values.filter { $0.expiresAt <= now }
        for record in ended {
            state.records[record.key] = nil
            if let user = record.userID {
                state.byUser[user]?.remove(record.key)
                if state.byUser[user]?.isEmpty == true { state.byUser[user] = nil }
            }
        }
        return ended.count
    }
}

extension URLOpenerRegistry where Resource == any SessionStoreDriver {
    /// Adds `mem://` (option `capacity`).
    public func withMemory() -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: ["capacity"], for: "memory sessions")
            return MemorySessionStore(capacity: try url.options.int("capacity") ?? 1_000_000)
        }
        return copy
    }
}
