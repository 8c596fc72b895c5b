import Foundation
import NIOCore
import NimbusBlob
import NimbusBlobConformance
@testable import NimbusBlobFile
import NimbusCore
import NimbusTesting
import Testing

@Suite("File blob store (file://)", .timeLimit(.minutes(2)))
struct FileBlobTests {
    static let capabilities: Set<ConformanceCapability> = [BlobConformance.multipart, BlobConformance.conditionalWrites, BlobConformance.pagedListing, BlobConformance.dotSegments, BlobConformance.reportsCRC32C]

    static func directory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-blob-\(IDGenerator.shared.ulid().description)").path
        return path
    }

    @Test(arguments: BlobConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: BlobConformance.Check) async throws {
        let root = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await check.run(BlobConformance.Harness(makeDriver: { try FileBlobDriver(root: root) }, partSize: 64 * 1024))
    }

    @Test("not supported: signed URLs, and an object that is also a prefix (a, a/b) — refused as failedPrecondition")
    func notSupported() async throws {
        #expect(Set(BlobConformance.suite.unsupported(by: Self.capabilities).flatMap(\.needs)) == [BlobConformance.signedURLs, BlobConformance.verifiesSignatures, BlobConformance.objectsUnderObjects])
        let root = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bucket = Bucket(driver: try FileBlobDriver(root: root))
        try await bucket.put("a", string: "file")
        let refused = await #expect(throws: NimbusError.self) { try await bucket.put("a/b", string: "nested") }
        #expect(refused?.code == .failedPrecondition)
        try await bucket.put("d/x", string: "nested")
        let under = await #expect(throws: NimbusError.self) { try await bucket.put("d", string: "file") }
        #expect(under?.code == .failedPrecondition)
        try await bucket.delete("d/x")
        try await bucket.put("d", string: "now a file", options: .init())
        #expect(String(buffer: try await bucket.get("d")) == "now a file", "deleting the last object under d removed its directory")
    }

    @Test("keys map to readable paths, escaped only where a file system would misread them, and back")
    func layout() throws {
        #expect(FileBlobDriver.relativePath("reports/2026.pdf") == ["reports", "2026.pdf"])
        #expect(FileBlobDriver.relativePath("../x") == ["%2E%2E", "x"])
        #expect(FileBlobDriver.relativePath("/a//b/.") == ["%", "a", "%", "b", "%2E"])
        #expect(FileBlobDriver.relativePath(".nimbus/x") == ["%2Enimbus", "x"])
        #expect(FileBlobDriver.relativePath("x/.nimbus") == ["x", ".nimbus"])
        #expect(FileBlobDriver.relativePath("100%") == ["100%25"])
        let long = String(repeating: "é", count: 300)          // 600 bytes in one segment
        let parts = FileBlobDriver.relativePath(long)
        #expect(parts.count == 3 && parts.dropLast().allSatisfy { $0.hasSuffix("%+") } && parts.allSatisfy { $0.utf8.count <= 242 })
        for key in BlobConformance.awkwardKeys + BlobConformance.dotSegmentKeys + ["/a//b/.", ".nimbus/x", "100%", "%2E", "%", long, "a%+b", "trailing%"] {
            #expect(FileBlobDriver.key(fromRelative: FileBlobDriver.relativePath(key)).map { Array($0.utf8) } == Array(key.utf8), "\(key.debugDescription)")
        }
    }

    @Test("../ keys stay inside the root; a symbolic link inside the root is not followed")
    func containment() async throws {
        let root = Self.directory(), outside = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: outside) }
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let bucket = Bucket(driver: try FileBlobDriver(root: root))
        try await bucket.put("../../escape", string: "x")
        #expect(FileManager.default.fileExists(atPath: root + "/%2E%2E/%2E%2E/escape"))
        #expect(!FileManager.default.fileExists(atPath: (root as NSString).deletingLastPathComponent + "/escape"))
        try FileManager.default.createSymbolicLink(atPath: root + "/linked", withDestinationPath: outside)
        try "secret".write(toFile: outside + "/secret.txt", atomically: true, encoding: .utf8)
        let read = await #expect(throws: NimbusError.self) { _ = try await bucket.get("linked/secret.txt") }
        #expect(read?.code == .permissionDenied)
        let write = await #expect(throws: NimbusError.self) { try await bucket.put("linked/planted.txt", string: "x") }
        #expect(write?.code == .permissionDenied)
        #expect(!FileManager.default.fileExists(atPath: outside + "/planted.txt"))
        #expect(try await bucket.list().keys() == ["../../escape"], "the link is not listed either")
    }

    @Test("files put there by other tools are objects too; two stores on one directory share create-only-if-absent")
    func sharedDirectory() async throws {
        let root = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let first = Bucket(driver: try FileBlobDriver(root: root)), second = Bucket(driver: try FileBlobDriver(root: root))
        try FileManager.default.createDirectory(atPath: root + "/hand", withIntermediateDirectories: true)
        try "by hand".write(toFile: root + "/hand/made.txt", atomically: true, encoding: .utf8)
        #expect(String(buffer: try await second.get("hand/made.txt")) == "by hand")
        #expect(try await first.attributes("hand/made.txt").etag != nil)
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<10 {
                let bucket = index % 2 == 0 ? first : second
                group.addTask { (try? await bucket.put("lock", string: "\(index)", options: .init(condition: .ifAbsent))) != nil }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        let staged = try FileManager.default.contentsOfDirectory(atPath: root + "/.nimbus/tmp")
        #expect(staged.isEmpty, "losing writers leave no staged files: \(staged)")
    }

    @Test("file:// URLs: absolute, relative, create=false on a missing directory")
    func opener() async throws {
        let root = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bucket = try await Bucket.open("file://\(root)", openers: .blob.withFile())
        #expect(bucket.driver(as: FileBlobDriver.self)?.root.path == root)
        await #expect(throws: NimbusError.self) { _ = try await Bucket.open("file://\(root)-missing?create=false", openers: .blob.withFile()) }
        await #expect(throws: NimbusError.self) { _ = try await Bucket.open("file://\(root)?mode=x", openers: .blob.withFile()) }
    }
}
