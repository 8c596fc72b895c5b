import NimbusCore
import NimbusPush
import NimbusTesting
import Testing

/// The behaviour every ``PushDriver`` must have, stated once and run by each driver's tests
/// (memory, FCM and APNs against their local fakes).
public enum PushConformance {
    /// A push as the provider received it for one device.
    public struct Delivered: Sendable, Hashable {
        /// The alert's title.
        public var title: String?
        /// The alert's text.
        public var body: String?
        /// The custom data.
        public var data: [String: String]
        /// Creates a reading.
        public init(title: String?, body: String?, data: [String: String]) {
            self.title = title
            self.body = body
            self.data = data
        }
    }

    /// How a check reaches the driver under test.
    public struct Harness: Sendable {
        /// Makes a driver (one per check).
        public var makeDriver: @Sendable () async throws -> any PushDriver
        /// Two or more tokens the provider delivers to.
        public var tokens: [String]
        /// A token the provider reports dead (capability ``ConformanceCapability/deadTokens``).
        public var deadToken: String?
        /// What the provider received for a token, the latest push (capability ``ConformanceCapability/readBack``).
        public var readBack: (@Sendable (String) async throws -> Delivered?)?

        /// Creates a harness.
        public init(makeDriver: @escaping @Sendable () async throws -> any PushDriver, tokens: [String], deadToken: String? = nil,
                    readBack: (@Sendable (String) async throws -> Delivered?)? = nil) {
            self.makeDriver = makeDriver
            self.tokens = tokens
            self.deadToken = deadToken
            self.readBack = readBack
        }

        func client() async throws -> (PushClient, CountingPushDriver) {
            guard tokens.count >= 2 else { throw NimbusError(.invalidArgument, "the push suite needs two tokens") }
            let counting = CountingPushDriver(try await makeDriver())
            return (PushClient(driver: counting, maxConcurrency: 4, retry: .none), counting)
        }
    }

    /// Every check.
    public static let suite = ConformanceSuite<Harness>(domain: "push", checks: [
        ConformanceCheck("every token gets one result, in the tokens' order, with the provider's id") { harness in
            let (client, counting) = try await harness.client()
            let results = try await client.send(PushNotification(title: "Order shipped", body: "On its way"), to: harness.tokens)
            #expect(results.map(\.token) == harness.tokens)
            #expect(results.deliveredCount == harness.tokens.count, "\(results.map(\.outcome))")
            #expect(counting.sends == harness.tokens.count)
        },
        ConformanceCheck("title, text and data reach the device as written", needs: [.readBack]) { harness in
            let (client, _) = try await harness.client()
            let push = PushNotification(title: "Grüße, Zoë 🧾", body: "Ваш заказ #1042 — «в пути»", data: ["order": "1042", "note": "a b&c=d"])
            _ = try await client.send(push, to: [harness.tokens[0]])
            let delivered = try await ConformanceObservation.read(harness.readBack, harness.tokens[0], what: "push for the token")
            #expect(delivered == Delivered(title: push.title, body: push.body, data: push.data), "could not observe, or it differs")
        },
        ConformanceCheck("a dead token is reported for cleanup and not retried", needs: [.deadTokens]) { harness in
            let (client, counting) = try await harness.client()
            guard let dead = harness.deadToken else { throw NimbusError(.failedPrecondition, "the harness declares deadTokens but names none") }
            let results = try await client.send(PushNotification(body: "ping"), to: [harness.tokens[0], dead])
            #expect(results.invalidTokens == [dead])
            #expect(results.deliveredCount == 1)
            #expect(counting.sends == 2, "one attempt each: a dead token is not retried")
        },
        ConformanceCheck("a push with nothing to deliver is refused before the driver") { harness in
            let (client, counting) = try await harness.client()
            let error = await #expect(throws: NimbusError.self) { _ = try await client.send(PushNotification(), to: harness.tokens) }
            #expect(error?.code == .invalidArgument)
            #expect(counting.sends == 0)
        },
    ])
}

extension ConformanceCapability {
    /// The provider reports a token the harness names as no longer valid.
    public static let deadTokens: ConformanceCapability = "deadTokens"
}

/// Counts what reaches the driver under test.
final class CountingPushDriver: PushDriver {
    let inner: any PushDriver
    private let counter = CallCounter()
    init(_ inner: any PushDriver) { self.inner = inner }
    var provider: String { inner.provider }
    var sends: Int { counter.count }
    func send(_ notification: PushNotification, to token: String) async throws -> PushResult {
        counter.record()
        return try await inner.send(notification, to: token)
    }
    func close() async throws { try await inner.close() }
}
