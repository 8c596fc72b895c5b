import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusChat
import NimbusCore
import NimbusHTTP
import Synchronization

/// A Discord embed (https://discord.com/developers/docs/resources/message#embed-object).
public struct DiscordEmbed: Sendable, Hashable {
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String
        public var inline: Bool
        public init(_ name: String, _ value: String, inline: Bool = false) {
            self.name = name
            self.value = value
            self.inline = inline
        }
    }

    public var title: String?
    public var description: String?
    public var url: URL?
    /// `0xRRGGBB`.
    public var color: Int?
    public var fields: [Field]
    public var footer: String?
    public var timestamp: Date?

    public init(title: String? = nil, description: String? = nil, url: URL? = nil, color: Int? = nil, fields: [Field] = [], footer: String? = nil,
                timestamp: Date? = nil) {
        self.title = title
        self.description = description
        self.url = url
        self.color = color
        self.fields = fields
        self.footer = footer
        self.timestamp = timestamp
    }

    public var json: JSONValue {
        var object: [String: JSONValue] = [:]
        if let title { object["title"] = .string(title) }
        if let description { object["description"] = .string(description) }
        if let url { object["url"] = .string(url.absoluteString) }
        if let color { object["color"] = .number(Double(color)) }
        if !fields.isEmpty { object["fields"] = .array(fields.map { ["name": .string($0.name), "value": .string($0.value), "inline": .bool($0.inline)] }) }
        if let footer { object["footer"] = ["text": .string(footer)] }
        if let timestamp { object["timestamp"] = .string(ISO8601DateFormatter().string(from: timestamp)) }
        return .object(object)
    }

    /// Embeds as a message's rich content (Discord takes at most 10).
    public static func embeds(_ embeds: [DiscordEmbed]) -> JSONValue { .array(embeds.map(\.json)) }
}

/// Discord's rate limits, per bucket: after an answer says a bucket is spent (`X-RateLimit-Remaining: 0`),
/// the next request to it waits `X-RateLimit-Reset-After`; a 429 says how long in `retry_after`.
final class DiscordRateLimiter: Sendable {
    private let state = Mutex<(routeBuckets: [String: String], resets: [String: ContinuousClock.Instant])>(([:], [:]))

    /// How long to wait before a request on `route`.
    func delay(for route: String) -> Duration {
        state.withLock { state in
            let bucket = state.routeBuckets[route] ?? route
            guard let reset = state.resets[bucket] else { return .zero }
            let remaining = reset - ContinuousClock.now
            return remaining > .zero ? remaining : .zero
        }
    }

    func record(route: String, headers: HTTPHeaders) {
        let bucket = headers.first(name: "X-RateLimit-Bucket")
        let remaining = headers.first(name: "X-RateLimit-Remaining").flatMap(Int.init)
        let resetAfter = headers.first(name: "X-RateLimit-Reset-After").flatMap(Double.init)
        state.withLock { state in
            if let bucket { state.routeBuckets[route] = bucket }
            let key = bucket ?? route
            if remaining == 0, let resetAfter { state.resets[key] = .now + .milliseconds(Int64(resetAfter * 1000)) } else { state.resets[key] = nil }
        }
    }
}

/// The Discord REST calls both drivers make.
struct DiscordAPI: Sendable {
    let http: NimbusHTTPClient
    let limiter = DiscordRateLimiter()

    func execute(_ path: String, route: String, body: JSONValue, operation: String) async throws -> JSONValue? {
        let wait = limiter.delay(for: route)
        if wait > .zero { try await Task.sleep(for: wait) }
        var request = NimbusHTTPRequest(.POST, path, operation: operation)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = ByteBuffer(bytes: try JSONEncoder().encode(body))
        let response = try await http.send(request)
        limiter.record(route: route, headers: response.headers)
        let data = Array(try await response.collect(upTo: 1024 * 1024).readableBytesView)
        let json = try? JSONValue.parse(data)
        guard response.isSuccess else {
            if response.status == .tooManyRequests {
                let after = json?["retry_after"]?.numberValue.map { Duration.milliseconds(Int64($0 * 1000)) } ?? response.retryAfter() ?? .seconds(1)
                let global = json?["global"]?.boolValue == true ? " (global)" : ""
                throw NimbusError(.resourceExhausted, "discord \(operation) was rate limited\(global)", retryAfter: after, retryable: true)
            }
            let code = json?["code"]?.numberValue.map { Int($0) } ?? 0
            let message = json?["message"]?.stringValue ?? String(decoding: data.prefix(200), as: UTF8.self)
            let mapped: NimbusError.Code = switch code {
            case 10003, 10004, 10008, 10015: .notFound                       // unknown channel, guild, message, webhook
            case 50001, 50013: .permissionDenied                             // missing access / permissions
            case 50035, 50006, 50008: .invalidArgument                      // invalid form body, empty message
            case 0 where response.status == .unauthorized, 40001: .unauthenticated
            default: HTTPStatusMapping.code(for: response.status)
            }
            throw NimbusError(mapped, "discord \(operation) failed: \(response.status.code) \(code == 0 ? "" : "\(code) ")\(message)",
                              retryable: response.status.code >= 500 ? false : nil)
        }
        return json
    }

    static func body(_ message: ChatPost) throws -> JSONValue {
        guard message.text.count <= 2000 else { throw NimbusError(.invalidArgument, "Discord messages hold at most 2000 characters; this has \(message.text.count)") }
        var body: [String: JSONValue] = ["content": .string(message.text), "allowed_mentions": ["parse": []]]   // no surprise @everyone
        if let embeds = message.rich {
            guard (embeds.arrayValue?.count ?? 0) <= 10 else { throw NimbusError(.invalidArgument, "Discord takes at most 10 embeds") }
            body["embeds"] = embeds
        }
        if let username = message.username { body["username"] = .string(username) }
        if let icon = message.iconURL { body["avatar_url"] = .string(icon.absoluteString) }
        return .object(body)
    }
}

/// Posts to a Discord webhook (`https://discord.com/api/webhooks/<id>/<token>`) with `?wait=true`, so the
/// message id comes back; per-bucket rate limits kept.
public struct DiscordWebhookDriver: ChatDriver {
    public let provider = "discord-webhook"
    let path: String
    let api: DiscordAPI

    /// `url`: the webhook URL, a secret (anyone holding it can post).
    public init(url: Secret<String>, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) throws {
        guard let components = URLComponents(string: url.reveal()), let scheme = components.scheme, let host = components.host,
              components.path.contains("/webhooks/") else {
            throw NimbusError(.invalidArgument, "not a Discord webhook URL (https://discord.com/api/webhooks/<id>/<token>)")
        }
        path = components.path
        api = DiscordAPI(http: NimbusHTTPClient(configuration: .init(service: "discord", baseURL: "\(scheme)://\(host)\(components.port.map { ":\($0)" } ?? "")",
                                                                     retry: .none, timeout: .seconds(30)), httpClient: httpClient, logger: logger))
    }

    public func post(_ message: ChatPost) async throws -> ChatReceipt {
        var body = try DiscordAPI.body(message)
        if let thread = message.threadID, case .object(var object) = body { object["thread_id"] = .string(thread); body = .object(object) }
        let json = try await api.execute(path + "?wait=true", route: "webhook", body: body, operation: "execute webhook")
        return ChatReceipt(messageID: json?["id"]?.stringValue, channel: json?["channel_id"]?.stringValue, provider: provider)
    }
}

/// Posts as a bot (`Authorization: Bot <token>`) to `POST /channels/{id}/messages`, replies by message reference.
public struct DiscordBotDriver: ChatDriver {
    public let provider = "discord"
    let api: DiscordAPI

    public init(token: Secret<String>, baseURL: String = "https://discord.com/api/v10", httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        api = DiscordAPI(http: NimbusHTTPClient(configuration: .init(service: "discord", baseURL: baseURL,
                                                                     defaultHeaders: ["User-Agent": "DiscordBot (https://github.com/nimbus, \(NimbusVersion.current))"],
                                                                     auth: .header("Authorization", Secret("Bot " + token.reveal())),
                                                                     retry: .none, timeout: .seconds(30)), httpClient: httpClient, logger: logger))
    }

    public func post(_ message: ChatPost) async throws -> ChatReceipt {
        guard let channel = message.channel, channel.allSatisfy(\.isNumber) else {
            throw NimbusError(.invalidArgument, "a Discord bot posts to a channel id (a number), not '\(message.channel ?? "")'")
        }
        var body = try DiscordAPI.body(message)
        if let reply = message.threadID, case .object(var object) = body { object["message_reference"] = ["message_id": .string(reply)]; body = .object(object) }
        let json = try await api.execute("/channels/\(channel)/messages", route: "channels/\(channel)/messages", body: body, operation: "create message")
        return ChatReceipt(messageID: json?["id"]?.stringValue, channel: json?["channel_id"]?.stringValue ?? channel, provider: provider)
    }
}

/// Verifies Discord interaction requests: Ed25519 over `X-Signature-Timestamp` + body with the application's
/// public key (hex), and a timestamp within `tolerance` of now.
public struct DiscordInteractionVerifier: Sendable {
    let key: Curve25519.Signing.PublicKey
    public var tolerance: Duration

    /// `publicKeyHex`: the application's public key from the developer portal.
    public init(publicKeyHex: String, tolerance: Duration = .seconds(300)) throws {
        guard let bytes = Self.hex(publicKeyHex), bytes.count == 32, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: bytes) else {
            throw NimbusError(.invalidArgument, "the Discord public key is not 64 hex digits (an Ed25519 key)")
        }
        self.key = key
        self.tolerance = tolerance
    }

    /// - Throws: `unauthenticated` when the signature or the time is wrong.
    public func verify(body: [UInt8], signature: String?, timestamp: String?, now: Date = Date()) throws {
        guard let signature, let timestamp else {
            throw NimbusError(.unauthenticated, "the Discord request has no X-Signature-Ed25519 or X-Signature-Timestamp")
        }
        let sent = try WebhookSignature.timestamp(timestamp, header: "X-Signature-Timestamp")
        try WebhookSignature.checkAge(sent, tolerance: tolerance, now: now, source: "the Discord request's")
        guard let bytes = Self.hex(signature), bytes.count == 64, key.isValidSignature(bytes, for: Array(timestamp.utf8) + body) else {
            throw NimbusError(.unauthenticated, "the Discord request's Ed25519 signature does not match the application's key")
        }
    }

    static func hex(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        for index in stride(from: 0, to: utf8.count, by: 2) {
            guard let high = UInt8(String(decoding: utf8[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(high)
        }
        return bytes
    }
}

extension URLOpenerRegistry where Resource == any ChatDriver {
    /// Adds `discord+webhook://discord.com/api/webhooks/<id>/<token>` and `discord://BOT_TOKEN@discord.com`.
    public func withDiscord() -> Self {
        var copy = self
        copy.register("discord+webhook") { url in
            guard let host = url.host else { throw NimbusError(.invalidArgument, "discord+webhook:// needs the webhook's host and path") }
            let scheme = try url.options.bool("tls") == false ? "http" : "https"
            return try DiscordWebhookDriver(url: Secret("\(scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")\(url.path)"))
        }
        copy.register("discord") { url in
            guard let token = url.user.map(Secret.init) ?? ProcessInfo.processInfo.environment["DISCORD_BOT_TOKEN"].map(Secret.init) else {
                throw NimbusError(.invalidArgument, "discord:// needs a bot token: discord://TOKEN@discord.com or DISCORD_BOT_TOKEN")
            }
            return DiscordBotDriver(token: token)
        }
        return copy
    }
}
