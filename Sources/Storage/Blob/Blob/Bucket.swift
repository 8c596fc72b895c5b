import Foundation
import Logging
import NIOCore
import NimbusCore
import Synchronization

/// Objects by key in any store — memory, a directory, S3, GCS, Azure Blob — through one API.
///
/// `Bucket` owns what must be the same everywhere: the key rules (``BlobKey``), CRC-32C computed
/// on every write and checked on every whole read (a truncated or corrupted download is
/// `dataLoss`, never silent), multipart uploads above ``Configuration/multipartThreshold`` with
/// bounded memory and concurrency and each part retried on its own, retries of idempotent calls,
/// metrics, and one error taxonomy.
///
/// ```swift
/// let bucket = try await Bucket.open("s3://invoices?region=eu-west-1", openers: .blob.withS3())
/// try await bucket.put("2026/12/inv-42.pdf", pdf, options: .init(contentType: "application/pdf"))
/// let lock = try await bucket.put("locks/nightly", ByteBuffer(string: host), options: .init(condition: .ifAbsent))   // failedPrecondition if held
/// try await bucket.upload("backups/db.tar", file: "/var/backups/db.tar")              // 4 GiB in 8 MiB parts, 4 at a time
/// for try await entry in bucket.list(prefix: "2026/", delimiter: "/") { print(entry) }
/// let bytes = try await bucket.get("2026/12/inv-42.pdf")
/// ```
public final class Bucket: PortableClient {
    /// Settings shared by every store.
    public struct Configuration: Sendable {
        /// Writes larger than this go in parts, when the store has parts (16 MiB).
        public var multipartThreshold: Int
        /// The part size (8 MiB); raised when a file of known size would need more parts than the store allows.
        public var partSize: Int
        /// Parts in flight at once (4): memory stays near `(concurrency + 1) × partSize`.
        public var concurrency: Int
        /// The largest object ``Bucket/get(_:range:conditions:)`` reads whole (256 MiB); stream or download larger ones.
        public var maximumReadSize: Int
        /// Retries of idempotent calls (reads, lists, unconditional writes, parts).
        public var retry: RetryPolicy
        /// Check whole reads against the store's CRC-32C (on by default).
        public var verifyChecksums: Bool

        public init(multipartThreshold: Int = 16 * 1024 * 1024, partSize: Int = 8 * 1024 * 1024, concurrency: Int = 4,
                    maximumReadSize: Int = 256 * 1024 * 1024,
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(100), maxDelay: .seconds(10)), verifyChecksums: Bool = true) {
            self.multipartThreshold = multipartThreshold; self.partSize = partSize; self.concurrency = concurrency
            self.maximumReadSize = maximumReadSize; self.retry = retry; self.verifyChecksums = verifyChecksums
        }
    }

    /// The settings.
    public let configuration: Configuration
    private let driver: any BlobDriver
    private let calls: PortableCalls
    private let closed = Atomic<Bool>(false)
    private let logger: Logger
    static let operations = ["attributes", "read", "write", "upload", "part", "copy", "delete", "list", "sign"]

    /// Wraps a driver.
    public init(driver: some BlobDriver, configuration: Configuration = .init(), logger: Logger = Logger(label: "nimbus.blob")) {
        self.driver = driver
        self.configuration = configuration
        self.logger = logger
        calls = PortableCalls(domain: "blob", provider: driver.provider, operations: Self.operations, logger: logger)
    }

    /// Opens the driver that `url`'s scheme names in `openers`.
    public static func open(_ url: String, openers: URLOpenerRegistry<any BlobDriver>, configuration: Configuration = .init(),
                            logger: Logger = Logger(label: "nimbus.blob")) async throws -> Bucket {
        Bucket(driver: try await openers.open(url), configuration: configuration, logger: logger)
    }

    public var provider: String { driver.provider }
    public func driver<T>(as type: T.Type) -> T? { driver as? T }

    /// Closes the driver. Later calls throw `failedPrecondition`.
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try await driver.close()
    }

    // MARK: Reads

    /// The attributes of `key`. - Throws: `notFound`.
    public func attributes(_ key: String) async throws -> BlobAttributes {
        try BlobKey.validate(key)
        return try await run("attributes", idempotent: true) { try await self.driver.attributes(of: key) }
    }

    /// Whether `key` exists.
    public func exists(_ key: String) async throws -> Bool {
        do { _ = try await attributes(key); return true }
        catch let error as NimbusError where error.code == .notFound { return false }
    }

    /// The bytes of `key` (or of `range`), read whole.
    /// - Throws: `notFound`; `failedPrecondition` for unmet `conditions`; `dataLoss` for a short or
    ///   corrupted read; `resourceExhausted` above ``Configuration/maximumReadSize``.
    public func get(_ key: String, range: BlobRange? = nil, conditions: BlobReadConditions = .none) async throws -> ByteBuffer {
        let reader = try await reader(key, range: range, conditions: conditions)
        guard reader.range.count <= Int64(configuration.maximumReadSize) else {
            throw NimbusError(.resourceExhausted, "\(key) is \(reader.range.count) bytes, over the \(configuration.maximumReadSize)-byte limit of a whole read; use reader(_:) or download(_:to:)")
        }
        return try await reader.body.collect(upTo: configuration.maximumReadSize)
    }

    /// Opens `key` for streaming. The body checks, as it ends, that every byte came and — for a whole
    /// object — that the bytes match the store's CRC-32C: the last `next()` throws `dataLoss` otherwise.
    public func reader(_ key: String, range: BlobRange? = nil, conditions: BlobReadConditions = .none) async throws -> BlobReader {
        try BlobKey.validate(key)
        let opened = try await run("read", idempotent: true) { try await self.driver.read(key, range: range, conditions: conditions) }
        let whole = opened.range == 0..<opened.attributes.size
        let expected = whole && configuration.verifyChecksums ? opened.attributes.checksums.crc32c : nil
        let body = opened.body.verifying(key, count: Int64(opened.range.count), crc32c: expected)
        return BlobReader(attributes: opened.attributes, body: body, range: opened.range)
    }

    /// Downloads `key` to `path`: written beside it and renamed into place only once every byte has
    /// arrived and matched, so `path` never holds a partial object.
    @discardableResult
    public func download(_ key: String, to path: String, conditions: BlobReadConditions = .none) async throws -> BlobAttributes {
        let reader = try await reader(key, conditions: conditions)
        do {
            try await reader.body.write(toFile: path)
        } catch {
            throw NimbusError.wrap(error, "blob download of \(key) to \(path)")
        }
        return reader.attributes
    }

    // MARK: Writes

    /// Writes `bytes` at `key` (in parts when over the threshold).
    /// - Throws: `failedPrecondition` when `options.condition` does not hold.
    @discardableResult
    public func put(_ key: String, _ bytes: ByteBuffer, options: BlobWriteOptions = .init()) async throws -> BlobAttributes {
        try await put(key, from: BlobBody(bytes), options: options)
    }

    /// Writes UTF-8 text at `key`.
    @discardableResult
    public func put(_ key: String, string: String, options: BlobWriteOptions = .init()) async throws -> BlobAttributes {
        try await put(key, ByteBuffer(string: string), options: options)
    }

    /// Writes a stream of any size at `key`: up to the threshold it is sent in one request, above it
    /// in parts, ``Configuration/concurrency`` at a time.
    @discardableResult
    public func put<S: AsyncSequence & Sendable>(_ key: String, from stream: S, options: BlobWriteOptions = .init(), sizeHint: Int64? = nil) async throws -> BlobAttributes
    where S.Element == ByteBuffer {
        try BlobKey.validate(key)
        var options = options
        options.metadata = try BlobKey.validate(metadata: options.metadata)
        var chunker = PartChunker(BlobBody(stream).makeAsyncIterator())
        let multipart = driver as? any BlobMultipartDriver
        let partSize = try self.partSize(for: multipart?.multipartLimits, sizeHint: sizeHint)
        // Buffer up to the threshold: a small object goes in one request.
        var head: [ByteBuffer] = []
        var buffered = 0
        while buffered <= configuration.multipartThreshold || multipart == nil {
            guard let part = try await chunker.next(size: partSize) else { break }
            head.append(part)
            buffered += part.readableBytes
            if multipart == nil, buffered > configuration.maximumReadSize * 16 {
                throw NimbusError(.resourceExhausted, "\(driver.provider) writes in one request and this stream is over \(configuration.maximumReadSize * 16) bytes")
            }
        }
        guard let multipart, buffered > configuration.multipartThreshold else {
            var joined = head.count == 1 ? head[0] : ByteBuffer()
            if head.count > 1 {
                joined.reserveCapacity(buffered)
                for var part in head { joined.writeBuffer(&part) }
            }
            head.removeAll()
            let whole = joined, written = options
            let checksums = BlobChecksums(crc32c: whole.withUnsafeReadableBytes { buffer in
                var crc = CRC32C()
                crc.update(buffer)
                return crc.value
            })
            return try await run("write", idempotent: options.condition == nil) {
                try await self.driver.write(key, bytes: whole, options: written, checksums: checksums)
            }
        }
        return try await uploadParts(key, multipart: multipart, head: &head, rest: chunker, partSize: partSize, options: options)
    }

    /// Uploads the file at `path` to `key`, in parts sized to the file.
    @discardableResult
    public func upload(_ key: String, file path: String, options: BlobWriteOptions = .init()) async throws -> BlobAttributes {
        let size: Int64
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        } catch {
            throw NimbusError(.notFound, "cannot read \(path): \(error)")
        }
        return try await put(key, from: BlobBody(file: path), options: options, sizeHint: size)
    }

    /// Copies `source` to `destination` inside the store. - Throws: `notFound` for a missing source.
    @discardableResult
    public func copy(from source: String, to destination: String, condition: BlobWriteCondition? = nil) async throws -> BlobAttributes {
        try BlobKey.validate(source)
        try BlobKey.validate(destination)
        return try await run("copy", idempotent: condition == nil) { try await self.driver.copy(from: source, to: destination, condition: condition) }
    }

    /// Deletes `key`. - Throws: `notFound`; `failedPrecondition` when `condition` does not hold.
    public func delete(_ key: String, condition: BlobWriteCondition? = nil) async throws {
        try BlobKey.validate(key)
        if case .ifAbsent = condition { throw NimbusError(.invalidArgument, "a delete cannot be conditional on the object being absent") }
        try await run("delete", idempotent: false) { try await self.driver.delete(key, condition: condition) }
    }

    // MARK: Listing

    /// One page of a listing.
    public func listPage(_ options: BlobListOptions) async throws -> BlobListPage {
        guard (1...1000).contains(options.pageSize) else { throw NimbusError(.invalidArgument, "list pages hold 1 to 1000 entries, not \(options.pageSize)") }
        if !options.prefix.isEmpty { try BlobKey.validate(options.prefix) }
        if let delimiter = options.delimiter, delimiter.isEmpty { throw NimbusError(.invalidArgument, "an empty delimiter folds nothing; pass nil") }
        return try await run("list", idempotent: true) { try await self.driver.list(options) }
    }

    /// Every object (and common prefix) under `prefix`, read a page at a time.
    public func list(prefix: String = "", delimiter: String? = nil, pageSize: Int = 1000) -> BlobListing {
        BlobListing(bucket: self, options: BlobListOptions(prefix: prefix, delimiter: delimiter, pageSize: pageSize))
    }

    // MARK: Signed URLs

    /// A URL anyone can use for `method` on `key` until it expires (at most 7 days).
    /// - Throws: `unimplemented` for a store that does not sign (memory, file).
    public func signedURL(for key: String, method: BlobSignedMethod = .get, expiresIn: Duration = .seconds(3600), contentType: String? = nil) async throws -> String {
        try BlobKey.validate(key)
        guard expiresIn > .zero, expiresIn <= .seconds(7 * 86_400) else {
            throw NimbusError(.invalidArgument, "signed URLs last from 1 second to 7 days, not \(expiresIn)")
        }
        guard let signer = driver as? any BlobSigningDriver else {
            throw NimbusError(.unimplemented, "\(driver.provider) does not sign URLs; serve the object through your own endpoint")
        }
        return try await run("sign", idempotent: true) { try await signer.signedURL(for: key, method: method, expiresIn: expiresIn, contentType: contentType) }
    }

    /// The headers a client must send with a signed URL for `method` (none for S3 and GCS; `x-ms-blob-type` for an Azure PUT).
    public func signedURLHeaders(for method: BlobSignedMethod) -> [(String, String)] {
        (driver as? any BlobSigningDriver)?.signedURLHeaders(for: method) ?? []
    }

    // MARK: Multipart

    private func partSize(for limits: BlobMultipartLimits?, sizeHint: Int64?) throws -> Int {
        guard let limits else { return max(configuration.partSize, 64 * 1024) }
        var size = max(configuration.partSize, limits.minimumPartSize)
        if let sizeHint, sizeHint > Int64(size) * Int64(limits.maximumParts) {
            size = Int((sizeHint + Int64(limits.maximumParts) - 1) / Int64(limits.maximumParts))
        }
        if limits.partAlignment > 1 { size = (size + limits.partAlignment - 1) / limits.partAlignment * limits.partAlignment }
        guard size <= limits.maximumPartSize else {
            throw NimbusError(.invalidArgument, "\(driver.provider) takes parts of at most \(limits.maximumPartSize) bytes; this object would need \(size)-byte parts")
        }
        return size
    }

    /// Uploads `head` (emptied as its parts are handed out, so none stays in memory after its upload) then the rest of the stream.
    private func uploadParts(_ key: String, multipart: any BlobMultipartDriver, head: inout [ByteBuffer], rest: PartChunker, partSize: Int,
                             options: BlobWriteOptions) async throws -> BlobAttributes {
        let session = try await run("upload", idempotent: false) { try await multipart.beginUpload(key, options: options, partSize: partSize) }
        let limits = multipart.multipartLimits
        let concurrency = limits.parallelParts ? max(1, configuration.concurrency) : 1
        var chunker = rest
        do {
            // Each part's CRC-32C is computed in its own task (in parallel), and the whole object's is
            // combined from them in order: no second pass over the bytes.
            let results = try await withThrowingTaskGroup(of: (part: BlobUploadedPart, crc: UInt32).self) { group in
                var done: [(part: BlobUploadedPart, crc: UInt32)] = []
                var inFlight = 0
                var number = 0
                head.reverse()
                while true {
                    let bytes: ByteBuffer
                    if let next = head.popLast() {
                        bytes = next
                    } else if let next = try await chunker.next(size: partSize) {
                        bytes = next
                    } else {
                        break
                    }
                    number += 1
                    guard number <= limits.maximumParts else {
                        throw NimbusError(.resourceExhausted, "the stream needs more than \(limits.maximumParts) parts of \(partSize) bytes; raise Configuration.partSize or pass sizeHint")
                    }
                    if inFlight >= concurrency, let finished = try await group.next() {
                        done.append(finished)
                        inFlight -= 1
                    }
                    let partNumber = number
                    group.addTask {
                        let partCRC = bytes.withUnsafeReadableBytes { buffer in
                            var crc = CRC32C()
                            crc.update(buffer)
                            return crc.value
                        }
                        let uploaded = try await self.run("part", idempotent: true) {
                            try await multipart.uploadPart(session, number: partNumber, bytes: bytes, crc32c: partCRC)
                        }
                        return (uploaded, partCRC)
                    }
                    inFlight += 1
                }
                for try await finished in group { done.append(finished) }
                return done.sorted { $0.part.number < $1.part.number }
            }
            let parts = results.map(\.part)
            let whole = results.dropFirst().reduce(results.first?.crc ?? CRC32C().value) { CRC32C.combine($0, $1.crc, length: $1.part.size) }
            let checksums = BlobChecksums(crc32c: whole)
            return try await run("upload", idempotent: false) { try await multipart.completeUpload(session, parts: parts, checksums: checksums) }
        } catch {
            do { try await multipart.abortUpload(session) } catch let abort {
                logger.warning("could not abort a failed multipart upload; the store keeps its parts until its lifecycle rule removes them",
                               metadata: ["key": "\(key)", "upload": "\(session.id)", "error": "\(abort)"])
            }
            throw error
        }
    }

    // MARK: Plumbing

    private func run<T: Sendable>(_ operation: String, idempotent: Bool, _ body: @Sendable () async throws -> T) async throws -> T {
        try await calls.run(operation, retry: idempotent ? configuration.retry : .none, closed: closed.load(ordering: .relaxed), body)
    }
}

/// Every entry under a prefix: an object, or a common prefix when listing with a delimiter.
public enum BlobListItem: Sendable, Hashable, CustomStringConvertible {
    case object(BlobListEntry)
    /// A common prefix, ending with the delimiter (a "directory").
    case prefix(String)

    public var description: String {
        switch self {
        case .object(let entry): "\(entry.key) (\(entry.size) bytes)"
        case .prefix(let prefix): "\(prefix) (prefix)"
        }
    }
}

/// A listing read page by page as it is iterated: objects and prefixes merged in key order.
public struct BlobListing: AsyncSequence, Sendable {
    public typealias Element = BlobListItem
    let bucket: Bucket
    let options: BlobListOptions

    /// Every entry, up to `limit`. - Throws: `resourceExhausted` past it.
    public func collect(upTo limit: Int = 1_000_000) async throws -> [BlobListItem] {
        var items: [BlobListItem] = []
        for try await item in self {
            guard items.count < limit else { throw NimbusError(.resourceExhausted, "the listing has more than \(limit) entries; narrow the prefix") }
            items.append(item)
        }
        return items
    }

    /// The keys of the objects (prefixes left out).
    public func keys() async throws -> [String] {
        try await collect().compactMap { if case .object(let entry) = $0 { entry.key } else { nil } }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bucket: bucket, options: options) }

    /// Fetches pages on demand.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let bucket: Bucket
        var options: BlobListOptions
        var buffer: [BlobListItem] = []
        var index = 0
        var finished = false

        public mutating func next() async throws -> BlobListItem? {
            while index == buffer.count {
                guard !finished else { return nil }
                let page = try await bucket.listPage(options)
                let objects = page.objects.map { (key: $0.key, item: BlobListItem.object($0)) }
                let prefixes = page.prefixes.map { (key: $0, item: BlobListItem.prefix($0)) }
                buffer = (objects + prefixes).sorted { BlobListPager.precedes($0.key, $1.key) }.map(\.item)
                index = 0
                options.pageToken = page.nextPageToken
                finished = page.nextPageToken == nil
            }
            defer { index += 1 }
            return buffer[index]
        }
    }
}

/// Cuts a byte stream into parts of an exact size (the last one shorter), each assembled in a buffer
/// of its own: a part never shares storage with the next one, so an uploaded part frees its memory.
struct PartChunker {
    private var base: BlobBody.AsyncIterator
    private var leftover = ByteBuffer()
    private var ended = false

    init(_ base: BlobBody.AsyncIterator) { self.base = base }

    /// The next part of `size` bytes (fewer at the end), or `nil` when the stream is done.
    mutating func next(size: Int) async throws -> ByteBuffer? {
        // A chunk that holds a whole part gives a slice of itself: no copy (the chunk is in memory anyway,
        // and is freed once its last part is). Smaller chunks are assembled into a buffer of the part's size.
        if leftover.readableBytes == 0, !ended {
            guard let chunk = try await base.next() else { ended = true; return nil }
            leftover = chunk
        }
        if leftover.readableBytes >= size, let slice = leftover.readSlice(length: size) { return slice }
        var part = ByteBuffer()
        part.reserveCapacity(size)
        part.writeBuffer(&leftover)
        leftover = ByteBuffer()
        while part.readableBytes < size && !ended {
            guard var chunk = try await base.next() else { ended = true; break }
            let room = size - part.readableBytes
            if chunk.readableBytes <= room {
                part.writeBuffer(&chunk)
            } else if var head = chunk.readSlice(length: room) {
                part.writeBuffer(&head)
                leftover = chunk
            }
        }
        return part.readableBytes > 0 ? part : nil
    }
}

extension BlobBody {
    /// Writes every byte to `path`: beside it first, flushed, and renamed into place only once the body
    /// has ended without error (its checks included), so `path` never holds a partial object.
    public func write(toFile path: String) async throws {
        let partial = path + ".nimbus-partial-" + IDGenerator.shared.ulid().description
        guard FileManager.default.createFile(atPath: partial, contents: nil) else {
            throw NimbusError(.permissionDenied, "cannot create \(partial); check the directory exists and is writable")
        }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
            defer { try? handle.close() }
            for try await chunk in self {
                try handle.write(contentsOf: Data(chunk.readableBytesView))
            }
            try handle.synchronize()
            try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: partial, toPath: path)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
    }

    /// The body, checked as it ends: exactly `count` bytes, and — when `crc32c` is given — bytes with that
    /// CRC-32C; the last `next()` throws `dataLoss` otherwise (what ``Bucket/reader(_:range:conditions:)`` does).
    public func verifying(_ name: String, count: Int64, crc32c: UInt32?) -> BlobBody {
        BlobBody(VerifyingBody(base: self, key: name, expectedCount: count, expectedCRC32C: crc32c))
    }

    /// The file at `path`, read in `chunkSize` buffers as it is iterated (`notFound` if it cannot be opened).
    public init(file path: String, chunkSize: Int = 1024 * 1024) {
        self.init(FileChunks(path: path, chunkSize: chunkSize))
    }
}

/// A file read in chunks.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let chunkSize: Int

    func makeAsyncIterator() -> Iterator { Iterator(path: path, chunkSize: chunkSize) }

    struct Iterator: AsyncIteratorProtocol {
        let path: String
        let chunkSize: Int
        var handle: FileHandle?
        var opened = false

        init(path: String, chunkSize: Int) { self.path = path; self.chunkSize = chunkSize }

        mutating func next() async throws -> ByteBuffer? {
            if !opened {
                opened = true
                guard let file = FileHandle(forReadingAtPath: path) else { throw NimbusError(.notFound, "cannot open \(path) for reading") }
                handle = file
            }
            guard let handle else { return nil }
            guard let data = try handle.read(upToCount: chunkSize), !data.isEmpty else {
                try? handle.close()
                self.handle = nil
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }
}

/// Counts and checksums a body as it flows; the end of the stream is where a short or corrupted read is caught.
struct VerifyingBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: BlobBody
    let key: String
    let expectedCount: Int64
    let expectedCRC32C: UInt32?

    func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), key: key, expectedCount: expectedCount, expectedCRC32C: expectedCRC32C) }

    struct Iterator: AsyncIteratorProtocol {
        var base: BlobBody.AsyncIterator
        let key: String
        let expectedCount: Int64
        let expectedCRC32C: UInt32?
        var count: Int64 = 0
        var crc = CRC32C()

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else {
                guard count == expectedCount else {
                    throw NimbusError(.dataLoss, "\(key): the read ended after \(count) of \(expectedCount) bytes (a dropped or truncated transfer); read it again")
                }
                if let expectedCRC32C, crc.value != expectedCRC32C {
                    throw NimbusError(.dataLoss, "\(key): the bytes read have CRC-32C \(String(format: "%08x", crc.value)), the store says \(String(format: "%08x", expectedCRC32C)); the transfer was corrupted — read it again")
                }
                return nil
            }
            count += Int64(chunk.readableBytes)
            guard count <= expectedCount else {
                throw NimbusError(.dataLoss, "\(key): the store sent more than the \(expectedCount) bytes it announced")
            }
            if expectedCRC32C != nil { chunk.withUnsafeReadableBytes { crc.update($0) } }
            return chunk
        }
    }
}
