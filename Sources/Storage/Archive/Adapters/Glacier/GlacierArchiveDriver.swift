import Foundation
import NIOCore
import NimbusArchive
import NimbusAWS
import NimbusBlob
import NimbusCore
import NimbusHTTP

/// An Amazon Glacier vault (the original vault API, `2012-06-01`) through NimbusAWS: `UploadArchive`
/// with its SHA-256 tree hash, restores as `archive-retrieval` jobs (`InitiateJob` with a tier,
/// followed through `ListJobs`), reads through `GetJobOutput` checked against the job's tree hash,
/// and `DeleteArchive`.
///
/// A vault has no keys: the id of an object is the **archive id** `store` returns, and the name is
/// kept as the archive's description. A vault cannot tell an archive's size, or whether an id exists,
/// without a job: until one is asked for, ``describe(_:)`` reports the archive as archived with size 0.
/// A job's output stays readable for 24 hours (`days` is not used). One upload takes the whole object
/// in memory, up to ``Configuration/maximumUploadSize``: moto does not serve the vault's multipart uploads.
///
/// ```swift
/// let archive = try await Archive.open("glacier://backups?region=eu-west-1", openers: .archive.withGlacier())
/// ```
public final class GlacierArchiveDriver: ArchiveDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The vault.
        public var vault: String
        /// The owning account (`-`: the credentials' own).
        public var accountID: String
        /// The largest object stored in one `UploadArchive` (512 MiB; the service allows 4 GiB).
        public var maximumUploadSize: Int

        public init(vault: String, accountID: String = "-", maximumUploadSize: Int = 512 * 1024 * 1024) {
            self.vault = vault; self.accountID = accountID; self.maximumUploadSize = maximumUploadSize
        }
    }

    public let configuration: Configuration
    public let client: AWSClient
    public var provider: String { "glacier" }

    /// Amazon's published retrieval times for vaults: expedited 1–5 minutes, standard 3–5 hours, bulk 5–12 hours; 90 days minimum.
    public let tiers: [ArchiveTier] = [
        ArchiveTier(name: "vault", readableWithoutRestore: false,
                    restoreTimes: [.expedited: .seconds(60) ... .seconds(300), .standard: .seconds(3 * 3600) ... .seconds(5 * 3600),
                                   .bulk: .seconds(5 * 3600) ... .seconds(12 * 3600)],
                    minimumStorage: .seconds(90 * 86_400), retrievalCost: .perGigabyte),
    ]

    public init(configuration: Configuration, client: AWSClient) {
        self.configuration = configuration
        self.client = client
    }

    var vaultInput: [String: JSONValue] { ["accountId": .string(configuration.accountID), "vaultName": .string(configuration.vault)] }

    func call(_ operation: String, _ input: [String: JSONValue], payload: ByteBuffer? = nil, id: String? = nil) async throws -> AWSClient.OperationResult {
        do {
            return try await client.call("glacier", operation, input: .object(vaultInput.merging(input) { _, new in new }), payload: payload)
        } catch let error as NimbusError where error.code == .notFound {
            if let id, !error.message.contains("Vault") { throw NimbusError(.notFound, "no archive \(id.prefix(200)) in vault \(configuration.vault)") }
            throw NimbusError(.notFound, "vault \(configuration.vault) does not exist; create it first (\(error.message))")
        }
    }

    public func store(_ name: String, body: BlobBody, size: Int64?, tier: ArchiveTier, metadata: [String: String]) async throws -> ArchivedObject {
        let bytes: ByteBuffer
        do { bytes = try await body.collect(upTo: configuration.maximumUploadSize) } catch let error as NimbusError where error.code == .resourceExhausted {
            throw NimbusError(.resourceExhausted, "\(name) is over the \(configuration.maximumUploadSize)-byte limit of one UploadArchive; raise Configuration.maximumUploadSize (up to 4 GiB)")
        }
        let treeHash = GlacierTreeHash.hex(of: bytes)
        // A description is printable ASCII, 1 024 characters at most: the name percent-encoded where it must be.
        let description = String(FormEncoder.escapeComponent(name).prefix(1024))
        let result = try await call("UploadArchive", ["archiveDescription": .string(description), "checksum": .string(treeHash)], payload: bytes)
        guard let id = result.output["archiveId"]?.stringValue else { throw NimbusError(.dataLoss, "Glacier UploadArchive answered without x-amz-archive-id") }
        if let echoed = result.output["checksum"]?.stringValue, echoed != treeHash {
            throw NimbusError(.dataLoss, "Glacier stored \(name) with tree hash \(echoed), not \(treeHash); store it again")
        }
        return ArchivedObject(id: id, name: name, size: Int64(bytes.readableBytes), tier: tier.name, state: .archived, storedAt: Date(),
                              checksums: BlobChecksums(crc32c: CRC32C.checksum(bytes.readableBytesView)))
    }

    /// The newest retrieval job of `id`, if any.
    func job(_ id: String) async throws -> JSONValue? {
        var marker: String?
        var newest: JSONValue?
        repeat {
            var input: [String: JSONValue] = [:]
            if let marker { input["marker"] = .string(marker) }
            let page = try await call("ListJobs", input).output
            for job in page["JobList"]?.arrayValue ?? [] where job["ArchiveId"]?.stringValue == id && job["Action"]?.stringValue == "ArchiveRetrieval" {
                if newest == nil || (job["CreationDate"]?.stringValue ?? "") > (newest?["CreationDate"]?.stringValue ?? "") { newest = job }
            }
            marker = page["Marker"]?.stringValue
        } while marker != nil
        return newest
    }

    func object(_ id: String, job: JSONValue?) -> ArchivedObject {
        var state = ArchiveState.archived
        if let job {
            let created = job["CreationDate"]?.stringValue.flatMap(Date.init(iso8601:))
            switch job["StatusCode"]?.stringValue {
            case "InProgress": state = .restoring(since: created)
            case "Succeeded":
                let until = (job["CompletionDate"]?.stringValue.flatMap(Date.init(iso8601:)) ?? Date()).addingTimeInterval(24 * 3600)
                state = until > Date() ? .restored(until: until) : .archived
            default: state = .archived      // Failed: ask again
            }
        }
        let size = job?["ArchiveSizeInBytes"]?.numberValue.map { Int64($0) } ?? 0
        let name = job?["ArchiveDescription"]?.stringValue.flatMap { $0.removingPercentEncoding } ?? id
        return ArchivedObject(id: id, name: name, size: size, tier: "vault", state: state)
    }

    public func describe(_ id: String) async throws -> ArchivedObject {
        object(id, job: try await job(id))
    }

    public func requestRestore(_ id: String, speed: RestoreSpeed, days: Int) async throws -> ArchivedObject {
        let tier = switch speed { case .expedited: "Expedited"; case .standard: "Standard"; case .bulk: "Bulk" }
        _ = try await call("InitiateJob", ["jobParameters": ["Type": "archive-retrieval", "ArchiveId": .string(id), "Tier": .string(tier)]], id: id)
        return try await describe(id)
    }

    public func read(_ id: String) async throws -> BlobReader {
        guard let job = try await job(id), job["StatusCode"]?.stringValue == "Succeeded", let jobID = job["JobId"]?.stringValue else {
            throw NimbusError(.failedPrecondition, "archive \(id.prefix(200)) has no finished retrieval job; request a restore and wait until it is readable")
        }
        let result = try await call("GetJobOutput", ["jobId": .string(jobID)], id: id)
        let bytes = result.payload ?? ByteBuffer()
        if let expected = result.output["checksum"]?.stringValue ?? job["SHA256TreeHash"]?.stringValue, GlacierTreeHash.hex(of: bytes) != expected {
            throw NimbusError(.dataLoss, "archive \(id.prefix(200)): the bytes of job \(jobID) do not match its tree hash; read it again")
        }
        let attributes = BlobAttributes(key: id, size: Int64(bytes.readableBytes), storageClass: "vault")
        return BlobReader(attributes: attributes, body: BlobBody(bytes), range: 0..<Int64(bytes.readableBytes))
    }

    public func delete(_ id: String) async throws {
        _ = try await call("DeleteArchive", ["archiveId": .string(id)], id: id)
    }
}

extension URLOpenerRegistry where Resource == any ArchiveDriver {
    /// Adds `glacier://VAULT` (options: `region`, `profile`, `endpoint`, `account`); credentials as the AWS SDKs find them.
    public func withGlacier(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("glacier", "an Amazon Glacier vault") { url in
            try url.options.validate(known: ["region", "profile", "endpoint", "account"], for: "Glacier archive")
            guard let vault = url.host, !vault.isEmpty else { throw NimbusError(.invalidArgument, "glacier:// needs a vault: glacier://backups?region=eu-west-1") }
            let client = AWSClient(configuration: .init(region: url.options.string("region"), profile: url.options.string("profile"),
                                                        endpointURL: url.options.string("endpoint"), environment: environment))
            return GlacierArchiveDriver(configuration: .init(vault: vault, accountID: url.options.string("account") ?? "-"), client: client)
        }
        return copy
    }
}
