import Foundation
import NIOCore
import NimbusBlob
import NimbusCore
import NimbusTesting
import Synchronization
import Testing

/// The behaviour every ``BlobDriver`` must have, stated once and run against each store — gocloud's
/// `drivertest` idea, with conditions, checksums and parts added.
///
/// ```swift
/// @Test(arguments: BlobConformance.suite.checks(supportedBy: MemoryTests.capabilities))
/// func conformance(_ check: BlobConformance.Check) async throws {
///     try await check.run(BlobConformance.Harness(makeDriver: { MemoryBlobDriver() }))
/// }
/// ```
/// Every check writes under its own random prefix, so checks can run in parallel in one real bucket.
public enum BlobConformance {
    /// How a check reaches the store under test.
    public struct Harness: Sendable {
        /// Makes a driver on the bucket under test.
        public var makeDriver: @Sendable () async throws -> any BlobDriver
        /// The part size multipart checks use: the store's minimum (S3's is 5 MiB).
        public var partSize: Int
        /// Sends `method url` with a body and no credentials, for signed URLs (capability ``signedURLs``).
        public var fetch: (@Sendable (_ method: String, _ url: String, _ body: ByteBuffer?, _ headers: [(String, String)]) async throws -> (status: Int, body: ByteBuffer))?

        public init(makeDriver: @escaping @Sendable () async throws -> any BlobDriver, partSize: Int = 5 * 1024 * 1024,
                    fetch: (@Sendable (String, String, ByteBuffer?, [(String, String)]) async throws -> (status: Int, body: ByteBuffer))? = nil) {
            self.makeDriver = makeDriver; self.partSize = partSize; self.fetch = fetch
        }
    }

    /// One named behaviour.
    public typealias Check = ConformanceCheck<Harness>

    /// Uploads in parts (the driver is a ``BlobMultipartDriver``).
    public static let multipart: ConformanceCapability = "multipart"
    /// Presigned URLs work without credentials (the driver is a ``BlobSigningDriver``; the harness has `fetch`).
    public static let signedURLs: ConformanceCapability = "signedURLs"
    /// `a` and `a/b` can both be objects (object stores; a file system cannot).
    public static let objectsUnderObjects: ConformanceCapability = "objectsUnderObjects"
    /// Conditional writes and deletes are enforced by the store (gcp-storage-emulator ignores GCS's preconditions).
    public static let conditionalWrites: ConformanceCapability = "conditionalWrites"
    /// Listings honour the page size and continue from a token (gcp-storage-emulator returns everything at once).
    public static let pagedListing: ConformanceCapability = "pagedListing"
    /// The store checks signed URLs' signatures and expiry (moto's unchecked S3 server does not).
    public static let verifiesSignatures: ConformanceCapability = "verifiesSignatures"
    /// Reads report the whole object's CRC-32C, so corruption in transit is caught.
    public static let reportsCRC32C: ConformanceCapability = "reportsCRC32C"

    /// A check on a fresh bucket over the harness's driver, with a unique key prefix.
    static func check(_ name: String, needs: Set<ConformanceCapability> = [],
                      _ body: @escaping @Sendable (Bucket, String, Harness) async throws -> Void) -> Check {
        Check(name, needs: needs) { harness in
            let prefix = "conformance/\(IDGenerator.shared.ulid().description.lowercased())/"
            let bucket = Bucket(driver: try await harness.makeDriver(),
                                configuration: .init(multipartThreshold: harness.partSize, partSize: harness.partSize, concurrency: 3,
                                                     retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(200))))
            try await bucket.closing { try await body($0, prefix, harness) }
        }
    }

    static func code(_ body: () async throws -> Void) async -> NimbusError.Code? {
        do { try await body(); return nil } catch let error as NimbusError { return error.code } catch { return .internal }
    }

    /// `count` bytes that differ everywhere: a 64 KiB pseudo-random block, each copy stamped with its
    /// index (so no two parts are alike), written with `memcpy` — a per-byte loop over megabytes holds a
    /// cooperative thread for seconds in a debug build.
    public static func bytes(_ count: Int, seed: UInt8 = 7) -> ByteBuffer {
        var block = [UInt8](repeating: 0, count: 64 * 1024)
        var value = UInt32(seed)
        for index in block.indices {
            value = value &* 1_103_515_245 &+ 12_345
            block[index] = UInt8(truncatingIfNeeded: value >> 16)
        }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        var copy: UInt64 = 0
        while buffer.readableBytes < count {
            let take = Swift.min(block.count, count - buffer.readableBytes)
            block.withUnsafeMutableBytes { $0.storeBytes(of: copy.littleEndian, toByteOffset: 0, as: UInt64.self) }
            block.withUnsafeBytes { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<take])) }
            copy += 1
        }
        return buffer
    }

    /// Keys with every character a medium could misread (drivertest's "weird keys").
    public static let awkwardKeys: [String] = [
        "with space", "unicode-日本語-ü-😀", "/leading-slash", "double//slash", "trailing-slash/",
        "percent-%2F-%", "back\\slash", "query?x=1&y=2#fragment", "plus+and=equals;semi:colon", "e\u{301}-decomposed", "é-composed",
        ".nimbus", "tab-less-but-tilde~!$'()*,", String(repeating: "k", count: 1024 - "conformance/01234567890123456789012345/".utf8.count),
    ]

    /// Keys with `.` and `..` segments, which a file system or a URL path would resolve.
    public static let dotSegmentKeys: [String] = ["../escape", "./dot", "dots/..", "dots/.", "up/../down"]

    /// Keys with `.`/`..` segments are ordinary keys (gcp-storage-emulator refuses them; GCS and S3 do not).
    public static let dotSegments: ConformanceCapability = "dotSegments"

    /// Every check.
    public static let suite = ConformanceSuite<Harness>(domain: "blob", checks: [
        check("a missing key is notFound for attributes, reads and deletes; exists says false") { bucket, prefix, _ async throws in
            #expect(await code { _ = try await bucket.attributes(prefix + "absent") } == .notFound)
            #expect(await code { _ = try await bucket.get(prefix + "absent") } == .notFound)
            #expect(await code { try await bucket.delete(prefix + "absent") } == .notFound)
            #expect(try await bucket.exists(prefix + "absent") == false)
        },
        check("bytes round-trip, binary-safe; an empty object exists and reads empty") { bucket, prefix, _ async throws in
            let binary = ByteBuffer(bytes: [0, 1, 2, 13, 10, 255, 0, 36, 0x80, 0xfe])
            try await bucket.put(prefix + "binary", binary)
            #expect(try await bucket.get(prefix + "binary") == binary)
            try await bucket.put(prefix + "empty", ByteBuffer())
            #expect(try await bucket.get(prefix + "empty").readableBytes == 0)
            #expect(try await bucket.attributes(prefix + "empty").size == 0)
            #expect(try await bucket.exists(prefix + "empty"))
        },
        check("attributes: size, content headers, cache control, metadata (names lowercased), ETag, last-modified") { bucket, prefix, _ async throws in
            let options = BlobWriteOptions(contentType: "text/csv; charset=utf-8", contentEncoding: "identity", contentDisposition: "attachment; filename=\"r.csv\"",
                                           contentLanguage: "de", cacheControl: "max-age=60", metadata: ["Owner": "billing", "run_id": "42"])
            let written = try await bucket.put(prefix + "report.csv", string: "a,b\n1,2\n", options: options)
            let read = try await bucket.attributes(prefix + "report.csv")
            #expect(read.size == 8 && read.contentType == "text/csv; charset=utf-8" && read.contentEncoding == "identity")
            #expect(read.contentDisposition == "attachment; filename=\"r.csv\"" && read.contentLanguage == "de" && read.cacheControl == "max-age=60")
            #expect(read.metadata == ["owner": "billing", "run_id": "42"])
            #expect(read.etag != nil && read.etag == written.etag && read.version == written.version)
            let modified = try #require(read.lastModified)
            #expect(abs(modified.timeIntervalSinceNow) < 600, "last-modified is the write's time")
            let plain = try await bucket.put(prefix + "plain", string: "x")
            #expect(plain.contentType != nil, "a write without a type gets the store's default")
        },
        check("an overwrite changes the content and the version") { bucket, prefix, _ async throws in
            let first = try await bucket.put(prefix + "k", string: "one")
            let second = try await bucket.put(prefix + "k", string: "two, longer")
            #expect(first.version != second.version)
            #expect(String(buffer: try await bucket.get(prefix + "k")) == "two, longer")
            #expect(try await bucket.attributes(prefix + "k").size == 11)
        },
        check("ranges: offset and length, open-ended, clipped at the end; a range past the end is invalidArgument") { bucket, prefix, _ async throws in
            try await bucket.put(prefix + "digits", string: "0123456789")
            #expect(String(buffer: try await bucket.get(prefix + "digits", range: BlobRange(offset: 2, length: 3))) == "234")
            #expect(String(buffer: try await bucket.get(prefix + "digits", range: BlobRange(offset: 7))) == "789")
            #expect(String(buffer: try await bucket.get(prefix + "digits", range: BlobRange(offset: 8, length: 100))) == "89")
            let reader = try await bucket.reader(prefix + "digits", range: BlobRange(offset: 2, length: 3))
            #expect(reader.range == 2..<5 && reader.attributes.size == 10, "a range's reader reports the whole object")
            #expect(await code { _ = try await bucket.get(prefix + "digits", range: BlobRange(offset: 10)) } == .invalidArgument)
            #expect(await code { _ = try await bucket.get(prefix + "digits", range: BlobRange(offset: 50, length: 2)) } == .invalidArgument)
        },
        check("awkward keys (spaces, Unicode, ../, leading and double slashes, %, 1024 bytes) write, read and list back exactly") { bucket, prefix, _ async throws in
            for (index, key) in awkwardKeys.enumerated() {
                let full = prefix + key
                guard full.utf8.count <= BlobKey.maximumBytes else { Issue.record("test key over the limit: \(full.utf8.count)"); continue }
                try await bucket.put(full, string: "value \(index)")
                #expect(String(buffer: try await bucket.get(full)) == "value \(index)", "\(key.debugDescription)")
                #expect(try await bucket.attributes(full).key == full)
            }
            let listed = try await bucket.list(prefix: prefix).keys()
            #expect(Set(listed) == Set(awkwardKeys.map { prefix + $0 }), "every awkward key lists back as itself")
            #expect(listed == listed.sorted { BlobListPager.precedes($0, $1) }, "listings are in UTF-8 byte order")
        },
        check("keys with . and .. segments are ordinary keys: they write, read and list back as themselves", needs: [dotSegments]) { bucket, prefix, _ async throws in
            for (index, key) in dotSegmentKeys.enumerated() {
                try await bucket.put(prefix + key, string: "dot \(index)")
                #expect(String(buffer: try await bucket.get(prefix + key)) == "dot \(index)", "\(key)")
            }
            #expect(Set(try await bucket.list(prefix: prefix).keys()) == Set(dotSegmentKeys.map { prefix + $0 }))
            #expect(try await bucket.exists(prefix + "escape") == false, "../ is part of the key, not a way out")
            #expect(try await bucket.exists(prefix + "down") == false)
            #expect(try await bucket.exists(prefix + "up/down") == false)
        },
        check("keys over 1024 bytes, empty keys, control characters and bad metadata names are invalidArgument") { bucket, prefix, _ async throws in
            #expect(await code { try await bucket.put(prefix + String(repeating: "x", count: 1025), string: "") } == .invalidArgument)
            #expect(await code { try await bucket.put("", string: "") } == .invalidArgument)
            #expect(await code { try await bucket.put(prefix + "line\nbreak", string: "") } == .invalidArgument)
            #expect(await code { try await bucket.put(prefix + "nul\u{0}", string: "") } == .invalidArgument)
            #expect(await code { try await bucket.put(prefix + "m", string: "", options: .init(metadata: ["bad name": "x"])) } == .invalidArgument)
            #expect(await code { try await bucket.put(prefix + "m", string: "", options: .init(metadata: ["with-dash": "x"])) } == .invalidArgument)
            #expect(await code { try await bucket.put(prefix + "m", string: "", options: .init(metadata: ["ok": "caf\u{e9}"])) } == .invalidArgument)
            #expect(try await bucket.list(prefix: prefix).keys().isEmpty, "nothing was written")
        },
        check("create-only-if-absent: of eight concurrent writers exactly one wins, and its bytes stay", needs: [conditionalWrites]) { bucket, prefix, _ async throws in
            let results = try await withThrowingTaskGroup(of: (Int, NimbusError.Code?).self) { group in
                for writer in 0..<8 {
                    group.addTask { (writer, await code { try await bucket.put(prefix + "lock", string: "writer \(writer)", options: .init(condition: .ifAbsent)) }) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = results.filter { $0.1 == nil }
            #expect(winners.count == 1)
            #expect(results.filter { $0.1 == .failedPrecondition }.count == 7)
            if let winner = winners.first { #expect(String(buffer: try await bucket.get(prefix + "lock")) == "writer \(winner.0)") }
        },
        check("compare-and-swap: ifMatch with the current version writes, a stale version is failedPrecondition; delete ifMatch too; copy ifAbsent onto an object fails", needs: [conditionalWrites]) { bucket, prefix, _ async throws in
            let first = try await bucket.put(prefix + "manifest", string: "v1")
            let second = try await bucket.put(prefix + "manifest", string: "v2", options: .init(condition: .ifMatch(try #require(first.version))))
            #expect(await code { try await bucket.put(prefix + "manifest", string: "lost update", options: .init(condition: .ifMatch(try #require(first.version)))) } == .failedPrecondition)
            #expect(String(buffer: try await bucket.get(prefix + "manifest")) == "v2")
            #expect(await code { try await bucket.put(prefix + "nothing", string: "x", options: .init(condition: .ifMatch(try #require(first.version)))) } != nil,
                    "ifMatch on a missing object does not create it")
            #expect(try await bucket.exists(prefix + "nothing") == false)
            try await bucket.put(prefix + "other", string: "other")
            #expect(await code { try await bucket.copy(from: prefix + "other", to: prefix + "manifest", condition: .ifAbsent) } == .failedPrecondition)
            #expect(await code { try await bucket.delete(prefix + "manifest", condition: .ifMatch(try #require(first.version))) } == .failedPrecondition)
            try await bucket.delete(prefix + "manifest", condition: .ifMatch(try #require(second.version)))
            #expect(try await bucket.exists(prefix + "manifest") == false)
        },
        check("conditional reads: ifMatch a stale version and ifNoneMatch the current one are failedPrecondition") { bucket, prefix, _ async throws in
            let first = try await bucket.put(prefix + "doc", string: "one")
            let second = try await bucket.put(prefix + "doc", string: "two")
            #expect(await code { _ = try await bucket.get(prefix + "doc", conditions: .init(ifMatch: first.version)) } == .failedPrecondition)
            #expect(await code { _ = try await bucket.get(prefix + "doc", conditions: .init(ifNoneMatch: second.version)) } == .failedPrecondition)
            #expect(String(buffer: try await bucket.get(prefix + "doc", conditions: .init(ifMatch: second.version, ifNoneMatch: first.version))) == "two")
        },
        check("listing: prefix, delimiter folding into common prefixes, sizes") { bucket, prefix, _ async throws in
            let keys = ["a/1", "a/2", "a/b/3", "b/4", "c", "d/5", "d/6", "e"]
            for key in keys { try await bucket.put(prefix + key, string: key) }
            #expect(try await bucket.list(prefix: prefix).keys() == keys.map { prefix + $0 })
            let top = try await bucket.list(prefix: prefix, delimiter: "/").collect()
            let names = top.map { item -> String in switch item { case .object(let e): e.key; case .prefix(let p): p } }
            #expect(names == ["a/", "b/", "c", "d/", "e"].map { prefix + $0 })
            let inA = try await bucket.list(prefix: prefix + "a/", delimiter: "/").collect().map { item -> String in switch item { case .object(let e): e.key; case .prefix(let p): p } }
            #expect(inA == ["a/1", "a/2", "a/b/"].map { prefix + $0 })
            let sized = try await bucket.list(prefix: prefix + "c").collect()
            #expect(sized.count == 1 && { if case .object(let e) = sized[0] { e.size == 1 } else { false } }())
        },
        check("listing in pages of 2 gives every entry once, in order", needs: [pagedListing]) { bucket, prefix, _ async throws in
            let keys = ["a/1", "a/2", "a/b/3", "b/4", "c", "d/5", "d/6", "e"]
            for key in keys { try await bucket.put(prefix + key, string: key) }
            let names = ["a/", "b/", "c", "d/", "e"].map { prefix + $0 }
            // Pages of 2, by hand: every entry once, in order.
            var seen: [String] = []
            var options = BlobListOptions(prefix: prefix, delimiter: "/", pageSize: 2)
            var pages = 0
            repeat {
                let page = try await bucket.listPage(options)
                #expect(page.objects.count + page.prefixes.count <= 2)
                seen += page.objects.map(\.key) + page.prefixes
                options.pageToken = page.nextPageToken
                pages += 1
            } while options.pageToken != nil && pages < 10
            #expect(seen.sorted { BlobListPager.precedes($0, $1) } == names && pages >= 3)
        },
        check("copy keeps the bytes, the content type and the metadata; a missing source is notFound") { bucket, prefix, _ async throws in
            try await bucket.put(prefix + "src", string: "payload", options: .init(contentType: "text/plain", metadata: ["origin": "test"]))
            let copied = try await bucket.copy(from: prefix + "src", to: prefix + "dst")
            #expect(copied.key == prefix + "dst")
            #expect(String(buffer: try await bucket.get(prefix + "dst")) == "payload")
            let attributes = try await bucket.attributes(prefix + "dst")
            #expect(attributes.contentType == "text/plain" && attributes.metadata == ["origin": "test"] && attributes.size == 7)
            #expect(await code { try await bucket.copy(from: prefix + "missing", to: prefix + "x") } == .notFound)
        },
        check("delete removes the object; deleting it again is notFound") { bucket, prefix, _ async throws in
            try await bucket.put(prefix + "gone", string: "x")
            try await bucket.delete(prefix + "gone")
            #expect(try await bucket.exists(prefix + "gone") == false)
            #expect(await code { try await bucket.delete(prefix + "gone") } == .notFound)
        },
        check("streams of any chunking, small and over the threshold, read back with the same bytes and size") { bucket, prefix, harness async throws in
            for size in [0, 1, 1000, harness.partSize + 1] {
                let data = bytes(size, seed: UInt8(size % 251))
                let chunks = stride(from: 0, to: size, by: 7919).map { data.getSlice(at: $0, length: min(7919, size - $0))! }
                try await bucket.put(prefix + "stream-\(size)", from: Chunks(chunks))
                #expect(try await bucket.get(prefix + "stream-\(size)") == data, "size \(size)")
            }
        },
        check("large writes go in parts, concurrently, and the object matches its CRC-32C", needs: [multipart]) { bucket, prefix, harness async throws in
            let size = harness.partSize * 3 + 12_345
            let data = bytes(size, seed: 42)
            let written = try await bucket.put(prefix + "large", data)
            #expect(written.size == Int64(size))
            let read = try await bucket.get(prefix + "large")
            #expect(read.readableBytes == size && CRC32C.checksum(read.readableBytesView) == CRC32C.checksum(data.readableBytesView))
            #expect(try await bucket.get(prefix + "large", range: BlobRange(offset: Int64(harness.partSize) - 2, length: 4))
                    == data.getSlice(at: harness.partSize - 2, length: 4))
        },
        check("a stream that fails midway writes nothing", needs: [multipart]) { bucket, prefix, harness async throws in
            let chunk = bytes(harness.partSize, seed: 3)
            let failing = Chunks([chunk, chunk], failAfter: 2)
            #expect(await code { try await bucket.put(prefix + "broken", from: failing) } != nil)
            #expect(try await bucket.exists(prefix + "broken") == false)
        },
        check("canonically equivalent keys (é composed and decomposed) are two objects, as in every store") { bucket, prefix, _ async throws in
            let composed = prefix + "caf\u{e9}", decomposed = prefix + "cafe\u{301}"
            try await bucket.put(composed, string: "composed")
            try await bucket.put(decomposed, string: "decomposed")
            #expect(String(buffer: try await bucket.get(composed)) == "composed")
            #expect(String(buffer: try await bucket.get(decomposed)) == "decomposed")
            let listed = try await bucket.list(prefix: prefix).keys().map { Array($0.utf8) }
            #expect(listed == [Array(decomposed.utf8), Array(composed.utf8)], "two keys, in byte order (e < é)")
        },
        check("a key can be an object and a prefix of others (a, a/b)", needs: [objectsUnderObjects]) { bucket, prefix, _ async throws in
            try await bucket.put(prefix + "a", string: "file")
            try await bucket.put(prefix + "a/b", string: "nested")
            #expect(String(buffer: try await bucket.get(prefix + "a")) == "file")
            #expect(String(buffer: try await bucket.get(prefix + "a/b")) == "nested")
        },
        check("a truncated read is dataLoss, never a short success") { bucket, prefix, _ async throws in
            let data = bytes(64 * 1024, seed: 9)
            try await bucket.put(prefix + "whole", data)
            let driver = try #require(bucket.driver(as: (any BlobDriver).self))
            let truncating = Bucket(driver: FaultyReads(base: driver, fault: .truncate), configuration: .init(retry: .none))
            #expect(await code { _ = try await truncating.get(prefix + "whole") } == .dataLoss)
        },
        check("a corrupted read is caught by the CRC-32C the store reports", needs: [reportsCRC32C]) { bucket, prefix, _ async throws in
            let data = bytes(64 * 1024, seed: 11)
            try await bucket.put(prefix + "whole", data)
            #expect(try await bucket.attributes(prefix + "whole").checksums.crc32c == CRC32C.checksum(data.readableBytesView))
            let driver = try #require(bucket.driver(as: (any BlobDriver).self))
            let flipping = Bucket(driver: FaultyReads(base: driver, fault: .flipByte), configuration: .init(retry: .none))
            #expect(await code { _ = try await flipping.get(prefix + "whole") } == .dataLoss)
        },
        check("signed URLs: GET reads and PUT writes with no credentials", needs: [signedURLs]) { bucket, prefix, harness async throws in
            let fetch = try #require(harness.fetch, "the harness declares signedURLs but gives no fetch")
            try await bucket.put(prefix + "shared.txt", string: "hello", options: .init(contentType: "text/plain"))
            let get = try await bucket.signedURL(for: prefix + "shared.txt", expiresIn: .seconds(300))
            let fetched = try await fetch("GET", get, nil, [])
            #expect(fetched.status == 200 && String(buffer: fetched.body) == "hello")
            let put = try await bucket.signedURL(for: prefix + "upload.bin", method: .put, expiresIn: .seconds(300))
            let stored = try await fetch("PUT", put, ByteBuffer(string: "uploaded"), bucket.signedURLHeaders(for: .put))
            #expect((200..<300).contains(stored.status))
            #expect(String(buffer: try await bucket.get(prefix + "upload.bin")) == "uploaded")
            #expect(await code { _ = try await bucket.signedURL(for: prefix + "x", expiresIn: .seconds(8 * 86_400)) } == .invalidArgument)
        },
        check("a signed URL moved onto another key, or expired, is refused", needs: [signedURLs, verifiesSignatures]) { bucket, prefix, harness async throws in
            let fetch = try #require(harness.fetch, "the harness declares signedURLs but gives no fetch")
            try await bucket.put(prefix + "a.txt", string: "a")
            try await bucket.put(prefix + "b.txt", string: "b")
            let get = try await bucket.signedURL(for: prefix + "a.txt", expiresIn: .seconds(300))
            #expect(try await fetch("GET", get, nil, []).status == 200)
            #expect(try await fetch("GET", get.replacingOccurrences(of: "a.txt", with: "b.txt"), nil, []).status == 403)
            let short = try await bucket.signedURL(for: prefix + "a.txt", expiresIn: .seconds(1))
            try await Task.sleep(for: .seconds(2))
            #expect(try await fetch("GET", short, nil, []).status == 403)
        },
    ])

    /// A stream of fixed chunks that can fail after some.
    struct Chunks: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let chunks: [ByteBuffer]
        var failAfter: Int?
        init(_ chunks: [ByteBuffer], failAfter: Int? = nil) { self.chunks = chunks; self.failAfter = failAfter }
        func makeAsyncIterator() -> Iterator { Iterator(chunks: chunks[...], failAfter: failAfter) }
        struct Iterator: AsyncIteratorProtocol {
            var chunks: ArraySlice<ByteBuffer>
            var failAfter: Int?
            var given = 0
            mutating func next() async throws -> ByteBuffer? {
                if let failAfter, given == failAfter { throw NimbusError(.unavailable, "the source stream broke") }
                given += 1
                return chunks.popFirst()
            }
        }
    }
}

/// A driver whose reads go wrong on purpose: the last bytes dropped, or one byte flipped.
struct FaultyReads: BlobDriver {
    enum Fault { case truncate, flipByte }
    let base: any BlobDriver
    let fault: Fault
    var provider: String { base.provider }

    func attributes(of key: String) async throws -> BlobAttributes { try await base.attributes(of: key) }
    func read(_ key: String, range: BlobRange?, conditions: BlobReadConditions) async throws -> BlobReader {
        var reader = try await base.read(key, range: range, conditions: conditions)
        var all = try await reader.body.collect(upTo: 64 * 1024 * 1024)
        switch fault {
        case .truncate:
            all = all.getSlice(at: all.readerIndex, length: max(0, all.readableBytes - 100)) ?? ByteBuffer()
        case .flipByte:
            if let byte: UInt8 = all.getInteger(at: all.readerIndex + all.readableBytes / 2) {
                all.setInteger(byte ^ 0x01, at: all.readerIndex + all.readableBytes / 2)
            }
        }
        reader.body = BlobBody(all)
        return reader
    }
    func write(_ key: String, bytes: ByteBuffer, options: BlobWriteOptions, checksums: BlobChecksums) async throws -> BlobAttributes {
        try await base.write(key, bytes: bytes, options: options, checksums: checksums)
    }
    func copy(from source: String, to destination: String, condition: BlobWriteCondition?) async throws -> BlobAttributes {
        try await base.copy(from: source, to: destination, condition: condition)
    }
    func delete(_ key: String, condition: BlobWriteCondition?) async throws { try await base.delete(key, condition: condition) }
    func list(_ options: BlobListOptions) async throws -> BlobListPage { try await base.list(options) }
}
