import Foundation
import NIOCore
import NimbusBlob
import NimbusCore

/// What a cold store implements. Users call ``Archive``, which adds the polling, the waiting, the
/// checksums and one error taxonomy.
///
/// An archived object is addressed by the **id the store gave it** (``ArchivedObject/id``): the key
/// on S3, Azure and the embedded store, the archive id on a Glacier vault (which has no keys).
/// A driver throws `notFound` for an unknown id and `failedPrecondition` for a read of an object
/// that is not readable yet (archived, or still being restored).
public protocol ArchiveDriver: NimbusDriver {
    /// The tiers the store offers, coldest last, with their restore times and cost class.
    var tiers: [ArchiveTier] { get }

    /// Stores `body` (`size` bytes when known) as `name` in `tier`, streaming it; the object's id, size and state.
    func store(_ name: String, body: BlobBody, size: Int64?, tier: ArchiveTier, metadata: [String: String]) async throws -> ArchivedObject

    /// The object's state now. - Throws: `notFound`.
    func describe(_ id: String) async throws -> ArchivedObject

    /// Asks the store to bring a copy of the object back online for `days` days, at `speed`. Asking again
    /// while a restore is under way is not an error. - Throws: `notFound`; `invalidArgument` for a speed the tier does not offer.
    func requestRestore(_ id: String, speed: RestoreSpeed, days: Int) async throws -> ArchivedObject

    /// The bytes, once ``ArchiveState/isReadable``. - Throws: `failedPrecondition` before; `notFound`.
    func read(_ id: String) async throws -> BlobReader

    /// Deletes the object (early deletion may be charged: ``ArchiveTier/minimumStorage``). - Throws: `notFound`.
    func delete(_ id: String) async throws
}

/// A storage tier: how long a restore takes at each speed, and its cost class.
public struct ArchiveTier: Sendable, Hashable, CustomStringConvertible {
    /// The store's name for it (`GLACIER`, `DEEP_ARCHIVE`, `Archive`, `vault`).
    public var name: String
    /// Whether objects read without a restore (S3 Glacier Instant Retrieval, GCS Archive).
    public var readableWithoutRestore: Bool
    /// How long a restore takes at each speed the tier offers, as the store documents it.
    public var restoreTimes: [RestoreSpeed: ClosedRange<Duration>]
    /// The shortest storage that is billed: deleting or moving an object sooner is charged as if it stayed.
    public var minimumStorage: Duration
    /// What reading costs beyond storage.
    public var retrievalCost: RetrievalCost

    public init(name: String, readableWithoutRestore: Bool, restoreTimes: [RestoreSpeed: ClosedRange<Duration>], minimumStorage: Duration,
                retrievalCost: RetrievalCost) {
        self.name = name; self.readableWithoutRestore = readableWithoutRestore; self.restoreTimes = restoreTimes
        self.minimumStorage = minimumStorage; self.retrievalCost = retrievalCost
    }

    /// The speeds a restore may ask for, fastest first.
    public var speeds: [RestoreSpeed] { RestoreSpeed.allCases.filter { restoreTimes[$0] != nil } }

    public var description: String {
        let times = speeds.map { "\($0.rawValue) \(restoreTimes[$0]!.lowerBound.nimbusFormatted)–\(restoreTimes[$0]!.upperBound.nimbusFormatted)" }
        return "\(name) (\(readableWithoutRestore ? "readable at once" : "restore: " + times.joined(separator: ", ")); minimum \(minimumStorage.nimbusFormatted); \(retrievalCost))"
    }
}

/// How fast a restore is asked to be (and how much it costs: faster is dearer).
public enum RestoreSpeed: String, Sendable, Hashable, CaseIterable, Codable {
    /// Minutes (S3 Glacier Flexible Retrieval and Glacier vaults: 1–5 minutes; Azure: high priority).
    case expedited
    /// Hours.
    case standard
    /// The cheapest: up to 12 (Glacier) or 48 (Deep Archive) hours.
    case bulk
}

/// What a read costs beyond storage.
public enum RetrievalCost: String, Sendable, Hashable, Codable, CustomStringConvertible {
    /// Nothing per read (the embedded store).
    case none
    /// Charged per GB read, by speed.
    case perGigabyte
    public var description: String { self == .none ? "no retrieval charge" : "retrieval charged per GB" }
}

/// Where an archived object stands.
public enum ArchiveState: Sendable, Hashable, CustomStringConvertible {
    /// In the cold tier; a read needs a restore first.
    case archived
    /// A restore was asked for and is under way.
    case restoring(since: Date?)
    /// A restored copy is readable until the date (`nil` when the store does not say).
    case restored(until: Date?)
    /// Readable without a restore (an instant-retrieval tier).
    case online

    /// Whether ``ArchiveDriver/read(_:)`` works now.
    public var isReadable: Bool {
        switch self {
        case .restored, .online: true
        case .archived, .restoring: false
        }
    }

    public var description: String {
        switch self {
        case .archived: "archived"
        case .restoring(let since): "restoring" + (since.map { " since \($0.iso8601)" } ?? "")
        case .restored(let until): "restored" + (until.map { " until \($0.iso8601)" } ?? "")
        case .online: "online"
        }
    }
}

/// An object in a cold store.
public struct ArchivedObject: Sendable, Hashable {
    /// The id every later call takes.
    public var id: String
    /// The name it was stored under (the key, or a Glacier archive's description).
    public var name: String
    /// Bytes.
    public var size: Int64
    /// The tier's name.
    public var tier: String
    public var state: ArchiveState
    /// When it was stored.
    public var storedAt: Date?
    /// The checksums the store reports.
    public var checksums: BlobChecksums

    public init(id: String, name: String, size: Int64, tier: String, state: ArchiveState, storedAt: Date? = nil, checksums: BlobChecksums = .init()) {
        self.id = id; self.name = name; self.size = size; self.tier = tier; self.state = state; self.storedAt = storedAt; self.checksums = checksums
    }
}

/// The errors drivers share, worded once.
public enum ArchiveErrors {
    /// `notFound` for an unknown id.
    public static func notFound(_ id: String) -> NimbusError { NimbusError(.notFound, "no archived object \"\(id.prefix(200))\"") }

    /// `failedPrecondition` for a read of an object that is not readable yet.
    public static func notReadable(_ object: ArchivedObject) -> NimbusError {
        NimbusError(.failedPrecondition, "\(object.id.prefix(200)) is \(object.state) in \(object.tier); request a restore and wait until it is readable")
    }

    /// Runs `body`, reporting a `notFound` from the layer below (a blob driver) as ``notFound(_:)`` for `id`.
    public static func naming<T: Sendable>(_ id: String, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as NimbusError where error.code == .notFound { throw notFound(id) }
    }
}

extension ArchiveDriver {
    /// For a driver that keeps its objects in a blob store (S3, Azure): the blob under `id`, once
    /// ``describe(_:)`` says it is readable. - Throws: ``ArchiveErrors/notReadable(_:)`` before; `notFound`.
    public func readBlob(_ id: String, from blob: any BlobDriver) async throws -> BlobReader {
        let object = try await describe(id)
        guard object.state.isReadable else { throw ArchiveErrors.notReadable(object) }
        return try await ArchiveErrors.naming(id) { try await blob.read(id, range: nil, conditions: .none) }
    }
}

extension URLOpenerRegistry where Resource == any ArchiveDriver {
    /// An empty registry for the archive domain; adapters add their schemes (`.withFile()`, `.withS3()`, `.withGlacier()`).
    public static var archive: URLOpenerRegistry<any ArchiveDriver> { URLOpenerRegistry(domain: "archive") }
}
