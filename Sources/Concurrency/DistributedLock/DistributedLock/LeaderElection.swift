import NimbusCore

/// One leader among the processes that run the same election, built on a lock lease: the
/// leader holds the lock and renews it; when it stops renewing (crash, pause, network), another
/// candidate takes over with a higher fencing token — which is the leader's *term*.
///
/// ```swift
/// let election = LeaderElection(locks: locks, name: "scheduler", ttl: .seconds(10))
/// try await election.run { term in
///     // Only the leader gets here; `term.token` fences its writes. Return or throw to step down;
///     // if leadership is lost meanwhile, this task is cancelled.
///     try await scheduler.runUntilCancelled(fencingToken: term.token)
/// }
/// ```
public struct LeaderElection: Sendable {
    /// The locks the election runs on.
    public let locks: DistributedLocks
    /// The election's lock name.
    public let name: String
    /// The leader's lease: a crashed leader is replaced within this time.
    public let ttl: Duration
    /// This candidate's id.
    public let candidate: String

    /// Creates a candidate.
    public init(locks: DistributedLocks, name: String, ttl: Duration, candidate: String = DistributedLocks.makeOwner()) {
        self.locks = locks; self.name = name; self.ttl = ttl; self.candidate = candidate
    }

    /// The current leader, if any.
    public func leader() async throws -> LockHolder? { try await locks.holder(of: name) }

    /// Campaigns until elected, runs `lead` while leader, and campaigns again after losing the lease;
    /// returns when `lead` returns normally or the task is cancelled. Errors from `lead` are logged and
    /// end the term (another candidate may win the next one).
    public func run(_ lead: @escaping @Sendable (LockHandle) async throws -> Void) async throws {
        while !Task.isCancelled {
            let term: LockHandle
            do {
                term = try await locks.lock(name, ttl: ttl, timeout: ttl, owner: candidate)
            } catch let error as NimbusError where error.code == .deadlineExceeded {
                continue
            }
            do {
                try await locks.withHeld(term, lead)
                return
            } catch is CancellationError {
                try? await term.release()
                throw CancellationError()
            } catch {
                locks.logger.warning("leader term ended", metadata: ["election": "\(name)", "token": "\(term.token)", "error": "\(error)"])
                try? await term.release()
            }
        }
        throw CancellationError()
    }
}

