import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing

private func fixture(_ name: String) throws -> URL {
    try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
}

/// Sends `body` to the fake server and returns what it captured.
private func capture(_ method: NIOHTTP1Method, _ path: String, contentType: String? = nil, body: String? = nil,
                     headers: [(String, String)] = []) async throws -> FakeHTTPServer.CapturedRequest {
    let server = try await FakeHTTPServer.start()
    server.route(method.nio, path.split(separator: "?").first.map(String.init) ?? path, reply: .json(200, "{}"))
    let client = NimbusHTTPClient(configuration: .init(service: "spec", baseURL: server.baseURL, retry: .none))
    var request = NimbusHTTPRequest(method.nio, path)
    if let body { request.body = ByteBuffer(string: body) }
    if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    _ = try await client.send(request)
    await server.shutdown()
    return try #require(server.requests.first)
}

import NIOHTTP1
enum NIOHTTP1Method { case get, post
    var nio: HTTPMethod { self == .get ? .GET : .POST }
}

@Suite("OpenAPI request checker", .timeLimit(.minutes(2)))
struct OpenAPIRequestCheckerTests {
    @Test("a valid OpenAI chat request passes (3.1 document, JSON body, server prefix /v1)")
    func openAIValid() async throws {
        let spec = try OpenAPIRequestChecker(contentsOf: try fixture("openai-extract"))
        #expect(spec.serverPathPrefix == "/v1")
        let request = try await capture(.post, "/v1/chat/completions", contentType: "application/json",
            body: #"{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"temperature":0.2,"stream":true}"#)
        #expect(spec.check(request) == [])
    }

    @Test("every mismatch of a bad OpenAI request is reported")
    func openAIInvalid() async throws {
        let spec = try OpenAPIRequestChecker(contentsOf: try fixture("openai-extract"))
        let request = try await capture(.post, "/v1/chat/completions", contentType: "application/json",
            body: #"{"messages":[{"role":"wizard","content":"hi"}],"temperature":"hot","n":1.5}"#)
        let mismatches = spec.check(request)
        let locations = Set(mismatches.map(\.location))
        #expect(locations.contains("body.model"), "\(mismatches)")
        #expect(locations.contains("body.temperature"), "\(mismatches)")
        #expect(locations.contains("body.n"), "\(mismatches)")
        #expect(locations.contains("body.messages[0]"), "\(mismatches)")
    }

    @Test("unknown operations, wrong content types and unparseable bodies are reported")
    func operationLevel() async throws {
        let spec = try OpenAPIRequestChecker(contentsOf: try fixture("openai-extract"))
        let unknown = try await capture(.post, "/v1/chat/complete", contentType: "application/json", body: "{}")
        #expect(spec.check(unknown).map(\.location) == ["operation"])
        let wrongType = try await capture(.post, "/v1/embeddings", contentType: "text/plain", body: "hello")
        #expect(spec.check(wrongType).map(\.location) == ["header.Content-Type"])
        let broken = try await capture(.post, "/v1/embeddings", contentType: "application/json", body: "{\"input\": ")
        #expect(spec.check(broken).map(\.location) == ["body"])
        let models = try await capture(.get, "/v1/models")
        #expect(spec.check(models) == [])
    }

    @Test("Stripe (3.0 document, converted): form bodies with nested keys, additionalProperties false")
    func stripeForm() async throws {
        let spec = try OpenAPIRequestChecker(contentsOf: try fixture("stripe-extract"))
        let form = try FormEncoder().encode(["email": "ada@example.com", "balance": 100, "metadata": ["order": "42"],
                                             "address": ["city": "London", "country": "GB"], "expand": ["default_source"]] as JSONValue)
        let valid = try await capture(.post, "/v1/customers", contentType: "application/x-www-form-urlencoded", body: form)
        #expect(spec.check(valid) == [])
        let bad = try await capture(.post, "/v1/customers", contentType: "application/x-www-form-urlencoded",
                                    body: "balance=lots&nickname=x&tax_exempt=sometimes")
        let locations = Set(spec.check(bad).map(\.location))
        #expect(locations == ["body.balance", "body.nickname", "body.tax_exempt"], "\(spec.check(bad))")
        let unset = try await capture(.post, "/v1/customers", contentType: "application/x-www-form-urlencoded", body: "address=")
        #expect(spec.check(unset) == [])   // "" unsets an optional object, per Stripe's anyOf
    }

    @Test("path parameters and unknown query parameters")
    func parameters() async throws {
        let spec = try OpenAPIRequestChecker(contentsOf: try fixture("stripe-extract"))
        let good = try await capture(.get, "/v1/customers/cus_123?expand[]=default_source")
        #expect(spec.check(good) == [])
        let extra = try await capture(.get, "/v1/customers/cus_123?limit=3")
        #expect(spec.check(extra).map(\.location) == ["query.limit"])
    }

    @Test("unknown properties are mismatches unless the schema allows them; allOf parts know each other's")
    func unknownProperties() async throws {
        let document = #"""
        {"openapi": "3.1.0", "info": {"title": "T", "version": "1"}, "paths": {"/things": {"post": {
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
          "responses": {"200": {"description": "ok"}}}}},
         "components": {"schemas": {
          "Base": {"type": "object", "properties": {"id": {"type": "string"}}},
          "Thing": {"allOf": [{"$ref": "#/components/schemas/Base"},
                              {"type": "object", "properties": {"name": {"type": "string"}, "free": {"type": "object"},
                                 "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                                 "open": {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": true}}}]}}}}
        """#
        let spec = try OpenAPIRequestChecker(data: Data(document.utf8))
        let good = try await capture(.post, "/things", contentType: "application/json",
                                     body: #"{"id":"1","name":"n","free":{"x":1},"tags":{"k":"v"},"open":{"a":1,"b":2}}"#)
        #expect(spec.check(good) == [])
        let bad = try await capture(.post, "/things", contentType: "application/json", body: #"{"id":"1","nmae":"n","tags":{"k":1}}"#)
        #expect(Set(spec.check(bad).map(\.location)) == ["body.nmae", "body.tags.k"], "\(spec.check(bad))")
    }

    @Test("junk is not a document")
    func notADocument() {
        #expect(throws: NimbusError.self) { try OpenAPIRequestChecker(data: Data("{\"hello\": 1}".utf8)) }
    }
}

@Suite("Fake HTTP server", .timeLimit(.minutes(2)))
struct FakeHTTPServerTests {
    @Test("a request check runs before every route, later ones included; a mutation test sees the refusal")
    func requestChecks() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.refuseRequests(failing: { request in ((try? request.json())?["colour"]).map { _ in ["body.colour: not a field"] } ?? [] }) { problems in
            .json(400, ["error": .string(problems.joined())])
        }
        server.route(.POST, "/paint", reply: .json(200, "{}"))
        let client = NimbusHTTPClient(configuration: .init(service: "paint", baseURL: server.baseURL, retry: .none))
        func paint(_ body: String) async throws -> Int {
            var request = NimbusHTTPRequest(.POST, "/paint")
            request.body = ByteBuffer(string: body)
            request.headers.add(name: "Content-Type", value: "application/json")
            return Int(try await client.send(request).status.code)
        }
        #expect(try await paint(#"{"color":"red"}"#) == 200)
        server.route(.POST, "/paint", reply: .json(201, "{}"))            // a replaced route is checked too
        let refusals = await server.expectRefusal(renaming: "color", to: "colour") {
            let status = try await paint(#"{"color":"red"}"#)
            if status != 201 { throw NimbusError(.invalidArgument, "refused with \(status)") }
        }
        #expect(refusals.count == 1 && refusals.first?.request.bodyText == #"{"colour":"red"}"#)
        #expect(try await paint(#"{"color":"red"}"#) == 201, "the mutation ends with the call")
        #expect(FakeHTTPServer.mentions("body.max_token: unknown", "max_token") && !FakeHTTPServer.mentions("known: max_tokens", "max_token"))
    }

    @Test("captures method, path, query, headers and body; unknown routes are 404")
    func capture() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.PUT, "/v1/items/{id}", reply: .json(201, ["ok": true]))
        let client = NimbusHTTPClient(configuration: .init(service: "t", baseURL: server.baseURL, defaultHeaders: ["X-Test": "1"]))
        var request = NimbusHTTPRequest(.PUT, "/v1/items/abc?x=1&y=two%20words")
        try request.setJSON(["name": "widget"])
        let response = try await client.send(request)
        #expect(response.status.code == 201)
        let captured = try #require(server.requests.first)
        #expect(captured.method == "PUT" && captured.path == "/v1/items/abc")
        #expect(captured.queryItem("y") == "two words")
        #expect(captured.header("X-TEST") == "1")
        #expect(try captured.json() == ["name": "widget"])
        #expect(try await client.send(NimbusHTTPRequest(.GET, "/nope")).status.code == 404)
        await server.shutdown()
    }

    @Test("status sequences repeat their last reply; handlers see the request")
    func sequences() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.GET, "/flaky", replies: [.text(500, "a"), .text(200, "b")])
        server.route(.POST, "/echo") { request in .text(200, request.bodyText.uppercased()) }
        let client = NimbusHTTPClient(configuration: .init(service: "t", baseURL: server.baseURL, retry: .none))
        var statuses: [UInt] = []
        for _ in 0..<3 { statuses.append(try await client.send(NimbusHTTPRequest(.GET, "/flaky")).status.code) }
        #expect(statuses == [500, 200, 200])
        var echo = NimbusHTTPRequest(.POST, "/echo")
        echo.body = ByteBuffer(string: "hi")
        #expect(String(buffer: try await client.send(echo).collect()) == "HI")
        await server.shutdown()
    }
}

@Suite("Peers", .timeLimit(.minutes(2)))
struct PeerTests {
    @Test("a peer that is not running names the command that starts it")
    func missingPeer() {
        let peer = Peer("no-such-peer")
        #expect(peer.variable == "NIMBUS_PEER_NO_SUCH_PEER_URL")
        #expect(peer.configuredURL == nil)
        let error = #expect(throws: NimbusError.self) { try peer.url() }
        #expect(error?.message.contains("scripts/peers up no-such-peer") == true)
        // Under CI the test would run (and fail); locally it is skipped.
        #expect(peer.shouldRun == Peer.isCI)
    }

    @Test("the package root is found from the test's working directory or source file")
    func packageRoot() {
        #expect(Peer.packageRoot() != nil)
    }
}

@Suite("Manual clock", .timeLimit(.minutes(2)))
struct ManualClockTests {
    @Test("sleepers wake when time passes their deadline, not before; cancellation wakes them")
    func sleepers() async throws {
        let clock = ManualClock()
        let task = Task { try await clock.sleep(for: .seconds(10)) }
        await clock.waitForSleepers()
        clock.advance(by: .seconds(5))
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .seconds(5))
        try await task.value
        #expect(clock.now.offset == .seconds(10))
        let cancelled = Task { try await clock.sleep(for: .seconds(1)) }
        await clock.waitForSleepers()
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
    }
}
