import Crypto
import Foundation
import NIOCore
import NimbusAWS
import NimbusCore
import NimbusMessaging
import Synchronization

/// Messaging on Amazon SNS and SQS: a topic is an SNS topic, a subscription an SQS queue
/// subscribed to it with raw message delivery — AWS's own fan-out pattern.
///
/// Publishes go out as `PublishBatch` (ten per call); receives are `ReceiveMessage` long polls
/// (up to 20 s), leases the queue's visibility timeout (the ack deadline), acks `DeleteMessage`,
/// nacks and lease extensions `ChangeMessageVisibility`. The receive count SQS keeps is the
/// delivery attempt; past the subscription's `maxDeliveries` the driver publishes a copy to the
/// dead-letter topic and deletes the original (SQS's own redrive targets a queue, not a topic).
///
/// Each message carries a `nimbus-id` attribute so that the id `publish` returns is the id a
/// consumer sees (SQS gives the copy in each queue an id of its own). Bodies that are not text
/// SNS can carry travel base64-encoded (`nimbus-encoding: base64`). SNS allows ten attributes per
/// message, one of them `nimbus-id`; attribute names outside `[A-Za-z0-9-]` are escaped (`_hh`).
/// A subscription's options are tags of its queue (`nimbus-topic`, `nimbus-dead-letter`,
/// `nimbus-max-deliveries`). Names with `.` map as ``BrokerName/escapingDots(_:)`` says.
///
/// **FIFO** (`fifo: true`, `sqs://?fifo=true`): topics are SNS FIFO topics and subscriptions SQS
/// FIFO queues (names end in `.fifo`). A message's ordering key is its message group — one message
/// of a group is handed out at a time, in publish order — and its deduplication id (hashed to fit)
/// suppresses repeats for five minutes, the publish returning the first message's id. A message
/// without an ordering key is a group of its own (no order promised).
///
/// **Filter policies**: ``setFilterPolicy(_:on:scope:)`` makes SNS deliver to a subscription only
/// the messages whose attributes (or JSON body) match, in SNS's filter-policy language.
///
/// ```swift
/// let messaging = Messaging(driver: SQSMessagingDriver(aws: AWSClient(configuration: .init(region: "eu-west-1"))))
/// ```
public final class SQSMessagingDriver: MessagingDriver, Sendable {
    public var provider: String { "sqs" }
    public var capabilities: MessagingCapabilities {
        let common: MessagingCapabilities = [.durable, .deadLetters, .deliveryCount, .extendDeadline, .delayedRedelivery]
        return fifo ? common.union([.orderingKeys, .deduplication]) : common
    }
    /// Whether topics and subscriptions are FIFO (ordered groups, deduplication).
    public let fifo: Bool

    /// The AWS client underneath (signing, endpoints, credentials).
    public let aws: AWSClient
    private let topicARNs = Mutex<[String: String]>([:])
    private let queues = Mutex<[String: QueueInfo]>([:])
    /// What was received and not yet settled, for dead-lettering on demand (SQS cannot give a message back by its receipt).
    private let received = UnsettledDeliveries<(body: ByteBuffer, attributes: [String: String], id: String, count: Int, orderingKey: String?)>(limit: 100_000)

    struct QueueInfo: Sendable {
        var url: String
        var arn: String
        var topic: String
        var deadLetter: String?
        var maxDeliveries: Int
    }

    /// Uses `aws` for both services; `fifo` picks FIFO topics and queues. AWS calls are made once: `Messaging` retries.
    public init(aws: AWSClient, fifo: Bool = false) {
        self.aws = aws
        self.fifo = fifo
    }

    private var sns: AWS.SNS { AWS.SNS(client: aws) }
    private var sqs: AWS.SQS { AWS.SQS(client: aws) }

    // MARK: Names and attributes

    static func awsName(_ name: String) -> String { BrokerName.escapingDots(name) }
    static func portableName(_ name: String) -> String { BrokerName.unescapingDots(name) }
    /// The SNS topic or SQS queue name of a portable name (`.fifo` added in FIFO mode).
    func resourceName(_ name: String) -> String { Self.awsName(name) + (fifo ? ".fifo" : "") }
    /// The portable name of an SNS topic or SQS queue name; `nil` for one of the other kind (FIFO or standard).
    func portableName(ofResource name: String) -> String? {
        guard name.hasSuffix(".fifo") == fifo else { return nil }
        return Self.portableName(fifo ? String(name.dropLast(5)) : name)
    }

    /// `[A-Za-z0-9-]` as is, `_` as `__`, any other byte as `_hh`.
    static func attributeName(_ name: String) -> String {
        var result = ""
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                result.unicodeScalars.append(UnicodeScalar(byte))
            case UInt8(ascii: "_"): result += "__"
            default: result += "_" + String(byte, radix: 16).leftPadded(to: 2)
            }
        }
        return result
    }

    static func portableAttributeName(_ name: String) -> String {
        var bytes: [UInt8] = [], scalars = Array(name.utf8), index = 0
        while index < scalars.count {
            if scalars[index] == UInt8(ascii: "_"), index + 1 < scalars.count {
                if scalars[index + 1] == UInt8(ascii: "_") { bytes.append(UInt8(ascii: "_")); index += 2; continue }
                if index + 2 < scalars.count, let byte = UInt8(String(decoding: scalars[(index + 1)...(index + 2)], as: UTF8.self), radix: 16) {
                    bytes.append(byte); index += 3; continue
                }
            }
            bytes.append(scalars[index]); index += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether SNS and SQS carry `text` as a message body (XML 1.0 characters).
    static func isCarriable(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { scalar in
            let value = scalar.value
            return value == 0x9 || value == 0xA || value == 0xD || (0x20...0xD7FF).contains(value) || (0xE000...0xFFFD).contains(value) || value >= 0x10000
        }
    }

    // MARK: Topics

    private func topicARN(_ topic: String) async throws -> String {
        if let cached = topicARNs.withLock({ $0[topic] }) { return cached }
        let wanted = resourceName(topic)
        for arn in try await allTopicARNs() where arn.split(separator: ":").last.map(String.init) == wanted {
            topicARNs.withLock { $0[topic] = arn }
            return arn
        }
        throw NimbusError(.notFound, "topic '\(topic)' does not exist")
    }

    private func allTopicARNs() async throws -> [String] {
        var arns: [String] = [], next: String?
        repeat {
            let page = try await sns.listTopics(.init(nextToken: next), maxAttempts: 1)
            arns += (page.topics ?? []).compactMap(\.topicArn)
            next = page.nextToken
        } while next != nil
        return arns
    }

    public func createTopic(_ topic: String) async throws -> Bool {
        if (try? await topicARN(topic)) != nil { return false }
        let created = try await sns.createTopic(.init(name: resourceName(topic), attributes: fifo ? ["FifoTopic": "true", "ContentBasedDeduplication": "false"] : nil),
                                                maxAttempts: 1)
        guard let arn = created.topicArn else { throw NimbusError(.internal, "SNS CreateTopic returned no TopicArn") }
        topicARNs.withLock { $0[topic] = arn }
        return true
    }

    public func deleteTopic(_ topic: String) async throws {
        let arn = try await topicARN(topic)
        for subscription in try await subscriptions(of: topic) { try await deleteSubscription(subscription) }
        try await sns.deleteTopic(.init(topicArn: arn), maxAttempts: 1)
        _ = topicARNs.withLock { $0.removeValue(forKey: topic) }
    }

    public func topics() async throws -> [String] {
        try await allTopicARNs().compactMap { $0.split(separator: ":").last.flatMap { portableName(ofResource: String($0)) } }.sorted()
    }

    // MARK: Subscriptions

    /// The queue of `subscription`, with its topic and options (from its tags).
    private func queue(_ subscription: String) async throws -> QueueInfo {
        guard let info = try await queueIfPresent(subscription) else { throw NimbusError(.notFound, "subscription '\(subscription)' does not exist") }
        return info
    }

    private func queueIfPresent(_ subscription: String) async throws -> QueueInfo? {
        if let cached = queues.withLock({ $0[subscription] }) { return cached }
        let url: String
        do {
            guard let found = try await sqs.getQueueUrl(.init(queueName: resourceName(subscription)), maxAttempts: 1).queueUrl else { return nil }
            url = found
        } catch let error as NimbusError where error.code == .notFound {
            return nil
        }
        let tags = try await aws.call("sqs", "ListQueueTags", input: ["QueueUrl": .string(url)], maxAttempts: 1).output["Tags"]?.objectValue ?? [:]
        let attributes = try await sqs.getQueueAttributes(.init(queueUrl: url, attributeNames: [.queueArn]), maxAttempts: 1).attributes ?? [:]
        guard let topic = tags["nimbus-topic"]?.stringValue, let arn = attributes["QueueArn"] else {
            throw NimbusError(.failedPrecondition, "queue '\(resourceName(subscription))' exists but is not a Nimbus subscription (no nimbus-topic tag)")
        }
        let info = QueueInfo(url: url, arn: arn, topic: topic, deadLetter: tags["nimbus-dead-letter"]?.stringValue,
                             maxDeliveries: Int(tags["nimbus-max-deliveries"]?.stringValue ?? "") ?? 0)
        queues.withLock { $0[subscription] = info }
        return info
    }

    public func createSubscription(_ subscription: String, topic: String, options: SubscriptionOptions) async throws -> Bool {
        let topicArn = try await topicARN(topic)
        if let existing = try await queueIfPresent(subscription) {
            guard existing.topic == topic else {
                throw NimbusError(.alreadyExists, "subscription '\(subscription)' already exists on topic '\(existing.topic)', not '\(topic)'")
            }
            return false
        }
        let seconds = Int((options.ackDeadline + .milliseconds(999)).components.seconds)
        var tags = ["nimbus-topic": topic]
        if let deadLetter = options.deadLetter {
            tags["nimbus-dead-letter"] = deadLetter.topic
            tags["nimbus-max-deliveries"] = String(deadLetter.maxDeliveries)
        }
        var queueAttributes = ["VisibilityTimeout": String(seconds)]
        if fifo { queueAttributes.merge(["FifoQueue": "true", "ContentBasedDeduplication": "false"]) { _, new in new } }
        let created = try await sqs.createQueue(.init(queueName: resourceName(subscription), attributes: queueAttributes, tags: tags), maxAttempts: 1)
        guard let url = created.queueUrl else { throw NimbusError(.internal, "SQS CreateQueue returned no QueueUrl") }
        let attributes = try await sqs.getQueueAttributes(.init(queueUrl: url, attributeNames: [.queueArn]), maxAttempts: 1).attributes ?? [:]
        guard let queueArn = attributes["QueueArn"] else { throw NimbusError(.internal, "SQS returned no QueueArn for \(url)") }
        // Let the topic (and only it) deliver to the queue.
        let policy: JSONValue = ["Version": "2012-10-17", "Statement": [[
            "Effect": "Allow", "Principal": ["Service": "sns.amazonaws.com"], "Action": "sqs:SendMessage", "Resource": .string(queueArn),
            "Condition": ["ArnEquals": ["aws:SourceArn": .string(topicArn)]],
        ]]]
        try await sqs.setQueueAttributes(.init(attributes: ["Policy": String(decoding: try JSONEncoder().encode(policy), as: UTF8.self)], queueUrl: url), maxAttempts: 1)
        _ = try await sns.subscribe(.init(protocol: "sqs", topicArn: topicArn, attributes: ["RawMessageDelivery": "true"], endpoint: queueArn,
                                          returnSubscriptionArn: true), maxAttempts: 1)
        queues.withLock {
            $0[subscription] = QueueInfo(url: url, arn: queueArn, topic: topic, deadLetter: options.deadLetter?.topic, maxDeliveries: options.deadLetter?.maxDeliveries ?? 0)
        }
        return true
    }

    public func deleteSubscription(_ subscription: String) async throws {
        let info = try await queue(subscription)
        if let topicArn = try? await topicARN(info.topic) {
            for entry in try await snsSubscriptions(topicArn) where entry.endpoint == info.arn {
                try await sns.unsubscribe(.init(subscriptionArn: entry.arn), maxAttempts: 1)
            }
        }
        try await sqs.deleteQueue(.init(queueUrl: info.url), maxAttempts: 1)
        _ = queues.withLock { $0.removeValue(forKey: subscription) }
    }

    private func snsSubscriptions(_ topicArn: String) async throws -> [(arn: String, endpoint: String)] {
        var result: [(String, String)] = [], next: String?
        repeat {
            var input: [String: JSONValue] = ["TopicArn": .string(topicArn)]
            if let next { input["NextToken"] = .string(next) }
            let page = try await aws.call("sns", "ListSubscriptionsByTopic", input: .object(input), maxAttempts: 1).output
            for entry in page["Subscriptions"]?.arrayValue ?? [] where entry["Protocol"]?.stringValue == "sqs" {
                if let arn = entry["SubscriptionArn"]?.stringValue, let endpoint = entry["Endpoint"]?.stringValue { result.append((arn, endpoint)) }
            }
            next = page["NextToken"]?.stringValue
        } while next != nil
        return result
    }

    public func subscriptions(of topic: String) async throws -> [String] {
        try await snsSubscriptions(try await topicARN(topic)).compactMap { $0.endpoint.split(separator: ":").last.flatMap { portableName(ofResource: String($0)) } }.sorted()
    }

    // MARK: Publishing

    public func publish(_ messages: [Message], to topic: String) async throws -> [String] {
        let arn = try await topicARN(topic)
        var ids: [String] = []
        var start = 0
        while start < messages.count {
            let batch = Array(messages[start..<min(start + 10, messages.count)])
            var entries: [AWS.SNS.PublishBatchRequestEntry] = []
            for (index, message) in batch.enumerated() {
                // A repeated deduplication id must answer the first publish's id: derive it from the id.
                let id = fifo && message.deduplicationID != nil ? Self.deduplicationID(topic: topic, message.deduplicationID!) : IDGenerator.shared.ulid().description
                var entry = try Self.entry(message, id: id, index: index)
                if fifo {
                    entry.messageGroupId = try Self.groupID(message.orderingKey, id: id)
                    entry.messageDeduplicationId = id
                }
                entries.append(entry)
                ids.append(id)
            }
            let answer = try await sns.publishBatch(.init(publishBatchRequestEntries: entries, topicArn: arn), maxAttempts: 1)
            if let failure = answer.failed?.first {
                let code: NimbusError.Code = failure.code == "NotFound" ? .notFound : (failure.senderFault ? .invalidArgument : .unavailable)
                throw NimbusError(code, "SNS refused message \(failure.id) of a batch to '\(topic)': \(failure.code) \(failure.message ?? "")")
            }
            start += batch.count
        }
        return ids
    }

    /// The group of an unkeyed message in FIFO mode starts with this (such messages have no ordering key when received).
    static let unkeyedGroupPrefix = "nimbus-unkeyed-"

    /// The FIFO message group of an ordering key: the key itself (SQS allows 128 characters of ASCII letters, digits and punctuation).
    static func groupID(_ orderingKey: String?, id: String) throws -> String {
        guard let key = orderingKey else { return unkeyedGroupPrefix + id }
        guard !key.isEmpty, key.utf8.count <= 128, key.utf8.allSatisfy({ (33...126).contains($0) }), !key.hasPrefix(unkeyedGroupPrefix) else {
            throw NimbusError(.invalidArgument, "an SQS FIFO ordering key is 1 to 128 characters of ASCII letters, digits and punctuation (not starting \(unkeyedGroupPrefix)); got '\(key.prefix(40))'")
        }
        return key
    }

    /// The message id (and SQS deduplication id) of a message published with a deduplication id: the same on every repeat.
    static func deduplicationID(topic: String, _ id: String) -> String {
        "dedup-" + SHA256.hash(data: Array("\(topic)\u{0}\(id)".utf8)).prefix(24).map { String(format: "%02x", $0) }.joined()
    }

    static func entry(_ message: Message, id: String, index: Int) throws -> AWS.SNS.PublishBatchRequestEntry {
        guard message.attributes.count <= 8 else {
            throw NimbusError(.invalidArgument, "SNS carries at most 10 attributes per message and Nimbus uses two; \(message.attributes.count) is too many")
        }
        var attributes: [String: AWS.SNS.MessageAttributeValue] = ["nimbus-id": .init(dataType: "String", stringValue: id)]
        for (name, value) in message.attributes {
            guard !value.isEmpty, isCarriable(value) else {
                throw NimbusError(.invalidArgument, "attribute '\(name.prefix(40))' must be non-empty text for SNS")
            }
            attributes[attributeName(name)] = .init(dataType: "String", stringValue: value)
        }
        let text = String(validating: message.body.readableBytesView, as: UTF8.self)
        let body: String
        if let text, !text.isEmpty, isCarriable(text) {
            body = text
        } else {
            body = Data(message.body.readableBytesView).base64EncodedString()
            attributes["nimbus-encoding"] = .init(dataType: "String", stringValue: "base64")
        }
        return .init(id: "m\(index)", message: body.isEmpty ? " " : body, messageAttributes: attributes)
    }

    // MARK: Receiving

    public func receive(from subscription: String, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        let info = try await queue(subscription)
        guard fifo else { return try await receiveOnce(subscription, info, maxMessages: min(10, maxMessages), wait: wait) }
        // SQS hands out several messages of one group in a batch; one at a time keeps a group's
        // later messages back until the earlier one is settled (and they count no extra receive).
        var delivered: [DeliveredMessage] = []
        var waitNext = wait
        while delivered.count < maxMessages {
            let one = try await receiveOnce(subscription, info, maxMessages: 1, wait: waitNext)
            if one.isEmpty { break }
            delivered += one
            waitNext = .zero
        }
        return delivered
    }

    private func receiveOnce(_ subscription: String, _ info: QueueInfo, maxMessages: Int, wait: Duration) async throws -> [DeliveredMessage] {
        let answer = try await sqs.receiveMessage(.init(queueUrl: info.url, attributeNames: [.all], maxNumberOfMessages: maxMessages,
                                                        messageAttributeNames: ["All"], waitTimeSeconds: min(20, Int(wait.components.seconds))),
                                                  maxAttempts: 1)
        var delivered: [DeliveredMessage] = []
        for message in answer.messages ?? [] {
            guard let handle = message.receiptHandle else { continue }
            let system = message.attributes ?? [:]
            let count = Int(system["ApproximateReceiveCount"] ?? "") ?? 1
            var attributes: [String: String] = [:]
            var encoding: String?, id = message.messageId ?? ""
            for (name, value) in message.messageAttributes ?? [:] {
                guard let text = value.stringValue else { continue }
                switch name {
                case "nimbus-id": id = text
                case "nimbus-encoding": encoding = text
                default: attributes[Self.portableAttributeName(name)] = text
                }
            }
            let text = message.body ?? ""
            let body: ByteBuffer
            if encoding == "base64" {
                guard let data = Data(base64Encoded: text) else { throw NimbusError(.dataLoss, "message \(id) says base64 but its body is not") }
                body = ByteBuffer(bytes: data)
            } else {
                body = ByteBuffer(string: text)
            }
            let group = system["MessageGroupId"]
            let orderingKey = group.flatMap { $0.hasPrefix(Self.unkeyedGroupPrefix) ? nil : $0 }
            if info.maxDeliveries > 0, let deadLetter = info.deadLetter, count > info.maxDeliveries {
                try await moveToDeadLetter(subscription, info, body: body, attributes: attributes, id: id, orderingKey: orderingKey, deliveries: count - 1,
                                           handle: handle, to: deadLetter)
                continue
            }
            remember(handle, body: body, attributes: attributes, id: id, count: count, orderingKey: orderingKey)
            let sent = Double(system["SentTimestamp"] ?? "").map { Date(timeIntervalSince1970: $0 / 1000) }
            delivered.append(DeliveredMessage(id: id, receipt: handle, body: body, attributes: attributes, orderingKey: orderingKey, deliveryAttempt: count,
                                              publishedAt: sent))
        }
        return delivered
    }

    private func remember(_ handle: String, body: ByteBuffer, attributes: [String: String], id: String, count: Int, orderingKey: String?) {
        received.remember((body, attributes, id, count, orderingKey), for: handle)
    }

    private func moveToDeadLetter(_ subscription: String, _ info: QueueInfo, body: ByteBuffer, attributes: [String: String], id: String,
                                  orderingKey: String?, deliveries: Int, handle: String, to topic: String) async throws {
        let marked = DeadLetterAttribute.marking(attributes, subscription: subscription, messageID: id, deliveries: deliveries)
        do { _ = try await publish([Message(body: body, attributes: marked, orderingKey: orderingKey)], to: topic) }
        catch let error as NimbusError where error.code == .notFound {}   // no dead-letter topic: the policy still takes the message out
        try await sqs.deleteMessage(.init(queueUrl: info.url, receiptHandle: handle), maxAttempts: 1)
        received.forget(handle)
    }

    public func ack(_ receipts: [String], on subscription: String) async throws {
        let info = try await queue(subscription)
        for receipt in receipts {
            try await sqs.deleteMessage(.init(queueUrl: info.url, receiptHandle: receipt), maxAttempts: 1)
            received.forget(receipt)
        }
    }

    public func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws {
        let info = try await queue(subscription)
        for receipt in receipts {
            switch disposition {
            case .requeue(let delay):
                let seconds = Int((delay + .milliseconds(999)).components.seconds)
                try await sqs.changeMessageVisibility(.init(queueUrl: info.url, receiptHandle: receipt, visibilityTimeout: min(43_200, seconds)), maxAttempts: 1)
                received.forget(receipt)
            case .deadLetter:
                guard let deadLetter = info.deadLetter else {
                    throw NimbusError(.failedPrecondition, "subscription '\(subscription)' has no dead-letter policy; nack to requeue, or create it with one")
                }
                guard let message = received[receipt] else {
                    throw NimbusError(.failedPrecondition, "this driver did not receive the message of that receipt (or it was settled); only messages it received (the latest \(received.limit)) can be dead-lettered")
                }
                try await moveToDeadLetter(subscription, info, body: message.body, attributes: message.attributes, id: message.id,
                                           orderingKey: message.orderingKey, deliveries: message.count, handle: receipt, to: deadLetter)
            }
        }
    }

    public func extendDeadline(_ receipts: [String], on subscription: String, to deadline: Duration) async throws {
        let info = try await queue(subscription)
        let seconds = min(43_200, Int((deadline + .milliseconds(999)).components.seconds))
        for receipt in receipts {
            try await sqs.changeMessageVisibility(.init(queueUrl: info.url, receiptHandle: receipt, visibilityTimeout: seconds), maxAttempts: 1)
        }
    }
}

extension SQSMessagingDriver {
    /// What a filter policy is matched against.
    public enum FilterPolicyScope: String, Sendable {
        /// The message's attributes (names as given to `publish`; the driver escapes them as it does on the wire).
        case messageAttributes = "MessageAttributes"
        /// The message body, parsed as JSON.
        case messageBody = "MessageBody"
    }

    /// Makes SNS deliver to `subscription` only the messages `policy` matches (SNS's filter-policy
    /// language: `{"kind": ["order"], "amount": [{"numeric": [">", 100]}]}`); `nil` removes it.
    /// - Throws: `notFound` for an unknown subscription; `invalidArgument` when SNS refuses the policy.
    public func setFilterPolicy(_ policy: JSONValue?, on subscription: String, scope: FilterPolicyScope = .messageAttributes) async throws {
        let info = try await queue(subscription)
        let topicArn = try await topicARN(info.topic)
        guard let entry = try await snsSubscriptions(topicArn).first(where: { $0.endpoint == info.arn }) else {
            throw NimbusError(.notFound, "subscription '\(subscription)' is not subscribed to topic '\(info.topic)' on SNS")
        }
        var text = ""
        if let policy {
            guard case .object(let fields) = policy else { throw NimbusError(.invalidArgument, "a filter policy is a JSON object") }
            // Attribute names travel escaped; the policy names them as the caller does.
            let keyed = scope == .messageAttributes ? JSONValue.object(Dictionary(uniqueKeysWithValues: fields.map { (Self.attributeName($0.key), $0.value) })) : policy
            text = String(decoding: try JSONEncoder().encode(keyed), as: UTF8.self)
            try await setSubscriptionAttribute("FilterPolicyScope", scope.rawValue, on: entry.arn)
        }
        try await setSubscriptionAttribute("FilterPolicy", text, on: entry.arn)
    }

    private func setSubscriptionAttribute(_ name: String, _ value: String, on arn: String) async throws {
        _ = try await aws.call("sns", "SetSubscriptionAttributes", input: ["SubscriptionArn": .string(arn), "AttributeName": .string(name),
                                                                          "AttributeValue": .string(value)], maxAttempts: 1)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

extension URLOpenerRegistry where Resource == any MessagingDriver {
    /// Adds `sqs://?region=eu-west-1&endpoint=http://127.0.0.1:5000&profile=P` (SNS topics fanning out to SQS queues);
    /// `fifo=true` uses FIFO topics and queues (ordering keys, deduplication).
    public func withSQS() -> Self {
        var copy = self
        copy.register("sqs") { url in
            try url.options.validate(known: ["region", "endpoint", "profile", "fifo"], for: "sqs://")
            let fifo = try url.options.bool("fifo") ?? false
            return SQSMessagingDriver(aws: AWSClient(configuration: AWSClient.Configuration(url: url)), fifo: fifo)
        }
        return copy
    }
}
