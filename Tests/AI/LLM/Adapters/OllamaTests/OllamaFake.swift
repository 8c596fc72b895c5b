import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusLLM
import NimbusLLMConformance
import NimbusLLMOllama
import NimbusTesting
import Testing

/// A local Ollama: checks each request against Ollama's OpenAPI description and answers with the
/// documented `/api/chat` objects, one NDJSON line per chunk when streaming.
final class OllamaFake: Sendable {
    let server: FakeHTTPServer
    let checker: OpenAPIRequestChecker
    let backend = LLMConformance.ScriptedBackend()

    static let spec = OpenAPIRequestChecker.fixture("ollama-extract", in: .module)

    static func start() async throws -> OllamaFake {
        let fake = OllamaFake(server: try await FakeHTTPServer.start(), checker: try spec.get())
        // Every /api/ call is checked against Ollama's API description (the image route is a web server's).
        let checker = fake.checker
        fake.server.refuseRequests(failing: { request in request.path.hasPrefix("/api/") ? checker.check(request).map(\.description) : [] }) { problems in
            .json(400, ["error": .string("spec mismatch: " + problems.joined(separator: "; "))])
        }
        fake.server.route(.POST, "/api/chat") { request in fake.answer(request) }
        fake.server.route(.GET, "/images/cat.png", reply: .response(status: 200, headers: [("Content-Type", "image/png")], body: ByteBuffer(bytes: [0x89, 0x50, 0x4E, 0x47])))
        return fake
    }

    private init(server: FakeHTTPServer, checker: OpenAPIRequestChecker) {
        self.server = server
        self.checker = checker
    }

    /// The adapter against the fake; image downloads are on and may reach it (it is on loopback).
    func model(retry: RetryPolicy = .none, configure: (inout OllamaChatModelDriver.Configuration) -> Void = { _ in }) -> ChatModel {
        var configuration = OllamaChatModelDriver.Configuration(baseURL: server.baseURL, keepAlive: "10m",
                                                                imageDownloads: .init(allowPrivateNetworks: true))
        configure(&configuration)
        return ChatModel(driver: OllamaChatModelDriver(configuration: configuration), configuration: .init(defaultModel: "llama3.2", retry: retry))
    }

    func script(_ scripted: LLMConformance.Scripted) { backend.script(scripted) }
    var specMismatches: [String] { server.refusals.flatMap(\.problems) }

    func answer(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        let stream = ((try? request.json()) ?? .null)["stream"] != false   // Ollama streams unless told not to
        guard let next = backend.next() else { return .json(500, ["error": "nothing scripted"]) }
        switch next {
        case .reply(let exchange):
            return stream ? .ndjson(Self.lines(exchange).map(\.description)) : .json(200, Self.final(exchange, content: exchange.text, thinking: exchange.reasoning, calls: true))
        case .failure(let failure):
            return Self.failure(failure, stream: stream)
        }
    }

    static func doneReason(_ reason: FinishReason) -> String {
        switch reason {
        case .stop, .toolCalls, .error, .contentFilter: "stop"
        case .length: "length"
        case .other(let raw): raw
        }
    }

    static func message(content: String, thinking: String?, calls: [ToolCall]) -> JSONValue {
        var message: [String: JSONValue] = ["role": "assistant", "content": .string(content)]
        if let thinking { message["thinking"] = .string(thinking) }
        if !calls.isEmpty {
            message["tool_calls"] = .array(calls.map { ["function": ["name": .string($0.name), "arguments": (try? JSONValue.parse(Data($0.arguments.utf8))) ?? [:]]] })
        }
        return .object(message)
    }

    static func final(_ exchange: LLMConformance.Exchange, content: String, thinking: String?, calls: Bool) -> JSONValue {
        ["model": .string(exchange.model), "created_at": "2025-10-03T12:00:00.123456Z",
         "message": message(content: content, thinking: thinking, calls: calls ? exchange.toolCalls : []),
         "done": true, "done_reason": .string(doneReason(exchange.finishReason)), "total_duration": 4883583458, "load_duration": 1334875,
         "prompt_eval_count": .number(Double(exchange.usage.inputTokens)), "prompt_eval_duration": 342546000,
         "eval_count": .number(Double(exchange.usage.outputTokens)), "eval_duration": 4535599000]
    }

    static func lines(_ exchange: LLMConformance.Exchange) -> [JSONValue] {
        var lines: [JSONValue] = []
        func chunk(_ message: JSONValue) -> JSONValue {
            ["model": .string(exchange.model), "created_at": "2025-10-03T12:00:00.123456Z", "message": message, "done": false]
        }
        if let reasoning = exchange.reasoning {
            for piece in [String(reasoning.prefix(5)), String(reasoning.dropFirst(5))] where !piece.isEmpty {
                lines.append(chunk(message(content: "", thinking: piece, calls: [])))
            }
        }
        var text = Substring(exchange.text)
        while !text.isEmpty {
            lines.append(chunk(message(content: String(text.prefix(6)), thinking: nil, calls: [])))
            text = text.dropFirst(6)
        }
        if !exchange.toolCalls.isEmpty { lines.append(chunk(message(content: "", thinking: nil, calls: exchange.toolCalls))) }
        lines.append(final(exchange, content: "", thinking: nil, calls: false))
        return lines
    }

    static func failure(_ failure: LLMConformance.Failure, stream: Bool) -> FakeHTTPServer.Reply {
        switch failure {
        case .rateLimited: return .json(429, ["error": "too many requests"], headers: [("Retry-After", "2")])
        case .unauthenticated: return .json(401, ["error": "unauthorized"])
        case .contextLengthExceeded: return .json(400, ["error": "the input length exceeds the context length"])
        case .invalidRequest: return .json(400, ["error": "invalid format: expected \"json\" or a valid JSON schema"])
        case .overloaded: return .json(503, ["error": "server busy, please try again.  maximum pending requests exceeded"])
        case .serverError: return .json(500, ["error": "llama runner process has terminated: signal: killed"])
        case .malformedBody:
            if stream { return .ndjson([#"{"model":"llama3.2","created_at":"2025-10-03T12:00:00Z","message":{"role":"assi"#]) }
            return .json(200, #"{"model":"llama3.2","message":{"role":"assi"#)
        case .cutMidStream:
            let lines = Self.lines(.init(text: "This reply never ends, it goes on")).map(\.description)
            return .disconnectMidBody(status: 200, headers: [("Content-Type", "application/x-ndjson")],
                                      chunks: [ByteBuffer(string: lines[0] + "\n"), ByteBuffer(string: String(lines[1].prefix(30)))])
        }
    }
}
