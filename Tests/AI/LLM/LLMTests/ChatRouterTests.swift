import Foundation
import NimbusCache
import NimbusCacheMemory
import NimbusCore
import NimbusLLM
import NimbusLLMScripted
import Synchronization
import Testing

/// Deployments are memory models with scripted failures; the clock is manual.
final class RouterRig: Sendable {
    final class State: Sendable {
        let records = Mutex<[ChatRouter.CallRecord]>([])
        let clock = Mutex(ContinuousClock.now)
        let nextRandom = Mutex<[Double]>([])
    }

    let memories: [ScriptedChatModelDriver]
    let router: ChatRouter
    let model: ChatModel
    let state = State()

    init(_ layout: [(alias: String, weight: Double, rpm: Int?)], configuration: ChatRouter.Configuration = .init()) {
        memories = layout.map { _ in ScriptedChatModelDriver(configuration: .init(models: [])) }
        var configuration = configuration
        let deployments = zip(layout, memories).enumerated().map { index, pair in
            ChatRouter.Deployment(alias: pair.0.alias, model: ChatModel(driver: pair.1, configuration: .init(defaultModel: "x", retry: .none)),
                                  upstreamModel: "upstream-\(index)", name: "d\(index)", weight: pair.0.weight, requestsPerMinute: pair.0.rpm)
        }
        let state = self.state
        configuration.onCall = { record in state.records.withLock { $0.append(record) } }
        router = ChatRouter(deployments: deployments, configuration: configuration,
                            random: { state.nextRandom.withLock { $0.isEmpty ? 0 : $0.removeFirst() } },
                            now: { state.clock.withLock { $0 } },
                            sleep: { duration in state.clock.withLock { $0 = $0 + duration } })
        model = ChatModel(driver: router, configuration: .init(defaultModel: layout.first?.alias ?? "x", retry: .none))
    }

    var records: [ChatRouter.CallRecord] { state.records.withLock { $0 } }
    var now: ContinuousClock.Instant { state.clock.withLock { $0 } }
    func draws(_ values: [Double]) { state.nextRandom.withLock { $0 = values } }
    func advance(_ duration: Duration) { state.clock.withLock { $0 = $0 + duration } }
    func served(_ index: Int) -> Int { memories[index].requests.count }
}

@Suite struct ChatRouterTests {
    @Test func weightedRoutingFollowsTheRandomDraw() async throws {
        let rig = RouterRig([("m", 3, nil), ("m", 1, nil)])
        rig.draws([0.1, 0.74, 0.76, 0.99])   // total weight 4: [0, 3) → d0, [3, 4) → d1
        for _ in 0..<4 { _ = try await rig.model.chat([.user("hi")]) }
        #expect(rig.served(0) == 2)
        #expect(rig.served(1) == 2)
        #expect(rig.memories[0].requests.first?.model == "upstream-0")
    }

    @Test func aRateLimitedDeploymentFailsOverAndCoolsDownForRetryAfter() async throws {
        let rig = RouterRig([("m", 1, nil), ("m", 1, nil)])
        rig.memories[0].enqueue(.failure(.rateLimited(retryAfter: .seconds(20))))
        let response = try await rig.model.chat([.user("hi")])          // random 0 → d0 first, then d1
        #expect(response.text == "hi")
        #expect(rig.router.isCoolingDown("d0"))
        _ = try await rig.model.chat([.user("again")])
        #expect(rig.served(0) == 1 && rig.served(1) == 2)
        rig.advance(.seconds(21))
        #expect(!rig.router.isCoolingDown("d0"))
        _ = try await rig.model.chat([.user("later")])
        #expect(rig.served(0) == 2)
        let records = rig.records
        #expect(records.first?.deployment == "d1")
        #expect(records.first?.attempts == 1)
    }

    @Test func fallbackModelsAfterTransientFailuresAndLargerContextAfterOverflow() async throws {
        let rig = RouterRig([("small", 1, nil), ("backup", 1, nil), ("large", 1, nil)],
                            configuration: .init(fallbacks: ["small": ["backup"]], contextWindowFallbacks: ["small": ["large"]]))
        rig.memories[0].enqueue(.failure(.overloaded))
        #expect(try await rig.model.chat(ChatRequest(model: "small", messages: [.user("a")])).text == "a")
        #expect(rig.served(1) == 1)

        rig.memories[0].enqueue(.failure(.contextLengthExceeded))
        rig.advance(.seconds(61))
        #expect(try await rig.model.chat(ChatRequest(model: "small", messages: [.user("long")])).text == "long")
        #expect(rig.served(2) == 1)
        #expect(rig.served(1) == 1, "context overflow goes to the larger model, not the ordinary fallback")
    }

    @Test func clientErrorsAreNotRetriedElsewhere() async throws {
        let rig = RouterRig([("m", 1, nil), ("m", 1, nil)], configuration: .init(fallbacks: ["m": ["m"]]))
        rig.memories[0].enqueue(.failure(.invalidRequest("bad schema")))
        do { _ = try await rig.model.chat([.user("hi")]); Issue.record("expected invalidArgument") } catch let error as NimbusError {
            #expect(error.code == .invalidArgument)
        }
        #expect(rig.served(1) == 0)
        #expect(!rig.router.isCoolingDown("d0"))
    }

    @Test func requestsPerMinuteLimitsSpreadLoadAndRefuseWhenFull() async throws {
        let rig = RouterRig([("m", 1, 1), ("m", 1, 1)], configuration: .init(maxWait: .zero))
        _ = try await rig.model.chat([.user("1")])
        _ = try await rig.model.chat([.user("2")])
        #expect(rig.served(0) == 1 && rig.served(1) == 1)
        do { _ = try await rig.model.chat([.user("3")]); Issue.record("expected a refusal") } catch let error as NimbusError {
            #expect(error.code == .unavailable)
            #expect(error.retryAfter != nil)
        }
        rig.advance(.seconds(60))
        _ = try await rig.model.chat([.user("4")])
    }

    @Test func allCoolingDownWaitsUpToMaxWait() async throws {
        let rig = RouterRig([("m", 1, nil)], configuration: .init(maxWait: .seconds(5)))
        rig.memories[0].enqueue(.failure(.rateLimited(retryAfter: .seconds(3))))
        await #expect(throws: NimbusError.self) { try await rig.model.chat([.user("first")]) }
        let before = rig.now
        #expect(try await rig.model.chat([.user("second")]).text == "second")
        #expect(rig.now - before >= .seconds(3), "waited for the cooldown")
    }

    enum Caller { @TaskLocal static var key: String? }

    @Test func eachPartitionHasItsOwnCache() async throws {
        let rig = RouterRig([("m", 1, nil)], configuration: .init(cache: Cache(driver: MemoryCacheDriver()), cachePartition: { Caller.key }))
        let request = ChatRequest(messages: [.user("my private prompt")], temperature: 0)
        _ = try await Caller.$key.withValue("key-a") { try await rig.model.chat(request) }
        _ = try await Caller.$key.withValue("key-b") { try await rig.model.chat(request) }
        #expect(rig.served(0) == 2, "key-b must not be answered from key-a's cache")
        _ = try await Caller.$key.withValue("key-a") { try await rig.model.chat(request) }
        #expect(rig.served(0) == 2, "key-a's own repeat is a hit")
        #expect(rig.records.map(\.cached) == [false, false, true])
    }

    @Test func exactRepeatsComeFromTheCacheStreamedOrNot() async throws {
        let rig = RouterRig([("m", 1, nil)], configuration: .init(cache: Cache(driver: MemoryCacheDriver())))
        let request = ChatRequest(messages: [.user("cache me")], temperature: 0)
        let first = try await rig.model.chat(request)
        let second = try await rig.model.chat(request)
        #expect(first == second)
        #expect(rig.served(0) == 1)
        let streamed = try await rig.model.stream(request).collect()
        #expect(streamed == first)
        #expect(rig.served(0) == 1)
        var other = request
        other.temperature = 0.5
        _ = try await rig.model.chat(other)
        #expect(rig.served(0) == 2)
        #expect(rig.records.map(\.cached) == [false, true, true, false])
    }

    @Test func streamsFailOverBeforeTheFirstByteAndReportUsage() async throws {
        let rig = RouterRig([("m", 1, nil), ("m", 1, nil)])
        rig.memories[0].enqueue(.failure(.serverError))
        let response = try await rig.model.stream(ChatRequest(messages: [.user("streamed words")])).collect()
        #expect(response.text == "streamed words")
        let record = try #require(rig.records.last)
        #expect(record.deployment == "d1")
        #expect(record.usage == response.usage)
        #expect(record.outcome == "ok")
    }

    /// Issue 15 §2: a consumer that stops reading (a client that disconnected before the usage event)
    /// is still billed, and the deployment's in-flight count comes back down.
    @Test func abandonedStreamsAreAccountedOnce() async throws {
        let rig = RouterRig([("m", 1, nil)])
        let words = (1...40).map { "word\($0)" }.joined(separator: " ")
        do {
            let stream = try await rig.model.stream(ChatRequest(messages: [.user(words)]))
            #expect(rig.router.inFlight["d0"] == 1)
            var received = 0
            for try await event in stream {
                if case .textDelta = event { received += 1 }
                if received == 10 { break }
            }
        }
        #expect(rig.router.inFlight["d0"] == 0, "the in-flight counter leaked")
        let cancelled = try #require(rig.records.last)
        #expect(cancelled.outcome == "cancelled" && rig.records.count == 1, "\(rig.records)")
        let usage = try #require(cancelled.usage)
        #expect(usage.inputTokens > 0 && usage.outputTokens > 0 && usage.outputTokens < 40, "prompt plus the part received: \(usage)")

        // A stream dropped without being read at all.
        _ = try await rig.model.stream(ChatRequest(messages: [.user("never read")]))
        #expect(rig.router.inFlight["d0"] == 0)
        #expect(rig.records.count == 2 && rig.records.last?.outcome == "cancelled", "\(rig.records)")

        // A stream read to the end is accounted once, as ok.
        _ = try await rig.model.stream(ChatRequest(messages: [.user("read to the end")])).collect()
        #expect(rig.records.count == 3 && rig.records.last?.outcome == "ok")
        #expect(rig.router.inFlight["d0"] == 0)
    }

    @Test func leastBusyAndLowestLatencyStrategies() async throws {
        let busy = RouterRig([("m", 1, nil), ("m", 1, nil)], configuration: .init(strategy: .leastBusy))
        busy.memories[0].enqueue(.init(text: "slow", latency: .milliseconds(300)))
        async let slow = busy.model.chat([.user("slow")])
        try await Task.sleep(for: .milliseconds(50))
        _ = try await busy.model.chat([.user("fast")])
        _ = try await slow
        #expect(busy.served(1) == 1, "the busy deployment is avoided")

        let latency = RouterRig([("m", 1, nil), ("m", 1, nil)], configuration: .init(strategy: .lowestLatency))
        for _ in 0..<4 { _ = try await latency.model.chat([.user("x")]) }
        #expect(latency.served(0) >= 1 && latency.served(1) >= 1, "untried deployments are tried first")
    }

    @Test func unknownModelsAreNotFound() async throws {
        let rig = RouterRig([("m", 1, nil)])
        do { _ = try await rig.model.chat(ChatRequest(model: "nope", messages: [.user("x")])) } catch let error as NimbusError {
            #expect(error.code == .notFound)
            #expect(error.message.contains("configured models: m"))
        }
        #expect(try await rig.model.models().map(\.id) == ["m"])
    }
}
