import Foundation
import Logging
import MetricsTestKit
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

@Suite("HTTP client", .timeLimit(.minutes(2)))
struct ClientTests {
    private func client(_ server: FakeHTTPServer, _ configure: (inout NimbusHTTPClient.Configuration) -> Void = { _ in }) -> NimbusHTTPClient {
        var configuration = NimbusHTTPClient.Configuration(service: "fake", baseURL: server.baseURL)
        configuration.retry = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50))
        configure(&configuration)
        return NimbusHTTPClient(configuration: configuration)
    }

    @Test("429 with Retry-After, then success: the client waits and retries")
    func retryAfterThenSuccess() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.POST, "/v1/things", replies: [
            .json(429, #"{"error":{"message":"rate limited"}}"#, headers: [("Retry-After", "1")]),
            .json(200, #"{"id":"t_1"}"#),
        ])
        let client = client(server)
        let start = ContinuousClock.now
        let value = try await client.json(NimbusHTTPRequest(.POST, "/v1/things", operation: "things.create"), as: JSONValue.self)
        #expect(value["id"] == "t_1")
        #expect(server.requests.count == 2)
        #expect(ContinuousClock.now - start >= .milliseconds(900))   // it honoured the 1 s Retry-After
        await server.shutdown()
    }

    @Test("a Retry-After beyond the policy's limit is handed back, with retryAfter set")
    func retryAfterTooLong() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.GET, "/v1/slow", reply: .json(503, #"{"error":"maintenance"}"#, headers: [("Retry-After", "3600")]))
        let client = client(server)
        let error = await #expect(throws: NimbusError.self) { try await client.json(NimbusHTTPRequest(.GET, "/v1/slow"), as: JSONValue.self) }
        #expect(error?.code == .unavailable)
        #expect(error?.retryAfter == .seconds(3600))
        #expect(server.requests.count == 1)
        await server.shutdown()
    }

    @Test("POST without an idempotency key is not retried on 503; with one it is, with the same key")
    func idempotency() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.POST, "/v1/charges", replies: [.json(503, "{}"), .json(503, "{}"), .json(200, #"{"ok":true}"#)])
        let client = client(server)
        let response = try await client.send(NimbusHTTPRequest(.POST, "/v1/charges"))
        #expect(response.status.code == 503)
        #expect(server.requests.count == 1)

        server.clearRequests()
        var request = NimbusHTTPRequest(.POST, "/v1/charges")
        request.idempotencyKey = "order-42"
        let retried = try await client.send(request)
        #expect(retried.status.code == 200)
        #expect(server.requests.count == 2)
        #expect(server.requests.allSatisfy { $0.header("idempotency-key") == "order-42" })
        await server.shutdown()
    }

    @Test("generated idempotency keys are stable across retries")
    func generatedKeys() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.POST, "/v1/pay", replies: [.json(500, "{}"), .json(200, "{}")])
        let client = client(server) { $0.generateIdempotencyKeys = true; $0.idempotencyKeyHeader = "PayPal-Request-Id" }
        _ = try await client.send(NimbusHTTPRequest(.POST, "/v1/pay"))
        let keys = server.requests.compactMap { $0.header("paypal-request-id") }
        #expect(keys.count == 2 && keys[0] == keys[1] && keys[0].count == 36)
        await server.shutdown()
    }

    @Test("a dropped connection on a GET is retried; on a POST it surfaces as unavailable")
    func dropped() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.GET, "/v1/items", replies: [.disconnect, .json(200, "[]")])
        server.route(.POST, "/v1/items", reply: .disconnect)
        let client = client(server)
        #expect(try await client.send(NimbusHTTPRequest(.GET, "/v1/items")).status.code == 200)
        let error = await #expect(throws: NimbusError.self) { try await client.send(NimbusHTTPRequest(.POST, "/v1/items")) }
        #expect(error?.code == .unavailable)
        await server.shutdown()
    }

    @Test("a body cut off mid-stream is an error, not a short answer")
    func midBody() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.GET, "/v1/big", reply: .disconnectMidBody(status: 200, headers: [("Content-Type", "application/json")], chunks: [ByteBuffer(string: "{\"partial\":")]))
        let client = client(server)
        let response = try await client.send(NimbusHTTPRequest(.GET, "/v1/big"))
        await #expect(throws: NimbusError.self) { _ = try await response.collect() }
        await server.shutdown()
    }

    @Test("responses over maxResponseSize fail with resourceExhausted, with or without Content-Length")
    func maxSize() async throws {
        let server = try await FakeHTTPServer.start()
        let big = String(repeating: "x", count: 5000)
        server.route(.GET, "/sized", reply: .text(200, big))
        server.route(.GET, "/chunked", reply: .chunks(status: 200, headers: [], chunks: Array(repeating: ByteBuffer(string: String(repeating: "y", count: 1000)), count: 5), pause: .zero))
        let client = client(server) { $0.maxResponseSize = 4096 }
        let sized = await #expect(throws: NimbusError.self) { try await client.send(NimbusHTTPRequest(.GET, "/sized")) }
        #expect(sized?.code == .resourceExhausted)
        let response = try await client.send(NimbusHTTPRequest(.GET, "/chunked"))
        let chunked = await #expect(throws: NimbusError.self) { _ = try await response.collect() }
        #expect(chunked?.code == .resourceExhausted)
        await server.shutdown()
    }

    @Test("a slow answer past the timeout is deadlineExceeded")
    func timeout() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.POST, "/slow", reply: .delayed(.seconds(3), then: .json(200, "{}")))
        let client = client(server) { $0.timeout = .milliseconds(300) }
        let error = await #expect(throws: NimbusError.self) { try await client.send(NimbusHTTPRequest(.POST, "/slow")) }
        #expect(error?.code == .deadlineExceeded)
        await server.shutdown()
    }

    @Test("malformed JSON in a 200 is a clear error naming the operation")
    func malformedJSON() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.GET, "/v1/models", reply: .json(200, #"{"data": [ }"#))
        struct Models: Decodable { var data: [String] }
        let error = await #expect(throws: NimbusError.self) {
            try await client(server).json(NimbusHTTPRequest(.GET, "/v1/models", operation: "models.list"), as: Models.self)
        }
        #expect(error?.message.contains("models.list") == true)
        await server.shutdown()
    }

    @Test("auth is injected per attempt, and logs carry neither the key nor the Authorization header")
    func authAndLogs() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.GET, "/v1/me", reply: .json(200, #"{"ok":true}"#))
        let lines = Lines()
        var logger = Logger(label: "test") { JSONLogHandler(label: $0, write: lines.append) }
        logger.logLevel = .trace
        var configuration = NimbusHTTPClient.Configuration(service: "fake", baseURL: server.baseURL, auth: .bearer(Secret("sk-live-secret")))
        configuration.logBodies = true
        let client = NimbusHTTPClient(configuration: configuration, logger: logger)
        var request = NimbusHTTPRequest(.GET, "/v1/me?api_key=sk-live-secret")
        try request.setJSON(["password": "hunter2", "name": "ada"])
        _ = try await client.send(request)
        #expect(server.requests.first?.header("authorization") == "Bearer sk-live-secret")
        let log = lines.all.joined(separator: "\n")
        #expect(!lines.all.isEmpty)
        #expect(!log.contains("sk-live-secret"))
        #expect(!log.contains("hunter2"))
        #expect(log.contains("ada"))
        await server.shutdown()
    }

    @Test("metrics count calls by service, operation and status")
    func metrics() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.GET, "/v1/a", replies: [.json(500, "{}"), .json(200, "{}")])
        let metrics = TestMetrics()
        let client = client(server) { $0.metricsFactory = metrics }
        _ = try await client.send(NimbusHTTPRequest(.GET, "/v1/a", operation: "a.get"))
        let counter = try metrics.expectCounter("nimbus_http_requests_total", [("service", "fake"), ("operation", "a.get"), ("status", "200")])
        #expect(counter.totalValue == 1)   // one call, counted once around its retries
        let timer = try metrics.expectTimer("nimbus_http_request_duration_seconds", [("service", "fake"), ("operation", "a.get")])
        #expect(timer.values.count == 1)
        await server.shutdown()
    }

    @Test("a relative URL without baseURL is invalidArgument; refused connections are unavailable")
    func misconfigured() async throws {
        let bare = NimbusHTTPClient(configuration: .init(service: "x"))
        #expect((await #expect(throws: NimbusError.self) { try await bare.send(NimbusHTTPRequest(.GET, "/v1")) })?.code == .invalidArgument)
        let transport = NimbusHTTPClient.makeTransport(connectTimeout: .milliseconds(500))
        let refused = NimbusHTTPClient(configuration: .init(service: "x", baseURL: "http://127.0.0.1:1", retry: .none), httpClient: transport)
        #expect((await #expect(throws: NimbusError.self) { try await refused.send(NimbusHTTPRequest(.GET, "/v1")) })?.code == .unavailable)
        try await transport.shutdown()
    }
}

final class Lines: Sendable {
    private let storage = Mutex<[String]>([])
    var all: [String] { storage.withLock { $0 } }
    var append: @Sendable (String) -> Void { { line in self.storage.withLock { $0.append(line) } } }
}
