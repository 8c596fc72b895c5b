import Foundation
import NIOCore
import NimbusCore

/// What a blob store implements: only what differs between stores. Users call ``Bucket``, which
/// adds key rules, checksums end to end, multipart transfers above a threshold, retries, metrics
/// and one error taxonomy.
///
/// Keys reach the driver already checked (``BlobKey``). A driver throws `NimbusError`s:
/// `notFound` for a missing object, `failedPrecondition` for a condition that does not hold,
/// `dataLoss` when the store reports a checksum mismatch. Optional abilities are separate
/// protocols: ``BlobMultipartDriver`` (parts uploaded apart, then joined) and
/// ``BlobSigningDriver`` (presigned URLs). The conformance suite (`NimbusBlobConformance`)
/// states the behaviour every driver must have.
public protocol BlobDriver: NimbusDriver {
    /// The attributes of `key`. - Throws: `notFound`.
    func attributes(of key: String) async throws -> BlobAttributes

    /// Opens `key` for reading: the object's attributes (the whole object's, also for a range) and
    /// the bytes of `range` (all of them when `nil`), streamed.
    /// - Throws: `notFound`; `failedPrecondition` when `conditions` do not hold; `invalidArgument`
    ///   for a range that starts past the end.
    func read(_ key: String, range: BlobRange?, conditions: BlobReadConditions) async throws -> BlobReader

    /// Writes the whole object in one request. `checksums` are the bytes' own (CRC32C always):
    /// a store that can verify them on arrival must send them.
    /// - Throws: `failedPrecondition` when `options.condition` does not hold.
    func write(_ key: String, bytes: ByteBuffer, options: BlobWriteOptions, checksums: BlobChecksums) async throws -> BlobAttributes

    /// Copies `source` to `destination` inside the store, attributes and metadata included.
    /// - Throws: `notFound` for a missing source; `failedPrecondition` when `condition` (on the destination) does not hold.
    func copy(from source: String, to destination: String, condition: BlobWriteCondition?) async throws -> BlobAttributes

    /// Deletes `key`. - Throws: `notFound`; `failedPrecondition` when `condition` does not hold.
    func delete(_ key: String, condition: BlobWriteCondition?) async throws

    /// One page of keys under `options.prefix`, in UTF-8 byte order, with the common prefixes of
    /// `options.delimiter` folded into ``BlobListPage/prefixes``.
    func list(_ options: BlobListOptions) async throws -> BlobListPage
}

/// A store that uploads large objects in parts (S3 multipart uploads, Azure blocks, GCS
/// resumable sessions): ``Bucket`` drives it above its threshold, with bounded memory and
/// concurrency, retrying each part on its own.
public protocol BlobMultipartDriver: BlobDriver {
    /// The store's part rules.
    var multipartLimits: BlobMultipartLimits { get }
    /// Starts an upload of `key` in parts of `partSize` bytes (the last one shorter).
    func beginUpload(_ key: String, options: BlobWriteOptions, partSize: Int) async throws -> BlobUploadSession
    /// Uploads part `number` (1-based). Re-sending a part replaces it, so a retry is safe.
    func uploadPart(_ session: BlobUploadSession, number: Int, bytes: ByteBuffer, crc32c: UInt32) async throws -> BlobUploadedPart
    /// Joins the parts, in order, into the object. `checksums` are the whole object's.
    /// - Throws: `failedPrecondition` when `options.condition` (given at ``beginUpload(_:options:partSize:)``) does not hold.
    func completeUpload(_ session: BlobUploadSession, parts: [BlobUploadedPart], checksums: BlobChecksums) async throws -> BlobAttributes
    /// Abandons the upload and frees its parts.
    func abortUpload(_ session: BlobUploadSession) async throws
}

/// What a multipart store allows.
public struct BlobMultipartLimits: Sendable, Hashable {
    /// The smallest part but the last (S3: 5 MiB).
    public var minimumPartSize: Int
    /// The largest part.
    public var maximumPartSize: Int
    /// The most parts in one object (S3: 10 000).
    public var maximumParts: Int
    /// Whether parts may be sent at once and out of order (GCS resumable sessions: no).
    public var parallelParts: Bool
    /// Parts but the last must be a multiple of this (GCS: 256 KiB).
    public var partAlignment: Int

    public init(minimumPartSize: Int, maximumPartSize: Int, maximumParts: Int, parallelParts: Bool, partAlignment: Int = 1) {
        self.minimumPartSize = minimumPartSize; self.maximumPartSize = maximumPartSize; self.maximumParts = maximumParts
        self.parallelParts = parallelParts; self.partAlignment = partAlignment
    }
}

/// An upload in progress.
public struct BlobUploadSession: Sendable, Hashable {
    /// The object's key.
    public var key: String
    /// The store's id for the upload (S3 `UploadId`, a GCS session URI, an Azure block-id prefix).
    public var id: String
    /// The write options it was begun with.
    public var options: BlobWriteOptions
    /// The size of every part but the last.
    public var partSize: Int

    public init(key: String, id: String, options: BlobWriteOptions, partSize: Int) { self.key = key; self.id = id; self.options = options; self.partSize = partSize }
}

/// A part the store accepted.
public struct BlobUploadedPart: Sendable, Hashable {
    /// 1-based.
    public var number: Int
    /// The store's receipt (S3 part ETag, Azure block id).
    public var tag: String
    /// Its size.
    public var size: Int

    public init(number: Int, tag: String, size: Int) { self.number = number; self.tag = tag; self.size = size }
}

/// A store that signs URLs anyone can use until they expire.
public protocol BlobSigningDriver: BlobDriver {
    /// A URL for `method` on `key`, valid for `expiresIn`. For PUT, `contentType` is part of the signature when given.
    func signedURL(for key: String, method: BlobSignedMethod, expiresIn: Duration, contentType: String?) async throws -> String
    /// Headers whoever uses a signed URL for `method` must send (Azure's `x-ms-blob-type: BlockBlob` on a PUT); none by default.
    func signedURLHeaders(for method: BlobSignedMethod) -> [(String, String)]
}

extension BlobSigningDriver {
    public func signedURLHeaders(for method: BlobSignedMethod) -> [(String, String)] { [] }
}

/// What a presigned URL allows.
public enum BlobSignedMethod: String, Sendable, Hashable {
    case get = "GET"
    case put = "PUT"
    case delete = "DELETE"
}

/// An object's attributes.
public struct BlobAttributes: Sendable, Hashable {
    public var key: String
    /// Bytes.
    public var size: Int64
    public var contentType: String?
    public var contentEncoding: String?
    public var contentDisposition: String?
    public var contentLanguage: String?
    public var cacheControl: String?
    /// User metadata; names lowercased (every store folds them).
    public var metadata: [String: String]
    /// The store's ETag, quotes removed.
    public var etag: String?
    /// The token conditions compare (``BlobWriteCondition/ifMatch(_:)``, ``BlobReadConditions``):
    /// the ETag, or the generation on GCS.
    public var version: String?
    public var lastModified: Date?
    /// The checksums the store reports for the whole object.
    public var checksums: BlobChecksums
    /// The storage class or tier (`STANDARD`, `GLACIER`, `Archive`…), when the store has them.
    public var storageClass: String?

    public init(key: String, size: Int64, contentType: String? = nil, contentEncoding: String? = nil, contentDisposition: String? = nil,
                contentLanguage: String? = nil, cacheControl: String? = nil, metadata: [String: String] = [:], etag: String? = nil,
                version: String? = nil, lastModified: Date? = nil, checksums: BlobChecksums = .init(), storageClass: String? = nil) {
        self.key = key; self.size = size; self.contentType = contentType; self.contentEncoding = contentEncoding
        self.contentDisposition = contentDisposition; self.contentLanguage = contentLanguage; self.cacheControl = cacheControl
        self.metadata = metadata; self.etag = etag; self.version = version ?? etag; self.lastModified = lastModified
        self.checksums = checksums; self.storageClass = storageClass
    }
}

/// Checksums of an object's bytes.
public struct BlobChecksums: Sendable, Hashable {
    /// CRC-32C (GCS, S3, and Nimbus' own end-to-end check).
    public var crc32c: UInt32?
    /// MD5 (Azure's `Content-MD5`, GCS, S3's single-part ETag).
    public var md5: [UInt8]?
    /// SHA-256.
    public var sha256: [UInt8]?

    public init(crc32c: UInt32? = nil, md5: [UInt8]? = nil, sha256: [UInt8]? = nil) { self.crc32c = crc32c; self.md5 = md5; self.sha256 = sha256 }

    /// CRC-32C as S3 and GCS write it: the 4 big-endian bytes in base64.
    public static func base64(crc32c: UInt32) -> String {
        Data([UInt8(crc32c >> 24), UInt8((crc32c >> 16) & 0xff), UInt8((crc32c >> 8) & 0xff), UInt8(crc32c & 0xff)]).base64EncodedString()
    }

    /// Reads S3's and GCS's base64 CRC-32C; `nil` when it is not 4 bytes (S3's multipart `…-N` composite form).
    public static func crc32c(base64: String) -> UInt32? {
        guard let data = Data(base64Encoded: base64), data.count == 4 else { return nil }
        return data.reduce(0) { $0 << 8 | UInt32($1) }
    }
}

/// Options of a write.
public struct BlobWriteOptions: Sendable, Hashable {
    /// `Content-Type`; `application/octet-stream` when `nil`.
    public var contentType: String?
    public var contentEncoding: String?
    public var contentDisposition: String?
    public var contentLanguage: String?
    public var cacheControl: String?
    /// User metadata: names of `a–z 0–9 _` (checked by ``Bucket``), values of printable ASCII.
    public var metadata: [String: String]
    /// Write only if the condition holds.
    public var condition: BlobWriteCondition?
    /// A storage class or tier the store names (`STANDARD_IA`, `GLACIER`, `Cool`…).
    public var storageClass: String?

    public init(contentType: String? = nil, contentEncoding: String? = nil, contentDisposition: String? = nil, contentLanguage: String? = nil,
                cacheControl: String? = nil, metadata: [String: String] = [:], condition: BlobWriteCondition? = nil, storageClass: String? = nil) {
        self.contentType = contentType; self.contentEncoding = contentEncoding; self.contentDisposition = contentDisposition
        self.contentLanguage = contentLanguage; self.cacheControl = cacheControl; self.metadata = metadata; self.condition = condition
        self.storageClass = storageClass
    }
}

/// When a write (or delete) happens.
public enum BlobWriteCondition: Sendable, Hashable {
    /// Only if no object has the key: "create only if absent", the basis of locks and manifests.
    case ifAbsent
    /// Only if the object's ``BlobAttributes/version`` is this one (compare-and-swap).
    case ifMatch(String)
}

extension BlobWriteCondition {
    /// Throws `failedPrecondition` unless the condition holds for `current`, the object now at `key`
    /// (`nil` when there is none) — for drivers that evaluate conditions themselves.
    public func check(current: BlobAttributes?, key: String) throws {
        switch self {
        case .ifAbsent where current != nil: throw BlobErrors.conditionFailed(key)
        case .ifMatch(let version) where current?.version != version: throw BlobErrors.conditionFailed(key)
        default: break
        }
    }
}

/// The errors drivers share, worded once.
public enum BlobErrors {
    /// `notFound` for a missing object.
    public static func notFound(_ key: String) -> NimbusError { NimbusError(.notFound, "no object \"\(key.prefix(200))\"") }
    /// `failedPrecondition` for a condition that does not hold.
    public static func conditionFailed(_ key: String) -> NimbusError { NimbusError(.failedPrecondition, "the condition on \"\(key.prefix(200))\" does not hold") }
}

/// Conditions of a read.
public struct BlobReadConditions: Sendable, Hashable {
    /// Read only if the object's version is this one.
    public var ifMatch: String?
    /// Read only if the object's version is not this one (a cache revalidation).
    public var ifNoneMatch: String?

    public init(ifMatch: String? = nil, ifNoneMatch: String? = nil) { self.ifMatch = ifMatch; self.ifNoneMatch = ifNoneMatch }

    /// No condition.
    public static let none = BlobReadConditions()

    /// Whether an object at `version` satisfies the conditions (for drivers that evaluate them themselves).
    public func hold(for version: String?) -> Bool {
        if let ifMatch, ifMatch != version { return false }
        if let ifNoneMatch, ifNoneMatch == version { return false }
        return true
    }
}

/// A byte range: `length` bytes from `offset` (to the end when `nil`).
public struct BlobRange: Sendable, Hashable {
    public var offset: Int64
    public var length: Int64?

    public init(offset: Int64, length: Int64? = nil) { self.offset = offset; self.length = length }

    /// The HTTP `Range` header value (`bytes=10-19`, `bytes=10-`).
    public var httpHeader: String { length.map { "bytes=\(offset)-\(offset + $0 - 1)" } ?? "bytes=\(offset)-" }

    /// The range clipped to an object of `size` bytes.
    /// - Throws: `invalidArgument` when it starts past the end (or at it, for a non-empty object).
    public func clipped(to size: Int64) throws -> Range<Int64> {
        guard offset >= 0, length.map({ $0 >= 0 }) ?? true else { throw NimbusError(.invalidArgument, "a range needs a non-negative offset and length") }
        guard offset < size || (offset == 0 && size == 0) else {
            throw NimbusError(.invalidArgument, "the range starts at byte \(offset), past the end of the \(size)-byte object")
        }
        let end = length.map { min(size, offset + $0) } ?? size
        return offset..<end
    }
}

/// Options of a list call.
public struct BlobListOptions: Sendable, Hashable {
    /// Only keys that start with this.
    public var prefix: String
    /// Fold keys that contain this after the prefix into one common prefix (`/`: directories).
    public var delimiter: String?
    /// Most entries (objects and prefixes) in the page.
    public var pageSize: Int
    /// Where to continue (``BlobListPage/nextPageToken``).
    public var pageToken: String?

    public init(prefix: String = "", delimiter: String? = nil, pageSize: Int = 1000, pageToken: String? = nil) {
        self.prefix = prefix; self.delimiter = delimiter; self.pageSize = pageSize; self.pageToken = pageToken
    }
}

/// One page of a listing.
public struct BlobListPage: Sendable, Hashable {
    /// Objects, in key order.
    public var objects: [BlobListEntry]
    /// Common prefixes (each ends with the delimiter), in order.
    public var prefixes: [String]
    /// `nil` on the last page.
    public var nextPageToken: String?

    public init(objects: [BlobListEntry], prefixes: [String] = [], nextPageToken: String? = nil) {
        self.objects = objects; self.prefixes = prefixes; self.nextPageToken = nextPageToken
    }
}

/// An object in a listing.
public struct BlobListEntry: Sendable, Hashable {
    public var key: String
    public var size: Int64
    public var etag: String?
    public var lastModified: Date?

    public init(key: String, size: Int64, etag: String? = nil, lastModified: Date? = nil) { self.key = key; self.size = size; self.etag = etag; self.lastModified = lastModified }
}

/// An object being read: its attributes and its bytes, streamed.
public struct BlobReader: Sendable {
    /// The whole object's attributes.
    public var attributes: BlobAttributes
    /// The bytes asked for.
    public var body: BlobBody
    /// The range the body holds.
    public var range: Range<Int64>

    public init(attributes: BlobAttributes, body: BlobBody, range: Range<Int64>) { self.attributes = attributes; self.body = body; self.range = range }
}

/// Bytes as an async sequence of buffers: any sequence wrapped, read once.
public struct BlobBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    private let makeIterator: @Sendable () -> AsyncIterator

    /// Wraps a sequence of buffers.
    public init<S: AsyncSequence & Sendable>(_ sequence: S) where S.Element == ByteBuffer {
        makeIterator = { AsyncIterator(sequence.makeAsyncIterator()) }
    }

    /// Fixed bytes.
    public init(_ buffer: ByteBuffer) {
        self.init(FixedChunks(buffer: buffer))
    }

    public func makeAsyncIterator() -> AsyncIterator { makeIterator() }

    /// Reads the next buffer from the wrapped iterator.
    public struct AsyncIterator: AsyncIteratorProtocol {
        private var base: any AsyncIteratorProtocol
        init(_ base: any AsyncIteratorProtocol) { self.base = base }
        public mutating func next() async throws -> ByteBuffer? {
            guard let value = try await base.next() else { return nil }
            guard let buffer = value as? ByteBuffer else { throw NimbusError(.internal, "a blob body yielded \(type(of: value)), not ByteBuffer") }
            return buffer
        }
    }

    /// Every byte, up to `limit`. - Throws: `resourceExhausted` past it.
    public func collect(upTo limit: Int) async throws -> ByteBuffer {
        var all = ByteBuffer()
        for try await chunk in self {
            guard all.readableBytes + chunk.readableBytes <= limit else {
                throw NimbusError(.resourceExhausted, "the object is larger than the \(limit)-byte limit of a whole read; stream it with Bucket.reader(_:) or download(_:to:)")
            }
            var chunk = chunk
            all.writeBuffer(&chunk)
        }
        return all
    }

    struct FixedChunks: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let buffer: ByteBuffer
        func makeAsyncIterator() -> Iterator { Iterator(buffer: buffer) }
        struct Iterator: AsyncIteratorProtocol {
            var buffer: ByteBuffer?
            mutating func next() async throws -> ByteBuffer? {
                defer { buffer = nil }
                return buffer.flatMap { $0.readableBytes == 0 ? nil : $0 }
            }
        }
    }
}

extension URLOpenerRegistry where Resource == any BlobDriver {
    /// An empty registry for the blob domain; adapters add their schemes (`.withMemory()`, `.withFile()`, `.withS3()`).
    public static var blob: URLOpenerRegistry<any BlobDriver> { URLOpenerRegistry(domain: "blob") }
}

/// Pages a listing out of every matching entry, for drivers that can enumerate their keys (memory,
/// files): UTF-8 byte order, delimiter folding, and a page token that is the last entry returned.
public enum BlobListPager {
    /// One page of `entries` (every object whose key starts with `options.prefix`, in any order).
    public static func page(_ entries: [BlobListEntry], options: BlobListOptions) -> BlobListPage {
        let sorted = entries.filter { hasPrefix($0.key, options.prefix) }.sorted { precedes($0.key, $1.key) }
        var objects: [BlobListEntry] = []
        var prefixes: [String] = []
        var last: String?
        for entry in sorted {
            // Each key lists as itself or as its common prefix; along sorted keys these never go back.
            var name = entry.key
            var folded = false
            if let delimiter = options.delimiter {
                let rest = entry.key.utf8.dropFirst(options.prefix.utf8.count)
                if let range = String(decoding: rest, as: UTF8.self).range(of: delimiter, options: .literal) {
                    name = options.prefix + String(String(decoding: rest, as: UTF8.self)[..<range.upperBound])
                    folded = true
                }
            }
            if let token = options.pageToken, !precedes(token, name) { continue }
            if let last, name.utf8.elementsEqual(last.utf8) { continue }   // bytes: `==` would merge canonically equal keys
            if objects.count + prefixes.count == options.pageSize {
                return BlobListPage(objects: objects, prefixes: prefixes, nextPageToken: last)
            }
            if folded { prefixes.append(name) } else { objects.append(entry) }
            last = name
        }
        return BlobListPage(objects: objects, prefixes: prefixes, nextPageToken: nil)
    }

    /// A byte prefix (S3's sense: `e` is a prefix of a decomposed `é`, though not of its `Character`).
    public static func hasPrefix(_ key: String, _ prefix: String) -> Bool { key.utf8.starts(with: prefix.utf8) }

    /// UTF-8 byte order (S3's, GCS's and Azure's), which is not `String`'s `<`.
    public static func precedes(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}

/// A read as successive ranged requests of at most `chunk` bytes — how object stores are read with
/// bounded memory at any size. `fetch(start, end)` returns the bytes of `start..<end` (fewer only at
/// a short read: the rest is asked for again). Up to `concurrency` requests run ahead of the reader
/// (as boto3's and the AWS CLI's downloads do), so at most `concurrency × chunk` bytes are held.
///
/// ```swift
/// let body = BlobBody(BlobChunkedReads(range: span, chunk: 8 << 20, concurrency: 4) { start, end in try await getRange(start, end) })
/// ```
public struct BlobChunkedReads: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let range: Range<Int64>
    let chunk: Int
    let concurrency: Int
    let fetch: @Sendable (Int64, Int64) async throws -> ByteBuffer

    public init(range: Range<Int64>, chunk: Int, concurrency: Int = 1, fetch: @escaping @Sendable (_ start: Int64, _ end: Int64) async throws -> ByteBuffer) {
        self.range = range; self.chunk = Swift.max(1, chunk); self.concurrency = Swift.max(1, concurrency); self.fetch = fetch
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: self) }

    /// Yields the chunks in order while the next ones are fetched.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let source: BlobChunkedReads
        /// The next byte not yet asked for.
        var scheduled: Int64
        let ahead: Prefetch

        init(source: BlobChunkedReads) {
            self.source = source
            scheduled = source.range.lowerBound
            ahead = Prefetch()
        }

        public mutating func next() async throws -> ByteBuffer? {
            while ahead.tasks.count < source.concurrency, scheduled < source.range.upperBound {
                let start = scheduled, end = Swift.min(source.range.upperBound, scheduled + Int64(source.chunk))
                let fetch = source.fetch
                ahead.tasks.append((start, end, Task { try await fetch(start, end) }))
                scheduled = end
            }
            guard !ahead.tasks.isEmpty else { return nil }
            let (start, end, task) = ahead.tasks.removeFirst()
            var bytes = try await task.value
            // A short answer: ask for the rest of this chunk before moving on.
            while bytes.readableBytes > 0, start + Int64(bytes.readableBytes) < end {
                var rest = try await source.fetch(start + Int64(bytes.readableBytes), end)
                guard rest.readableBytes > 0 else { break }
                bytes.writeBuffer(&rest)
            }
            guard bytes.readableBytes > 0 else {
                ahead.cancelAll()
                return nil
            }
            return bytes
        }
    }

    /// The requests in flight; cancelled when the reader is dropped before the end.
    final class Prefetch: @unchecked Sendable {
        var tasks: [(Int64, Int64, Task<ByteBuffer, any Error>)] = []
        func cancelAll() {
            for (_, _, task) in tasks { task.cancel() }
            tasks.removeAll()
        }
        deinit { cancelAll() }
    }
}
