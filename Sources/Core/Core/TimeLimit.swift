import Synchronization

/// Runs `operation` with a time limit and returns as soon as either finishes: after `limit`, the
/// operation is cancelled and `deadlineExceeded` is thrown at once — even if the operation ignores
/// cancellation (it then runs on, detached, until it notices). Cancelling the caller cancels the
/// operation and throws `canceled`.
///
/// Use it where a caller must not wait on code it does not control (a tool, a plug-in, a hook):
/// ```swift
/// let output = try await withTimeLimit(.seconds(30), "tool get_weather") { try await tool(invocation) }
/// ```
public func withTimeLimit<T: Sendable>(_ limit: Duration, _ what: String,
                                      operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = TimeLimitRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            race.begin(continuation)
            let work = Task {
                do { race.finish(.success(try await operation())) } catch { race.finish(.failure(error)) }
            }
            let timer = Task {
                try? await Task.sleep(for: limit)
                if !Task.isCancelled {
                    race.finish(.failure(NimbusError(.deadlineExceeded, "\(what) did not finish within \(limit); it was cancelled")))
                }
            }
            race.attach(work: work, timer: timer)
        }
    } onCancel: {
        race.finish(.failure(NimbusError(.canceled, "\(what) was cancelled by its caller")))
    }
}

/// The shared state of one race: the continuation is resumed once, then both tasks are cancelled.
private final class TimeLimitRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var result: Result<T, any Error>?
        var tasks: [Task<Void, Never>] = []
        var done = false
    }
    private let state = Mutex(State())

    func begin(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let result = state.result { state.done = true; return result }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func attach(work: Task<Void, Never>, timer: Task<Void, Never>) {
        let finished = state.withLock { state in
            state.tasks = [work, timer]
            return state.done
        }
        if finished { work.cancel(); timer.cancel() }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            guard !state.done else { return (nil, []) }
            if state.continuation == nil {                 // before begin: the first result waits for begin
                if state.result == nil { state.result = result }
                return (nil, [])
            }
            state.done = true
            defer { state.continuation = nil }
            return (state.continuation, state.tasks)
        }
        continuation?.resume(with: result)
        for task in tasks { task.cancel() }
    }
}
