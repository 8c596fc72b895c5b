import Foundation
import NIOCore
import NimbusArchive
import NimbusAzure
import NimbusBlob
import NimbusBlobAzure
import NimbusCore

/// Azure Blob Storage's access tiers through NimbusBlobAzure: blobs written with `x-ms-access-tier`
/// (`Hot`, `Cool`, `Cold` read at once; `Archive` offline), restored by **rehydration** — Set Blob
/// Tier back to `Hot` with `x-ms-rehydrate-priority` `Standard` (up to 15 hours) or `High` (under an
/// hour for blobs under 10 GB) — followed through `x-ms-archive-status`. A rehydrated blob stays in
/// its new tier (`days` is not used): move it back with ``AzureBlobDriver/setTier(_:tier:rehydratePriority:)``.
/// The id of an object is its blob name.
///
/// ```swift
/// let archive = try await Archive.open("azblob://backups?account=acct", openers: .archive.withAzure())   // Archive tier by default
/// ```
public final class AzureArchiveDriver: ArchiveDriver {
    /// The bytes and the tier calls: NimbusBlobAzure.
    public let blob: AzureBlobDriver
    let bucket: Bucket
    public var provider: String { "azblob-archive" }

    /// Microsoft's published figures ("Access tiers for blob data", "Rehydrate an archived blob").
    public let tiers: [ArchiveTier] = [
        ArchiveTier(name: "Hot", readableWithoutRestore: true, restoreTimes: [:], minimumStorage: .zero, retrievalCost: .none),
        ArchiveTier(name: "Cool", readableWithoutRestore: true, restoreTimes: [:], minimumStorage: .seconds(30 * 86_400), retrievalCost: .perGigabyte),
        ArchiveTier(name: "Cold", readableWithoutRestore: true, restoreTimes: [:], minimumStorage: .seconds(90 * 86_400), retrievalCost: .perGigabyte),
        ArchiveTier(name: "Archive", readableWithoutRestore: false,
                    restoreTimes: [.expedited: .seconds(60) ... .seconds(3600), .standard: .seconds(3600) ... .seconds(15 * 3600)],
                    minimumStorage: .seconds(180 * 86_400), retrievalCost: .perGigabyte),
    ]

    public init(blob: AzureBlobDriver) {
        self.blob = blob
        bucket = Bucket(driver: blob)
    }

    public func store(_ name: String, body: BlobBody, size: Int64?, tier: ArchiveTier, metadata: [String: String]) async throws -> ArchivedObject {
        let written = try await bucket.put(name, from: body, options: BlobWriteOptions(metadata: metadata, storageClass: tier.name), sizeHint: size)
        return ArchivedObject(id: name, name: name, size: written.size, tier: tier.name, state: tier.readableWithoutRestore ? .online : .archived,
                              storedAt: written.lastModified ?? Date(), checksums: BlobChecksums(crc32c: written.checksums.crc32c))
    }

    public func describe(_ id: String) async throws -> ArchivedObject {
        let (attributes, status) = try await ArchiveErrors.naming(id) { (try await blob.attributes(of: id), try await blob.tierStatus(id)) }
        let state: ArchiveState = status.tier != "Archive" ? .online : status.archiveStatus?.hasPrefix("rehydrate-pending") == true ? .restoring(since: status.changedAt) : .archived
        return ArchivedObject(id: id, name: id, size: attributes.size, tier: status.tier, state: state, storedAt: attributes.lastModified,
                              checksums: attributes.checksums)
    }

    public func requestRestore(_ id: String, speed: RestoreSpeed, days: Int) async throws -> ArchivedObject {
        do {
            try await ArchiveErrors.naming(id) { try await blob.setTier(id, tier: "Hot", rehydratePriority: speed == .expedited ? "High" : "Standard") }
        } catch let error as NimbusError where error.code == .failedPrecondition {
            // Being rehydrated already: the first request stands.
        }
        return try await describe(id)
    }

    public func read(_ id: String) async throws -> BlobReader {
        try await readBlob(id, from: blob)
    }

    public func delete(_ id: String) async throws {
        try await ArchiveErrors.naming(id) { try await blob.delete(id, condition: nil) }
    }
}

extension URLOpenerRegistry where Resource == any ArchiveDriver {
    /// Adds `azblob://CONTAINER` (options and credentials as NimbusBlobAzure's `azblob://`).
    public func withAzure(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("azblob", "Azure Blob Storage access tiers") { url in AzureArchiveDriver(blob: try AzureBlobDriver.open(url, environment: environment)) }
        return copy
    }
}
