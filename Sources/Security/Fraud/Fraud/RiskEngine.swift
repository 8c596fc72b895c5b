import Foundation
import Logging
import NimbusCore

/// A payment attempt, with the signals fraud scoring looks at. Identify cards by a token or
/// fingerprint from the payment provider, never by their number.
public struct PaymentEvent: Sendable, Hashable, Codable {
    /// A unique id of this attempt.
    public var id: String
    /// When it happened.
    public var time: Date
    /// The customer account.
    public var account: String
    /// The card's token or fingerprint.
    public var card: String
    /// The country that issued the card (from its BIN), ISO 3166 alpha-2.
    public var cardCountry: String
    /// The device fingerprint.
    public var device: String
    /// The country of the client's IP address.
    public var ipCountry: String
    /// The amount, in major units of its currency.
    public var amount: Double
    /// The account's email address.
    public var email: String
    /// When the account was created.
    public var accountCreated: Date
    /// Shipping country.
    public var shippingCountry: String
    /// Billing country.
    public var billingCountry: String

    /// Creates an event.
    public init(id: String, time: Date, account: String, card: String, cardCountry: String, device: String, ipCountry: String, amount: Double,
                email: String, accountCreated: Date, shippingCountry: String, billingCountry: String) {
        self.id = id
        self.time = time
        self.account = account
        self.card = card
        self.cardCountry = cardCountry
        self.device = device
        self.ipCountry = ipCountry
        self.amount = amount
        self.email = email
        self.accountCreated = accountCreated
        self.shippingCountry = shippingCountry
        self.billingCountry = billingCountry
    }
}

/// The features of one event, by name (the models' input).
public struct FraudFeatures: Sendable, Hashable {
    /// The names, in model order.
    public static let names = ["log_amount", "foreign_ip", "card_count_1h", "device_cards_24h", "account_age", "disposable_email",
                               "night", "shipping_mismatch", "new_device"]
    /// The values, in the order of ``names``.
    public var values: [Double]
    /// A value by name.
    public subscript(name: String) -> Double { Self.names.firstIndex(of: name).map { values[$0] } ?? .nan }
}

/// Turns events into ``FraudFeatures``, keeping the velocity counters it needs in a ``VelocityStore``
/// (memory for one process, Redis to share them). Events must be given in time order per key.
///
/// Features: `log_amount` = ln(1 + amount); `foreign_ip` = IP country ≠ card country;
/// `card_count_1h` = earlier uses of the card in the hour before; `device_cards_24h` = distinct
/// cards on the device in the last 24 h, this one included; `account_age` = min(days, 365) / 365;
/// `disposable_email` = a throwaway mail domain; `night` = 00:00–05:59 UTC;
/// `shipping_mismatch` = shipping ≠ billing country; `new_device` = the device was never seen on the account.
public struct FeatureExtractor: Sendable {
    /// Throwaway email domains (extend it with a maintained list).
    public var disposableDomains: Set<String>
    private let velocity: any VelocityStore
    private let keyPrefix: String

    /// The built-in list of throwaway email domains.
    public static let defaultDisposableDomains: Set<String> = ["mailinator.com", "10minutemail.com", "guerrillamail.com", "trashmail.com", "yopmail.com"]

    /// Creates an extractor over a velocity store.
    public init(velocity: some VelocityStore, keyPrefix: String = "fraud:", disposableDomains: Set<String> = FeatureExtractor.defaultDisposableDomains) {
        self.velocity = velocity
        self.keyPrefix = keyPrefix
        self.disposableDomains = disposableDomains
    }

    /// The features of `event`, recording it in the velocity counters.
    public func extract(_ event: PaymentEvent) async throws -> FraudFeatures {
        guard event.amount.isFinite, event.amount >= 0 else { throw NimbusError(.invalidArgument, "payment \(event.id): the amount must be a finite, non-negative number") }
        let card = try await velocity.observe(keyPrefix + "card:" + event.card, member: event.id, at: event.time, window: .seconds(3600), retain: .seconds(3600))
        let device = try await velocity.observe(keyPrefix + "device-cards:" + event.device, member: event.card, at: event.time,
                                                window: .seconds(86400), retain: .seconds(86400))
        let account = try await velocity.observe(keyPrefix + "account-devices:" + event.account, member: event.device, at: event.time,
                                                 window: .seconds(400 * 86400), retain: .seconds(400 * 86400))
        let seconds = event.time.timeIntervalSince1970
        let secondOfDay = seconds - (seconds / 86400).rounded(.down) * 86400
        let ageDays = max(0, event.time.timeIntervalSince(event.accountCreated) / 86400)
        let domain = event.email.split(separator: "@").last.map { $0.lowercased() } ?? ""
        return FraudFeatures(values: [
            log1p(event.amount),
            event.ipCountry != event.cardCountry ? 1 : 0,
            Double(card.countBefore),
            Double(device.countAfter),
            min(ageDays, 365) / 365,
            disposableDomains.contains(domain) ? 1 : 0,
            secondOfDay < 6 * 3600 ? 1 : 0,
            event.shippingCountry != event.billingCountry ? 1 : 0,
            account.seenBefore ? 0 : 1,
        ])
    }
}

/// What to do with a payment.
public enum RiskAction: String, Sendable, Hashable, Codable, Comparable {
    case approve, review, decline
    var rank: Int { self == .approve ? 0 : self == .review ? 1 : 2 }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// A rule over an event's features: when it matches, it asks for at least `action`, for `reason`.
public struct RiskRule: Sendable {
    /// A short stable name (`card-velocity`).
    public var name: String
    /// The least action a match asks for.
    public var action: RiskAction
    /// Why, for the decision's reasons (the features are interpolated by `describe`).
    public var describe: @Sendable (FraudFeatures, PaymentEvent) -> String
    /// Whether the rule matches.
    public var matches: @Sendable (FraudFeatures, PaymentEvent) -> Bool

    /// Creates a rule.
    public init(_ name: String, action: RiskAction, describe: @escaping @Sendable (FraudFeatures, PaymentEvent) -> String,
                matches: @escaping @Sendable (FraudFeatures, PaymentEvent) -> Bool) {
        self.name = name
        self.action = action
        self.describe = describe
        self.matches = matches
    }

    /// The same card used `limit` times or more in the hour before: decline (a stolen card being emptied).
    public static func cardVelocity(limit: Int = 3) -> RiskRule {
        RiskRule("card-velocity", action: .decline, describe: { f, _ in "card used \(Int(f["card_count_1h"])) times in the last hour" }) { f, _ in
            f["card_count_1h"] >= Double(limit)
        }
    }

    /// `limit` or more distinct cards on one device in 24 hours: decline (card testing).
    public static func cardTesting(limit: Int = 4) -> RiskRule {
        RiskRule("card-testing", action: .decline, describe: { f, _ in "\(Int(f["device_cards_24h"])) different cards on this device today" }) { f, _ in
            f["device_cards_24h"] >= Double(limit)
        }
    }

    /// A throwaway email on an account younger than a day paying at least `amount`: review.
    public static func disposableEmail(amount: Double = 200) -> RiskRule {
        RiskRule("disposable-email", action: .review, describe: { _, e in "throwaway email on a new account paying \(e.amount)" }) { f, e in
            f["disposable_email"] == 1 && f["account_age"] < 1.0 / 365 && e.amount >= amount
        }
    }

    /// A device never seen on the account, from abroad, shipping elsewhere than billing: review (account takeover).
    public static func takeover(amount: Double = 250) -> RiskRule {
        RiskRule("takeover", action: .review, describe: { _, e in "new device from \(e.ipCountry), shipping to \(e.shippingCountry)" }) { f, e in
            f["new_device"] == 1 && f["foreign_ip"] == 1 && f["shipping_mismatch"] == 1 && e.amount >= amount
        }
    }

    /// The default rule set.
    public static let defaults: [RiskRule] = [.cardVelocity(), .cardTesting(), .disposableEmail(), .takeover()]
}

/// A decision with its reasons.
public struct RiskDecision: Sendable, Hashable {
    /// The action.
    public var action: RiskAction
    /// The model's fraud probability (0 without a model).
    public var score: Double
    /// Why: the rules that matched, then the features that pushed the score up most.
    public var reasons: [String]
    /// The names of the rules that matched.
    public var matchedRules: [String]
    /// The features the decision was made on.
    public var features: FraudFeatures
}

/// Scores payments: rules over typed features and a model loaded from a file, combined into an
/// action with reasons.
///
/// ```swift
/// let engine = try RiskEngine(model: FraudModel(json: modelFile), velocity: MemoryVelocityStore())
/// let decision = try await engine.assess(payment)
/// switch decision.action { case .approve: … case .review: queue(decision.reasons) case .decline: … }
/// ```
public struct RiskEngine: Sendable {
    /// Thresholds and rules.
    public struct Configuration: Sendable {
        /// A score at or above this asks for review.
        public var reviewThreshold: Double = 0.5
        /// A score at or above this declines.
        public var declineThreshold: Double = 0.9
        /// The rules (``RiskRule/defaults``).
        public var rules: [RiskRule] = RiskRule.defaults
        /// How many model reasons to give.
        public var modelReasons = 3
        /// Creates the default configuration.
        public init() {}
    }

    /// The configuration.
    public let configuration: Configuration
    /// The model, if any.
    public let model: FraudModel?
    /// The feature extractor.
    public let extractor: FeatureExtractor
    private let logger: Logger

    /// Creates an engine.
    /// - Throws: `invalidArgument` when the model's features are not ``FraudFeatures/names`` or the thresholds are out of order.
    public init(model: FraudModel?, velocity: some VelocityStore, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.fraud")) throws {
        if let model, model.features != FraudFeatures.names {
            throw NimbusError(.invalidArgument, "the model's features \(model.features) are not NimbusFraud's \(FraudFeatures.names)")
        }
        guard 0 < configuration.reviewThreshold, configuration.reviewThreshold <= configuration.declineThreshold, configuration.declineThreshold <= 1 else {
            throw NimbusError(.invalidArgument, "thresholds must satisfy 0 < review ≤ decline ≤ 1")
        }
        self.model = model
        self.configuration = configuration
        self.extractor = FeatureExtractor(velocity: velocity)
        self.logger = logger
    }

    /// Scores `event` (recording it in the velocity counters) and decides.
    public func assess(_ event: PaymentEvent) async throws -> RiskDecision {
        let features = try await extractor.extract(event)
        var action = RiskAction.approve
        var reasons: [String] = []
        var matched: [String] = []
        for rule in configuration.rules where rule.matches(features, event) {
            action = max(action, rule.action)
            reasons.append("\(rule.name): \(rule.describe(features, event))")
            matched.append(rule.name)
        }
        var score = 0.0
        if let model {
            score = try model.probability(features.values)
            if score >= configuration.declineThreshold { action = max(action, .decline) } else if score >= configuration.reviewThreshold { action = max(action, .review) }
            if score >= configuration.reviewThreshold {
                let top = try model.contributions(features.values).filter { $0.value > 0 }.sorted { $0.value > $1.value }.prefix(configuration.modelReasons)
                reasons += top.map { "model: \($0.key) +\(String(format: "%.2f", $0.value))" }
            }
        }
        logger.debug("fraud decision", metadata: ["payment": "\(event.id)", "action": "\(action.rawValue)", "score": "\(score)", "rules": "\(matched)"])
        return RiskDecision(action: action, score: score, reasons: reasons, matchedRules: matched, features: features)
    }
}
