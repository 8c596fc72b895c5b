import Crypto
import Foundation
import NimbusChat
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing
@testable import NimbusChatDiscord

/// A local Discord API: webhook execution and channel messages as documented
/// (https://discord.com/developers/docs/resources/webhook#execute-webhook, …/message#create-message), with its
/// rate-limit headers and error JSON.
@Suite("Discord against a local fake")
struct DiscordTests {
    @Test func webhooksAndBotsPostEmbedsAndWaitForTheMessage() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/api/webhooks/123/tok") { request in
            guard request.queryItem("wait") == "true", let body = try? request.json(), body["content"] != nil || body["embeds"] != nil else {
                return .json(400, #"{"code":50006,"message":"Cannot send an empty message"}"#)
            }
            return .json(200, .object(["id": "9001", "channel_id": "555", "content": body["content"] ?? ""]))
        }
        server.route(.POST, "/api/v10/channels/555/messages") { request in
            guard request.header("Authorization") == "Bot bot-token" else { return .json(401, #"{"message":"401: Unauthorized","code":0}"#) }
            return .json(200, #"{"id":"9002","channel_id":"555"}"#, headers: [("X-RateLimit-Bucket", "b1"), ("X-RateLimit-Remaining", "4"), ("X-RateLimit-Reset-After", "1.0")])
        }
        let embed = DiscordEmbed(title: "Deploy", description: "v42 is live", color: 0x2ECC71, fields: [.init("By", "Zoë", inline: true)], footer: "ci")
        let webhook = try DiscordWebhookDriver(url: Secret(server.baseURL + "/api/webhooks/123/tok"))
        let posted = try await ChatClient(driver: webhook).post(ChatPost(text: "Deploy done @everyone", rich: DiscordEmbed.embeds([embed]), username: "CI"))
        #expect(posted.messageID == "9001" && posted.channel == "555")
        let sent = try #require(server.requests.first).json()
        #expect(sent["embeds"]?.arrayValue?.first?["color"]?.numberValue == 0x2ECC71 && sent["username"]?.stringValue == "CI")
        #expect(sent["allowed_mentions"]?["parse"] == [], "@everyone in the text pings nobody")
        let bot = DiscordBotDriver(token: Secret("bot-token"), baseURL: server.baseURL + "/api/v10")
        #expect(try await bot.post(ChatPost(channel: "555", text: "hi", threadID: "9001")).messageID == "9002")
        #expect(try #require(server.requests.last).json()["message_reference"]?["message_id"]?.stringValue == "9001")
        await #expect(throws: NimbusError.self) { try await bot.post(ChatPost(channel: "general", text: "x")) }
        await #expect(throws: NimbusError.self) { try await bot.post(ChatPost(channel: "555", text: String(repeating: "x", count: 2001))) }
        #expect(throws: NimbusError.self) { try DiscordWebhookDriver(url: Secret("https://example.com/not-a-webhook")) }
    }

    @Test func errorsAndRateLimitsFollowDiscordsAnswers() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        let path = "/api/v10/channels/1/messages"
        let bot = DiscordBotDriver(token: Secret("t"), baseURL: server.baseURL + "/api/v10")
        let chat = ChatClient(driver: bot, retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5)))
        server.route(.POST, path, replies: [.json(429, #"{"message":"You are being rate limited.","retry_after":0.01,"global":false}"#),
                                            .json(200, #"{"id":"7","channel_id":"1"}"#, headers: [("X-RateLimit-Bucket", "abc"), ("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset-After", "0.05")])])
        #expect(try await chat.post(ChatPost(channel: "1", text: "x")).messageID == "7")
        #expect(bot.api.limiter.delay(for: "channels/1/messages") > .zero, "the bucket is spent: the next request waits")
        for (reply, code) in [(#"{"code":10003,"message":"Unknown Channel"}"#, NimbusError.Code.notFound), (#"{"code":50013,"message":"Missing Permissions"}"#, .permissionDenied),
                              (#"{"code":50035,"message":"Invalid Form Body"}"#, .invalidArgument)] {
            server.route(.POST, path, reply: .json(code == .notFound ? 404 : (code == .permissionDenied ? 403 : 400), reply))
            #expect(await #expect(throws: NimbusError.self) { try await ChatClient(driver: bot, retry: .none).post(ChatPost(channel: "1", text: "x")) }?.code == code)
        }
        server.route(.POST, path, reply: .text(502, "bad gateway"))
        #expect(await #expect(throws: NimbusError.self) { try await ChatClient(driver: bot).post(ChatPost(channel: "1", text: "x")) }?.isRetryable == false)
    }

    @Test func interactionSignaturesAreEd25519WithATimestampWindow() throws {
        let key = Curve25519.Signing.PrivateKey()
        let verifier = try DiscordInteractionVerifier(publicKeyHex: key.publicKey.rawRepresentation.map { String(format: "%02x", $0) }.joined())
        let body = Array(#"{"type":1}"#.utf8)
        let timestamp = "1764122400"
        let signature = try key.signature(for: Array(timestamp.utf8) + body).map { String(format: "%02x", $0) }.joined()
        let now = Date(timeIntervalSince1970: 1_764_122_410)
        try verifier.verify(body: body, signature: signature, timestamp: timestamp, now: now)
        #expect(throws: NimbusError.self) { try verifier.verify(body: body + [32], signature: signature, timestamp: timestamp, now: now) }
        #expect(throws: NimbusError.self) { try verifier.verify(body: body, signature: signature, timestamp: timestamp, now: now.addingTimeInterval(3600)) }
        #expect(throws: NimbusError.self) { try verifier.verify(body: body, signature: "zz", timestamp: timestamp, now: now) }
        #expect(throws: NimbusError.self) { try DiscordInteractionVerifier(publicKeyHex: "abc") }
    }

    /// PyNaCl (the Ed25519 Discord's own examples use) signs; this verifies — and the other way round.
    @Test(.requires(.commsSDKs)) func ed25519AgreesWithPyNaCl() async throws {
        let python = try Peer.commsSDKs.url()
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let body = #"{"type":2,"data":{"name":"ping"}}"#
        let script = """
        import sys
        from nacl.signing import SigningKey, VerifyKey
        key = SigningKey.generate()
        message = (sys.argv[1] + sys.argv[2]).encode()
        print(key.verify_key.encode().hex())
        print(key.sign(message).signature.hex())
        VerifyKey(bytes.fromhex(sys.argv[3])).verify(message, bytes.fromhex(sys.argv[4]))
        print("verified")
        """
        let ours = Curve25519.Signing.PrivateKey()
        let ourSignature = try ours.signature(for: Array((timestamp + body).utf8)).map { String(format: "%02x", $0) }.joined()
        let ourKey = ours.publicKey.rawRepresentation.map { String(format: "%02x", $0) }.joined()
        let result = try await ProcessRunner.run(python, ["-c", script, timestamp, body, ourKey, ourSignature])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3 && lines[2] == "verified")
        try DiscordInteractionVerifier(publicKeyHex: lines[0]).verify(body: Array(body.utf8), signature: lines[1], timestamp: timestamp)
    }
}
