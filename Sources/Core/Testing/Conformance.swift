import NimbusCore
import Synchronization
import Testing

/// Something a driver can do beyond its domain's core (reading back what it delivered, reporting
/// dead tokens, threads…), declared by the adapter's tests. A check that needs a capability the
/// driver lacks is not run: it is reported as not supported, never as passed.
public struct ConformanceCapability: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The capability's name (`readBack`, `deadTokens`).
    public let name: String
    /// Names a capability.
    public init(_ name: String) { self.name = name }
    public init(stringLiteral value: String) { self.init(value) }
    public var description: String { name }
}

/// One named behaviour of a domain, stated once and run against every driver's harness.
///
/// A check **observes** what it states: when it cannot (a harness that cannot read back what was
/// delivered), it must need the capability that would let it, or fail — it never passes quietly.
public struct ConformanceCheck<Harness: Sendable>: Sendable, CustomTestStringConvertible {
    /// What the check states.
    public let name: String
    /// What the driver must be able to do for the check to run.
    public let needs: Set<ConformanceCapability>
    let body: @Sendable (Harness) async throws -> Void

    /// States a behaviour.
    public init(_ name: String, needs: Set<ConformanceCapability> = [], _ body: @escaping @Sendable (Harness) async throws -> Void) {
        self.name = name
        self.needs = needs
        self.body = body
    }

    public var testDescription: String { name }

    /// Runs the check against `harness`.
    public func run(_ harness: Harness) async throws { try await body(harness) }
}

/// A domain's conformance suite: every check, and which of them a driver's capabilities let run.
///
/// An adapter's test target runs the supported checks, one test case each, and states what it
/// does not support, so that a capability lost or gained shows up as a failing test:
///
/// ```swift
/// @Suite struct TwilioConformanceTests {
///     static let capabilities: Set<ConformanceCapability> = [.readBack, .rejectsInvalidNumbers]
///     @Test(arguments: SMSConformance.suite.checks(supportedBy: capabilities))
///     func conformance(_ check: ConformanceCheck<SMSConformance.Harness>) async throws {
///         try await check.run(harness())
///     }
///     @Test func notSupported() {
///         #expect(SMSConformance.suite.unsupported(by: Self.capabilities).map(\.name) == [])
///     }
/// }
/// ```
public struct ConformanceSuite<Harness: Sendable>: Sendable {
    /// The domain (`sms`, `push`).
    public let domain: String
    /// Every check.
    public let checks: [ConformanceCheck<Harness>]

    /// A suite.
    public init(domain: String, checks: [ConformanceCheck<Harness>]) {
        self.domain = domain
        self.checks = checks
    }

    /// The checks a driver with `capabilities` runs.
    public func checks(supportedBy capabilities: Set<ConformanceCapability>) -> [ConformanceCheck<Harness>] {
        checks.filter { $0.needs.isSubset(of: capabilities) }
    }

    /// The checks it does not run, for lack of a capability.
    public func unsupported(by capabilities: Set<ConformanceCapability>) -> [ConformanceCheck<Harness>] {
        checks.filter { !$0.needs.isSubset(of: capabilities) }
    }

    /// The capabilities any check needs.
    public var capabilities: Set<ConformanceCapability> { checks.reduce(into: []) { $0.formUnion($1.needs) } }
}

extension ConformanceCapability {
    /// The harness can read back what the driver delivered (the raw message, the stored post).
    public static let readBack: ConformanceCapability = "readBack"
}

/// Counts the calls that reach a driver under test, so a check can state "refused before the
/// driver" or "not retried" by observation. A conformance module's counting wrapper forwards each
/// call and records it here.
public final class CallCounter: Sendable {
    private let value = Atomic<Int>(0)
    /// A counter at zero.
    public init() {}
    /// Counts one call.
    public func record() { value.add(1, ordering: .relaxed) }
    /// The calls so far.
    public var count: Int { value.load(ordering: .relaxed) }
}

/// What a check reads back through a harness (capability ``ConformanceCapability/readBack``).
public enum ConformanceObservation {
    /// Reads back what a driver delivered through a harness's `readBack`, failing the check when the
    /// harness declared the capability but gave no closure, or when nothing was found: a check that
    /// could not observe fails, it never passes.
    public static func read<Key, Value>(_ readBack: (@Sendable (Key) async throws -> Value?)?, _ key: Key, what: String) async throws -> Value {
        guard let readBack else { throw NimbusError(.failedPrecondition, "the harness declares readBack but gives no readBack closure") }
        guard let value = try await readBack(key) else { throw NimbusError(.notFound, "could not observe: no delivered \(what)") }
        return value
    }

    /// ``read(_:_:what:)`` for a harness whose read-back takes no key (the latest delivery).
    public static func read<Value>(_ readBack: (@Sendable () async throws -> Value?)?, what: String) async throws -> Value {
        try await read(readBack.map { latest in { @Sendable (_: Void) in try await latest() } }, (), what: what)
    }
}
