import Foundation
import NimbusCore
import NimbusMFA
import NimbusTesting
import Synchronization
import Testing

/// The behaviour every ``OTPReplayGuard`` and ``OneTimeCodeStore`` must have, run against each
/// (memory, Redis). Account names are unique per check, so checks may share a server.
///
/// ```swift
/// @Test(arguments: MFAConformance.checks)
/// func conformance(_ check: MFAConformance.Check) async throws {
///     try await check.run(MFAConformance.Harness(makeGuard: { MemoryOTPReplayGuard() }, makeStore: { MemoryOneTimeCodeStore() }))
/// }
/// ```
public enum MFAConformance {
    /// How a check reaches the stores under test.
    public struct Harness: Sendable {
        public var makeGuard: @Sendable () async throws -> any OTPReplayGuard
        public var makeStore: @Sendable () async throws -> any OneTimeCodeStore
        /// Creates a harness.
        public init(makeGuard: @escaping @Sendable () async throws -> any OTPReplayGuard, makeStore: @escaping @Sendable () async throws -> any OneTimeCodeStore) {
            self.makeGuard = makeGuard
            self.makeStore = makeStore
        }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    /// Delivered codes, by destination.
    final class Outbox: Sendable {
        let sent = Mutex<[OneTimeCodeDestination: [String]]>([:])
        var delivery: OneTimeCodes.Delivery { { destination, code, _, _ in self.sent.withLock { $0[destination, default: []].append(code.reveal()) } } }
        func last(_ destination: OneTimeCodeDestination) -> String? { sent.withLock { $0[destination]?.last } }
    }

    static func account() -> String { "acct-\(UUID().uuidString.prefix(8).lowercased())" }

    /// A clock the checks move.
    final class Clock: Sendable {
        let time = Mutex(Date())
        func advance(_ seconds: TimeInterval) { time.withLock { $0 += seconds } }
        var now: @Sendable () -> Date { { self.time.withLock { $0 } } }
    }

    static func codes(_ harness: Harness, clock: Clock = Clock(), _ outbox: Outbox, maxAttempts: Int = 5) async throws -> OneTimeCodes {
        try OneTimeCodes(configuration: .init(resendCooldown: .seconds(30), maxAttempts: maxAttempts), store: try await harness.makeStore(),
                         secret: Secret([UInt8](repeating: 7, count: 32)), now: clock.now, deliver: outbox.delivery)
    }

    static func refused(_ body: () async throws -> Void) async -> NimbusError? {
        do {
            try await body()
            return nil
        } catch let error as NimbusError {
            return error
        } catch {
            return NimbusError(.internal, "\(error)")
        }
    }

    static func wrong(_ code: String) -> String {
        String(code.dropLast()) + (code.last == "0" ? "1" : "0")
    }

    /// Every check.
    public static let checks: [Check] = [
        Check("a TOTP step is accepted once per account; earlier steps are refused, later ones accepted") { harness in
            let guardian = try await harness.makeGuard(), account = account()
            #expect(try await guardian.use(step: 59_000_001, for: account))
            #expect(try await guardian.use(step: 59_000_001, for: account) == false)
            #expect(try await guardian.use(step: 59_000_000, for: account) == false)
            #expect(try await guardian.use(step: 59_000_002, for: account))
        },
        Check("accounts do not share used steps") { harness in
            let guardian = try await harness.makeGuard()
            let (one, two) = (account(), account())
            #expect(try await guardian.use(step: 7, for: one))
            #expect(try await guardian.use(step: 7, for: two))
        },
        Check("of twenty parallel uses of one step, exactly one wins") { harness in
            let guardian = try await harness.makeGuard(), account = account()
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<20 { group.addTask { try await guardian.use(step: 123_456, for: account) } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(wins == 1)
        },
        Check("a delivered code verifies once, for its account and purpose only") { harness in
            let outbox = Outbox(), account = account()
            let codes = try await codes(harness, outbox)
            try await codes.send(to: .email("\(account)@example.com"), account: account, purpose: "sign-in")
            let code = try #require(outbox.last(.email("\(account)@example.com")))
            #expect(code.count == 6 && code.allSatisfy(\.isNumber))
            #expect(await refused { try await codes.verify(code, account: account, purpose: "change-email") }?.code == .unauthenticated)
            #expect(await refused { try await codes.verify(code, account: account + "x", purpose: "sign-in") }?.code == .unauthenticated)
            try await codes.verify(code, account: account, purpose: "sign-in")
            #expect(await refused { try await codes.verify(code, account: account, purpose: "sign-in") }?.code == .unauthenticated)
        },
        Check("wrong codes count down and burn the code at the limit; the right code then fails too") { harness in
            let outbox = Outbox(), account = account()
            let codes = try await codes(harness, outbox, maxAttempts: 3)
            try await codes.send(to: .sms("+4915112345678"), account: account, purpose: "sign-in")
            let code = try #require(outbox.last(.sms("+4915112345678")))
            #expect(await refused { try await codes.verify(wrong(code), account: account, purpose: "sign-in") }?.message.contains("2 tries left") == true)
            #expect(await refused { try await codes.verify(wrong(code), account: account, purpose: "sign-in") }?.message.contains("1 try left") == true)
            #expect(await refused { try await codes.verify(wrong(code), account: account, purpose: "sign-in") }?.message.contains("void") == true)
            #expect(await refused { try await codes.verify(code, account: account, purpose: "sign-in") }?.code == .unauthenticated)
            #expect(await refused { try await codes.verify("12345", account: account, purpose: "sign-in") }?.code == .invalidArgument)
        },
        Check("a code expires; a resend inside the cooldown is refused, after it the new code replaces the old") { harness in
            let outbox = Outbox(), account = account(), clock = Clock()
            let codes = try await codes(harness, clock: clock, outbox)
            let destination = OneTimeCodeDestination.email("\(account)@example.com")
            try await codes.send(to: destination, account: account, purpose: "sign-in")
            let first = try #require(outbox.last(destination))
            let early = await refused { try await codes.send(to: destination, account: account, purpose: "sign-in") }
            #expect(early?.code == .resourceExhausted && early?.retryAfter != nil)
            clock.advance(31)
            try await codes.send(to: destination, account: account, purpose: "sign-in")
            let second = try #require(outbox.last(destination))
            if first != second { #expect(await refused { try await codes.verify(first, account: account, purpose: "sign-in") } != nil) }
            clock.advance(601)
            #expect(await refused { try await codes.verify(second, account: account, purpose: "sign-in") }?.code == .unauthenticated)
        },
        Check("of ten parallel redeems of the right code exactly one succeeds; parallel wrong guesses never exceed the limit") { harness in
            let outbox = Outbox(), account = account()
            let codes = try await codes(harness, outbox, maxAttempts: 3)
            try await codes.send(to: .email("\(account)@example.com"), account: account, purpose: "p")
            let code = try #require(outbox.last(.email("\(account)@example.com")))
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<10 { group.addTask { (try? await codes.verify(code, account: account, purpose: "p")) != nil } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(wins == 1)
            try await codes.send(to: .email("\(account)@example.com"), account: account, purpose: "q")
            let next = try #require(outbox.last(.email("\(account)@example.com")))
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<10 { group.addTask { _ = try? await codes.verify(wrong(next), account: account, purpose: "q") } }
            }
            #expect(await refused { try await codes.verify(next, account: account, purpose: "q") } != nil, "the code must be burnt after 3 of the 10 wrong guesses")
        },
    ]
}
