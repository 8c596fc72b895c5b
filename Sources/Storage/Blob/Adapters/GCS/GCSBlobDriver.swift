import Foundation
import NIOCore
import NIOHTTP1
import NimbusBlob
import NimbusCore
import NimbusGCP
import NimbusHTTP

/// Google Cloud Storage through its JSON API and NimbusGCP (Application Default Credentials or a
/// service account; anonymous for an emulator).
///
/// - **Versions are generations.** ``BlobAttributes/version`` is the object's `generation`; conditions
///   become `ifGenerationMatch` (`0` for create-only-if-absent) and `ifGenerationNotMatch`.
/// - **Reads** fetch the metadata (size, generation, CRC-32C), then ranged media `GET`s of that
///   generation, so an object replaced mid-read is an error (`dataLoss`), never a mixture.
/// - **Writes** are one `multipart/related` request (metadata, CRC-32C and bytes together, so GCS
///   checks the checksum on arrival); large ones a **resumable session**, one part after another
///   (GCS sessions take bytes in order, in multiples of 256 KiB), finished with `bytes */TOTAL`.
/// - **Copies** are `rewriteTo`, repeated with the rewrite token until done.
///
/// ```swift
/// let bucket = try await Bucket.open("gs://media-store", openers: .blob.withGCS())
/// ```
public final class GCSBlobDriver: BlobMultipartDriver {
    /// Settings.
    public struct Configuration: Sendable {
        /// The bucket.
        public var bucket: String
        /// The API root (`https://storage.googleapis.com`, or an emulator's URL).
        public var endpoint: String
        /// The size of each ranged media `GET` of a read (8 MiB).
        public var readChunkSize: Int
        /// How many ranged `GET`s run ahead of the reader (4).
        public var readConcurrency: Int

        public init(bucket: String, endpoint: String = "https://storage.googleapis.com", readChunkSize: Int = 8 * 1024 * 1024, readConcurrency: Int = 4) {
            self.bucket = bucket; self.endpoint = endpoint.trimmingSuffix("/"); self.readChunkSize = readChunkSize; self.readConcurrency = readConcurrency
        }
    }

    public let configuration: Configuration
    /// The Google client, for calls the portable API does not name.
    public let gcp: GCPClient
    public var provider: String { "gcs" }
    public let multipartLimits = BlobMultipartLimits(minimumPartSize: 256 * 1024, maximumPartSize: 1 << 32, maximumParts: 1_000_000, parallelParts: false,
                                                     partAlignment: 256 * 1024)

    public init(configuration: Configuration, gcp: GCPClient) {
        self.configuration = configuration
        self.gcp = gcp
    }

    var objects: String { "\(configuration.endpoint)/storage/v1/b/\(FormEncoder.escapeComponent(configuration.bucket))/o" }
    func objectURL(_ key: String) -> String { objects + "/" + FormEncoder.escapeComponent(key) }

    // MARK: Reads

    public func attributes(of key: String) async throws -> BlobAttributes {
        try await metadata(key, conditions: .none)
    }

    func metadata(_ key: String, conditions: BlobReadConditions) async throws -> BlobAttributes {
        var query: [(String, String)] = []
        if let version = conditions.ifMatch { query.append(("ifGenerationMatch", version)) }
        if let version = conditions.ifNoneMatch { query.append(("ifGenerationNotMatch", version)) }
        let resource: JSONValue
        do {
            resource = try await gcp.json(.GET, objectURL(key), query: query, operation: "GCS objects.get")
        } catch let error as NimbusError {
            throw Self.map(error)
        }
        // An emulator may ignore the preconditions: they are checked on the answer too.
        let attributes = try Self.attributes(resource, key: key)
        guard conditions.hold(for: attributes.version) else { throw BlobErrors.conditionFailed(key) }
        return attributes
    }

    public func read(_ key: String, range: BlobRange?, conditions: BlobReadConditions) async throws -> BlobReader {
        let attributes = try await metadata(key, conditions: conditions)
        let span = try (range ?? BlobRange(offset: 0)).clipped(to: attributes.size)
        let (gcp, url, generation) = (self.gcp, objectURL(key), attributes.version)
        let body = BlobChunkedReads(range: span, chunk: configuration.readChunkSize, concurrency: configuration.readConcurrency) { start, end in
            let response: GCPClient.Response
            do {
                response = try await gcp.send(.GET, url, query: [("alt", "media")] + (generation.map { [("generation", $0)] } ?? []),
                                              headers: [("Range", "bytes=\(start)-\(end - 1)")], operation: "GCS media download")
            } catch let error as NimbusError where error.code == .notFound {
                throw NimbusError(.dataLoss, "\(key) was replaced or deleted while it was being read; read it again")
            }
            // A server that ignores Range sends everything: keep only this chunk's bytes.
            if response.status == 200, response.body.count > Int(end - start) {
                return ByteBuffer(bytes: response.body[Int(start)..<Swift.min(response.body.count, Int(end))])
            }
            return ByteBuffer(bytes: response.body)
        }
        return BlobReader(attributes: attributes, body: BlobBody(body), range: span)
    }

    // MARK: Writes

    public func write(_ key: String, bytes: ByteBuffer, options: BlobWriteOptions, checksums: BlobChecksums) async throws -> BlobAttributes {
        let crc = checksums.crc32c ?? CRC32C.checksum(bytes.readableBytesView)
        var metadata = Self.resource(key: key, options: options)
        metadata["crc32c"] = .string(BlobChecksums.base64(crc32c: crc))
        let boundary = "nimbus-" + IDGenerator.shared.ulid().description
        var body = ByteBuffer()
        body.writeString("--\(boundary)\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n\(JSONValue.object(metadata).description)\r\n")
        body.writeString("--\(boundary)\r\nContent-Type: \(options.contentType ?? "application/octet-stream")\r\n\r\n")
        var payload = bytes
        body.writeBuffer(&payload)
        body.writeString("\r\n--\(boundary)--\r\n")
        let url = "\(configuration.endpoint)/upload/storage/v1/b/\(FormEncoder.escapeComponent(configuration.bucket))/o"
        do {
            let response = try await gcp.send(.POST, url, query: [("uploadType", "multipart")] + Self.preconditions(options.condition),
                                              headers: [("Content-Type", "multipart/related; boundary=\(boundary)")], body: Array(body.readableBytesView),
                                              operation: "GCS objects.insert")
            return try Self.attributes(try JSONValue.parse(response.body), key: key)
        } catch let error as NimbusError {
            throw Self.map(error)
        }
    }

    public func copy(from source: String, to destination: String, condition: BlobWriteCondition?) async throws -> BlobAttributes {
        let url = objectURL(source) + "/rewriteTo/b/\(FormEncoder.escapeComponent(configuration.bucket))/o/\(FormEncoder.escapeComponent(destination))"
        var token: String?
        for _ in 0..<1000 {
            let query = Self.preconditions(condition) + (token.map { [("rewriteToken", $0)] } ?? [])
            let answer: JSONValue
            do { answer = try await gcp.json(.POST, url, query: query, body: [:], operation: "GCS objects.rewrite") } catch let error as NimbusError { throw Self.map(error) }
            if answer["done"]?.boolValue == true, let resource = answer["resource"] { return try Self.attributes(resource, key: destination) }
            guard let next = answer["rewriteToken"]?.stringValue else { throw NimbusError(.internal, "GCS rewrite answered neither done nor a rewriteToken") }
            token = next
        }
        throw NimbusError(.deadlineExceeded, "GCS rewrite of \(source) did not finish in 1000 calls")
    }

    public func delete(_ key: String, condition: BlobWriteCondition?) async throws {
        do {
            _ = try await gcp.send(.DELETE, objectURL(key), query: Self.preconditions(condition), operation: "GCS objects.delete")
        } catch let error as NimbusError {
            throw Self.map(error)
        }
    }

    public func list(_ options: BlobListOptions) async throws -> BlobListPage {
        var query: [(String, String)] = [("maxResults", String(options.pageSize))]
        if !options.prefix.isEmpty { query.append(("prefix", options.prefix)) }
        if let delimiter = options.delimiter { query.append(("delimiter", delimiter)) }
        if let token = options.pageToken { query.append(("pageToken", token)) }
        let page: JSONValue
        do { page = try await gcp.json(.GET, objects, query: query, operation: "GCS objects.list") } catch let error as NimbusError { throw Self.map(error) }
        let objects = try (page["items"]?.arrayValue ?? []).map { item -> BlobListEntry in
            let attributes = try Self.attributes(item, key: item["name"]?.stringValue ?? "")
            return BlobListEntry(key: attributes.key, size: attributes.size, etag: attributes.etag, lastModified: attributes.lastModified)
        }
        let prefixes = page["prefixes"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return BlobListPage(objects: objects, prefixes: prefixes, nextPageToken: page["nextPageToken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 })
    }

    // MARK: Resumable sessions

    public func beginUpload(_ key: String, options: BlobWriteOptions, partSize: Int) async throws -> BlobUploadSession {
        let url = "\(configuration.endpoint)/upload/storage/v1/b/\(FormEncoder.escapeComponent(configuration.bucket))/o"
        let metadata = JSONValue.object(Self.resource(key: key, options: options))
        let started: GCPClient.Response
        do {
            started = try await gcp.send(.POST, url, query: [("uploadType", "resumable")] + Self.preconditions(options.condition),
                                         headers: [("Content-Type", "application/json; charset=UTF-8"), ("X-Upload-Content-Type", options.contentType ?? "application/octet-stream")],
                                         body: Array(metadata.description.utf8), operation: "GCS resumable upload start")
        } catch let error as NimbusError {
            throw Self.map(error)
        }
        guard let session = started.header("Location") else { throw NimbusError(.internal, "GCS answered the resumable upload without a session Location") }
        guard HTTPOrigin(session) == HTTPOrigin(configuration.endpoint) else {
            throw NimbusError(.internal, "GCS answered a resumable session on another origin (\(HTTPOrigin(session)?.description ?? "unreadable")); not sending bytes there")
        }
        return BlobUploadSession(key: key, id: session, options: options, partSize: partSize)
    }

    public func uploadPart(_ session: BlobUploadSession, number: Int, bytes: ByteBuffer, crc32c: UInt32) async throws -> BlobUploadedPart {
        let start = Int64(number - 1) * Int64(session.partSize)
        let end = start + Int64(bytes.readableBytes) - 1
        do {
            let answer = try await gcp.send(.PUT, session.id, headers: [("Content-Range", "bytes \(start)-\(end)/*")], body: Array(bytes.readableBytesView),
                                            operation: "GCS resumable upload part", accept: [308])
            // A retried part: the session says how far it got; it must hold this part whole.
            if answer.status == 308, let committed = Self.committed(answer.header("Range")), committed < end + 1 {
                throw NimbusError(.unavailable, "GCS kept \(committed) of the \(end + 1) bytes sent so far; sending the part again")
            }
        } catch let error as NimbusError {
            throw Self.map(error)
        }
        return BlobUploadedPart(number: number, tag: String(format: "%08x", crc32c), size: bytes.readableBytes)
    }

    public func completeUpload(_ session: BlobUploadSession, parts: [BlobUploadedPart], checksums: BlobChecksums) async throws -> BlobAttributes {
        let total = parts.reduce(Int64(0)) { $0 + Int64($1.size) }
        let answer: GCPClient.Response
        do {
            answer = try await gcp.send(.PUT, session.id, headers: [("Content-Range", "bytes */\(total)")], body: [],
                                        operation: "GCS resumable upload finish", accept: [308])
        } catch let error as NimbusError {
            throw Self.map(error)
        }
        guard answer.status != 308 else {
            throw NimbusError(.dataLoss, "GCS holds \(Self.committed(answer.header("Range")) ?? 0) of the \(total) bytes of \(session.key); the upload was not finished")
        }
        let attributes = try Self.attributes(try JSONValue.parse(answer.body), key: session.key)
        if let expected = checksums.crc32c, let stored = attributes.checksums.crc32c, stored != expected {
            throw NimbusError(.dataLoss, "GCS computed CRC-32C \(String(format: "%08x", stored)) for \(session.key), the bytes sent have \(String(format: "%08x", expected))")
        }
        return attributes
    }

    public func abortUpload(_ session: BlobUploadSession) async throws {
        // A session is cancelled with DELETE; GCS answers 499.
        _ = try? await gcp.send(.DELETE, session.id, operation: "GCS resumable upload cancel", accept: [499])
    }

    // MARK: Plumbing

    static func preconditions(_ condition: BlobWriteCondition?) -> [(String, String)] {
        switch condition {
        case .ifAbsent: [("ifGenerationMatch", "0")]
        case .ifMatch(let generation): [("ifGenerationMatch", generation)]
        case nil: []
        }
    }

    static func resource(key: String, options: BlobWriteOptions) -> [String: JSONValue] {
        var resource: [String: JSONValue] = ["name": .string(key), "contentType": .string(options.contentType ?? "application/octet-stream")]
        if let value = options.contentEncoding { resource["contentEncoding"] = .string(value) }
        if let value = options.contentDisposition { resource["contentDisposition"] = .string(value) }
        if let value = options.contentLanguage { resource["contentLanguage"] = .string(value) }
        if let value = options.cacheControl { resource["cacheControl"] = .string(value) }
        if let value = options.storageClass { resource["storageClass"] = .string(value) }
        if !options.metadata.isEmpty { resource["metadata"] = .object(options.metadata.mapValues(JSONValue.string)) }
        return resource
    }

    static func attributes(_ resource: JSONValue, key: String) throws -> BlobAttributes {
        guard let size = resource["size"]?.stringValue.flatMap(Int64.init) ?? resource["size"]?.numberValue.map({ Int64($0) }) else {
            throw NimbusError(.internal, "GCS answered an object without a size: \(resource.description.prefix(200))")
        }
        let metadata = (resource["metadata"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        let updated = resource["updated"]?.stringValue.flatMap { Date(iso8601: $0) }
        return BlobAttributes(key: resource["name"]?.stringValue ?? key, size: size, contentType: resource["contentType"]?.stringValue,
                              contentEncoding: resource["contentEncoding"]?.stringValue, contentDisposition: resource["contentDisposition"]?.stringValue,
                              contentLanguage: resource["contentLanguage"]?.stringValue, cacheControl: resource["cacheControl"]?.stringValue,
                              metadata: Dictionary(metadata.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first }),
                              etag: resource["etag"]?.stringValue, version: resource["generation"]?.stringValue, lastModified: updated,
                              checksums: BlobChecksums(crc32c: resource["crc32c"]?.stringValue.flatMap(BlobChecksums.crc32c(base64:)),
                                                       md5: resource["md5Hash"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map(Array.init)),
                              storageClass: resource["storageClass"]?.stringValue)
    }

    /// `Range: bytes=0-524287` → 524288.
    static func committed(_ range: String?) -> Int64? {
        guard let range, let dash = range.lastIndex(of: "-"), let last = Int64(range[range.index(after: dash)...]) else { return nil }
        return last + 1
    }

    static func map(_ error: NimbusError) -> NimbusError {
        var error = error
        if (error.underlying as? GCPError)?.code == 304 { error.code = .failedPrecondition }
        if error.code == .notFound, (error.underlying as? GCPError)?.message.localizedCaseInsensitiveContains("bucket") == true { error.message += "; create the bucket first" }
        return error
    }

}

extension URLOpenerRegistry where Resource == any BlobDriver {
    /// Adds `gs://BUCKET` (options: `endpoint` for an emulator, `anonymous=true` for one that wants no token,
    /// `readChunkSize`); credentials from Application Default Credentials.
    public func withGCS() -> Self {
        var copy = self
        copy.register("gs", "Google Cloud Storage") { url in
            try url.options.validate(known: ["endpoint", "anonymous", "readChunkSize"], for: "GCS blob store")
            guard let bucket = url.host, !bucket.isEmpty else { throw NimbusError(.invalidArgument, "gs:// needs a bucket: gs://my-bucket") }
            let gcp = try GCPClient(configuration: .init(anonymous: try url.options.bool("anonymous") ?? false))
            return GCSBlobDriver(configuration: .init(bucket: bucket, endpoint: url.options.string("endpoint") ?? "https://storage.googleapis.com",
                                                      readChunkSize: try url.options.int("readChunkSize") ?? 8 * 1024 * 1024), gcp: gcp)
        }
        return copy
    }
}
