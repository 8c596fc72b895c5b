import Foundation
import NIOCore
import NimbusBlob
import NimbusBlobConformance
@testable import NimbusBlobGCS
import NimbusCore
import NimbusGCP
import NimbusTesting
import Testing

/// GCS against gcp-storage-emulator: the suite but what the emulator lacks (it ignores GCS's
/// preconditions and returns every object in one page), and those two against a local server
/// answering as GCS documents (`412 conditionNotMet`, `nextPageToken`).
@Suite("GCS blob store (gcp-storage-emulator)", .requires(.gcs), .timeLimit(.minutes(3)))
struct GCSBlobTests {
    static let capabilities: Set<ConformanceCapability> = [BlobConformance.multipart, BlobConformance.objectsUnderObjects, BlobConformance.reportsCRC32C]

    static let bucket = Task<String, any Error> {
        let name = "nimbus-blob-\(IDGenerator.shared.ulid().description.lowercased().prefix(12))"
        let gcp = try GCPClient(configuration: .init(anonymous: true))
        _ = try await gcp.json(.POST, try Peer.gcs.url() + "/storage/v1/b", query: [("project", "nimbus-test")], body: ["name": .string(name)])
        return name
    }

    static func driver() async throws -> GCSBlobDriver {
        GCSBlobDriver(configuration: .init(bucket: try await bucket.value, endpoint: try Peer.gcs.url(), readChunkSize: 300 * 1024),
                      gcp: try GCPClient(configuration: .init(anonymous: true)))
    }

    @Test(arguments: BlobConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: BlobConformance.Check) async throws {
        let driver = try await Self.driver()
        try await check.run(BlobConformance.Harness(makeDriver: { driver }, partSize: 256 * 1024))
    }

    @Test("not run on the emulator: conditional writes and paged listings (tested below against GCS's documented answers), keys with ./.. segments (it refuses them), signed URLs")
    func notSupported() {
        #expect(Set(BlobConformance.suite.unsupported(by: Self.capabilities).flatMap(\.needs)).subtracting(Self.capabilities)
                == [BlobConformance.conditionalWrites, BlobConformance.pagedListing, BlobConformance.dotSegments, BlobConformance.signedURLs, BlobConformance.verifiesSignatures])
    }

    @Test("a resumable upload sends parts in order with bytes START-END/*, and finishes with bytes */TOTAL")
    func resumable() async throws {
        let bucket = Bucket(driver: try await Self.driver(), configuration: .init(multipartThreshold: 256 * 1024, partSize: 256 * 1024))
        let data = BlobConformance.bytes(256 * 1024 * 3 + 7, seed: 11)
        let written = try await bucket.put("resumable/\(IDGenerator.shared.ulid().description)", data)
        #expect(written.size == Int64(data.readableBytes) && written.checksums.crc32c == CRC32C.checksum(data.readableBytesView))
        #expect(try await bucket.get(written.key) == data)
    }
}

/// The driver's side of GCS's preconditions and paging, against a server answering as GCS documents and
/// refusing any request that departs from Google's Discovery document for storage v1.
@Suite("GCS preconditions and paging (documented answers, requests checked against the Discovery document)", .timeLimit(.minutes(1)))
struct GCSPreconditionTests {
    @Test("ifGenerationMatch=0 creates only if absent; ifGenerationMatch=N on delete and rewrite; 412 is failedPrecondition; pages follow nextPageToken")
    func wire() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        // Every request is first checked against the extract of GCS's Discovery document (storage v1).
        let discovery = try DiscoveryRequestChecker(fixture: "storage-v1", in: .module)
        server.refuseRequests(failing: { discovery.check($0) }) { problems in .json(400, ["error": ["code": 400, "message": .string(problems.joined(separator: "; "))]]) }
        let conditionNotMet: FakeHTTPServer.Reply = .json(412, ["error": ["code": 412, "message": "At least one of the pre-conditions you specified did not hold.",
                                                                          "errors": [["reason": "conditionNotMet", "domain": "global", "message": "Precondition Failed"]]]])
        server.route(.POST, "/upload/storage/v1/b/bkt/o") { request in
            request.queryItem("ifGenerationMatch") == "0" ? conditionNotMet
                : .json(200, ["name": "k", "size": "1", "generation": "7", "etag": "CAc=", "crc32c": "AAAAAA=="])
        }
        server.route(.DELETE, "/storage/v1/b/bkt/o/{name}") { request in
            request.queryItem("ifGenerationMatch") == "6" ? conditionNotMet : .text(204, "")
        }
        server.route(.POST, "/storage/v1/b/bkt/o/{name}/rewriteTo/b/bkt/o/{destination}") { request in
            request.queryItem("ifGenerationMatch") == "0" ? conditionNotMet : .json(200, ["done": true, "resource": ["name": "d", "size": "1", "generation": "9"]])
        }
        server.route(.GET, "/storage/v1/b/bkt/o") { request in
            switch request.queryItem("pageToken") {
            case nil: .json(200, ["items": [["name": "a", "size": "1"], ["name": "b", "size": "1"]], "nextPageToken": "t1"])
            case "t1": .json(200, ["items": [["name": "c", "size": "1"]], "prefixes": ["d/"]])
            default: .json(400, ["error": ["code": 400, "message": "bad token"]])
            }
        }
        let driver = GCSBlobDriver(configuration: .init(bucket: "bkt", endpoint: server.baseURL), gcp: try GCPClient(configuration: .init(anonymous: true)))
        let bucket = Bucket(driver: driver, configuration: .init(retry: .none))
        let taken = await #expect(throws: NimbusError.self) { try await bucket.put("k", string: "x", options: .init(condition: .ifAbsent)) }
        #expect(taken?.code == .failedPrecondition)
        #expect(try await bucket.put("k", string: "x").version == "7")
        let stale = await #expect(throws: NimbusError.self) { try await bucket.delete("k", condition: .ifMatch("6")) }
        #expect(stale?.code == .failedPrecondition)
        try await bucket.delete("k", condition: .ifMatch("7"))
        #expect(server.requests.last?.queryItem("ifGenerationMatch") == "7")
        let copied = await #expect(throws: NimbusError.self) { try await bucket.copy(from: "k", to: "d", condition: .ifAbsent) }
        #expect(copied?.code == .failedPrecondition)
        #expect(try await bucket.copy(from: "k", to: "d").version == "9")
        #expect(try await bucket.list().collect().map(\.description) == ["a (1 bytes)", "b (1 bytes)", "c (1 bytes)", "d/ (prefix)"])
        let insert = try #require(server.requests.first { $0.method == "POST" && $0.path.hasPrefix("/upload") })
        #expect(insert.queryItem("uploadType") == "multipart" && insert.header("content-type")?.hasPrefix("multipart/related; boundary=") == true)
        let text = insert.bodyText
        #expect(text.contains("\"crc32c\"") && text.contains("\"name\":\"k\""), "metadata and checksum travel with the bytes")
        #expect(server.refusals.isEmpty)
        // The gate bites: a misspelled resource field in the multipart metadata is refused.
        var misspelled = insert
        misspelled.body = ByteBuffer(string: text.replacingOccurrences(of: "\"contentType\"", with: "\"contentTyp\""))
        #expect(discovery.check(misspelled).contains { $0.contains("contentTyp") })
        var unknownParameter = insert
        unknownParameter.query.append(("ifGenerationMatches", "0"))
        #expect(!discovery.check(unknownParameter).isEmpty)
    }
}
