import Foundation
import NimbusCore

/// One stored session. The session id itself is never stored: ``key`` is its SHA-256, so a copy of
/// the store does not hand out usable cookies.
public struct SessionRecord: Sendable, Codable, Hashable {
    /// SHA-256 of the session id, base64url.
    public var key: String
    /// The signed-in user, if any.
    public var userID: String?
    /// The application's data.
    public var data: [String: JSONValue]
    /// The per-session secret CSRF tokens are derived from.
    public var csrfSecret: String
    /// When the session was created (the absolute timeout counts from here).
    public var createdAt: Date
    /// When the session was last used.
    public var lastSeenAt: Date
    /// When the user last proved who they are (sign-in, re-authentication).
    public var authenticatedAt: Date?
    /// When the session dies if unused.
    public var idleExpiresAt: Date
    /// When the session dies whatever happens.
    public var absoluteExpiresAt: Date
    /// Bumped on every write (optimistic concurrency).
    public var version: Int64

    /// The earlier of the two expiries.
    public var expiresAt: Date { min(idleExpiresAt, absoluteExpiresAt) }

    /// Creates a record.
    public init(key: String, userID: String?, data: [String: JSONValue], csrfSecret: String, createdAt: Date, lastSeenAt: Date,
                authenticatedAt: Date?, idleExpiresAt: Date, absoluteExpiresAt: Date, version: Int64) {
        self.key = key
        self.userID = userID
        self.data = data
        self.csrfSecret = csrfSecret
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.authenticatedAt = authenticatedAt
        self.idleExpiresAt = idleExpiresAt
        self.absoluteExpiresAt = absoluteExpiresAt
        self.version = version
    }
}

/// What a session store implements: storage only. ``SessionManager`` owns ids, cookies, signing,
/// timeouts, rotation, limits and CSRF; the conformance suite (`NimbusSessionConformance`) states
/// what every store must do. Times are passed in (`now`), so no store keeps a clock of its own.
public protocol SessionStoreDriver: NimbusDriver {
    /// Stores a new session.
    /// - Throws: `alreadyExists` when a session with that key exists.
    func insert(_ session: SessionRecord) async throws

    /// The session with `key`, if it exists and has not expired at `now`.
    func find(_ key: String, now: Date) async throws -> SessionRecord?

    /// Replaces the stored session whose version is `expectedVersion` with `session` (whose version
    /// is one more). Returns `false`, changing nothing, when the session is gone or was changed since.
    func update(_ session: SessionRecord, expectedVersion: Int64) async throws -> Bool

    /// Removes the sessions with `keys`; returns how many existed.
    func remove(_ keys: [String]) async throws -> Int

    /// The sessions of `userID` that are alive at `now`, oldest first.
    func sessions(ofUser userID: String, now: Date) async throws -> [SessionRecord]

    /// Removes every session expired at `now`; returns how many.
    func purge(now: Date) async throws -> Int
}

extension URLOpenerRegistry where Resource == any SessionStoreDriver {
    /// An empty registry for the session domain; adapters add their schemes (`.withMemory()`, `.withSQLite()`).
    public static var session: URLOpenerRegistry<any SessionStoreDriver> { URLOpenerRegistry(domain: "session") }
}

/// The JSON form stores keep records in (dates as Unix milliseconds), shared by every store that
/// writes records as documents.
public enum SessionRecordCoding {
    /// The encoder.
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    /// Decodes a stored record.
    /// - Throws: `dataLoss` when the bytes are not a record.
    public static func decode(_ data: Data) throws -> SessionRecord {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        do { return try decoder.decode(SessionRecord.self, from: data) }
        catch { throw NimbusError(.dataLoss, "a stored session is unreadable: \(error)", underlying: error) }
    }

    /// Unix milliseconds of `date`, rounded down (what stores compare expiries with).
    public static func millis(_ date: Date) -> Int64 { date.nimbusMilliseconds }
}
