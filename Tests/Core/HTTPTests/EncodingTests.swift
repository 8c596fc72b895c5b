import Foundation
import NIOCore
import NimbusCore
import NimbusHTTP
import Testing

@Suite("Form, multipart and webhook helpers")
struct EncodingTests {
    struct Charge: Encodable {
        var amount: Int
        var currency: String
        var capture: Bool
        var description: String?
        var metadata: [String: String]
        var items: [Item]
        struct Item: Encodable { var price: String; var quantity: Int }
    }

    @Test("nested form keys, Stripe style, escaped per WHATWG; nulls left out")
    func form() throws {
        let charge = Charge(amount: 2000, currency: "eur", capture: false, description: nil,
                            metadata: ["order id": "42&x"], items: [.init(price: "price_1", quantity: 2)])
        let body = try FormEncoder().encode(charge)
        #expect(body == "amount=2000&capture=false&currency=eur&items%5B0%5D%5Bprice%5D=price_1&items%5B0%5D%5Bquantity%5D=2&metadata%5Border+id%5D=42%26x")
        let decoded = try FormDecoder.decode(body)
        #expect(decoded == ["amount": "2000", "capture": "false", "currency": "eur",
                            "items": [["price": "price_1", "quantity": "2"]], "metadata": ["order id": "42&x"]])
    }

    @Test("array encodings: indexed, brackets, repeated")
    func arrays() throws {
        let value: JSONValue = ["expand": ["customer", "invoice"]]
        #expect(try FormEncoder(arrayEncoding: .indexed).encode(value) == "expand%5B0%5D=customer&expand%5B1%5D=invoice")
        #expect(try FormEncoder(arrayEncoding: .brackets).encode(value) == "expand%5B%5D=customer&expand%5B%5D=invoice")
        #expect(try FormEncoder(arrayEncoding: .repeated).encode(value) == "expand=customer&expand=invoice")
        #expect(try FormDecoder.decode("expand[]=a&expand[]=b") == ["expand": ["a", "b"]])
        #expect(try FormDecoder.decode("a[b]=1&a[c]=2") == ["a": ["b": "1", "c": "2"]])
    }

    @Test("form errors: not an object, unbalanced brackets, leaf used as container")
    func formErrors() {
        #expect(throws: NimbusError.self) { try FormEncoder().encode([1, 2]) }
        #expect(throws: NimbusError.self) { try FormDecoder.decode("a[b=1") }
        #expect(throws: NimbusError.self) { try FormDecoder.decode("a=1&a[b]=2") }
    }

    @Test("multipart encodes and parses back, binary-safe")
    func multipart() throws {
        var form = MultipartFormData(boundary: "XyZ")
        form.append("model", "whisper-1")
        form.append("file", ByteBuffer(bytes: [0, 13, 10, 45, 45, 255]), filename: "a \"b\".mp3", contentType: "audio/mpeg")
        let encoded = form.encode()
        #expect(String(buffer: encoded).hasPrefix("--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--XyZ\r\n"))
        let parsed = try MultipartFormData.parse(encoded, contentType: form.contentType)
        #expect(parsed.parts.count == 2)
        #expect(parsed.parts[1].body == ByteBuffer(bytes: [0, 13, 10, 45, 45, 255]))
        #expect(parsed.parts[1].filename == "a %22b%22.mp3")
        #expect(parsed.parts[1].contentType == "audio/mpeg")
        #expect(throws: NimbusError.self) { try MultipartFormData.parse(ByteBuffer(string: "--XyZ\r\nx"), contentType: form.contentType) }
        #expect(throws: NimbusError.self) { try MultipartFormData.parse(encoded, contentType: "multipart/form-data") }
    }

    @Test("webhook signatures: hex and base64, rotation, several candidates")
    func webhookValid() throws {
        let payload = Data("1700000000.{\"id\":\"evt_1\"}".utf8)
        let old = Secret("whsec_old"), new = Secret("whsec_new")
        let signature = WebhookSignature.sign(payload: payload, secret: new)
        #expect(signature.count == 64)
        try WebhookSignature.verify(payload: payload, candidates: ["deadbeef", signature], secrets: [old, new])
        let base64 = WebhookSignature.sign(payload: payload, secret: old, algorithm: .sha1, encoding: .base64)
        try WebhookSignature.verify(payload: payload, candidates: [base64], secrets: [new, old], algorithm: .sha1, encoding: .base64)
        // Known vector (RFC 4231 test case 2): key "Jefe", data "what do ya want for nothing?".
        #expect(WebhookSignature.sign(payload: Data("what do ya want for nothing?".utf8), secret: Secret("Jefe"))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("webhook signatures: wrong, malformed, missing, expired and future timestamps are rejected")
    func webhookInvalid() throws {
        let payload = Data("body".utf8)
        let secret = Secret("s")
        let good = WebhookSignature.sign(payload: payload, secret: secret)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let wrong: [[String]] = [["00" + String(good.dropFirst(2))], ["zz"], ["abc"], []]
        for candidates in wrong {
            let error = #expect(throws: NimbusError.self) { try WebhookSignature.verify(payload: payload, candidates: candidates, secrets: [secret]) }
            #expect(error?.code == .unauthenticated)
        }
        let expired = #expect(throws: NimbusError.self) {
            try WebhookSignature.verify(payload: payload, candidates: [good], secrets: [secret], timestamp: now.addingTimeInterval(-301), tolerance: .seconds(300), now: now)
        }
        #expect(expired?.message.contains("tolerance") == true)
        #expect(throws: NimbusError.self) {
            try WebhookSignature.verify(payload: payload, candidates: [good], secrets: [secret], timestamp: now.addingTimeInterval(400), now: now)
        }
        try WebhookSignature.verify(payload: payload, candidates: [good], secrets: [secret], timestamp: now.addingTimeInterval(-299), now: now)
        #expect(throws: NimbusError.self) { try WebhookSignature.verify(payload: payload, candidates: [good], secrets: []) }
        #expect(ConstantTime.equals([1, 2], [1, 2]))
        #expect(!ConstantTime.equals([1, 2], [1, 3]))
        #expect(!ConstantTime.equals([1, 2], [1, 2, 3]))
    }

    @Test("HTTP dates and Retry-After in both forms")
    func retryAfter() {
        let now = Date(timeIntervalSince1970: 784_111_777)   // Sun, 06 Nov 1994 08:49:37 GMT
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == now)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == now)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == now)
        #expect(HTTPDate.format(now) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.retryAfter("120", now: now) == .seconds(120))
        #expect(HTTPDate.retryAfter("Sun, 06 Nov 1994 08:50:07 GMT", now: now) == .seconds(30))
        #expect(HTTPDate.retryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now: now) == .zero)
        #expect(HTTPDate.retryAfter("soon", now: now) == nil)
        #expect(HTTPDate.retryAfter("-5", now: now) == nil)
    }

    @Test("status codes map to the portable taxonomy")
    func statusMapping() {
        let expected: [(UInt, NimbusError.Code)] = [(400, .invalidArgument), (401, .unauthenticated), (403, .permissionDenied), (404, .notFound),
                                                    (409, .alreadyExists), (413, .resourceExhausted), (429, .resourceExhausted), (500, .internal),
                                                    (501, .unimplemented), (502, .unavailable), (503, .unavailable), (504, .deadlineExceeded)]
        for (status, code) in expected { #expect(HTTPStatusMapping.code(for: HTTPResponseStatus(statusCode: Int(status))) == code, "\(status)") }
    }

    @Test("redaction of headers, URLs and JSON bodies")
    func redaction() {
        var headers = HTTPHeadersLike.make()
        headers.add(name: "X-Trace", value: "t1")
        let text = Redaction.headers(headers)
        #expect(!text.contains("sk-123") && text.contains("X-Trace: t1"))
        let url = Redaction.url("https://user:pw@api.example.com/v1?key=AIza123&alt=sse")
        #expect(!url.contains("AIza123") && !url.contains("pw@") && url.contains("alt=sse"))
        // Secrets in paths (issue 15 §4): Slack webhook URLs and Discord webhook tokens never reach logs or traces.
        let slack = Redaction.url("https://hooks.slack.com/services/T0001/B0001/XXXXslackSecretXXXX")
        #expect(!slack.contains("slackSecret") && slack.hasPrefix("https://hooks.slack.com/services/T0001/B0001/"), "\(slack)")
        let discord = Redaction.url("https://discord.com/api/webhooks/1234567890/dIsCoRdToKeN-abc?wait=true")
        #expect(!discord.contains("dIsCoRdToKeN") && discord.contains("/webhooks/1234567890/") && discord.contains("wait=true"), "\(discord)")
        #expect(Redaction.url("https://api.example.com/v1/chat/completions") == "https://api.example.com/v1/chat/completions")
        let body = Redaction.body(ByteBuffer(string: #"{"model":"m","api_key":"sk-9","nested":{"password":"p"}}"#))
        #expect(!body.contains("sk-9") && !body.contains("\"p\"") && body.contains("\"model\":\"m\""))
    }
}

import NIOHTTP1
enum HTTPHeadersLike {
    static func make() -> HTTPHeaders { ["Authorization": "Bearer sk-123", "x-api-key": "sk-123"] }
}
