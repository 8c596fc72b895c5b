import Foundation
import Logging
@testable import NimbusCore
import NimbusTesting
import Synchronization
import Testing

@Suite("NimbusError", .timeLimit(.minutes(2)))
struct NimbusErrorTests {
    @Test("descriptions carry code, message, retry hint and the underlying error")
    func description() {
        struct VendorError: Error, Sendable { let status = 503 }
        let error = NimbusError(.unavailable, "Stripe is down; try later", underlying: VendorError(), retryAfter: .seconds(2))
        #expect(error.description.hasPrefix("unavailable: Stripe is down; try later (retry after 2s)"))
        #expect(error.description.contains("VendorError"))
        #expect(error.isRetryable)
    }

    @Test("retryability follows the code unless set explicitly")
    func retryable() {
        #expect(NimbusError(.resourceExhausted, "x").isRetryable)
        #expect(NimbusError(.deadlineExceeded, "x").isRetryable)
        #expect(!NimbusError(.invalidArgument, "x").isRetryable)
        #expect(!NimbusError(.unavailable, "x", retryable: false).isRetryable)
        #expect(NimbusError(.internal, "x", retryAfter: .seconds(1)).isRetryable)
    }

    @Test("wrap passes NimbusErrors through and maps cancellation")
    func wrap() {
        let original = NimbusError(.notFound, "nope")
        #expect(NimbusError.wrap(original, "ctx").code == .notFound)
        #expect(NimbusError.wrap(CancellationError(), "ctx").code == .canceled)
        #expect(NimbusError.wrap(URLError(.badURL), "fetch").code == .internal)
    }

    @Test("codes round-trip through Codable and by name; unknown names are rejected")
    func codes() throws {
        #expect(NimbusError.Code.allCases.count == 13)
        for code in NimbusError.Code.allCases {
            let data = try JSONEncoder().encode(code)
            #expect(try JSONDecoder().decode(NimbusError.Code.self, from: data) == code)
            #expect(NimbusError.Code(name: code.description) == code)
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(NimbusError.Code.self, from: Data("\"teapot\"".utf8)) }
    }
}

@Suite("Secret", .timeLimit(.minutes(2)))
struct SecretTests {
    @Test("description, debugDescription, interpolation and dump redact")
    func redaction() {
        let secret = Secret("sk-live-123")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "Secret(<redacted>)")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("sk-live"))
        struct Config { var apiKey: Secret<String> }
        var nested = ""
        dump(Config(apiKey: secret), to: &nested)
        #expect(!nested.contains("sk-live"))
        #expect(secret.reveal() == "sk-live-123")
    }

    @Test("logs never carry the value, even as metadata")
    func logging() {
        let lines = LineSink()
        var logger = Logger(label: "t") { label in JSONLogHandler(label: label, write: lines.append) }
        logger.logLevel = .debug
        let key = Secret("sk-live-123")
        logger.info("calling vendor with \(key)", metadata: ["key": "\(key)", "authorization": "Bearer sk-live-123", "user": "ada"])
        let line = lines.all.joined()
        #expect(!line.contains("sk-live"))
        #expect(line.contains("\"user\":\"ada\""))
        let object = try? JSONValue.parse(Data(line.utf8))
        #expect(object?["level"] == "info")
        #expect(object?["authorization"] == .string(LogRedaction.placeholder))
    }
}

final class LineSink: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    var append: @Sendable (String) -> Void { { line in self.lines.withLock { $0.append(line) } } }
}

@Suite("RetryPolicy", .timeLimit(.minutes(2)))
struct RetryPolicyTests {
    @Test("backoff doubles from the base and is capped")
    func bounds() {
        let policy = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(1), jitter: .none)
        #expect((1...6).map(policy.backoffBound(forRetry:)) == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
    }

    @Test("full jitter stays within [0, bound]")
    func jitter() {
        let policy = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        for _ in 0..<200 {
            guard case .retry(let delay) = policy.decide(after: NimbusError(.unavailable, "x"), attempt: 3) else { Issue.record("no retry"); return }
            #expect(delay >= .zero && delay <= .milliseconds(400))
        }
    }

    @Test("retries transient failures, waiting on the injected clock, then succeeds")
    func retriesThenSucceeds() async throws {
        let clock = ManualClock()
        let attempts = Atomic<Int>(0)
        let policy = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(100), jitter: .none)
        let task = Task {
            try await policy.run(clock: clock) { attempt -> String in
                attempts.add(1, ordering: .relaxed)
                if attempt < 3 { throw NimbusError(.unavailable, "flaky") }
                return "ok"
            }
        }
        await clock.waitForSleepers()
        #expect(clock.pendingDeadlines == [.init(offset: .milliseconds(100))])
        clock.advance(by: .milliseconds(100))
        await clock.waitForSleepers()
        #expect(clock.pendingDeadlines == [.init(offset: .milliseconds(300))])   // 100 + 200
        clock.advance(by: .milliseconds(200))
        #expect(try await task.value == "ok")
        #expect(attempts.load(ordering: .relaxed) == 3)
    }

    @Test("Retry-After replaces the backoff; too long a Retry-After gives up")
    func retryAfter() {
        let policy = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(100), maxRetryAfter: .seconds(30), jitter: .none)
        #expect(policy.decide(after: NimbusError(.resourceExhausted, "slow down", retryAfter: .seconds(7)), attempt: 1) == .retry(after: .seconds(7)))
        #expect(policy.decide(after: NimbusError(.resourceExhausted, "come back tomorrow", retryAfter: .seconds(3600)), attempt: 1) == .giveUp)
    }

    @Test("non-retryable errors, the last attempt and cancellation give up")
    func givesUp() async {
        let policy = RetryPolicy(maxAttempts: 3, jitter: .none)
        #expect(policy.decide(after: NimbusError(.invalidArgument, "bad"), attempt: 1) == .giveUp)
        #expect(policy.decide(after: NimbusError(.unavailable, "down"), attempt: 3) == .giveUp)
        #expect(policy.decide(after: CancellationError(), attempt: 1) == .giveUp)
        let calls = Atomic<Int>(0)
        await #expect(throws: NimbusError.self) {
            try await policy.run(clock: ManualClock()) { _ -> Int in
                calls.add(1, ordering: .relaxed)
                throw NimbusError(.permissionDenied, "no")
            }
        }
        #expect(calls.load(ordering: .relaxed) == 1)
    }

    @Test("an empty retry budget stops retries; successes refill it")
    func budget() async throws {
        let budget = RetryBudget(.init(capacity: 10, retryCost: 5, timeoutRetryCost: 10, successIncrement: 1))
        let policy = RetryPolicy(maxAttempts: 10, baseDelay: .zero, jitter: .none)
        let calls = Atomic<Int>(0)
        await #expect(throws: NimbusError.self) {
            try await policy.run(clock: ManualClock(), budget: budget) { _ -> Int in
                calls.add(1, ordering: .relaxed)
                throw NimbusError(.unavailable, "down")
            }
        }
        #expect(calls.load(ordering: .relaxed) == 3)   // first attempt + two retries of 5 tokens each
        #expect(budget.available == 0)
        _ = try await policy.run(clock: ManualClock(), budget: budget) { _ in 1 }
        #expect(budget.available == 1)
        #expect(!budget.withdraw(5))
    }
}

@Suite("IDs", .timeLimit(.minutes(2)))
struct IDTests {
    @Test("ULIDs are 26 Crockford characters, parse back, and sort by time")
    func ulid() throws {
        let generator = IDGenerator(now: { 1_700_000_000_000 })
        let id = generator.ulid()
        #expect(id.description.count == 26)
        #expect(ULID(id.description) == id)
        #expect(ULID(id.description.lowercased()) == id)
        #expect(id.timestampMilliseconds == 1_700_000_000_000)
        #expect(ULID("01ARZ3NDEKTSV4RRFFQ69G5FAV")?.timestampMilliseconds == 1_469_922_850_259)
        #expect(ULID("8ZZZZZZZZZZZZZZZZZZZZZZZZZ") == nil)   // overflows 128 bits
        #expect(ULID("01ARZ3NDEKTSV4RRFFQ69G5FAU!") == nil)
        #expect(ULID(bytes: [1, 2, 3]) == nil)
    }

    @Test("within one millisecond ids are strictly increasing")
    func monotonic() {
        let generator = IDGenerator(now: { 1_700_000_000_000 })
        let ulids = (0..<1000).map { _ in generator.ulid() }
        #expect(zip(ulids, ulids.dropFirst()).allSatisfy { $0 < $1 })
        let uuids = (0..<1000).map { _ in generator.uuidV7().uuidString }
        #expect(zip(uuids, uuids.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test("UUIDv7 has version 7, variant 10 and the millisecond timestamp")
    func uuidV7() {
        let generator = IDGenerator(now: { 0x0193_64A2_7C5E })
        let uuid = generator.uuidV7()
        let text = uuid.uuidString.lowercased()
        #expect(text.hasPrefix("019364a2-7c5e-7"))
        let variant = Array(text)[19]
        #expect("89ab".contains(variant))
    }

    @Test("a clock that steps back does not break ordering")
    func clockStepsBack() {
        let now = Atomic<UInt64>(2_000)
        let generator = IDGenerator(now: { now.load(ordering: .relaxed) })
        let first = generator.ulid()
        now.store(1_000, ordering: .relaxed)
        #expect(generator.ulid() > first)
    }
}

@Suite("URL openers", .timeLimit(.minutes(2)))
struct URLOpenerTests {
    @Test("parses credentials, port, path and typed options")
    func parse() throws {
        let url = try OpenURL("smtp://mailer:p%40ss@mail.example.com:587/x?starttls=required&timeout=250ms&retries=3&debug=yes")
        #expect(url.scheme == "smtp" && url.host == "mail.example.com" && url.port == 587 && url.path == "/x")
        #expect(url.user == "mailer" && url.password?.reveal() == "p@ss")
        #expect(url.options.string("starttls") == "required")
        #expect(try url.options.duration("timeout") == .milliseconds(250))
        #expect(try url.options.int("retries") == 3)
        #expect(try url.options.bool("debug") == true)
        #expect(!url.description.contains("p@ss") && url.description.contains("***"))
        #expect(throws: NimbusError.self) { try url.options.int("starttls") }
        #expect(throws: NimbusError.self) { try url.options.validate(known: ["timeout"], for: "smtp") }
        #expect(throws: NimbusError.self) { try OpenURL("not a url") }
    }

    @Test("the registry opens by scheme and lists the known ones for an unknown one")
    func registry() async throws {
        var registry = URLOpenerRegistry<String>(domain: "email")
        registry.register("mem", "memory") { url in "memory:\(url.host ?? "")" }
        registry.register("smtp") { url in "smtp:\(url.host ?? "")" }
        #expect(try await registry.open("MEM://a") == "memory:a")
        #expect(try await registry.open("smtp://relay") == "smtp:relay")
        let error = await #expect(throws: NimbusError.self) { try await registry.open("sendgrid://x") }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("mem://, memory://, smtp://") == true)
    }

    @Test("durations parse in every unit and reject junk", arguments: [
        ("250ms", Duration.milliseconds(250)), ("2s", .seconds(2)), ("1.5s", .milliseconds(1500)),
        ("5m", .seconds(300)), ("1h", .seconds(3600)), ("3", .seconds(3)), ("100us", .microseconds(100)),
    ])
    func durations(_ text: String, _ expected: Duration) {
        #expect(Duration.nimbusParse(text) == expected)
    }

    @Test("bad durations are nil")
    func badDurations() {
        for text in ["", "abc", "-1s", "1d", "nan"] { #expect(Duration.nimbusParse(text) == nil, "\(text)") }
    }
}

@Suite("Configuration", .timeLimit(.minutes(2)))
struct ConfigurationTests {
    @Test("environment (NIMBUS_ prefix) overrides the YAML file; nested keys read with dots")
    func layering() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-config-\(IDGenerator.shared.ulid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("nimbus.yaml").path
        try "cache:\n  url: mem://\n  redis:\n    pool:\n      size: 4\nserver:\n  port: 8080\n".write(toFile: file, atomically: true, encoding: .utf8)
        let config = try await NimbusConfiguration.reader(file: file, environment: ["NIMBUS_SERVER_PORT": "9090", "NIMBUS_CACHE_REDIS_PASSWORD": "hunter2"])
        #expect(config.string(forKey: "cache.url") == "mem://")
        #expect(config.int(forKey: "cache.redis.pool.size") == 4)
        #expect(config.int(forKey: "server.port") == 9090)
        #expect(config.string(forKey: "cache.redis.password") == "hunter2")
        #expect(config.string(forKey: "missing.key", default: "fallback") == "fallback")
    }

    @Test("a JSON file works; a missing or malformed file is a clear error")
    func files() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-config-\(IDGenerator.shared.ulid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let json = dir.appendingPathComponent("n.json").path
        try #"{"llm": {"default": {"model": "gpt-4o"}}}"#.write(toFile: json, atomically: true, encoding: .utf8)
        #expect(try await NimbusConfiguration.reader(file: json, environment: [:]).string(forKey: "llm.default.model") == "gpt-4o")
        let missing = await #expect(throws: NimbusError.self) { try await NimbusConfiguration.reader(file: dir.path + "/nope.yaml", environment: [:]) }
        #expect(missing?.code == .invalidArgument)
        _ = try await NimbusConfiguration.reader(file: dir.path + "/nope.yaml", allowMissingFile: true, environment: [:])
        let bad = dir.appendingPathComponent("bad.yaml").path
        try "cache: [unclosed".write(toFile: bad, atomically: true, encoding: .utf8)
        await #expect(throws: NimbusError.self) { try await NimbusConfiguration.reader(file: bad, environment: [:]) }
        await #expect(throws: NimbusError.self) { try await NimbusConfiguration.reader(file: dir.path + "/x.toml", environment: [:]) }
    }

    @Test("secret names are recognised")
    func secretNames() {
        for name in ["cache.redis.password", "NIMBUS_LLM_OPENAI_API_KEY", "stripe.apiKey", "github.token"] { #expect(NimbusConfiguration.isSecretName(name), "\(name)") }
        for name in ["cache.url", "server.port", "keyPrefix"] { #expect(!NimbusConfiguration.isSecretName(name), "\(name)") }
    }
}

@Suite("JSONValue", .timeLimit(.minutes(2)))
struct JSONValueTests {
    @Test("round-trips, keeps integers integral and reports malformed input")
    func roundTrip() throws {
        let value: JSONValue = ["a": 1, "b": [true, nil, 2.5, "x"], "c": ["d": "e"]]
        let data = try JSONEncoder().encode(value)
        #expect(try JSONValue.parse(data) == value)
        #expect(value.description == #"{"a":1,"b":[true,null,2.5,"x"],"c":{"d":"e"}}"#)
        let error = #expect(throws: NimbusError.self) { try JSONValue.parse(Data("{\"a\":".utf8)) }
        #expect(error?.code == .invalidArgument)
    }
}
