#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation
import NIOCore
import NimbusArchive
import NimbusBlob
import NimbusCore

/// The embedded cold store: a directory, with a cold tier whose restores take the time you give
/// them — so code written for S3 Glacier or a Glacier vault (request, poll, read) runs unchanged on
/// a laptop and in tests, waits included.
///
/// - Tiers: `online` (readable at once) and `cold` (a restore first; each speed takes
///   ``Configuration/restoreTimes``, by default expedited 1 s, standard 5 s, bulk 15 s).
/// - Layout: `DIR/objects/<SHA-256 of the name>` holds the bytes and `…json` beside it the name, tier,
///   size, CRC-32C and restore request. Writes go to `DIR/tmp` and are renamed into place, so a
///   crash leaves the old object or the new one, never half of one; no name can reach outside `DIR`.
/// - A restored copy stays readable for the days asked (a day is ``Configuration/day``, 86 400 s by default).
///
/// ```swift
/// let archive = try await Archive.open("file:///var/lib/app/archive?standard=2s", openers: .archive.withFile())
/// ```
public final class FileArchiveDriver: ArchiveDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The directory (created when missing).
        public var directory: String
        /// How long a restore of the cold tier takes at each speed.
        public var restoreTimes: [RestoreSpeed: Duration]
        /// The length of a "day" of a restored copy's life (shorten it in tests).
        public var day: Duration

        public init(directory: String, restoreTimes: [RestoreSpeed: Duration] = [.expedited: .seconds(1), .standard: .seconds(5), .bulk: .seconds(15)],
                    day: Duration = .seconds(86_400)) {
            self.directory = directory; self.restoreTimes = restoreTimes; self.day = day
        }
    }

    /// What the sidecar holds.
    struct Record: Codable {
        var name: String
        var tier: String
        var size: Int64
        var crc32c: UInt32
        var storedAt: Date
        var metadata: [String: String]
        var restoreRequestedAt: Date?
        var restoreSpeed: RestoreSpeed?
        var restoreDays: Int?
    }

    public let configuration: Configuration
    public var provider: String { "file-archive" }
    public let tiers: [ArchiveTier]

    public init(configuration: Configuration) throws {
        self.configuration = configuration
        tiers = [
            ArchiveTier(name: "online", readableWithoutRestore: true, restoreTimes: [:], minimumStorage: .zero, retrievalCost: .none),
            ArchiveTier(name: "cold", readableWithoutRestore: false, restoreTimes: configuration.restoreTimes.mapValues { $0...$0 },
                        minimumStorage: .zero, retrievalCost: .none),
        ]
        for folder in ["objects", "tmp"] {
            do {
                try FileManager.default.createDirectory(atPath: configuration.directory + "/" + folder, withIntermediateDirectories: true)
            } catch {
                throw NimbusError(.permissionDenied, "cannot create \(configuration.directory)/\(folder): \(error)")
            }
        }
    }

    func path(_ id: String) -> String {
        let digest = SHA256.hash(data: Array(id.utf8)).map { String(format: "%02x", $0) }.joined()
        return configuration.directory + "/objects/" + digest
    }

    func record(_ id: String) throws -> Record {
        guard let data = FileManager.default.contents(atPath: path(id) + ".json") else { throw ArchiveErrors.notFound(id) }
        do { return try JSONDecoder().decode(Record.self, from: data) } catch {
            throw NimbusError(.dataLoss, "the record of \(id.prefix(200)) does not decode: \(error)")
        }
    }

    func save(_ record: Record, id: String) throws {
        let staged = configuration.directory + "/tmp/" + IDGenerator.shared.ulid().description
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try encoder.encode(record).write(to: URL(fileURLWithPath: staged))
        try Self.moveIntoPlace(staged, to: path(id) + ".json")
    }

    static func moveIntoPlace(_ from: String, to destination: String) throws {
        guard rename(from, destination) == 0 else {
            let code = errno
            try? FileManager.default.removeItem(atPath: from)
            throw NimbusError(.internal, "cannot rename into \(destination): \(String(cString: strerror(code)))")
        }
    }

    func state(of record: Record, now: Date = Date()) -> ArchiveState {
        if record.tier == "online" { return .online }
        guard let requested = record.restoreRequestedAt, let speed = record.restoreSpeed else { return .archived }
        let ready = requested.addingTimeInterval(Self.seconds(configuration.restoreTimes[speed] ?? .zero))
        guard now >= ready else { return .restoring(since: requested) }
        let until = ready.addingTimeInterval(Self.seconds(configuration.day) * Double(record.restoreDays ?? 1))
        return now < until ? .restored(until: until) : .archived
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    func object(_ id: String, _ record: Record) -> ArchivedObject {
        ArchivedObject(id: id, name: record.name, size: record.size, tier: record.tier, state: state(of: record), storedAt: record.storedAt,
                       checksums: BlobChecksums(crc32c: record.crc32c))
    }

    // MARK: ArchiveDriver

    public func store(_ name: String, body: BlobBody, size: Int64?, tier: ArchiveTier, metadata: [String: String]) async throws -> ArchivedObject {
        let staged = configuration.directory + "/tmp/" + IDGenerator.shared.ulid().description
        guard FileManager.default.createFile(atPath: staged, contents: nil), let handle = FileHandle(forWritingAtPath: staged) else {
            throw NimbusError(.permissionDenied, "cannot write in \(configuration.directory)/tmp")
        }
        var crc = CRC32C()
        var written: Int64 = 0
        do {
            defer { try? handle.close() }
            for try await chunk in body {
                chunk.withUnsafeReadableBytes { crc.update($0) }
                try handle.write(contentsOf: Data(chunk.readableBytesView))
                written += Int64(chunk.readableBytes)
            }
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(atPath: staged)
            throw NimbusError.wrap(error, "archiving \(name)")
        }
        if let size, size != written {
            try? FileManager.default.removeItem(atPath: staged)
            throw NimbusError(.dataLoss, "\(name): the source gave \(written) bytes, not the \(size) announced")
        }
        let record = Record(name: name, tier: tier.name, size: written, crc32c: crc.value, storedAt: Date(), metadata: metadata)
        try Self.moveIntoPlace(staged, to: path(name))
        try save(record, id: name)
        return object(name, record)
    }

    public func describe(_ id: String) async throws -> ArchivedObject {
        object(id, try record(id))
    }

    public func requestRestore(_ id: String, speed: RestoreSpeed, days: Int) async throws -> ArchivedObject {
        var record = try record(id)
        guard state(of: record) == .archived else { return object(id, record) }
        record.restoreRequestedAt = Date()
        record.restoreSpeed = speed
        record.restoreDays = days
        try save(record, id: id)
        return object(id, record)
    }

    public func read(_ id: String) async throws -> BlobReader {
        let record = try record(id)
        let state = state(of: record)
        guard state.isReadable else { throw ArchiveErrors.notReadable(object(id, record)) }
        let attributes = BlobAttributes(key: id, size: record.size, metadata: record.metadata, checksums: BlobChecksums(crc32c: record.crc32c),
                                        storageClass: record.tier)
        return BlobReader(attributes: attributes, body: BlobBody(file: path(id)), range: 0..<record.size)
    }

    public func delete(_ id: String) async throws {
        _ = try record(id)
        try? FileManager.default.removeItem(atPath: path(id))
        try FileManager.default.removeItem(atPath: path(id) + ".json")
    }
}

extension URLOpenerRegistry where Resource == any ArchiveDriver {
    /// Adds `file:///DIR` (options: `expedited`, `standard`, `bulk` — restore times such as `500ms`, `5s`, `2m`; `day`, the life of a day).
    public func withFile() -> Self {
        var copy = self
        copy.register("file", "a directory (embedded cold store)") { url in
            try url.options.validate(known: ["expedited", "standard", "bulk", "day"], for: "file archive")
            guard !url.path.isEmpty else { throw NimbusError(.invalidArgument, "file:// needs a directory: file:///var/lib/app/archive") }
            var configuration = FileArchiveDriver.Configuration(directory: url.path)
            for speed in RestoreSpeed.allCases {
                if let time = try url.options.duration(speed.rawValue) { configuration.restoreTimes[speed] = time }
            }
            if let day = try url.options.duration("day") { configuration.day = day }
            return try FileArchiveDriver(configuration: configuration)
        }
        return copy
    }
}
