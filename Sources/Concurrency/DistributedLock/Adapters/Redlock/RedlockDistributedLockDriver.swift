import NIOCore
import NimbusCore
import NimbusDistributedLock
import NimbusRedis

/// Redlock: one lock over N independent Redis servers (Redis' own distributed lock algorithm). A
/// lock is held when a majority of the servers took it within its validity: the TTL minus the time
/// the acquisition took minus the clock-drift allowance (`ttl × driftFactor + 2 ms`). Otherwise the
/// partial acquisition is undone at once.
///
/// **Fencing tokens** (which plain Redlock lacks): each server keeps a counter per lock, incremented
/// in the same script that takes the lock; the token is the largest value of the majority, written
/// back to every server of that majority before the lock is used. Any later majority shares at
/// least one server with this one, whose counter is then already at the token, so the next token is
/// larger. An acquisition whose write-back fails is undone.
///
/// The fenced register is written to every server and accepted when a majority accepts it; reads
/// take the highest token a majority returns.
///
/// ```swift
/// let driver = try RedlockDistributedLockDriver(urls: ["redis://r1:6379", "redis://r2:6379", "redis://r3:6379"])
/// let locks = try await DistributedLocks.open("redlock://?servers=r1:6379,r2:6379,r3:6379&commandTimeout=200ms", openers: .distributedLock.withRedlock())
/// ```
public struct RedlockDistributedLockDriver: DistributedLockDriver {
    public var provider: String { "redlock" }
    /// One client per server.
    public let clients: [RedisClient]
    /// The clock-drift allowance, as a fraction of the TTL (Redis' reference value 0.01).
    public let driftFactor: Double
    private let ownsClients: Bool

    /// Uses existing clients (one per independent server); `close` leaves them open.
    public init(clients: [RedisClient], driftFactor: Double = 0.01) {
        self.clients = clients
        self.driftFactor = driftFactor
        self.ownsClients = false
    }

    /// Creates a client per URL; give each a short `commandTimeout` (`?commandTimeout=200ms`) so a dead
    /// server costs little of the lease.
    public init(urls: [String], driftFactor: Double = 0.01) throws {
        guard urls.count >= 3, urls.count % 2 == 1 else {
            throw NimbusError(.invalidArgument, "Redlock needs an odd number of independent servers, at least 3 (got \(urls.count))")
        }
        self.clients = try urls.map { try RedisClient(url: $0) }
        self.driftFactor = driftFactor
        self.ownsClients = true
    }

    public func close() async throws {
        guard ownsClients else { return }
        for client in clients { try? await client.shutdown() }
    }

    var quorum: Int { clients.count / 2 + 1 }

    /// Runs `body` on every server at once; failures (a server down) are `nil`.
    func everywhere<T: Sendable>(_ body: @escaping @Sendable (RedisClient) async throws -> T) async -> [T?] {
        await withTaskGroup(of: (Int, T?).self) { group in
            for (index, client) in clients.enumerated() { group.addTask { (index, try? await body(client)) } }
            var results = [T?](repeating: nil, count: clients.count)
            for await (index, value) in group { results[index] = value }
            return results
        }
    }

    public func tryAcquire(_ name: String, owner: String, ttl: Duration) async throws -> UInt64? {
        // A majority that came too late (a slow server, a stalled process) says nothing about other holders:
        // try again, as Redis' reference clients do; a lock held elsewhere ends the attempts at once.
        for attempt in 1...3 {
            switch try await attemptAcquire(name, owner: owner, ttl: ttl) {
            case .acquired(let token): return token
            case .held: return nil
            case .tooSlow: if attempt < 3 { try await Task.sleep(for: .milliseconds(Int64.random(in: 10...50))) }
            }
        }
        return nil
    }

    enum Attempt { case acquired(UInt64), held, tooSlow }

    func attemptAcquire(_ name: String, owner: String, ttl: Duration) async throws -> Attempt {
        let milliseconds = Self.milliseconds(ttl)
        let start = ContinuousClock.now
        let value = owner + " " + IDGenerator.shared.ulid().description
        let counters: [Int64?] = await everywhere { client in
            let reply = try await client.run(Self.acquire, keys: [name, name + ":fence"], arguments: [value, String(milliseconds)])
            if case .null = reply { return nil }
            return try reply.int(for: "redlock acquire")
        }.map { $0 ?? nil }
        let taken = counters.enumerated().compactMap { index, counter in counter.map { (index, $0) } }
        let elapsed = ContinuousClock.now - start
        let drift = ttl * driftFactor + .milliseconds(2)
        guard taken.count >= quorum, elapsed + drift < ttl, let token = taken.map(\.1).max() else {
            await undo(name, value: value)
            if taken.count >= quorum { return .tooSlow }
            if counters.allSatisfy({ $0 == nil }) {
                // Not a single server answered: say the servers are down rather than that the lock is held.
                let reachable = await everywhere { try await $0.send(RedisCommand("PING")) }.compactMap { $0 }.count
                if reachable < quorum {
                    throw NimbusError(.unavailable, "Redlock reached \(reachable) of \(clients.count) Redis servers; a majority (\(quorum)) is needed")
                }
            }
            return .held
        }
        // Raise the counters of the majority to the token, so the next majority's token is larger.
        let written = await everywhere { client in
            try await client.run(Self.raiseFence, keys: [name + ":fence"], arguments: [String(token)]).int(for: "redlock fence")
        }
        let raised = taken.filter { index, _ in written[index] != nil }.count
        guard raised == taken.count else {
            await undo(name, value: value)
            return .tooSlow
        }
        // The value carries the token so renew, release and holder can check it.
        _ = await everywhere { client in
            try await client.run(Self.tag, keys: [name], arguments: [value, value + " " + String(token)]).int(for: "redlock tag")
        }
        return .acquired(UInt64(clamping: token))
    }

    public func renew(_ name: String, owner: String, token: UInt64, ttl: Duration) async throws -> Bool {
        let milliseconds = Self.milliseconds(ttl)
        let start = ContinuousClock.now
        let renewed = await everywhere { client in
            try await client.run(Self.renew, keys: [name], arguments: [owner, String(token), String(milliseconds)]).int(for: "redlock renew")
        }
        return renewed.filter { $0 == 1 }.count >= quorum && ContinuousClock.now - start + ttl * driftFactor < ttl
    }

    public func release(_ name: String, owner: String, token: UInt64) async throws -> Bool {
        let released = await everywhere { client in
            try await client.run(Self.release, keys: [name], arguments: [owner, String(token)]).int(for: "redlock release")
        }
        return released.filter { $0 == 1 }.count >= quorum
    }

    public func holder(of name: String) async throws -> LockHolder? {
        let replies: [(String, Int64)?] = await everywhere { client in
            let values = try await client.pipeline([RedisCommand("GET", name), RedisCommand("PTTL", name)])
            guard let value = try values[0].bytes(for: "GET").map({ String(buffer: $0) }) else { return nil }
            return (value, try values[1].int(for: "PTTL"))
        }.map { $0 ?? nil }
        var votes: [String: [Int64]] = [:]
        for case let (value, ttl)? in replies where ttl > 0 { votes[value, default: []].append(ttl) }
        guard let (value, ttls) = votes.first(where: { $0.value.count >= quorum }) else { return nil }
        let parts = value.split(separator: " ")
        guard parts.count >= 3, let token = UInt64(parts[parts.count - 1]) else { return nil }
        let owner = parts.dropLast(2).joined(separator: " ")
        let expires = ttls.sorted()[ttls.count - quorum]      // the quorum-th longest: the lease ends for a majority then
        return LockHolder(owner: owner, token: token, expiresIn: .milliseconds(expires))
    }

    public func fencedWrite(_ resource: String, value: String, token: UInt64) async throws -> Bool {
        let accepted = await everywhere { client in try await client.fencedWrite(resource, value: value, token: token) }
        return accepted.filter { $0 == true }.count >= quorum
    }

    public func fencedRead(_ resource: String) async throws -> FencedValue? {
        let values: [FencedValue?] = await everywhere { client in
            try await client.fencedRead(resource).map { FencedValue(value: $0.value, token: $0.token) }
        }.map { $0 ?? nil }
        return values.compactMap { $0 }.max { $0.token < $1.token }
    }

    private func undo(_ name: String, value: String) async {
        _ = await everywhere { client in
            try await client.run(Self.undo, keys: [name], arguments: [value]).int(for: "redlock undo")
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 { max(1, duration.nimbusMilliseconds) }

    /// KEYS: lock, counter. ARGV: value, ttl ms. Returns the incremented counter, or nil if held.
    static let acquire = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return false end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return redis.call('INCR', KEYS[2])
        """)
    /// KEYS: counter. ARGV: token. Raises the counter to at least the token.
    static let raiseFence = RedisScript("""
        local current = tonumber(redis.call('GET', KEYS[1]) or '0')
        if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
        return 1
        """)
    /// KEYS: lock. ARGV: untagged value, tagged value. Adds the token to this holder's value, keeping the TTL.
    static let tag = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') return 1 end
        return 0
        """)
    /// KEYS: lock. ARGV: value. Deletes the lock if this attempt holds it (tagged or not).
    static let undo = RedisScript("""
        local current = redis.call('GET', KEYS[1])
        if current and (current == ARGV[1] or string.sub(current, 1, #ARGV[1] + 1) == ARGV[1] .. ' ') then
          redis.call('DEL', KEYS[1]) return 1
        end
        return 0
        """)
    /// KEYS: lock. ARGV: owner, token, ttl ms. Extends the lease if "owner <ulid> token" matches.
    static let renew = RedisScript("""
        local current = redis.call('GET', KEYS[1])
        if current and string.sub(current, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' and string.match(current, ' (%d+)$') == ARGV[2] then
          redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1
        end
        return 0
        """)
    /// KEYS: lock. ARGV: owner, token. Deletes the lock if it is this owner's with this token.
    static let release = RedisScript("""
        local current = redis.call('GET', KEYS[1])
        if current and string.sub(current, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' and string.match(current, ' (%d+)$') == ARGV[2] then
          redis.call('DEL', KEYS[1]) return 1
        end
        return 0
        """)
}

extension URLOpenerRegistry where Resource == any DistributedLockDriver {
    /// Adds `redlock://?servers=h1:6379,h2:6379,h3:6379` (an odd number, at least 3); the other options
    /// (`commandTimeout`, `connectTimeout`, `pool`…) go to every server's `redis://` URL.
    public func withRedlock() -> Self {
        var copy = self
        copy.register("redlock") { url in
            guard let servers = url.options.items.first(where: { $0.0 == "servers" })?.1, !servers.isEmpty else {
                throw NimbusError(.invalidArgument, "a redlock URL names its servers: redlock://?servers=h1:6379,h2:6379,h3:6379")
            }
            let rest = url.options.items.filter { $0.0 != "servers" }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
            let urls = servers.split(separator: ",").map { "redis://\($0)" + (rest.isEmpty ? "" : "?" + rest) }
            return try RedlockDistributedLockDriver(urls: urls)
        }
        return copy
    }
}
