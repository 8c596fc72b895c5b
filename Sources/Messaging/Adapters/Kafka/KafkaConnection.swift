import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NimbusCore
import NimbusNetwork
import Synchronization

/// One connection to a Kafka broker: size-prefixed requests matched to their responses by
/// correlation id, API versions negotiated on connect (ApiVersions), SASL PLAIN or SCRAM.
///
/// ```swift
/// let connection = try await KafkaConnection.connect(.init(host: "127.0.0.1", port: 9092))
/// let metadata = try await connection.send(.metadataRequest, ["Topics": nil], highest: 12)
/// ```
public final class KafkaConnection: Sendable {
    /// SASL credentials.
    public struct SASL: Sendable {
        public enum Mechanism: String, Sendable { case plain = "PLAIN", scramSHA256 = "SCRAM-SHA-256", scramSHA512 = "SCRAM-SHA-512" }
        public var mechanism: Mechanism
        public var user: String
        public var password: Secret<String>
        public init(mechanism: Mechanism, user: String, password: Secret<String>) {
            self.mechanism = mechanism; self.user = user; self.password = password
        }
    }

    /// Where and how to connect.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// The client id every request carries.
        public var clientID: String
        /// TLS settings (verification on by default).
        public var tls: TLSConfiguration?
        public var sasl: SASL?
        public var connectTimeout: Duration
        /// How long a request may wait for its response.
        public var requestTimeout: Duration
        /// The largest response accepted.
        public var maximumResponseSize: Int

        public init(host: String = "127.0.0.1", port: Int = 9092, clientID: String = "nimbus", tls: TLSConfiguration? = nil, sasl: SASL? = nil,
                    connectTimeout: Duration = .seconds(10), requestTimeout: Duration = .seconds(30), maximumResponseSize: Int = 100 << 20) {
            self.host = host; self.port = port; self.clientID = clientID; self.tls = tls; self.sasl = sasl
            self.connectTimeout = connectTimeout; self.requestTimeout = requestTimeout; self.maximumResponseSize = maximumResponseSize
        }

        public var endpoint: String { "\(host):\(port)" }
    }

    let channel: any Channel
    let router: KafkaRouter
    let configuration: Configuration
    private let apiVersions = Mutex<[Int16: ClosedRange<Int16>]>([:])
    private let nextCorrelation = Atomic<Int32>(1)

    init(channel: any Channel, router: KafkaRouter, configuration: Configuration) {
        self.channel = channel
        self.router = router
        self.configuration = configuration
    }

    /// Whether the connection is open.
    public var isActive: Bool { channel.isActive }

    /// Connects, asks the broker which API versions it speaks, and authenticates.
    /// - Throws: `unavailable` when the broker cannot be reached; `unauthenticated` when SASL fails.
    public static func connect(_ configuration: Configuration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               logger: Logger = Logger(label: "nimbus.kafka")) async throws -> KafkaConnection {
        let endpoint = configuration.endpoint
        let router = KafkaRouter(endpoint: endpoint, logger: logger)
        let channel = try await ClientChannel.connect(
            .init(service: "Kafka", host: configuration.host, port: configuration.port),
            tls: configuration.tls, timeout: configuration.connectTimeout, eventLoopGroup: eventLoopGroup) { _ in
            [ByteToMessageHandler(KafkaFrameDecoder(maximumSize: configuration.maximumResponseSize)), KafkaChannelHandler(router: router)]
        }.channel
        let connection = KafkaConnection(channel: channel, router: router, configuration: configuration)
        do {
            try await withTimeLimit(configuration.connectTimeout, "the handshake with Kafka at \(endpoint)") {
                try await connection.negotiateVersions()
                if let sasl = configuration.sasl { try await connection.authenticate(sasl) }
            }
            return connection
        } catch {
            try? await channel.close()
            throw NimbusError.wrap(error, "connecting to Kafka at \(endpoint)")
        }
    }

    /// The versions of `apiKey` the broker speaks.
    public func brokerVersions(_ apiKey: Int16) -> ClosedRange<Int16>? { apiVersions.withLock { $0[apiKey] } }

    /// The highest version of `schema` both sides speak, at most `highest`.
    /// - Throws: `unimplemented` when there is none.
    public func version(for schema: KafkaSchema, highest: Int16) throws -> Int16 {
        guard let apiKey = schema.apiKey else { throw NimbusError(.invalidArgument, "\(schema.name) is not a request") }
        let ours = schema.validVersions.lowest...min(schema.validVersions.highest, highest)
        guard let theirs = brokerVersions(apiKey), ours.overlaps(theirs) else {
            throw NimbusError(.unimplemented, "the Kafka broker at \(configuration.endpoint) speaks no version of \(schema.name) this client does (\(ours))")
        }
        return min(ours.upperBound, theirs.upperBound)
    }

    /// Sends a request at the highest version both sides speak (at most `highest`) and returns its response.
    public func send(_ request: KafkaSchema, _ body: KafkaStruct, highest: Int16) async throws -> KafkaStruct {
        try await send(request, body, version: try version(for: request, highest: highest))
    }

    /// Sends a request at `version` and returns its response.
    /// - Throws: `deadlineExceeded` when no response comes within `timeout` (the request timeout by default);
    ///   `unavailable` when the connection drops.
    public func send(_ request: KafkaSchema, _ body: KafkaStruct, version: Int16, timeout: Duration? = nil) async throws -> KafkaStruct {
        guard let response = KafkaSchema.response(for: request) else { throw NimbusError(.invalidArgument, "\(request.name) has no response schema") }
        let correlation = nextCorrelation.wrappingAdd(1, ordering: .relaxed).oldValue
        var buffer = channel.allocator.buffer(capacity: 256)
        try KafkaFraming.writeRequest(request, body, version: version, correlationID: correlation, clientID: configuration.clientID, into: &buffer)
        let waiter = router.expect(correlation, schema: response, version: version)
        do {
            try await channel.writeAndFlush(buffer)
        } catch {
            router.forget(correlation)
            throw router.closedError ?? NimbusError(.unavailable, "the connection to Kafka at \(configuration.endpoint) is closed: \(error)", underlying: error)
        }
        do {
            return try await withTimeLimit(timeout ?? configuration.requestTimeout, "\(request.name) to Kafka at \(configuration.endpoint)") { try await waiter.value }
        } catch {
            router.forget(correlation)
            throw error
        }
    }

    private func negotiateVersions() async throws {
        // v3 carries the client's name; a broker that does not speak it answers in v0 with UNSUPPORTED_VERSION and its list.
        let reply = try await send(.apiVersionsRequest, ["ClientSoftwareName": "nimbus-swift", "ClientSoftwareVersion": "1.0"], version: 3,
                                   timeout: configuration.connectTimeout)
        let error = KafkaErrorCode(Int16(reply.int("ErrorCode")))
        guard error.rawValue == 0 || error.rawValue == 35 else { throw error.error("to ApiVersions") }
        var versions: [Int16: ClosedRange<Int16>] = [:]
        for key in reply.array("ApiKeys") {
            let low = Int16(key.int("MinVersion")), high = Int16(key.int("MaxVersion"))
            if low <= high { versions[Int16(key.int("ApiKey"))] = low...high }
        }
        apiVersions.withLock { $0 = versions }
    }

    private func authenticate(_ sasl: SASL) async throws {
        let handshake = try await send(.saslHandshakeRequest, ["Mechanism": .string(sasl.mechanism.rawValue)], highest: 1)
        let code = KafkaErrorCode(Int16(handshake.int("ErrorCode")))
        guard code.rawValue == 0 else {
            let offered = handshake["Mechanisms"]?.array.compactMap(\.string).joined(separator: ", ") ?? ""
            throw NimbusError(.unauthenticated, "Kafka at \(configuration.endpoint) does not offer SASL \(sasl.mechanism.rawValue) (it offers \(offered))")
        }
        switch sasl.mechanism {
        case .plain:
            _ = try await saslStep(Array("\0\(sasl.user)\0\(sasl.password.reveal())".utf8))
        case .scramSHA256, .scramSHA512:
            var scram = SCRAMClient(user: sasl.user, password: sasl.password, sha512: sasl.mechanism == .scramSHA512)
            let serverFirst = try await saslStep(scram.clientFirst())
            let clientFinal = try scram.clientFinal(serverFirst: serverFirst)
            let serverFinal = try await saslStep(clientFinal)
            try scram.verify(serverFinal: serverFinal)
        }
    }

    private func saslStep(_ bytes: [UInt8]) async throws -> [UInt8] {
        let reply = try await send(.saslAuthenticateRequest, ["AuthBytes": .bytes(ByteBuffer(bytes: bytes))], highest: 2)
        let code = KafkaErrorCode(Int16(reply.int("ErrorCode")))
        guard code.rawValue == 0 else {
            throw NimbusError(.unauthenticated, "Kafka at \(configuration.endpoint) refused the SASL credentials: \(reply.string("ErrorMessage") ?? code.name)")
        }
        return Array(reply.bytes("AuthBytes")?.readableBytesView ?? ByteBuffer().readableBytesView)
    }

    /// Closes the connection; waiting requests fail with `unavailable`.
    public func close() async throws {
        try? await channel.close()
    }
}

extension KafkaSchema {
    /// The response schema of a request schema.
    public static func response(for request: KafkaSchema) -> KafkaSchema? {
        guard request.name.hasSuffix("Request") else { return nil }
        let name = String(request.name.dropLast("Request".count)) + "Response"
        return all.first { $0.name == name }
    }
}

/// Splits the byte stream into size-prefixed frames.
struct KafkaFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maximumSize: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard size >= 4, Int(size) <= maximumSize else { throw KafkaProtocolError("a frame of \(size) bytes (the limit is \(maximumSize))") }
        guard buffer.readableBytes >= 4 + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(Self.wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }
}

/// One response slot, with what its response is read as.
final class KafkaWaiter: Sendable {
    let schema: KafkaSchema
    let version: Int16
    private let slot = OneShot<KafkaStruct>()

    init(schema: KafkaSchema, version: Int16) {
        self.schema = schema
        self.version = version
    }

    func complete(_ result: Result<KafkaStruct, any Error>) { slot.complete(result) }
    var value: KafkaStruct { get async throws { try await slot.value } }
}

/// Matches responses to waiting requests.
final class KafkaRouter: Sendable {
    let endpoint: String
    let logger: Logger
    private let state = Mutex<(waiting: [Int32: KafkaWaiter], closed: NimbusError?)>(([:], nil))

    init(endpoint: String, logger: Logger) {
        self.endpoint = endpoint
        self.logger = logger
    }

    var closedError: NimbusError? { state.withLock { $0.closed } }

    func expect(_ correlation: Int32, schema: KafkaSchema, version: Int16) -> KafkaWaiter {
        let waiter = KafkaWaiter(schema: schema, version: version)
        let closed = state.withLock { state -> NimbusError? in
            if let closed = state.closed { return closed }
            state.waiting[correlation] = waiter
            return nil
        }
        if let closed { waiter.complete(.failure(closed)) }
        return waiter
    }

    func forget(_ correlation: Int32) { _ = state.withLock { $0.waiting.removeValue(forKey: correlation) } }

    func received(_ frame: ByteBuffer) throws {
        var frame = frame
        guard let correlation = frame.getInteger(at: frame.readerIndex, as: Int32.self) else { throw KafkaProtocolError("a response without a header") }
        guard let waiter = state.withLock({ $0.waiting.removeValue(forKey: correlation) }) else {
            logger.debug("Kafka response for no waiting request", metadata: ["correlation": "\(correlation)"])
            return
        }
        do {
            _ = try KafkaFraming.readResponseHeader(&frame, flexible: KafkaFraming.responseHeaderIsFlexible(waiter.schema, version: waiter.version))
            var version = waiter.version
            // ApiVersions answers an unsupported version in v0 (error 35 and the broker's list).
            if waiter.schema.apiKey == 18, frame.getInteger(at: frame.readerIndex, as: Int16.self) == 35 { version = 0 }
            let body = try waiter.schema.decode(&frame, version: version)
            guard frame.readableBytes == 0 else {
                throw KafkaProtocolError("\(waiter.schema.name) v\(version) has \(frame.readableBytes) bytes after its fields")
            }
            waiter.complete(.success(body))
        } catch {
            waiter.complete(.failure(NimbusError(.internal, "Kafka at \(endpoint) sent a \(waiter.schema.name) that cannot be read: \(error)", underlying: error)))
        }
    }

    func closed(_ error: NimbusError) {
        let waiting = state.withLock { state -> [KafkaWaiter] in
            if state.closed == nil { state.closed = error }
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for waiter in waiting { waiter.complete(.failure(error)) }
    }
}

final class KafkaChannelHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let router: KafkaRouter

    init(router: KafkaRouter) { self.router = router }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do { try router.received(unwrapInboundIn(data)) }
        catch {
            router.closed(NimbusError(.unavailable, "Kafka at \(router.endpoint) broke the protocol: \(error)", underlying: error))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        router.closed(NimbusError(.unavailable, "the connection to Kafka at \(router.endpoint) was closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        router.closed(NimbusError(.unavailable, "the connection to Kafka at \(router.endpoint) failed: \(error)", underlying: error))
        context.close(promise: nil)
    }
}

/// The client side of SCRAM-SHA-256/512 (RFC 5802, RFC 7677), as Kafka uses it (no channel binding).
struct SCRAMClient {
    let user: String
    let password: Secret<String>
    let sha512: Bool
    let nonce: String
    private var clientFirstBare = ""
    private var expectedServerSignature: [UInt8] = []

    init(user: String, password: Secret<String>, sha512: Bool, nonce: String = Data((0..<24).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()) {
        self.user = user
        self.password = password
        self.sha512 = sha512
        self.nonce = nonce
    }

    static func saslName(_ name: String) -> String { name.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C") }

    mutating func clientFirst() -> [UInt8] {
        clientFirstBare = "n=\(Self.saslName(user)),r=\(nonce)"
        return Array("n,,\(clientFirstBare)".utf8)
    }

    mutating func clientFinal(serverFirst: [UInt8]) throws -> [UInt8] {
        let text = String(decoding: serverFirst, as: UTF8.self)
        var fields: [Character: String] = [:]
        for part in text.split(separator: ",") where part.count >= 2 && part.dropFirst().first == "=" {
            fields[part.first!] = String(part.dropFirst(2))
        }
        guard let serverNonce = fields["r"], serverNonce.hasPrefix(nonce), let saltText = fields["s"], let salt = Data(base64Encoded: saltText),
              let iterations = fields["i"].flatMap({ Int($0) }), iterations >= 4096 else {
            throw NimbusError(.unauthenticated, "the Kafka broker's SCRAM challenge is not valid (nonce, salt or iteration count)")
        }
        let withoutProof = "c=biws,r=\(serverNonce)"
        let authMessage = Array("\(clientFirstBare),\(text),\(withoutProof)".utf8)
        let salted = hi(Array(password.reveal().utf8), salt: Array(salt), iterations: iterations)
        let clientKey = hmac(salted, Array("Client Key".utf8))
        let storedKey = hash(clientKey)
        let signature = hmac(storedKey, authMessage)
        let proof = zip(clientKey, signature).map { $0 ^ $1 }
        expectedServerSignature = hmac(hmac(salted, Array("Server Key".utf8)), authMessage)
        return Array("\(withoutProof),p=\(Data(proof).base64EncodedString())".utf8)
    }

    func verify(serverFinal: [UInt8]) throws {
        let text = String(decoding: serverFinal, as: UTF8.self)
        if text.hasPrefix("e=") { throw NimbusError(.unauthenticated, "Kafka refused the SCRAM proof: \(text.dropFirst(2))") }
        guard text.hasPrefix("v="), let signature = Data(base64Encoded: String(text.dropFirst(2).prefix { $0 != "," })),
              Array(signature) == expectedServerSignature else {
            throw NimbusError(.unauthenticated, "the Kafka broker's SCRAM signature does not match: it does not know the password")
        }
    }

    func hmac(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        sha512 ? Array(HMAC<SHA512>.authenticationCode(for: message, using: SymmetricKey(data: key)))
            : Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    func hash(_ bytes: [UInt8]) -> [UInt8] { sha512 ? Array(SHA512.hash(data: bytes)) : Array(SHA256.hash(data: bytes)) }

    /// Hi() of RFC 5802: PBKDF2 with HMAC as the PRF, one block.
    func hi(_ password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        var block = hmac(password, salt + [0, 0, 0, 1])
        var result = block
        for _ in 1..<iterations {
            block = hmac(password, block)
            for index in result.indices { result[index] ^= block[index] }
        }
        return result
    }
}
