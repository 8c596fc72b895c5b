import Foundation
import GRDB
import NimbusCore
import NimbusCurrency
import NimbusPayment

/// The embedded payment engine: the whole payment state machine with test cards, persisted in
/// SQLite, so a service takes payments with no provider account — locally, in CI, in demos.
///
/// It behaves like Stripe's test mode: the same card tokens (``TestCard``) succeed, decline with a
/// given reason, require 3-D Secure (``completeAction(_:succeeded:)`` plays the payer), or succeed and
/// then get disputed. Idempotency keys are honoured as a provider does: a repeat returns the first
/// result, a key reused for a different request is refused. Every change is recorded as a
/// ``PaymentEvent`` (``events(after:limit:)``), the embedded counterpart of webhooks.
///
/// ```swift
/// let payments = PaymentClient(driver: try MemoryPaymentDriver(path: ".nimbus/payments.sqlite"))
/// let payment = try await payments.create(PaymentRequest(amount: try Money("49.90", .eur),
///                                                        paymentMethodID: TestCard.visa, confirm: true))
/// // payment.status == .succeeded
/// ```
public struct MemoryPaymentDriver: PaymentDriver {
    public let provider = "memory"
    private let queue: DatabaseQueue
    private let now: @Sendable () -> Date

    /// Opens (creating) the database at `path`; `nil` keeps everything in memory. `now` is for tests.
    /// - Throws: `unavailable` when the file cannot be opened or migrated.
    public init(path: String? = nil, now: @escaping @Sendable () -> Date = { Date() }) throws {
        self.now = now
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            queue = try path.map { try DatabaseQueue(path: $0, configuration: configuration) } ?? DatabaseQueue(configuration: configuration)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.execute(sql: """
                    CREATE TABLE payments (id TEXT PRIMARY KEY, body BLOB NOT NULL);
                    CREATE TABLE refunds (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, payment TEXT NOT NULL, body BLOB NOT NULL);
                    CREATE INDEX refunds_payment ON refunds(payment);
                    CREATE TABLE disputes (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, payment TEXT NOT NULL, body BLOB NOT NULL);
                    CREATE INDEX disputes_payment ON disputes(payment);
                    CREATE TABLE idempotency (key TEXT PRIMARY KEY, operation TEXT NOT NULL, fingerprint TEXT NOT NULL, result BLOB NOT NULL, created REAL NOT NULL);
                    CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, body BLOB NOT NULL);
                    """)
            }
            try migrator.migrate(queue)
        } catch {
            throw NimbusError(.unavailable, "cannot open the payment database at \(path ?? ":memory:"): \(error)", underlying: error)
        }
    }

    // MARK: Operations

    public func create(_ request: PaymentRequest, idempotencyKey: IdempotencyKey) async throws -> Payment {
        let amount = try Self.checkMinorUnits(request.amount)
        guard amount.amount > 0 else { throw NimbusError(.invalidArgument, "a payment amount must be above zero, not \(amount)") }
        let fingerprint = Fingerprint.of("create", amount.description, request.captureMethod.rawValue, request.customerID ?? "",
                                         request.paymentMethodID ?? "", String(request.confirm), request.metadata.sorted { $0.key < $1.key }.description)
        let instant = now()
        return try await idempotent(idempotencyKey, "create", fingerprint) { db in
            var payment = Payment(id: "pay_\(IDGenerator.shared.ulid())", amount: amount,
                                  status: request.paymentMethodID == nil ? .requiresPaymentMethod : .requiresConfirmation,
                                  captureMethod: request.captureMethod, customerID: request.customerID, paymentMethodID: request.paymentMethodID,
                                  metadata: request.metadata, createdAt: instant)
            if request.confirm {
                try Self.attempt(&payment, method: request.paymentMethodID, db: db, at: instant)
            }
            try Self.save(payment, db)
            return payment
        }
    }

    public func confirm(_ paymentID: String, paymentMethodID: String?, idempotencyKey: IdempotencyKey) async throws -> Payment {
        let instant = now()
        return try await idempotent(idempotencyKey, "confirm", Fingerprint.of("confirm", paymentID, paymentMethodID ?? "")) { db in
            var payment = try Self.load(paymentID, db)
            guard [.requiresPaymentMethod, .requiresConfirmation].contains(payment.status) else {
                throw NimbusError(.failedPrecondition, "cannot confirm a payment that is \(payment.status.rawValue); only requires_payment_method or requires_confirmation payments are confirmed")
            }
            try Self.attempt(&payment, method: paymentMethodID ?? payment.paymentMethodID, db: db, at: instant)
            try Self.save(payment, db)
            return payment
        }
    }

    public func capture(_ paymentID: String, amount: Money?, idempotencyKey: IdempotencyKey) async throws -> Payment {
        let instant = now()
        return try await idempotent(idempotencyKey, "capture", Fingerprint.of("capture", paymentID, amount?.description ?? "all")) { db in
            var payment = try Self.load(paymentID, db)
            let captured = try payment.checkCapture(amount.map(Self.checkMinorUnits))
            payment.status = .succeeded
            payment.amountReceived = captured
            payment.amountCapturable = .zero(payment.amount.currency)     // the rest of the authorization is released
            try Self.received(payment, db: db, at: instant)
            try Self.save(payment, db)
            return payment
        }
    }

    public func cancel(_ paymentID: String, idempotencyKey: IdempotencyKey) async throws -> Payment {
        let instant = now()
        return try await idempotent(idempotencyKey, "cancel", Fingerprint.of("cancel", paymentID)) { db in
            var payment = try Self.load(paymentID, db)
            try payment.status.checkTransition(to: .canceled, operation: "cancel")
            payment.status = .canceled
            payment.amountCapturable = .zero(payment.amount.currency)
            payment.nextActionURL = nil
            try Self.record(.paymentCanceled, "payment_intent.canceled", payment: payment, db: db, at: instant)
            try Self.save(payment, db)
            return payment
        }
    }

    public func refund(_ paymentID: String, amount: Money?, reason: String?, idempotencyKey: IdempotencyKey) async throws -> Refund {
        let instant = now()
        if let reason, !Self.refundReasons.contains(reason) {
            throw NimbusError(.invalidArgument, "refund reason '\(reason)' is not one of \(Self.refundReasons.sorted().joined(separator: ", "))")
        }
        let fingerprint = Fingerprint.of("refund", paymentID, amount?.description ?? "all", reason ?? "")
        return try await idempotent(idempotencyKey, "refund", fingerprint) { db in
            var payment = try Self.load(paymentID, db)
            let refunded = try payment.checkRefund(amount.map(Self.checkMinorUnits))
            payment.amountRefunded = try payment.amountRefunded.adding(refunded)
            let refund = Refund(id: "re_\(IDGenerator.shared.ulid())", paymentID: paymentID, amount: refunded, status: .succeeded,
                                reason: reason, createdAt: instant)
            try db.execute(sql: "INSERT INTO refunds (id, payment, body) VALUES (?, ?, ?)", arguments: [refund.id, paymentID, try Self.encode(refund)])
            try Self.record(.refundUpdated, "refund.created", payment: payment, refund: refund, db: db, at: instant)
            try Self.save(payment, db)
            return refund
        }
    }

    public func payment(_ paymentID: String) async throws -> Payment {
        try await queue.read { try Self.load(paymentID, $0) }
    }

    public func refunds(of paymentID: String) async throws -> [Refund] {
        try await queue.read { db in
            _ = try Self.load(paymentID, db)
            return try Data.fetchAll(db, sql: "SELECT body FROM refunds WHERE payment = ? ORDER BY seq", arguments: [paymentID]).map { try Self.decode($0) }
        }
    }

    public func disputes(of paymentID: String) async throws -> [Dispute] {
        try await queue.read { db in
            _ = try Self.load(paymentID, db)
            return try Data.fetchAll(db, sql: "SELECT body FROM disputes WHERE payment = ? ORDER BY seq", arguments: [paymentID]).map { try Self.decode($0) }
        }
    }

    // MARK: The payer and the bank, played by the engine

    /// Plays the payer finishing (or failing) the action a `requiresAction` payment waits for —
    /// 3-D Secure in this engine. Success settles the payment as confirmation would; failure leaves it
    /// `requiresPaymentMethod` with an `authenticationRequired` failure, as Stripe does.
    /// - Throws: `failedPrecondition` when the payment waits for no action.
    @discardableResult
    public func completeAction(_ paymentID: String, succeeded: Bool) async throws -> Payment {
        let instant = now()
        return try await queue.write { db in
            var payment = try Self.load(paymentID, db)
            guard payment.status == .requiresAction else {
                throw NimbusError(.failedPrecondition, "payment \(paymentID) is \(payment.status.rawValue) and waits for no payer action")
            }
            payment.nextActionURL = nil
            if succeeded {
                try Self.settle(&payment, db: db, at: instant)
            } else {
                try Self.fail(&payment, PaymentFailure(kind: .authenticationRequired, providerCode: "payment_intent_authentication_failure",
                                                       message: "The payer did not complete 3-D Secure authentication."), db: db, at: instant)
            }
            try Self.save(payment, db)
            return payment
        }
    }

    /// Plays the bank deciding a dispute.
    /// - Throws: `notFound` for an unknown dispute; `failedPrecondition` when it is decided already or `status` is not a decision.
    @discardableResult
    public func closeDispute(_ disputeID: String, status: Dispute.Status) async throws -> Dispute {
        guard status == .won || status == .lost else { throw NimbusError(.invalidArgument, "a dispute closes as won or lost, not \(status)") }
        let instant = now()
        return try await queue.write { db in
            guard let body = try Data.fetchOne(db, sql: "SELECT body FROM disputes WHERE id = ?", arguments: [disputeID]) else {
                throw NimbusError(.notFound, "no dispute \(disputeID)")
            }
            var dispute: Dispute = try Self.decode(body)
            guard !dispute.status.isClosed else { throw NimbusError(.failedPrecondition, "dispute \(disputeID) is already \(dispute.status)") }
            dispute.status = status
            dispute.evidenceDueBy = nil
            try db.execute(sql: "UPDATE disputes SET body = ? WHERE id = ?", arguments: [try Self.encode(dispute), disputeID])
            try Self.record(.disputeClosed, "charge.dispute.closed", payment: try Self.load(dispute.paymentID, db), dispute: dispute, db: db, at: instant)
            return dispute
        }
    }

    /// The events recorded after the one with id `after` (from the start when `nil`), oldest first.
    public func events(after: String? = nil, limit: Int = 100) async throws -> [PaymentEvent] {
        try await queue.read { db in
            var from: Int64 = 0
            if let after {
                guard let seq = try Int64.fetchOne(db, sql: "SELECT seq FROM events WHERE id = ?", arguments: [after]) else {
                    throw NimbusError(.notFound, "no event \(after)")
                }
                from = seq
            }
            return try Data.fetchAll(db, sql: "SELECT body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [from, max(1, limit)])
                .map { try Self.decode($0) }
        }
    }

    // MARK: The state machine

    static let refundReasons: Set<String> = ["duplicate", "fraudulent", "requested_by_customer"]

    /// One confirmation attempt with `method`.
    private static func attempt(_ payment: inout Payment, method: String?, db: Database, at instant: Date) throws {
        guard let method else {
            throw NimbusError(.invalidArgument, "payment \(payment.id) has no payment method; pass one (test cards: \(TestCard.all.joined(separator: ", ")))")
        }
        guard let outcome = TestCard.outcome(of: method) else {
            throw NimbusError(.invalidArgument, "no payment method '\(method)' in the embedded engine; use a test card: \(TestCard.all.joined(separator: ", "))")
        }
        payment.paymentMethodID = method
        switch outcome {
        case .succeeds, .disputed:
            try settle(&payment, db: db, at: instant)
        case .declines(let failure):
            try fail(&payment, failure, db: db, at: instant)
        case .requiresAuthentication:
            payment.status = .requiresAction
            payment.nextActionURL = "nimbus-memory://3ds/\(payment.id)"
            try record(.paymentRequiresAction, "payment_intent.requires_action", payment: payment, db: db, at: instant)
        }
    }

    /// The payer's funds are secured: taken (automatic capture) or authorized (manual).
    private static func settle(_ payment: inout Payment, db: Database, at instant: Date) throws {
        payment.lastFailure = nil
        switch payment.captureMethod {
        case .automatic:
            payment.status = .succeeded
            payment.amountReceived = payment.amount
            try received(payment, db: db, at: instant)
        case .manual:
            payment.status = .requiresCapture
            payment.amountCapturable = payment.amount
            try record(.paymentCapturable, "payment_intent.amount_capturable_updated", payment: payment, db: db, at: instant)
        }
    }

    private static func fail(_ payment: inout Payment, _ failure: PaymentFailure, db: Database, at instant: Date) throws {
        payment.status = .requiresPaymentMethod
        payment.lastFailure = failure
        payment.paymentMethodID = nil
        try record(.paymentFailed, "payment_intent.payment_failed", payment: payment, db: db, at: instant)
    }

    /// Funds were collected: the success event, and the chargeback a dispute card brings.
    private static func received(_ payment: Payment, db: Database, at instant: Date) throws {
        try record(.paymentSucceeded, "payment_intent.succeeded", payment: payment, db: db, at: instant)
        guard let method = payment.paymentMethodID, case .disputed(let reason) = TestCard.outcome(of: method) else { return }
        let dispute = Dispute(id: "dp_\(IDGenerator.shared.ulid())", paymentID: payment.id, amount: payment.amountReceived, status: .needsResponse,
                              reason: reason, evidenceDueBy: instant.addingTimeInterval(7 * 86_400), createdAt: instant)
        try db.execute(sql: "INSERT INTO disputes (id, payment, body) VALUES (?, ?, ?)", arguments: [dispute.id, payment.id, try encode(dispute)])
        try record(.disputeCreated, "charge.dispute.created", payment: payment, dispute: dispute, db: db, at: instant)
    }

    private static func record(_ kind: PaymentEvent.Kind, _ providerType: String, payment: Payment? = nil, refund: Refund? = nil,
                               dispute: Dispute? = nil, db: Database, at instant: Date) throws {
        let event = PaymentEvent(id: "evt_\(IDGenerator.shared.ulid())", kind: kind, providerType: providerType, createdAt: instant,
                                 payment: payment, refund: refund, dispute: dispute)
        try db.execute(sql: "INSERT INTO events (id, body) VALUES (?, ?)", arguments: [event.id, try encode(event)])
    }

    // MARK: Storage

    /// Runs `body` once per key: a repeat with the same request returns the stored result, a repeat
    /// with another request is refused. Check, work and record happen in one transaction.
    private func idempotent<T: Codable & Sendable>(_ key: IdempotencyKey, _ operation: String, _ fingerprint: String,
                                                   _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let instant = now()
        return try await queue.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT operation, fingerprint, result FROM idempotency WHERE key = ?", arguments: [key.value]) {
                let firstOperation: String = row["operation"]
                guard firstOperation == operation, row["fingerprint"] == fingerprint else {
                    throw NimbusError(.invalidArgument, "idempotency key '\(key)' was first used for a different \(firstOperation) request; "
                                      + "a key may only be repeated with the same parameters — use a new key for a new request")
                }
                return try Self.decode(row["result"])
            }
            let result = try body(db)
            try db.execute(sql: "INSERT INTO idempotency (key, operation, fingerprint, result, created) VALUES (?, ?, ?, ?, ?)",
                           arguments: [key.value, operation, fingerprint, try Self.encode(result), instant.timeIntervalSince1970])
            return result
        }
    }

    private static func load(_ id: String, _ db: Database) throws -> Payment {
        guard let body = try Data.fetchOne(db, sql: "SELECT body FROM payments WHERE id = ?", arguments: [id]) else {
            throw NimbusError(.notFound, "no payment \(id)")
        }
        return try decode(body)
    }

    private static func save(_ payment: Payment, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO payments (id, body) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                       arguments: [payment.id, try encode(payment)])
    }

    private static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return try encoder.encode(value)
    }

    private static func decode<T: Decodable>(_ data: Data) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        do { return try decoder.decode(T.self, from: data) } catch {
            throw NimbusError(.dataLoss, "a stored \(T.self) cannot be read: \(error)", underlying: error)
        }
    }

    /// Refuses amounts finer than the currency's minor unit (a provider cannot charge 0.001 EUR).
    static func checkMinorUnits(_ money: Money) throws -> Money {
        guard money.rounded(.down) == money else {
            throw NimbusError(.invalidArgument, "\(money) is finer than \(money.currency.code)'s minor unit; round it first (Money.rounded)")
        }
        return money
    }
}

/// A stable description of a request's parameters, compared when an idempotency key is repeated.
enum Fingerprint {
    static func of(_ parts: String...) -> String { parts.map { "\($0.utf8.count):\($0)" }.joined() }
}
