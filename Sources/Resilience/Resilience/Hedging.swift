import NimbusCore

/// Sends a second (third…) copy of a slow call and takes whichever answers first — the tail-latency
/// cure of "The Tail at Scale" (Polly's hedging strategy). Only for idempotent calls.
///
/// The first attempt starts at once; each ``Configuration/delay`` without an answer starts another,
/// up to ``Configuration/maxHedgedAttempts`` extra ones; an attempt that fails with an error
/// ``Configuration/shouldHedge`` accepts starts the next one at once. The first success wins and the
/// others are cancelled; if every attempt fails, the last error is thrown.
///
/// ```swift
/// let hedging = Hedging(.init(maxHedgedAttempts: 1, delay: .milliseconds(50)))   // ~p95 of the call
/// let profile = try await hedging.execute { try await profiles.get(id) }
/// ```
public struct Hedging: ResilienceStrategy {
    /// The strategy's settings.
    public struct Configuration: Sendable {
        /// Extra attempts besides the first.
        public var maxHedgedAttempts: Int
        /// How long to wait for an answer before starting the next attempt (about the call's p95).
        public var delay: Duration
        /// Which errors start the next attempt at once; others end the call.
        public var shouldHedge: @Sendable (any Error) -> Bool

        /// Creates settings.
        public init(maxHedgedAttempts: Int = 1, delay: Duration = .seconds(2),
                    shouldHedge: @escaping @Sendable (any Error) -> Bool = { !($0 is CancellationError) }) {
            self.maxHedgedAttempts = max(0, maxHedgedAttempts)
            self.delay = delay
            self.shouldHedge = shouldHedge
        }
    }

    /// The settings.
    public let configuration: Configuration
    let clock: NimbusClock

    /// Creates the strategy; the clock is for tests.
    public init(_ configuration: Configuration = .init(), clock: NimbusClock = .continuous) {
        self.configuration = configuration
        self.clock = clock
    }

    private enum Event<T: Sendable>: Sendable {
        case finished(Result<T, any Error>)
        case delayElapsed(Int)
    }

    public func execute<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let total = configuration.maxHedgedAttempts + 1
        let delay = configuration.delay, clock = self.clock
        return try await withThrowingTaskGroup(of: Event<T>.self) { group in
            defer { group.cancelAll() }
            var started = 0, running = 0, timerGeneration = 0
            var lastError: (any Error)?
            func start() {
                started += 1
                running += 1
                group.addTask {
                    do { return .finished(.success(try await operation())) } catch { return .finished(.failure(error)) }
                }
                guard started < total else { return }
                timerGeneration += 1
                let generation = timerGeneration
                group.addTask {
                    try await clock.sleep(delay)
                    return .delayElapsed(generation)
                }
            }
            start()
            while let event = try await group.next() {
                switch event {
                case .finished(.success(let value)):
                    return value
                case .finished(.failure(let error)):
                    running -= 1
                    lastError = error
                    if started < total, configuration.shouldHedge(error) {
                        start()
                    } else if running == 0 {
                        throw error
                    }
                case .delayElapsed(let generation):
                    // Only the latest attempt's timer counts: an attempt started early by a failure has its own.
                    if generation == timerGeneration, started < total { start() }
                }
                if running == 0 { break }
            }
            throw lastError ?? CancellationError()
        }
    }
}
