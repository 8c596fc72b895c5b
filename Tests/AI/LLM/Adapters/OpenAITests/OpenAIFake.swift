import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusLLM
import NimbusLLMConformance
import NimbusLLMOpenAI
import NimbusTesting
import Testing

/// A local OpenAI: checks each request against OpenAI's published spec (the committed extract) and
/// answers scripted exchanges with the bodies and streaming transcripts OpenAI documents.
final class OpenAIFake: Sendable {
    let server: FakeHTTPServer
    let checker: OpenAPIRequestChecker
    let backend = LLMConformance.ScriptedBackend()

    static let spec = OpenAPIRequestChecker.fixture("openai-extract", in: .module)

    static func start() async throws -> OpenAIFake {
        let fake = OpenAIFake(server: try await FakeHTTPServer.start(), checker: try spec.get())
        fake.server.refuseRequests(departingFrom: fake.checker) { problems in
            .json(400, ["error": ["message": .string("spec mismatch: " + problems.joined(separator: "; ")), "type": "invalid_request_error", "param": nil, "code": "nimbus_spec_mismatch"]])
        }
        fake.server.route(.POST, "/v1/chat/completions") { request in fake.answer(request) }
        return fake
    }

    private init(server: FakeHTTPServer, checker: OpenAPIRequestChecker) {
        self.server = server
        self.checker = checker
    }

    var baseURL: String { server.baseURL + "/v1" }

    /// A portable model over this fake, retries off so failures surface.
    func model(retry: RetryPolicy = .none) -> ChatModel {
        ChatModel(driver: OpenAIChatModelDriver(configuration: .init(apiKey: Secret("sk-test-123"), baseURL: baseURL, organization: "org-test")),
                  configuration: .init(defaultModel: "gpt-4o-mini", retry: retry))
    }

    func script(_ scripted: LLMConformance.Scripted) { backend.script(scripted) }

    /// Spec departures seen so far (each also fails its request with a 400 and its test).
    var specMismatches: [String] { server.refusals.flatMap(\.problems) }

    func answer(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        guard request.header("authorization") == "Bearer sk-test-123" else {
            return Self.error(401, "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key")
        }
        let body = (try? request.json()) ?? .null
        let stream = body["stream"] == true
        let includeUsage = body["stream_options"]?["include_usage"] == true
        guard let next = backend.next() else {
            return Self.error(500, "nothing scripted", type: "server_error", code: nil)
        }
        switch next {
        case .reply(let exchange):
            return stream ? Self.streamed(exchange, includeUsage: includeUsage) : .json(200, Self.completion(exchange))
        case .failure(let failure):
            return Self.failure(failure, stream: stream)
        }
    }

    static func usage(_ usage: Usage) -> JSONValue {
        ["prompt_tokens": .number(Double(usage.inputTokens)), "completion_tokens": .number(Double(usage.outputTokens)),
         "total_tokens": .number(Double(usage.totalTokens)),
         "prompt_tokens_details": ["cached_tokens": .number(Double(usage.cachedInputTokens)), "audio_tokens": 0],
         "completion_tokens_details": ["reasoning_tokens": .number(Double(usage.reasoningTokens)), "audio_tokens": 0,
                                       "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0]]
    }

    static func wireReason(_ reason: FinishReason) -> String {
        switch reason {
        case .stop: "stop"
        case .length: "length"
        case .toolCalls: "tool_calls"
        case .contentFilter: "content_filter"
        case .error: "stop"
        case .other(let raw): raw
        }
    }

    /// A `chat.completion` object as OpenAI documents it, plus a field from the future.
    static func completion(_ exchange: LLMConformance.Exchange) -> JSONValue {
        var message: [String: JSONValue] = ["role": "assistant", "content": exchange.text.isEmpty ? .null : .string(exchange.text),
                                            "refusal": .null, "annotations": []]
        if !exchange.toolCalls.isEmpty {
            message["tool_calls"] = .array(exchange.toolCalls.map {
                ["id": .string($0.id), "type": "function", "function": ["name": .string($0.name), "arguments": .string($0.arguments)]]
            })
        }
        return ["id": .string(exchange.id), "object": "chat.completion", "created": 1_741_569_952, "model": .string(exchange.model),
                "choices": [["index": 0, "message": .object(message), "logprobs": .null, "finish_reason": .string(wireReason(exchange.finishReason))]],
                "usage": usage(exchange.usage), "service_tier": "default", "system_fingerprint": "fp_06737a9306",
                "a_field_from_the_future": ["nested": true]]
    }

    static func chunk(_ exchange: LLMConformance.Exchange, delta: JSONValue, finish: String? = nil) -> String {
        JSONValue.object(["id": .string(exchange.id), "object": "chat.completion.chunk", "created": 1_741_569_952, "model": .string(exchange.model),
                          "system_fingerprint": "fp_06737a9306", "service_tier": "default",
                          "choices": [["index": 0, "delta": delta, "logprobs": .null, "finish_reason": finish.map(JSONValue.string) ?? .null]],
                          "usage": .null]).description
    }

    /// The streaming transcript OpenAI documents: a role chunk, content pieces, tool-call pieces, the
    /// finish chunk, a usage chunk with empty choices (when asked for), then `[DONE]`.
    static func transcript(_ exchange: LLMConformance.Exchange, includeUsage: Bool) -> [String] {
        var events = [chunk(exchange, delta: ["role": "assistant", "content": "", "refusal": .null])]
        var text = Substring(exchange.text)
        while !text.isEmpty {
            let piece = text.prefix(4)
            text = text.dropFirst(4)
            events.append(chunk(exchange, delta: ["content": .string(String(piece))]))
        }
        for (index, call) in exchange.toolCalls.enumerated() {
            events.append(chunk(exchange, delta: ["tool_calls": [["index": .number(Double(index)), "id": .string(call.id), "type": "function",
                                                                  "function": ["name": .string(call.name), "arguments": ""]]]]))
            var arguments = Substring(call.arguments)
            while !arguments.isEmpty {
                let piece = arguments.prefix(5)
                arguments = arguments.dropFirst(5)
                events.append(chunk(exchange, delta: ["tool_calls": [["index": .number(Double(index)), "function": ["arguments": .string(String(piece))]]]]))
            }
        }
        events.append(chunk(exchange, delta: [:], finish: wireReason(exchange.finishReason)))
        if includeUsage {
            events.append(JSONValue.object(["id": .string(exchange.id), "object": "chat.completion.chunk", "created": 1_741_569_952,
                                            "model": .string(exchange.model), "choices": [], "usage": usage(exchange.usage)]).description)
        }
        return events + ["[DONE]"]
    }

    static func streamed(_ exchange: LLMConformance.Exchange, includeUsage: Bool) -> FakeHTTPServer.Reply {
        .sse(transcript(exchange, includeUsage: includeUsage).map { ServerSentEvent(data: $0) })
    }

    static func error(_ status: Int, _ message: String, type: String, code: String?, param: String? = nil, headers: [(String, String)] = []) -> FakeHTTPServer.Reply {
        .json(status, ["error": ["message": .string(message), "type": .string(type), "param": param.map(JSONValue.string) ?? .null,
                                 "code": code.map(JSONValue.string) ?? .null]], headers: headers)
    }

    static func failure(_ failure: LLMConformance.Failure, stream: Bool) -> FakeHTTPServer.Reply {
        switch failure {
        case .rateLimited:
            return error(429, "Rate limit reached for gpt-4o-mini in organization org-test on tokens per min (TPM): Limit 30000, Used 30000, Requested 100. Please try again in 2s.",
                         type: "tokens", code: "rate_limit_exceeded", headers: [("retry-after", "2"), ("x-ratelimit-remaining-tokens", "0")])
        case .unauthenticated:
            return error(401, "Incorrect API key provided: sk-abc***. You can find your API key at https://platform.openai.com/account/api-keys.",
                         type: "invalid_request_error", code: "invalid_api_key")
        case .contextLengthExceeded:
            return error(400, "This model's maximum context length is 128000 tokens. However, your messages resulted in 130017 tokens. Please reduce the length of the messages.",
                         type: "invalid_request_error", code: "context_length_exceeded", param: "messages")
        case .invalidRequest:
            return error(400, "Invalid value for 'response_format': expected an object.", type: "invalid_request_error", code: "invalid_value", param: "response_format")
        case .overloaded:
            return error(503, "The engine is currently overloaded, please try again later.", type: "server_error", code: nil)
        case .serverError:
            return error(500, "The server had an error while processing your request. Sorry about that!", type: "server_error", code: nil)
        case .malformedBody:
            if stream { return .sseRaw(["data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"del\n\n", "data: [DONE]\n\n"]) }
            return .json(200, #"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"mess"#)
        case .cutMidStream:
            let exchange = LLMConformance.Exchange(text: "This reply never ends")
            let events = transcript(exchange, includeUsage: true)
            let head = events.prefix(3).map { "data: \($0)\n\n" }
            let half = String("data: \(events[3])".prefix(40))
            return .disconnectMidBody(status: 200, headers: [("Content-Type", "text/event-stream")],
                                      chunks: (head + [half]).map { ByteBuffer(string: $0) })
        }
    }
}
