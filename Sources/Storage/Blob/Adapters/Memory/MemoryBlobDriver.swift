import Foundation
import NIOCore
import NimbusBlob
import NimbusCore
import Synchronization

/// Objects in memory (`mem://`): in-process and volatile, with the same semantics as the real
/// stores — ETags that change on every write, conditions checked atomically, multipart uploads
/// (parts joined on completion, invisible until then), byte-ordered listings with delimiters.
///
/// ```swift
/// let bucket = try await Bucket.open("mem://", openers: .blob.withMemory())
/// ```
public final class MemoryBlobDriver: BlobMultipartDriver {
    struct Object {
        var bytes: ByteBuffer
        var attributes: BlobAttributes
    }
    struct State {
        /// Keyed by UTF-8 bytes: `String`'s equality would merge canonically equal keys (`é`, `e` + U+0301).
        var objects: [Data: Object] = [:]
        var uploads: [String: [Int: ByteBuffer]] = [:]
    }
    private let state = Mutex(State())
    /// The part rules (S3's by default; tests lower the minimum to exercise parts with small data).
    public let multipartLimits: BlobMultipartLimits
    private let now: @Sendable () -> Date

    public var provider: String { "memory" }

    /// An empty store.
    public init(multipartLimits: BlobMultipartLimits = .init(minimumPartSize: 5 * 1024 * 1024, maximumPartSize: 5 * 1024 * 1024 * 1024, maximumParts: 10_000, parallelParts: true),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.multipartLimits = multipartLimits
        self.now = now
    }

    public func attributes(of key: String) async throws -> BlobAttributes {
        guard let object = state.withLock({ $0.objects[Data(key.utf8)] }) else { throw BlobErrors.notFound(key) }
        return object.attributes
    }

    public func read(_ key: String, range: BlobRange?, conditions: BlobReadConditions) async throws -> BlobReader {
        guard let object = state.withLock({ $0.objects[Data(key.utf8)] }) else { throw BlobErrors.notFound(key) }
        guard conditions.hold(for: object.attributes.version) else { throw BlobErrors.conditionFailed(key) }
        let span = try (range ?? BlobRange(offset: 0)).clipped(to: object.attributes.size)
        let slice = object.bytes.getSlice(at: object.bytes.readerIndex + Int(span.lowerBound), length: Int(span.count)) ?? ByteBuffer()
        return BlobReader(attributes: object.attributes, body: BlobBody(slice), range: span)
    }

    public func write(_ key: String, bytes: ByteBuffer, options: BlobWriteOptions, checksums: BlobChecksums) async throws -> BlobAttributes {
        try store(key, bytes: bytes, options: options)
    }

    public func copy(from source: String, to destination: String, condition: BlobWriteCondition?) async throws -> BlobAttributes {
        try state.withLock { state in
            guard let object = state.objects[Data(source.utf8)] else { throw BlobErrors.notFound(source) }
            try condition?.check(current: state.objects[Data(destination.utf8)]?.attributes, key: destination)
            var attributes = object.attributes
            attributes.key = destination
            attributes.etag = IDGenerator.shared.ulid().description
            attributes.version = attributes.etag
            attributes.lastModified = now()
            state.objects[Data(destination.utf8)] = Object(bytes: object.bytes, attributes: attributes)
            return attributes
        }
    }

    public func delete(_ key: String, condition: BlobWriteCondition?) async throws {
        try state.withLock { state in
            guard let object = state.objects[Data(key.utf8)] else { throw BlobErrors.notFound(key) }
            try condition?.check(current: object.attributes, key: key)
            state.objects[Data(key.utf8)] = nil
        }
    }

    public func list(_ options: BlobListOptions) async throws -> BlobListPage {
        let prefix = Data(options.prefix.utf8)
        let entries = state.withLock { state in
            state.objects.filter { $0.key.starts(with: prefix) }.map { BlobListEntry(key: $0.value.attributes.key, size: $0.value.attributes.size, etag: $0.value.attributes.etag,
                                                                                      lastModified: $0.value.attributes.lastModified) }
        }
        return BlobListPager.page(entries, options: options)
    }

    // MARK: Multipart

    public func beginUpload(_ key: String, options: BlobWriteOptions, partSize: Int) async throws -> BlobUploadSession {
        let id = IDGenerator.shared.ulid().description
        state.withLock { $0.uploads[id] = [:] }
        return BlobUploadSession(key: key, id: id, options: options, partSize: partSize)
    }

    public func uploadPart(_ session: BlobUploadSession, number: Int, bytes: ByteBuffer, crc32c: UInt32) async throws -> BlobUploadedPart {
        guard CRC32C.checksum(bytes.readableBytesView) == crc32c else { throw NimbusError(.dataLoss, "part \(number) of \(session.key) arrived with another CRC-32C") }
        try state.withLock { state in
            guard state.uploads[session.id] != nil else { throw NimbusError(.notFound, "no upload \(session.id) (completed or aborted)") }
            state.uploads[session.id]?[number] = bytes
        }
        return BlobUploadedPart(number: number, tag: String(format: "%08x", crc32c), size: bytes.readableBytes)
    }

    public func completeUpload(_ session: BlobUploadSession, parts: [BlobUploadedPart], checksums: BlobChecksums) async throws -> BlobAttributes {
        let stored = try state.withLock { state -> [Int: ByteBuffer] in
            guard let stored = state.uploads[session.id] else { throw NimbusError(.notFound, "no upload \(session.id) (completed or aborted)") }
            return stored
        }
        var whole = ByteBuffer()
        for (index, part) in parts.enumerated() {
            guard part.number == index + 1, var bytes = stored[part.number], bytes.readableBytes == part.size else {
                throw NimbusError(.invalidArgument, "part \(part.number) of \(session.key) was not uploaded as listed")
            }
            if index < parts.count - 1, bytes.readableBytes < multipartLimits.minimumPartSize {
                throw NimbusError(.invalidArgument, "part \(part.number) is \(bytes.readableBytes) bytes, under the \(multipartLimits.minimumPartSize)-byte minimum")
            }
            whole.writeBuffer(&bytes)
        }
        if let expected = checksums.crc32c, CRC32C.checksum(whole.readableBytesView) != expected {
            throw NimbusError(.dataLoss, "the joined parts of \(session.key) do not match the object's CRC-32C")
        }
        let attributes = try store(session.key, bytes: whole, options: session.options)
        state.withLock { _ = $0.uploads.removeValue(forKey: session.id) }
        return attributes
    }

    public func abortUpload(_ session: BlobUploadSession) async throws {
        state.withLock { _ = $0.uploads.removeValue(forKey: session.id) }
    }

    /// Uploads begun and neither completed nor aborted (tests check that failures clean up).
    public var openUploads: Int { state.withLock { $0.uploads.count } }

    // MARK: Plumbing

    private func store(_ key: String, bytes: ByteBuffer, options: BlobWriteOptions) throws -> BlobAttributes {
        let etag = IDGenerator.shared.ulid().description
        let attributes = BlobAttributes(key: key, size: Int64(bytes.readableBytes), contentType: options.contentType ?? "application/octet-stream",
                                        contentEncoding: options.contentEncoding, contentDisposition: options.contentDisposition,
                                        contentLanguage: options.contentLanguage, cacheControl: options.cacheControl, metadata: options.metadata,
                                        etag: etag, lastModified: now(), checksums: BlobChecksums(crc32c: CRC32C.checksum(bytes.readableBytesView)),
                                        storageClass: options.storageClass)
        return try state.withLock { state in
            try options.condition?.check(current: state.objects[Data(key.utf8)]?.attributes, key: key)
            state.objects[Data(key.utf8)] = Object(bytes: bytes, attributes: attributes)
            return attributes
        }
    }
}

extension URLOpenerRegistry where Resource == any BlobDriver {
    /// Adds `mem://` (no options).
    public func withMemory() -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: [], for: "memory blob store")
            return MemoryBlobDriver()
        }
        return copy
    }
}
