import Foundation
import NimbusCore

/// Something that happened to a sent email, as a provider's webhook reports it (SendGrid Event Webhook,
/// SES notifications): delivered, bounced, opened, clicked, marked as spam…
public struct EmailEvent: Sendable, Hashable {
    /// The kind of event (unknown provider values are kept as they come).
    public struct Kind: OpenEnumeration {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Accepted by the provider, to be sent.
        public static let processed = Kind(rawValue: "processed")
        /// The receiving server took it.
        public static let delivered = Kind(rawValue: "delivered")
        /// The receiving server said "later"; the provider retries.
        public static let deferred = Kind(rawValue: "deferred")
        /// The receiving server refused it.
        public static let bounced = Kind(rawValue: "bounced")
        /// The provider did not send it (a suppressed address, an invalid message).
        public static let dropped = Kind(rawValue: "dropped")
        /// The recipient opened it.
        public static let opened = Kind(rawValue: "opened")
        /// The recipient clicked a link.
        public static let clicked = Kind(rawValue: "clicked")
        /// The recipient marked it as spam: stop sending to them.
        public static let complained = Kind(rawValue: "complained")
        /// The recipient unsubscribed.
        public static let unsubscribed = Kind(rawValue: "unsubscribed")
        /// The recipient subscribed again.
        public static let resubscribed = Kind(rawValue: "resubscribed")

        /// Whether the address should no longer be mailed (hard bounce, complaint, unsubscribe, drop).
        public var suppressesRecipient: Bool { [.bounced, .complained, .unsubscribed, .dropped].contains(self) }
    }

    public var kind: Kind
    /// The recipient.
    public var recipient: String
    public var timestamp: Date
    /// The provider's message id (matches ``EmailReceipt/providerMessageID``, sometimes with a suffix).
    public var providerMessageID: String?
    /// The provider's id of this event (for de-duplication: webhooks are delivered at least once).
    public var eventID: String?
    /// Why (a bounce's SMTP reply, a drop's reason).
    public var reason: String?
    /// The link clicked.
    public var url: String?
    /// The message's tags.
    public var tags: [String]
    /// The message's metadata (custom args), echoed back.
    public var metadata: [String: String]

    public init(kind: Kind, recipient: String, timestamp: Date, providerMessageID: String? = nil, eventID: String? = nil, reason: String? = nil,
                url: String? = nil, tags: [String] = [], metadata: [String: String] = [:]) {
        self.kind = kind
        self.recipient = recipient
        self.timestamp = timestamp
        self.providerMessageID = providerMessageID
        self.eventID = eventID
        self.reason = reason
        self.url = url
        self.tags = tags
        self.metadata = metadata
    }
}
