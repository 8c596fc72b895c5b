import Foundation
import NIOCore
import NimbusCore
import NimbusEmail
import NimbusEmailSMTP
import NimbusHTTP
import NimbusPaymentStripe
import NimbusRedis

/// The parsers that take bytes from the network, as fuzz entry points: each takes any bytes and must
/// return (throwing is fine: a clear error) without trapping, hanging or growing without bound.
/// `scripts/fuzz` runs them under libFuzzer (`swift build -Xswiftc -sanitize=fuzzer,address`); the test
/// suite replays their seed corpus and every input that ever crashed one (`Fuzz/regressions`).
///
/// ```sh
/// scripts/fuzz sse 600        # ten minutes of SSE parsing
/// ```
public enum FuzzTargets {
    /// A named entry point.
    public struct Target: Sendable {
        public let name: String
        public let run: @Sendable ([UInt8]) -> Void
    }

    /// Every target, by name.
    public static let all: [Target] = [
        Target(name: "sse", run: sse), Target(name: "ndjson", run: ndjson), Target(name: "resp", run: resp),
        Target(name: "smtp", run: smtpReplies), Target(name: "mime", run: mime), Target(name: "form", run: form),
        Target(name: "jsonschema", run: jsonSchema), Target(name: "webhook", run: webhookHeaders),
    ]

    /// The target called `name`.
    public static func target(_ name: String) -> Target? { all.first { $0.name == name } }

    /// Splits input into chunks at positions its first byte chooses, as a network would.
    static func chunks(_ bytes: [UInt8]) -> [ByteBuffer] {
        guard let first = bytes.first else { return [] }
        let size = max(1, Int(first) % 17 + 1)
        return stride(from: 1, to: bytes.count, by: size).map { ByteBuffer(bytes: bytes[$0..<min(bytes.count, $0 + size)]) }
    }

    /// Server-Sent Events (OpenAI, Anthropic, Gemini streams).
    @Sendable public static func sse(_ bytes: [UInt8]) {
        var parser = ServerSentEventParser(maximumEventSize: 64 * 1024)
        for chunk in chunks(bytes) { guard (try? parser.feed(chunk)) != nil else { return } }
        _ = parser.finish()
    }

    /// Newline-delimited JSON (Ollama streams), each line parsed as JSON.
    @Sendable public static func ndjson(_ bytes: [UInt8]) {
        var splitter = NDJSONLineSplitter(maximumLineLength: 64 * 1024)
        for chunk in chunks(bytes) {
            guard let lines = try? splitter.feed(chunk) else { return }
            for line in lines { _ = try? JSONValue.parse(Data(line)) }
        }
        if let last = splitter.finish() { _ = try? JSONValue.parse(Data(last)) }
    }

    /// RESP2/RESP3 replies (Redis).
    @Sendable public static func resp(_ bytes: [UInt8]) {
        let decoder = RESPDecoder(maximumBulkLength: 1 << 20, maximumAggregateLength: 1 << 12, maximumDepth: 32)
        var buffer = ByteBuffer(bytes: bytes)
        while buffer.readableBytes > 0 {
            do { guard try decoder.parse(from: &buffer) != nil else { return } } catch { return }   // nil: needs more bytes
        }
    }

    /// SMTP replies (single and multi-line, enhanced status codes).
    @Sendable public static func smtpReplies(_ bytes: [UInt8]) {
        var parser = SMTPResponseParser()
        var buffer = ByteBuffer()
        for chunk in chunks(bytes) {
            var chunk = chunk
            buffer.writeBuffer(&chunk)
            while true {
                do { guard try parser.next(&buffer) != nil else { break } } catch { return }   // nil: needs more bytes
            }
        }
    }

    /// MIME messages (headers, RFC 2047 words, multipart, base64, quoted-printable, RFC 2231 names).
    @Sendable public static func mime(_ bytes: [UInt8]) {
        guard let message = try? MIMEReader(bytes) else { return }
        _ = message.subject
        _ = message.text(of: "text/plain")
        for part in message.parts { _ = part.filename }
    }

    /// Form bodies (Twilio, Stripe-style nested keys).
    @Sendable public static func form(_ bytes: [UInt8]) {
        let body = String(decoding: bytes, as: UTF8.self)
        _ = FormDecoder.pairs(body)
        _ = try? FormDecoder.decode(body)
    }

    /// JSON Schema validation: a schema and an instance, separated by the first NUL byte.
    @Sendable public static func jsonSchema(_ bytes: [UInt8]) {
        guard let split = bytes.firstIndex(of: 0),
              let schema = try? JSONValue.parse(Data(bytes[..<split])),
              let instance = try? JSONValue.parse(Data(bytes[(split + 1)...])) else { return }
        _ = JSONSchema.validate(instance, against: schema)
        _ = JSONSchema.unknownKeywords(in: schema)
        _ = JSONSchema.unresolvedReferences(in: schema)
    }

    /// Webhook signature headers: `Stripe-Signature` (the first line) over a body (the rest), and timestamps.
    @Sendable public static func webhookHeaders(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let header = text.prefix { $0 != "\n" }
        let body = Array(text.utf8.dropFirst(header.utf8.count))
        _ = try? StripeWebhook.verify(body: body, signatureHeader: String(header), secrets: [Secret("whsec_fuzz")], now: Date(timeIntervalSince1970: 1_700_000_000))
        _ = try? WebhookSignature.timestamp(String(header), header: "X-Timestamp")
    }
}
