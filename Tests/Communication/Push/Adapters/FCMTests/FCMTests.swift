import Foundation
import NimbusCore
import NimbusGCP
import NimbusHTTP
import NimbusPush
import NimbusTesting
import Synchronization
import Testing
@testable import NimbusPushFCM

/// A local FCM HTTP v1 endpoint behind a local Google OAuth token endpoint that verifies the service account's
/// JWT (scope firebase.messaging). It checks the documented message shape
/// (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages) and answers FCM's documented
/// errors: UNREGISTERED (404), SENDER_ID_MISMATCH (403), INVALID_ARGUMENT (400), QUOTA_EXCEEDED (429), UNAVAILABLE (503).
final class FCMFake: Sendable {
    let oauth: FakeGoogleOAuth
    let server: FakeHTTPServer
    let attempts = Mutex<[String: Int]>([:])
    /// Requests refused for departing from the documented message shape (each also fails its test).
    var problems: [String] { server.refusals.flatMap(\.problems) }

    init() async throws {
        oauth = try await FakeGoogleOAuth(scope: FCMPushDriver.scope)
        server = try await FakeHTTPServer.start()
        server.refuseRequests(failing: { request in
            guard let message = (try? request.json())?["message"] else { return ["the body has no message"] }
            return Self.check(message)
        }) { problems in Self.error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received. \(problems)") }
        server.route(.POST, "/v1/projects/nimbus-test/messages:send") { [self] request in
            guard request.header("Authorization")?.hasPrefix("Bearer sa-token-") == true else {
                return .json(401, #"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#)
            }
            guard let message = (try? request.json())?["message"], let token = message["token"]?.stringValue else {
                return Self.error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Request contains an invalid argument.")
            }
            let attempt = attempts.withLock { $0[token, default: 0] += 1; return $0[token]! }
            switch token {
            case "tok-unregistered": return Self.error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
            case "tok-mismatch": return Self.error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch")
            case "bad token": return Self.error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token")
            case "tok-quota" where attempt == 1:
                return Self.error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Send requests'", retryAfter: "0")
            case "tok-unavailable" where attempt < 3: return Self.error(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
            case "tok-apns-auth": return Self.error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service")
            default: return .json(200, .object(["name": .string("projects/nimbus-test/messages/0:\(attempt)\(token.count)")]))
            }
        }
    }

    static func error(_ code: Int, _ status: String, _ fcm: String, _ message: String, retryAfter: String? = nil) -> FakeHTTPServer.Reply {
        .json(code, .object(["error": .object(["code": .number(Double(code)), "message": .string(message), "status": .string(status),
                                               "details": [["@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": .string(fcm)]]])]),
              headers: retryAfter.map { [("Retry-After", $0)] } ?? [])
    }

    /// The documented types of the fields this adapter sends.
    static func check(_ message: JSONValue) -> [String] {
        var problems: [String] = []
        for (key, value) in message["data"]?.objectValue ?? [:] where value.stringValue == nil { problems.append("data.\(key) is not a string") }
        if let priority = message["android"]?["priority"]?.stringValue, !["HIGH", "NORMAL"].contains(priority) { problems.append("android.priority \(priority)") }
        if let ttl = message["android"]?["ttl"]?.stringValue, !(ttl.hasSuffix("s") && Double(ttl.dropLast()) != nil) { problems.append("android.ttl \(ttl)") }
        for (key, value) in message["apns"]?["headers"]?.objectValue ?? [:] where value.stringValue == nil { problems.append("apns.headers.\(key) is not a string") }
        let known: Set<String> = ["token", "notification", "data", "android", "apns", "webpush", "fcm_options", "name", "topic", "condition"]
        for key in message.objectValue?.keys ?? [:].keys where !known.contains(key) { problems.append("unknown field message.\(key)") }
        return problems
    }

    func driver() throws -> FCMPushDriver {
        let account = GCPServiceAccount(clientEmail: oauth.email, privateKeyID: "key-1", privateKey: Secret(oauth.privateKeyPEM), tokenURI: oauth.tokenURL,
                                        projectID: "nimbus-test")
        return try FCMPushDriver(projectID: "nimbus-test", tokens: ServiceAccountTokenSource(account: account, scopes: [FCMPushDriver.scope]), baseURL: server.baseURL)
    }

    func shutdown() async {
        await server.shutdown()
        await oauth.server.shutdown()
    }
}

@Suite("FCM HTTP v1 against a local fake")
struct FCMTests {
    @Test func aPushReachesEveryTokenAndDeadTokensAreReported() async throws {
        let fake = try await FCMFake()
        defer { Task { await fake.shutdown() } }
        var push = PushNotification(title: "Order shipped", body: "On its way", data: ["order": "1042"], badge: 3, sound: "default",
                                    collapseKey: "order-1042", timeToLive: .seconds(3600), imageURL: URL(string: "https://example.com/p.png"))
        push.android.channelID = "shipping"
        push.apns.threadID = "orders"
        let client = PushClient(driver: try fake.driver(), retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5)))
        let tokens = ["tok-a", "tok-unregistered", "tok-mismatch", "bad token", "tok-quota", "tok-unavailable", "tok-apns-auth", "tok-b"]
        let results = try await client.send(push, to: tokens)
        #expect(results.map(\.token) == tokens, "results in the tokens' order")
        #expect(Set(results.invalidTokens) == ["tok-unregistered", "tok-mismatch", "bad token"])
        #expect(results.deliveredCount == 4, "a, quota after its delay, unavailable after two retries, b")
        guard case .failed(let apnsError) = results[6].outcome else { Issue.record("THIRD_PARTY_AUTH_ERROR fails"); return }
        #expect(apnsError.code == .failedPrecondition && apnsError.message.contains("APNs key"))
        #expect(fake.problems.isEmpty, "\(fake.problems)")
        #expect(fake.oauth.issued.withLock { $0 } == 2, "one OAuth token shared by eight concurrent sends, and one more after the 401 of tok-apns-auth")
        let first = try #require(fake.server.requests.first { (try? $0.json())?["message"]?["token"] == "tok-a" }).json()["message"]
        #expect(first?["notification"]?["image"]?.stringValue == "https://example.com/p.png")
        #expect(first?["android"]?["ttl"]?.stringValue == "3600s" && first?["android"]?["notification"]?["channel_id"]?.stringValue == "shipping")
        #expect(first?["apns"]?["headers"]?["apns-collapse-id"]?.stringValue == "order-1042" && first?["apns"]?["payload"]?["aps"]?["thread-id"]?.stringValue == "orders")
        #expect(first?["apns"]?["payload"]?["aps"]?["badge"]?.numberValue == 3)
    }

    @Test func silentPushesAndBadInputs() async throws {
        let silent = try FCMPushDriver.message(PushNotification(data: ["sync": "1"], priority: .normal, contentAvailable: true), token: "t")
        #expect(silent["apns"]?["headers"]?["apns-push-type"]?.stringValue == "background" && silent["apns"]?["headers"]?["apns-priority"]?.stringValue == "5")
        #expect(silent["notification"] == nil && silent["android"]?["priority"]?.stringValue == "NORMAL")
        #expect(throws: NimbusError.self) { try FCMPushDriver.message(PushNotification(title: "x", data: ["google.x": "1"]), token: "t") }
        #expect(throws: NimbusError.self) { try PushNotification().validate() }
        #expect(throws: NimbusError.self) { try FCMPushDriver(projectID: "bad project") }
    }
}
