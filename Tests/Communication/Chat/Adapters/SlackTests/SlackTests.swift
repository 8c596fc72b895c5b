import Foundation
import NimbusChat
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing
@testable import NimbusChatSlack

/// A local Slack Web API and webhook: checks the bearer token and the documented request shape of
/// `chat.postMessage` (https://api.slack.com/methods/chat.postMessage: JSON body, `channel`, `text` or `blocks`), and
/// answers like Slack — HTTP 200 with `{"ok": false, "error": …}` for refusals, 429 with Retry-After for rate limits.
@Suite("Slack against a local fake")
struct SlackTests {
    static let token = "xoxb-fake-123"

    static func fake() async throws -> FakeHTTPServer {
        let server = try await FakeHTTPServer.start()
        server.route(.POST, "/api/chat.postMessage") { request in
            guard request.header("Authorization") == "Bearer \(token)" else { return .json(200, #"{"ok":false,"error":"invalid_auth"}"#) }
            guard request.header("Content-Type")?.hasPrefix("application/json") == true, let body = try? request.json() else {
                return .json(200, #"{"ok":false,"error":"invalid_json"}"#)
            }
            guard let channel = body["channel"]?.stringValue else { return .json(200, #"{"ok":false,"error":"channel_not_found"}"#) }
            if channel == "C-missing" { return .json(200, #"{"ok":false,"error":"channel_not_found"}"#) }
            if channel == "C-private" { return .json(200, #"{"ok":false,"error":"not_in_channel"}"#) }
            guard body["text"]?.stringValue?.isEmpty == false || body["blocks"] != nil else { return .json(200, #"{"ok":false,"error":"no_text"}"#) }
            for block in body["blocks"]?.arrayValue ?? [] where block["type"]?.stringValue == nil {
                return .json(200, #"{"ok":false,"error":"invalid_blocks"}"#)
            }
            return .json(200, .object(["ok": true, "channel": .string(channel), "ts": "1764122400.000200", "message": ["text": body["text"] ?? ""]]))
        }
        return server
    }

    @Test func postsTextBlocksAndThreadsAndReadsSlacksAnswers() async throws {
        let server = try await Self.fake()
        defer { Task { await server.shutdown() } }
        let slack = SlackWebAPIDriver(token: Secret(Self.token), baseURL: server.baseURL + "/api")
        let rich = SlackBlock.blocks([.header("Deploy finished"), .section(.markdown("*api* v42 is live"), fields: [.markdown("*By*\nZoë")],
                                                                            accessory: .button("Open", url: URL(string: "https://ci.example.com/42"), style: .primary)),
                                      .divider, .context([.plain("took 3m")])])
        let receipt = try await ChatClient(driver: slack).post(ChatPost(channel: "C0123", text: "Deploy finished", rich: rich, threadID: "1764122300.000100"))
        #expect(receipt.messageID == "1764122400.000200" && receipt.channel == "C0123")
        let sent = try #require(server.requests.first).json()
        #expect(sent["thread_ts"]?.stringValue == "1764122300.000100" && sent["blocks"]?.arrayValue?.count == 4)
        #expect(sent["blocks"]?.arrayValue?[1]["accessory"]?["style"]?.stringValue == "primary")
        #expect(sent["blocks"]?.arrayValue?[1]["fields"]?.arrayValue?.first?["type"]?.stringValue == "mrkdwn")
    }

    @Test func slacksErrorsMapAndRateLimitsAreRetried() async throws {
        let server = try await Self.fake()
        defer { Task { await server.shutdown() } }
        let chat = ChatClient(driver: SlackWebAPIDriver(token: Secret(Self.token), baseURL: server.baseURL + "/api"), retry: .none)
        #expect(await #expect(throws: NimbusError.self) { try await chat.post(ChatPost(channel: "C-missing", text: "x")) }?.code == .notFound)
        #expect(await #expect(throws: NimbusError.self) { try await chat.post(ChatPost(channel: "C-private", text: "x")) }?.code == .permissionDenied)
        let wrong = ChatClient(driver: SlackWebAPIDriver(token: Secret("xoxb-wrong"), baseURL: server.baseURL + "/api"), retry: .none)
        let auth = await #expect(throws: NimbusError.self) { try await wrong.post(ChatPost(channel: "C1", text: "x")) }
        #expect(auth?.code == .unauthenticated && !"\(String(describing: auth))".contains("xoxb-wrong"))
        await #expect(throws: NimbusError.self) { try await chat.post(ChatPost(text: "no channel")) }
        server.route(.POST, "/api/chat.postMessage", replies: [.json(429, #"{"ok":false,"error":"ratelimited"}"#, headers: [("Retry-After", "0")]),
                                                              .json(200, #"{"ok":true,"channel":"C1","ts":"1.2"}"#)])
        let retrying = ChatClient(driver: SlackWebAPIDriver(token: Secret(Self.token), baseURL: server.baseURL + "/api"),
                                  retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5)))
        #expect(try await retrying.post(ChatPost(channel: "C1", text: "x")).messageID == "1.2")
        server.route(.POST, "/api/chat.postMessage", reply: .text(200, "<html>oops</html>"))
        #expect(await #expect(throws: NimbusError.self) { try await chat.post(ChatPost(channel: "C1", text: "x")) }?.code == .internal)
    }

    @Test func incomingWebhooksPostAndReportTheirErrors() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/services/T1/B1/ok", reply: .text(200, "ok"))
        server.route(.POST, "/services/T1/B1/gone", reply: .text(410, "channel_is_archived"))
        server.route(.POST, "/services/T1/B1/bad", reply: .text(400, "invalid_payload"))
        let good = SlackWebhookDriver(url: Secret(server.baseURL + "/services/T1/B1/ok"))
        #expect(try await good.post(ChatPost(text: "hello", rich: SlackBlock.blocks([.divider]))).provider == "slack-webhook")
        #expect(try #require(server.requests.first).json()["text"]?.stringValue == "hello")
        #expect(await #expect(throws: NimbusError.self) { try await SlackWebhookDriver(url: Secret(server.baseURL + "/services/T1/B1/gone")).post(ChatPost(text: "x")) }?.code == .permissionDenied)
        #expect(await #expect(throws: NimbusError.self) { try await SlackWebhookDriver(url: Secret(server.baseURL + "/services/T1/B1/bad")).post(ChatPost(text: "x")) }?.code == .invalidArgument)
    }

    @Test func requestSignaturesAreCheckedWithinFiveMinutes() throws {
        let secret = Secret("8f742231b10e8888abcd99yyyzzz85a5")
        let body = Array("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&command=%2Fweather&text=94070".utf8)
        let timestamp = "1531420618"
        let signature = SlackRequestVerifier.signature(body: body, timestamp: timestamp, secret: secret)
        #expect(signature.hasPrefix("v0=") && signature.count == 67, "v0= and 64 hex digits (agreement with slack_sdk is checked below)")
        let verifier = SlackRequestVerifier(signingSecrets: [Secret("old"), secret])
        try verifier.verify(body: body, signature: signature, timestamp: timestamp, now: Date(timeIntervalSince1970: 1_531_420_700))
        #expect(throws: NimbusError.self) { try verifier.verify(body: body, signature: signature, timestamp: timestamp, now: Date(timeIntervalSince1970: 1_531_421_000)) }
        #expect(throws: NimbusError.self) { try verifier.verify(body: body + [0x20], signature: signature, timestamp: timestamp, now: Date(timeIntervalSince1970: 1_531_420_700)) }
        #expect(throws: NimbusError.self) { try verifier.verify(body: body, signature: "v1=" + signature.dropFirst(3), timestamp: timestamp, now: Date(timeIntervalSince1970: 1_531_420_700)) }
    }

    /// slack_sdk's SignatureVerifier (pip, the official library) accepts what this signs and computes the same.
    @Test(.requires(.commsSDKs)) func signaturesAgreeWithSlackSDK() async throws {
        let python = try Peer.commsSDKs.url()
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let body = "payload=%7B%22type%22%3A%22block_actions%22%2C%22text%22%3A%22Gr%C3%BC%C3%9Fe%22%7D"
        let ours = SlackRequestVerifier.signature(body: Array(body.utf8), timestamp: timestamp, secret: Secret("s3cr3t"))
        let script = """
        import sys
        from slack_sdk.signature import SignatureVerifier
        v = SignatureVerifier("s3cr3t")
        body, ts, sig = sys.argv[1], sys.argv[2], sys.argv[3]
        print(v.generate_signature(timestamp=ts, body=body))
        print(v.is_valid(body=body, timestamp=ts, signature=sig))
        """
        let result = try await ProcessRunner.run(python, ["-c", script, body, timestamp, ours])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").map(String.init) == [ours, "True"])
    }
}
