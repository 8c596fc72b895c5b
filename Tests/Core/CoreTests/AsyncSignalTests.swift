import NimbusCore
import Testing

@Suite("AsyncSignal", .timeLimit(.minutes(1)))
struct AsyncSignalTests {
    @Test("a change made after the version was read wakes the waiter, even before it parks")
    func noLostWakeUp() async throws {
        let signal = AsyncSignal()
        let version = signal.version
        signal.signal()
        try await signal.wait(since: version)   // returns at once
        #expect(try await signal.wait(since: version, timeout: .seconds(30), clock: ContinuousClock()))
    }

    @Test("a timed wait returns false when nothing changes, also with a zero timeout, and true when something does")
    func timeouts() async throws {
        let signal = AsyncSignal()
        for timeout in [Duration.zero, .milliseconds(1), .milliseconds(50)] {
            #expect(try await signal.wait(since: signal.version, timeout: timeout, clock: ContinuousClock()) == false)
        }
        let version = signal.version
        let waiter = Task { try await signal.wait(since: version, timeout: .seconds(30), clock: ContinuousClock()) }
        try await Task.sleep(for: .milliseconds(50))
        signal.signal()
        #expect(try await waiter.value)
    }

    @Test("cancelling a waiter throws CancellationError")
    func cancellation() async throws {
        let signal = AsyncSignal()
        let waiter = Task { try await signal.wait(since: signal.version) }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
    }
}
