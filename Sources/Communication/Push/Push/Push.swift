import Foundation
import Logging
import NimbusCore
import Synchronization

/// A push notification for phones and browsers, with what each platform adds.
///
/// ```swift
/// var push = PushNotification(title: "Order shipped", body: "Your parcel is on its way", data: ["order": "1042"])
/// push.badge = 1
/// push.collapseKey = "order-1042"
/// push.apns.threadID = "orders"
/// push.android.channelID = "shipping"
/// let results = try await PushClient(driver: fcm).send(push, to: deviceTokens)
/// results.invalidTokens      // delete these from your database
/// ```
public struct PushNotification: Sendable, Hashable {
    /// How urgently to deliver.
    public enum Priority: String, Sendable, Hashable {
        /// At once, waking the device (APNs 10, FCM HIGH).
        case high
        /// When convenient for battery (APNs 5, FCM NORMAL); required for silent pushes on iOS.
        case normal
    }

    public var title: String?
    public var body: String?
    /// Key-value data for the app (string values, as both platforms carry them).
    public var data: [String: String]
    public var badge: Int?
    /// `default` or a bundled sound's file name.
    public var sound: String?
    public var priority: Priority
    /// A newer notification with the same key replaces an older one not yet shown (APNs collapse id ≤ 64 bytes).
    public var collapseKey: String?
    /// Give up if the device is unreachable this long (0: deliver now or never).
    public var timeToLive: Duration?
    /// A background update without an alert (APNs `content-available`).
    public var contentAvailable: Bool
    /// An image shown with the notification.
    public var imageURL: URL?
    /// Apple specifics.
    public var apns: APNsOptions
    /// Android specifics.
    public var android: AndroidOptions

    /// Apple's options.
    public struct APNsOptions: Sendable, Hashable {
        /// `apns-push-type`: alert, background, voip, complication, fileprovider, mdm, liveactivity, location, pushtotalk.
        public var pushType: String?
        public var threadID: String?
        public var category: String?
        /// passive, active, time-sensitive, critical.
        public var interruptionLevel: String?
        public var mutableContent: Bool
        /// More keys for the `aps` dictionary's parent (the app's own payload keys).
        public var extra: [String: JSONValue]
        public init(pushType: String? = nil, threadID: String? = nil, category: String? = nil, interruptionLevel: String? = nil,
                    mutableContent: Bool = false, extra: [String: JSONValue] = [:]) {
            self.pushType = pushType
            self.threadID = threadID
            self.category = category
            self.interruptionLevel = interruptionLevel
            self.mutableContent = mutableContent
            self.extra = extra
        }
    }

    /// Android's options.
    public struct AndroidOptions: Sendable, Hashable {
        public var channelID: String?
        public var icon: String?
        /// `#RRGGBB`.
        public var color: String?
        public var tag: String?
        public var clickAction: String?
        public init(channelID: String? = nil, icon: String? = nil, color: String? = nil, tag: String? = nil, clickAction: String? = nil) {
            self.channelID = channelID
            self.icon = icon
            self.color = color
            self.tag = tag
            self.clickAction = clickAction
        }
    }

    public init(title: String? = nil, body: String? = nil, data: [String: String] = [:], badge: Int? = nil, sound: String? = nil,
                priority: Priority = .high, collapseKey: String? = nil, timeToLive: Duration? = nil, contentAvailable: Bool = false,
                imageURL: URL? = nil, apns: APNsOptions = .init(), android: AndroidOptions = .init()) {
        self.title = title
        self.body = body
        self.data = data
        self.badge = badge
        self.sound = sound
        self.priority = priority
        self.collapseKey = collapseKey
        self.timeToLive = timeToLive
        self.contentAvailable = contentAvailable
        self.imageURL = imageURL
        self.apns = apns
        self.android = android
    }

    /// Checks what both platforms require.
    public func validate() throws {
        guard title != nil || body != nil || !data.isEmpty || contentAvailable || badge != nil else {
            throw NimbusError(.invalidArgument, "the push has nothing to deliver: set a title, body, data, badge or contentAvailable")
        }
        if let collapseKey, collapseKey.utf8.count > 64 {
            throw NimbusError(.invalidArgument, "the collapse key has \(collapseKey.utf8.count) bytes; APNs takes at most 64")
        }
        if let ttl = timeToLive, ttl < .zero { throw NimbusError(.invalidArgument, "the time to live is negative") }
    }
}

/// What happened to one device token.
public struct PushResult: Sendable {
    /// The outcome.
    public enum Outcome: Sendable {
        /// Accepted; the provider's id (FCM message name, APNs apns-id).
        case delivered(id: String?)
        /// The token is dead (app uninstalled, token rotated, wrong app or environment): remove it. APNs says since when.
        case invalidToken(reason: String, since: Date?)
        /// Not delivered for another reason; retryable ones may be sent again later.
        case failed(NimbusError)
    }

    public var token: String
    public var outcome: Outcome

    public init(token: String, outcome: Outcome) {
        self.token = token
        self.outcome = outcome
    }
}

extension Array where Element == PushResult {
    /// Tokens to delete.
    public var invalidTokens: [String] {
        compactMap { if case .invalidToken = $0.outcome { $0.token } else { nil } }
    }

    /// How many were accepted.
    public var deliveredCount: Int { filter { if case .delivered = $0.outcome { true } else { false } }.count }
}

/// What a push provider does: one notification to one token.
public protocol PushDriver: NimbusDriver {
    func send(_ notification: PushNotification, to token: String) async throws -> PushResult
}

/// Sends to many devices at once (bounded concurrency), retries what may be retried, and reports token by
/// token — invalid tokens surfaced for cleanup.
public struct PushClient: PortableClient {
    private let driver: any PushDriver
    public var maxConcurrency: Int
    public var retry: RetryPolicy
    private let logger: Logger

    public init(driver: any PushDriver, maxConcurrency: Int = 16,
                retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(30)),
                logger: Logger = Logger(label: "nimbus.push")) {
        self.driver = driver
        self.maxConcurrency = max(1, maxConcurrency)
        self.retry = retry
        self.logger = logger
    }

    /// `fcm`, `apns`, `memory`.
    public var provider: String { driver.provider }

    /// The driver as `T`, for provider calls the portable API does not name.
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// Closes the driver's connections (APNs keeps an HTTP/2 client). Call it before the process exits.
    public func close() async throws { try await driver.close() }

    /// Sends to every token; results come back in the tokens' order.
    public func send(_ notification: PushNotification, to tokens: [String]) async throws -> [PushResult] {
        try notification.validate()
        var results = [PushResult?](repeating: nil, count: tokens.count)
        try await withThrowingTaskGroup(of: (Int, PushResult).self) { group in
            var next = 0
            func start() {
                guard next < tokens.count else { return }
                let index = next
                next += 1
                group.addTask { (index, await self.sendOne(notification, to: tokens[index])) }
            }
            for _ in 0..<min(maxConcurrency, tokens.count) { start() }
            while let (index, result) = try await group.next() {
                results[index] = result
                start()
            }
        }
        let final = results.compactMap { $0 }
        logger.info("push: sent", metadata: ["provider": "\(driver.provider)", "tokens": "\(tokens.count)", "delivered": "\(final.deliveredCount)",
                                             "invalid": "\(final.invalidTokens.count)"])
        return final
    }

    func sendOne(_ notification: PushNotification, to token: String) async -> PushResult {
        do {
            return try await retry.run { _ in
                let result = try await driver.send(notification, to: token)
                if case .failed(let error) = result.outcome, error.isRetryable { throw error }     // let the policy wait and retry
                return result
            }
        } catch let error as NimbusError {
            return PushResult(token: token, outcome: .failed(error))
        } catch {
            return PushResult(token: token, outcome: .failed(NimbusError.wrap(error, "push to a device")))
        }
    }

    /// The push domain's openers, empty: adapter modules add their schemes (`.withMemory()`, `.withFCM()`).
    public static var openers: URLOpenerRegistry<any PushDriver> { URLOpenerRegistry(domain: "push") }
}

