import NIOHTTP1
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing
@testable import NimbusResilience

struct Boom: Error {}

/// Records what a breaker reports.
final class EventLog: Sendable {
    private let events = Mutex<[CircuitBreaker.Event]>([])
    var all: [CircuitBreaker.Event] { events.withLock { $0 } }
    var transitions: [String] {
        all.compactMap { if case .transition(let from, let to, _, _) = $0 { "\(from)→\(to)" } else { nil } }
    }
    func record(_ event: CircuitBreaker.Event) { events.withLock { $0.append(event) } }
}

/// A counter shared with operations.
final class Counter: Sendable {
    private let value = Mutex(0)
    @discardableResult func next() -> Int { value.withLock { $0 += 1; return $0 } }
    var count: Int { value.withLock { $0 } }
}

@Suite struct CircuitBreakerTests {
    func breaker(_ clock: ManualClock, log: EventLog, window: CircuitBreaker.Configuration.Window = .count(10),
                 minimumCalls: Int = 4, slow: Duration = .seconds(60), slowRate: Double = 1) -> CircuitBreaker {
        CircuitBreaker(name: "upstream", configuration: .init(
            window: window, minimumCalls: minimumCalls, failureRateThreshold: 0.5, slowCallRateThreshold: slowRate,
            slowCallDuration: slow, openDuration: .seconds(30), halfOpenProbes: 2, onEvent: log.record), clock: NimbusClock(clock))
    }

    @Test func opensAtTheFailureRateAndRefusesWithRetryAfter() async throws {
        let clock = ManualClock(), log = EventLog()
        let breaker = breaker(clock, log: log)
        for _ in 0..<2 { _ = try await breaker.execute { 1 } }
        _ = try? await breaker.execute { () async throws -> Int in throw Boom() }
        #expect(breaker.currentState == .closed)          // 1 of 3: below the minimum of 4 calls
        _ = try? await breaker.execute { () async throws -> Int in throw Boom() }
        #expect(breaker.currentState == .open)            // 2 of 4 = 50%
        let calls = Counter()
        let error = await #expect(throws: NimbusError.self) { try await breaker.execute { calls.next() } }
        #expect(error?.code == .unavailable)
        #expect(error?.retryAfter == .seconds(30))
        #expect(calls.count == 0)                          // refused without calling
        #expect(log.transitions == ["closed→open"])
        #expect(log.all.contains(.rejected(.open)))
        clock.advance(by: .seconds(10))
        let later = await #expect(throws: NimbusError.self) { try await breaker.execute { 1 } }
        #expect(later?.retryAfter == .seconds(20))
    }

    @Test func halfOpenProbesCloseItOrOpenItAgain() async throws {
        let clock = ManualClock(), log = EventLog()
        let breaker = breaker(clock, log: log)
        for _ in 0..<4 { _ = try? await breaker.execute { () async throws -> Int in throw Boom() } }
        #expect(breaker.currentState == .open)
        clock.advance(by: .seconds(30))
        #expect(breaker.currentState == .halfOpen)
        // Two probes, one fails: 50% → open again.
        _ = try await breaker.execute { 1 }
        _ = try? await breaker.execute { () async throws -> Int in throw Boom() }
        #expect(breaker.currentState == .open)
        clock.advance(by: .seconds(30))
        _ = try await breaker.execute { 1 }
        _ = try await breaker.execute { 1 }
        #expect(breaker.currentState == .closed)
        #expect(log.transitions == ["closed→open", "open→half-open", "half-open→open", "open→half-open", "half-open→closed"])
        // Closed again with a fresh window: one failure does not reopen it.
        _ = try? await breaker.execute { () async throws -> Int in throw Boom() }
        #expect(breaker.currentState == .closed)
    }

    @Test func halfOpenLetsOnlyItsProbesThrough() async throws {
        let clock = ManualClock(), log = EventLog()
        let breaker = breaker(clock, log: log)
        for _ in 0..<4 { _ = try? await breaker.execute { () async throws -> Int in throw Boom() } }
        clock.advance(by: .seconds(30))
        let first = try breaker.acquirePermission(), second = try breaker.acquirePermission()
        let third = #expect(throws: NimbusError.self) { try breaker.acquirePermission() }
        #expect(third?.code == .unavailable)
        // A probe that ended in a caller error gives its slot back instead of deciding.
        breaker.release(first)
        let again = try breaker.acquirePermission()
        breaker.record(second, failed: false, duration: .milliseconds(5))
        breaker.record(again, failed: false, duration: .milliseconds(5))
        #expect(breaker.currentState == .closed)
    }

    @Test func callerMistakesAndCancellationAreNotFailures() async throws {
        let clock = ManualClock(), log = EventLog()
        let breaker = breaker(clock, log: log)
        for _ in 0..<10 {
            _ = try? await breaker.execute { () async throws -> Int in throw NimbusError(.notFound, "no such user") }
            _ = try? await breaker.execute { () async throws -> Int in throw CancellationError() }
        }
        #expect(breaker.currentState == .closed)
        #expect(breaker.metrics.calls == 0)
    }

    @Test func slowCallsOpenIt() async throws {
        let clock = ManualClock(), log = EventLog()
        let breaker = breaker(clock, log: log, slow: .seconds(2), slowRate: 0.5)
        for index in 0..<4 {
            let task = Task { try await breaker.execute { try await clock.sleep(for: .seconds(index < 2 ? 3 : 1)); return index } }
            await clock.waitForSleepers(1)
            clock.advance(by: .seconds(index < 2 ? 3 : 1))
            _ = try await task.value
        }
        #expect(breaker.currentState == .open)
        let opened = log.all.first { if case .transition(_, .open, _, _) = $0 { true } else { false } }
        #expect(opened == .transition(from: .closed, to: .open, failureRate: 0, slowCallRate: 0.5))
    }

    @Test func aTimeWindowForgetsOldOutcomes() async throws {
        let clock = ManualClock(), log = EventLog()
        let breaker = breaker(clock, log: log, window: .time(seconds: 10))
        for _ in 0..<3 { _ = try? await breaker.execute { () async throws -> Int in throw Boom() } }
        #expect(breaker.metrics.failures == 3)
        clock.advance(by: .seconds(11))
        #expect(breaker.metrics.calls == 0)
        for _ in 0..<3 { _ = try await breaker.execute { 1 } }
        _ = try? await breaker.execute { () async throws -> Int in throw Boom() }
        #expect(breaker.currentState == .closed)          // 1 of 4 in the window, the 3 old failures are gone
        // A count window of 10 would have opened: 4 of 7.
    }

    @Test func forceOpenAndReset() async throws {
        let clock = ManualClock(), log = EventLog()
        let breaker = breaker(clock, log: log)
        breaker.forceOpen()
        clock.advance(by: .seconds(3600))
        await #expect(throws: NimbusError.self) { try await breaker.execute { 1 } }
        breaker.reset()
        #expect(try await breaker.execute { 2 } == 2)
        #expect(log.transitions == ["closed→forced-open", "forced-open→closed"])
    }
}

@Suite struct BulkheadTests {
    @Test func runsUpToTheLimitQueuesThenRefuses() async throws {
        let clock = ManualClock()
        let bulkhead = Bulkhead(name: "renderer", configuration: .init(maxConcurrentCalls: 2, maxQueuedCalls: 1), clock: NimbusClock(clock))
        let gate = AsyncSignal()
        let started = Counter()
        let running = (0..<2).map { _ in Task { try await bulkhead.execute { started.next(); try await gate.wait(since: 0); return 1 } } }
        while bulkhead.activeCalls < 2 { await Task.yield() }
        let queued = Task { try await bulkhead.execute { started.next(); return 2 } }
        while bulkhead.queuedCalls < 1 { await Task.yield() }
        let refused = await #expect(throws: NimbusError.self) { try await bulkhead.execute { 3 } }
        #expect(refused?.code == .resourceExhausted)
        #expect(started.count == 2)
        gate.signal()
        for task in running { _ = try await task.value }
        #expect(try await queued.value == 2)
        #expect(bulkhead.activeCalls == 0)
    }

    @Test func aQueuedCallGivesUpAfterMaxWait() async throws {
        let clock = ManualClock()
        let bulkhead = Bulkhead(name: "renderer", configuration: .init(maxConcurrentCalls: 1, maxQueuedCalls: 4, maxWait: .seconds(2)),
                                clock: NimbusClock(clock))
        let gate = AsyncSignal()
        let holder = Task { try await bulkhead.execute { try await gate.wait(since: 0) } }
        while bulkhead.activeCalls < 1 { await Task.yield() }
        let waiter = Task { try await bulkhead.execute { 1 } }
        while bulkhead.queuedCalls < 1 { await Task.yield() }
        await clock.waitForSleepers(1)
        clock.advance(by: .seconds(2))
        let error = await #expect(throws: NimbusError.self) { try await waiter.value }
        #expect(error?.code == .resourceExhausted)
        #expect(bulkhead.queuedCalls == 0)
        gate.signal()
        try await holder.value
        #expect(bulkhead.activeCalls == 0)
    }

    @Test func aCancelledWaiterLeavesTheQueue() async throws {
        let bulkhead = Bulkhead(name: "renderer", configuration: .init(maxConcurrentCalls: 1, maxQueuedCalls: 1))
        let gate = AsyncSignal()
        let holder = Task { try await bulkhead.execute { try await gate.wait(since: 0) } }
        while bulkhead.activeCalls < 1 { await Task.yield() }
        let waiter = Task { try await bulkhead.execute { 1 } }
        while bulkhead.queuedCalls < 1 { await Task.yield() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(bulkhead.queuedCalls == 0)
        // The freed queue place takes a new caller.
        let next = Task { try await bulkhead.execute { 7 } }
        while bulkhead.queuedCalls < 1 { await Task.yield() }
        gate.signal()
        try await holder.value
        #expect(try await next.value == 7)
    }
}

@Suite struct TimeoutAndHedgingTests {
    @Test func aTimeoutCancelsTheOperation() async throws {
        let clock = ManualClock()
        let timeout = Timeout(.seconds(1), clock: NimbusClock(clock))
        let cancelled = Counter()
        let task = Task {
            try await timeout.execute {
                do { try await clock.sleep(for: .seconds(10)) } catch { cancelled.next(); throw error }
                return 1
            }
        }
        await clock.waitForSleepers(2)
        clock.advance(by: .seconds(1))
        let error = await #expect(throws: NimbusError.self) { try await task.value }
        #expect(error?.code == .deadlineExceeded)
        #expect(cancelled.count == 1)
        #expect(try await Timeout(.seconds(5), clock: NimbusClock(clock)).execute { 42 } == 42)
    }

    @Test func aHedgeStartsAfterTheDelayAndTheFirstAnswerWins() async throws {
        let clock = ManualClock()
        let hedging = Hedging(.init(maxHedgedAttempts: 2, delay: .milliseconds(100)), clock: NimbusClock(clock))
        let attempts = Counter(), cancelled = Counter()
        let task = Task {
            try await hedging.execute { () async throws -> String in
                let attempt = attempts.next()
                if attempt == 1 {
                    do { try await clock.sleep(for: .seconds(60)) } catch { cancelled.next(); throw error }
                    return "slow"
                }
                return "hedge \(attempt)"
            }
        }
        await clock.waitForSleepers(2)        // the first attempt and the hedge timer
        clock.advance(by: .milliseconds(100))
        #expect(try await task.value == "hedge 2")
        #expect(attempts.count == 2)
        #expect(cancelled.count == 1)
    }

    @Test func aFailedAttemptStartsTheNextAtOnceAndAllFailingThrowsTheLast() async throws {
        let hedging = Hedging(.init(maxHedgedAttempts: 2, delay: .seconds(3600)))
        let attempts = Counter()
        let error = await #expect(throws: NimbusError.self) {
            try await hedging.execute { () async throws -> Int in
                throw NimbusError(.unavailable, "attempt \(attempts.next())")
            }
        }
        #expect(attempts.count == 3)
        #expect(error?.message == "attempt 3")
        let second = Counter()
        #expect(try await hedging.execute { () async throws -> Int in
            if second.next() == 1 { throw NimbusError(.unavailable, "first") }
            return 2
        } == 2)
    }
}

@Suite struct AdaptiveLimitTests {
    @Test func aimdShrinksOnDropsAndGrowsWhenBusy() async throws {
        let limit = AdaptiveConcurrencyLimit(name: "inventory", algorithm: .aimd(.init(initialLimit: 10, minLimit: 2, maxLimit: 12, backoffRatio: 0.5)))
        limit.sample(rtt: .milliseconds(5), inFlight: 1, dropped: true)
        #expect(limit.limit == 5)
        limit.sample(rtt: .seconds(9), inFlight: 1, dropped: false)         // slower than the 5 s timeout: a drop
        #expect(limit.limit == 2)
        limit.sample(rtt: .milliseconds(5), inFlight: 2, dropped: false)
        limit.sample(rtt: .milliseconds(5), inFlight: 2, dropped: false)
        #expect(limit.limit == 4)
        limit.sample(rtt: .milliseconds(5), inFlight: 1, dropped: false)     // application-limited: no growth
        #expect(limit.limit == 4)
    }

    @Test func callsAboveTheLimitAreRefused() async throws {
        let limit = AdaptiveConcurrencyLimit(name: "inventory", algorithm: .aimd(.init(initialLimit: 2, minLimit: 2, maxLimit: 2)))
        let gate = AsyncSignal()
        let holders = (0..<2).map { _ in Task { try await limit.execute { try await gate.wait(since: 0) } } }
        while limit.inFlight < 2 { await Task.yield() }
        let error = await #expect(throws: NimbusError.self) { try await limit.execute { 1 } }
        #expect(error?.code == .resourceExhausted)
        gate.signal()
        for holder in holders { try await holder.value }
        #expect(limit.inFlight == 0)
    }

    @Test func gradientFollowsLatencyDownThenRecovers() async throws {
        let limit = AdaptiveConcurrencyLimit(name: "db", algorithm: .gradient(.init(initialLimit: 50, minLimit: 5, maxLimit: 100, longWindow: 100)))
        for _ in 0..<50 { limit.sample(rtt: .milliseconds(10), inFlight: 50, dropped: false) }
        let steady = limit.limit
        #expect(steady >= 50)                           // flat latency: the queue allowance lets it grow
        for _ in 0..<30 { limit.sample(rtt: .milliseconds(100), inFlight: limit.limit, dropped: false) }
        let congested = limit.limit
        #expect(congested < steady / 2)                  // 10× the latency: the limit falls towards the floor
        for _ in 0..<200 { limit.sample(rtt: .milliseconds(10), inFlight: limit.limit, dropped: false) }
        #expect(limit.limit > congested)
    }
}

@Suite struct PipelineTests {
    @Test func strategiesNestOutermostFirstAndFallBack() async throws {
        let clock = ManualClock(), log = EventLog()
        let breaker = CircuitBreaker(name: "prices", configuration: .init(window: .count(4), minimumCalls: 2, openDuration: .seconds(30), onEvent: log.record),
                                     clock: NimbusClock(clock))
        let retry = Retry(RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(10), jitter: .none), clock: NimbusClock(clock))
        let pipeline = ResiliencePipeline([retry, breaker])
        let calls = Counter()
        let task = Task {
            try await pipeline.execute(fallback: { error in "cached (\((error as? NimbusError)?.code.description ?? "?"))" }) { () async throws -> String in
                calls.next()
                throw NimbusError(.unavailable, "prices is down")
            }
        }
        // Attempt 1 fails, retry after 10 ms; attempt 2 fails and opens the breaker; attempt 3 is refused by it.
        await clock.waitForSleepers(1); clock.advance(by: .milliseconds(10))
        await clock.waitForSleepers(1); clock.advance(by: .milliseconds(20))
        #expect(try await task.value == "cached (unavailable)")
        #expect(calls.count == 2)
        #expect(log.transitions == ["closed→open"])
        #expect(log.all.contains(.rejected(.open)))
    }

    @Test func cancellationIsNeverReplacedByAFallback() async throws {
        let task = Task {
            try await ResiliencePipeline.empty.execute(fallback: { _ in 0 }) { () async throws -> Int in
                try await Task.sleep(for: .seconds(3600))
                return 1
            }
        }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}

@Suite struct ResilienceMiddlewareTests {
    /// A failing upstream (503) trips the breaker; the client then fails fast without calling it; after the
    /// open period a probe finds it healthy again and calls flow.
    @Test func aFailingUpstreamTripsTheBreakerAndItRecovers() async throws {
        let server = try await FakeHTTPServer.start()
        let healthy = Mutex(false)
        server.route(.GET, "/price") { _ in
            healthy.withLock { $0 } ? .json(200, #"{"price": 42}"#) : .json(503, #"{"error": "overloaded"}"#)
        }
        let clock = ManualClock(), log = EventLog()
        let breaker = CircuitBreaker(name: "prices", configuration: .init(window: .count(10), minimumCalls: 3, openDuration: .seconds(30),
                                                                           halfOpenProbes: 1, onEvent: log.record), clock: NimbusClock(clock))
        let http = NimbusHTTPClient(configuration: .init(service: "prices", baseURL: server.baseURL, retry: .none,
                                                         middlewares: [ResilienceMiddleware(ResiliencePipeline([breaker]))]))
        for _ in 0..<3 {
            let response = try await http.send(NimbusHTTPRequest(.GET, "/price", operation: "price"))
            #expect(response.status == .serviceUnavailable)     // the vendor's answer still reaches the adapter
        }
        #expect(breaker.currentState == .open)
        let served = server.requests.count
        let refused = await #expect(throws: NimbusError.self) {
            try await http.send(NimbusHTTPRequest(.GET, "/price", operation: "price"))
        }
        #expect(refused?.code == .unavailable)
        #expect(server.requests.count == served)                 // failed fast: the upstream was not called
        healthy.withLock { $0 = true }
        clock.advance(by: .seconds(30))
        let response = try await http.send(NimbusHTTPRequest(.GET, "/price", operation: "price"))
        #expect(response.status == .ok)
        #expect(breaker.currentState == .closed)
        #expect(log.transitions == ["closed→open", "open→half-open", "half-open→closed"])
        await server.shutdown()
    }
}
