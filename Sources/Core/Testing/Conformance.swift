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
