import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusLLM
import NimbusLLMConformance
import NimbusLLMGemini
import NimbusTesting
import Testing

/// A local Gemini API: checks each body against the `generativelanguage.v1beta` protos (JSON
/// mapping) and answers with documented `GenerateContentResponse` bodies and `alt=sse` streams.
final class GeminiFake: Sendable {
    let server: FakeHTTPServer
    let checker: ProtoJSONChecker
    let backend = LLMConformance.ScriptedBackend()

    static let protos: Result<ProtoJSONChecker, any Error> = Result {
        try ProtoJSONChecker(fixtures: ["generative_service", "content", "citation", "retriever", "safety"], in: Bundle.module)
    }

    static func start() async throws -> GeminiFake {
        let fake = GeminiFake(server: try await FakeHTTPServer.start(), checker: try protos.get())
        fake.server.refuseRequests(failing: { request in fake.departures(request) }) { problems in
            Self.error(400, "INVALID_ARGUMENT", "spec mismatch: " + problems.joined(separator: "; "))
        }
        fake.server.route(.POST, "/v1beta/models/{model}") { request in fake.answer(request) }
        return fake
    }

    private init(server: FakeHTTPServer, checker: ProtoJSONChecker) {
        self.server = server
        self.checker = checker
    }

    func model(retry: RetryPolicy = .none) -> ChatModel {
        ChatModel(driver: GeminiChatModelDriver(configuration: .init(apiKey: Secret("AIza-test"), baseURL: server.baseURL + "/v1beta")),
                  configuration: .init(defaultModel: "gemini-2.5-flash", retry: retry))
    }

    func script(_ scripted: LLMConformance.Scripted) { backend.script(scripted) }
    var specMismatches: [String] { server.refusals.flatMap(\.problems) }

    /// How a request departs from the protos: the body of the method its path names, checked
    /// against that method's request message; an unknown method is a departure too.
    func departures(_ request: FakeHTTPServer.CapturedRequest) -> [String] {
        let body = (try? request.json()) ?? .null
        let methods = [":streamGenerateContent": "GenerateContentRequest", ":generateContent": "GenerateContentRequest",
                       ":batchEmbedContents": "BatchEmbedContentsRequest", ":embedContent": "EmbedContentRequest"]
        guard let (suffix, message) = methods.first(where: { request.path.hasSuffix($0.key) }) else {
            return ["path \(request.path) is not a method the fake knows (\(methods.keys.sorted().joined(separator: ", ")))"]
        }
        var found = checker.check(body, message: message, pathFields: ["model"])
        if suffix == ":streamGenerateContent" && request.queryItem("alt") != "sse" { found.append("streaming without alt=sse") }
        return found
    }

    func answer(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let stream = request.path.hasSuffix(":streamGenerateContent")
        guard request.header("x-goog-api-key") == "AIza-test" else { return Self.failure(.unauthenticated, stream: false) }
        guard let next = backend.next() else { return Self.error(500, "INTERNAL", "nothing scripted") }
        switch next {
        case .reply(let exchange): return stream ? .sse(Self.chunks(exchange).map { ServerSentEvent(data: $0.description) }) : .json(200, Self.response(exchange))
        case .failure(let failure): return Self.failure(failure, stream: stream)
        }
    }

    static func wireReason(_ reason: FinishReason) -> String {
        switch reason {
        case .stop, .toolCalls, .error: "STOP"
        case .length: "MAX_TOKENS"
        case .contentFilter: "SAFETY"
        case .other(let raw): raw
        }
    }

    static func usage(_ usage: Usage) -> JSONValue {
        var fields: [String: JSONValue] = [
            "promptTokenCount": .number(Double(usage.inputTokens)), "candidatesTokenCount": .number(Double(usage.outputTokens - usage.reasoningTokens)),
            "totalTokenCount": .number(Double(usage.totalTokens)), "promptTokensDetails": [["modality": "TEXT", "tokenCount": .number(Double(usage.inputTokens))]],
        ]
        if usage.cachedInputTokens > 0 { fields["cachedContentTokenCount"] = .number(Double(usage.cachedInputTokens)) }
        if usage.reasoningTokens > 0 { fields["thoughtsTokenCount"] = .number(Double(usage.reasoningTokens)) }
        return .object(fields)
    }

    static let signature = "CiQB0e2Kb9WmM1ZwEnb0u6Pq4Q=="
    static let safetyRatings: JSONValue = [["category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"]]

    static func response(_ exchange: LLMConformance.Exchange) -> JSONValue {
        var parts: [JSONValue] = []
        if let reasoning = exchange.reasoning { parts.append(["text": .string(reasoning), "thought": true, "thoughtSignature": .string(signature)]) }
        if !exchange.text.isEmpty { parts.append(["text": .string(exchange.text)]) }
        for call in exchange.toolCalls {
            parts.append(["functionCall": ["name": .string(call.name), "args": (try? JSONValue.parse(Data(call.arguments.utf8))) ?? [:]]])
        }
        return ["candidates": [["content": ["role": "model", "parts": .array(parts)], "finishReason": .string(wireReason(exchange.finishReason)),
                                "index": 0, "safetyRatings": safetyRatings, "avgLogprobs": -0.12]],
                "usageMetadata": usage(exchange.usage), "modelVersion": .string(exchange.model), "responseId": .string(exchange.id)]
    }

    static func chunk(_ exchange: LLMConformance.Exchange, parts: [JSONValue], finish: String? = nil, usage: Usage) -> JSONValue {
        var candidate: [String: JSONValue] = ["content": ["role": "model", "parts": .array(parts)], "index": 0]
        if let finish { candidate["finishReason"] = .string(finish); candidate["safetyRatings"] = safetyRatings }
        return ["candidates": [.object(candidate)], "usageMetadata": Self.usage(usage), "modelVersion": .string(exchange.model), "responseId": .string(exchange.id)]
    }

    /// The `alt=sse` transcript: thoughts, text in pieces, function calls whole, the finish reason and final usage last.
    static func chunks(_ exchange: LLMConformance.Exchange) -> [JSONValue] {
        var partial = exchange.usage
        partial.outputTokens = 0
        partial.reasoningTokens = 0
        var chunks: [JSONValue] = []
        if let reasoning = exchange.reasoning {
            let half = reasoning.index(reasoning.startIndex, offsetBy: reasoning.count / 2)
            chunks.append(chunk(exchange, parts: [["text": .string(String(reasoning[..<half])), "thought": true]], usage: partial))
            chunks.append(chunk(exchange, parts: [["text": .string(String(reasoning[half...])), "thought": true, "thoughtSignature": .string(signature)]], usage: partial))
        }
        var text = Substring(exchange.text)
        while !text.isEmpty {
            chunks.append(chunk(exchange, parts: [["text": .string(String(text.prefix(7)))]], usage: partial))
            text = text.dropFirst(7)
        }
        if !exchange.toolCalls.isEmpty {
            chunks.append(chunk(exchange, parts: exchange.toolCalls.map {
                ["functionCall": ["name": .string($0.name), "args": (try? JSONValue.parse(Data($0.arguments.utf8))) ?? [:]]]
            }, usage: partial))
        }
        chunks.append(chunk(exchange, parts: [["text": ""]], finish: wireReason(exchange.finishReason), usage: exchange.usage))
        return chunks
    }

    static func error(_ code: Int, _ status: String, _ message: String, details: [JSONValue] = []) -> FakeHTTPServer.Reply {
        .json(code, ["error": ["code": .number(Double(code)), "message": .string(message), "status": .string(status), "details": .array(details)]])
    }

    static func failure(_ failure: LLMConformance.Failure, stream: Bool) -> FakeHTTPServer.Reply {
        switch failure {
        case .rateLimited:
            return error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details.", details: [
                ["@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [["quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"]]],
                ["@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"],
            ])
        case .unauthenticated:
            return error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details: [
                ["@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": ["service": "generativelanguage.googleapis.com"]],
            ])
        case .contextLengthExceeded:
            return error(400, "INVALID_ARGUMENT", "The input token count (1201234) exceeds the maximum number of tokens allowed (1048576).")
        case .invalidRequest:
            return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"foo\" at 'generation_config': Cannot find field.")
        case .overloaded:
            return error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        case .serverError:
            return error(500, "INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting")
        case .malformedBody:
            if stream { return .sseRaw(["data: {\"candidates\": [{\"content\": {\"parts\": [{\"te\n\n"]) }
            return .json(200, #"{"candidates":[{"content":{"parts":[{"text":"Hel"#)
        case .cutMidStream:
            let chunks = self.chunks(.init(text: "This reply never ends, it goes on"))
            let first = "data: \(chunks[0].description)\n\n"
            let half = String("data: \(chunks[1].description)".prefix(50))
            return .disconnectMidBody(status: 200, headers: [("Content-Type", "text/event-stream")], chunks: [ByteBuffer(string: first), ByteBuffer(string: half)])
        }
    }
}
