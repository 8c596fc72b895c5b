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
/// ```swift
/// let messaging = Messaging(driver: SQSMessagingDriver(aws: AWSClient(configuration: .init(region: "eu-west-1"))))
/// ```
public final class SQSMessagingDriver: MessagingDriver, Sendable {
    public var provider: String { "sqs" }
    public var capabilities: MessagingCapabilities { [.durable, .deadLetters, .deliveryCount, .extendDeadline, .delayedRedelivery] }

    /// The AWS client underneath (signing, endpoints, credentials).
    public let aws: AWSClient
    private let topicARNs = Mutex<[String: String]>([:])
    private let queues = Mutex<[String: QueueInfo]>([:])
    /// What was received and not yet settled, for dead-lettering on demand (SQS cannot give a message back by its receipt).
    private let received = Mutex<[String: (body: ByteBuffer, attributes: [String: String], id: String, count: Int)]>([:])
    static let receivedLimit = 100_000

    struct QueueInfo: Sendable {
        var url: String
        var arn: String
        var topic: String
        var deadLetter: String?
        var maxDeliveries: Int
    }

    /// Uses `aws` for both services. AWS calls are made once: `Messaging` retries.
    public init(aws: AWSClient) { self.aws = aws }

    private var sns: AWS.SNS { AWS.SNS(client: aws) }
    private var sqs: AWS.SQS { AWS.SQS(client: aws) }

    // MARK: Names and attributes

    static func awsName(_ name: String) -> String { BrokerName.escapingDots(name) }
    static func portableName(_ name: String) -> String { BrokerName.unescapingDots(name) }

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
        let wanted = Self.awsName(topic)
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
        let created = try await sns.createTopic(.init(name: Self.awsName(topic)), maxAttempts: 1)
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
        try await allTopicARNs().compactMap { $0.split(separator: ":").last.map { Self.portableName(String($0)) } }.sorted()
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
            guard let found = try await sqs.getQueueUrl(.init(queueName: Self.awsName(subscription)), maxAttempts: 1).queueUrl else { return nil }
            url = found
        } catch let error as NimbusError where error.code == .notFound {
            return nil
        }
        let tags = try await aws.call("sqs", "ListQueueTags", input: ["QueueUrl": .string(url)], maxAttempts: 1).output["Tags"]?.objectValue ?? [:]
        let attributes = try await sqs.getQueueAttributes(.init(queueUrl: url, attributeNames: [.queueArn]), maxAttempts: 1).attributes ?? [:]
        guard let topic = tags["nimbus-topic"]?.stringValue, let arn = attributes["QueueArn"] else {
            throw NimbusError(.failedPrecondition, "queue '\(Self.awsName(subscription))' exists but is not a Nimbus subscription (no nimbus-topic tag)")
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
        let created = try await sqs.createQueue(.init(queueName: Self.awsName(subscription), attributes: ["VisibilityTimeout": String(seconds)], tags: tags), maxAttempts: 1)
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
        try await snsSubscriptions(try await topicARN(topic)).compactMap { $0.endpoint.split(separator: ":").last.map { Self.portableName(String($0)) } }.sorted()
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
                let id = IDGenerator.shared.ulid().description
                entries.append(try Self.entry(message, id: id, index: index))
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
        let answer = try await sqs.receiveMessage(.init(queueUrl: info.url, attributeNames: [.all], maxNumberOfMessages: min(10, maxMessages),
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
            if info.maxDeliveries > 0, let deadLetter = info.deadLetter, count > info.maxDeliveries {
                try await moveToDeadLetter(subscription, info, body: body, attributes: attributes, id: id, deliveries: count - 1, handle: handle, to: deadLetter)
                continue
            }
            remember(handle, body: body, attributes: attributes, id: id, count: count)
            let sent = Double(system["SentTimestamp"] ?? "").map { Date(timeIntervalSince1970: $0 / 1000) }
            delivered.append(DeliveredMessage(id: id, receipt: handle, body: body, attributes: attributes, orderingKey: nil, deliveryAttempt: count, publishedAt: sent))
        }
        return delivered
    }

    private func remember(_ handle: String, body: ByteBuffer, attributes: [String: String], id: String, count: Int) {
        received.withLock { received in
            if received.count >= Self.receivedLimit { received.removeAll() }
            received[handle] = (body, attributes, id, count)
        }
    }

    private func moveToDeadLetter(_ subscription: String, _ info: QueueInfo, body: ByteBuffer, attributes: [String: String], id: String,
                                  deliveries: Int, handle: String, to topic: String) async throws {
        let marked = DeadLetterAttribute.marking(attributes, subscription: subscription, messageID: id, deliveries: deliveries)
        do { _ = try await publish([Message(body: body, attributes: marked)], to: topic) }
        catch let error as NimbusError where error.code == .notFound {}   // no dead-letter topic: the policy still takes the message out
        try await sqs.deleteMessage(.init(queueUrl: info.url, receiptHandle: handle), maxAttempts: 1)
        _ = received.withLock { $0.removeValue(forKey: handle) }
    }

    public func ack(_ receipts: [String], on subscription: String) async throws {
        let info = try await queue(subscription)
        for receipt in receipts {
            try await sqs.deleteMessage(.init(queueUrl: info.url, receiptHandle: receipt), maxAttempts: 1)
            _ = received.withLock { $0.removeValue(forKey: receipt) }
        }
    }

    public func nack(_ receipts: [String], on subscription: String, disposition: NackDisposition) async throws {
        let info = try await queue(subscription)
        for receipt in receipts {
            switch disposition {
            case .requeue(let delay):
                let seconds = Int((delay + .milliseconds(999)).components.seconds)
                try await sqs.changeMessageVisibility(.init(queueUrl: info.url, receiptHandle: receipt, visibilityTimeout: min(43_200, seconds)), maxAttempts: 1)
                _ = received.withLock { $0.removeValue(forKey: receipt) }
            case .deadLetter:
                guard let deadLetter = info.deadLetter else {
                    throw NimbusError(.failedPrecondition, "subscription '\(subscription)' has no dead-letter policy; nack to requeue, or create it with one")
                }
                guard let message = received.withLock({ $0[receipt] }) else {
                    throw NimbusError(.failedPrecondition, "this driver did not receive the message of that receipt (or it was settled); only messages it received can be dead-lettered")
                }
                try await moveToDeadLetter(subscription, info, body: message.body, attributes: message.attributes, id: message.id,
                                           deliveries: message.count, handle: receipt, to: deadLetter)
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

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

extension URLOpenerRegistry where Resource == any MessagingDriver {
    /// Adds `sqs://?region=eu-west-1&endpoint=http://127.0.0.1:5000&profile=P` (SNS topics fanning out to SQS queues).
    public func withSQS() -> Self {
        var copy = self
        copy.register("sqs") { url in
            SQSMessagingDriver(aws: AWSClient(configuration: AWSClient.Configuration(url: url)))
        }
        return copy
    }
}
