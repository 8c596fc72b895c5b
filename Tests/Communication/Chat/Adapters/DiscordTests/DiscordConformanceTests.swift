import NimbusChat
import NimbusChatConformance
import NimbusCore
import NimbusTesting
import Testing
@testable import NimbusChatDiscord

/// The chat suite against Discord's bot API and a webhook (with `wait=true`), on a local fake.
@Suite("Discord chat conformance", .timeLimit(.minutes(1)))
struct DiscordConformanceTests {
    static let capabilities: Set<ConformanceCapability> = [.readBack, .messageIDs, .threads]

    static func fake() async throws -> FakeHTTPServer {
        let server = try await FakeHTTPServer.start()
        server.route(.POST, "/api/webhooks/123/tok") { request in
            guard request.queryItem("wait") == "true", let body = try? request.json(), body["content"]?.stringValue?.isEmpty == false else {
                return .json(400, #"{"code":50006,"message":"Cannot send an empty message"}"#)
            }
            return .json(200, .object(["id": "9001", "channel_id": "555", "content": body["content"] ?? ""]))
        }
        server.route(.POST, "/api/v10/channels/555/messages") { request in
            guard request.header("Authorization") == "Bot bot-token" else { return .json(401, #"{"message":"401: Unauthorized","code":0}"#) }
            return .json(200, #"{"id":"9002","channel_id":"555"}"#)
        }
        return server
    }

    static func latest(_ server: FakeHTTPServer, channel: String?) -> ChatConformance.Delivered? {
        guard let body = try? server.requests.last?.json() else { return nil }
        return ChatConformance.Delivered(channel: channel, text: body["content"]?.stringValue ?? "", threadID: body["message_reference"]?["message_id"]?.stringValue)
    }

    @Test(arguments: ChatConformance.suite.checks(supportedBy: capabilities))
    func bot(_ check: ConformanceCheck<ChatConformance.Harness>) async throws {
        let server = try await Self.fake()
        defer { Task { await server.shutdown() } }
        let driver = DiscordBotDriver(token: Secret("bot-token"), baseURL: server.baseURL + "/api/v10")
        try await check.run(.init(makeDriver: { driver }, channel: "555", threadID: "9001", readBack: {
            server.requests.last.flatMap { $0.path.hasSuffix("/channels/555/messages") ? Self.latest(server, channel: "555") : nil }
        }))
    }

    /// A webhook posts to its own channel and cannot reply to a message.
    static let webhookCapabilities: Set<ConformanceCapability> = [.readBack, .messageIDs]

    @Test(arguments: ChatConformance.suite.checks(supportedBy: webhookCapabilities))
    func webhook(_ check: ConformanceCheck<ChatConformance.Harness>) async throws {
        let server = try await Self.fake()
        defer { Task { await server.shutdown() } }
        let driver = try DiscordWebhookDriver(url: Secret(server.baseURL + "/api/webhooks/123/tok"))
        try await check.run(.init(makeDriver: { driver }, channel: nil, readBack: { Self.latest(server, channel: nil) }))
    }

    @Test func notSupported() {
        #expect(ChatConformance.suite.unsupported(by: Self.capabilities).isEmpty)
        #expect(ChatConformance.suite.unsupported(by: Self.webhookCapabilities).map(\.needs) == [[.readBack, .threads]])
    }
}
