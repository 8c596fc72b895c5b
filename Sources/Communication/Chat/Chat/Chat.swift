import Foundation
import Logging
import NimbusCore
import Synchronization

/// A message for a chat channel (Slack, Discord…): text everyone's client shows, and optionally the
/// platform's rich layout (Slack Block Kit blocks, Discord embeds) as JSON.
public struct ChatPost: Sendable, Hashable {
    /// Where to post: a channel id (`C0123…`, a Discord channel id); webhooks post to their own channel and ignore it.
    public var channel: String?
    /// The text (also the notification and accessibility fallback of rich layouts).
    public var text: String
    /// Slack `blocks` or Discord `embeds`, as the platform defines them (``SlackBlock`` builds Slack's).
    public var rich: JSONValue?
    /// Reply in a thread (Slack `thread_ts`; Discord `message_reference`).
    public var threadID: String?
    /// Override the poster's name and avatar where the platform allows it (webhooks).
    public var username: String?
    public var iconURL: URL?

    public init(channel: String? = nil, text: String, rich: JSONValue? = nil, threadID: String? = nil, username: String? = nil, iconURL: URL? = nil) {
        self.channel = channel
        self.text = text
        self.rich = rich
        self.threadID = threadID
        self.username = username
        self.iconURL = iconURL
    }
}

/// What a post returned.
public struct ChatReceipt: Sendable, Hashable, Codable {
    /// The message's id (Slack `ts`, Discord snowflake); webhooks that answer nothing give `nil`.
    public var messageID: String?
    public var channel: String?
    public var provider: String

    public init(messageID: String?, channel: String?, provider: String) {
        self.messageID = messageID
        self.channel = channel
        self.provider = provider
    }
}

/// What a chat platform does.
public protocol ChatDriver: NimbusDriver {
    func post(_ message: ChatPost) async throws -> ChatReceipt
}

/// Posts through any driver, retrying rate limits after the platform's delay.
///
/// ```swift
/// let chat = ChatClient(driver: SlackWebAPIDriver(token: Secret(env["SLACK_BOT_TOKEN"]!)))
/// try await chat.post(ChatPost(channel: "C0123456789", text: "Deploy finished", rich: SlackBlock.blocks([.header("Deploy finished")])))
/// ```
public struct ChatClient: PortableClient {
    private let driver: any ChatDriver
    public let retry: RetryPolicy
    private let logger: Logger

    public init(driver: any ChatDriver, retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(30)),
                logger: Logger = Logger(label: "nimbus.chat")) {
        self.driver = driver
        self.retry = retry
        self.logger = logger
    }

    /// `slack`, `slack-webhook`, `discord`, `discord-webhook`, `memory`.
    public var provider: String { driver.provider }

    /// The driver as `T`, for platform calls the portable API does not name.
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// Releases the driver.
    public func close() async throws { try await driver.close() }

    /// Posts a message, retrying rate limits after the platform's delay.
    @discardableResult
    public func post(_ message: ChatPost) async throws -> ChatReceipt {
        guard !message.text.isEmpty || message.rich != nil else { throw NimbusError(.invalidArgument, "the chat message has no text and no rich content") }
        let receipt = try await retry.run { _ in try await driver.post(message) }
        logger.info("chat: posted", metadata: ["provider": "\(driver.provider)", "channel": "\(receipt.channel ?? message.channel ?? "-")"])
        return receipt
    }

    /// The chat domain's openers, empty: adapter modules add their schemes (`.withMemory()`, `.withSlack()`, `.withDiscord()`).
    public static var openers: URLOpenerRegistry<any ChatDriver> { URLOpenerRegistry(domain: "chat") }
}

