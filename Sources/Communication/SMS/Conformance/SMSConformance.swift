import NimbusCore
import NimbusSMS
import NimbusTesting
import Testing

/// The behaviour every ``SMSDriver`` must have, stated once and run by each driver's tests
/// (memory, Twilio against its spec-checked fake, SNS against moto).
///
/// ```swift
/// @Test(arguments: SMSConformance.suite.checks(supportedBy: [.readBack]))
/// func conformance(_ check: ConformanceCheck<SMSConformance.Harness>) async throws {
///     let memory = MemorySMSDriver()
///     try await check.run(.init(makeDriver: { memory }, from: .number(try PhoneNumber("+15005550006")),
///                               to: try PhoneNumber("+14155550100"), readBack: { receipt in … }))
/// }
/// ```
public enum SMSConformance {
    /// A message as the provider stored or delivered it.
    public struct Delivered: Sendable, Hashable {
        /// The destination, E.164.
        public var to: String
        /// The text.
        public var body: String
        /// Creates a reading.
        public init(to: String, body: String) {
            self.to = to
            self.body = body
        }
    }

    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes a driver (one per check).
        public var makeDriver: @Sendable () async throws -> any SMSDriver
        /// A sender the provider accepts.
        public var from: SMSSender
        /// A destination the provider accepts.
        public var to: PhoneNumber
        /// A destination the provider refuses (capability ``ConformanceCapability/rejectsInvalidNumbers``).
        public var invalidNumber: PhoneNumber?
        /// What the provider stored for a receipt (capability ``ConformanceCapability/readBack``).
        public var readBack: (@Sendable (SMSReceipt) async throws -> Delivered?)?

        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any SMSDriver, from: SMSSender, to: PhoneNumber,
                    invalidNumber: PhoneNumber? = nil, readBack: (@Sendable (SMSReceipt) async throws -> Delivered?)? = nil) {
            self.makeDriver = makeDriver
            self.from = from
            self.to = to
            self.invalidNumber = invalidNumber
            self.readBack = readBack
        }

        func client() async throws -> (SMSClient, CountingSMSDriver) {
            let counting = CountingSMSDriver(try await makeDriver())
            return (SMSClient(driver: counting, configuration: .init(retry: .none)), counting)
        }

        func delivered(_ receipt: SMSReceipt) async throws -> Delivered {
            try await ConformanceObservation.read(readBack, receipt, what: "message for receipt \(receipt.id)")
        }
    }

    /// Every check.
    public static let suite = ConformanceSuite<Harness>(domain: "sms", checks: [
        ConformanceCheck("a message is accepted: the receipt names the provider and an id, and counts the segments") { harness in
            let (client, counting) = try await harness.client()
            let message = SMSMessage(from: harness.from, to: harness.to, body: "Your code is 424242")
            let receipt = try await client.send(message)
            #expect(!receipt.id.isEmpty)
            #expect(receipt.provider == counting.provider)
            #expect(receipt.segments == message.encoding.segments && receipt.segments == 1)
            #expect(counting.sends == 1)
        },
        ConformanceCheck("a UCS-2 body of several segments arrives as written, to the number given", needs: [.readBack]) { harness in
            let (client, _) = try await harness.client()
            let body = "Ваш код: 424242 — ne le partagez pas 🙂 " + String(repeating: "ю", count: 80)
            let message = SMSMessage(from: harness.from, to: harness.to, body: body)
            #expect(message.encoding.segments == 2, "UCS-2: 67 characters a segment once concatenated")
            let receipt = try await client.send(message)
            let delivered = try await harness.delivered(receipt)
            #expect(delivered == Delivered(to: harness.to.e164, body: body))
        },
        ConformanceCheck("an empty body and a body over the segment limit are refused before the driver") { harness in
            let (client, counting) = try await harness.client()
            let empty = await #expect(throws: NimbusError.self) { try await client.send(SMSMessage(from: harness.from, to: harness.to, body: "")) }
            #expect(empty?.code == .invalidArgument)
            let long = SMSMessage(from: harness.from, to: harness.to, body: String(repeating: "x", count: 153 * 10 + 1))
            let tooLong = await #expect(throws: NimbusError.self) { try await client.send(long) }
            #expect(tooLong?.code == .invalidArgument)
            #expect(counting.sends == 0, "nothing reached the driver")
        },
        ConformanceCheck("a number the provider refuses is a clear error that is not retried", needs: [.rejectsInvalidNumbers]) { harness in
            let (client, counting) = try await harness.client()
            guard let invalid = harness.invalidNumber else { throw NimbusError(.failedPrecondition, "the harness declares rejectsInvalidNumbers but names no number") }
            let error = await #expect(throws: NimbusError.self) { try await client.send(SMSMessage(from: harness.from, to: invalid, body: "hello")) }
            #expect(error?.code == .invalidArgument || error?.code == .failedPrecondition, "\(String(describing: error))")
            #expect(error?.isRetryable == false)
            #expect(counting.sends == 1)
        },
    ])
}

extension ConformanceCapability {
    /// The provider refuses a destination the harness names (Twilio's test number +15005550001).
    public static let rejectsInvalidNumbers: ConformanceCapability = "rejectsInvalidNumbers"
}

/// Counts what reaches the driver under test.
final class CountingSMSDriver: SMSDriver {
    let inner: any SMSDriver
    private let counter = CallCounter()
    init(_ inner: any SMSDriver) { self.inner = inner }
    var provider: String { inner.provider }
    var sends: Int { counter.count }
    func send(_ message: SMSMessage) async throws -> SMSReceipt {
        counter.record()
        return try await inner.send(message)
    }
    func close() async throws { try await inner.close() }
}
