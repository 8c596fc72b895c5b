import NIOCore
import NimbusCache
import NimbusCore
import Synchronization

/// The embedded cache: an in-process LRU map with per-entry expiry. No server, no account.
///
/// Bounded by entry count and by bytes (keys + values); the least recently used entries go
/// first. Expiry follows an injectable `Clock`, so tests move time instead of sleeping.
///
/// ```swift
/// let cache = Cache(driver: MemoryCacheDriver(maxEntries: 10_000, maxBytes: 64 << 20))
/// ```
public final class MemoryCacheDriver<C: Clock<Duration>>: CacheDriver, Sendable {
    private struct Slot {
        var key: String
        var value: ByteBuffer
        var expiresAt: C.Instant?
        var previous: Int   // towards the most recently used end; -1 at the head
        var next: Int       // towards the least recently used end; -1 at the tail
    }

    private struct State {
        var index: [String: Int] = [:]
        var slots: [Slot] = []
        var free: [Int] = []
        var head = -1
        var tail = -1
        var bytes = 0
        var evictions = 0
    }

    public var provider: String { "memory" }
    /// The most entries kept.
    public let maxEntries: Int
    /// The most bytes (keys and values) kept.
    public let maxBytes: Int
    private let clock: C
    private let state = Mutex(State())

    /// Creates an empty cache on `clock`.
    public init(maxEntries: Int = 100_000, maxBytes: Int = 256 * 1024 * 1024, clock: C) {
        self.maxEntries = max(1, maxEntries)
        self.maxBytes = max(1, maxBytes)
        self.clock = clock
    }

    /// Entries currently held (expired ones not yet purged included).
    public var count: Int { state.withLock { $0.index.count } }
    /// Bytes currently held.
    public var byteCount: Int { state.withLock { $0.bytes } }
    /// Entries dropped to stay within the bounds, since creation.
    public var evictionCount: Int { state.withLock { $0.evictions } }

    public func get(_ keys: [String]) async throws -> [ByteBuffer?] {
        let now = clock.now
        return state.withLock { state in keys.map { key in Self.lookup(&state, key, now: now) } }
    }

    public func set(_ entries: [CacheEntry], condition: CacheWriteCondition) async throws -> [Bool] {
        let now = clock.now
        return state.withLock { state in
            entries.map { entry in
                if condition == .ifAbsent, Self.lookup(&state, entry.key, now: now) != nil { return false }
                store(&state, entry.key, entry.value, expiresAt: entry.ttl.map { now.advanced(by: $0) })
                return true
            }
        }
    }

    public func delete(_ keys: [String]) async throws -> Int {
        let now = clock.now
        return state.withLock { state in
            keys.reduce(0) { count, key in
                guard let slot = state.index[key] else { return count }
                let live = !Self.isExpired(state.slots[slot], now: now)
                Self.remove(&state, slot)
                return count + (live ? 1 : 0)
            }
        }
    }

    public func increment(_ key: String, by delta: Int64, ttl: Duration?) async throws -> Int64 {
        let now = clock.now
        return try state.withLock { state in
            var expiresAt = ttl.map { now.advanced(by: $0) }
            var current: Int64 = 0
            if let existing = Self.lookup(&state, key, now: now) {
                guard let value = Int64(String(buffer: existing)) else {
                    throw NimbusError(.invalidArgument, "cache value at '\(key)' is not an integer; increment needs a counter")
                }
                current = value
                if let slot = state.index[key] { expiresAt = state.slots[slot].expiresAt }
            }
            let (sum, overflow) = current.addingReportingOverflow(delta)
            guard !overflow else { throw NimbusError(.invalidArgument, "incrementing '\(key)' by \(delta) overflows a 64-bit integer") }
            store(&state, key, ByteBuffer(string: String(sum)), expiresAt: expiresAt)
            return sum
        }
    }

    public func close() async throws {
        state.withLock { $0 = State() }
    }

    /// Drops every expired entry now (they are otherwise dropped when touched or evicted).
    public func purgeExpired() {
        let now = clock.now
        state.withLock { state in
            for slot in Array(state.index.values) where Self.isExpired(state.slots[slot], now: now) { Self.remove(&state, slot) }
        }
    }

    // MARK: LRU list

    private static func isExpired(_ slot: Slot, now: C.Instant) -> Bool {
        guard let expiresAt = slot.expiresAt else { return false }
        return expiresAt <= now
    }

    private static func lookup(_ state: inout State, _ key: String, now: C.Instant) -> ByteBuffer? {
        guard let slot = state.index[key] else { return nil }
        if isExpired(state.slots[slot], now: now) {
            remove(&state, slot)
            return nil
        }
        moveToHead(&state, slot)
        return state.slots[slot].value
    }

    private func store(_ state: inout State, _ key: String, _ value: ByteBuffer, expiresAt: C.Instant?) {
        let size = key.utf8.count + value.readableBytes
        if let slot = state.index[key] {
            state.bytes += size - (state.slots[slot].key.utf8.count + state.slots[slot].value.readableBytes)
            state.slots[slot].value = value
            state.slots[slot].expiresAt = expiresAt
            Self.moveToHead(&state, slot)
        } else {
            let slot = Slot(key: key, value: value, expiresAt: expiresAt, previous: -1, next: state.head)
            let position: Int
            if let reused = state.free.popLast() { state.slots[reused] = slot; position = reused }
            else { state.slots.append(slot); position = state.slots.count - 1 }
            if state.head >= 0 { state.slots[state.head].previous = position }
            state.head = position
            if state.tail < 0 { state.tail = position }
            state.index[key] = position
            state.bytes += size
        }
        // Evict from the cold end, never the entry just written.
        while (state.index.count > maxEntries || state.bytes > maxBytes), state.tail >= 0, state.tail != state.head {
            Self.remove(&state, state.tail)
            state.evictions += 1
        }
    }

    private static func unlink(_ state: inout State, _ slot: Int) {
        let previous = state.slots[slot].previous, next = state.slots[slot].next
        if previous >= 0 { state.slots[previous].next = next } else { state.head = next }
        if next >= 0 { state.slots[next].previous = previous } else { state.tail = previous }
    }

    private static func moveToHead(_ state: inout State, _ slot: Int) {
        guard state.head != slot else { return }
        unlink(&state, slot)
        state.slots[slot].previous = -1
        state.slots[slot].next = state.head
        if state.head >= 0 { state.slots[state.head].previous = slot }
        state.head = slot
        if state.tail < 0 { state.tail = slot }
    }

    private static func remove(_ state: inout State, _ slot: Int) {
        unlink(&state, slot)
        let removed = state.slots[slot]
        state.bytes -= removed.key.utf8.count + removed.value.readableBytes
        state.index.removeValue(forKey: removed.key)
        state.slots[slot].value = ByteBuffer()
        state.slots[slot].key = ""
        state.free.append(slot)
    }
}

extension MemoryCacheDriver where C == ContinuousClock {
    /// Creates an empty cache on the continuous clock.
    public convenience init(maxEntries: Int = 100_000, maxBytes: Int = 256 * 1024 * 1024) {
        self.init(maxEntries: maxEntries, maxBytes: maxBytes, clock: ContinuousClock())
    }
}

extension URLOpenerRegistry where Resource == any CacheDriver {
    /// Adds `mem://` (options: `maxEntries`, `maxBytes`).
    public func withMemory() -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: ["maxEntries", "maxBytes"], for: "memory cache")
            return MemoryCacheDriver(maxEntries: try url.options.int("maxEntries") ?? 100_000,
                                     maxBytes: try url.options.int("maxBytes") ?? 256 * 1024 * 1024)
        }
        return copy
    }
}
