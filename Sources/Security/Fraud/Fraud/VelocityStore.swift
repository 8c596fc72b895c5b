import Foundation
import NimbusCore

/// What a velocity counter saw when an event was recorded.
public struct VelocityObservation: Sendable, Hashable {
    /// Whether the member was already in the set (within its retention).
    public var seenBefore: Bool
    /// Members with a time inside the window, before this one was recorded.
    public var countBefore: Int
    /// Members with a time inside the window, this one included.
    public var countAfter: Int

    /// Creates an observation.
    public init(seenBefore: Bool, countBefore: Int, countAfter: Int) {
        self.seenBefore = seenBefore
        self.countBefore = countBefore
        self.countAfter = countAfter
    }
}

/// Sliding-window counters keyed by anything (a card, a device, an account): each key holds
/// members with their latest time. One atomic call records a member and answers how many members
/// fell in the window before and after, and whether the member was known — enough for "uses of
/// this card in the last hour" (members are event ids), "distinct cards on this device today"
/// (members are cards) and "first time this device is seen on this account".
public protocol VelocityStore: NimbusDriver {
    /// Records `member` under `key` at `time` (replacing an earlier time), counts the members whose
    /// time is at or after `time - window`, and forgets members older than `retain`.
    func observe(_ key: String, member: String, at time: Date, window: Duration, retain: Duration) async throws -> VelocityObservation
}

extension URLOpenerRegistry where Resource == any VelocityStore {
    /// An empty registry for fraud velocity counters; adapters add their schemes (`.withMemory()`, `.withRedis()`).
    public static var velocity: URLOpenerRegistry<any VelocityStore> { URLOpenerRegistry(domain: "fraud velocity") }
}
