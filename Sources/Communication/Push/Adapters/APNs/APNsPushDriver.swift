import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NimbusCore
import NimbusHTTP
import NimbusPush
import Synchronization

/// Settings of ``APNsPushDriver``.
public struct APNsConfiguration: Sendable {
    /// Production or the sandbox (development builds).
    public enum Environment: String, Sendable {
        case production = "https://api.push.apple.com"
        case sandbox = "https://api.sandbox.push.apple.com"
    }

    /// The team id (10 characters) that issues the tokens.
    public var teamID: String
    /// The key id (10 characters) of the `.p8` key.
    public var keyID: String
    /// The `.p8` key (PKCS #8 PEM, P-256).
    public var privateKey: Secret<String>
    /// The app's bundle id: the default `apns-topic`.
    public var topic: String
    /// Where to send: an environment's URL, or a local server in tests.
    public var baseURL: String
    /// TLS settings (Apple's certificates are verified against the system's roots by default).
    public var tls: TLSConfiguration
    /// A token is reused until it is this old (Apple: refresh at most every 20 minutes, tokens last 60).
    public var tokenLifetime: Duration
    public var timeout: Duration

    public init(teamID: String, keyID: String, privateKey: Secret<String>, topic: String, environment: Environment = .production,
                baseURL: String? = nil, tls: TLSConfiguration = .makeClientConfiguration(), tokenLifetime: Duration = .seconds(50 * 60),
                timeout: Duration = .seconds(30)) {
        self.teamID = teamID
        self.keyID = keyID
        self.privateKey = privateKey
        self.topic = topic
        self.baseURL = baseURL ?? environment.rawValue
        self.tls = tls
        self.tokenLifetime = tokenLifetime
        self.timeout = timeout
    }
}

/// Signs and keeps the provider token: an ES256 JWT (`kid` = key id, `iss` = team id, `iat`), made again
/// only when older than the configured lifetime, or when APNs answers `ExpiredProviderToken`.
final class APNsTokenSigner: Sendable {
    private let key: P256.Signing.PrivateKey
    private let teamID: String
    private let keyID: String
    private let lifetime: Duration
    private let current = Mutex<(token: String, issued: ContinuousClock.Instant)?>(nil)

    init(configuration: APNsConfiguration) throws {
        do { key = try P256.Signing.PrivateKey(pemRepresentation: configuration.privateKey.reveal()) } catch {
            throw NimbusError(.invalidArgument, "the APNs key is not a P-256 private key in PEM (the .p8 file Apple gives): \(error)")
        }
        guard configuration.teamID.count == 10, configuration.keyID.count == 10 else {
            throw NimbusError(.invalidArgument, "APNs team and key ids are 10 characters each")
        }
        teamID = configuration.teamID
        keyID = configuration.keyID
        lifetime = configuration.tokenLifetime
    }

    /// The provider token, made under the lock: concurrent first sends share one token instead of each signing their own.
    func token(now: Date = Date()) throws -> String {
        try current.withLock { current throws -> String in
            if let existing = current, ContinuousClock.now - existing.issued < lifetime { return existing.token }
            let header = Base64URL.encode(Array(#"{"alg":"ES256","kid":"\#(keyID)"}"#.utf8))
            let claims = Base64URL.encode(Array(#"{"iss":"\#(teamID)","iat":\#(Int(now.timeIntervalSince1970))}"#.utf8))
            let signature = try key.signature(for: Array("\(header).\(claims)".utf8)).rawRepresentation     // JWS: r ‖ s, 64 bytes
            let token = "\(header).\(claims).\(Base64URL.encode(Array(signature)))"
            current = (token, .now)
            return token
        }
    }

    func invalidate() { current.withLock { $0 = nil } }
}

/// Apple Push Notification service over HTTP/2 with token authentication: `apns-topic`, `apns-push-type`,
/// priority, expiration, collapse id; Apple's reasons mapped — `BadDeviceToken`, `Unregistered` (410, with
/// the time the token stopped being valid), `DeviceTokenNotForTopic` → a dead token; `TooManyRequests` and
/// 5xx → retry; `ExpiredProviderToken` → a new token and one retry.
///
/// ```swift
/// let apns = try APNsPushDriver(configuration: .init(teamID: "ABCDE12345", keyID: "KEY1234567", privateKey: Secret(p8), topic: "com.example.app"))
/// let results = try await PushClient(driver: apns).send(push, to: deviceTokens)
/// try await apns.close()
/// ```
public final class APNsPushDriver: PushDriver {
    public let provider = "apns"
    public let configuration: APNsConfiguration
    let signer: APNsTokenSigner
    let http: HTTPClient

    /// The largest payload APNs takes (5 KB for VoIP).
    public static let maxPayloadBytes = 4096

    public init(configuration: APNsConfiguration) throws {
        self.configuration = configuration
        signer = try APNsTokenSigner(configuration: configuration)
        var client = HTTPClient.Configuration(tlsConfiguration: configuration.tls, timeout: .init(connect: .seconds(10)))
        client.httpVersion = .automatic                                 // HTTP/2 through ALPN, as APNs requires
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: client)
    }

    /// Closes the HTTP/2 connections.
    public func close() async throws { try await http.shutdown() }

    public func send(_ notification: PushNotification, to token: String) async throws -> PushResult {
        guard token.count >= 32, token.count <= 200, token.allSatisfy(\.isHexDigit) else {
            return PushResult(token: token, outcome: .invalidToken(reason: "BadDeviceToken", since: nil))   // not even hex: never sent
        }
        let payload = try Self.payload(notification)
        let limit = notification.apns.pushType == "voip" ? 5120 : Self.maxPayloadBytes
        guard payload.count <= limit else {
            throw NimbusError(.invalidArgument, "the APNs payload is \(payload.count) bytes; at most \(limit) are allowed", retryable: false)
        }
        var retriedToken = false
        while true {
            var request = HTTPClientRequest(url: "\(configuration.baseURL)/3/device/\(token.lowercased())")
            request.method = .POST
            request.headers.add(name: "authorization", value: "bearer \(try signer.token())")
            for (name, value) in headers(for: notification) { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(bytes: payload))
            let response: HTTPClientResponse
            do { response = try await http.execute(request, timeout: .nanoseconds(Int64(configuration.timeout.nimbusNanoseconds))) } catch {
                return PushResult(token: token, outcome: .failed(NimbusError(.unavailable, "APNs could not be reached: \(error)", underlying: error)))
            }
            let body = Array(try await response.body.collect(upTo: 64 * 1024).readableBytesView)
            if response.status == .ok {
                return PushResult(token: token, outcome: .delivered(id: response.headers.first(name: "apns-id")))
            }
            let json = try? JSONValue.parse(body)
            let reason = json?["reason"]?.stringValue ?? "HTTP \(response.status.code)"
            if reason == "ExpiredProviderToken" && !retriedToken {
                signer.invalidate()
                retriedToken = true
                continue
            }
            return PushResult(token: token, outcome: Self.outcome(status: Int(response.status.code), reason: reason,
                                                                  timestamp: json?["timestamp"]?.numberValue, retryAfter: response.headers.first(name: "retry-after").flatMap { HTTPDate.retryAfter($0, now: Date()) }))
        }
    }

    /// Apple's reasons (https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns).
    static func outcome(status: Int, reason: String, timestamp: Double?, retryAfter: Duration?) -> PushResult.Outcome {
        switch reason {
        case "BadDeviceToken", "DeviceTokenNotForTopic":
            return .invalidToken(reason: reason, since: nil)
        case "Unregistered", "ExpiredToken":
            return .invalidToken(reason: reason, since: timestamp.map { Date(timeIntervalSince1970: $0 / 1000) })
        case "TooManyRequests":
            return .failed(NimbusError(.resourceExhausted, "APNs: too many notifications to this device (\(reason))", retryAfter: retryAfter, retryable: true))
        case "InternalServerError", "ServiceUnavailable", "Shutdown":
            return .failed(NimbusError(.unavailable, "APNs answered \(status) \(reason)", retryAfter: retryAfter, retryable: true))
        case "InvalidProviderToken", "MissingProviderToken", "ExpiredProviderToken":
            return .failed(NimbusError(.unauthenticated, "APNs refused the provider token (\(reason)): check the team id, key id and .p8 key", retryable: false))
        case "BadTopic", "TopicDisallowed", "MissingTopic":
            return .failed(NimbusError(.permissionDenied, "APNs refused the topic (\(reason)): the key's team does not own it", retryable: false))
        case "PayloadTooLarge":
            return .failed(NimbusError(.invalidArgument, "APNs: the payload is too large", retryable: false))
        default:
            return .failed(NimbusError(status >= 500 ? .unavailable : .invalidArgument, "APNs answered \(status) \(reason)", retryable: status >= 500))
        }
    }

    func headers(for push: PushNotification) -> [(String, String)] {
        let pushType = push.apns.pushType ?? (push.contentAvailable && push.title == nil && push.body == nil ? "background" : "alert")
        var topic = configuration.topic
        switch pushType {
        case "voip": topic += ".voip"
        case "complication": topic += ".complication"
        case "fileprovider": topic += ".pushkit.fileprovider"
        case "liveactivity": topic += ".push-type.liveactivity"
        case "location": topic += ".location-query"
        case "pushtotalk": topic += ".voip-ptt"
        default: break
        }
        // Background pushes must go at priority 5; 1 spares power further (Apple).
        let priority = pushType == "background" ? "5" : (push.priority == .high ? "10" : "5")
        var headers = [("apns-topic", topic), ("apns-push-type", pushType), ("apns-priority", priority)]
        if let ttl = push.timeToLive {
            headers.append(("apns-expiration", ttl <= .zero ? "0" : String(Int(Date().timeIntervalSince1970) + Int(ttl.components.seconds))))
        }
        if let key = push.collapseKey { headers.append(("apns-collapse-id", key)) }
        return headers
    }

    /// The JSON payload: `aps` plus the app's keys and data.
    static func payload(_ push: PushNotification) throws -> [UInt8] {
        var aps: [String: JSONValue] = [:]
        if push.title != nil || push.body != nil {
            var alert: [String: JSONValue] = [:]
            if let title = push.title { alert["title"] = .string(title) }
            if let body = push.body { alert["body"] = .string(body) }
            aps["alert"] = .object(alert)
        }
        if let badge = push.badge { aps["badge"] = .number(Double(badge)) }
        if let sound = push.sound { aps["sound"] = .string(sound) }
        if push.contentAvailable { aps["content-available"] = 1 }
        if push.apns.mutableContent || push.imageURL != nil { aps["mutable-content"] = 1 }
        if let thread = push.apns.threadID { aps["thread-id"] = .string(thread) }
        if let category = push.apns.category { aps["category"] = .string(category) }
        if let level = push.apns.interruptionLevel { aps["interruption-level"] = .string(level) }
        var payload: [String: JSONValue] = push.data.mapValues(JSONValue.string)
        for (key, value) in push.apns.extra { payload[key] = value }
        if let image = push.imageURL { payload["image-url"] = .string(image.absoluteString) }    // for a notification service extension
        guard payload["aps"] == nil else { throw NimbusError(.invalidArgument, "'aps' is APNs' own key; put app data under another name") }
        payload["aps"] = .object(aps)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(JSONValue.object(payload)))
    }
}
