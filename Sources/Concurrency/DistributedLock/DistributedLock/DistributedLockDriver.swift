import NimbusCore

/// What a lock backend implements: leases with **fencing tokens**, and a fenced register that
/// refuses writes carrying an older token (the storage guard of Kleppmann's critique, Chubby's
/// sequencer check). The portable ``DistributedLocks`` adds validation, waiting, keep-alive and
/// leader election on top.
///
/// Rules every driver keeps (the conformance suite checks them):
/// - A lease is held by one owner at a time, until released or until its TTL passes on the
///   backend's clock. Acquiring is not re-entrant: a held lock refuses its own owner too.
/// - Every successful acquisition of a name gets a token greater than every earlier token of that
///   name, even after the lock expired or was released (tokens are never reused).
/// - Renew and release succeed only for the current owner *and* token.
public protocol DistributedLockDriver: NimbusDriver {
    /// Takes `name` for `owner` for `ttl`; returns the fencing token, or `nil` if someone holds it.
    func tryAcquire(_ name: String, owner: String, ttl: Duration) async throws -> UInt64?

    /// Extends the lease to `ttl` from now; `false` if it is no longer this owner's (expired, taken).
    func renew(_ name: String, owner: String, token: UInt64, ttl: Duration) async throws -> Bool

    /// Gives the lease up; `false` if it was no longer held by this owner and token.
    func release(_ name: String, owner: String, token: UInt64) async throws -> Bool

    /// Who holds `name` now, if anyone.
    func holder(of name: String) async throws -> LockHolder?

    /// Writes `value` to `resource` if `token` is at least the highest token written there before;
    /// returns whether it wrote. The guard a lock holder's writes go through.
    func fencedWrite(_ resource: String, value: String, token: UInt64) async throws -> Bool

    /// The last value written to `resource` and its token.
    func fencedRead(_ resource: String) async throws -> FencedValue?
}

/// The current holder of a lock.
public struct LockHolder: Sendable, Hashable {
    /// Who holds it.
    public var owner: String
    /// Its fencing token.
    public var token: UInt64
    /// Time left on the lease (on the backend's clock).
    public var expiresIn: Duration

    /// Creates a holder.
    public init(owner: String, token: UInt64, expiresIn: Duration) {
        self.owner = owner; self.token = token; self.expiresIn = expiresIn
    }
}

/// A value in a fenced register, with the token that wrote it.
public struct FencedValue: Sendable, Hashable {
    /// The value.
    public var value: String
    /// The token of the write.
    public var token: UInt64

    /// Creates a value.
    public init(value: String, token: UInt64) { self.value = value; self.token = token }
}
