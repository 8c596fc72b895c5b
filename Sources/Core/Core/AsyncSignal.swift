import Synchronization

/// A change counter that tasks can wait on: a waker for state kept elsewhere (flow-control
/// credit, "a message was published"), without lost wake-ups.
///
/// Read ``version`` *before* checking the state you wait for; if the state is not ready, wait
/// ``wait(since:)`` that version: a change made after the read wakes you, even if it happened
/// before you started waiting.
///
/// ```swift
/// while true {
///     let version = signal.version
///     if let item = queue.withLock({ $0.popFirst() }) { return item }
///     try await signal.wait(since: version)
/// }
/// // elsewhere: queue.withLock { $0.append(item) }; signal.signal()
/// ```
public final class AsyncSignal: Sendable {
    private struct State {
        var version: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Bool, any Error>] = [:]
        var nextWaiter: UInt64 = 0
        /// Timers that fired before their waiter parked.
        var expired: Set<UInt64> = []
    }

    private let state = Mutex(State())

    /// Creates a signal.
    public init() {}

    /// The number of changes signalled so far.
    public var version: UInt64 { state.withLock { $0.version } }

    /// Records a change and wakes every waiter.
    public func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, any Error>] in
            state.version &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Returns once a change after `version` was signalled (at once if one already was).
    /// - Throws: `CancellationError` when the task is cancelled while waiting.
    public func wait(since version: UInt64) async throws {
        _ = try await park(since: version, timer: nil)
    }

    /// Like ``wait(since:)``, but gives up after `timeout` on `clock`; returns whether a change came.
    /// One timer task per wait that has to park; none when the change is already there.
    public func wait<C: Clock<Duration>>(since version: UInt64, timeout: Duration, clock: C) async throws -> Bool {
        if self.version != version { return true }
        return try await park(since: version) { id in
            Task {
                try? await clock.sleep(for: timeout)
                if !Task.isCancelled { self.expire(id) }
            }
        }
    }

    private func expire(_ id: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, any Error>? in
            guard let waiter = state.waiters.removeValue(forKey: id) else { state.expired.insert(id); return nil }
            return waiter
        }
        waiter?.resume(returning: false)
    }

    private func park(since version: UInt64, timer: ((UInt64) -> Task<Void, Never>)?) async throws -> Bool {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter &+= 1
            return state.nextWaiter
        }
        let running = timer?(id)
        defer {
            running?.cancel()
            state.withLock { _ = $0.expired.remove(id) }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
                enum Outcome { case parked, changed, timedOut, cancelled }
                let outcome = state.withLock { state -> Outcome in
                    if Task.isCancelled { return .cancelled }
                    if state.version != version { return .changed }
                    if state.expired.remove(id) != nil { return .timedOut }
                    state.waiters[id] = continuation
                    return .parked
                }
                switch outcome {
                case .parked: break
                case .changed: continuation.resume(returning: true)
                case .timedOut: continuation.resume(returning: false)
                case .cancelled: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
