import Foundation
import NIOCore
import NIOHTTP1
import NimbusAWS
import NimbusBlob
import NimbusCore

/// Amazon S3 (and S3-compatible stores) through NimbusAWS: SigV4 on every request, CRC-32C sent
/// with every write and part (S3 verifies it on arrival) and read back with `ChecksumMode`,
/// conditional writes (`If-None-Match: *`, `If-Match`) on PUT, copy, delete and multipart
/// completion, multipart uploads, presigned URLs.
///
/// Reads are a `HEAD` (size, ETag, the whole object's CRC-32C) followed by ranged `GET`s of
/// ``Configuration/readChunkSize`` pinned to that ETag with `If-Match`, ``Configuration/readConcurrency``
/// of them ahead of the reader, so memory stays bounded at any size and an object replaced mid-read is `dataLoss`, never a mixture of two versions.
///
/// ```swift
/// let bucket = try await Bucket.open("s3://invoices?region=eu-west-1", openers: .blob.withS3())
/// ```
public final class S3BlobDriver: BlobMultipartDriver, BlobSigningDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The bucket.
        public var bucket: String
        /// The size of each ranged `GET` of a read (8 MiB).
        public var readChunkSize: Int
        /// How many ranged `GET`s run ahead of the reader (4): a read holds at most `readConcurrency × readChunkSize` bytes.
        public var readConcurrency: Int

        public init(bucket: String, readChunkSize: Int = 8 * 1024 * 1024, readConcurrency: Int = 4) {
            self.bucket = bucket; self.readChunkSize = readChunkSize; self.readConcurrency = readConcurrency
        }
    }

    /// The settings.
    public let configuration: Configuration
    /// The S3 operations, for calls the portable API does not name.
    public let s3: AWS.S3
    public var provider: String { "s3" }
    public let multipartLimits = BlobMultipartLimits(minimumPartSize: 5 * 1024 * 1024, maximumPartSize: 5 * 1024 * 1024 * 1024, maximumParts: 10_000, parallelParts: true)

    /// A driver for `configuration.bucket` through `client`.
    public init(configuration: Configuration, client: AWSClient) {
        self.configuration = configuration
        s3 = AWS.S3(client: client)
    }

    var bucket: String { configuration.bucket }

    // MARK: Reads

    public func attributes(of key: String) async throws -> BlobAttributes {
        try await head(key, conditions: .none)
    }

    func head(_ key: String, conditions: BlobReadConditions) async throws -> BlobAttributes {
        do {
            let head = try await s3.headObject(.init(bucket: bucket, key: key, checksumMode: .enabled, ifMatch: conditions.ifMatch.map(Self.quoted),
                                                     ifNoneMatch: conditions.ifNoneMatch.map(Self.quoted)), maxAttempts: 1)
            let crc = head.checksumType == .composite ? nil : head.checksumCRC32C.flatMap(BlobChecksums.crc32c(base64:))
            return BlobAttributes(key: key, size: head.contentLength ?? 0, contentType: head.contentType, contentEncoding: head.contentEncoding,
                                  contentDisposition: head.contentDisposition, contentLanguage: head.contentLanguage, cacheControl: head.cacheControl,
                                  metadata: Self.lowercased(head.metadata), etag: head.eTag.map(Self.unquoted), lastModified: head.lastModified,
                                  checksums: BlobChecksums(crc32c: crc), storageClass: head.storageClass?.rawValue ?? "STANDARD")
        } catch let error as NimbusError {
            throw Self.map(error, key: key)
        }
    }

    public func read(_ key: String, range: BlobRange?, conditions: BlobReadConditions) async throws -> BlobReader {
        let attributes = try await head(key, conditions: conditions)
        let span = try (range ?? BlobRange(offset: 0)).clipped(to: attributes.size)
        let (s3, bucket, etag) = (self.s3, self.bucket, attributes.etag)
        let body = BlobChunkedReads(range: span, chunk: configuration.readChunkSize, concurrency: configuration.readConcurrency) { start, end in
            do {
                let output = try await s3.getObject(.init(bucket: bucket, key: key, ifMatch: etag.map(Self.quoted), range: "bytes=\(start)-\(end - 1)"))
                return output.body ?? ByteBuffer()
            } catch let error as NimbusError where (error.underlying as? AWSServiceError)?.code == "PreconditionFailed" {
                throw NimbusError(.dataLoss, "\(key) was replaced while it was being read; read it again")
            }
        }
        return BlobReader(attributes: attributes, body: BlobBody(body), range: span)
    }

    // MARK: Writes

    public func write(_ key: String, bytes: ByteBuffer, options: BlobWriteOptions, checksums: BlobChecksums) async throws -> BlobAttributes {
        let crc = checksums.crc32c ?? CRC32C.checksum(bytes.readableBytesView)
        var request = AWS.S3.PutObjectRequest(bucket: bucket, key: key, body: bytes, cacheControl: options.cacheControl,
                                              checksumAlgorithm: .crc32c, checksumCRC32C: BlobChecksums.base64(crc32c: crc), contentDisposition: options.contentDisposition,
                                              contentEncoding: options.contentEncoding, contentLanguage: options.contentLanguage,
                                              contentType: options.contentType ?? "application/octet-stream", metadata: options.metadata.isEmpty ? nil : options.metadata,
                                              storageClass: options.storageClass.map(AWS.S3.StorageClass.init(rawValue:)))
        switch options.condition {
        case .ifAbsent: request.ifNoneMatch = "*"
        case .ifMatch(let version): request.ifMatch = Self.quoted(version)
        case nil: break
        }
        do {
            let output = try await s3.putObject(request, maxAttempts: 1)
            return BlobAttributes(key: key, size: Int64(bytes.readableBytes), contentType: request.contentType, contentEncoding: options.contentEncoding,
                                  contentDisposition: options.contentDisposition, contentLanguage: options.contentLanguage, cacheControl: options.cacheControl,
                                  metadata: options.metadata, etag: output.eTag.map(Self.unquoted), checksums: BlobChecksums(crc32c: crc),
                                  storageClass: options.storageClass ?? "STANDARD")
        } catch let error as NimbusError {
            throw Self.map(error, key: key)
        }
    }

    public func copy(from source: String, to destination: String, condition: BlobWriteCondition?) async throws -> BlobAttributes {
        // S3 applies If-None-Match / If-Match to CopyObject; checking first as well gives the same answer
        // from stores that ignore them (the header still closes the race where they do not).
        if let condition {
            let current: BlobAttributes?
            do { current = try await head(destination, conditions: .none) } catch let error as NimbusError where error.code == .notFound { current = nil }
            try condition.check(current: current, key: destination)
        }
        var request = AWS.S3.CopyObjectRequest(bucket: bucket, copySource: bucket + "/" + Self.copySourceEscape(source), key: destination,
                                               checksumAlgorithm: .crc32c, metadataDirective: .copy)
        switch condition {
        case .ifAbsent: request.ifNoneMatch = "*"
        case .ifMatch(let version): request.ifMatch = Self.quoted(version)
        case nil: break
        }
        do {
            _ = try await s3.copyObject(request, maxAttempts: 1)
        } catch let error as NimbusError {
            throw Self.map(error, key: error.code == .notFound ? source : destination)
        }
        return try await head(destination, conditions: .none)
    }

    public func delete(_ key: String, condition: BlobWriteCondition?) async throws {
        // DeleteObject answers 204 for a missing key too: the HEAD makes notFound (and checks the version).
        let current = try await head(key, conditions: .none)
        try condition?.check(current: current, key: key)
        var request = AWS.S3.DeleteObjectRequest(bucket: bucket, key: key)
        if case .ifMatch(let version) = condition { request.ifMatch = Self.quoted(version) }
        do {
            _ = try await s3.deleteObject(request, maxAttempts: 1)
        } catch let error as NimbusError {
            throw Self.map(error, key: key)
        }
    }

    public func list(_ options: BlobListOptions) async throws -> BlobListPage {
        do {
            let output = try await s3.listObjectsV2(.init(bucket: bucket, continuationToken: options.pageToken, delimiter: options.delimiter,
                                                          maxKeys: options.pageSize, prefix: options.prefix.isEmpty ? nil : options.prefix), maxAttempts: 1)
            let objects = (output.contents ?? []).compactMap { object in
                object.key.map { BlobListEntry(key: $0, size: object.size ?? 0, etag: object.eTag.map(Self.unquoted), lastModified: object.lastModified) }
            }
            let prefixes = (output.commonPrefixes ?? []).compactMap(\.prefix)
            return BlobListPage(objects: objects, prefixes: prefixes, nextPageToken: output.isTruncated == true ? output.nextContinuationToken : nil)
        } catch let error as NimbusError {
            throw Self.map(error, key: options.prefix)
        }
    }

    // MARK: Multipart

    public func beginUpload(_ key: String, options: BlobWriteOptions, partSize: Int) async throws -> BlobUploadSession {
        let output = try await s3.createMultipartUpload(.init(bucket: bucket, key: key, cacheControl: options.cacheControl, checksumAlgorithm: .crc32c,
                                                              checksumType: .fullObject, contentDisposition: options.contentDisposition,
                                                              contentEncoding: options.contentEncoding, contentLanguage: options.contentLanguage,
                                                              contentType: options.contentType ?? "application/octet-stream",
                                                              metadata: options.metadata.isEmpty ? nil : options.metadata,
                                                              storageClass: options.storageClass.map(AWS.S3.StorageClass.init(rawValue:))), maxAttempts: 1)
        guard let id = output.uploadId else { throw NimbusError(.internal, "S3 CreateMultipartUpload answered without an UploadId") }
        return BlobUploadSession(key: key, id: id, options: options, partSize: partSize)
    }

    public func uploadPart(_ session: BlobUploadSession, number: Int, bytes: ByteBuffer, crc32c: UInt32) async throws -> BlobUploadedPart {
        let output = try await s3.uploadPart(.init(bucket: bucket, key: session.key, partNumber: number, uploadId: session.id, body: bytes,
                                                   checksumAlgorithm: .crc32c, checksumCRC32C: BlobChecksums.base64(crc32c: crc32c)), maxAttempts: 1)
        guard let etag = output.eTag else { throw NimbusError(.internal, "S3 UploadPart answered without an ETag") }
        return BlobUploadedPart(number: number, tag: etag + "|" + BlobChecksums.base64(crc32c: crc32c), size: bytes.readableBytes)
    }

    public func completeUpload(_ session: BlobUploadSession, parts: [BlobUploadedPart], checksums: BlobChecksums) async throws -> BlobAttributes {
        let completed = parts.map { part -> AWS.S3.CompletedPart in
            let pieces = part.tag.split(separator: "|", maxSplits: 1).map(String.init)
            return AWS.S3.CompletedPart(checksumCRC32C: pieces.count > 1 ? pieces[1] : nil, eTag: pieces[0], partNumber: part.number)
        }
        var request = AWS.S3.CompleteMultipartUploadRequest(bucket: bucket, key: session.key, uploadId: session.id,
                                                            checksumCRC32C: checksums.crc32c.map(BlobChecksums.base64(crc32c:)), checksumType: .fullObject,
                                                            mpuObjectSize: parts.reduce(Int64(0)) { $0 + Int64($1.size) },
                                                            multipartUpload: .init(parts: completed))
        switch session.options.condition {
        case .ifAbsent: request.ifNoneMatch = "*"
        case .ifMatch(let version): request.ifMatch = Self.quoted(version)
        case nil: break
        }
        do {
            _ = try await s3.completeMultipartUpload(request, maxAttempts: 1)
        } catch let error as NimbusError {
            throw Self.map(error, key: session.key)
        }
        return try await head(session.key, conditions: .none)
    }

    public func abortUpload(_ session: BlobUploadSession) async throws {
        _ = try await s3.abortMultipartUpload(.init(bucket: bucket, key: session.key, uploadId: session.id), maxAttempts: 1)
    }

    // MARK: Signed URLs

    public func signedURL(for key: String, method: BlobSignedMethod, expiresIn: Duration, contentType: String?) async throws -> String {
        let httpMethod: HTTPMethod = method == .get ? .GET : method == .put ? .PUT : .DELETE
        return try await s3.client.presign(.s3, method: httpMethod, path: AWSClient.s3Path(bucket: bucket, key: key), expires: expiresIn)
    }

    // MARK: Plumbing

    /// `x-amz-copy-source`: the key URL-encoded, `/` kept.
    static func copySourceEscape(_ key: String) -> String {
        SigV4.uriEncode(key, keepSlash: true)
    }

    static func quoted(_ etag: String) -> String { etag.hasPrefix("\"") ? etag : "\"\(etag)\"" }
    static func unquoted(_ etag: String) -> String { etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
    static func lowercased(_ metadata: [String: String]?) -> [String: String] {
        Dictionary((metadata ?? [:]).map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    static func map(_ error: NimbusError, key: String) -> NimbusError {
        var error = error
        if let aws = error.underlying as? AWSServiceError {
            switch aws.code {
            case "NotModified", "PreconditionFailed", "ConditionalRequestConflict": error.code = .failedPrecondition
            case "InvalidRange": error.code = .invalidArgument
            case "NoSuchBucket": error.message += "; create the bucket first"
            default: break
            }
        }
        return error
    }

}

extension URLOpenerRegistry where Resource == any BlobDriver {
    /// Adds `s3://BUCKET` (options: `region`, `profile`, `endpoint`, `readChunkSize`, `readConcurrency`); credentials as the AWS SDKs find them.
    public func withS3(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var copy = self
        copy.register("s3", "Amazon S3") { url in
            try url.options.validate(known: ["region", "profile", "endpoint", "readChunkSize", "readConcurrency"], for: "S3 blob store")
            guard let bucket = url.host, !bucket.isEmpty else { throw NimbusError(.invalidArgument, "s3:// needs a bucket: s3://my-bucket?region=eu-west-1") }
            let client = AWSClient(configuration: .init(region: url.options.string("region"), profile: url.options.string("profile"),
                                                        endpointURL: url.options.string("endpoint"), environment: environment))
            return S3BlobDriver(configuration: .init(bucket: bucket, readChunkSize: try url.options.int("readChunkSize") ?? 8 * 1024 * 1024,
                                                     readConcurrency: try url.options.int("readConcurrency") ?? 4), client: client)
        }
        return copy
    }
}
