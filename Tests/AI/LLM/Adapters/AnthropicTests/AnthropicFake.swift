import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusLLM
import NimbusLLMAnthropic
import NimbusLLMConformance
import NimbusTesting
import Testing

/// A local Anthropic: checks each request against the Messages API spec (the committed extract) and
/// answers with the bodies and the event sequence Anthropic documents.
final class AnthropicFake: Sendable {
    let server: FakeHTTPServer
    let checker: OpenAPIRequestChecker
    let backend = LLMConformance.ScriptedBackend()

    static let spec = OpenAPIRequestChecker.fixture("anthropic-extract", in: .module)

    static func start() async throws -> AnthropicFake {
        let fake = AnthropicFake(server: try await FakeHTTPServer.start(), checker: try spec.get())
        fake.server.refuseRequests(departingFrom: fake.checker) { problems in
            Self.error(400, "invalid_request_error", "spec mismatch: " + problems.joined(separator: "; "))
        }
        fake.server.route(.POST, "/v1/messages") { request in fake.answer(request) }
        return fake
    }

    private init(server: FakeHTTPServer, checker: OpenAPIRequestChecker) {
        self.server = server
        self.checker = checker
    }

    func model(retry: RetryPolicy = .none) -> ChatModel {
        ChatModel(driver: AnthropicChatModelDriver(configuration: .init(apiKey: Secret("sk-ant-test"), baseURL: server.baseURL)),
                  configuration: .init(defaultModel: "claude-sonnet-4-20250514", retry: retry))
    }

    func script(_ scripted: LLMConformance.Scripted) { backend.script(scripted) }
    var specMismatches: [String] { server.refusals.flatMap(\.problems) }

    func answer(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard request.header("x-api-key") == "sk-ant-test" else { return Self.error(401, "authentication_error", "invalid x-api-key") }
        guard request.header("anthropic-version") == "2023-06-01" else { return Self.error(400, "invalid_request_error", "anthropic-version header is required") }
        let stream = ((try? request.json()) ?? .null)["stream"] == true
        guard let next = backend.next() else { return Self.error(500, "api_error", "nothing scripted") }
        switch next {
        case .reply(let exchange): return stream ? .sse(Self.transcript(exchange)) : .json(200, Self.message(exchange))
        case .failure(let failure): return Self.failure(failure, stream: stream)
        }
    }

    static func stopReason(_ reason: FinishReason) -> String {
        switch reason {
        case .stop, .error: "end_turn"
        case .length: "max_tokens"
        case .toolCalls: "tool_use"
        case .contentFilter: "refusal"
        case .other(let raw): raw
        }
    }

    static func usage(_ usage: Usage, outputOnly: Bool = false) -> JSONValue {
        if outputOnly { return ["output_tokens": .number(Double(usage.outputTokens))] }
        return ["input_tokens": .number(Double(usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteInputTokens)),
                "output_tokens": .number(Double(usage.outputTokens)),
                "cache_creation_input_tokens": .number(Double(usage.cacheWriteInputTokens)),
                "cache_read_input_tokens": .number(Double(usage.cachedInputTokens)), "service_tier": "standard"]
    }

    static let signature = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"

    static func message(_ exchange: LLMConformance.Exchange) -> JSONValue {
        var content: [JSONValue] = []
        if let reasoning = exchange.reasoning { content.append(["type": "thinking", "thinking": .string(reasoning), "signature": .string(signature)]) }
        if !exchange.text.isEmpty { content.append(["type": "text", "text": .string(exchange.text), "citations": .null]) }
        for call in exchange.toolCalls {
            content.append(["type": "tool_use", "id": .string(call.id), "name": .string(call.name),
                            "input": (try? JSONValue.parse(Data(call.arguments.utf8))) ?? [:]])
        }
        return ["id": .string(exchange.id), "type": "message", "role": "assistant", "model": .string(exchange.model), "content": .array(content),
                "stop_reason": .string(stopReason(exchange.finishReason)), "stop_sequence": .null, "usage": usage(exchange.usage),
                "container": .null, "a_field_from_the_future": 1]
    }

    static func event(_ type: String, _ data: JSONValue) -> ServerSentEvent {
        var object = data.objectValue ?? [:]
        object["type"] = .string(type)
        return ServerSentEvent(event: type, data: JSONValue.object(object).description)
    }

    static func pieces(_ text: String, _ size: Int) -> [String] {
        var rest = Substring(text)
        var result: [String] = []
        while !rest.isEmpty { result.append(String(rest.prefix(size))); rest = rest.dropFirst(size) }
        return result
    }

    /// The documented event flow: message_start, ping, per block start/deltas/stop, message_delta, message_stop.
    static func transcript(_ exchange: LLMConformance.Exchange) -> [ServerSentEvent] {
        var start = usage(exchange.usage)
        if case .object(var fields) = start { fields["output_tokens"] = 1; start = .object(fields) }
        var events = [event("message_start", ["message": ["id": .string(exchange.id), "type": "message", "role": "assistant", "content": [],
                                                          "model": .string(exchange.model), "stop_reason": .null, "stop_sequence": .null, "usage": start]]),
                      event("ping", [:])]
        var index = 0
        if let reasoning = exchange.reasoning {
            events.append(event("content_block_start", ["index": .number(Double(index)), "content_block": ["type": "thinking", "thinking": "", "signature": ""]]))
            for piece in pieces(reasoning, 6) {
                events.append(event("content_block_delta", ["index": .number(Double(index)), "delta": ["type": "thinking_delta", "thinking": .string(piece)]]))
            }
            events.append(event("content_block_delta", ["index": .number(Double(index)), "delta": ["type": "signature_delta", "signature": .string(signature)]]))
            events.append(event("content_block_stop", ["index": .number(Double(index))]))
            index += 1
        }
        if !exchange.text.isEmpty {
            events.append(event("content_block_start", ["index": .number(Double(index)), "content_block": ["type": "text", "text": ""]]))
            for piece in pieces(exchange.text, 5) {
                events.append(event("content_block_delta", ["index": .number(Double(index)), "delta": ["type": "text_delta", "text": .string(piece)]]))
            }
            events.append(event("content_block_stop", ["index": .number(Double(index))]))
            index += 1
        }
        for call in exchange.toolCalls {
            events.append(event("content_block_start", ["index": .number(Double(index)),
                                                        "content_block": ["type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": [:]]]))
            for piece in pieces(call.arguments, 4) {
                events.append(event("content_block_delta", ["index": .number(Double(index)), "delta": ["type": "input_json_delta", "partial_json": .string(piece)]]))
            }
            events.append(event("content_block_stop", ["index": .number(Double(index))]))
            index += 1
        }
        events.append(event("message_delta", ["delta": ["stop_reason": .string(stopReason(exchange.finishReason)), "stop_sequence": .null],
                                              "usage": usage(exchange.usage, outputOnly: true)]))
        events.append(event("message_stop", [:]))
        return events
    }

    static func error(_ status: Int, _ type: String, _ message: String, headers: [(String, String)] = []) -> FakeHTTPServer.Reply {
        .json(status, ["type": "error", "error": ["type": .string(type), "message": .string(message)], "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"],
              headers: headers)
    }

    static func failure(_ failure: LLMConformance.Failure, stream: Bool) -> FakeHTTPServer.Reply {
        switch failure {
        case .rateLimited:
            return error(429, "rate_limit_error", "This request would exceed the rate limit for your organization of 50,000 input tokens per minute.",
                         headers: [("retry-after", "2"), ("anthropic-ratelimit-input-tokens-remaining", "0")])
        case .unauthenticated: return error(401, "authentication_error", "invalid x-api-key")
        case .contextLengthExceeded: return error(400, "invalid_request_error", "prompt is too long: 210345 tokens > 200000 maximum")
        case .invalidRequest: return error(400, "invalid_request_error", "messages: roles must alternate between \"user\" and \"assistant\"")
        case .overloaded: return error(529, "overloaded_error", "Overloaded")
        case .serverError: return error(500, "api_error", "Internal server error")
        case .malformedBody:
            if stream { return .sseRaw(["event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\n\n"]) }
            return .json(200, #"{"id":"msg_01","type":"message","content":[{"type":"te"#)
        case .cutMidStream:
            let events = transcript(.init(text: "This reply never ends"))
            let head = events.prefix(4).map(FakeHTTPServer.encode)
            let half = String(FakeHTTPServer.encode(events[4]).prefix(30))
            return .disconnectMidBody(status: 200, headers: [("Content-Type", "text/event-stream")], chunks: (head + [half]).map { ByteBuffer(string: $0) })
        }
    }
}
