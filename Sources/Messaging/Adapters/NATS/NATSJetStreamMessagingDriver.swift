import Foundation
import Logging
import NIOCore
import NimbusCore
import NimbusMessaging
import Synchronization

/// Messaging on NATS JetStream: a topic is a stream (interest retention, file storage) bound to
/// the subject `<subjectPrefix>.<topic>`; a subscription is a durable pull consumer on it with
/// explicit acks.
///
/// Publishes wait for JetStream's acknowledgement, with `Nats-Msg-Id` for deduplication
/// (the stream's duplicate window). Receives pull a batch without waiting, then, if nothing was
/// there, wait for one message with a pull that expires. Acks are `+ACK` sent as requests (the
/// server confirms them), nacks `-NAK` (with a delay), lease extensions `+WPI` repeated until the
/// asked deadline, dead letters a copy published to the dead-letter topic then `+TERM`.
/// JetStream has no dead-letter topic of its own: the driver moves a message once its delivery
/// count passes the subscription's `maxDeliveries`.
///
/// Stream and consumer names cannot contain `.`: topic `a.b` is stream `NIMBUS_a_db`
/// (`_` → `__`, `.` → `_d`).
///
/// ```swift
/// let messaging = Messaging(driver: NATSJetStreamMessagingDriver(configuration: .init(connection: .init(host: "127.0.0.1", port: 4222))))
/// ```
public final class NATSJetStreamMessagingDriver: MessagingDriver, Sendable {
    /// Settings of the JetStream driver.
    public struct Configuration: Sendable {
        /// Where the server is.
        public var connection: NATSConnection.Configuration
        /// Prepended to stream names (`NIMBUS_`).
        public var streamPrefix: String
        /// The first subject token of every topic (`nimbus`).
        public var subjectPrefix: String
        /// The streams' duplicate window for deduplication ids.
        public var deduplicationWindow: Duration
        /// How long a JetStream API call may take.
        public var requestTimeout: Duration

        /// Creates settings.
        public init(connection: NATSConnection.Configuration = .init(), streamPrefix: String = "NIMBUS_", subjectPrefix: String = "nimbus",
                    deduplicationWindow: Duration = .seconds(120), requestTimeout: Duration = .seconds(5)) {
            self.connection = connection
            self.streamPrefix = streamPrefix
            self.subjectPrefix = subjectPrefix
            self.deduplicationWindow = deduplicationWindow
            self.requestTimeout = requestTimeout
        }
    }

    public var provider: String { "nats" }
    public var capabilities: MessagingCapabilities { [.durable, .deduplication, .deadLetters, .deliveryCount, .extendDeadline, .delayedRedelivery] }

    /// The settings it was made with.
    public let configuration: Configuration
    /// The connection underneath (opened on first use, again after it drops).
    public let client: NATSClient
    let logger: Logger
    private let subscriptions = Mutex<[String: SubscriptionInfo]>([:])
    private let keepers = LeaseKeepers()

    /// Creates a driver; the connection opens on first use.
    public init(configuration: Configuration, logger: Logger = Logger(label: "nimbus.messaging.nats")) {
        self.configuration = configuration
        self.logger = logger
        self.client = NATSClient(configuration: configuration.connection, logger: logger)
    }

    struct SubscriptionInfo: Sendable {
        var topic: String
        var ackWait: Duration
        var deadLetter: String?
        var maxDeliveries: Int
    }

    // MARK: Names

    static func encode(_ name: String) -> String { BrokerName.escapingDots(name) }
    static func decode(_ name: String) -> String { BrokerName.unescapingDots(name) }

    private func stream(_ topic: String) -> String { configuration.streamPrefix + Self.encode(topic) }
    private func subject(_ topic: String) -> String { configuration.subjectPrefix + "." + topic }

    // MARK: The JetStream API

    /// Calls `$JS.API.<api>` and returns the JSON answer; an `error` member becomes a `NimbusError`.
    func api(_ api: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        let connection = try await client.connection()
        let payload = try body.map { ByteBuffer(bytes: try JSONEncoder().encode($0)) } ?? ByteBuffer()
        let reply: NATSMessage
        do {
            reply = try await connection.request("$JS.API.\(api)", payload: payload, timeout: configuration.requestTimeout)
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.unavailable, "JetStream does not answer at \(configuration.connection.endpoint); start nats-server with -js", underlying: error)
        }
        let answer: JSONValue
        do { answer = try JSONValue.parse(Data(reply.payload.readableBytesView)) }
        catch { throw NimbusError(.internal, "JetStream answered \(api) with something that is not JSON: \(error)", underlying: error) }
        if let error = answer["error"] { throw Self.error(error, api) }
        return answer
    }

    static func error(_ error: JSONValue, _ api: String) -> NimbusError {
        let status = Int(error["code"]?.numberValue ?? 500), code = Int(error["err_code"]?.numberValue ?? 0)
        let description = error["description"]?.stringValue ?? "no description"
        let kind: NimbusError.Code
        switch (status, code) {
        case (_, 10058), (_, 10013), (_, 10105), (_, 10148): kind = .alreadyExists   // stream/consumer name in use with another configuration
        case (404, _): kind = .notFound
        case (400, _): kind = .invalidArgument
        case (408, _): kind = .deadlineExceeded
        case (409, _): kind = .failedPrecondition
        case (503, _): kind = .unavailable
        default: kind = .internal
        }
        return NimbusError(kind, "JetStream \(api.split(separator: ".").prefix(2).joined(separator: ".")): \(description) (\(status)/\(code))")
    }

    // MARK: Topics and subscriptions

    public func createTopic(_ topic: String) async throws -> Bool {
        let name = stream(topic)
        if try await exists("STREAM.INFO.\(name)") { return false }
        do {
            _ = try await api("STREAM.CREATE.\(name)", .object([
                "name": .string(name), "subjects": [.string(subject(topic))], "retention": "interest", "storage": "file",
                "discard": "old", "num_replicas": 1, "duplicate_window": .number(Double(configuration.deduplicationWindow.nimbusNanoseconds)),
            ]))
            return true
        } catch let error as NimbusError where error.code == .alreadyExists {
            return false
        }
    }

    private func exists(_ api: String) async throws -> Bool {
        do { _ = try await self.api(api); return true }
        catch let error as NimbusError where error.code == .notFound { return false }
    }

    public func deleteTopic(_ topic: String) async throws {
        do { _ = try await api("STREAM.DELETE.\(stream(topic))") }
        catch let error as NimbusError where error.code == .notFound { throw NimbusError(.notFound, "topic '\(topic)' does not exist") }
        subscriptions.withLock { $0 = $0.filter { $0.value.topic != topic } }
    }

    public func topics() async throws -> [String] {
        var names: [String] = []
        var offset = 0
        while true {
            let page = try await api("STREAM.NAMES", .object(["offset": .number(Double(offset))]))
            let batch = (page["streams"]?.arrayValue ?? []).compactMap(\.stringValue)
            names += batch
            offset += batch.count
            if batch.isEmpty || offset >= Int(page["total"]?.numberValue ?? 0) { break }
        }
        return names.filter { $0.hasPrefix(configuration.streamPrefix) }.map { Self.decode(String($0.dropFirst(configuration.streamPrefix.count))) }.sorted()
    }

    public func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions) async throws -> Bool {
        guard try await exists("STREAM.INFO.\(stream(topic))") else { throw NimbusError(.notFound, "topic '\(topic)' does not exist; create it first") }
        if let existing = try await lookupIfPresent(subscription) {
            guard existing.topic == topic else {
                throw NimbusError(.alreadyExists, "subscription '\(subscription)' already exists on topic '\(existing.topic)', not '\(topic)'")
            }
            return false
        }
        let description: JSONValue = .object(["nimbus": 1, "topic": .string(topic), "dead_letter": options.deadLetter.map { .string($0.topic) } ?? .null,
                                              "max_deliveries": .number(Double(options.deadLetter?.maxDeliveries ?? 0))])
        let consumer = Self.encode(subscription)
        _ = try await api("CONSUMER.DURABLE.CREATE.\(stream(topic)).\(consumer)", .object([
            "stream_name": .string(stream(topic)),
            "config": .object([
                "durable_name": .string(consumer), "description": .string(String(decoding: try JSONEncoder().encode(description), as: UTF8.self)),
                "deliver_policy": "new", "ack_policy": "explicit", "ack_wait": .number(Double(options.ackDeadline.nimbusNanoseconds)),
                "max_deliver": -1, "max_ack_pending": 20_000, "replay_policy": "instant",
            ]),
        ]))
        subscriptions.withLock {
            $0[subscription] = SubscriptionInfo(topic: topic, ackWait: options.ackDeadline, deadLetter: options.deadLetter?.topic,
                                                maxDeliveries: options.deadLetter?.maxDeliveries ?? 0)
        }
        return true
    }

    public func deleteSubscription(_ subscription: String) async throws {
        let info = try await lookup(subscription)
        do { _ = try await api("CONSUMER.DELETE.\(stream(info.topic)).\(Self.encode(subscription))") }
        catch let error as NimbusError where error.code == .notFound { throw NimbusError(.notFound, "subscription '\(subscription)' does not exist") }
        _ = subscriptions.withLock { $0.removeValue(forKey: subscription) }
    }

    public func subscriptions(of topic: String) async throws -> [String] {
        do {
            let page = try await api("CONSUMER.NAMES.\(stream(topic))", .object(["offset": 0]))
            return (page["consumers"]?.arrayValue ?? []).compactMap(\.stringValue).map(Self.decode).sorted()
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.notFound, "topic '\(topic)' does not exist")
        }
    }

    /// Which topic a subscription reads, and its options (cached; found by asking each stream once).
    func lookup(_ subscription: String) async throws -> SubscriptionInfo {
        guard let info = try await lookupIfPresent(subscription) else { throw NimbusError(.notFound, "subscription '\(subscription)' does not exist") }
        return info
    }

    private func lookupIfPresent(_ subscription: String) async throws -> SubscriptionInfo? {
        if let cached = subscriptions.withLock({ $0[subscription] }) { return cached }
        let consumer = Self.encode(subscription)
        for topic in try await topics() {
            let info: JSONValue
            do { info = try await api("CONSUMER.INFO.\(stream(topic)).\(consumer)") }
            catch let error as NimbusError where error.code == .notFound { continue }
            let config = info["config"]
            let options = config?["description"]?.stringValue.flatMap { try? JSONValue.parse(Data($0.utf8)) }
            let found = SubscriptionInfo(topic: topic, ackWait: .nanoseconds(Int64(config?["ack_wait"]?.numberValue ?? 30e9)),
                                         deadLetter: options?["dead_letter"]?.stringValue,
                                         maxDeliveries: Int(options?["max_deliveries"]?.numberValue ?? 0))
            subscriptions.withLock { $0[subscription] = found }
            return found
        }
        return nil
    }

    // MARK: Publishing

    static let reservedHeaderPrefix = "nats-"

    static func headers(_ attributes: [String: String]) throws -> [(String, String)] {
        try attributes.sorted { $0.key < $1.key }.map { name, value in
            guard name.utf8.allSatisfy({ $0 > 32 && $0 != 127 && $0 != UInt8(ascii: ":") }) else {
                throw NimbusError(.invalidArgument, "attribute name '\(name.prefix(40))' cannot be a NATS header: no spaces, control characters or ':'")
            }
            guard !name.lowercased().hasPrefix(reservedHeaderPrefix) else {
                throw NimbusError(.invalidArgument, "attribute names starting with 'Nats-' are NATS's own headers")
            }
            guard !value.utf8.contains(where: { $0 == 13 || $0 == 10 }) else {
                throw NimbusError(.invalidArgument, "attribute '\(name)' has a line break, which a NATS header cannot carry")
            }
            return (name, value)
        }
    }

    public func publish(_ messages: [Message], to topic: String) async throws -> [String] {
        let connection = try await client.connection()
        guard messages.allSatisfy({ $0.body.readableBytes <= connection.maximumPayload }) else {
            throw NimbusError(.invalidArgument, "a message is larger than the server's max_payload of \(connection.maximumPayload) bytes")
        }
        // All publishes go out first, then the acknowledgements are awaited: one round trip for the batch.
        var pending: [NATSReplies] = []
        defer { for replies in pending { replies.cancel() } }
        for message in messages {
            var headers = try Self.headers(message.attributes)
            if let id = message.deduplicationID { headers.append(("Nats-Msg-Id", id)) }
            pending.append(try await connection.requestStream(subject(topic), payload: message.body, headers: headers))
        }
        var ids: [String] = []
        for replies in pending {
            guard let reply = try await replies.next(timeout: configuration.requestTimeout) else {
                throw NimbusError(.deadlineExceeded, "JetStream did not acknowledge a publish to '\(topic)' within \(configuration.requestTimeout.nimbusFormatted); it may or may not be stored", retryable: false)
            }
            if reply.status == 503 { throw NimbusError(.notFound, "topic '\(topic)' does not exist (no stream takes \(subject(topic)))") }
            let ack = try JSONValue.parse(Data(reply.payload.readableBytesView))
            if let error = ack["error"] { throw Self.error(error, "PUB") }
            guard let sequence = ack["seq"]?.numberValue else { throw NimbusError(.internal, "JetStream's publish acknowledgement has no seq") }
            ids.append(String(Int64(sequence)))
        }
        return ids
    }

    // MARK: Receiving

    public func receive(from subscription: String, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        let info = try await lookup(subscription)
        var delivered = try await pull(subscription, info, batch: maxMessages, expires: nil)
        if delivered.isEmpty, wait >= .milliseconds(1) {
            delivered = try await pull(subscription, info, batch: 1, expires: wait)
            if !delivered.isEmpty, maxMessages > 1 { delivered += try await pull(subscription, info, batch: maxMessages - 1, expires: nil) }
        }
        return delivered
    }

    /// One pull request: `no_wait` (what is there now) or one that expires after `expires`.
    private func pull(_ subscription: String, _ info: SubscriptionInfo, batch: Int, expires: Duration?) async throws -> [DeliveredMessage] {
        let connection = try await client.connection()
        var request: [String: JSONValue] = ["batch": .number(Double(batch))]
        if let expires { request["expires"] = .number(Double(expires.nimbusNanoseconds)) } else { request["no_wait"] = true }
        let replies = try await connection.requestStream("$JS.API.CONSUMER.MSG.NEXT.\(stream(info.topic)).\(Self.encode(subscription))",
                                                         payload: ByteBuffer(bytes: try JSONEncoder().encode(JSONValue.object(request))), ownSubscription: true)
        defer { replies.cancel() }
        var delivered: [DeliveredMessage] = []
        let deadline = ContinuousClock.now + (expires ?? .zero) + configuration.requestTimeout
        while delivered.count < batch {
            guard let message = try await replies.next(timeout: deadline - ContinuousClock.now) else { break }
            if let status = message.status {
                switch status {
                case 404, 408: return delivered   // no messages / the pull expired
                case 409 where (message.statusDescription ?? "").lowercased().contains("deleted"):
                    _ = subscriptions.withLock { $0.removeValue(forKey: subscription) }
                    throw NimbusError(.notFound, "subscription '\(subscription)' was deleted")
                case 100: continue   // heartbeat
                default:
                    if delivered.isEmpty { throw NimbusError(.unavailable, "JetStream refused the pull on '\(subscription)': \(status) \(message.statusDescription ?? "")") }
                    return delivered
                }
            }
            guard let receipt = message.replyTo, let ack = AckSubject(receipt) else { continue }
            if info.maxDeliveries > 0, let deadLetter = info.deadLetter, ack.delivered > info.maxDeliveries {
                try await moveToDeadLetter(subscription: subscription, headers: message.headerFields.map { ($0.name, $0.value) }, body: message.payload,
                                           ack: ack, receipt: receipt, to: deadLetter)
                continue
            }
            var attributes: [String: String] = [:]
            for field in message.headerFields where !field.name.lowercased().hasPrefix(Self.reservedHeaderPrefix) {
                attributes[field.name] = attributes[field.name] ?? field.value
            }
            delivered.append(DeliveredMessage(id: String(ack.streamSequence), receipt: receipt, body: message.payload, attributes: attributes,
                                              orderingKey: nil, deliveryAttempt: ack.delivered,
                                              publishedAt: Date(timeIntervalSince1970: Double(ack.timestamp) / 1e9)))
        }
        return delivered
    }

    /// Publishes a copy to the dead-letter topic (if it exists), then terminates the original.
    private func moveToDeadLetter(subscription: String, headers: [(String, String)], body: ByteBuffer, ack: AckSubject, receipt: String, to topic: String) async throws {
        let connection = try await client.connection()
        let marks = DeadLetterAttribute.marking([:], subscription: subscription, messageID: String(ack.streamSequence), deliveries: ack.delivered - 1)
        let copy = headers.filter { !$0.0.lowercased().hasPrefix(Self.reservedHeaderPrefix) } + marks.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        do {
            let reply = try await connection.request(subject(topic), payload: body, headers: copy, timeout: configuration.requestTimeout)
            if let error = try? JSONValue.parse(Data(reply.payload.readableBytesView))["error"] { throw Self.error(error, "PUB") }
        } catch let error as NimbusError where error.code == .notFound {
            // No dead-letter stream: the message is dropped, as the policy asked for it to leave the subscription.
        }
        try await settle(receipt, "+TERM")
    }

    /// `+ACK`, `-NAK`, `+TERM` or `+WPI`, sent as a request so the server confirms it.
    private func settle(_ receipt: String, _ body: String) async throws {
        guard AckSubject(receipt) != nil else { throw NimbusError(.failedPrecondition, "'\(receipt.prefix(60))' is not a JetStream receipt") }
        let connection = try await client.connection()
        do {
            _ = try await connection.request(receipt, payload: ByteBuffer(string: body), timeout: configuration.requestTimeout)
        } catch let error as NimbusError where error.code == .notFound {
            throw NimbusError(.failedPrecondition, "the delivery \(receipt.prefix(80)) is no longer pending (its consumer is gone)", underlying: error)
        }
    }

    public func ack(_ receipts: [String], on subscription: String) async throws {
        for receipt in receipts {
            keepers.stop(receipt)
            try await settle(receipt, "+ACK")
        }
    }

    public func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws {
        for receipt in receipts {
            keepers.stop(receipt)
            switch disposition {
            case .requeue(let delay):
                try await settle(receipt, delay > .zero ? "-NAK {\"delay\": \(delay.nimbusNanoseconds)}" : "-NAK")
            case .deadLetter:
                let info = try await lookup(subscription)
                guard let deadLetter = info.deadLetter, let ack = AckSubject(receipt) else {
                    throw NimbusError(.failedPrecondition, "subscription '\(subscription)' has no dead-letter policy; nack to requeue, or create it with one")
                }
                let stored = try await api("STREAM.MSG.GET.\(ack.stream)", .object(["seq": .number(Double(ack.streamSequence))]))
                let body = Data(base64Encoded: stored["message"]?["data"]?.stringValue ?? "") ?? Data()
                var headers: [(String, String)] = []
                if let block = stored["message"]?["hdrs"]?.stringValue, let decoded = Data(base64Encoded: block) {
                    var message = NATSMessage(subject: "", sid: "", replyTo: nil, status: nil, statusDescription: nil, payload: ByteBuffer(), headerFields: [])
                    try NATSOperationDecoder.parseHeaders(String(decoding: decoded, as: UTF8.self), into: &message)
                    headers = message.headerFields.map { ($0.name, $0.value) }
                }
                try await moveToDeadLetter(subscription: subscription, headers: headers, body: ByteBuffer(bytes: body),
                                           ack: AckSubject(copying: ack, delivered: ack.delivered + 1), receipt: receipt, to: deadLetter)
            }
        }
    }

    /// `+WPI` resets the lease to the ack wait; for a longer deadline it is repeated (every quarter of the ack wait, so a
    /// process that stalls for up to three quarters of it keeps the lease) until then.
    public func extendDeadline(_ receipts: [String], on subscription: String, to deadline: Duration) async throws {
        let info = try await lookup(subscription)
        for receipt in receipts {
            try await settle(receipt, "+WPI")
            if deadline > info.ackWait {
                let interval = info.ackWait / 4, end = ContinuousClock.now + deadline - info.ackWait
                keepers.start(receipt) {
                    while ContinuousClock.now < end {
                        try await Task.sleep(for: interval)
                        try await self.settle(receipt, "+WPI")
                    }
                }
            }
        }
    }

    public func close() async throws {
        keepers.stopAll()
        try await client.close()
    }
}

// MARK: Request/reply (core NATS)

extension NATSJetStreamMessagingDriver: RequestReplyDriver {
    /// The headers a responder's failure travels in (those of the NATS micro-service protocol).
    static let errorHeader = "Nats-Service-Error", errorCodeHeader = "Nats-Service-Error-Code"

    /// The numeric code NATS micro services send with an error (HTTP's numbers).
    static func serviceErrorCode(_ code: NimbusError.Code) -> Int {
        switch code {
        case .invalidArgument: 400
        case .unauthenticated: 401
        case .permissionDenied: 403
        case .notFound: 404
        case .alreadyExists: 409
        case .failedPrecondition: 412
        case .resourceExhausted: 429
        case .unimplemented: 501
        case .unavailable: 503
        case .deadlineExceeded: 504
        default: 500
        }
    }

    /// Core NATS request/reply on the subject as given (not under the JetStream subject prefix), so
    /// it interoperates with any NATS service; attributes travel as headers.
    public func request(_ message: Message, on subject: String, timeout: Duration) async throws -> Message {
        let connection = try await client.connection()
        let reply = try await connection.request(subject, payload: message.body, headers: try Self.headers(message.attributes), timeout: timeout)
        var attributes: [String: String] = [:]
        var failure: (code: String?, text: String)?
        for field in reply.headerFields {
            switch field.name.lowercased() {
            case Self.errorHeader.lowercased(): failure = (failure?.code, field.value)
            case Self.errorCodeHeader.lowercased(): failure = (field.value, failure?.text ?? "")
            default:
                if !field.name.lowercased().hasPrefix(Self.reservedHeaderPrefix) { attributes[field.name] = attributes[field.name] ?? field.value }
            }
        }
        if let failure {
            // "failedPrecondition: the cart is empty" from a Nimbus responder; any text (and the numeric code) from another.
            let text = failure.text
            let named = text.split(separator: ":", maxSplits: 1).first.flatMap { NimbusError.Code(name: String($0)) }
            let message = named == nil ? text : String(text.drop(while: { $0 != ":" }).dropFirst()).trimmingCharacters(in: .whitespaces)
            throw NimbusError(named ?? .internal, "the responder on \(subject) failed\(failure.code.map { " (\($0))" } ?? ""): \(message)")
        }
        return Message(body: reply.payload, attributes: attributes)
    }

    public func serve(_ subject: String, queueGroup: String?, maxConcurrent: Int,
                      _ handler: @escaping @Sendable (Message) async throws -> Message) async throws -> any MessagingResponder {
        let connection = try await client.connection()
        let requests = try await connection.subscribe(subject, queueGroup: queueGroup)
        return NATSResponder(subject: subject, requests: requests, connection: connection, maxConcurrent: maxConcurrent, handler: handler, logger: logger)
    }
}

/// Answers the requests of one subscription, up to `maxConcurrent` at a time.
final class NATSResponder: MessagingResponder {
    let subject: String
    private let requests: NATSReplies
    private let task: Task<Void, Never>

    init(subject: String, requests: NATSReplies, connection: NATSConnection, maxConcurrent: Int,
         handler: @escaping @Sendable (Message) async throws -> Message, logger: Logger) {
        self.subject = subject
        self.requests = requests
        task = Task {
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                while true {
                    let next: NATSMessage?
                    do { next = try await requests.next(timeout: .seconds(3600)) } catch { break }
                    guard let request = next else { if requests.isFinished { break } else { continue } }
                    if running >= maxConcurrent { await group.next(); running -= 1 }
                    running += 1
                    group.addTask {
                        guard let replyTo = request.replyTo else { return }
                        var attributes: [String: String] = [:]
                        for field in request.headerFields where !field.name.lowercased().hasPrefix(NATSJetStreamMessagingDriver.reservedHeaderPrefix) {
                            attributes[field.name] = attributes[field.name] ?? field.value
                        }
                        do {
                            let answer = try await handler(Message(body: request.payload, attributes: attributes))
                            try await connection.publish(replyTo, payload: answer.body, headers: try NATSJetStreamMessagingDriver.headers(answer.attributes))
                        } catch {
                            let failure = error as? NimbusError ?? NimbusError(.internal, "\(type(of: error))")
                            let text = "\(failure.code.description): \(failure.message)".replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
                            try? await connection.publish(replyTo, payload: ByteBuffer(), headers: [
                                (NATSJetStreamMessagingDriver.errorHeader, text), (NATSJetStreamMessagingDriver.errorCodeHeader, String(NATSJetStreamMessagingDriver.serviceErrorCode(failure.code))),
                            ])
                            logger.debug("NATS responder handler failed", metadata: ["subject": "\(request.subject)", "error": "\(failure.code.description)"])
                        }
                    }
                }
                await group.waitForAll()
            }
        }
    }

    func stop() async {
        requests.cancel()
        await task.value
    }
}

/// The metadata in a JetStream ack subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>`
/// (or the longer form with a domain and an account hash first).
struct AckSubject: Sendable {
    var stream: String
    var delivered: Int
    var streamSequence: Int64
    var timestamp: Int64

    init?(_ subject: String) {
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard tokens.count >= 9, tokens[0] == "$JS", tokens[1] == "ACK" else { return nil }
        let base = tokens.count == 9 ? 2 : 4
        guard tokens.count >= base + 7, let delivered = Int(tokens[base + 2]), let sequence = Int64(tokens[base + 3]),
              let timestamp = Int64(tokens[base + 5]) else { return nil }
        self.stream = tokens[base]
        self.delivered = delivered
        self.streamSequence = sequence
        self.timestamp = timestamp
    }

    init(copying other: AckSubject, delivered: Int) {
        self = other
        self.delivered = delivered
    }
}

/// The tasks that keep extended leases alive, one per receipt.
final class LeaseKeepers: Sendable {
    private let tasks = Mutex<[String: Task<Void, Never>]>([:])

    func start(_ receipt: String, _ body: @escaping @Sendable () async throws -> Void) {
        let task = Task { _ = try? await body() }
        tasks.withLock { $0.updateValue(task, forKey: receipt) }?.cancel()
    }

    func stop(_ receipt: String) { tasks.withLock { $0.removeValue(forKey: receipt) }?.cancel() }

    func stopAll() {
        let all = tasks.withLock { tasks -> [Task<Void, Never>] in
            defer { tasks.removeAll() }
            return Array(tasks.values)
        }
        for task in all { task.cancel() }
    }
}

/// A NATS connection opened on first use and again after it drops.
public final class NATSClient: Sendable {
    /// Where it connects.
    public let configuration: NATSConnection.Configuration
    private let lazy: LazyConnection<NATSConnection>

    init(configuration: NATSConnection.Configuration, logger: Logger) {
        self.configuration = configuration
        self.lazy = LazyConnection(endpoint: "NATS at \(configuration.endpoint)", connect: { try await NATSConnection.connect(configuration, logger: logger) },
                                   isUsable: { $0.isActive }, close: { try await $0.close() })
    }

    /// The open connection, connecting first if there is none.
    public func connection() async throws -> NATSConnection { try await lazy.connection() }

    /// Closes the connection; later calls fail.
    public func close() async throws { try await lazy.close() }
}

extension URLOpenerRegistry where Resource == any MessagingDriver {
    /// Adds `nats://` and `tls://` (NATS over TLS) on JetStream: `nats://user:pass@host:4222?stream_prefix=APP_&subject_prefix=app`.
    /// Options: `stream_prefix`, `subject_prefix`, `dedup_window` (e.g. `2m`), `token=env:VARIABLE` (else the
    /// environment's `NATS_TOKEN`, if set).
    public func withNATS() -> Self {
        var copy = self
        copy.register("nats", "tls") { url in
            try url.options.validate(known: ["stream_prefix", "subject_prefix", "dedup_window", "token"], for: "\(url.scheme)://")
            var connection = NATSConnection.Configuration(host: url.host ?? "127.0.0.1", port: url.port ?? 4222, user: url.user, password: url.password)
            connection.token = try url.secret("token", environment: ProcessInfo.processInfo.environment, defaults: ["NATS_TOKEN"])
            if url.scheme == "tls" { connection.tls = .makeClientConfiguration() }
            var configuration = NATSJetStreamMessagingDriver.Configuration(connection: connection)
            if let prefix = url.options.string("stream_prefix") { configuration.streamPrefix = prefix }
            if let prefix = url.options.string("subject_prefix") { configuration.subjectPrefix = prefix }
            if let window = try url.options.duration("dedup_window") { configuration.deduplicationWindow = window }
            return NATSJetStreamMessagingDriver(configuration: configuration)
        }
        return copy
    }
}
