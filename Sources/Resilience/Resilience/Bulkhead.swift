import DequeModule
import NimbusCore
import Synchronization

/// Caps the calls in flight to one dependency, so a slow dependency cannot take every task and
/// connection of the service with it (resilience4j's semaphore bulkhead, with a bounded queue).
///
/// Up to ``Configuration/maxConcurrentCalls`` run at once; up to ``Configuration/maxQueuedCalls``
/// more wait, first come first served, at most ``Configuration/maxWait``; anything beyond is
/// refused at once with `resourceExhausted` — backpressure instead of an unbounded queue.
/// A cancelled waiter leaves the queue.
///
/// ```swift
/// let bulkhead = Bulkhead(name: "pdf-renderer", configuration: .init(maxConcurrentCalls: 4, maxQueuedCalls: 16, maxWait: .seconds(2)))
/// let pdf = try await bulkhead.execute { try await renderer.render(invoice) }
/// ```
public final class Bulkhead: ResilienceStrategy {
    /// The bulkhead's settings.
    public struct Configuration: Sendable {
        /// Calls that run at once.
        public var maxConcurrentCalls: Int
        /// Calls that may wait for a slot; `0` refuses at once when all slots are taken.
        public var maxQueuedCalls: Int
        /// The longest a queued call waits before `resourceExhausted`; `nil` waits until a slot frees.
        public var maxWait: Duration?

        /// Creates settings.
        public init(maxConcurrentCalls: Int = 25, maxQueuedCalls: Int = 0, maxWait: Duration? = nil) {
            self.maxConcurrentCalls = max(1, maxConcurrentCalls)
            self.maxQueuedCalls = max(0, maxQueuedCalls)
            self.maxWait = maxWait
        }
    }

    /// The name in errors.
    public let name: String
    /// The settings.
    public let configuration: Configuration
    private let clock: NimbusClock
    private let state = Mutex(State())

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var active = 0
        var waiters = Deque<Waiter>()
        var nextID = 0
    }

    /// Creates a bulkhead; the clock is for tests.
    public init(name: String, configuration: Configuration = .init(), clock: NimbusClock = .continuous) {
        self.name = name
        self.configuration = configuration
        self.clock = clock
    }

    /// Calls running now.
    public var activeCalls: Int { state.withLock { $0.active } }
    /// Calls waiting for a slot.
    public var queuedCalls: Int { state.withLock { $0.waiters.count } }

    public func execute<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await operation()
    }

    /// Takes a slot, waiting in the queue if allowed. Pair it with ``release()``.
    public func acquire() async throws {
        enum Admission { case now, wait(Int), refuse }
        let admission: Admission = state.withLock { state in
            if state.active < configuration.maxConcurrentCalls && state.waiters.isEmpty {
                state.active += 1
                return .now
            }
            guard state.waiters.count < configuration.maxQueuedCalls else { return .refuse }
            state.nextID += 1
            return .wait(state.nextID)
        }
        switch admission {
        case .now:
            return
        case .refuse:
            throw NimbusError(.resourceExhausted, "bulkhead '\(name)' is full (\(configuration.maxConcurrentCalls) calls running, \(configuration.maxQueuedCalls) waiting); shed load or raise its limits",
                              retryAfter: .seconds(1))
        case .wait(let id):
            let timer: Task<Void, Never>? = configuration.maxWait.map { wait in
                Task { [clock] in
                    do { try await clock.sleep(wait) } catch { return }
                    self.removeWaiter(id, throwing: NimbusError(.resourceExhausted, "bulkhead '\(self.name)' had no free slot within \(wait.nimbusFormatted); shed load or raise its limits",
                                                                retryAfter: .seconds(1)))
                }
            }
            defer { timer?.cancel() }
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let cancelled = state.withLock { state -> Bool in
                        if Task.isCancelled { return true }
                        state.waiters.append(Waiter(id: id, continuation: continuation))
                        return false
                    }
                    if cancelled { continuation.resume(throwing: CancellationError()) }
                }
            } onCancel: {
                removeWaiter(id, throwing: CancellationError())
            }
        }
    }

    /// Gives a slot back: to the first waiter, or to the pool.
    public func release() {
        let next: Waiter? = state.withLock { state in
            if let waiter = state.waiters.popFirst() { return waiter }   // the slot passes on; `active` stays
            state.active = max(0, state.active - 1)
            return nil
        }
        next?.continuation.resume()
    }

    private func removeWaiter(_ id: Int, throwing error: any Error) {
        let waiter: Waiter? = state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }
}
