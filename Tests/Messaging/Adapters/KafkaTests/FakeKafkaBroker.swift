import Foundation
import NIOCore
import NIOPosix
import NimbusCore
@testable import NimbusMessagingKafka
import Synchronization

/// A local Kafka broker for tests: it decodes every request with schemas read from Apache Kafka's
/// JSON definitions (the fixtures, not the client's generated tables), refuses what does not decode
/// exactly (unknown API, version out of range, bytes left over), records what it got, and answers
/// with what the test's handler returns — documented errors included. Like a real broker, it
/// handles one request of a connection at a time and answers in order (a waiting Fetch holds back
/// the requests behind it on that connection).
final class FakeKafkaBroker: Sendable {
    struct Request: Sendable {
        var apiKey: Int16
        var name: String
        var version: Int16
        var clientID: String?
        var body: KafkaStruct
        /// The frame as it came (header and body, without the size).
        var frame: ByteBuffer
        var correlation: Int32
    }

    /// What the handler may do with a request.
    enum Answer: Sendable {
        case respond(KafkaStruct)
        /// Answer in another version's format (ApiVersions' fallback to v0).
        case respondAs(version: Int16, KafkaStruct)
        case silence
        case close
        case raw(ByteBuffer)
    }

    static let definitions: [Int16: (request: KafkaSchema, response: KafkaSchema)] = {
        var byKey: [Int16: (KafkaSchema, KafkaSchema)] = [:]
        for schema in KafkaSchema.all where schema.name.hasSuffix("Request") {
            let request = try! KafkaDefinitions.load(schema.name)
            let response = try! KafkaDefinitions.load(String(schema.name.dropLast("Request".count)) + "Response")
            byKey[request.apiKey!] = (request, response)
        }
        return byKey
    }()

    let channel: any Channel
    private let state = Mutex<(requests: [Request], problems: [String])>(([], []))
    let handler: @Sendable (Request) async -> Answer

    var port: Int { channel.localAddress?.port ?? 0 }
    var requests: [Request] { state.withLock { $0.requests } }
    /// Requests that did not decode: each is a test failure.
    var problems: [String] { state.withLock { $0.problems } }

    private init(channel: any Channel, handler: @escaping @Sendable (Request) async -> Answer) {
        self.channel = channel
        self.handler = handler
    }

    static func start(_ handler: @escaping @Sendable (Request) async -> Answer) async throws -> FakeKafkaBroker {
        let box = Mutex<FakeKafkaBroker?>(nil)
        let lookup: @Sendable () -> FakeKafkaBroker? = { box.withLock { $0 } }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    let (frames, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
                    try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maximumSize: 64 << 20)))
                    try child.pipeline.syncOperations.addHandler(Connection(frames: continuation))
                    Task { await Self.serve(frames, on: child, broker: lookup) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let broker = FakeKafkaBroker(channel: channel, handler: handler)
        box.withLock { $0 = broker }
        return broker
    }

    func stop() async { try? await channel.close() }

    /// Reads a request frame by the definitions; returns the request, or records why it is wrong.
    func read(_ received: ByteBuffer) -> (Request, Int32)? {
        var frame = received
        guard let apiKey = frame.readInteger(as: Int16.self), let version = frame.readInteger(as: Int16.self),
              let correlation = frame.readInteger(as: Int32.self), let clientLength = frame.readInteger(as: Int16.self) else {
            note("a request header is cut short"); return nil
        }
        let clientID = clientLength >= 0 ? frame.readString(length: Int(clientLength)) : nil
        guard let (schema, _) = Self.definitions[apiKey] else { note("unknown API key \(apiKey)"); return nil }
        guard schema.validVersions.contains(version) else { note("\(schema.name) v\(version) is not a valid version"); return nil }
        do {
            if schema.flexibleVersions.contains(version) {
                let tags = try KafkaPrimitives.readUnsignedVarint(&frame, "header")
                if tags != 0 { note("\(schema.name): the header has tagged fields") }
            }
            let body = try schema.decode(&frame, version: version)
            if frame.readableBytes != 0 { note("\(schema.name) v\(version): \(frame.readableBytes) bytes after the fields") }
            let request = Request(apiKey: apiKey, name: schema.name, version: version, clientID: clientID, body: body, frame: received, correlation: correlation)
            state.withLock { $0.requests.append(request) }
            return (request, correlation)
        } catch {
            note("\(schema.name) v\(version) does not decode: \(error)")
            return nil
        }
    }

    func note(_ problem: String) { state.withLock { $0.problems.append(problem) } }

    func encode(_ body: KafkaStruct, for request: Request, version: Int16, correlation: Int32) throws -> ByteBuffer {
        let response = Self.definitions[request.apiKey]!.response
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(0))
        buffer.writeInteger(correlation)
        if request.apiKey != 18, response.flexibleVersions.contains(version) { KafkaPrimitives.writeUnsignedVarint(0, into: &buffer) }
        try response.encode(body, version: version, into: &buffer)
        buffer.setInteger(Int32(buffer.readableBytes - 4), at: 0)
        return buffer
    }

    /// Hands each frame of a connection to ``serve(_:on:broker:)``.
    final class Connection: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let frames: AsyncStream<ByteBuffer>.Continuation

        init(frames: AsyncStream<ByteBuffer>.Continuation) { self.frames = frames }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) { frames.yield(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { frames.finish(); context.fireChannelInactive() }
    }

    /// Answers a connection's requests one at a time, in order.
    static func serve(_ frames: AsyncStream<ByteBuffer>, on channel: any Channel, broker: @Sendable () -> FakeKafkaBroker?) async {
        for await frame in frames {
            guard let broker = broker(), let (request, correlation) = broker.read(frame) else { try? await channel.close(); return }
            do {
                switch await broker.handler(request) {
                case .respond(let body):
                    try await channel.writeAndFlush(try broker.encode(body, for: request, version: request.version, correlation: correlation))
                case .respondAs(let version, let body):
                    try await channel.writeAndFlush(try broker.encode(body, for: request, version: version, correlation: correlation))
                case .silence: break
                case .close: try? await channel.close(); return
                case .raw(let bytes): try await channel.writeAndFlush(bytes)
                }
            } catch {
                if channel.isActive { broker.note("the fake could not encode its answer to \(request.name): \(error)") }
                try? await channel.close()
                return
            }
        }
    }

    /// The ApiVersions answer of a broker speaking `versions` (the client's own schemas' ranges by default).
    static func apiVersions(_ versions: [Int16: ClosedRange<Int16>]? = nil) -> KafkaStruct {
        let ranges = versions ?? Dictionary(uniqueKeysWithValues: definitions.map { ($0.key, $0.value.request.validVersions.lowest...$0.value.request.validVersions.highest) })
        return ["ErrorCode": 0, "ApiKeys": .array(ranges.sorted { $0.key < $1.key }.map { key, range in
            .structure(["ApiKey": .int(Int64(key)), "MinVersion": .int(Int64(range.lowerBound)), "MaxVersion": .int(Int64(range.upperBound))])
        }), "ThrottleTimeMs": 0]
    }
}
