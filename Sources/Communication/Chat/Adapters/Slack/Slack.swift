import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusChat
import NimbusCore
import NimbusHTTP

/// Slack Block Kit blocks (https://api.slack.com/reference/block-kit/blocks) as Swift values.
///
/// ```swift
/// let rich = SlackBlock.blocks([.header("Deploy finished"), .section(.markdown("*api* v42 is live"), fields: [.markdown("*By*\nZoë")]),
///                               .divider, .actions([.button("Open", url: URL(string: "https://ci.example.com/42")!, style: .primary)])])
/// ```
public enum SlackBlock: Sendable, Hashable {
    /// A text object.
    public enum Text: Sendable, Hashable {
        case plain(String)
        case markdown(String)

        var json: JSONValue {
            switch self {
            case .plain(let text): ["type": "plain_text", "text": .string(text), "emoji": true]
            case .markdown(let text): ["type": "mrkdwn", "text": .string(text)]
            }
        }
    }

    /// An interactive element.
    public enum Element: Sendable, Hashable {
        public enum Style: String, Sendable { case primary, danger }
        case button(String, url: URL? = nil, actionID: String? = nil, value: String? = nil, style: Style? = nil)
        case image(url: URL, alt: String)

        var json: JSONValue {
            switch self {
            case .button(let label, let url, let actionID, let value, let style):
                var object: [String: JSONValue] = ["type": "button", "text": Text.plain(label).json]
                if let url { object["url"] = .string(url.absoluteString) }
                object["action_id"] = .string(actionID ?? "button-\(label.lowercased().replacingOccurrences(of: " ", with: "-"))")
                if let value { object["value"] = .string(value) }
                if let style { object["style"] = .string(style.rawValue) }
                return .object(object)
            case .image(let url, let alt): return ["type": "image", "image_url": .string(url.absoluteString), "alt_text": .string(alt)]
            }
        }
    }

    case header(String)
    case section(Text, fields: [Text] = [], accessory: Element? = nil)
    case divider
    case context([Text])
    case actions([Element])
    case image(url: URL, alt: String, title: String? = nil)

    /// The block's JSON.
    public var json: JSONValue {
        switch self {
        case .header(let text): return ["type": "header", "text": Text.plain(text).json]
        case .section(let text, let fields, let accessory):
            var object: [String: JSONValue] = ["type": "section", "text": text.json]
            if !fields.isEmpty { object["fields"] = .array(fields.map(\.json)) }
            if let accessory { object["accessory"] = accessory.json }
            return .object(object)
        case .divider: return ["type": "divider"]
        case .context(let elements): return ["type": "context", "elements": .array(elements.map(\.json))]
        case .actions(let elements): return ["type": "actions", "elements": .array(elements.map(\.json))]
        case .image(let url, let alt, let title):
            var object: [String: JSONValue] = ["type": "image", "image_url": .string(url.absoluteString), "alt_text": .string(alt)]
            if let title { object["title"] = Text.plain(title).json }
            return .object(object)
        }
    }

    /// Blocks as a message's rich content (Slack takes at most 50).
    public static func blocks(_ blocks: [SlackBlock]) -> JSONValue { .array(blocks.map(\.json)) }
}

/// Slack's Web API error names mapped to what to do (https://api.slack.com/methods/chat.postMessage#errors).
enum SlackErrors {
    static func error(_ name: String, operation: String, retryAfter: Duration? = nil) -> NimbusError {
        let code: NimbusError.Code = switch name {
        case "not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired": .unauthenticated
        case "channel_not_found", "user_not_found", "thread_not_found": .notFound
        case "not_in_channel", "is_archived", "restricted_action", "missing_scope", "ekm_access_denied", "no_permission", "action_prohibited",
             "channel_is_archived": .permissionDenied
        case "msg_too_long", "no_text", "invalid_blocks", "invalid_blocks_format", "too_many_attachments", "invalid_arguments",
             "invalid_payload", "invalid_json", "json_not_object": .invalidArgument
        case "ratelimited", "rate_limited", "message_limit_exceeded": .resourceExhausted
        case "fatal_error", "internal_error", "service_unavailable", "request_timeout": .unavailable
        default: .failedPrecondition
        }
        let retryable: Bool? = code == .resourceExhausted ? true : (code == .unavailable ? false : nil)
        return NimbusError(code, "slack \(operation) failed: \(name)", retryAfter: retryAfter, retryable: retryable)
    }
}

/// Posts with a bot token through `chat.postMessage`: text, Block Kit blocks, threads; Slack's
/// `{"ok": false, "error": …}` answers (which come with HTTP 200) mapped; 429 retried after `Retry-After`.
public struct SlackWebAPIDriver: ChatDriver {
    public let provider = "slack"
    let http: NimbusHTTPClient

    /// `token`: a bot token (`xoxb-…`). `baseURL`: `https://slack.com/api`, or a fake in tests.
    public init(token: Secret<String>, baseURL: String = "https://slack.com/api", httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        http = NimbusHTTPClient(configuration: .init(service: "slack", baseURL: baseURL, defaultHeaders: ["User-Agent": "Nimbus/\(NimbusVersion.current)"],
                                                     auth: .bearer(token), retry: .none, timeout: .seconds(30)), httpClient: httpClient, logger: logger)
    }

    public func post(_ message: ChatPost) async throws -> ChatReceipt {
        guard let channel = message.channel else { throw NimbusError(.invalidArgument, "chat.postMessage needs a channel (C0123…, or a user id for a DM)") }
        var body: [String: JSONValue] = ["channel": .string(channel), "text": .string(message.text)]
        if let blocks = message.rich {
            guard (blocks.arrayValue?.count ?? 0) <= 50 else { throw NimbusError(.invalidArgument, "Slack takes at most 50 blocks") }
            body["blocks"] = blocks
        }
        if let thread = message.threadID { body["thread_ts"] = .string(thread) }
        if let username = message.username { body["username"] = .string(username) }
        if let icon = message.iconURL { body["icon_url"] = .string(icon.absoluteString) }
        var request = NimbusHTTPRequest(.POST, "/chat.postMessage", operation: "chat.postMessage")
        request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        request.body = ByteBuffer(bytes: try JSONEncoder().encode(JSONValue.object(body)))
        let response = try await http.send(request)
        let data = Array(try await response.collect(upTo: 1024 * 1024).readableBytesView)
        if response.status == .tooManyRequests { throw SlackErrors.error("ratelimited", operation: "chat.postMessage", retryAfter: response.retryAfter() ?? .seconds(1)) }
        guard let json = try? JSONValue.parse(data), json.objectValue != nil else {
            throw NimbusError(response.isSuccess ? .internal : .unavailable, "slack chat.postMessage answered \(response.status.code) with a body that is not JSON",
                              retryable: false)
        }
        guard json["ok"]?.boolValue == true else {
            throw SlackErrors.error(json["error"]?.stringValue ?? "unknown_error", operation: "chat.postMessage", retryAfter: response.retryAfter())
        }
        return ChatReceipt(messageID: json["ts"]?.stringValue, channel: json["channel"]?.stringValue ?? channel, provider: provider)
    }
}

/// Posts to an incoming webhook (`https://hooks.slack.com/services/T…/B…/…`): the channel is the webhook's.
public struct SlackWebhookDriver: ChatDriver {
    public let provider = "slack-webhook"
    let url: Secret<String>
    let http: NimbusHTTPClient

    /// The webhook URL is a secret: anyone holding it can post.
    public init(url: Secret<String>, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.url = url
        http = NimbusHTTPClient(configuration: .init(service: "slack-webhook", retry: .none, timeout: .seconds(30)), httpClient: httpClient, logger: logger)
    }

    public func post(_ message: ChatPost) async throws -> ChatReceipt {
        var body: [String: JSONValue] = ["text": .string(message.text)]
        if let blocks = message.rich { body["blocks"] = blocks }
        if let thread = message.threadID { body["thread_ts"] = .string(thread) }
        var request = NimbusHTTPRequest(.POST, url.reveal(), operation: "incoming webhook")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = ByteBuffer(bytes: try JSONEncoder().encode(JSONValue.object(body)))
        let response = try await http.send(request)
        let text = String(buffer: try await response.collect(upTo: 64 * 1024)).trimmingCharacters(in: .whitespacesAndNewlines)
        guard response.isSuccess else {
            if response.status == .tooManyRequests { throw SlackErrors.error("rate_limited", operation: "incoming webhook", retryAfter: response.retryAfter() ?? .seconds(1)) }
            if response.status.code >= 500 { throw NimbusError(.unavailable, "the Slack webhook answered \(response.status.code); it may have posted, not retried", retryable: false) }
            if response.status == .notFound && text.isEmpty { throw SlackErrors.error("channel_not_found", operation: "incoming webhook") }
            if response.status == .gone { throw SlackErrors.error("channel_is_archived", operation: "incoming webhook") }
            throw SlackErrors.error(text.isEmpty ? "http_\(response.status.code)" : text, operation: "incoming webhook")
        }
        return ChatReceipt(messageID: nil, channel: nil, provider: provider)
    }
}

/// Verifies Slack's request signatures (`X-Slack-Signature: v0=…`): HMAC-SHA256 of `v0:<timestamp>:<body>`
/// with the app's signing secret, compared in constant time, within 5 minutes of now.
///
/// ```swift
/// try SlackRequestVerifier(signingSecrets: [Secret(secret)]).verify(body: body,
///     signature: request.header("X-Slack-Signature"), timestamp: request.header("X-Slack-Request-Timestamp"))
/// ```
public struct SlackRequestVerifier: Sendable {
    public let signingSecrets: [Secret<String>]
    public var tolerance: Duration

    public init(signingSecrets: [Secret<String>], tolerance: Duration = .seconds(300)) {
        self.signingSecrets = signingSecrets
        self.tolerance = tolerance
    }

    /// The signature Slack sends.
    public static func signature(body: [UInt8], timestamp: String, secret: Secret<String>) -> String {
        "v0=" + WebhookSignature.sign(payload: Array("v0:\(timestamp):".utf8) + body, secret: secret, algorithm: .sha256, encoding: .hex)
    }

    /// - Throws: `unauthenticated` when the signature or the time is wrong.
    public func verify(body: [UInt8], signature: String?, timestamp: String?, now: Date = Date()) throws {
        guard let signature, let timestamp else {
            throw NimbusError(.unauthenticated, "the Slack request has no X-Slack-Signature or X-Slack-Request-Timestamp")
        }
        let sent = try WebhookSignature.timestamp(timestamp, header: "X-Slack-Request-Timestamp")
        guard signature.hasPrefix("v0=") else { throw NimbusError(.unauthenticated, "the Slack signature is not a v0 signature") }
        try WebhookSignature.verify(payload: Array("v0:\(timestamp):".utf8) + body, candidates: [String(signature.dropFirst(3))], secrets: signingSecrets,
                                    algorithm: .sha256, encoding: .hex, timestamp: sent, tolerance: tolerance, now: now)
    }
}

extension URLOpenerRegistry where Resource == any ChatDriver {
    /// Adds `slack://xoxb-TOKEN@slack.com` (Web API) and `slack+webhook://hooks.slack.com/services/T/B/X` (incoming webhook).
    public func withSlack() -> Self {
        var copy = self
        copy.register("slack") { url in
            guard let token = url.user.map(Secret.init) ?? ProcessInfo.processInfo.environment["SLACK_BOT_TOKEN"].map(Secret.init) else {
                throw NimbusError(.invalidArgument, "slack:// needs a bot token: slack://xoxb-…@slack.com or SLACK_BOT_TOKEN")
            }
            let host = url.host ?? "slack.com"
            let base = host == "slack.com" ? "https://slack.com/api" : "\(try url.options.bool("tls") == false ? "http" : "https")://\(host)\(url.port.map { ":\($0)" } ?? "")/api"
            return SlackWebAPIDriver(token: token, baseURL: base)
        }
        copy.register("slack+webhook") { url in
            guard let host = url.host else { throw NimbusError(.invalidArgument, "slack+webhook:// needs the webhook's host and path") }
            let scheme = try url.options.bool("tls") == false ? "http" : "https"
            return SlackWebhookDriver(url: Secret("\(scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")\(url.path)"))
        }
        return copy
    }
}
