import NIOCore
@testable import NimbusBlob
import NimbusBlobMemory
import NimbusCore
import Testing

@Suite("Blob portable layer")
struct BlobTests {
    @Test("parts are cut to an exact size from any chunking")
    func chunker() async throws {
        let chunks = [ByteBuffer(repeating: 1, count: 5), ByteBuffer(repeating: 2, count: 1), ByteBuffer(repeating: 3, count: 12), ByteBuffer()]
        var chunker = PartChunker(BlobBody(Chunks(chunks)).makeAsyncIterator())
        var sizes: [Int] = []
        while let part = try await chunker.next(size: 7) { sizes.append(part.readableBytes) }
        #expect(sizes == [7, 7, 4])
    }

    @Test("listing pages fold delimiters, keep byte order and continue after the token")
    func pager() {
        let entries = ["b", "a/1", "a/2", "c/x/y", "é", "e\u{301}"].map { BlobListEntry(key: $0, size: 1) }
        let page = BlobListPager.page(entries, options: .init(delimiter: "/", pageSize: 2))
        #expect(page.prefixes == ["a/"] && page.objects.map(\.key) == ["b"] && page.nextPageToken == "b")
        let next = BlobListPager.page(entries, options: .init(delimiter: "/", pageSize: 2, pageToken: page.nextPageToken))
        #expect(next.prefixes == ["c/"] && next.objects.map { Array($0.key.utf8) } == [Array("e\u{301}".utf8)])
        let last = BlobListPager.page(entries, options: .init(delimiter: "/", pageSize: 2, pageToken: next.nextPageToken))
        #expect(last.objects.map { Array($0.key.utf8) } == [Array("é".utf8)] && last.nextPageToken == nil)
    }

    @Test("CRC-32C travels as S3 and GCS write it")
    func checksumEncoding() {
        #expect(BlobChecksums.base64(crc32c: 0xE306_9283) == "4waSgw==")
        #expect(BlobChecksums.crc32c(base64: "4waSgw==") == 0xE306_9283)
        #expect(BlobChecksums.crc32c(base64: "4waSgw==-3") == nil)
    }

    @Test("ranges render as HTTP Range headers and clip to the object")
    func ranges() throws {
        #expect(BlobRange(offset: 10, length: 10).httpHeader == "bytes=10-19" && BlobRange(offset: 5).httpHeader == "bytes=5-")
        #expect(try BlobRange(offset: 8, length: 10).clipped(to: 10) == 8..<10)
        #expect(throws: NimbusError.self) { _ = try BlobRange(offset: -1).clipped(to: 10) }
        #expect(try BlobRange(offset: 0).clipped(to: 0) == 0..<0)
    }

    @Test("a closed bucket refuses calls; signing on a store that cannot is unimplemented")
    func lifecycle() async throws {
        let bucket = Bucket(driver: MemoryBlobDriver())
        let unsigned = await #expect(throws: NimbusError.self) { _ = try await bucket.signedURL(for: "k") }
        #expect(unsigned?.code == .unimplemented)
        try await bucket.close()
        let closed = await #expect(throws: NimbusError.self) { try await bucket.put("k", string: "x") }
        #expect(closed?.code == .failedPrecondition)
    }

    struct Chunks: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let chunks: [ByteBuffer]
        init(_ chunks: [ByteBuffer]) { self.chunks = chunks }
        func makeAsyncIterator() -> Iterator { Iterator(chunks: chunks[...]) }
        struct Iterator: AsyncIteratorProtocol {
            var chunks: ArraySlice<ByteBuffer>
            mutating func next() async throws -> ByteBuffer? { chunks.popFirst() }
        }
    }
}
