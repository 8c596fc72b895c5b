import NIOCore
import NimbusCore
import NimbusRateLimit
import NimbusRedis

/// Rate limits in Redis: one Lua script per decision (`EVALSHA`), so a decision over several
/// policies is atomic and exact however many processes share the server. Time is the server's
/// (`TIME`), one clock for every process, unless a ``RateLimitTime`` is given (tests).
///
/// Each key's state is a small hash (`a`, `b`, `c` — see ``RateLimitCell``) that expires once its
/// quota is whole again; slots of a concurrency limit are a sorted set scored by lease end.
///
/// ```swift
/// let limiter = RateLimiter(driver: try RedisRateLimitDriver(url: "redis://127.0.0.1:6379"))
/// ```
public struct RedisRateLimitDriver: RateLimitDriver {
    public var provider: String { "redis" }
    /// The client underneath (shareable with the cache, locks, messaging).
    public let client: RedisClient
    private let ownsClient: Bool
    private let time: RateLimitTime?

    /// Uses an existing client; `close` leaves it open. `time` replaces the server's clock (tests).
    public init(client: RedisClient, time: RateLimitTime? = nil) {
        self.client = client
        self.ownsClient = false
        self.time = time
    }

    /// Creates a client of its own from a `redis://` or `rediss://` URL; `close` shuts it down.
    public init(url: String, time: RateLimitTime? = nil) throws {
        self.client = try RedisClient(url: url)
        self.ownsClient = true
        self.time = time
    }

    init(configuration: RedisClient.Configuration) {
        self.client = RedisClient(configuration: configuration)
        self.ownsClient = true
        self.time = nil
    }

    public func close() async throws {
        if ownsClient { try await client.shutdown() }
    }

    private var now: String { time.map { String($0.microseconds()) } ?? "" }
    /// With a caller's clock, keys live at least 10 minutes of real time: the server's expiry runs on
    /// its own clock, which a manual test clock does not move.
    private var minimumTTL: String { time == nil ? "0" : "600000" }

    public func acquire(_ requests: [RateLimitRequest]) async throws -> RateLimitDecision {
        var arguments = [now, minimumTTL]
        arguments.reserveCapacity(2 + requests.count * 5)
        for request in requests {
            arguments += [Self.code(request.policy.algorithm), String(request.policy.limit), String(request.policy.periodMicroseconds),
                          String(request.policy.burst), String(request.cost)]
        }
        let reply = try await client.run(Self.decisionScript, keys: requests.map(\.key), arguments: arguments)
        guard let values = try reply.array(for: "rate-limit script"), values.count == 1 + requests.count * 4 else {
            throw NimbusError(.internal, "the rate-limit script returned \(reply.description.prefix(120)); expected \(1 + requests.count * 4) integers")
        }
        let numbers = try values.map { try $0.int(for: "rate-limit script") }
        let allowed = numbers[0] == 1
        let states = requests.enumerated().map { index, request -> RateLimitState in
            let base = 1 + index * 4
            let outcome = RateLimitAlgorithms.Outcome(allowed: numbers[base] == 1, remaining: numbers[base + 1], resetAfter: numbers[base + 2],
                                                      retryAfter: numbers[base + 3] < 0 ? nil : numbers[base + 3], next: RateLimitCell(), ttl: 0)
            return RateLimitAlgorithms.state(outcome, policy: request.policy, charged: allowed, cost: request.cost)
        }
        return RateLimitDecision(allowed: allowed, states: states)
    }

    public func reset(key: String, policy: RateLimitPolicy) async throws {
        _ = try await client.delete([key])
    }

    public func acquireSlot(key: String, limit: Int, lease: Duration) async throws -> ConcurrencyDecision {
        let id = IDGenerator.shared.ulid().description
        let leaseMicros = lease.nimbusMicroseconds
        let reply = try await client.run(Self.takeSlot, keys: [key], arguments: [now, String(limit), String(leaseMicros), id, minimumTTL])
        guard let values = try reply.array(for: "slot script"), values.count == 3 else {
            throw NimbusError(.internal, "the slot script returned \(reply.description.prefix(120)); expected 3 integers")
        }
        let numbers = try values.map { try $0.int(for: "slot script") }
        if numbers[0] == 1 { return ConcurrencyDecision(slot: ConcurrencySlot(key: key, id: id), inUse: Int(numbers[1]), retryAfter: nil) }
        return ConcurrencyDecision(slot: nil, inUse: Int(numbers[1]), retryAfter: .microseconds(max(0, numbers[2])))
    }

    public func releaseSlot(_ slot: ConcurrencySlot) async throws -> Bool {
        let reply = try await client.run(Self.releaseSlot, keys: [slot.key], arguments: [now, slot.id])
        return try reply.int(for: "slot release script") == 1
    }

    static func code(_ algorithm: RateLimitPolicy.Algorithm) -> String {
        switch algorithm {
        case .gcra: return "g"
        case .tokenBucket: return "t"
        case .fixedWindow: return "f"
        case .slidingWindow: return "s"
        }
    }

    /// Lua that sets `now` (µs) from ARGV[1], or from the server's `TIME` when ARGV[1] is empty.
    static let now = """
        local now
        if ARGV[1] == '' then
          local t = redis.call('TIME')
          now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        else
          now = tonumber(ARGV[1])
        end
        """

    /// `RateLimitAlgorithms.decide` in Lua, for every request; writes only if all admit. Public so that
    /// operators and `Benchmarks/ratelimit-vs-redis-benchmark` can run the same script by its SHA.
    /// ARGV[1] = now in µs ('' for the server's TIME), ARGV[2] = the least TTL in ms; then per key: algorithm,
    /// limit, period µs, burst, cost.
    /// Returns {all_allowed, then per key: allowed, remaining, reset µs, retry µs or -1}.
    public static let decisionScript = RedisScript("""
        \(Self.now)
        local minttl = tonumber(ARGV[2])
        local eps = 1e-9
        local function fl(x) return math.floor(x + eps) end
        local function cl(x) x = x - eps; if x < 0 then x = 0 end; return math.ceil(x) end
        local out, writes, all = {0}, {}, 1
        for i = 1, #KEYS do
          local o = 2 + (i - 1) * 5
          local algo, limit, period = ARGV[o + 1], tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
          local burst, cost = tonumber(ARGV[o + 4]), tonumber(ARGV[o + 5])
          local s = redis.call('HMGET', KEYS[i], 'a', 'b', 'c')
          local a, b, c = tonumber(s[1]), tonumber(s[2]), tonumber(s[3])
          local ok, rem, reset, retry, na, nb, nc, ttl = 0, 0, 0, -1, nil, nil, nil, 0
          if algo == 'g' then
            local interval = period / limit
            local tol = interval * burst
            local tat = a or now
            if tat < now then tat = now end
            local ntat = tat + cost * interval
            if ntat - now <= tol + eps then
              ok, rem, reset, na, ttl = 1, fl((now + tol - ntat) / interval), cl(ntat - now), ntat, cl(ntat - now)
            else
              rem, reset, retry = fl((now + tol - tat) / interval), cl(tat - now), cl(ntat - tol - now)
              if rem < 0 then rem = 0 end
            end
          elseif algo == 't' then
            local interval = period / limit
            local last = b or now
            local el = now - last
            if el < 0 then el = 0 end
            local tokens = (a or burst) + el / interval
            if tokens > burst then tokens = burst end
            if tokens + eps >= cost then
              local left = tokens - cost
              ok, rem, reset, na, nb = 1, fl(left), cl((burst - left) * interval), left, now
              ttl = reset
            else
              rem, reset, retry = fl(tokens), cl((burst - tokens) * interval), cl((cost - tokens) * interval)
            end
          elseif algo == 'f' then
            local w = math.floor(now / period)
            local count = 0
            if a == w then count = b or 0 end
            local e = (w + 1) * period - now
            if count + cost <= limit then
              ok, rem, reset, na, nb, ttl = 1, limit - count - cost, cl(e), w, count + cost, cl(e)
            else
              rem, reset, retry = limit - count, cl(e), cl(e)
              if rem < 0 then rem = 0 end
            end
          else
            local w = math.floor(now / period)
            local cur, prev = 0, 0
            if a ~= nil then
              if a == w then cur, prev = b or 0, c or 0 elseif a == w - 1 then prev = b or 0 end
            end
            local f = (now - w * period) / period
            local est = prev * (1 - f) + cur
            if est + cost <= limit + eps then
              local after = cur + cost
              ok = 1
              rem = fl(limit - (prev * (1 - f) + after))
              if rem < 0 then rem = 0 end
              reset = cl((w + 2) * period - now)
              na, nb, nc, ttl = w, after, prev, reset
            else
              local r
              if cur + cost <= limit then
                r = ((1 - (limit - cur - cost) / prev) - f) * period
              else
                r = ((w + 1) * period - now) + (1 - (limit - cost) / cur) * period
              end
              rem = fl(limit - est)
              if rem < 0 then rem = 0 end
              if cur > 0 then reset = cl((w + 2) * period - now) elseif prev > 0 then reset = cl((w + 1) * period - now) else reset = 0 end
              retry = cl(r)
              if retry < 1 then retry = 1 end
            end
          end
          if ok == 0 then all = 0 end
          if cost > 0 then writes[#writes + 1] = {KEYS[i], na, nb, nc, ttl} end
          out[#out + 1] = ok
          out[#out + 1] = rem
          out[#out + 1] = reset
          out[#out + 1] = retry
        end
        if all == 1 then
          for _, w in ipairs(writes) do
            local fields = {}
            if w[2] ~= nil then fields[#fields + 1] = 'a'; fields[#fields + 1] = string.format('%.17g', w[2]) end
            if w[3] ~= nil then fields[#fields + 1] = 'b'; fields[#fields + 1] = string.format('%.17g', w[3]) end
            if w[4] ~= nil then fields[#fields + 1] = 'c'; fields[#fields + 1] = string.format('%.17g', w[4]) end
            redis.call('DEL', w[1])
            redis.call('HSET', w[1], unpack(fields))
            local ms = math.ceil(w[5] / 1000)
            if ms < minttl then ms = minttl end
            if ms < 1 then ms = 1 end
            redis.call('PEXPIRE', w[1], ms)
          end
        end
        out[1] = all
        return out
        """)

    /// ARGV: now µs ('' = server TIME), limit, lease µs, slot id, least TTL ms. Returns {taken, in use, µs until the oldest lease ends}.
    static let takeSlot = RedisScript("""
        \(Self.now)
        local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local n = redis.call('ZCARD', KEYS[1])
        if n < limit then
          redis.call('ZADD', KEYS[1], now + lease, ARGV[4])
          local ms = math.ceil(lease / 1000)
          if ms < tonumber(ARGV[5]) then ms = tonumber(ARGV[5]) end
          if n == 0 then redis.call('PEXPIRE', KEYS[1], ms) else redis.call('PEXPIRE', KEYS[1], ms, 'GT') end
          return {1, n + 1, 0}
        end
        local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        return {0, n, math.ceil(tonumber(first[2]) - now)}
        """)

    /// ARGV: now µs ('' = server TIME), slot id. Returns 1 if the slot was still leased.
    static let releaseSlot = RedisScript("""
        \(Self.now)
        local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
        redis.call('ZREM', KEYS[1], ARGV[2])
        if score and tonumber(score) > now then return 1 end
        return 0
        """)
}

extension URLOpenerRegistry where Resource == any RateLimitDriver {
    /// Adds `redis://` and `rediss://` (TLS); see ``RedisClient/Configuration/init(url:)`` for options.
    public func withRedis() -> Self {
        var copy = self
        copy.register("redis", "rediss") { url in
            RedisRateLimitDriver(configuration: try RedisClient.Configuration(url: url))
        }
        return copy
    }
}
