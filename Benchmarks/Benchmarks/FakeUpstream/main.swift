// FakeUpstream — an OpenAI-compatible chat server with a fixed latency, the common upstream of the
// gateway comparison (Benchmarks/gateway-vs-litellm). It answers POST /v1/chat/completions after
// --latency-ms with a fixed completion, or (for "stream": true) the same reply as an SSE stream
// with a usage chunk and [DONE]. It keeps no per-request state, so its memory stays flat.
//
//     FakeUpstream --port 18500 --latency-ms 20
import Foundation
import Hummingbird
import Logging
import NIOCore

var port = 18500
var latency = 20
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--port": port = Int(arguments.next() ?? "") ?? port
    case "--latency-ms": latency = Int(arguments.next() ?? "") ?? latency
    default: FileHandle.standardError.write(Data("unknown argument \(argument)\n".utf8)); exit(2)
    }
}

let words = ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "."]
let completion = ByteBuffer(string: #"{"id":"chatcmpl-fake","object":"chat.completion","created":1741569952,"model":"fake","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#)
func chunk(_ delta: String, finish: String? = nil) -> String {
    let reason = finish.map { "\"\($0)\"" } ?? "null"
    return "data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":1741569952,\"model\":\"fake\",\"choices\":[{\"index\":0,\"delta\":\(delta),\"finish_reason\":\(reason)}]}\n\n"
}
var streamText = chunk(#"{"role":"assistant","content":""}"#)
for word in words { streamText += chunk("{\"content\":\"\(word)\"}") }
streamText += chunk("{}", finish: "stop")
streamText += #"data: {"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1741569952,"model":"fake","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22}}"# + "\n\ndata: [DONE]\n\n"
let stream = ByteBuffer(string: streamText)
let streamMarker = Array(#""stream":true"#.utf8), streamMarkerSpaced = Array(#""stream": true"#.utf8)

let router = Router()
router.post("/v1/chat/completions") { request, _ -> Response in
    let body = try await request.body.collect(upTo: 16 * 1024 * 1024)
    let bytes = Array(body.readableBytesView)
    let streaming = bytes.firstRange(of: streamMarker) != nil || bytes.firstRange(of: streamMarkerSpaced) != nil
    try await Task.sleep(for: .milliseconds(latency))
    if streaming {
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: .init(byteBuffer: stream))
    }
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: completion))
}
router.get("/v1/models") { _, _ in
    Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"object":"list","data":[{"id":"fake","object":"model","created":1,"owned_by":"bench"}]}"#)))
}
var logger = Logger(label: "fake-upstream")
logger.logLevel = .warning
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "fake-upstream"), logger: logger)
try await app.runService()
