import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NimbusCore
import NimbusPush
import Synchronization
import Testing
@testable import NimbusPushAPNs

/// A local APNs: HTTP/2 over TLS (ALPN h2 only), which checks each request as Apple documents it —
/// `POST /3/device/<hex token>`, an ES256 provider token signed by the team's key (`kid`, `iss`, `iat` under an
/// hour old), `apns-topic`, `apns-push-type`, `apns-priority`, a JSON payload with `aps` of at most 4 KB — and
/// answers Apple's reasons: BadDeviceToken (400), Unregistered (410 with a timestamp), TooManyRequests (429),
/// ExpiredProviderToken (403, when asked to expire the first token it sees).
final class APNsFake: Sendable {
    struct Seen: Sendable {
        var token: String
        var headers: [String: String]
        var payload: JSONValue?
        var jwt: String
    }

    let channel: any Channel
    let seen = Mutex<[Seen]>([])
    let problems = Mutex<[String]>([])
    let expireFirstToken: Bool
    private let expired = Mutex<Set<String>>([])
    private let attempts = Mutex<[String: Int]>([:])
    let publicKey: P256.Signing.PublicKey
    static let teamID = "TEAM123456", keyID = "KEYID12345", topic = "com.example.nimbus"

    var port: Int { channel.localAddress?.port ?? 0 }

    init(publicKey: P256.Signing.PublicKey, expireFirstToken: Bool = false) async throws {
        self.publicKey = publicKey
        self.expireFirstToken = expireFirstToken
        let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(fixtures.appendingPathComponent("server.pem").path).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: fixtures.appendingPathComponent("server.key").path, format: .pem)))
        tls.applicationProtocols = ["h2"]
        let context = try NIOSSLContext(configuration: tls)
        let box = FakeBox()
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()) { stream in
                        stream.eventLoop.makeCompletedFuture {
                            try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                            try stream.pipeline.syncOperations.addHandler(APNsStreamHandler(box: box))
                        }
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.fake.withLock { $0 = self }
    }

    func shutdown() async { try? await channel.close() }

    /// Apple's checks, then the scripted answers.
    func answer(method: String, path: String, headers: HTTPHeaders, body: [UInt8]) -> (HTTPResponseStatus, [(String, String)], String) {
        func fail(_ status: HTTPResponseStatus, _ reason: String, _ extra: String = "") -> (HTTPResponseStatus, [(String, String)], String) {
            (status, [("content-type", "application/json")], #"{"reason":"\#(reason)"\#(extra)}"#)
        }
        guard method == "POST", path.hasPrefix("/3/device/") else { return fail(.methodNotAllowed, "MethodNotAllowed") }
        let token = String(path.dropFirst("/3/device/".count))
        var found: [String] = []
        guard let authorization = headers.first(name: "authorization"), authorization.hasPrefix("bearer ") else { return fail(.forbidden, "MissingProviderToken") }
        let jwt = String(authorization.dropFirst(7))
        let parts = jwt.split(separator: ".").map(String.init)
        guard parts.count == 3, let header = Base64URL.decode(parts[0]).flatMap({ try? JSONValue.parse($0) }),
              let claims = Base64URL.decode(parts[1]).flatMap({ try? JSONValue.parse($0) }), let signature = Base64URL.decode(parts[2]),
              let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
              publicKey.isValidSignature(parsed, for: Array("\(parts[0]).\(parts[1])".utf8)) else {
            return fail(.forbidden, "InvalidProviderToken")
        }
        if header["alg"] != "ES256" || header["kid"]?.stringValue != Self.keyID { found.append("JWT header \(header)") }
        if claims["iss"]?.stringValue != Self.teamID { found.append("iss \(claims["iss"] ?? .null)") }
        if let iat = claims["iat"]?.numberValue, abs(Date().timeIntervalSince1970 - iat) > 3600 { return fail(.forbidden, "ExpiredProviderToken") }
        if expireFirstToken {
            let isFirst = expired.withLock { set -> Bool in
                if set.isEmpty { set.insert(jwt); return true }
                return set.contains(jwt)
            }
            if isFirst { return fail(.forbidden, "ExpiredProviderToken") }
        }
        let pushType = headers.first(name: "apns-push-type") ?? ""
        let expectedTopic = pushType == "voip" ? Self.topic + ".voip" : Self.topic
        if headers.first(name: "apns-topic") != expectedTopic { return fail(.badRequest, "BadTopic") }
        if !["alert", "background", "voip", "liveactivity", "complication", "fileprovider", "mdm", "location", "pushtotalk"].contains(pushType) {
            found.append("apns-push-type '\(pushType)'")
        }
        if !["10", "5", "1"].contains(headers.first(name: "apns-priority") ?? "10") { found.append("apns-priority") }
        if pushType == "background" && headers.first(name: "apns-priority") == "10" { found.append("a background push at priority 10") }
        let payload = try? JSONValue.parse(body)
        if payload?["aps"]?.objectValue == nil { found.append("payload without aps") }
        if body.count > 4096 { return fail(.payloadTooLarge, "PayloadTooLarge") }
        if !found.isEmpty { problems.withLock { $0 += found } }
        seen.withLock { $0.append(Seen(token: token, headers: Dictionary(headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { $1 }), payload: payload, jwt: jwt)) }
        let attempt = attempts.withLock { $0[token, default: 0] += 1; return $0[token]! }
        if token.hasPrefix("dead") { return fail(.gone, "Unregistered", #","timestamp":1764000000000"#) }
        if token.hasPrefix("beef") && attempt == 1 { return fail(.tooManyRequests, "TooManyRequests") }
        if token.hasPrefix("0bad") { return fail(.badRequest, "BadDeviceToken") }
        return (.ok, [("apns-id", UUID().uuidString)], "")
    }
}

/// The fake, reachable from stream handlers made before it finished starting.
final class FakeBox: Sendable {
    let fake = Mutex<APNsFake?>(nil)
}

final class APNsStreamHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let box: FakeBox
    private let state = Mutex<(head: HTTPRequestHead?, body: [UInt8])>((nil, []))
    init(box: FakeBox) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): state.withLock { $0 = (head, []) }
        case .body(let buffer): state.withLock { $0.body += buffer.readableBytesView }
        case .end:
            let (head, body) = state.withLock { ($0.head, $0.body) }
            guard let head, let fake = box.fake.withLock({ $0 }) else { return }
            let (status, headers, text) = fake.answer(method: head.method.rawValue, path: head.uri, headers: head.headers, body: body)
            var responseHeaders = HTTPHeaders(headers)
            responseHeaders.add(name: "content-length", value: String(text.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: status, headers: responseHeaders))), promise: nil)
            if !text.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

@Suite("APNs over HTTP/2 against a local fake")
struct APNsTests {
    static func driver(_ fake: APNsFake, key: P256.Signing.PrivateKey) throws -> APNsPushDriver {
        let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(fixtures.appendingPathComponent("ca.pem").path)
        return try APNsPushDriver(configuration: APNsConfiguration(teamID: APNsFake.teamID, keyID: APNsFake.keyID, privateKey: Secret(key.pemRepresentation),
                                                                   topic: APNsFake.topic, baseURL: "https://localhost:\(fake.port)", tls: tls))
    }

    static func token(_ prefix: String) -> String { prefix + String(repeating: "0", count: 64 - prefix.count) }

    @Test func alertsReachDevicesWithOneReusedTokenAndDeadTokensComeBack() async throws {
        let key = P256.Signing.PrivateKey()
        let fake = try await APNsFake(publicKey: key.publicKey)
        let apns = try Self.driver(fake, key: key)
        var push = PushNotification(title: "Order shipped", body: "On its way", data: ["order": "1042"], badge: 2, sound: "default",
                                    collapseKey: "order-1042", timeToLive: .seconds(3600))
        push.apns.threadID = "orders"
        push.apns.interruptionLevel = "time-sensitive"
        let tokens = [Self.token("a1"), Self.token("dead"), Self.token("beef"), Self.token("0bad"), "not-hex", Self.token("a2")]
        let results = try await PushClient(driver: apns, retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5))).send(push, to: tokens)
        try await apns.close()
        await fake.shutdown()
        #expect(results.deliveredCount == 3, "a1, beef after TooManyRequests, a2")
        #expect(Set(results.invalidTokens) == [Self.token("dead"), Self.token("0bad"), "not-hex"])
        guard case .invalidToken(let reason, let since) = results[1].outcome else { Issue.record("Unregistered is a dead token"); return }
        #expect(reason == "Unregistered" && since == Date(timeIntervalSince1970: 1_764_000_000))
        #expect(fake.problems.withLock { $0 }.isEmpty, "\(fake.problems.withLock { $0 })")
        let seen = fake.seen.withLock { $0 }
        #expect(Set(seen.map(\.jwt)).count == 1, "one provider token for every request")
        #expect(!seen.contains { $0.token == "not-hex" }, "a malformed token is never sent")
        let first = try #require(seen.first { $0.token == Self.token("a1") })
        #expect(first.headers["apns-push-type"] == "alert" && first.headers["apns-priority"] == "10" && first.headers["apns-collapse-id"] == "order-1042")
        #expect(Int(first.headers["apns-expiration"] ?? "") ?? 0 > Int(Date().timeIntervalSince1970))
        #expect(first.payload?["aps"]?["alert"]?["title"]?.stringValue == "Order shipped" && first.payload?["aps"]?["thread-id"]?.stringValue == "orders")
        #expect(first.payload?["aps"]?["interruption-level"]?.stringValue == "time-sensitive" && first.payload?["order"]?.stringValue == "1042")
    }

    @Test func anExpiredProviderTokenIsReplacedOnceAndBackgroundPushesGoAtPriorityFive() async throws {
        let key = P256.Signing.PrivateKey()
        let fake = try await APNsFake(publicKey: key.publicKey, expireFirstToken: true)
        let apns = try Self.driver(fake, key: key)
        let results = try await PushClient(driver: apns).send(PushNotification(data: ["sync": "1"], contentAvailable: true), to: [Self.token("c1")])
        #expect(results.deliveredCount == 1)
        let seen = fake.seen.withLock { $0 }
        #expect(seen.count == 1 && seen[0].headers["apns-push-type"] == "background" && seen[0].headers["apns-priority"] == "5")
        #expect(seen[0].payload?["aps"]?["content-available"]?.numberValue == 1 && seen[0].payload?["aps"]?["alert"] == nil)
        // A key that is not the team's: every request refused, not retried.
        let stranger = try Self.driver(fake, key: P256.Signing.PrivateKey())
        let refused = try await PushClient(driver: stranger).send(PushNotification(title: "x"), to: [Self.token("c2")])
        guard case .failed(let error) = refused[0].outcome else { Issue.record("a foreign key is refused"); return }
        #expect(error.code == .unauthenticated && error.message.contains("InvalidProviderToken"))
        try await apns.close()
        try await stranger.close()
        await fake.shutdown()
    }

    @Test func payloadsAndKeysAreChecked() throws {
        #expect(throws: NimbusError.self) { try APNsPushDriver.payload(PushNotification(title: "x", apns: .init(extra: ["aps": 1]))) }
        let big = PushNotification(title: String(repeating: "x", count: 5000))
        #expect(try APNsPushDriver.payload(big).count > APNsPushDriver.maxPayloadBytes)
        #expect(throws: NimbusError.self) {
            try APNsPushDriver(configuration: .init(teamID: "T", keyID: "K", privateKey: Secret("not a key"), topic: "x"))
        }
    }
}
