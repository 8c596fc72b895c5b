import Foundation
import NIOCore
import NimbusArchive
import NimbusBlob
import NimbusBlobGCS
import NimbusCore
import NimbusGCP

/// Cloud Storage's colder storage classes — `NEARLINE`, `COLDLINE`, `ARCHIVE` — through NimbusBlobGCS.
/// Unlike S3 Glacier, every class is read at once, with no restore: what the colder classes cost is a
/// minimum storage duration (30, 90 and 365 days) and a retrieval charge per GB, which the tiers state.
/// The id of an object is its name.
///
/// ```swift
/// let archive = try await Archive.open("gs://cold-backups", openers: .archive.withGCS())      // ARCHIVE by default
/// ```
public final class GCSArchiveDriver: ArchiveDriver {
    /// The bytes: NimbusBlobGCS (resumable uploads for large objects, CRC-32C end to end).
    public let blob: GCSBlobDriver
    let bucket: Bucket
    public var provider: String { "gcs-archive" }

    public let tiers: [ArchiveTier] = [
        ArchiveTier(name: "STANDARD", readableWithoutRestore: true, restoreTimes: [:], minimumStorage: .zero, retrievalCost: .none),
        ArchiveTier(name: "NEARLINE", readableWithoutRestore: true, restoreTimes: [:], minimumStorage: .seconds(30 * 86_400), retrievalCost: .perGigabyte),
        ArchiveTier(name: "COLDLINE", readableWithoutRestore: true, restoreTimes: [:], minimumStorage: .seconds(90 * 86_400), retrievalCost: .perGigabyte),
        ArchiveTier(name: "ARCHIVE", readableWithoutRestore: true, restoreTimes: [:], minimumStorage: .seconds(365 * 86_400), retrievalCost: .perGigabyte),
    ]

    public init(blob: GCSBlobDriver) {
        self.blob = blob
        bucket = Bucket(driver: blob, configuration: .init(multipartThreshold: 16 * 1024 * 1024, partSize: 8 * 1024 * 1024))
    }

    func object(_ attributes: BlobAttributes) -> ArchivedObject {
        ArchivedObject(id: attributes.key, name: attributes.key, size: attributes.size, tier: attributes.storageClass ?? "STANDARD", state: .online,
                       storedAt: attributes.lastModified, checksums: attributes.checksums)
    }

    public func store(_ name: String, body: BlobBody, size: Int64?, tier: ArchiveTier, metadata: [String: String]) async throws -> ArchivedObject {
        object(try await bucket.put(name, from: body, options: BlobWriteOptions(metadata: metadata, storageClass: tier.name), sizeHint: size))
    }

    public func describe(_ id: String) async throws -> ArchivedObject {
        object(try await ArchiveErrors.naming(id) { try await blob.attributes(of: id) })
    }

    /// Every class is online: nothing to restore.
    public func requestRestore(_ id: String, speed: RestoreSpeed, days: Int) async throws -> ArchivedObject { try await describe(id) }

    public func read(_ id: String) async throws -> BlobReader {
        try await ArchiveErrors.naming(id) { try await blob.read(id, range: nil, conditions: .none) }
    }

    public func delete(_ id: String) async throws {
        try await ArchiveErrors.naming(id) { try await blob.delete(id, condition: nil) }
    }
}

extension URLOpenerRegistry where Resource == any ArchiveDriver {
    /// Adds `gs://BUCKET` (options: `endpoint`, `anonymous`); credentials from Application Default Credentials.
    public func withGCS() -> Self {
        var copy = self
        copy.register("gs", "Google Cloud Storage's colder classes") { url in
            try url.options.validate(known: ["endpoint", "anonymous"], for: "GCS archive")
            guard let bucket = url.host, !bucket.isEmpty else { throw NimbusError(.invalidArgument, "gs:// needs a bucket: gs://cold-backups") }
            let gcp = try GCPClient(configuration: .init(anonymous: try url.options.bool("anonymous") ?? false))
            return GCSArchiveDriver(blob: GCSBlobDriver(configuration: .init(bucket: bucket, endpoint: url.options.string("endpoint") ?? "https://storage.googleapis.com"),
                                                        gcp: gcp))
        }
        return copy
    }
}
