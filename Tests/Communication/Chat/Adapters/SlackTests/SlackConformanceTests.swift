import NimbusChat
import NimbusChatConformance
import NimbusCore
import NimbusTesting
import Testing
@testable import NimbusChatSlack

/// The chat suite against Slack's Web API (`chat.postMessage`) and an incoming webhook, on the local fake.
@Suite("Slack chat conformance", .timeLimit(.minutes(1)))
struct SlackConformanceTests {
    static func latest(_ server: FakeHTTPServer) -> ChatConformance.Delivered? {
        guard let body = try? server.requests.last?.json() else { return nil }
        return ChatConformance.Delivered(channel: body["channel"]?.stringValue, text: body["text"]?.stringValue ?? "", threadID: body["thread_ts"]?.stringValue)
    }

    static let webAPICapabilities: Set<ConformanceCapability> = [.readBack, .messageIDs, .threads]

    @Test(arguments: ChatConformance.suite.checks(supportedBy: webAPICapabilities))
    func webAPI(_ check: ConformanceCheck<ChatConformance.Harness>) async throws {
        let server = try await SlackTests.fake()
        defer { Task { await server.shutdown() } }
        let driver = SlackWebAPIDriver(token: Secret(SlackTests.token), baseURL: server.baseURL + "/api")
        try await check.run(.init(makeDriver: { driver }, channel: "C0123", threadID: "1764122300.000100", readBack: { Self.latest(server) }))
    }

    /// An incoming webhook answers `ok`, with no message id, and posts to its own channel.
    static let webhookCapabilities: Set<ConformanceCapability> = [.readBack]

    @Test(arguments: ChatConformance.suite.checks(supportedBy: webhookCapabilities))
    func webhook(_ check: ConformanceCheck<ChatConformance.Harness>) async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        server.route(.POST, "/services/T000/B000/XXXX") { request in
            guard (try? request.json())?["text"]?.stringValue?.isEmpty == false else { return .text(400, "no_text") }
            return .text(200, "ok")
        }
        let driver = SlackWebhookDriver(url: Secret(server.baseURL + "/services/T000/B000/XXXX"))
        try await check.run(.init(makeDriver: { driver }, channel: nil, readBack: { Self.latest(server) }))
    }

    @Test func notSupported() {
        #expect(ChatConformance.suite.unsupported(by: Self.webAPICapabilities).isEmpty)
        #expect(Set(ChatConformance.suite.unsupported(by: Self.webhookCapabilities).flatMap(\.needs)).subtracting(Self.webhookCapabilities) == [.messageIDs, .threads])
    }
}
