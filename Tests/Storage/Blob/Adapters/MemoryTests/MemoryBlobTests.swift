import NIOCore
import NimbusBlob
import NimbusBlobConformance
import NimbusBlobMemory
import NimbusCore
import NimbusTesting
import Testing

@Suite("Memory blob store (mem://)", .timeLimit(.minutes(2)))
struct MemoryBlobTests {
    static let capabilities: Set<ConformanceCapability> = [BlobConformance.multipart, BlobConformance.conditionalWrites, BlobConformance.pagedListing, BlobConformance.dotSegments, BlobConformance.objectsUnderObjects, BlobConformance.reportsCRC32C]
    static let limits = BlobMultipartLimits(minimumPartSize: 64 * 1024, maximumPartSize: 1 << 30, maximumParts: 10_000, parallelParts: true)

    @Test(arguments: BlobConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: BlobConformance.Check) async throws {
        try await check.run(BlobConformance.Harness(makeDriver: { MemoryBlobDriver(multipartLimits: Self.limits) }, partSize: 64 * 1024))
    }

    @Test("not supported: signed URLs (nothing serves mem:// over HTTP)")
    func notSupported() {
        #expect(BlobConformance.suite.unsupported(by: Self.capabilities).map(\.name) == BlobConformance.suite.checks.filter { $0.needs.contains(BlobConformance.signedURLs) }.map(\.name))
    }

    @Test("parts: uploaded concurrently within the limit, joined in order; a failed stream aborts its upload")
    func parts() async throws {
        let driver = MemoryBlobDriver(multipartLimits: Self.limits)
        let bucket = Bucket(driver: driver, configuration: .init(multipartThreshold: 64 * 1024, partSize: 64 * 1024, concurrency: 2))
        let data = BlobConformance.bytes(64 * 1024 * 5 + 17, seed: 31)
        try await bucket.put("big", data)
        #expect(try await bucket.get("big") == data)
        #expect(driver.openUploads == 0)
        struct Broken: AsyncSequence, Sendable {
            typealias Element = ByteBuffer
            struct Iterator: AsyncIteratorProtocol {
                var given = 0
                mutating func next() async throws -> ByteBuffer? {
                    given += 1
                    if given > 3 { throw NimbusError(.unavailable, "source broke") }
                    return ByteBuffer(repeating: 1, count: 64 * 1024)
                }
            }
            func makeAsyncIterator() -> Iterator { Iterator() }
        }
        await #expect(throws: NimbusError.self) { try await bucket.put("broken", from: Broken()) }
        #expect(driver.openUploads == 0, "the failed upload was aborted")
        #expect(try await bucket.exists("broken") == false)
    }

    @Test("mem:// opens; unknown options are refused")
    func opener() async throws {
        let bucket = try await Bucket.open("mem://", openers: .blob.withMemory())
        #expect(bucket.provider == "memory")
        await #expect(throws: NimbusError.self) { _ = try await Bucket.open("mem://?size=1", openers: .blob.withMemory()) }
    }
}
