import Foundation

/// A value that expires — an access token, temporary credentials — fetched when needed and reused
/// until shortly before it expires. Concurrent callers share one fetch; a failed fetch is not cached.
///
/// ```swift
/// let credentials = ExpiringValueCache<AWSCredentials>(refreshAhead: .seconds(300)) {
///     let fresh = try await sts.assumeRole(...)
///     return (fresh, fresh.expiration)               // nil: never expires
/// }
/// let current = try await credentials.value()
/// ```
public actor ExpiringValueCache<Value: Sendable> {
    private let fetch: @Sendable () async throws -> (value: Value, expiresAt: Date?)
    private let refreshAhead: Duration
    private let now: @Sendable () -> Date
    private var cached: (value: Value, expiresAt: Date?)?
    private var inFlight: Task<(value: Value, expiresAt: Date?), any Error>?
    /// How many fetches were started.
    public private(set) var fetchCount = 0

    /// Creates a cache; a value is renewed once less than `refreshAhead` of its life remains.
    public init(refreshAhead: Duration = .seconds(300), now: @escaping @Sendable () -> Date = { Date() },
                fetch: @escaping @Sendable () async throws -> (value: Value, expiresAt: Date?)) {
        self.fetch = fetch
        self.refreshAhead = refreshAhead
        self.now = now
    }

    /// A valid value: the cached one, or a new one (one fetch, however many callers wait for it).
    public func value() async throws -> Value {
        if let cached, cached.expiresAt.map({ now().addingTimeInterval(refreshAhead.nimbusSeconds) < $0 }) ?? true { return cached.value }
        let task: Task<(value: Value, expiresAt: Date?), any Error>
        if let inFlight { task = inFlight } else {
            let fetch = self.fetch
            task = Task { try await fetch() }
            inFlight = task
            fetchCount += 1
        }
        do {
            let fresh = try await task.value
            if inFlight == task {
                inFlight = nil
                cached = fresh
            }
            return fresh.value
        } catch {
            if inFlight == task { inFlight = nil }
            throw error
        }
    }

    /// Forgets the cached value (after it was refused).
    public func invalidate() { cached = nil }
}
