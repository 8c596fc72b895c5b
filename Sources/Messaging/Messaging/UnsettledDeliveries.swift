import Synchronization

/// What a driver delivered and has not yet seen settled, kept by receipt, with a bound.
///
/// Some brokers cannot hand a message back by its receipt (SQS, Pub/Sub), so a driver that
/// dead-letters on demand republishes the copy it keeps here. The memory is bounded: past
/// `limit` entries the oldest delivery is forgotten, and dead-lettering it later fails with
/// `failedPrecondition` instead of the process growing without end when a consumer never settles.
///
/// ```swift
/// let unsettled = UnsettledDeliveries<DeliveredMessage>(limit: 100_000)
/// unsettled.remember(message, for: message.receipt)
/// let copy = unsettled[receipt]          // nil once settled or forgotten
/// unsettled.forget(receipt)              // on ack or requeue
/// ```
public final class UnsettledDeliveries<Value: Sendable>: Sendable {
    /// The most deliveries kept; the oldest is forgotten past it.
    public let limit: Int
    private let state: Mutex<State>

    private struct State {
        var entries: [String: (value: Value, order: Int)] = [:]
        /// Receipts in delivery order; entries forgotten or replaced since are skipped when evicting.
        var order: [(receipt: String, order: Int)] = []
        var head = 0
        var next = 0
    }

    /// A memory of at most `limit` deliveries (at least one).
    public init(limit: Int = 100_000) {
        self.limit = max(1, limit)
        self.state = Mutex(State())
    }

    /// How many deliveries are remembered.
    public var count: Int { state.withLock { $0.entries.count } }

    /// Remembers `value` under `receipt`, forgetting the oldest deliveries past ``limit``.
    public func remember(_ value: Value, for receipt: String) {
        state.withLock { state in
            state.next += 1
            state.entries[receipt] = (value, state.next)
            state.order.append((receipt, state.next))
            while state.entries.count > limit, state.head < state.order.count {
                let oldest = state.order[state.head]
                state.head += 1
                if state.entries[oldest.receipt]?.order == oldest.order { state.entries.removeValue(forKey: oldest.receipt) }
            }
            // Drop the skipped prefix once it is most of the array, so the order list stays near `entries`' size.
            if state.head > 1024, state.head * 2 > state.order.count {
                state.order.removeFirst(state.head)
                state.head = 0
            }
            if state.order.count - state.head > 2 * limit + 1024 {
                // Settled receipts left stale positions behind: keep only live ones.
                state.order = state.order[state.head...].filter { state.entries[$0.receipt]?.order == $0.order }
                state.head = 0
            }
        }
    }

    /// The delivery remembered under `receipt`, if it is still unsettled and not forgotten.
    public subscript(receipt: String) -> Value? { state.withLock { $0.entries[receipt]?.value } }

    /// Forgets `receipt` (the message was settled).
    public func forget(_ receipt: String) { _ = state.withLock { $0.entries.removeValue(forKey: receipt) } }

    /// Forgets every one of `receipts`.
    public func forget(_ receipts: some Sequence<String>) {
        state.withLock { state in for receipt in receipts { state.entries.removeValue(forKey: receipt) } }
    }
}
