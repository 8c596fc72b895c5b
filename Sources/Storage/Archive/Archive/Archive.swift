import Foundation
import Logging
import NIOCore
import NimbusBlob
import NimbusCore
import Synchronization

/// Cold storage with restore semantics — S3 Glacier and Deep Archive, Glacier vaults, or the
/// embedded store — behind one flow: **archive, request a restore, wait until readable, read.**
/// Each tier says how long a restore takes at each speed and what it costs (``ArchiveTier``), so a
/// caller can choose before paying.
///
/// ```swift
/// let archive = try await Archive.open("s3://backups?tier=DEEP_ARCHIVE&region=eu-west-1", openers: .archive.withS3())
/// let object = try await archive.store("db/2026-12-07.tar", file: "/var/backups/db.tar")
/// // … months later …
/// try await archive.requestRestore(object.id, speed: .bulk, days: 2)
/// try await archive.waitUntilReadable(object.id, pollEvery: .seconds(900), timeout: .seconds(60 * 3600))
/// try await archive.download(object.id, to: "/tmp/db.tar")
/// ```
public final class Archive: PortableClient {
    /// Settings.
    public struct Configuration: Sendable {
        /// The tier new objects go to; the driver's coldest when `nil`.
        public var tier: String?
        /// Retries of idempotent calls (describe, read, restore requests).
        public var retry: RetryPolicy

        public init(tier: String? = nil, retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(200), maxDelay: .seconds(10))) {
            self.tier = tier; self.retry = retry
        }
    }

    let driver: any ArchiveDriver
    public let configuration: Configuration
    private let calls: PortableCalls
    private let closed = Atomic<Bool>(false)

    static let operations = ["store", "describe", "restore", "read", "delete"]

    public init(driver: some ArchiveDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.archive")) {
        self.driver = driver
        self.configuration = configuration
        calls = PortableCalls(domain: "archive", provider: driver.provider, operations: Self.operations, logger: logger)
    }

    /// Opens the driver that `url`'s scheme names in `openers`.
    public static func open(_ url: String, openers: URLOpenerRegistry<any ArchiveDriver>, configuration: Configuration = .init(),
                            logger: Logger = Logger(label: "nimbus.archive")) async throws -> Archive {
        Archive(driver: try await openers.open(url), configuration: configuration, logger: logger)
    }

    public var provider: String { driver.provider }
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// The store's tiers, warmest first, with restore times and cost class.
    public var tiers: [ArchiveTier] { driver.tiers }

    /// The tier named `name`. - Throws: `invalidArgument` naming the tiers there are.
    public func tier(named name: String?) throws -> ArchiveTier {
        guard let name else {
            guard let coldest = driver.tiers.last else { throw NimbusError(.internal, "\(driver.provider) declares no tier") }
            return coldest
        }
        guard let tier = driver.tiers.first(where: { $0.name == name }) else {
            throw NimbusError(.invalidArgument, "\(driver.provider) has no tier \(name); its tiers: \(driver.tiers.map(\.name).joined(separator: ", "))")
        }
        return tier
    }

    /// Closes the driver. Later calls throw `failedPrecondition`.
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try await driver.close()
    }

    // MARK: Storing

    /// Stores `bytes` as `name` in `tier` (the configured or coldest tier when `nil`).
    @discardableResult
    public func store(_ name: String, _ bytes: ByteBuffer, tier: String? = nil, metadata: [String: String] = [:]) async throws -> ArchivedObject {
        try await store(name, body: BlobBody(bytes), size: Int64(bytes.readableBytes), tier: tier, metadata: metadata)
    }

    /// Stores the file at `path`, streamed.
    @discardableResult
    public func store(_ name: String, file path: String, tier: String? = nil, metadata: [String: String] = [:]) async throws -> ArchivedObject {
        let size: Int64
        do { size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0 } catch {
            throw NimbusError(.notFound, "cannot read \(path): \(error)")
        }
        return try await store(name, body: BlobBody(file: path), size: size, tier: tier, metadata: metadata)
    }

    func store(_ name: String, body: BlobBody, size: Int64?, tier: String?, metadata: [String: String]) async throws -> ArchivedObject {
        try BlobKey.validate(name)
        let chosen = try self.tier(named: tier ?? configuration.tier)
        let metadata = try BlobKey.validate(metadata: metadata)
        // A stream cannot be replayed: a store runs once.
        return try await calls.run("store", retry: .none, closed: closed.load(ordering: .relaxed)) {
            try await self.driver.store(name, body: body, size: size, tier: chosen, metadata: metadata)
        }
    }

    // MARK: Restoring

    /// The object's state now. - Throws: `notFound`.
    public func describe(_ id: String) async throws -> ArchivedObject {
        try await calls.run("describe", retry: configuration.retry, closed: closed.load(ordering: .relaxed)) { try await self.driver.describe(id) }
    }

    /// Asks for a copy of `id` to be readable for `days` days, restored at `speed`. Asking while one is under
    /// way, or for an object already readable, is not an error: the state says which.
    /// - Throws: `notFound`; `invalidArgument` for a speed the object's tier does not offer or `days` outside 1–30 000.
    @discardableResult
    public func requestRestore(_ id: String, speed: RestoreSpeed = .standard, days: Int = 1) async throws -> ArchivedObject {
        guard (1...30_000).contains(days) else { throw NimbusError(.invalidArgument, "a restored copy is kept 1 to 30 000 days, not \(days)") }
        let current = try await describe(id)
        if current.state.isReadable || current.state != .archived { return current }
        let tier = try self.tier(named: current.tier)
        guard tier.restoreTimes[speed] != nil else {
            throw NimbusError(.invalidArgument, "tier \(tier.name) restores at \(tier.speeds.map(\.rawValue).joined(separator: ", ")), not \(speed.rawValue)")
        }
        return try await calls.run("restore", retry: configuration.retry, closed: closed.load(ordering: .relaxed)) {
            try await self.driver.requestRestore(id, speed: speed, days: days)
        }
    }

    /// Polls until `id` is readable, every `pollEvery`, for at most `timeout`; the readable state.
    /// - Throws: `failedPrecondition` when the object is archived and no restore was asked for;
    ///   `deadlineExceeded` after `timeout` (the restore goes on: wait again later).
    @discardableResult
    public func waitUntilReadable(_ id: String, pollEvery: Duration = .seconds(60), timeout: Duration = .seconds(48 * 3600)) async throws -> ArchivedObject {
        let deadline = ContinuousClock.now + timeout
        while true {
            let object = try await describe(id)
            switch object.state {
            case .restored, .online: return object
            case .archived: throw NimbusError(.failedPrecondition, "\(id) is archived and no restore is under way; call requestRestore first")
            case .restoring: break
            }
            guard ContinuousClock.now + pollEvery <= deadline else {
                throw NimbusError(.deadlineExceeded, "\(id) is still being restored after \(timeout.nimbusFormatted); the restore goes on, wait again later")
            }
            try await Task.sleep(for: pollEvery)
        }
    }

    // MARK: Reading

    /// Opens a readable object for streaming (its count, and its checksum where the store keeps one, are checked as it ends).
    /// - Throws: `failedPrecondition` while it is archived or being restored; `notFound`.
    public func reader(_ id: String) async throws -> BlobReader {
        var reader = try await calls.run("read", retry: configuration.retry, closed: closed.load(ordering: .relaxed)) { try await self.driver.read(id) }
        reader.body = reader.body.verifying(id, count: Int64(reader.range.count), crc32c: reader.attributes.checksums.crc32c)
        return reader
    }

    /// The whole object, up to `limit` bytes.
    public func get(_ id: String, limit: Int = 256 * 1024 * 1024) async throws -> ByteBuffer {
        try await reader(id).body.collect(upTo: limit)
    }

    /// Writes the object to `path`, beside it first and renamed once complete.
    public func download(_ id: String, to path: String) async throws {
        try await reader(id).body.write(toFile: path)
    }

    /// Deletes the object. - Throws: `notFound`.
    public func delete(_ id: String) async throws {
        try await calls.run("delete", retry: configuration.retry, closed: closed.load(ordering: .relaxed)) { try await self.driver.delete(id) }
    }
}
