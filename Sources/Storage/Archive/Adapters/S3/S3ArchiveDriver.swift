import Foundation
import NIOCore
import NimbusArchive
import NimbusAWS
import NimbusBlob
import NimbusBlobS3
import NimbusCore
import NimbusHTTP

/// S3's archive storage classes through NimbusAWS: objects written with `x-amz-storage-class`
/// `GLACIER_IR`, `GLACIER` (Flexible Retrieval) or `DEEP_ARCHIVE` (streamed, in parts, with CRC-32C,
/// by NimbusBlobS3), restored with `RestoreObject` (`Days`, `GlacierJobParameters.Tier`), and
/// followed through `HeadObject`'s `x-amz-restore` (`ongoing-request="true"`, then
/// `ongoing-request="false", expiry-date="…"`). The id of an object is its key.
///
/// Restore times and minimum storage are Amazon's published ones (S3 User Guide, "Understanding S3
/// Glacier storage classes"): Flexible Retrieval expedited 1–5 minutes, standard 3–5 hours, bulk
/// 5–12 hours, 90 days minimum; Deep Archive standard within 12 hours, bulk within 48 hours, 180 days.
///
/// ```swift
/// let archive = try await Archive.open("s3://backups?region=eu-west-1", openers: .archive.withS3(), configuration: .init(tier: "DEEP_ARCHIVE"))
/// ```
public final class S3ArchiveDriver: ArchiveDriver {
    /// The bytes: NimbusBlobS3, whose `Bucket` streams large objects in parts.
    public let blob: S3BlobDriver
    let bucket: Bucket
    public var provider: String { "s3-archive" }

    public let tiers: [ArchiveTier] = [
        ArchiveTier(name: "GLACIER_IR", readableWithoutRestore: true, restoreTimes: [:], minimumStorage: .seconds(90 * 86_400), retrievalCost: .perGigabyte),
        ArchiveTier(name: "GLACIER", readableWithoutRestore: false,
                    restoreTimes: [.expedited: .seconds(60) ... .seconds(300), .standard: .seconds(3 * 3600) ... .seconds(5 * 3600),
                                   .bulk: .seconds(5 * 3600) ... .seconds(12 * 3600)],
                    minimumStorage: .seconds(90 * 86_400), retrievalCost: .perGigabyte),
        ArchiveTier(name: "DEEP_ARCHIVE", readableWithoutRestore: false,
                    restoreTimes: [.standard: .seconds(3600) ... .seconds(12 * 3600), .bulk: .seconds(3600) ... .seconds(48 * 3600)],
                    minimumStorage: .seconds(180 * 86_400), retrievalCost: .perGigabyte),
    ]

    public init(blob: S3BlobDriver) {
        self.blob = blob
        bucket = Bucket(driver: blob)
    }

    var s3: AWS.S3 { blob.s3 }

    public func store(_ name: String, body: BlobBody, size: Int64?, tier: ArchiveTier, metadata: [String: String]) async throws -> ArchivedObject {
        let written = try await bucket.put(name, from: body, options: BlobWriteOptions(metadata: metadata, storageClass: tier.name), sizeHint: size)
        return ArchivedObject(id: name, name: name, size: written.size, tier: tier.name, state: tier.readableWithoutRestore ? .online : .archived,
                              storedAt: written.lastModified ?? Date(), checksums: written.checksums)
    }

    public func describe(_ id: String) async throws -> ArchivedObject {
        let (s3, bucket) = (self.s3, blob.configuration.bucket)
        let head = try await ArchiveErrors.naming(id) { try await s3.headObject(.init(bucket: bucket, key: id, checksumMode: .enabled)) }
        let tier = head.storageClass?.rawValue ?? "STANDARD"
        let crc = head.checksumType == .composite ? nil : head.checksumCRC32C.flatMap(BlobChecksums.crc32c(base64:))
        return ArchivedObject(id: id, name: id, size: head.contentLength ?? 0, tier: tier, state: Self.state(tier: tier, restore: head.restore),
                              storedAt: head.lastModified, checksums: BlobChecksums(crc32c: crc))
    }

    /// `x-amz-restore` → state: absent (archived, or online for the classes read at once), `ongoing-request="true"`, or done with an expiry date.
    static func state(tier: String, restore: String?) -> ArchiveState {
        guard ["GLACIER", "DEEP_ARCHIVE"].contains(tier) else { return .online }
        guard let restore else { return .archived }
        if restore.contains("ongoing-request=\"true\"") { return .restoring(since: nil) }
        guard let start = restore.range(of: "expiry-date=\"") else { return .restored(until: nil) }
        let rest = restore[start.upperBound...]
        let until = rest.firstIndex(of: "\"").flatMap { HTTPDate.parse(String(rest[..<$0])) }
        if let until, until < Date() { return .archived }
        return .restored(until: until)
    }

    public func requestRestore(_ id: String, speed: RestoreSpeed, days: Int) async throws -> ArchivedObject {
        let tier = switch speed { case .expedited: "Expedited"; case .standard: "Standard"; case .bulk: "Bulk" }
        do {
            try await s3.client.call("s3", "RestoreObject", input: ["Bucket": .string(blob.configuration.bucket), "Key": .string(id),
                                                                     "RestoreRequest": ["Days": .number(Double(days)), "GlacierJobParameters": ["Tier": .string(tier)]]])
        } catch let error as NimbusError where (error.underlying as? AWSServiceError)?.code == "RestoreAlreadyInProgress" {
            // Asked twice: the first request stands.
        } catch let error as NimbusError where error.code == .notFound {
            throw ArchiveErrors.notFound(id)
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
    /// Adds `s3://BUCKET` (options: `region`, `profile`, `endpoint`); credentials as the AWS SDKs find them.
    public func withS3(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("s3", "Amazon S3 archive storage classes") { url in
            try url.options.validate(known: ["region", "profile", "endpoint"], for: "S3 archive")
            guard let bucket = url.host, !bucket.isEmpty else { throw NimbusError(.invalidArgument, "s3:// needs a bucket: s3://backups?region=eu-west-1") }
            let client = AWSClient(configuration: .init(region: url.options.string("region"), profile: url.options.string("profile"),
                                                        endpointURL: url.options.string("endpoint"), environment: environment))
            return S3ArchiveDriver(blob: S3BlobDriver(configuration: .init(bucket: bucket), client: client))
        }
        return copy
    }
}
