// Messaging throughput, the Nimbus side of Benchmarks/messaging-vs-python/run:
//   MessagingBenchmark nats-core URL N        N publishes of 128 B on one connection, then a flush
//   MessagingBenchmark nats-jetstream URL N   N JetStream publishes, each awaiting its ack; then N with 100 in flight
//   MessagingBenchmark nats-saturation URL N  the server's ceiling on this machine: N core publishes spread over 2, 4
//                                             and 8 connections at once, then N JetStream publishes over 2 and 4
//                                             connections with 100 in flight each (prints "SATURATION <case> <conns> <rate>")
//   MessagingBenchmark sqlite DIR N           N publish + receive + ack on the embedded broker, and the raw SQLite limit
//   MessagingBenchmark rabbitmq URL N         RabbitMQ: N unconfirmed publishes then a round trip; N confirmed
//                                             publishes, 100 in flight; N received and acked (prefetch 100)
//   MessagingBenchmark kafka-batch - N         N records (10 B key, 100 B value, one header) encoded into record
//                                             batches v2 of 1,000, CRC-32C included; MB/s of batch bytes
// Prints "RESULT <side> <case> <per second>".
import Foundation
import GRDB
import NIOCore
import NimbusCore
import NimbusMessaging
import NimbusMessagingKafka
import NimbusMessagingNATS
import NimbusMessagingRabbitMQ
import NimbusMessagingSQLite

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count == 3, let count = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: MessagingBenchmark nats-core|nats-jetstream|nats-saturation|sqlite|rabbitmq|kafka-batch URL|DIR|- N\n".utf8))
    exit(2)
}
let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 128)

@Sendable func rate(_ count: Int, _ body: () async throws -> Void) async throws -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = ContinuousClock.now - start
    return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

func natsConfiguration(_ url: String) -> NATSConnection.Configuration {
    let port = Int(url.split(separator: ":").last ?? "") ?? 4222
    return NATSConnection.Configuration(host: "127.0.0.1", port: port)
}

switch arguments[0] {
case "nats-core":
    let connection = try await NATSConnection.connect(natsConfiguration(arguments[1]))
    for _ in 0..<10_000 { try await connection.publish("bench.warmup", payload: payload) }
    try await connection.flush()
    // Off the main actor, as a service's code would be (top-level code runs on the main actor).
    let perSecond = try await Task.detached {
        try await rate(count) {
            for _ in 0..<count { try await connection.publish("bench.core", payload: payload) }
            try await connection.flush()
        }
    }.value
    print("RESULT nimbus nats-core-publish \(Int(perSecond))")
    try await connection.close()
case "nats-jetstream":
    let driver = NATSJetStreamMessagingDriver(configuration: .init(connection: natsConfiguration(arguments[1]), streamPrefix: "BENCH_", subjectPrefix: "benchjs"))
    let messaging = Messaging(driver: driver, configuration: .init(retry: .none))
    let topic = "js\(IDGenerator.shared.ulid())"
    try await messaging.createTopic(topic)
    try await messaging.createSubscription(topic, topic: topic)   // interest retention keeps messages only while a consumer exists
    for _ in 0..<500 { try await messaging.publish(Message(body: payload), to: topic) }
    let perSecond = try await Task.detached {
        try await rate(count) {
            for _ in 0..<count { try await messaging.publish(Message(body: payload), to: topic) }
        }
    }.value
    print("RESULT nimbus nats-jetstream-acked-publish \(Int(perSecond))")
    // 100 in flight: one publish call with a batch of 100 (the acks are awaited after all are sent).
    let batch = (0..<100).map { _ in Message(body: payload) }
    let pipelined = try await Task.detached {
        try await rate(count) {
            for _ in 0..<(count / 100) { try await messaging.publish(batch, to: topic) }
        }
    }.value
    print("RESULT nimbus nats-jetstream-acked-publish-100-in-flight \(Int(pipelined))")
    try await messaging.deleteTopic(topic)
    try await messaging.close()
case "nats-saturation":
    // Several connections publish at once until the server, not one client, is the bottleneck.
    for connections in [2, 4, 8] {
        var clients: [NATSConnection] = []
        for _ in 0..<connections { clients.append(try await NATSConnection.connect(natsConfiguration(arguments[1]))) }
        for client in clients {
            for _ in 0..<2_000 { try await client.publish("bench.warmup", payload: payload) }
            try await client.flush()
        }
        let share = count / connections
        let perSecond = try await rate(share * connections) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients {
                    group.addTask {
                        for _ in 0..<share { try await client.publish("bench.core", payload: payload) }
                        try await client.flush()
                    }
                }
                try await group.waitForAll()
            }
        }
        print("SATURATION nats-core-publish \(connections) \(Int(perSecond))")
        for client in clients { try await client.close() }
    }
    for connections in [2, 4] {
        let topic = "js\(IDGenerator.shared.ulid())"
        let clients = (0..<connections).map { _ in
            Messaging(driver: NATSJetStreamMessagingDriver(configuration: .init(connection: natsConfiguration(arguments[1]), streamPrefix: "BENCH_",
                                                                                   subjectPrefix: "benchjs")),
                      configuration: .init(retry: .none))
        }
        try await clients[0].createTopic(topic)
        try await clients[0].createSubscription(topic, topic: topic)
        let batch = (0..<100).map { _ in Message(body: payload) }
        for client in clients { for _ in 0..<5 { try await client.publish(batch, to: topic) } }
        let batches = count / 100 / connections
        let perSecond = try await rate(batches * 100 * connections) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients {
                    group.addTask { for _ in 0..<batches { try await client.publish(batch, to: topic) } }
                }
                try await group.waitForAll()
            }
        }
        print("SATURATION nats-jetstream-acked-publish-100-in-flight \(connections) \(Int(perSecond))")
        try await clients[0].deleteTopic(topic)
        for client in clients { try await client.close() }
    }
case "sqlite":
    let directory = arguments[1]
    let messaging = Messaging(driver: try SQLiteMessagingDriver(path: "\(directory)/queue-\(IDGenerator.shared.ulid()).sqlite"))
    try await messaging.createTopic("jobs")
    try await messaging.createSubscription("jobs", topic: "jobs")
    let subscription = messaging.subscription("jobs")
    let queue = try await rate(count) {
        for _ in 0..<count {
            try await messaging.publish(Message(body: payload), to: "jobs")
            guard let message = try await subscription.receive(wait: .zero).first else { fatalError("the benchmark's message was not received") }
            try await message.ack()
        }
    }
    try await messaging.close()
    // The limit: the same three transactions in raw SQLite (insert; select + update; delete), same file settings.
    var settings = GRDB.Configuration()
    settings.prepareDatabase { db in
        try db.execute(sql: "PRAGMA journal_mode = WAL")
        try db.execute(sql: "PRAGMA synchronous = NORMAL")
    }
    let raw = try DatabaseQueue(path: "\(directory)/raw-\(IDGenerator.shared.ulid()).sqlite", configuration: settings)
    try await raw.write { try $0.execute(sql: "CREATE TABLE q (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL, visible_at INTEGER NOT NULL, receipt TEXT)") }
    let body = Data(repeating: UInt8(ascii: "x"), count: 128)
    let limit = try await rate(count) {
        for _ in 0..<count {
            try await raw.write { try $0.execute(sql: "INSERT INTO q (body, visible_at) VALUES (?, 0)", arguments: [body]) }
            let seq = try await raw.write { db -> Int64 in
                guard let seq = try Int64.fetchOne(db, sql: "SELECT seq FROM q WHERE visible_at <= 1 ORDER BY seq LIMIT 1") else { return -1 }
                try db.execute(sql: "UPDATE q SET visible_at = 2, receipt = 'r' WHERE seq = ?", arguments: [seq])
                return seq
            }
            try await raw.write { try $0.execute(sql: "DELETE FROM q WHERE seq = ?", arguments: [seq]) }
        }
    }
    print("RESULT nimbus sqlite-queue-publish-receive-ack \(Int(queue))")
    print("RESULT raw-sqlite sqlite-queue-publish-receive-ack \(Int(limit))")
case "kafka-batch":
    let key = ByteBuffer(repeating: UInt8(ascii: "k"), count: 10), value = ByteBuffer(repeating: UInt8(ascii: "v"), count: 100)
    let header = KafkaRecord.Header("source", ByteBuffer(string: "bench"))
    let base: Int64 = 1_700_000_000_000
    let (megabytesPerSecond, bytes) = try await Task.detached { () -> (Double, Int) in
        var total = 0
        var buffer = ByteBuffer()
        buffer.reserveCapacity(200_000)
        let start = ContinuousClock.now
        for batchStart in stride(from: 0, to: count, by: 1000) {
            let records = (0..<min(1000, count - batchStart)).map { index in
                KafkaRecord(key: key, value: value, headers: [header], timestamp: base + Int64(index))
            }
            buffer.clear()
            KafkaRecordBatch(producerID: 1, producerEpoch: 0, baseSequence: Int32(batchStart), records: records).encode(into: &buffer)
            total += buffer.readableBytes
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return (Double(total) / 1_000_000 / seconds, total)
    }.value
    FileHandle.standardError.write(Data("kafka-batch: \(bytes) bytes\n".utf8))
    print("RESULT nimbus kafka-record-batch-encode-MBps \(String(format: "%.2f", megabytesPerSecond))")
case "rabbitmq":
    let driver = try await URLOpenerRegistry.messaging.withRabbitMQ().open(arguments[1])
    guard let rabbit = driver as? RabbitMQMessagingDriver else { fatalError("not a RabbitMQ URL") }
    // Unconfirmed publishes on one channel, then one round trip (everything before it has been read by the broker).
    let connection = try await AMQPConnection.connect(rabbit.configuration.connection)
    let channel = try await connection.openChannel()
    let scratch = try await channel.queueDeclare("", durable: false, exclusive: true).queue
    for _ in 0..<1000 { try await channel.publish(exchange: "", routingKey: scratch, body: payload) }
    _ = try await channel.queuePurge(scratch)
    let unconfirmed = try await Task.detached {
        try await rate(count) {
            for _ in 0..<count { try await channel.publish(exchange: "", routingKey: scratch, body: payload) }
            _ = try await channel.queueDeclare(scratch, passive: true)
        }
    }.value
    print("RESULT nimbus rabbitmq-publish-unconfirmed \(Int(unconfirmed))")
    try await connection.close()
    // Through the portable API: a fanout exchange and one quorum queue; persistent messages, publisher confirms.
    let messaging = Messaging(driver: rabbit, configuration: .init(retry: .none))
    let topic = "bench-\(IDGenerator.shared.ulid().description.lowercased())"
    try await messaging.createTopic(topic)
    try await messaging.createSubscription(topic, topic: topic)
    let batch = (0..<100).map { _ in Message(body: payload) }
    for _ in 0..<5 { try await messaging.publish(batch, to: topic) }
    let confirmed = try await Task.detached {
        try await rate(count) {
            for _ in 0..<(count / 100) { try await messaging.publish(batch, to: topic) }
        }
    }.value
    print("RESULT nimbus rabbitmq-confirmed-publish-100-in-flight \(Int(confirmed))")
    let subscription = messaging.subscription(topic)
    let total = count + 500
    let consumed = try await Task.detached {
        try await rate(total) {
            var received = 0
            while received < total {
                let messages = try await subscription.receive(maxMessages: 100, wait: .seconds(5))
                guard !messages.isEmpty else { fatalError("only \(received) of \(total) messages came") }
                for message in messages { try await message.ack() }
                received += messages.count
            }
        }
    }.value
    print("RESULT nimbus rabbitmq-receive-ack \(Int(consumed))")
    try await messaging.deleteSubscription(topic)
    try await messaging.deleteTopic(topic)
    try await messaging.close()
default:
    FileHandle.standardError.write(Data("unknown case \(arguments[0])\n".utf8))
    exit(2)
}
