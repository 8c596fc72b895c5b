import NimbusChat
import NimbusCore
import NimbusTesting
import Testing

/// The behaviour every ``ChatDriver`` must have, stated once and run by each driver's tests
/// (memory, Slack Web API and webhooks, Discord bot and webhooks, against local fakes).
public enum ChatConformance {
    /// A post as the platform received it.
    public struct Delivered: Sendable, Hashable {
        /// The channel it went to, where the request names one (webhooks are bound to theirs).
        public var channel: String?
        /// The text.
        public var text: String
        /// The message it replies to or the thread it continues.
        public var threadID: String?
        /// Creates a reading.
        public init(channel: String?, text: String, threadID: String? = nil) {
            self.channel = channel
            self.text = text
            self.threadID = threadID
        }
    }

    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes a driver (one per check).
        public var makeDriver: @Sendable () async throws -> any ChatDriver
        /// The channel to post to (`nil` for a webhook, bound to its channel).
        public var channel: String?
        /// A message id to reply to (capability ``ConformanceCapability/threads``).
        public var threadID: String?
        /// The latest post the platform received (capability ``ConformanceCapability/readBack``).
        public var readBack: (@Sendable () async throws -> Delivered?)?

        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any ChatDriver, channel: String?, threadID: String? = nil,
                    readBack: (@Sendable () async throws -> Delivered?)? = nil) {
            self.makeDriver = makeDriver
            self.channel = channel
            self.threadID = threadID
            self.readBack = readBack
        }

        func client() async throws -> (ChatClient, CountingChatDriver) {
            let counting = CountingChatDriver(try await makeDriver())
            return (ChatClient(driver: counting, retry: .none), counting)
        }

        func delivered() async throws -> Delivered {
            try await ConformanceObservation.read(readBack, what: "post")
        }
    }

    /// Every check.
    public static let suite = ConformanceSuite<Harness>(domain: "chat", checks: [
        ConformanceCheck("a post is accepted; the receipt names the provider and the platform's message id", needs: [.messageIDs]) { harness in
            let (client, counting) = try await harness.client()
            let receipt = try await client.post(ChatPost(channel: harness.channel, text: "Deploy finished"))
            #expect(receipt.provider == counting.provider)
            #expect(receipt.messageID?.isEmpty == false, "no message id in \(receipt)")
            #expect(counting.posts == 1)
        },
        ConformanceCheck("Unicode text arrives as written, to the channel given", needs: [.readBack]) { harness in
            let (client, _) = try await harness.client()
            let text = "Grüße, Zoë — déploiement ✅ 「完了」 <not a tag> & *not bold*"
            _ = try await client.post(ChatPost(channel: harness.channel, text: text))
            #expect(try await harness.delivered() == Delivered(channel: harness.channel, text: text))
        },
        ConformanceCheck("a reply names the message or thread it continues", needs: [.readBack, .threads]) { harness in
            let (client, _) = try await harness.client()
            guard let thread = harness.threadID else { throw NimbusError(.failedPrecondition, "the harness declares threads but names no thread") }
            _ = try await client.post(ChatPost(channel: harness.channel, text: "and rolled back", threadID: thread))
            #expect(try await harness.delivered() == Delivered(channel: harness.channel, text: "and rolled back", threadID: thread))
        },
        ConformanceCheck("a message with no text and no rich content is refused before the driver") { harness in
            let (client, counting) = try await harness.client()
            let error = await #expect(throws: NimbusError.self) { try await client.post(ChatPost(channel: harness.channel, text: "")) }
            #expect(error?.code == .invalidArgument)
            #expect(counting.posts == 0)
        },
    ])
}

extension ConformanceCapability {
    /// The platform answers a post with its message id (Slack's incoming webhooks answer only `ok`).
    public static let messageIDs: ConformanceCapability = "messageIDs"
    /// Posts can continue a thread or reply to a message.
    public static let threads: ConformanceCapability = "threads"
}

/// Counts what reaches the driver under test.
final class CountingChatDriver: ChatDriver {
    let inner: any ChatDriver
    private let counter = CallCounter()
    init(_ inner: any ChatDriver) { self.inner = inner }
    var provider: String { inner.provider }
    var posts: Int { counter.count }
    func post(_ message: ChatPost) async throws -> ChatReceipt {
        counter.record()
        return try await inner.post(message)
    }
    func close() async throws { try await inner.close() }
}
