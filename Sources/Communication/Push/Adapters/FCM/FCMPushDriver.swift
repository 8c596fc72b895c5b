import AsyncHTTPClient
import Foundation
import Logging
import NimbusCore
import NimbusGCP
import NimbusHTTP
import NimbusPush

/// Firebase Cloud Messaging, HTTP v1 (`POST /v1/projects/{project}/messages:send`), authorized with a service
/// account through NimbusGCP (OAuth2 scope `firebase.messaging`, tokens cached and refreshed ahead of expiry).
/// FCM's error codes mapped: `UNREGISTERED` and `SENDER_ID_MISMATCH` → an invalid token to delete;
/// `INVALID_ARGUMENT` → an invalid token when FCM names the token, else a bad request; `QUOTA_EXCEEDED` →
/// retry after its delay; `UNAVAILABLE`/`INTERNAL` → retry with backoff; `THIRD_PARTY_AUTH_ERROR` → the APNs
/// key configured in Firebase is wrong.
///
/// ```swift
/// let fcm = try FCMPushDriver(projectID: "my-app", tokens: ServiceAccountTokenSource(account: account, scopes: [FCMPushDriver.scope]))
/// let results = try await PushClient(driver: fcm).send(push, to: tokens)
/// ```
public struct FCMPushDriver: PushDriver {
    public let provider = "fcm"
    /// The OAuth2 scope FCM needs.
    public static let scope = "https://www.googleapis.com/auth/firebase.messaging"

    public let projectID: String
    let gcp: GCPClient
    let baseURL: String

    /// Creates a driver. `tokens`: a token source with ``scope`` (Application Default Credentials when `nil`).
    public init(projectID: String, tokens: (any GCPTokenSource)? = nil, baseURL: String = "https://fcm.googleapis.com",
                httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) throws {
        guard !projectID.isEmpty, projectID.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == ":" || $0 == "." }) else {
            throw NimbusError(.invalidArgument, "'\(projectID)' is not a Firebase project id")
        }
        self.projectID = projectID
        self.baseURL = baseURL
        gcp = try GCPClient(configuration: .init(tokens: tokens, scopes: [Self.scope], retry: .none, timeout: .seconds(30)), httpClient: httpClient, logger: logger)
    }

    public func send(_ notification: PushNotification, to token: String) async throws -> PushResult {
        let body: JSONValue = ["message": try Self.message(notification, token: token)]
        do {
            let answer = try await gcp.json(.POST, "\(baseURL)/v1/projects/\(projectID)/messages:send", body: body, operation: "FCM send")
            return PushResult(token: token, outcome: .delivered(id: answer["name"]?.stringValue))
        } catch let error as NimbusError {
            return PushResult(token: token, outcome: Self.outcome(error))
        }
    }

    /// FCM's error → what to do with the token.
    static func outcome(_ error: NimbusError) -> PushResult.Outcome {
        let detail = error.underlying as? GCPError
        let fcmCode = detail?.fcmErrorCode
        switch fcmCode {
        case "UNREGISTERED": return .invalidToken(reason: "UNREGISTERED", since: nil)
        case "SENDER_ID_MISMATCH": return .invalidToken(reason: "SENDER_ID_MISMATCH", since: nil)
        case "INVALID_ARGUMENT" where (detail?.message.lowercased().contains("registration token") ?? false):
            return .invalidToken(reason: "INVALID_ARGUMENT", since: nil)
        case "QUOTA_EXCEEDED":
            var quota = error
            quota.code = .resourceExhausted
            quota.retryable = true
            return .failed(quota)
        case "UNAVAILABLE", "INTERNAL":
            var transient = error
            transient.code = .unavailable
            transient.retryable = true
            return .failed(transient)
        case "THIRD_PARTY_AUTH_ERROR":
            return .failed(NimbusError(.failedPrecondition, "FCM could not reach APNs: the APNs key or certificate in the Firebase project is missing or wrong",
                                       underlying: error, retryable: false))
        default:
            return .failed(error)
        }
    }

    /// The v1 `message` for one token.
    static func message(_ push: PushNotification, token: String) throws -> JSONValue {
        guard !token.isEmpty, token.count < 4096 else { throw NimbusError(.invalidArgument, "an FCM registration token is 1 to 4095 characters") }
        var message: [String: JSONValue] = ["token": .string(token)]
        var notification: [String: JSONValue] = [:]
        if let title = push.title { notification["title"] = .string(title) }
        if let body = push.body { notification["body"] = .string(body) }
        if let image = push.imageURL { notification["image"] = .string(image.absoluteString) }
        if !notification.isEmpty { message["notification"] = .object(notification) }
        if !push.data.isEmpty {
            let reserved = push.data.keys.filter { $0 == "from" || $0.hasPrefix("google.") || $0.hasPrefix("gcm.") || $0 == "message_type" || $0 == "collapse_key" }
            guard reserved.isEmpty else { throw NimbusError(.invalidArgument, "FCM reserves the data keys \(reserved.sorted())") }
            message["data"] = .object(push.data.mapValues(JSONValue.string))
        }
        // Android.
        var android: [String: JSONValue] = ["priority": push.priority == .high ? "HIGH" : "NORMAL"]
        if let ttl = push.timeToLive { android["ttl"] = .string("\(max(0, ttl.components.seconds))s") }
        if let key = push.collapseKey { android["collapse_key"] = .string(key) }
        var androidNotification: [String: JSONValue] = [:]
        if let sound = push.sound { androidNotification["sound"] = .string(sound) }
        if let channel = push.android.channelID { androidNotification["channel_id"] = .string(channel) }
        if let icon = push.android.icon { androidNotification["icon"] = .string(icon) }
        if let color = push.android.color { androidNotification["color"] = .string(color) }
        if let tag = push.android.tag { androidNotification["tag"] = .string(tag) }
        if let action = push.android.clickAction { androidNotification["click_action"] = .string(action) }
        if let badge = push.badge { androidNotification["notification_count"] = .number(Double(badge)) }
        if !androidNotification.isEmpty { android["notification"] = .object(androidNotification) }
        message["android"] = .object(android)
        // APNs through FCM.
        var headers: [String: JSONValue] = ["apns-priority": push.priority == .high && !push.contentAvailable ? "10" : "5"]
        if let key = push.collapseKey { headers["apns-collapse-id"] = .string(key) }
        if let ttl = push.timeToLive { headers["apns-expiration"] = .string(String(Int(Date().timeIntervalSince1970) + Int(ttl.components.seconds))) }
        if let type = push.apns.pushType ?? (push.contentAvailable && push.title == nil && push.body == nil ? "background" : nil) {
            headers["apns-push-type"] = .string(type)
        }
        var aps: [String: JSONValue] = [:]
        if let badge = push.badge { aps["badge"] = .number(Double(badge)) }
        if let sound = push.sound { aps["sound"] = .string(sound) }
        if push.contentAvailable { aps["content-available"] = 1 }
        if push.apns.mutableContent { aps["mutable-content"] = 1 }
        if let thread = push.apns.threadID { aps["thread-id"] = .string(thread) }
        if let category = push.apns.category { aps["category"] = .string(category) }
        if let level = push.apns.interruptionLevel { aps["interruption-level"] = .string(level) }
        var payload = push.apns.extra
        if !aps.isEmpty { payload["aps"] = .object(aps) }
        var apns: [String: JSONValue] = ["headers": .object(headers)]
        if !payload.isEmpty { apns["payload"] = .object(payload) }
        message["apns"] = .object(apns)
        return .object(message)
    }
}

extension GCPError {
    /// FCM's own code from `details[].errorCode` (`UNREGISTERED`, `QUOTA_EXCEEDED`…), else Google's status.
    var fcmErrorCode: String? { errorCode ?? status }
}

extension URLOpenerRegistry where Resource == any PushDriver {
    /// Adds `fcm://PROJECT_ID` (Application Default Credentials; `?endpoint=` for a local server).
    public func withFCM() -> Self {
        var copy = self
        copy.register("fcm") { url in
            guard let project = url.host else { throw NimbusError(.invalidArgument, "fcm:// needs the Firebase project id: fcm://my-project") }
            return try FCMPushDriver(projectID: project, baseURL: url.options.string("endpoint") ?? "https://fcm.googleapis.com")
        }
        return copy
    }
}
