import ArgumentParser
import Foundation
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusMessagingKafka
import NimbusMessagingNATS
import NimbusMessagingPubSub
import NimbusMessagingRabbitMQ
import NimbusMessagingRedis
import NimbusMessagingSQLite
import NimbusMessagingSQS

/// `nimbus msg`: publish to and consume from topics by URL.
struct MessagingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "msg",
        abstract: "Publish and consume messages (sqlite://, mem://, redis://, nats://, sqs://).",
        subcommands: [Publish.self, Consume.self, Topics.self, CreateTopic.self, DeleteTopic.self, Subscribe.self, Unsubscribe.self]
    )

    /// Options every messaging subcommand takes.
    struct Connection: ParsableArguments {
        @Option(help: "Broker URL (settings key messaging.url, env NIMBUS_MESSAGING_URL; default sqlite://./.nimbus/messages.sqlite).")
        var url: String?

        @Option(help: "Settings file (.yaml, .yml or .json).")
        var config: String?

        static let openers = URLOpenerRegistry.messaging.withSQLite().withRedisStreams().withNATS().withSQS().withRabbitMQ().withKafka().withPubSub()

        func open() async throws -> Messaging {
            let url = try await DomainURL.resolve(url, key: "messaging.url", default: "sqlite://./.nimbus/messages.sqlite", config: config)
            return try await Messaging.open(url, openers: Self.openers)
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish BODY to TOPIC and print the message id.",
            discussion: "A missing topic is created, with a subscription of the same name when it has none, so that `nimbus msg consume TOPIC` reads it like a queue.")
        @OptionGroup var connection: Connection
        @Argument(help: "The topic.") var topic: String
        @Argument(help: "The body (UTF-8 text); '-' reads standard input.") var body: String
        @Option(name: .customLong("attribute"), help: "An attribute, name=value (repeatable).") var attributes: [String] = []
        @Option(name: .customLong("ordering-key"), help: "Deliver in order with other messages of this key.") var orderingKey: String?
        @Option(name: .customLong("dedup-id"), help: "Deliver once even if published again with this id.") var deduplicationID: String?
        @Option(help: "Hold the message this long before its first delivery: 500ms, 30s, 5m.") var delay: String?

        func run() async throws {
            var parsed: [String: String] = [:]
            for attribute in attributes {
                guard let equals = attribute.firstIndex(of: "="), equals != attribute.startIndex else {
                    throw ValidationError("--attribute '\(attribute)' is not name=value")
                }
                parsed[String(attribute[..<equals])] = String(attribute[attribute.index(after: equals)...])
            }
            let delay = try delay.map { try Duration.commandLine($0, flag: "delay") }
            let bytes = body == "-" ? ByteBuffer(bytes: FileHandle.standardInput.readAllBytes()) : ByteBuffer(string: body)
            let message = Message(body: bytes, attributes: parsed, orderingKey: orderingKey, deduplicationID: deduplicationID, delay: delay)
            let id = try await connection.open().closing { messaging in
                if try await messaging.createTopic(topic), try await messaging.subscriptions(of: topic).isEmpty {
                    try await messaging.createSubscription(topic, topic: topic)
                }
                return try await messaging.publish(message, to: topic)
            }
            print(id)
        }
    }

    struct Consume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print each message of TOPIC on its own line, acknowledging it after printing.",
            discussion: "Reads the subscription named like the topic unless --subscription names another (it is created if missing). Runs until --max messages or --timeout seconds without one.")
        @OptionGroup var connection: Connection
        @Argument(help: "The topic.") var topic: String
        @Option(help: "The subscription to read (default: the topic's name).") var subscription: String?
        @Option(help: "Stop after this many messages.") var max: Int?
        @Option(help: "Stop after this many seconds without a message.") var timeout: Double?
        @Flag(name: .customLong("no-ack"), help: "Do not acknowledge: messages are delivered again after their ack deadline.") var noAck = false
        @Flag(help: "Print the id, delivery attempt and attributes before each body.") var verbose = false

        func run() async throws {
            if let max, max < 1 { throw ValidationError("--max must be at least 1") }
            if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
            let name = subscription ?? topic
            try await connection.open().closing { messaging in
                try await messaging.createSubscription(name, topic: topic)
                let subscription = messaging.subscription(name, flowControl: .init(maxOutstandingMessages: 1, batchSize: 1, wait: .seconds(1)))
                var printed = 0
                var idleSince = ContinuousClock.now
                while max.map({ printed < $0 }) ?? true {
                    let wait = timeout.map { Duration.milliseconds(Int64($0 * 1000)) - (ContinuousClock.now - idleSince) } ?? .seconds(5)
                    if wait <= .zero { break }
                    guard let message = try await subscription.receive(maxMessages: 1, wait: min(wait, .seconds(5))).first else { continue }
                    idleSince = ContinuousClock.now
                    if verbose {
                        let attributes = message.attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                        FileHandle.standardOutput.write(Data("# \(message.id) attempt=\(message.deliveryAttempt) \(attributes)\n".utf8))
                    }
                    FileHandle.standardOutput.write(Data(message.body.readableBytesView) + Data("\n".utf8))
                    if noAck { try await message.nack(redeliverAfter: .zero) } else { try await message.ack() }
                    printed += 1
                }
            }
        }
    }

    struct Topics: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics and their subscriptions.")
        @OptionGroup var connection: Connection

        func run() async throws {
            try await connection.open().closing { messaging in
                for topic in try await messaging.topics() {
                    let subscriptions = try await messaging.subscriptions(of: topic)
                    print(subscriptions.isEmpty ? topic : "\(topic): \(subscriptions.joined(separator: ", "))")
                }
            }
        }
    }

    struct CreateTopic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create-topic", abstract: "Create TOPIC (no error if it exists).")
        @OptionGroup var connection: Connection
        @Argument(help: "The topic.") var topic: String

        func run() async throws {
            let created = try await connection.open().closing { try await $0.createTopic(topic) }
            print(created ? "created" : "exists")
        }
    }

    struct DeleteTopic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete-topic", abstract: "Delete TOPIC and its subscriptions.")
        @OptionGroup var connection: Connection
        @Argument(help: "The topic.") var topic: String

        func run() async throws {
            try await connection.open().closing { try await $0.deleteTopic(topic) }
            print("deleted")
        }
    }

    struct Subscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create SUBSCRIPTION of TOPIC (no error if it exists on that topic).")
        @OptionGroup var connection: Connection
        @Argument(help: "The topic.") var topic: String
        @Argument(help: "The subscription.") var subscription: String
        @Option(name: .customLong("ack-deadline"), help: "How long a received message stays leased: 30s, 5m.") var ackDeadline = "30s"
        @Option(name: .customLong("dead-letter"), help: "Move messages to this topic after --max-deliveries deliveries.") var deadLetter: String?
        @Option(name: .customLong("max-deliveries"), help: "Deliveries before a message is dead-lettered.") var maxDeliveries = 5
        @Flag(help: "Deliver messages with the same ordering key in order, one at a time.") var ordered = false

        func run() async throws {
            let deadline = try Duration.commandLine(ackDeadline, flag: "ack-deadline")
            let options = SubscriptionOptions(ackDeadline: deadline, deadLetter: deadLetter.map { DeadLetterPolicy(topic: $0, maxDeliveries: maxDeliveries) }, ordered: ordered)
            let created = try await connection.open().closing { try await $0.createSubscription(subscription, topic: topic, options: options) }
            print(created ? "created" : "exists")
        }
    }

    struct Unsubscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete SUBSCRIPTION and the messages waiting in it.")
        @OptionGroup var connection: Connection
        @Argument(help: "The subscription.") var subscription: String

        func run() async throws {
            try await connection.open().closing { try await $0.deleteSubscription(subscription) }
            print("deleted")
        }
    }
}
