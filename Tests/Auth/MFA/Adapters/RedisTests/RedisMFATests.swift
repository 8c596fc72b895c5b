import Foundation
import NimbusCore
import NimbusMFA
import NimbusMFAConformance
import NimbusMFARedis
import NIOCore
import NimbusRedis
import NimbusTesting
import Testing

@Suite("MFA stores in Redis (real server)", .requires(.redis), .timeLimit(.minutes(2)))
struct RedisMFATests {
    static func client() throws -> RedisClient { try RedisClient(url: try Peer.redis.url()) }

    @Test("conformance", arguments: MFAConformance.checks)
    func conformance(_ check: MFAConformance.Check) async throws {
        let client = try Self.client()
        let prefix = "nimbus:test:\(IDGenerator.shared.ulid()):"
        try await check.run(MFAConformance.Harness(makeGuard: { RedisOTPReplayGuard(client: client, keyPrefix: prefix + "used:") },
                                                   makeStore: { RedisOneTimeCodeStore(client: client, keyPrefix: prefix + "code:") }))
        try await client.shutdown()
    }

    @Test("two instances share one code: a code sent by one is redeemed by the other, once; the keys expire")
    func sharedAcrossInstances() async throws {
        let client = try Self.client()
        let prefix = "nimbus:test:\(IDGenerator.shared.ulid()):"
        let box = Mutex<String?>(nil)
        let secret = Secret([UInt8](repeating: 9, count: 32))
        let one = try OneTimeCodes(store: RedisOneTimeCodeStore(client: client, keyPrefix: prefix), secret: secret) { _, code, _, _ in box.withLock { $0 = code.reveal() } }
        let two = try OneTimeCodes(store: RedisOneTimeCodeStore(client: client, keyPrefix: prefix), secret: secret) { _, _, _, _ in }
        try await one.send(to: .sms("+14155550100"), account: "u1", purpose: "sign-in")
        let code = try #require(box.withLock { $0 })
        let ttl = try await client.send(RedisCommand("PTTL", prefix + OneTimeCodes.key("u1", "sign-in"))).int(for: "PTTL")
        #expect(ttl > 0 && ttl <= 600_000, "the code's key expires with the code (10 minutes at most)")
        let stored = try await client.send(RedisCommand("HGET", prefix + OneTimeCodes.key("u1", "sign-in"), "digest")).bytes(for: "HGET").map { String(buffer: $0) }
        #expect(stored?.contains(code) == false && stored?.count == 64)
        try await two.verify(code, account: "u1", purpose: "sign-in")
        await #expect(throws: NimbusError.self) { try await one.verify(code, account: "u1", purpose: "sign-in") }
        try await client.shutdown()
    }
}

import Synchronization
