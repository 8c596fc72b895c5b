import Synchronization

/// Measures how late the machine runs tasks: a task that wakes every `interval` records the longest
/// delay past its due time. A real-time check (a lease renewed every 600 ms, a TTL) that failed
/// while the watch saw a stall longer than its margin proves nothing, and is run again.
///
/// ```swift
/// for attempt in 1...3 {
///     let watch = StallWatch.start()
///     … the timed steps …
///     if await watch.stop() > .milliseconds(500), failed, attempt < 3 { continue }
///     #expect(!failed)
/// }
/// ```
public final class StallWatch: Sendable {
    private let longest = Mutex(Duration.zero)
    private let task = Mutex<Task<Void, Never>?>(nil)

    private init() {}

    /// Starts watching.
    public static func start(interval: Duration = .milliseconds(50)) -> StallWatch {
        let watch = StallWatch()
        let clock = ContinuousClock()
        let first = clock.now.advanced(by: interval)      // a task that starts late is a stall too
        let task = Task { [weak watch] in
            var due = first
            while !Task.isCancelled {
                do { try await clock.sleep(until: due) } catch { return }
                let late = clock.now - due
                guard let watch else { return }
                watch.longest.withLock { $0 = max($0, late) }
                due = clock.now.advanced(by: interval)
            }
        }
        watch.task.withLock { $0 = task }
        return watch
    }

    /// Stops watching; returns the longest delay seen.
    public func stop() async -> Duration {
        let task = self.task.withLock { $0 }
        task?.cancel()
        await task?.value
        return longest.withLock { $0 }
    }
}
