// ClientLatency — sequential POSTs to a local upstream through raw AsyncHTTPClient, NimbusHTTPClient
// and the OpenAI adapter, printing each one's median: where a gateway's per-call time goes.
//
//     ClientLatency http://127.0.0.1:18500/v1 [iterations]
import AsyncHTTPClient
import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import NimbusLLM
import NimbusLLMOpenAI

let base = CommandLine.arguments.dropFirst().first ?? "http://127.0.0.1:18500/v1"
let iterations = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 200
let body = #"{"model":"fake","messages":[{"role":"user","content":"hi"}]}"#

func median(_ label: String, _ operation: () async throws -> Void) async throws {
    for _ in 0..<20 { try await operation() }
    var samples: [Duration] = []
    for _ in 0..<iterations {
        let start = ContinuousClock.now
        try await operation()
        samples.append(ContinuousClock.now - start)
    }
    samples.sort()
    func ms(_ d: Duration) -> String { String(format: "%.3f ms", Double(d.nimbusNanoseconds) / 1e6) }
    print("\(label): p50 \(ms(samples[samples.count / 2])), p99 \(ms(samples[samples.count * 99 / 100]))")
}

let http = NimbusHTTPClient.defaultTransport
try await median("AsyncHTTPClient") {
    var request = HTTPClientRequest(url: base + "/chat/completions")
    request.method = .POST
    request.headers.add(name: "Content-Type", value: "application/json")
    request.body = .bytes(ByteBuffer(string: body))
    let response = try await http.execute(request, timeout: .seconds(10))
    _ = try await response.body.collect(upTo: 1 << 20)
}
let client = NimbusHTTPClient(configuration: .init(service: "bench", baseURL: base))
try await median("NimbusHTTPClient") {
    var request = NimbusHTTPRequest(.POST, "/chat/completions")
    request.body = ByteBuffer(string: body)
    request.headers.add(name: "Content-Type", value: "application/json")
    _ = try await client.send(request).collect(upTo: 1 << 20)
}
let model = ChatModel(driver: OpenAIChatModelDriver(configuration: .compatible(baseURL: base)), configuration: .init(defaultModel: "fake"))
try await median("ChatModel(OpenAI)") { _ = try await model.chat([.user("hi")]) }
try await median("ChatModel(OpenAI) stream") { _ = try await model.stream(ChatRequest(messages: [.user("hi")])).collect() }
