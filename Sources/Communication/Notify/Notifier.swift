import Foundation
import GRDB
import Logging
import NimbusChat
import NimbusCore
import NimbusEmail
import NimbusPush
import NimbusSMS
import NimbusTemplate

/// A channel a notification can take.
public enum NotificationChannel: String, Sendable, Hashable, Codable, CaseIterable {
    case email, sms, push, chat
}

/// Someone to notify: their addresses and what they prefer.
public struct NotificationRecipient: Sendable, Hashable {
    public var id: String
    public var email: EmailAddress?
    public var phone: PhoneNumber?
    public var pushTokens: [String]
    public var chatChannel: String?
    /// `pt-BR`, `de`… for the templates.
    public var locale: String?
    /// The channels they accept, in the order they prefer; `nil`: the request's order.
    public var preferredChannels: [NotificationChannel]?

    public init(id: String, email: EmailAddress? = nil, phone: PhoneNumber? = nil, pushTokens: [String] = [], chatChannel: String? = nil,
                locale: String? = nil, preferredChannels: [NotificationChannel]? = nil) {
        self.id = id
        self.email = email
        self.phone = phone
        self.pushTokens = pushTokens
        self.chatChannel = chatChannel
        self.locale = locale
        self.preferredChannels = preferredChannels
    }

    /// Whether this recipient can be reached on a channel at all.
    public func reachable(on channel: NotificationChannel) -> Bool {
        switch channel {
        case .email: email != nil
        case .sms: phone != nil
        case .push: !pushTokens.isEmpty
        case .chat: chatChannel != nil
        }
    }
}

/// One notification to send.
public struct NotificationRequest: Sendable {
    /// How channels are used.
    public enum Routing: Sendable, Hashable {
        /// The first channel that succeeds (in the recipient's order), each failing over between its providers.
        case single
        /// Every channel.
        case all
    }

    /// The template bundle: `<name>.subject/.html/.text` for email, `<name>.sms`, `<name>.push-title`/`<name>.push`, `<name>.chat`.
    public var template: String
    public var data: JSONValue
    public var recipient: NotificationRecipient
    public var channels: [NotificationChannel]
    public var routing: Routing
    /// The same key twice delivers once per channel (a retried request, a replayed event).
    public var idempotencyKey: String

    public init(template: String, data: JSONValue, recipient: NotificationRecipient, channels: [NotificationChannel] = [.email, .push, .sms],
                routing: Routing = .single, idempotencyKey: String) {
        self.template = template
        self.data = data
        self.recipient = recipient
        self.channels = channels
        self.routing = routing
        self.idempotencyKey = idempotencyKey
    }
}

/// What happened on each channel tried.
public struct NotificationOutcome: Sendable {
    public struct Attempt: Sendable {
        public var channel: NotificationChannel
        public var provider: String
        public var delivered: Bool
        /// The provider's id (message id, push ids joined).
        public var providerID: String?
        public var error: String?
        /// True when this result was recorded by an earlier send with the same key (nothing was sent now).
        public var replayed: Bool
    }

    public var attempts: [Attempt]
    /// The channels that delivered.
    public var deliveredChannels: [NotificationChannel] { attempts.filter(\.delivered).map(\.channel) }
}

/// Sends one template to a person over their channels — the orchestration Novu and Courier offer, plus what
/// they lack: failover between providers of one channel (SES, then SMTP), and an idempotency key checked
/// against a durable delivery log so a retried request does not notify twice.
///
/// ```swift
/// let notifier = Notifier(templates: engine,
///                         email: [EmailClient(driver: ses), EmailClient(driver: smtp)], emailFrom: try EmailAddress("Shop <shop@example.com>"),
///                         sms: [SMSClient(driver: twilio)], smsFrom: .service("MG…"),
///                         push: [PushClient(driver: fcm)], log: try SQLiteDeliveryLog(path: "deliveries.sqlite"))
/// let outcome = try await notifier.send(NotificationRequest(template: "order-shipped", data: order, recipient: zoe, idempotencyKey: "order-1042-shipped"))
/// ```
public struct Notifier: Sendable {
    public let templates: TemplateEngine
    public let email: [EmailClient]
    public let emailFrom: EmailAddress?
    public let sms: [SMSClient]
    public let smsFrom: SMSSender?
    public let push: [PushClient]
    public let chat: [ChatClient]
    public let log: any DeliveryLog
    private let logger: Logger

    public init(templates: TemplateEngine, email: [EmailClient] = [], emailFrom: EmailAddress? = nil, sms: [SMSClient] = [], smsFrom: SMSSender? = nil,
                push: [PushClient] = [], chat: [ChatClient] = [], log: any DeliveryLog, logger: Logger = Logger(label: "nimbus.notify")) {
        self.templates = templates
        self.email = email
        self.emailFrom = emailFrom
        self.sms = sms
        self.smsFrom = smsFrom
        self.push = push
        self.chat = chat
        self.log = log
        self.logger = logger
    }

    /// Sends as the request's routing says.
    /// - Throws: `invalidArgument` for a request no channel can carry; `failedPrecondition` when every channel failed
    ///   (the attempts are in the message and in the log).
    @discardableResult
    public func send(_ request: NotificationRequest) async throws -> NotificationOutcome {
        guard !request.idempotencyKey.isEmpty else { throw NimbusError(.invalidArgument, "a notification needs an idempotency key") }
        let order = (request.recipient.preferredChannels ?? request.channels).filter { request.channels.contains($0) && request.recipient.reachable(on: $0) }
        guard !order.isEmpty else {
            throw NimbusError(.invalidArgument, "recipient \(request.recipient.id) cannot be reached on \(request.channels.map(\.rawValue)) (no address, or not preferred)")
        }
        var attempts: [NotificationOutcome.Attempt] = []
        for channel in order {
            if let earlier = try await log.delivered(key: request.idempotencyKey, channel: channel) {
                attempts.append(.init(channel: channel, provider: earlier.provider, delivered: true, providerID: earlier.providerID, error: nil, replayed: true))
                if request.routing == .single { break } else { continue }
            }
            // Claim the key on this channel first: a concurrent send with the same key waits its turn instead of sending twice.
            guard try await log.claim(key: request.idempotencyKey, channel: channel) else {
                throw NimbusError(.failedPrecondition, "a send with the key '\(request.idempotencyKey)' is in progress on \(channel.rawValue); try again shortly",
                                  retryAfter: .seconds(1), retryable: true)
            }
            let channelAttempts = await deliver(request, on: channel)
            attempts += channelAttempts
            do {
                for attempt in channelAttempts {
                    try await log.record(key: request.idempotencyKey, recipient: request.recipient.id, attempt: attempt)
                }
                try await log.release(key: request.idempotencyKey, channel: channel)
            } catch {
                try? await log.release(key: request.idempotencyKey, channel: channel)
                throw error
            }
            if request.routing == .single, channelAttempts.contains(where: \.delivered) { break }
        }
        let outcome = NotificationOutcome(attempts: attempts)
        guard !outcome.deliveredChannels.isEmpty else {
            let detail = attempts.map { "\($0.channel.rawValue)/\($0.provider): \($0.error ?? "failed")" }.joined(separator: "; ")
            throw NimbusError(.failedPrecondition, "no channel delivered the notification '\(request.template)' to \(request.recipient.id): \(detail)")
        }
        logger.info("notify: delivered", metadata: ["template": "\(request.template)", "recipient": "\(request.recipient.id)",
                                                   "channels": "\(outcome.deliveredChannels.map(\.rawValue))"])
        return outcome
    }

    /// One channel: each provider in turn until one delivers. An error that leaves delivery uncertain
    /// (not retryable, e.g. a dropped answer after DATA) stops the failover: a second provider could duplicate it.
    func deliver(_ request: NotificationRequest, on channel: NotificationChannel) async -> [NotificationOutcome.Attempt] {
        var attempts: [NotificationOutcome.Attempt] = []
        let providers: Int = switch channel {
        case .email: email.count
        case .sms: sms.count
        case .push: push.count
        case .chat: chat.count
        }
        guard providers > 0 else {
            return [.init(channel: channel, provider: "-", delivered: false, providerID: nil, error: "no \(channel.rawValue) provider configured", replayed: false)]
        }
        for index in 0..<providers {
            do {
                let (provider, id) = try await deliver(request, on: channel, provider: index)
                attempts.append(.init(channel: channel, provider: provider, delivered: true, providerID: id, error: nil, replayed: false))
                return attempts
            } catch {
                let nimbus = error as? NimbusError
                attempts.append(.init(channel: channel, provider: providerName(channel, index), delivered: false, providerID: nil,
                                      error: nimbus.map { "\($0.code): \($0.message)" } ?? "\(error)", replayed: false))
                guard Self.mayFailOver(nimbus) else { return attempts }
                logger.warning("notify: failing over", metadata: ["channel": "\(channel.rawValue)", "from": "\(providerName(channel, index))"])
            }
        }
        return attempts
    }

    /// Whether another provider may try after this error: the first did not deliver and a second could.
    static func mayFailOver(_ error: NimbusError?) -> Bool {
        guard let error else { return false }
        switch error.code {
        case .invalidArgument: return false                                  // the message itself is wrong: it fails everywhere
        case .unavailable, .deadlineExceeded, .internal, .dataLoss: return error.retryable != false   // uncertain delivery: no duplicate
        default: return true                                                 // auth, quota, refusal by this provider, not found…
        }
    }

    func providerName(_ channel: NotificationChannel, _ index: Int) -> String {
        switch channel {
        case .email: email[index].provider
        case .sms: sms[index].provider
        case .push: push[index].provider
        case .chat: chat[index].provider
        }
    }

    func deliver(_ request: NotificationRequest, on channel: NotificationChannel, provider index: Int) async throws -> (String, String?) {
        let recipient = request.recipient
        switch channel {
        case .email:
            guard let from = emailFrom, let to = recipient.email else { throw NimbusError(.invalidArgument, "email needs a sender and a recipient address") }
            let rendered = try templates.renderMessage(request.template, locale: recipient.locale, data: request.data)
            var message = EmailMessage(from: from, to: [to], subject: rendered.subject ?? "", text: rendered.text, html: rendered.html)
            message.metadata = ["notification": request.idempotencyKey]
            let receipt = try await email[index].send(message)
            return (email[index].provider, receipt.providerMessageID ?? receipt.messageID)
        case .sms:
            guard let from = smsFrom, let to = recipient.phone else { throw NimbusError(.invalidArgument, "SMS needs a sender and a phone number") }
            let text = try templates.render(request.template, part: "sms", locale: recipient.locale, data: request.data)
            let receipt = try await sms[index].send(SMSMessage(from: from, to: to, body: text.trimmingCharacters(in: .whitespacesAndNewlines)))
            return (sms[index].provider, receipt.id)
        case .push:
            let title = try? templates.render(request.template, part: "push-title", locale: recipient.locale, data: request.data)
            let body = try templates.render(request.template, part: "push", locale: recipient.locale, data: request.data)
            let results = try await push[index].send(PushNotification(title: title?.trimmingCharacters(in: .whitespacesAndNewlines),
                                                                      body: body.trimmingCharacters(in: .whitespacesAndNewlines),
                                                                      data: ["notification": request.idempotencyKey]), to: recipient.pushTokens)
            guard results.deliveredCount > 0 else {
                let first = results.first.map { result -> NimbusError in
                    switch result.outcome {
                    case .failed(let error): error
                    case .invalidToken(let reason, _): NimbusError(.notFound, "every push token is dead (\(reason))")
                    case .delivered: NimbusError(.internal, "unreachable")
                    }
                }
                throw first ?? NimbusError(.notFound, "no push token")
            }
            let ids = results.compactMap { if case .delivered(let id) = $0.outcome { id } else { nil } }
            return (push[index].provider, ids.joined(separator: ","))
        case .chat:
            guard let channelID = recipient.chatChannel else { throw NimbusError(.invalidArgument, "chat needs a channel") }
            let text = try templates.render(request.template, part: "chat", locale: recipient.locale, data: request.data)
            let receipt = try await chat[index].post(ChatPost(channel: channelID, text: text.trimmingCharacters(in: .whitespacesAndNewlines)))
            return (chat[index].provider, receipt.messageID)
        }
    }
}

/// Where deliveries are recorded, and where an idempotency key is looked up.
public protocol DeliveryLog: Sendable {
    /// The delivery already made for this key on this channel, if any.
    func delivered(key: String, channel: NotificationChannel) async throws -> (provider: String, providerID: String?)?
    /// Records one attempt.
    func record(key: String, recipient: String, attempt: NotificationOutcome.Attempt) async throws
    /// Every attempt for a key, oldest first.
    func attempts(key: String) async throws -> [NotificationOutcome.Attempt]
    /// Takes the right to send `key` on `channel`; false while another sender holds it (a claim older than the
    /// log's stale limit is taken over: its holder died).
    func claim(key: String, channel: NotificationChannel) async throws -> Bool
    /// Gives the right back.
    func release(key: String, channel: NotificationChannel) async throws
}

/// The delivery log in SQLite (GRDB; WAL): one row per attempt, a unique delivered row per key and channel.
public final class SQLiteDeliveryLog: DeliveryLog {
    let database: DatabaseQueue
    /// A claim older than this belongs to a sender that died.
    public let staleClaim: Duration

    /// Opens (or creates) the log at `path`; `:memory:` keeps it in memory.
    public init(path: String = ":memory:", staleClaim: Duration = .seconds(600)) throws {
        self.staleClaim = staleClaim
        do {
            database = path == ":memory:" ? try DatabaseQueue() : try DatabaseQueue(path: path)
            try database.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS deliveries (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        idempotency_key TEXT NOT NULL, channel TEXT NOT NULL, recipient TEXT NOT NULL, provider TEXT NOT NULL,
                        delivered INTEGER NOT NULL, provider_id TEXT, error TEXT, created_at REAL NOT NULL);
                    CREATE UNIQUE INDEX IF NOT EXISTS deliveries_once ON deliveries(idempotency_key, channel) WHERE delivered = 1;
                    CREATE INDEX IF NOT EXISTS deliveries_key ON deliveries(idempotency_key);
                    CREATE TABLE IF NOT EXISTS claims (idempotency_key TEXT NOT NULL, channel TEXT NOT NULL, claimed_at REAL NOT NULL,
                                                       PRIMARY KEY (idempotency_key, channel));
                    """)
            }
        } catch {
            throw NimbusError(.unavailable, "cannot open the delivery log at \(path): \(error)", underlying: error)
        }
    }

    public func delivered(key: String, channel: NotificationChannel) async throws -> (provider: String, providerID: String?)? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT provider, provider_id FROM deliveries WHERE idempotency_key = ? AND channel = ? AND delivered = 1",
                             arguments: [key, channel.rawValue]).map { (provider: $0["provider"], providerID: $0["provider_id"]) }
        }
    }

    public func record(key: String, recipient: String, attempt: NotificationOutcome.Attempt) async throws {
        do {
            try await database.write { db in
                try db.execute(sql: """
                    INSERT INTO deliveries (idempotency_key, channel, recipient, provider, delivered, provider_id, error, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [key, attempt.channel.rawValue, recipient, attempt.provider, attempt.delivered, attempt.providerID, attempt.error,
                                     Date().timeIntervalSince1970])
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            // A concurrent send with the same key delivered first; both went out once each on different providers
            // at worst — record nothing more.
            return
        }
    }

    public func claim(key: String, channel: NotificationChannel) async throws -> Bool {
        let now = Date().timeIntervalSince1970
        let stale = now - staleClaim.nimbusSeconds
        return try await database.write { db in
            try db.execute(sql: "DELETE FROM claims WHERE idempotency_key = ? AND channel = ? AND claimed_at < ?", arguments: [key, channel.rawValue, stale])
            try db.execute(sql: "INSERT OR IGNORE INTO claims (idempotency_key, channel, claimed_at) VALUES (?, ?, ?)", arguments: [key, channel.rawValue, now])
            return db.changesCount == 1
        }
    }

    public func release(key: String, channel: NotificationChannel) async throws {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM claims WHERE idempotency_key = ? AND channel = ?", arguments: [key, channel.rawValue])
        }
    }

    public func attempts(key: String) async throws -> [NotificationOutcome.Attempt] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT channel, provider, delivered, provider_id, error FROM deliveries WHERE idempotency_key = ? ORDER BY id",
                             arguments: [key]).map { row in
                NotificationOutcome.Attempt(channel: NotificationChannel(rawValue: row["channel"]) ?? .email, provider: row["provider"], delivered: row["delivered"],
                                            providerID: row["provider_id"], error: row["error"], replayed: false)
            }
        }
    }
}
