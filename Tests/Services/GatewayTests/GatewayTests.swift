import AsyncHTTPClient
import Foundation
import NIOCore
import NimbusCore
import NimbusGateway
import NimbusHTTP
import NimbusLLM
import NimbusTesting
import Testing

/// Settings with a master key, the memory model, a priced model ($1 per token) and the hashing embedder.
func testConfiguration(extraModels: [GatewayConfiguration.Model] = [], maxRequestBytes: Int = 8 * 1024 * 1024) -> GatewayConfiguration {
    var priced = GatewayConfiguration.Model(name: "priced", deployments: [.init(provider: "memory", model: "memory-priced")])
    priced.inputCostPerMillion = 1_000_000
    priced.outputCostPerMillion = 1_000_000
    var configuration = GatewayConfiguration.embedded
    configuration.models += [priced] + extraModels
    configuration.masterKey = "sk-master-test"
    configuration.maxRequestBytes = maxRequestBytes
    return configuration
}

@Suite(.timeLimit(.minutes(3))) struct GatewayTests {
    @Test(.requires(.llmSDKs)) func theOfficialOpenAIAndAnthropicSDKsWork() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        let key = try await rig.call(.POST, "/key/generate", ["name": "sdk"], key: "sk-master-test").body["key"]?.stringValue
        let poor = try await rig.call(.POST, "/key/generate", ["name": "poor", "models": ["priced"], "max_budget": 0.5], key: "sk-master-test").body["key"]?.stringValue
        let python = try Peer.llmSDKs.url()
        let script = try #require(Bundle.module.url(forResource: "sdk_check", withExtension: "py", subdirectory: "Fixtures"))
        let result = try await ProcessRunner.run(python, [script.path, rig.baseURL],
                                                 environment: ["GATEWAY_KEY": try #require(key), "GATEWAY_POOR_KEY": try #require(poor)])
        let text = result.output
        #expect(result.status == 0, "\(text)")
        #expect(text.contains("all checks passed"), "\(text)")
    }

    @Test func keysAreCheckedHashedLimitedAndRevocable() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        #expect(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("hi")).status == 401)
        #expect(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("hi"), key: "sk-wrong").body["error"]?["code"] == "invalid_api_key")
        #expect(try await rig.call(.POST, "/key/generate", ["name": "x"], key: "sk-wrong").status == 401)
        let created = try await rig.call(.POST, "/key/generate", ["name": "limited", "rpm": 2], key: "sk-master-test").body
        let key = try #require(created["key"]?.stringValue)
        let id = try #require(created["key_id"]?.stringValue)
        #expect(key.hasPrefix("sk-nimbus-"))
        #expect(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("one"), key: key).status == 200)
        #expect(try await rig.call(.POST, "/v1/messages", ["model": "memory", "max_tokens": 10, "messages": [["role": "user", "content": "two"]]],
                                   key: key, header: "x-api-key").status == 200)
        let limited = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("three"), key: key)
        #expect(limited.status == 429)
        #expect(limited.body["error"]?["code"] == "rate_limit_exceeded")
        #expect(Int(limited.headers.first(name: "Retry-After") ?? "") ?? 0 > 0)
        let info = try await rig.call(.GET, "/key/info", key: key).body
        #expect(info["key_id"] == .string(id))
        #expect(try await rig.call(.POST, "/key/delete", ["key_id": .string(id)], key: "sk-master-test").body["deleted"] == true)
        #expect(try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("four"), key: key).status == 401)
        // Only hashes are stored.
        let database = try String(contentsOfFile: rig.stateDirectory + "/gateway.sqlite", encoding: .isoLatin1)
        #expect(!database.contains(key))
    }

    @Test func badRequestsGetOpenAIStyleErrors() async throws {
        let rig = try await GatewayRig.start(testConfiguration(maxRequestBytes: 2048))
        defer { Task { await rig.shutdown() } }
        let key = "sk-master-test"
        let broken = try await rig.call(.POST, "/v1/chat/completions", raw: #"{"model":"memory","messages":["#, key: key)
        #expect(broken.status == 400)
        #expect(broken.body["error"]?["type"] == "invalid_request_error")
        let missing = try await rig.call(.POST, "/v1/chat/completions", ["model": "memory"], key: key)
        #expect(missing.body["error"]?["message"]?.stringValue?.contains("messages") == true)
        let huge = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat(String(repeating: "x", count: 5000)), key: key)
        #expect(huge.status == 413)
        #expect(huge.body["error"]?["code"] == "request_too_large")
        let unknown = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("x", model: "gpt-9"), key: key)
        #expect(unknown.status == 404)
        let orphan = try await rig.call(.POST, "/v1/chat/completions", ["model": "memory", "messages": [["role": "tool", "tool_call_id": "c1", "content": "x"]]], key: key)
        #expect(orphan.status == 400)
        let anthropic = try await rig.call(.POST, "/v1/messages", raw: "{}", key: key, header: "x-api-key")
        #expect(anthropic.status == 400)
        #expect(anthropic.body["type"] == "error")
        #expect(anthropic.body["error"]?["type"] == "invalid_request_error")
    }

    @Test func upstreamFailuresAreMappedForTheClient() async throws {
        let upstream = try await FakeHTTPServer.start()
        defer { Task { await upstream.shutdown() } }
        upstream.route(.POST, "/v1/chat/completions") { request in
            let text = try request.json()["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
            switch text {
            case "limit": return .json(429, #"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#, headers: [("retry-after", "1")])
            case "auth": return .json(401, #"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#)
            case "long": return .json(400, #"{"error":{"message":"maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#)
            default: return .json(200, #"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"up","choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#)
            }
        }
        let model = GatewayConfiguration.Model(name: "up", deployments: [.init(provider: "openai-compatible", model: "up", baseURL: upstream.baseURL + "/v1")])
        let rig = try await GatewayRig.start(testConfiguration(extraModels: [model]))
        defer { Task { await rig.shutdown() } }
        let key = "sk-master-test"
        let ok = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("hello", model: "up"), key: key)
        #expect(ok.body["choices"]?.arrayValue?.first?["message"]?["content"] == "fine")
        #expect(Double(ok.headers.first(name: "x-nimbus-overhead-ms") ?? "") != nil)
        let long = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("long", model: "up"), key: key)
        #expect(long.status == 400, "\(long.body)")
        #expect(long.body["error"]?["code"] == "context_length_exceeded")
        let auth = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("auth", model: "up"), key: key)
        #expect(auth.status == 502, "the upstream refused the gateway's key, not the client's")
        // That deployment now cools down: the next call is told when to come back.
        let cooling = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("hello", model: "up"), key: key)
        #expect(cooling.status == 503, "\(cooling.body)")
        #expect(Int(cooling.headers.first(name: "Retry-After") ?? "") ?? 0 >= 1)
    }

    @Test func rateLimitsUpstreamComeBackWithRetryAfter() async throws {
        let upstream = try await FakeHTTPServer.start()
        defer { Task { await upstream.shutdown() } }
        upstream.route(.POST, "/v1/chat/completions", reply: .json(429, #"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
                                                                   headers: [("retry-after", "1")]))
        let model = GatewayConfiguration.Model(name: "up", deployments: [.init(provider: "openai-compatible", model: "up", baseURL: upstream.baseURL + "/v1")])
        let rig = try await GatewayRig.start(testConfiguration(extraModels: [model]))
        defer { Task { await rig.shutdown() } }
        let limited = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("x", model: "up"), key: "sk-master-test")
        #expect(limited.status == 429)
        #expect(limited.headers.first(name: "Retry-After") == "1")
    }

    @Test func aClientThatHangsUpCancelsTheUpstreamStream() async throws {
        let upstream = try await FakeHTTPServer.start()
        defer { Task { await upstream.shutdown() } }
        let chunks = (0..<60).map { index in
            ServerSentEvent(data: #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"content":"w\#(index) "},"finish_reason":null}]}"#)
        }
        upstream.route(.POST, "/v1/chat/completions", reply: .sse(chunks, pause: .milliseconds(50)))
        let model = GatewayConfiguration.Model(name: "up", deployments: [.init(provider: "openai-compatible", model: "up", baseURL: upstream.baseURL + "/v1")])
        let rig = try await GatewayRig.start(testConfiguration(extraModels: [model]))
        defer { Task { await rig.shutdown() } }
        var request = HTTPClientRequest(url: rig.baseURL + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer sk-master-test")
        request.body = .bytes(ByteBuffer(string: GatewayRig.chat("go", model: "up", stream: true).description))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let reader = Task {
            let response = try await client.execute(request, timeout: .seconds(30))
            var received = 0
            for try await chunk in response.body {
                received += chunk.readableBytes
                if received > 300 { break }
            }
            return received
        }
        #expect(try await reader.value > 300)
        try await client.shutdown()
        for _ in 0..<150 where upstream.clientDisconnects == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(upstream.clientDisconnects == 1, "the gateway must stop reading upstream when its client leaves")
    }

    @Test func spendIsLoggedInBatchesAndTheQueueIsBounded() async throws {
        let rig = try await GatewayRig.start(testConfiguration())
        defer { Task { await rig.shutdown() } }
        let key = try #require(try await rig.call(.POST, "/key/generate", ["name": "spender"], key: "sk-master-test").body["key"]?.stringValue)
        for index in 0..<3 { _ = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("call \(index)", model: "priced"), key: key) }
        _ = try await rig.call(.POST, "/v1/embeddings", ["model": "nimbus-hashing-384", "input": ["a", "b"]], key: key)
        let streamed = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("streamed call", model: "priced", stream: true), key: key)
        #expect(streamed.status == 200)
        let spend = try await rig.call(.GET, "/v1/gateway/spend", key: "sk-master-test").body
        let row = try #require(spend["keys"]?.arrayValue?.first { $0["key_id"] != .null })
        #expect(row["requests"] == 5, "streamed calls are charged to the key too: \(spend)")
        #expect(Decimal(string: row["cost"]?.stringValue ?? "") ?? 0 > 3)
        #expect(try await rig.gateway.store.spendLogCount() == 5)
        let metrics = try await rig.call(.GET, "/metrics")
        #expect(metrics.body.stringValue?.contains("nimbus_gateway_requests_total") == true)

        let store = try await GatewayStore(path: rig.stateDirectory + "/bounded.sqlite", queueCapacity: 2)
        let (small, _) = try await store.createKey(name: "k", models: [], rpm: nil, tpm: nil, maxBudget: 10)
        for _ in 0..<5 {
            store.record(SpendRecord(at: Date(), keyID: small.id, route: "chat", model: "m", deployment: "d", provider: "p", inputTokens: 1,
                                     outputTokens: 1, cachedTokens: 0, reasoningTokens: 0, cost: 3, latencyMilliseconds: 1, outcome: "ok", cached: false))
        }
        #expect(store.pendingRecords == 2)
        #expect(store.droppedRecords == 3)
        #expect(store.key(id: small.id)?.spent == 15, "key totals stay exact when detail rows are dropped")
        #expect(store.key(id: small.id)?.isOverBudget == true)
        #expect(try await store.flush() == 2)
    }

    @Test func configurationFilesResolveEnvironmentAndExplainMistakes() throws {
        let yaml = """
            models:
              - name: smart
                deployments:
                  - { provider: openai, model: gpt-4o, api_key: env:TEST_OPENAI_KEY, weight: 3, rpm: 100 }
                  - { provider: anthropic, model: claude-sonnet-4-20250514, api_key: env:TEST_ANTHROPIC_KEY }
              - name: local
                deployments: [{ provider: ollama, model: llama3.2 }]
            embeddings:
              - { name: embed, provider: hashing, model: nimbus-hashing-64, dimensions: 64 }
            fallbacks: { smart: [local] }
            routing: least_busy
            master_key: env:TEST_MASTER
            """
        let environment = ["TEST_OPENAI_KEY": "sk-1", "TEST_ANTHROPIC_KEY": "sk-ant-1", "TEST_MASTER": "sk-master-0123456789"]
        let configuration = try GatewayConfiguration.parse(yaml, environment: environment)
        #expect(configuration.models.first?.deployments.first?.apiKey == "sk-1")
        #expect(configuration.masterKey == "sk-master-0123456789")
        // Keys are Secrets: printing or dumping the configuration (as a log line or a crash report would) shows none of them.
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in [String(describing: configuration), String(reflecting: configuration), dumped] {
            #expect(!text.contains("sk-1") && !text.contains("sk-ant-1") && !text.contains("sk-master-0123456789"), "\(text.prefix(300))")
        }
        for short in ["", "   ", "sk-short"] {
            let error = #expect(throws: NimbusError.self, "a master key of \(short.count) characters") {
                try GatewayConfiguration.parse(yaml, environment: environment.merging(["TEST_MASTER": short]) { $1 })
            }
            #expect(error?.message.contains(short.isEmpty ? "TEST_MASTER" : "master_key") == true, "\(error?.message ?? "")")
        }
        #expect(configuration.routing == "least_busy")
        #expect(throws: NimbusError.self) { try GatewayConfiguration.parse(yaml, environment: [:]) }
        #expect(throws: NimbusError.self) { try GatewayConfiguration.parse(yaml.replacingOccurrences(of: "[local]", with: "[nowhere]"), environment: environment) }
        #expect(throws: NimbusError.self) { try GatewayConfiguration.parse(yaml.replacingOccurrences(of: "least_busy", with: "random"), environment: environment) }
        #expect(throws: NimbusError.self) { try GatewayConfiguration.parse("models: 7", environment: environment) }
    }

    @Test func deploymentsAreURLsOpenedThroughTheAdaptersOpeners() async throws {
        let yaml = """
            models:
              - name: fast
                deployments: [{ url: "mem://?latency=1ms&models=", model: memory }]
            embeddings:
              - { name: tiny, url: "hashing://?dimensions=32", model: nimbus-hashing-32 }
            """
        let configuration = try GatewayConfiguration.parse(yaml, environment: [:])
        #expect(configuration.models.first?.deployments.first?.provider == "mem", "the provider defaults to the URL's scheme")
        let rig = try await GatewayRig.start(configuration)
        defer { Task { await rig.shutdown() } }
        let reply = try await rig.call(.POST, "/v1/chat/completions", GatewayRig.chat("by url", model: "fast"))
        #expect(reply.status == 200 && reply.body["choices"]?.arrayValue?.first?["message"]?["content"] == "by url", "\(reply.body)")
        let vectors = try await rig.call(.POST, "/v1/embeddings", ["model": "tiny", "input": ["a"]])
        #expect(vectors.body["data"]?.arrayValue?.first?["embedding"]?.arrayValue?.count == 32, "\(vectors.body)")
        // A scheme no linked adapter opens, and an option the adapter does not know, stop the gateway at start with the reason.
        for (url, reason) in [("cohere://", "known: anthropic://"), ("openai://?organisation=x", "organization")] {
            let bad = try GatewayConfiguration.parse("models: [{ name: m, deployments: [{ url: \"\(url)\", model: x }] }]", environment: [:])
            let error = await #expect(throws: NimbusError.self) { _ = try await GatewayRig.start(bad) }
            #expect(error?.message.contains("model 'm'") == true && error?.message.contains(reason) == true, "\(error?.message ?? "")")
        }
        #expect(throws: NimbusError.self, "a deployment needs url or provider") {
            try GatewayConfiguration.parse("models: [{ name: m, deployments: [{ model: x }] }]", environment: [:])
        }
    }


    @Test func aGatewayReachableFromOtherMachinesNeedsAMasterKey() throws {
        let open = GatewayConfiguration.embedded
        try open.checkExposure(host: "127.0.0.1", allowUnauthenticated: false)
        try open.checkExposure(host: "::1", allowUnauthenticated: false)
        let refused = #expect(throws: NimbusError.self) { try open.checkExposure(host: "0.0.0.0", allowUnauthenticated: false) }
        #expect(refused?.code == .failedPrecondition && refused?.message.contains("--allow-unauthenticated") == true)
        try open.checkExposure(host: "0.0.0.0", allowUnauthenticated: true)
        var keyed = open
        keyed.masterKey = "sk-master-0123456789"
        try keyed.checkExposure(host: "10.0.0.5", allowUnauthenticated: false)
    }

}
