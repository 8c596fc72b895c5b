#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import NimbusBlob
import NimbusCore

/// Objects as files under a directory (`file:///srv/blobs`): the embedded default that persists.
///
/// - **Layout.** A key's `/`-separated segments are directories and a file, readable with any tool:
///   `reports/2026.pdf` is `ROOT/reports/2026.pdf`. Segments a file system would misread are escaped
///   reversibly: `%` is `%25`; an empty segment is `%`, `.` is `%2E`, `..` is `%2E%2E`; a first segment
///   `.nimbus` is `%2Enimbus`; a segment over 240 bytes continues in a sub-directory ending `%+`.
///   No key reaches outside the root, and symbolic links inside it are refused.
/// - **Attributes** (content headers, metadata, ETag, CRC-32C) live in `ROOT/.nimbus/attributes/`,
///   mirroring the layout.
/// - **Writes are atomic**: bytes go to `ROOT/.nimbus/tmp/`, are flushed, and are renamed into place
///   under an exclusive `flock` on `ROOT/.nimbus/lock`, where conditions are checked — so
///   create-only-if-absent and compare-and-swap hold across processes on this machine.
/// - **Parts** are written in place at their offsets (no second copy), so a 4 GiB upload streams
///   through bounded memory.
/// - A file system cannot hold both `a` and `a/b`: the second write is `failedPrecondition`.
///
/// ```swift
/// let bucket = try await Bucket.open("file:///var/lib/app/blobs", openers: .blob.withFile())
/// ```
public final class FileBlobDriver: BlobMultipartDriver {
    /// The root directory.
    public let root: URL
    public var provider: String { "file" }
    public let multipartLimits = BlobMultipartLimits(minimumPartSize: 1, maximumPartSize: 1 << 32, maximumParts: 100_000, parallelParts: true)

    private var meta: URL { root.appendingPathComponent(".nimbus", isDirectory: true) }
    private var attributesRoot: URL { meta.appendingPathComponent("attributes", isDirectory: true) }
    private var temporary: URL { meta.appendingPathComponent("tmp", isDirectory: true) }

    /// A store at `root`, created when `create` and missing.
    /// - Throws: `notFound` for a missing root when not creating; `failedPrecondition` when it is not a directory.
    public init(root: String, create: Bool = true) throws {
        let url = URL(fileURLWithPath: root, isDirectory: true).standardizedFileURL
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard create else { throw NimbusError(.notFound, "the blob directory \(url.path) does not exist (add ?create=true to create it)") }
        } else if !isDirectory.boolValue {
            throw NimbusError(.failedPrecondition, "\(url.path) is not a directory")
        }
        self.root = url
        do {
            for directory in [url, url.appendingPathComponent(".nimbus/attributes"), url.appendingPathComponent(".nimbus/tmp")] {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            }
        } catch {
            throw NimbusError(.permissionDenied, "cannot create the blob directory \(url.path): \(error)")
        }
    }

    // MARK: Key ↔ path

    static let continuation = "%+"
    static let segmentLimit = 240

    /// The relative path of `key` (segments escaped, long segments split).
    static func relativePath(_ key: String) -> [String] {
        var components: [String] = []
        for (index, segment) in key.split(separator: "/", omittingEmptySubsequences: false).enumerated() {
            var escaped: String
            switch segment {
            case "": escaped = "%"
            case ".": escaped = "%2E"
            case "..": escaped = "%2E%2E"
            default:
                escaped = segment.replacingOccurrences(of: "%", with: "%25")
                if index == 0 && escaped == ".nimbus" { escaped = "%2Enimbus" }
            }
            // NAME_MAX is 255 bytes: split at scalar boundaries, each piece but the last marked.
            while escaped.utf8.count > segmentLimit {
                var cut = escaped.startIndex
                var bytes = 0
                for scalar in escaped.unicodeScalars {
                    let width = String(scalar).utf8.count
                    guard bytes + width <= segmentLimit else { break }
                    bytes += width
                    cut = escaped.unicodeScalars.index(after: cut)
                }
                components.append(String(escaped[..<cut]) + continuation)
                escaped = String(escaped[cut...])
            }
            components.append(escaped)
        }
        return components
    }

    /// The key of a relative path written by ``relativePath(_:)``; `nil` for a path it cannot have written.
    static func key(fromRelative components: [String]) -> String? {
        var segments: [String] = []
        var pending = ""
        var continuing = false
        for component in components {
            if component.hasSuffix(continuation) {
                pending += component.dropLast(continuation.count)
                continuing = true
                continue
            }
            let escaped = continuing ? pending + component : component
            switch (escaped, continuing) {
            case ("%", false): segments.append("")
            case ("%2E", false): segments.append(".")
            case ("%2E%2E", false): segments.append("..")
            case ("%2Enimbus", false) where segments.isEmpty: segments.append(".nimbus")
            default: segments.append(escaped.replacingOccurrences(of: "%25", with: "%"))
            }
            pending = ""
            continuing = false
        }
        guard !continuing, !segments.isEmpty else { return nil }
        return segments.joined(separator: "/")
    }

    func dataURL(_ key: String) -> URL { Self.relativePath(key).reduce(root) { $0.appendingPathComponent($1) } }
    func attributesURL(_ key: String) -> URL {
        let components = Self.relativePath(key)
        return components.dropLast().reduce(attributesRoot) { $0.appendingPathComponent($1) }.appendingPathComponent(components.last! + ".json")
    }

    /// Refuses a symbolic link anywhere between the root and `url`.
    func checkNoSymlinks(_ url: URL) throws {
        var current = root
        let rootCount = root.pathComponents.count
        for component in url.pathComponents.dropFirst(rootCount) {
            current.appendPathComponent(component)
            var info = stat()
            guard lstat(current.path, &info) == 0 else { return }   // missing from here on: nothing to follow
            if (info.st_mode & S_IFMT) == S_IFLNK {
                throw NimbusError(.permissionDenied, "\(current.path) is a symbolic link; the file blob store does not follow links out of its directory")
            }
        }
    }

    // MARK: Attributes

    struct Stored: Codable {
        var contentType: String?
        var contentEncoding: String?
        var contentDisposition: String?
        var contentLanguage: String?
        var cacheControl: String?
        var metadata: [String: String]
        var etag: String
        var crc32c: UInt32?
        var size: Int64
        var storageClass: String?
    }

    func load(_ key: String) throws -> BlobAttributes {
        let data = dataURL(key)
        try checkNoSymlinks(data)
        var info = stat()
        guard lstat(data.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw BlobErrors.notFound(key) }
        let size = Int64(info.st_size)
        let modified = Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec) + TimeInterval(info.st_mtim.tv_nsec) / 1e9)
        if let json = try? Data(contentsOf: attributesURL(key)), let stored = try? JSONDecoder().decode(Stored.self, from: json), stored.size == size {
            return BlobAttributes(key: key, size: size, contentType: stored.contentType, contentEncoding: stored.contentEncoding,
                                  contentDisposition: stored.contentDisposition, contentLanguage: stored.contentLanguage, cacheControl: stored.cacheControl,
                                  metadata: stored.metadata, etag: stored.etag, lastModified: modified, checksums: BlobChecksums(crc32c: stored.crc32c),
                                  storageClass: stored.storageClass)
        }
        // A file put here by other means: its own size and time make the version.
        return BlobAttributes(key: key, size: size, contentType: "application/octet-stream",
                              etag: "\(info.st_mtim.tv_sec)\(String(format: "%09d", info.st_mtim.tv_nsec))-\(size)", lastModified: modified)
    }

    public func attributes(of key: String) async throws -> BlobAttributes { try load(key) }

    // MARK: Reads

    public func read(_ key: String, range: BlobRange?, conditions: BlobReadConditions) async throws -> BlobReader {
        let attributes = try load(key)
        guard conditions.hold(for: attributes.version) else { throw BlobErrors.conditionFailed(key) }
        let span = try (range ?? BlobRange(offset: 0)).clipped(to: attributes.size)
        return BlobReader(attributes: attributes, body: BlobBody(FileRange(path: dataURL(key).path, key: key, range: span)), range: span)
    }

    // MARK: Writes

    public func write(_ key: String, bytes: ByteBuffer, options: BlobWriteOptions, checksums: BlobChecksums) async throws -> BlobAttributes {
        let staged = try stage()
        do {
            defer { closeDescriptor(staged.descriptor) }
            try bytes.withUnsafeReadableBytes { raw in try Self.writeAll(staged.descriptor, raw, at: 0) }
            guard fsync(staged.descriptor) == 0 else { throw Self.ioError("fsync", staged.url.path) }
        } catch {
            _ = unlink(staged.url.path)
            throw error
        }
        // commit removes the staged file when it fails.
        return try commit(staged.url, key: key, size: Int64(bytes.readableBytes), options: options, crc32c: checksums.crc32c ?? CRC32C.checksum(bytes.readableBytesView))
    }

    public func copy(from source: String, to destination: String, condition: BlobWriteCondition?) async throws -> BlobAttributes {
        let attributes = try load(source)
        let staged = try stage()
        closeDescriptor(staged.descriptor)
        do {
            try FileManager.default.removeItem(at: staged.url)
            try FileManager.default.copyItem(at: dataURL(source), to: staged.url)
            var options = BlobWriteOptions(contentType: attributes.contentType, contentEncoding: attributes.contentEncoding, contentDisposition: attributes.contentDisposition,
                                           contentLanguage: attributes.contentLanguage, cacheControl: attributes.cacheControl, metadata: attributes.metadata,
                                           storageClass: attributes.storageClass)
            options.condition = condition
            return try commit(staged.url, key: destination, size: attributes.size, options: options, crc32c: attributes.checksums.crc32c)
        } catch {
            try? FileManager.default.removeItem(at: staged.url)
            throw NimbusError.wrap(error, "file blob copy")
        }
    }

    public func delete(_ key: String, condition: BlobWriteCondition?) async throws {
        try locked {
            let current = try load(key)
            try condition?.check(current: current, key: key)
            guard unlink(dataURL(key).path) == 0 else { throw Self.ioError("unlink", dataURL(key).path) }
            _ = unlink(attributesURL(key).path)
            pruneEmptyDirectories(from: dataURL(key).deletingLastPathComponent(), upTo: root)
            pruneEmptyDirectories(from: attributesURL(key).deletingLastPathComponent(), upTo: attributesRoot)
        }
    }

    // MARK: Listing

    public func list(_ options: BlobListOptions) async throws -> BlobListPage {
        // Walk only below the deepest directory the prefix names whole.
        let segments = options.prefix.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        let base = segments.isEmpty ? root : dataURL(segments.joined(separator: "/") + "/x").deletingLastPathComponent()
        var entries: [BlobListEntry] = []
        guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey], options: []) else {
            return BlobListPage(objects: [])
        }
        let rootCount = root.standardizedFileURL.pathComponents.count
        for case let url as URL in walker {
            let components = Array(url.standardizedFileURL.pathComponents.dropFirst(rootCount))
            if components.first == ".nimbus" { walker.skipDescendants(); continue }
            let values = try? url.resourceValues(forKeys: [.isRegularFileKey, .isSymbolicLinkKey])
            guard values?.isRegularFile == true, values?.isSymbolicLink != true, let key = Self.key(fromRelative: components),
                  BlobListPager.hasPrefix(key, options.prefix), let attributes = try? load(key) else { continue }
            entries.append(BlobListEntry(key: key, size: attributes.size, etag: attributes.etag, lastModified: attributes.lastModified))
        }
        return BlobListPager.page(entries, options: options)
    }

    // MARK: Multipart

    public func beginUpload(_ key: String, options: BlobWriteOptions, partSize: Int) async throws -> BlobUploadSession {
        let staged = try stage()
        closeDescriptor(staged.descriptor)
        return BlobUploadSession(key: key, id: staged.url.lastPathComponent, options: options, partSize: partSize)
    }

    public func uploadPart(_ session: BlobUploadSession, number: Int, bytes: ByteBuffer, crc32c: UInt32) async throws -> BlobUploadedPart {
        let path = try uploadPath(session)
        let descriptor = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw NimbusError(.notFound, "no upload \(session.id) (completed or aborted)") }
        defer { closeDescriptor(descriptor) }
        try bytes.withUnsafeReadableBytes { raw in try Self.writeAll(descriptor, raw, at: off_t(number - 1) * off_t(session.partSize)) }
        return BlobUploadedPart(number: number, tag: String(format: "%08x", crc32c), size: bytes.readableBytes)
    }

    public func completeUpload(_ session: BlobUploadSession, parts: [BlobUploadedPart], checksums: BlobChecksums) async throws -> BlobAttributes {
        let path = try uploadPath(session)
        for (index, part) in parts.enumerated() where part.number != index + 1 || (index < parts.count - 1 && part.size != session.partSize) {
            throw NimbusError(.invalidArgument, "part \(part.number) of \(session.key) does not fit the upload's layout")
        }
        let size = parts.reduce(Int64(0)) { $0 + Int64($1.size) }
        guard truncate(path, off_t(size)) == 0 else { throw Self.ioError("truncate", path) }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor >= 0 { _ = fsync(descriptor); closeDescriptor(descriptor) }
        return try commit(URL(fileURLWithPath: path), key: session.key, size: size, options: session.options, crc32c: checksums.crc32c)
    }

    public func abortUpload(_ session: BlobUploadSession) async throws {
        if let path = try? uploadPath(session) { _ = unlink(path) }
    }

    func uploadPath(_ session: BlobUploadSession) throws -> String {
        guard session.id.allSatisfy({ $0.isLetter || $0.isNumber }) else { throw NimbusError(.invalidArgument, "not an upload id: \(session.id.prefix(40))") }
        return temporary.appendingPathComponent(session.id).path
    }

    // MARK: Plumbing

    /// A new empty file in the staging directory.
    func stage() throws -> (url: URL, descriptor: Int32) {
        let url = temporary.appendingPathComponent(IDGenerator.shared.ulid().description)
        let descriptor = open(url.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Self.ioError("create", url.path) }
        return (url, descriptor)
    }

    /// Renames `staged` into place as `key` under the lock, after checking the condition.
    func commit(_ staged: URL, key: String, size: Int64, options: BlobWriteOptions, crc32c: UInt32?) throws -> BlobAttributes {
        let target = dataURL(key), sidecar = attributesURL(key)
        let etag = IDGenerator.shared.ulid().description
        let stored = Stored(contentType: options.contentType ?? "application/octet-stream", contentEncoding: options.contentEncoding,
                            contentDisposition: options.contentDisposition, contentLanguage: options.contentLanguage, cacheControl: options.cacheControl,
                            metadata: options.metadata, etag: etag, crc32c: crc32c, size: size, storageClass: options.storageClass)
        do {
            return try locked {
                try checkNoSymlinks(target)
                let current: BlobAttributes?
                do { current = try load(key) } catch let error as NimbusError where error.code == .notFound { current = nil }
                try options.condition?.check(current: current, key: key)
                try makeParents(of: target, key: key)
                try FileManager.default.createDirectory(at: sidecar.deletingLastPathComponent(), withIntermediateDirectories: true)
                let json = try JSONEncoder().encode(stored)
                let sidecarStaged = temporary.appendingPathComponent(IDGenerator.shared.ulid().description + ".json")
                try json.write(to: sidecarStaged)
                // Bytes first, then attributes: a crash between leaves attributes whose size or CRC-32C no
                // longer match, which reads report (`dataLoss`) instead of serving a mixture.
                guard rename(staged.path, target.path) == 0 else {
                    _ = unlink(sidecarStaged.path)
                    if errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST {
                        throw NimbusError(.failedPrecondition, "\(key) is a prefix of other objects here; a file system cannot hold it as an object too")
                    }
                    throw Self.ioError("rename", target.path)
                }
                guard rename(sidecarStaged.path, sidecar.path) == 0 else { throw Self.ioError("rename", sidecar.path) }
                return try load(key)
            }
        } catch {
            _ = unlink(staged.path)
            throw error
        }
    }

    func makeParents(of target: URL, key: String) throws {
        var current = root
        let rootCount = root.pathComponents.count
        for component in target.deletingLastPathComponent().pathComponents.dropFirst(rootCount) {
            current.appendPathComponent(component)
            var info = stat()
            if lstat(current.path, &info) == 0 {
                guard (info.st_mode & S_IFMT) == S_IFDIR else {
                    throw NimbusError(.failedPrecondition, "\(key) would be stored under the object \(current.lastPathComponent); a file system cannot hold both")
                }
            } else if mkdir(current.path, 0o755) != 0 && errno != EEXIST {
                throw Self.ioError("mkdir", current.path)
            }
        }
    }

    func pruneEmptyDirectories(from directory: URL, upTo stop: URL) {
        var current = directory.standardizedFileURL
        let limit = stop.standardizedFileURL.pathComponents.count
        while current.pathComponents.count > limit, rmdir(current.path) == 0 {
            current = current.deletingLastPathComponent()
        }
    }

    /// Runs `body` holding the store's exclusive lock (other processes on this machine included).
    func locked<T>(_ body: () throws -> T) throws -> T {
        let path = meta.appendingPathComponent("lock").path
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Self.ioError("open", path) }
        defer { closeDescriptor(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw Self.ioError("flock", path) }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    static func writeAll(_ descriptor: Int32, _ raw: UnsafeRawBufferPointer, at offset: off_t) throws {
        var written = 0
        while written < raw.count {
            let result = pwrite(descriptor, raw.baseAddress! + written, raw.count - written, offset + off_t(written))
            if result < 0 {
                if errno == EINTR { continue }
                throw ioError("write", "file descriptor \(descriptor)")
            }
            written += result
        }
    }

    static func ioError(_ call: String, _ path: String) -> NimbusError {
        let code = errno
        let message = String(cString: strerror(code))
        switch code {
        case ENOSPC, EDQUOT: return NimbusError(.resourceExhausted, "\(call) \(path): \(message)")
        case EACCES, EPERM, EROFS: return NimbusError(.permissionDenied, "\(call) \(path): \(message)")
        case ENOENT: return NimbusError(.notFound, "\(call) \(path): \(message)")
        default: return NimbusError(.internal, "\(call) \(path): \(message)")
        }
    }
}

/// `close(2)` (inside a driver, `close` is the driver's own).
func closeDescriptor(_ descriptor: Int32) { _ = close(descriptor) }

/// A byte range of a file, opened at the first read (so a reader never used holds no descriptor)
/// and read in 1 MiB chunks; the descriptor is closed at the end.
struct FileRange: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let key: String
    let range: Range<Int64>

    func makeAsyncIterator() -> Iterator { Iterator(path: path, key: key, offset: range.lowerBound, end: range.upperBound) }

    final class Iterator: AsyncIteratorProtocol {
        let path: String
        let key: String
        var descriptor: Int32 = -1
        var opened = false
        var offset: Int64
        let end: Int64

        init(path: String, key: String, offset: Int64, end: Int64) { self.path = path; self.key = key; self.offset = offset; self.end = end }
        deinit { if descriptor >= 0 { closeDescriptor(descriptor) } }

        func next() async throws -> ByteBuffer? {
            if !opened {
                opened = true
                descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                guard descriptor >= 0 else { throw NimbusError(.notFound, "no object \"\(key.prefix(200))\" (deleted while being read)") }
            }
            guard descriptor >= 0 else { return nil }
            guard offset < end else { finish(); return nil }
            let count = Int(Swift.min(1 << 20, end - offset))
            var buffer = ByteBuffer()
            buffer.reserveCapacity(count)
            let fd = descriptor, at = offset
            let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in Swift.max(0, pread(fd, raw.baseAddress!, count, off_t(at))) }
            guard read > 0 else { finish(); return nil }   // shorter than announced: the reader's count check reports it
            offset += Int64(read)
            return buffer
        }

        private func finish() {
            if descriptor >= 0 { closeDescriptor(descriptor) }
            descriptor = -1
        }
    }
}

extension URLOpenerRegistry where Resource == any BlobDriver {
    /// Adds `file:///ABSOLUTE/PATH` and `file://./RELATIVE` (option `create`, default `true`).
    public func withFile() -> Self {
        var copy = self
        copy.register("file", "file system") { url in
            try url.options.validate(known: ["create"], for: "file blob store")
            let path = (url.host.map { $0 == "." ? "./" : "/" + $0 } ?? "") + url.path
            guard !path.isEmpty, path != "/" else { throw NimbusError(.invalidArgument, "file:// needs a directory: file:///var/lib/blobs or file://./blobs") }
            return try FileBlobDriver(root: path, create: try url.options.bool("create") ?? true)
        }
        return copy
    }
}
