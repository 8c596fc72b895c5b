import Foundation
import NimbusCore
import NimbusMFA
import NimbusRedis

/// The TOTP replay guard shared by every instance of a service: the last used step per account in
/// Redis, compared and set in one script (atomic), expiring after `horizon`.
///
/// ```swift
/// let verifier = TOTPVerifier(replayGuard: RedisOTPReplayGuard(client: redis))
/// ```
public struct RedisOTPReplayGuard: OTPReplayGuard {
    /// The client.
    public let client: RedisClient
    /// The prefix of every key.
    public let keyPrefix: String
    /// How long a used step is remembered (longer than the verifier's drift window).
    public let horizon: Duration

    /// A guard on `client`.
    public init(client: RedisClient, keyPrefix: String = "nimbus:otp:used:", horizon: Duration = .seconds(600)) {
        self.client = client
        self.keyPrefix = keyPrefix
        self.horizon = horizon
    }

    static let script = RedisScript("""
    local last = redis.call('GET', KEYS[1])
    if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
    """)

    public func use(step: UInt64, for account: String) async throws -> Bool {
        guard step < 1 << 53 else { throw NimbusError(.invalidArgument, "a TOTP step above 2^53 cannot be compared exactly in Redis scripts") }
        let reply = try await client.run(Self.script, keys: [keyPrefix + account], arguments: [String(step), String(max(1, horizon.nimbusMilliseconds))])
        return try reply.int(for: "OTP replay guard") == 1
    }
}

/// Delivered one-time codes in Redis: a hash per account and purpose (keyed digest, expiry, issue
/// time, tries), issued and redeemed by scripts, so instances share codes and tries atomically.
/// The digest comparison in the script is not constant-time; it compares HMACs of the guess,
/// which tell an attacker nothing about the code.
public struct RedisOneTimeCodeStore: OneTimeCodeStore {
    /// The client.
    public let client: RedisClient
    /// The prefix of every key.
    public let keyPrefix: String

    /// A store on `client`.
    public init(client: RedisClient, keyPrefix: String = "nimbus:otp:code:") {
        self.client = client
        self.keyPrefix = keyPrefix
    }

    // ARGV: digest, expires (ms), cooldown (ms), now (ms), ttl (ms).
    static let issueScript = RedisScript("""
    local issued = redis.call('HGET', KEYS[1], 'issued')
    local expires = redis.call('HGET', KEYS[1], 'expires')
    local now = tonumber(ARGV[4])
    if issued and expires and tonumber(expires) > now and now - tonumber(issued) < tonumber(ARGV[3]) then return 0 end
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], 'digest', ARGV[1], 'expires', ARGV[2], 'issued', ARGV[4], 'attempts', 0)
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    return 1
    """)

    // ARGV: digest, max attempts, now (ms). Answers -1 (none), -2 (accepted) or the tries left.
    static let redeemScript = RedisScript("""
    local digest = redis.call('HGET', KEYS[1], 'digest')
    local expires = redis.call('HGET', KEYS[1], 'expires')
    if not digest or not expires or tonumber(expires) <= tonumber(ARGV[3]) then
      redis.call('DEL', KEYS[1])
      return -1
    end
    if digest == ARGV[1] then
      redis.call('DEL', KEYS[1])
      return -2
    end
    local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
    if attempts >= tonumber(ARGV[2]) then
      redis.call('DEL', KEYS[1])
      return 0
    end
    return tonumber(ARGV[2]) - attempts
    """)

    public func issue(_ key: String, digest: [UInt8], expires: Date, cooldown: Duration, now: Date) async throws -> Bool {
        let ttl = max(1, expires.nimbusMilliseconds - now.nimbusMilliseconds)
        let reply = try await client.run(Self.issueScript, keys: [keyPrefix + key],
                                         arguments: [digest.hexString, String(expires.nimbusMilliseconds), String(cooldown.nimbusMilliseconds),
                                                     String(now.nimbusMilliseconds), String(ttl)])
        return try reply.int(for: "one-time code issue") == 1
    }

    public func redeem(_ key: String, digest: [UInt8], maxAttempts: Int, now: Date) async throws -> OneTimeCodeOutcome {
        let reply = try await client.run(Self.redeemScript, keys: [keyPrefix + key], arguments: [digest.hexString, String(maxAttempts), String(now.nimbusMilliseconds)])
        switch try reply.int(for: "one-time code redeem") {
        case -2: return .accepted
        case -1: return .none
        case let remaining: return .wrong(remaining: Int(remaining))
        }
    }
}
