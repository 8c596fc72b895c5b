import NIOCore
import NIOPosix
import NIOSSL
import NimbusCore

/// TLS for one client connection: the context made once from a `TLSConfiguration`, and the name sent
/// for SNI and checked against the certificate (none for an IP address, which SNI may not carry).
public struct ClientTLS: Sendable {
    /// The context every handshake of this connection uses.
    public let context: NIOSSLContext
    /// The host name for SNI and certificate checks; `nil` when the host is an IP address.
    public let serverHostname: String?

    /// Makes the context.
    /// - Throws: `invalidArgument` naming `service` and `host` when the settings are unusable
    ///   (an unreadable CA file, a key that does not match its certificate…).
    public init(_ configuration: TLSConfiguration, host: String, service: String) throws {
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw NimbusError(.invalidArgument, "invalid TLS settings for \(service) at \(host): \(error)", underlying: error)
        }
        serverHostname = ClientTLS.isIPAddress(host) ? nil : host
    }

    /// A new handler that runs the TLS handshake when it is added to a pipeline.
    public func makeHandler() throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
    }

    /// Whether `host` is an IPv4 or IPv6 literal.
    public static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host.trimmingCharacters(in: ["[", "]"]), port: 0)) != nil
    }
}

/// Opens the TCP connection every wire-protocol client starts with: connect with a time limit,
/// `TCP_NODELAY`, TLS first in the pipeline (or later, for protocols that upgrade in the clear
/// first), then the protocol's own decoder and handler.
///
/// ```swift
/// let connected = try await ClientChannel.connect(
///     ClientChannel.Endpoint(service: "RabbitMQ", host: "localhost", port: 5672, hint: "scripts/peers up rabbitmq"),
///     tls: nil, timeout: .seconds(10)) { _ in
///     [ByteToMessageHandler(AMQPFrameDecoder(maximumSize: 131_072)), AMQPChannelHandler(router: router)]
/// }
/// ```
public enum ClientChannel {
    /// Where to connect and how to name it in errors.
    public struct Endpoint: Sendable {
        /// The product name for messages ("RabbitMQ", "Kafka"…).
        public var service: String
        public var host: String
        public var port: Int
        /// What to try when the connection is refused ("is the server running (scripts/peers up nats)?").
        public var hint: String?

        public init(service: String, host: String, port: Int, hint: String? = nil) {
            self.service = service
            self.host = host
            self.port = port
            self.hint = hint
        }

        /// `host:port`.
        public var address: String { "\(host):\(port)" }
    }

    /// When the TLS handshake starts.
    public enum TLSStart: Sendable {
        /// As soon as TCP connects, before any protocol byte (RabbitMQ, Kafka, Redis).
        case immediately
        /// When the caller calls ``startTLS(on:_:)`` (NATS reads its `INFO` in the clear first).
        case later
    }

    /// A connected channel and the TLS it uses or will start.
    public struct Connected: Sendable {
        public let channel: any Channel
        public let tls: ClientTLS?
    }

    /// Connects and installs `handlers` (made on the channel's event loop, after TLS when it starts at once).
    /// - Throws: `invalidArgument` for unusable TLS settings; `unavailable` when the connection cannot be made in `timeout`.
    public static func connect(_ endpoint: Endpoint, tls: TLSConfiguration?, startTLS: TLSStart = .immediately, timeout: Duration,
                               eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               handlers: @escaping @Sendable (ClientTLS?) throws -> [any ChannelHandler]) async throws -> Connected {
        let clientTLS = try tls.map { try ClientTLS($0, host: endpoint.host, service: endpoint.service) }
        do {
            let channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(.nanoseconds(timeout.nimbusNanoseconds))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    do {
                        if let clientTLS, startTLS == .immediately {
                            try channel.pipeline.syncOperations.addHandler(try clientTLS.makeHandler())
                        }
                        try channel.pipeline.syncOperations.addHandlers(try handlers(clientTLS))
                        return channel.eventLoop.makeSucceededVoidFuture()
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port).get()
            return Connected(channel: channel, tls: clientTLS)
        } catch {
            let hint = endpoint.hint.map { "; \($0)" } ?? ""
            throw NimbusError(.unavailable, "cannot connect to \(endpoint.service) at \(endpoint.address): \(error)\(hint)", underlying: error)
        }
    }

    /// Starts TLS on a connection opened with ``TLSStart/later``: the handshake handler goes first in the pipeline.
    public static func startTLS(on channel: any Channel, _ tls: ClientTLS) async throws {
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(try tls.makeHandler(), position: .first)
        }.get()
    }
}
