import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NimbusCore
import NimbusEmail

/// How the driver signs in.
public enum SMTPAuthentication: Sendable {
    /// A password mechanism.
    public enum Mechanism: String, Sendable {
        case plain = "PLAIN"
        case login = "LOGIN"
    }

    /// No AUTH (a relay that trusts the network).
    case none
    /// A user and password, with PLAIN or LOGIN (`nil`: PLAIN when offered, else LOGIN).
    case password(user: String, password: Secret<String>, mechanism: Mechanism? = nil)
    /// OAuth 2.0 bearer tokens (Gmail, Microsoft 365): asked for on each new connection, so a cache may refresh them.
    case xoauth2(user: String, token: @Sendable () async throws -> Secret<String>)

    var isRequired: Bool {
        if case .none = self { return false }
        return true
    }
}

/// Settings of ``SMTPEmailDriver``.
public struct SMTPConfiguration: Sendable {
    /// Transport security.
    public enum Security: Sendable, Hashable {
        /// Plain text, then `STARTTLS` — `required: true` fails when the server does not offer it.
        case startTLS(required: Bool)
        /// TLS from the first byte (port 465, `smtps://`).
        case implicitTLS
        /// Never TLS (a local relay).
        case none
    }

    /// Time limits, RFC 5321 §4.5.3.2 by default.
    public struct Timeouts: Sendable, Hashable {
        public var connect: Duration
        /// The 220 greeting (RFC: 5 minutes).
        public var greeting: Duration
        /// EHLO, AUTH, MAIL, RCPT, DATA, RSET (RFC: 5 minutes for MAIL and RCPT, 2 for DATA).
        public var command: Duration
        /// The reply after the message's final dot (RFC: 10 minutes).
        public var dataEnd: Duration

        /// Creates time limits.
        public init(connect: Duration = .seconds(30), greeting: Duration = .seconds(300), command: Duration = .seconds(300), dataEnd: Duration = .seconds(600)) {
            self.connect = connect
            self.greeting = greeting
            self.command = command
            self.dataEnd = dataEnd
        }
    }

    public var host: String
    public var port: Int
    public var security: Security
    /// Trust roots, client certificates, minimum version. Certificates are verified by default.
    public var tls: TLSConfiguration
    public var authentication: SMTPAuthentication
    /// Send credentials without TLS (only on a network you trust).
    public var allowInsecureAuthentication: Bool
    /// The name given in EHLO (this machine's name by default).
    public var heloName: String
    public var timeouts: Timeouts
    /// Sessions kept open and reused (RSET between messages).
    public var maxConnections: Int
    /// A session idle longer than this is closed rather than reused (servers drop idle clients).
    public var idleTimeout: Duration
    /// Messages per session before it is closed and a new one opened.
    public var maxMessagesPerConnection: Int

    /// Creates settings.
    public init(host: String, port: Int = 587, security: Security = .startTLS(required: true), tls: TLSConfiguration = .makeClientConfiguration(),
                authentication: SMTPAuthentication = .none, allowInsecureAuthentication: Bool = false,
                heloName: String = ProcessInfo.processInfo.hostName.isEmpty ? "localhost" : ProcessInfo.processInfo.hostName,
                timeouts: Timeouts = Timeouts(), maxConnections: Int = 4, idleTimeout: Duration = .seconds(30), maxMessagesPerConnection: Int = 100) {
        self.host = host
        self.port = port
        self.security = security
        self.tls = tls
        self.authentication = authentication
        self.allowInsecureAuthentication = allowInsecureAuthentication
        self.heloName = heloName
        self.timeouts = timeouts
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.maxMessagesPerConnection = maxMessagesPerConnection
    }

    /// Reads `smtp://user:password@host:587?starttls=required` or `smtps://host:465`.
    ///
    /// Options: `starttls=required|opportunistic|never` (default `required`; `opportunistic` only for a loopback
    /// host without a user), `auth=plain|login|xoauth2` (the password is then the token), `ca=/path/ca.pem`,
    /// `helo=name`, `pool=4`, `timeout=30s` (connect and commands), `insecureAuth=true`.
    public init(url: OpenURL) throws {
        guard let host = url.host else { throw NimbusError(.invalidArgument, "an SMTP URL needs a host: smtp://user:password@smtp.example.com:587") }
        let implicit = url.scheme == "smtps"
        self.init(host: host, port: url.port ?? (implicit ? 465 : 587))
        let user = url.user
        if implicit {
            security = .implicitTLS
        } else {
            // Opportunistic STARTTLS can be stripped by anyone on the path: it is the default only for loopback
            // (a local relay or test server) and never with credentials; elsewhere TLS is required unless asked otherwise.
            switch url.options.string("starttls")?.lowercased() ?? (user == nil && OpenURL.isLoopback(host) ? "opportunistic" : "required") {
            case "required": security = .startTLS(required: true)
            case "opportunistic": security = .startTLS(required: false)
            case "never", "off", "none": security = .none
            case let other: throw NimbusError(.invalidArgument, "starttls must be required, opportunistic or never, not '\(other)'")
            }
        }
        if let ca = url.options.string("ca") { tls.trustRoots = .file(ca) }
        if let name = url.options.string("helo") { heloName = name }
        if let pool = try url.options.int("pool") {
            guard pool > 0 else { throw NimbusError(.invalidArgument, "pool must be at least 1") }
            maxConnections = pool
        }
        if let timeout = try url.options.duration("timeout") {
            timeouts.connect = timeout
            timeouts.command = timeout
            timeouts.greeting = timeout
        }
        allowInsecureAuthentication = try url.options.bool("insecureAuth") ?? false
        if let user {
            guard let password = url.password else { throw NimbusError(.invalidArgument, "the SMTP URL names user '\(user)' but no password (or token)") }
            switch url.options.string("auth")?.lowercased() {
            case nil, "auto": authentication = .password(user: user, password: password)
            case "plain": authentication = .password(user: user, password: password, mechanism: .plain)
            case "login": authentication = .password(user: user, password: password, mechanism: .login)
            case "xoauth2": authentication = .xoauth2(user: user, token: { password })
            case let other?: throw NimbusError(.invalidArgument, "auth must be plain, login or xoauth2, not '\(other)'")
            }
        }
    }
}

/// Email over SMTP (RFC 5321) on swift-nio: STARTTLS or implicit TLS with verified certificates, AUTH PLAIN,
/// LOGIN and XOAUTH2, PIPELINING, SIZE, 8BITMIME, SMTPUTF8, a result per recipient, and a pool of sessions
/// reused with RSET. A 4xx is retryable (the message was not taken); a 5xx is not.
///
/// ```swift
/// let driver = try SMTPEmailDriver(configuration: SMTPConfiguration(
///     host: "smtp.example.com", authentication: .password(user: "apikey", password: Secret(key))))
/// let receipt = try await EmailClient(driver: driver).send(message)
/// try await driver.close()
/// ```
public final class SMTPEmailDriver: EmailDriver {
    public let provider = "smtp"
    /// The settings.
    public let configuration: SMTPConfiguration
    let pool: SMTPConnectionPool

    /// Creates a driver (no connection is made until the first message).
    /// - Throws: `invalidArgument` when the TLS settings are unusable.
    public init(configuration: SMTPConfiguration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "nimbus.email.smtp")) throws {
        self.configuration = configuration
        let sslContext: NIOSSLContext?
        switch configuration.security {
        case .none:
            sslContext = nil
        case .implicitTLS, .startTLS:
            do { sslContext = try NIOSSLContext(configuration: configuration.tls) } catch {
                throw NimbusError(.invalidArgument, "the TLS settings for \(configuration.host) are unusable: \(error)", underlying: error)
            }
        }
        pool = SMTPConnectionPool(configuration: configuration, sslContext: sslContext, group: eventLoopGroup, logger: logger)
    }

    public func send(_ email: OutgoingEmail) async throws -> EmailReceipt {
        var connection = try await pool.checkout()
        do {
            let delivery = try await connection.deliver(from: email.envelopeFrom, to: email.recipients, document: email.document)
            await pool.checkin(connection)
            return EmailReceipt(messageID: email.document.messageID, providerMessageID: delivery.queueID, provider: provider,
                                accepted: delivery.accepted, rejected: delivery.rejected)
        } catch {
            await pool.checkin(connection)        // kept only if the session is still usable
            throw error
        }
    }

    /// Says QUIT to every idle session and refuses new sends.
    public func close() async throws {
        await pool.shutdown()
    }
}

/// Sessions to one server: at most `maxConnections`, reused after RSET, closed when idle too long,
/// after `maxMessagesPerConnection` messages, or when broken.
actor SMTPConnectionPool {
    private let configuration: SMTPConfiguration
    private let sslContext: NIOSSLContext?
    private let group: any EventLoopGroup
    private let logger: Logger
    private var idle: [SMTPConnection] = []
    private var open = 0
    /// Senders waiting for a session, first come first served; a cancelled sender leaves the line.
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    private var nextWaiter: UInt64 = 0
    private var closed = false

    init(configuration: SMTPConfiguration, sslContext: NIOSSLContext?, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.sslContext = sslContext
        self.group = group
        self.logger = logger
    }

    func checkout() async throws -> SMTPConnection {
        while true {
            guard !closed else { throw NimbusError(.failedPrecondition, "the SMTP driver for \(configuration.host) was shut down") }
            if var connection = idle.popLast() {
                if connection.channel.isActive, ContinuousClock.now - connection.lastUsed < configuration.idleTimeout,
                   let reset = try? await connection.command("RSET", timeout: min(configuration.timeouts.command, .seconds(30))), reset.isPositive {
                    connection.lastUsed = .now
                    return connection
                }
                try? await connection.channel.close()
                release()
                continue
            }
            if open < configuration.maxConnections {
                open += 1
                do {
                    return try await SMTPConnection.open(configuration, sslContext: sslContext, group: group, logger: logger)
                } catch {
                    release()
                    throw error
                }
            }
            nextWaiter += 1
            let id = nextWaiter
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    if Task.isCancelled { continuation.resume() } else { waiters.append((id, continuation)) }
                }
            } onCancel: {
                Task { await self.leaveLine(id) }
            }
            try Task.checkCancellation()
        }
    }

    func checkin(_ connection: SMTPConnection) async {
        if !closed, connection.channel.isActive, connection.messagesSent < configuration.maxMessagesPerConnection {
            idle.append(connection)
            if !waiters.isEmpty { waiters.removeFirst().continuation.resume() }
            return
        }
        if connection.channel.isActive { await connection.quit() }
        release()
    }

    private func release() {
        open -= 1
        if !waiters.isEmpty { waiters.removeFirst().continuation.resume() }
    }

    private func leaveLine(_ id: UInt64) {
        if let index = waiters.firstIndex(where: { $0.id == id }) { waiters.remove(at: index).continuation.resume() }
    }

    func shutdown() async {
        closed = true
        let sessions = idle
        idle = []
        for session in sessions {
            await session.quit()
            open -= 1
        }
        for waiter in waiters { waiter.continuation.resume() }
        waiters = []
    }
}

extension URLOpenerRegistry where Resource == any EmailDriver {
    /// Adds `smtp://` and `smtps://`; see ``SMTPConfiguration/init(url:)`` for the options.
    public func withSMTP() -> Self {
        var copy = self
        copy.register("smtp", "smtps") { url in try SMTPEmailDriver(configuration: try SMTPConfiguration(url: url)) }
        return copy
    }
}
