import AsyncHTTPClient
import Foundation
import NIOCore
import NimbusCore
import NimbusGateway
import NimbusTesting
import Testing

/// Issue 15 §1–§2: every call is accounted however it ends, concurrent calls cannot overshoot a
/// budget, streams per key are capped, and instances sharing a database see each other's keys and spend.
@Suite(.timeLimit(.minutes(2))) struct GatewayAccountingTests {
    static let master = "sk-master-test"

    /// `testConfiguration()` plus `slow`: a priced memory model that streams a long reply over ~4 s.
    static func configuration(maxStreamsPerKey: Int? = 64) -> GatewayConfiguration {
        var slow = GatewayConfiguration.Model(name: "slow", deployments: [.init(provider: "memory", model: "memory-slow", latencyMs: 4000)])
        slow.inputCostPerMillion = 1_000_000
        slow.outputCostPerMillion = 1_000_000
        var configuration = testConfiguration(extraModels: [slow])
        configuration.maxStreamsPerKey = maxStreamsPerKey
        return configuration
    }

    static let longPrompt = (1...60).map { "word\($0)" }.joined(separator: " ")

    /// Opens a streamed chat call and reads until `events` SSE events arrived, then drops the connection.
    static func readThenDisconnect(_ rig: GatewayRig, key: String, events: Int) async throws -> Int {
        var request = HTTPClientRequest(url: rig.baseURL + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: GatewayRig.chat(longPrompt, model: "slow", stream: true).description))
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var seen = 0
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            #expect(response.status == .ok)
            for try await chunk in response.body {
                seen += String(buffer: chunk).components(separatedBy: "data: ").count - 1
                if seen >= events { break }
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()   // closes the connection mid-stream
        return seen
    }

    @Test func aStreamWhoseClientDisconnectsIsBilledAndReleasesEverything() async throws {
        let rig = try await GatewayRig.start(Self.configuration())
        defer { Task { await rig.shutdown() } }
        let created = try await rig.call(.POST, "/key/generate", ["name": "streamer", "max_budget": 1_000_000], key: Self.master).body
        let key = try #require(created["key"]?.stringValue), id = try #require(created["key_id"]?.stringValue)
        #expect(try await Self.readThenDisconnect(rig, key: key, events: 5) >= 5)
        // The server notices the closed connection at its next write (one chunk, ~65 ms later).
        var record: JSONValue?
        for _ in 0..<50 where record == nil {
            try await Task.sleep(for: .milliseconds(100))
            try await rig.gateway.store.flush()
            if rig.gateway.router.inFlight.values.allSatisfy({ $0 == 0 }), rig.gateway.store.reserved(keyID: id) == 0 {
                let spend = try await rig.call(.GET, "/v1/gateway/spend", key: Self.master).body
                record = spend["keys"]?.arrayValue?.first { $0["key_id"]?.stringValue == id }
            }
        }
        let row = try #require(record, "the abandoned stream was never accounted (in flight: \(rig.gateway.router.inFlight))")
        #expect(row["requests"] == 1)
        let input = try #require(row["input_tokens"]?.numberValue), output = try #require(row["output_tokens"]?.numberValue)
        #expect(input >= 60 && output >= 1 && output < 60, "billed for the prompt and the part sent, not the whole reply: \(row)")
        let spent = try #require(rig.gateway.store.key(id: id)?.spent)
        #expect(spent == Decimal(input + output), "at $1 a token, the key's spend is its billed tokens: \(spent)")
        #expect(rig.gateway.store.reserved(keyID: id) == 0, "the budget reservation was released")
    }

    @Test func concurrentCallsCannotOvershootABudget() async throws {
        let rig = try await GatewayRig.start(Self.configuration())
        defer { Task { await rig.shutdown() } }
        // One call of 60 words at $1 a token reserves over $60 + 50 output tokens; the budget is $100.
        let created = try await rig.call(.POST, "/key/generate", ["name": "budget", "max_budget": 100], key: Self.master).body
        let key = try #require(created["key"]?.stringValue)
        let body: JSONValue = ["model": "slow", "max_tokens": 50, "messages": [["role": "user", "content": .string(Self.longPrompt)]]]
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<6 { group.addTask { try await rig.call(.POST, "/v1/chat/completions", body, key: key).status } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Before reservations every call was checked against spend that had not happened yet, and all 6 ran.
        #expect(statuses.filter { $0 == 200 }.count == 1, "concurrent calls see each other's reservations: \(statuses)")
        #expect(statuses.filter { $0 == 400 }.count == 5, "\(statuses)")
    }

    @Test func streamsPerKeyAreCapped() async throws {
        let rig = try await GatewayRig.start(Self.configuration(maxStreamsPerKey: 2))
        defer { Task { await rig.shutdown() } }
        let key = try #require(try await rig.call(.POST, "/key/generate", ["name": "streams"], key: Self.master).body["key"]?.stringValue)
        let streaming = GatewayRig.chat(Self.longPrompt, model: "slow", stream: true)
        async let first = rig.call(.POST, "/v1/chat/completions", streaming, key: key)
        async let second = rig.call(.POST, "/v1/chat/completions", streaming, key: key)
        try await Task.sleep(for: .milliseconds(700))
        let third = try await rig.call(.POST, "/v1/chat/completions", streaming, key: key)
        #expect(third.status == 429 && third.body["error"]?["code"] == "too_many_streams", "\(third.body)")
        #expect(third.headers.first(name: "retry-after") != nil)
        #expect(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("not a stream"), key: key).status == 200, "plain calls are not streams")
        _ = try await (first, second)
        #expect(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("again", stream: true), key: key).status == 200,
                "slots come back when streams end")
    }

    @Test func metricsCanRequireAToken() async throws {
        var configuration = testConfiguration()
        configuration.metricsToken = Secret("metrics-token-for-tests")
        let rig = try await GatewayRig.start(configuration)
        defer { Task { await rig.shutdown() } }
        #expect(try await rig.call(.GET, "/metrics").status == 401)
        #expect(try await rig.call(.GET, "/metrics", key: "wrong-token-entirely").status == 401)
        #expect(try await rig.call(.GET, "/metrics", key: "metrics-token-for-tests").status == 200)
    }

    @Test func instancesSharingADatabaseSeeEachOthersKeysAndSpend() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-shared-\(IDGenerator.shared.ulid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = testConfiguration()
        configuration.databaseURL = "sqlite://\(directory)/shared.sqlite"
        configuration.keySyncSeconds = 0.2
        let first = try await GatewayRig.start(configuration), second = try await GatewayRig.start(configuration)
        defer { Task { await first.shutdown(); await second.shutdown() } }

        let created = try await first.call(.POST, "/key/generate", ["name": "shared", "max_budget": 1_000_000], key: Self.master).body
        let key = try #require(created["key"]?.stringValue), id = try #require(created["key_id"]?.stringValue)
        try await waitUntil("the key created on the first instance works on the second") {
            try await second.call(.POST, "/v1/chat/completions", GatewayRig.chat("hello"), key: key).status == 200
        }
        // Spend from both instances adds up (before: each wrote its own total, the last writer won).
        #expect(try await first.call(.POST, "/v1/chat/completions", GatewayRig.chat("one two three", model: "priced"), key: key).status == 200)
        #expect(try await second.call(.POST, "/v1/chat/completions", GatewayRig.chat("four five six seven", model: "priced"), key: key).status == 200)
        try await first.gateway.store.flush()
        try await second.gateway.store.flush()
        let logged = try await first.gateway.store.spendByKey().first { $0.keyID == id }?.cost
        try await waitUntil("both instances' spend reaches both") {
            let a = first.gateway.store.key(id: id)?.spent, b = second.gateway.store.key(id: id)?.spent
            return logged != nil && a == logged && b == logged
        }
        #expect(try #require(logged) > 0)

        #expect(try await first.call(.POST, "/key/delete", ["key_id": .string(id)], key: Self.master).status == 200)
        try await waitUntil("the key revoked on the first instance is refused by the second") {
            try await second.call(.POST, "/v1/chat/completions", GatewayRig.chat("hello"), key: key).status == 401
        }
    }

    func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<50 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("not within 5 s: \(what)")
    }
}
