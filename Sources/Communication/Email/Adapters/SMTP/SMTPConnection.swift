import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import NimbusCore
import NimbusNetwork
import NimbusEmail

/// What the server offered in its EHLO reply.
public struct SMTPExtensions: Sendable, Hashable {
    /// Keywords (upper case) and their parameters.
    public var keywords: [String: String]

    init(ehloLines: [String]) {
        var keywords: [String: String] = [:]
        for line in ehloLines.dropFirst() {                   // the first line is the server's name
            let parts = line.split(separator: " ", maxSplits: 1)
            guard let first = parts.first else { continue }
            var keyword = first.uppercased(), parameters = parts.count > 1 ? String(parts[1]) : ""
            if keyword.hasPrefix("AUTH=") {                    // the pre-RFC 4954 form some servers still send
                parameters = String(keyword.dropFirst(5)) + (parameters.isEmpty ? "" : " " + parameters)
                keyword = "AUTH"
            }
            keywords[keyword] = keywords[keyword].map { $0 + " " + parameters } ?? parameters
        }
        self.keywords = keywords
    }

    static let none = SMTPExtensions(ehloLines: [])

    public var startTLS: Bool { keywords["STARTTLS"] != nil }
    public var pipelining: Bool { keywords["PIPELINING"] != nil }
    public var eightBitMIME: Bool { keywords["8BITMIME"] != nil }
    public var smtpUTF8: Bool { keywords["SMTPUTF8"] != nil }
    /// The largest message the server takes, if it said (`0` means no limit).
    public var size: Int? { keywords["SIZE"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
    /// The AUTH mechanisms offered (upper case).
    public var authMechanisms: Set<String> { Set((keywords["AUTH"] ?? "").uppercased().split(separator: " ").map(String.init)) }
}

/// One write towards the server and, when it expects one, the promise of the reply.
struct SMTPOutbound: Sendable {
    var bytes: ByteBuffer
    var reply: EventLoopPromise<SMTPResponse>?
}

/// Why a session ended (a TLS failure, a 421), kept where the connection can still read it once the
/// pipeline's handlers are gone.
final class SMTPCloseReason: Sendable {
    let error = Mutex<NimbusError?>(nil)
}

/// Matches replies to commands in order (replies come in the order of commands, pipelined or not).
final class SMTPClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = SMTPResponse
    typealias OutboundIn = SMTPOutbound
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<EventLoopPromise<SMTPResponse>>()
    private var closedError: NimbusError?
    private let endpoint: String
    private let closeReason: SMTPCloseReason

    init(endpoint: String, greeting: EventLoopPromise<SMTPResponse>, closeReason: SMTPCloseReason) {
        self.endpoint = endpoint
        self.closeReason = closeReason
        waiting.append(greeting)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outbound = unwrapOutboundIn(data)
        if let closedError {
            outbound.reply?.fail(closedError)
            promise?.fail(closedError)
            return
        }
        if let reply = outbound.reply { waiting.append(reply) }
        context.write(wrapOutboundOut(outbound.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let response = unwrapInboundIn(data)
        guard let next = waiting.popFirst() else {
            // Unsolicited: typically `421` before the server hangs up. Whatever comes next fails with it.
            closedError = NimbusError(.unavailable, "the SMTP server at \(endpoint) said \(response) and will close the connection")
            return
        }
        next.succeed(response)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(Self.describe(error, endpoint: endpoint))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(closedError ?? NimbusError(.unavailable, "the SMTP server at \(endpoint) closed the connection"))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(NimbusError(.unavailable, "the SMTP connection to \(endpoint) was closed"))
    }

    private func failAll(_ error: NimbusError) {
        if closedError == nil { closedError = error }
        closeReason.error.withLock { if $0 == nil { $0 = error } }
        while let promise = waiting.popFirst() { promise.fail(error) }
    }

    static func describe(_ error: any Error, endpoint: String) -> NimbusError {
        if let error = error as? NimbusError { return error }
        if let error = error as? NIOSSLError {
            return NimbusError(.failedPrecondition, "TLS with the SMTP server at \(endpoint) failed: \(error); check the server's certificate and the trusted roots (?ca=/path/to/ca.pem)",
                               underlying: error, retryable: false)
        }
        if error is BoringSSLError {
            return NimbusError(.failedPrecondition, "TLS with the SMTP server at \(endpoint) failed: \(error)", underlying: error, retryable: false)
        }
        return NimbusError(.unavailable, "the SMTP connection to \(endpoint) failed: \(error)", underlying: error)
    }
}

/// One SMTP session: connected, greeted, secured and authenticated; sends transactions.
struct SMTPConnection: Sendable {
    let channel: any Channel
    let endpoint: String
    let closeReason: SMTPCloseReason
    private(set) var extensions: SMTPExtensions
    private(set) var isSecure: Bool
    var lastUsed: ContinuousClock.Instant
    var messagesSent = 0
    let timeouts: SMTPConfiguration.Timeouts

    /// Connects, reads the greeting, says EHLO (HELO when refused), starts TLS and authenticates as configured.
    static func open(_ configuration: SMTPConfiguration, sslContext: NIOSSLContext?, group: any EventLoopGroup, logger: Logger) async throws -> SMTPConnection {
        let endpoint = "\(configuration.host):\(configuration.port)"
        let loop = group.next()
        let greeting = loop.makePromise(of: SMTPResponse.self)
        let closeReason = SMTPCloseReason()
        let implicitTLS = configuration.security == .implicitTLS
        let serverName = ClientTLS.isIPAddress(configuration.host) ? nil : configuration.host
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(configuration.timeouts.connect.nimbusNanoseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                do {
                    if implicitTLS, let sslContext {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPResponseDecoder()))
                    try channel.pipeline.syncOperations.addHandler(SMTPClientHandler(endpoint: endpoint, greeting: greeting, closeReason: closeReason))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
        } catch {
            greeting.fail(error)
            throw NimbusError(.unavailable, "cannot connect to the SMTP server at \(endpoint): \(error)", underlying: error)
        }
        var connection = SMTPConnection(channel: channel, endpoint: endpoint, closeReason: closeReason, extensions: .none, isSecure: implicitTLS,
                                        lastUsed: .now, timeouts: configuration.timeouts)
        do {
            let hello = try await connection.await(greeting.futureResult, "the greeting", timeout: configuration.timeouts.greeting)
            guard hello.code == 220 else {
                throw NimbusError(.unavailable, "the SMTP server at \(endpoint) refused the session: \(hello)", retryable: hello.isTransient)
            }
            try await connection.hello(configuration.heloName)
            switch configuration.security {
            case .startTLS(let required):
                if connection.extensions.startTLS, let sslContext {
                    try await connection.startTLS(sslContext, serverName: serverName)
                    try await connection.hello(configuration.heloName)
                } else if required {
                    throw NimbusError(.failedPrecondition, "the SMTP server at \(endpoint) does not offer STARTTLS, and TLS is required (starttls=required); use smtps:// for implicit TLS, or starttls=opportunistic to send in clear text",
                                      retryable: false)
                } else {
                    logger.warning("smtp: \(endpoint) does not offer STARTTLS; the session stays in clear text")
                }
            case .implicitTLS, .none:
                break
            }
            try await connection.authenticate(configuration.authentication, allowInsecure: configuration.allowInsecureAuthentication)
            return connection
        } catch {
            try? await channel.close()
            throw error
        }
    }

    // MARK: Commands

    /// Waits for a reply with a time limit; a late reply leaves the session in an unknown state, so it is closed.
    func await(_ future: EventLoopFuture<SMTPResponse>, _ what: String, timeout: Duration) async throws -> SMTPResponse {
        do {
            return try await withTimeLimit(timeout, "the SMTP server's reply to \(what)") { try await future.get() }
        } catch let error as NimbusError where error.code == .deadlineExceeded {
            channel.close(promise: nil)
            throw NimbusError(.deadlineExceeded, "the SMTP server at \(endpoint) did not reply to \(what) within \(timeout)", retryable: true)
        }
    }

    /// Sends lines (each ending CRLF) in one flush and waits for one reply per line.
    func send(_ lines: [String], timeout: Duration) async throws -> [SMTPResponse] {
        var futures: [EventLoopFuture<SMTPResponse>] = []
        var outbound: [SMTPOutbound] = []
        for line in lines {
            let promise = channel.eventLoop.makePromise(of: SMTPResponse.self)
            futures.append(promise.futureResult)
            outbound.append(SMTPOutbound(bytes: ByteBuffer(string: line + "\r\n"), reply: promise))
        }
        write(outbound)
        var replies: [SMTPResponse] = []
        for (index, future) in futures.enumerated() {
            let verb = lines[index].hasPrefix("AUTH") ? "AUTH" : String(lines[index].prefix { $0 != " " && $0 != ":" })
            replies.append(try await self.await(future, verb.isEmpty ? "an AUTH response" : verb, timeout: timeout))
        }
        return replies
    }

    func command(_ line: String, timeout: Duration? = nil) async throws -> SMTPResponse {
        try await send([line], timeout: timeout ?? timeouts.command)[0]
    }

    /// Writes on the event loop. A write that cannot go out (the channel closed in between, and with it the handler
    /// that would have failed the reply) fails its reply here, so nobody waits for an answer that cannot come.
    private func write(_ outbound: [SMTPOutbound]) {
        let channel = self.channel
        let endpoint = self.endpoint
        let closeReason = self.closeReason
        channel.eventLoop.execute {
            for item in outbound {
                let written = channel.eventLoop.makePromise(of: Void.self)
                if let reply = item.reply {
                    written.futureResult.whenFailure { error in
                        reply.fail(closeReason.error.withLock { $0 } ?? SMTPClientHandler.describe(error, endpoint: endpoint))
                    }
                }
                channel.write(item, promise: written)
            }
            channel.flush()
        }
    }

    private mutating func hello(_ name: String) async throws {
        let ehlo = try await command("EHLO \(name)")
        if ehlo.isPositive {
            extensions = SMTPExtensions(ehloLines: ehlo.lines)
            return
        }
        guard ehlo.isPermanent else { throw Self.error(ehlo, "EHLO", endpoint: endpoint) }
        let helo = try await command("HELO \(name)")             // an old server: no extensions
        guard helo.isPositive else { throw Self.error(helo, "HELO", endpoint: endpoint) }
        extensions = .none
    }

    private mutating func startTLS(_ context: NIOSSLContext, serverName: String?) async throws {
        let reply = try await command("STARTTLS")
        guard reply.code == 220 else { throw Self.error(reply, "STARTTLS", endpoint: endpoint) }
        let channel = self.channel
        try await channel.eventLoop.submit {
            let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }.get()
        isSecure = true
    }

    private func authenticate(_ authentication: SMTPAuthentication, allowInsecure: Bool) async throws {
        guard authentication.isRequired else { return }
        guard isSecure || allowInsecure else {
            throw NimbusError(.failedPrecondition, "refusing to send SMTP credentials to \(endpoint) without TLS; use starttls=required or smtps://, or allowInsecureAuth=true on a trusted network",
                              retryable: false)
        }
        let offered = extensions.authMechanisms
        guard !offered.isEmpty else {
            throw NimbusError(.failedPrecondition, "the SMTP server at \(endpoint) offers no AUTH mechanism\(isSecure ? "" : " before TLS (use STARTTLS)")", retryable: false)
        }
        let reply: SMTPResponse
        switch authentication {
        case .none:
            return
        case .password(let user, let password, let mechanism):
            let chosen = mechanism ?? (offered.contains("PLAIN") ? .plain : .login)
            guard offered.contains(chosen.rawValue) else {
                throw NimbusError(.failedPrecondition, "the SMTP server at \(endpoint) does not offer AUTH \(chosen.rawValue) (it offers \(offered.sorted().joined(separator: ", ")))", retryable: false)
            }
            switch chosen {
            case .plain:
                let token = Data(([0] + Array(user.utf8) + [0] + Array(password.reveal().utf8))).base64EncodedString()
                reply = try await command("AUTH PLAIN \(token)")
            case .login:
                let first = try await command("AUTH LOGIN")
                guard first.code == 334 else { throw Self.authError(first, user: user, endpoint: endpoint) }
                let second = try await command(Data(user.utf8).base64EncodedString())
                guard second.code == 334 else { throw Self.authError(second, user: user, endpoint: endpoint) }
                reply = try await command(Data(password.reveal().utf8).base64EncodedString())
            }
            guard reply.code == 235 else { throw Self.authError(reply, user: user, endpoint: endpoint) }
        case .xoauth2(let user, let token):
            guard offered.contains("XOAUTH2") else {
                throw NimbusError(.failedPrecondition, "the SMTP server at \(endpoint) does not offer AUTH XOAUTH2 (it offers \(offered.sorted().joined(separator: ", ")))", retryable: false)
            }
            let bearer = try await token()
            let blob = Data("user=\(user)\u{1}auth=Bearer \(bearer.reveal())\u{1}\u{1}".utf8).base64EncodedString()
            var answer = try await command("AUTH XOAUTH2 \(blob)")
            if answer.code == 334 { answer = try await command("") }       // the error's JSON challenge: answer empty, get the final code
            guard answer.code == 235 else { throw Self.authError(answer, user: user, endpoint: endpoint) }
        }
    }

    // MARK: Transactions

    /// The outcome of one transaction.
    struct Delivery {
        var accepted: [EmailAddress]
        var rejected: [EmailReceipt.Rejection]
        var queueID: String?
    }

    /// MAIL, RCPT for each recipient, DATA (pipelined when offered), then the message, dot-stuffed.
    mutating func deliver(from sender: EmailAddress, to recipients: [EmailAddress], document: MIMEDocument) async throws -> Delivery {
        let bytes = document.bytes
        if let limit = extensions.size, limit > 0, bytes.count > limit {
            throw NimbusError(.invalidArgument, "the message is \(bytes.count) bytes; the SMTP server at \(endpoint) takes at most \(limit)", retryable: false)
        }
        var mail = "MAIL FROM:<\(sender.smtpAddress)>"
        if extensions.size != nil { mail += " SIZE=\(bytes.count)" }
        if document.has8BitBody {
            guard extensions.eightBitMIME else {
                throw NimbusError(.failedPrecondition, "the message has an 8-bit body but \(endpoint) does not offer 8BITMIME; write it without `allow8Bit`", retryable: false)
            }
            mail += " BODY=8BITMIME"
        }
        if document.requiresSMTPUTF8 || sender.requiresSMTPUTF8 || recipients.contains(where: \.requiresSMTPUTF8) {
            guard extensions.smtpUTF8 else {
                throw NimbusError(.failedPrecondition, "an address has non-ASCII characters before '@', which needs SMTPUTF8; \(endpoint) does not offer it", retryable: false)
            }
            mail += " SMTPUTF8"
        }
        let rcpts = recipients.map { "RCPT TO:<\($0.smtpAddress)>" }
        var replies: [SMTPResponse]
        if extensions.pipelining {
            replies = try await send([mail] + rcpts + ["DATA"], timeout: timeouts.command)
        } else {
            replies = [try await command(mail)]
            if replies[0].isPositive {
                for rcpt in rcpts { replies.append(try await command(rcpt)) }
                if replies.dropFirst().contains(where: \.isPositive) { replies.append(try await command("DATA", timeout: timeouts.command)) }
            }
        }
        lastUsed = .now
        let mailReply = replies[0]
        guard mailReply.isPositive else {
            _ = try? await command("RSET")
            throw Self.error(mailReply, "MAIL FROM", endpoint: endpoint)
        }
        var delivery = Delivery(accepted: [], rejected: [], queueID: nil)
        for (index, recipient) in recipients.enumerated() {
            let reply = index + 1 < replies.count ? replies[index + 1] : SMTPResponse(code: 503, enhancedCode: nil, lines: ["not sent"])
            if reply.isPositive {
                delivery.accepted.append(recipient)
            } else {
                delivery.rejected.append(EmailReceipt.Rejection(recipient: recipient, code: reply.fullCode, message: reply.message, temporary: reply.isTransient))
            }
        }
        let dataReply = replies.count == recipients.count + 2 ? replies[recipients.count + 1] : nil
        if delivery.accepted.isEmpty {
            if dataReply?.code == 354 { _ = try? await command(".", timeout: timeouts.dataEnd) }   // a server that said 354 anyway: send an empty message's end
            _ = try? await command("RSET")
            return delivery
        }
        guard let dataReply, dataReply.code == 354 else {
            _ = try? await command("RSET")
            throw Self.error(dataReply ?? SMTPResponse(code: 451, enhancedCode: nil, lines: ["no reply to DATA"]), "DATA", endpoint: endpoint)
        }
        let promise = channel.eventLoop.makePromise(of: SMTPResponse.self)
        var payload = ByteBuffer()
        payload.reserveCapacity(bytes.count + bytes.count / 50 + 5)
        Self.dotStuff(bytes, into: &payload)
        write([SMTPOutbound(bytes: payload, reply: promise)])
        let final: SMTPResponse
        do {
            final = try await self.await(promise.futureResult, "the end of DATA", timeout: timeouts.dataEnd)
        } catch let error as NimbusError {
            // The server may have taken the message: sending again could deliver it twice.
            throw NimbusError(.unavailable, "the SMTP server at \(endpoint) did not confirm the message (\(error.message)); it may or may not have been delivered, so it is not retried",
                              underlying: error, retryable: false)
        }
        lastUsed = .now
        guard final.isPositive else { throw Self.error(final, "the end of DATA", endpoint: endpoint) }
        messagesSent += 1
        delivery.queueID = Self.queueID(final.message)
        return delivery
    }

    /// Ends the session politely.
    func quit() async {
        _ = try? await command("QUIT", timeout: .seconds(5))
        try? await channel.close()
    }

    // MARK: Helpers

    /// CRLF line ends, a `.` doubled at the start of a line (RFC 5321 §4.5.2), then `CRLF.CRLF`.
    static func dotStuff(_ bytes: [UInt8], into out: inout ByteBuffer) {
        var lineStart = true
        var previous: UInt8 = 0
        for byte in bytes {
            if byte == 10 && previous != 13 { out.writeInteger(UInt8(13)) }     // a bare LF becomes CRLF
            if lineStart && byte == UInt8(ascii: ".") { out.writeInteger(UInt8(ascii: ".")) }
            out.writeInteger(byte)
            lineStart = byte == 10
            previous = byte
        }
        if !lineStart { out.writeString("\r\n") }
        out.writeString(".\r\n")
    }

    /// `250 2.0.0 Ok: queued as 4Bx…` → `4Bx…` (Postfix, Exim `id=…`, aiosmtpd, SES and others).
    static func queueID(_ message: String) -> String? {
        let words = message.split(separator: " ").map(String.init)
        if let index = words.firstIndex(where: { $0.lowercased() == "as" }), index + 1 < words.count { return words[index + 1] }
        if let id = words.first(where: { $0.lowercased().hasPrefix("id=") }) { return String(id.dropFirst(3)) }
        return nil
    }

    static func authError(_ reply: SMTPResponse, user: String, endpoint: String) -> NimbusError {
        switch reply.code {
        case 454: NimbusError(.unavailable, "SMTP authentication at \(endpoint) failed for now: \(reply)", retryable: true)
        case 534: NimbusError(.permissionDenied, "the SMTP server at \(endpoint) wants a stronger sign-in for '\(user)': \(reply)", retryable: false)
        case 538: NimbusError(.failedPrecondition, "the SMTP server at \(endpoint) wants TLS before AUTH: \(reply)", retryable: false)
        default: NimbusError(.unauthenticated, "SMTP authentication as '\(user)' at \(endpoint) failed: \(reply); check the user and password (or token)", retryable: false)
        }
    }

    /// Maps a refusal to a code: 4xx are retryable, 5xx are not.
    static func error(_ reply: SMTPResponse, _ step: String, endpoint: String) -> NimbusError {
        let text = "the SMTP server at \(endpoint) refused \(step): \(reply)"
        if step == "MAIL FROM" && [550, 553, 554].contains(reply.code) {
            return NimbusError(.permissionDenied, text + " (the sender is not allowed)", retryable: false)
        }
        switch reply.code {
        case 421, 450, 451: return NimbusError(.unavailable, text, retryable: true)
        case 452: return NimbusError(.resourceExhausted, text, retryable: true)
        case 400..<500: return NimbusError(.unavailable, text, retryable: true)
        case 530: return NimbusError(.unauthenticated, text + "; the server wants AUTH (add a user and password)", retryable: false)
        case 535: return NimbusError(.unauthenticated, text, retryable: false)
        case 552: return NimbusError(.invalidArgument, text + " (the message is too large)", retryable: false)
        case 500, 501, 502, 503, 504: return NimbusError(.internal, text + " (a protocol error)", retryable: false)
        default: return NimbusError(.failedPrecondition, text, retryable: false)
        }
    }
}
