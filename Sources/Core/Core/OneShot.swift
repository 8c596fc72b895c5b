import Synchronization

/// A result that arrives once and is awaited once: the slot a request waits in until its response —
/// or the failure of its connection — completes it. Completing twice keeps the first result.
///
/// ```swift
/// let reply = OneShot<Frame>()
/// pending[id] = reply                      // the connection's reader calls reply.complete(.success(frame))
/// let frame = try await reply.value
/// ```
public final class OneShot<Value: Sendable>: Sendable {
    private let state = Mutex<(result: Result<Value, any Error>?, continuation: CheckedContinuation<Value, any Error>?)>((nil, nil))

    /// Creates an empty slot.
    public init() {}

    /// Completes the slot; later completions are ignored.
    public func complete(_ result: Result<Value, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<Value, any Error>? in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(with: result)
    }

    /// The result, once it has come.
    public var value: Value {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<Value, any Error>? in
                    if let result = state.result { return result }
                    state.continuation = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
    }
}
