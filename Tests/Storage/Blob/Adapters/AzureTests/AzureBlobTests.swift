import Foundation
import NIOCore
import NimbusAzure
import NimbusBlob
@testable import NimbusBlobAzure
import NimbusBlobConformance
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing

/// Azure Blob Storage: no emulator runs here (Azurite needs Node packages this machine cannot
/// install), so the driver runs the whole suite against a fake that answers as Microsoft documents
/// and refuses every request departing from Microsoft's Swagger description of the Blob service.
@Suite("Azure blob store (fake checked against the Blob service's Swagger description)", .timeLimit(.minutes(2)))
struct AzureBlobTests {
    static let capabilities: Set<ConformanceCapability> = [BlobConformance.multipart, BlobConformance.conditionalWrites, BlobConformance.pagedListing,
                                                           BlobConformance.objectsUnderObjects, BlobConformance.signedURLs, BlobConformance.verifiesSignatures,
                                                           BlobConformance.reportsCRC32C]

    static let fake = Task<FakeAzureBlobService, any Error> {
        let fake = try await FakeAzureBlobService.start()
        fake.createContainer("photos")
        return fake
    }

    /// A fake of its own, for a test that counts requests or injects faults while the suite runs in parallel.
    static func privateFake() async throws -> FakeAzureBlobService {
        let fake = try await FakeAzureBlobService.start()
        fake.createContainer("photos")
        return fake
    }

    static func driver(_ fake: FakeAzureBlobService, credential: AzureStorageCredential = .sharedKey(FakeAzureBlobService.account), readChunkSize: Int = 100 * 1024) -> AzureBlobDriver {
        AzureBlobDriver(configuration: .init(container: "photos", readChunkSize: readChunkSize, copyPollInterval: .milliseconds(20)),
                        storage: AzureStorageClient(configuration: .init(endpoint: fake.endpoint, credential: credential, retry: RetryPolicy(maxAttempts: 1))))
    }

    @Test(arguments: BlobConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: BlobConformance.Check) async throws {
        let fake = try await Self.fake.value
        try await check.run(BlobConformance.Harness(makeDriver: { Self.driver(fake) }, partSize: 256 * 1024, fetch: HTTPProbe.fetch))
    }

    @Test("not run: keys with . and .. segments (a blob URL cannot carry them as they are; the driver refuses them)")
    func notSupported() async throws {
        #expect(Set(BlobConformance.suite.unsupported(by: Self.capabilities).flatMap(\.needs)).subtracting(Self.capabilities) == [BlobConformance.dotSegments])
        let bucket = Bucket(driver: Self.driver(try await Self.fake.value))
        for key in BlobConformance.dotSegmentKeys {
            await #expect(throws: NimbusError.self) { try await bucket.put("dots/" + key, string: "x") }
        }
    }

    @Test("blocks: Put Block with Content-MD5 and ids of one length, committed in order by Put Block List with the properties, metadata and CRC-32C")
    func blocks() async throws {
        let fake = try await Self.privateFake()
        let bucket = Bucket(driver: Self.driver(fake), configuration: .init(multipartThreshold: 256 * 1024, partSize: 256 * 1024, concurrency: 3))
        let key = "blocks/\(IDGenerator.shared.ulid())"
        let data = BlobConformance.bytes(256 * 1024 * 3 + 11, seed: 5)
        fake.server.clearRequests()
        let written = try await bucket.put(key, data, options: .init(contentType: "video/mp4", cacheControl: "max-age=60", metadata: ["camera": "a7"], storageClass: "Cool"))
        let puts = fake.server.requests.filter { $0.queryItem("comp") == "block" }
        #expect(puts.count == 4)
        #expect(Set(puts.compactMap { $0.queryItem("blockid").flatMap { Data(base64Encoded: $0)?.count } }).count == 1, "every block id has one length")
        #expect(puts.allSatisfy { $0.header("content-md5") != nil })
        let commit = try #require(fake.server.requests.first { $0.queryItem("comp") == "blocklist" })
        let ids = try XMLElement.parse(Data(commit.body.readableBytesView)).all("Latest").map(\.text)
        let decoded = ids.compactMap { Data(base64Encoded: $0).flatMap { String(data: $0, encoding: .utf8) } }
        #expect(decoded.map { String($0.suffix(7)) } == ["-000001", "-000002", "-000003", "-000004"], "committed in part order")
        #expect(Set(decoded.map { $0.dropLast(7) }).count == 1, "one upload prefix")
        #expect(commit.header("x-ms-blob-content-type") == "video/mp4" && commit.header("x-ms-meta-camera") == "a7" && commit.header("x-ms-access-tier") == "Cool")
        #expect(commit.header("x-ms-meta-nimbus_crc32c") == String(format: "%08x", CRC32C.checksum(data.readableBytesView)))
        let attributes = try await bucket.attributes(key)
        #expect(attributes.metadata == ["camera": "a7"], "the CRC-32C entry is not user metadata")
        #expect(attributes.checksums.crc32c == written.checksums.crc32c && attributes.storageClass == "Cool" && attributes.cacheControl == "max-age=60")
        #expect(try await bucket.get(key) == data)
    }

    @Test("the reserved metadata name and names Azure cannot carry are invalidArgument before anything is sent")
    func metadataNames() async throws {
        let bucket = Bucket(driver: Self.driver(try await Self.fake.value))
        #expect(await code { try await bucket.put("m/1", string: "x", options: .init(metadata: ["nimbus_crc32c": "0"])) } == .invalidArgument)
        #expect(await code { try await bucket.put("m/2", string: "x", options: .init(metadata: ["9lives": "x"])) } == .invalidArgument)
    }

    @Test("leases: a leased blob refuses writes and deletes without the lease id (failedPrecondition); release, change and break")
    func leases() async throws {
        let fake = try await Self.fake.value
        let driver = Self.driver(fake)
        let bucket = Bucket(driver: driver, configuration: .init(retry: .none))
        let key = "leases/\(IDGenerator.shared.ulid())"
        try await bucket.put(key, string: "v1")
        let lease = try await driver.acquireLease(key, duration: .seconds(15))
        #expect(await code { _ = try await driver.acquireLease(key, duration: nil) } == .failedPrecondition, "another lease is held")
        #expect(await code { try await bucket.put(key, string: "v2") } == .failedPrecondition)
        #expect(await code { try await bucket.delete(key) } == .failedPrecondition)
        try await driver.renewLease(lease)
        let changed = try await driver.changeLease(lease, to: UUID().uuidString.lowercased())
        #expect(await code { try await driver.releaseLease(lease) } != nil, "the old id no longer holds the lease")
        try await driver.releaseLease(changed)
        try await bucket.put(key, string: "v2")
        _ = try await driver.acquireLease(key, duration: nil)
        #expect(try await driver.breakLease(key) == 0)
        try await bucket.delete(key)
        #expect(await code { _ = try await driver.acquireLease(key, duration: .seconds(5)) } == .invalidArgument)
    }

    @Test("503 ServerBusy with Retry-After is retried by the bucket; a byte corrupted in a ranged read is dataLoss (the CRC-32C kept in metadata); a pending copy is polled to its end")
    func faults() async throws {
        let fake = try await Self.privateFake()
        let bucket = Bucket(driver: Self.driver(fake), configuration: .init(retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50))))
        let key = "faults/\(IDGenerator.shared.ulid())"
        fake.state.withLock { $0.busy = 1 }
        try await bucket.put(key, string: "patient")
        #expect(fake.state.withLock { $0.busy } == 0, "the 503 was answered")
        #expect(String(buffer: try await bucket.get(key)) == "patient")

        let data = BlobConformance.bytes(300 * 1024, seed: 3)
        try await bucket.put(key + "-big", data)
        fake.state.withLock { $0.corruptReads = 1 }
        let single = Bucket(driver: Self.driver(fake), configuration: .init(retry: .none))
        #expect(await code { _ = try await single.get(key + "-big") } == .dataLoss)

        fake.state.withLock { $0.pendingCopies = 1 }
        let copied = try await bucket.copy(from: key + "-big", to: key + "-copy")
        #expect(copied.size == Int64(data.readableBytes))
        #expect(try await bucket.get(key + "-copy") == data)
    }

    @Test("a wrong account key is unauthenticated; a SAS credential works; a missing container says to create it")
    func credentials() async throws {
        let fake = try await Self.fake.value
        let wrong = AzureStorageAccount(name: FakeAzureBlobService.account.name, key: Secret(Data(repeating: 1, count: 64).base64EncodedString()))
        let bad = Bucket(driver: Self.driver(fake, credential: .sharedKey(wrong)), configuration: .init(retry: .none))
        #expect(await code { try await bad.put("auth/x", string: "x") } == .unauthenticated)

        let expiry = Date().addingTimeInterval(600)
        let sas = try AzureSAS.blob(account: FakeAzureBlobService.account, container: "photos", blob: "sas/item.txt", permissions: "rcw", expiry: expiry, protocolRestriction: "https,http")
        let token = sas.map { "\($0.0)=\(FormEncoder.escapeComponent($0.1))" }.joined(separator: "&")
        let viaSAS = Bucket(driver: Self.driver(fake, credential: .sas(Secret(token))), configuration: .init(retry: .none))
        try await viaSAS.put("sas/item.txt", string: "through a SAS")
        #expect(String(buffer: try await viaSAS.get("sas/item.txt")) == "through a SAS")
        #expect(await code { try await viaSAS.put("sas/other.txt", string: "x") } == .unauthenticated, "the SAS names one blob")
        #expect(await code { _ = try await viaSAS.signedURL(for: "sas/item.txt") } == .failedPrecondition, "signing needs the account key")

        let missing = AzureBlobDriver(configuration: .init(container: "absent"),
                                      storage: AzureStorageClient(configuration: .init(endpoint: fake.endpoint, credential: .sharedKey(FakeAzureBlobService.account), retry: RetryPolicy(maxAttempts: 1))))
        do {
            _ = try await Bucket(driver: missing, configuration: .init(retry: .none)).put("k", string: "x")
            Issue.record("a write into a missing container succeeded")
        } catch let error as NimbusError {
            #expect(error.code == .notFound && error.message.contains("create it first"))
        }
    }

    @Test("the request checker refuses a misspelled header, an unknown query parameter and a block list with an unknown element")
    func checkerBites() async throws {
        let spec = try FakeAzureBlobService.spec.get()
        let put = FakeHTTPServer.CapturedRequest(method: "PUT", path: "/photos/a%20b.txt", headers: [("x-ms-version", "2024-08-04"), ("x-ms-blob-type", "BlockBlob"),
                                                                                                    ("content-length", "1"), ("x-ms-blob-content-type", "text/plain")], body: ByteBuffer(string: "x"))
        #expect(spec.check(put).isEmpty, "\(spec.check(put))")
        #expect(spec.operation(for: put)?.id == "BlockBlob_Upload")
        var misspelled = put
        misspelled.headers[3] = ("x-ms-blob-contenttype", "text/plain")
        #expect(spec.check(misspelled).contains { $0.location == "header.x-ms-blob-contenttype" })
        var unknown = put
        unknown.query = [("comp", "blok")]
        #expect(spec.check(unknown).map(\.location) == ["query.comp"])
        var nothing = put
        nothing.headers.remove(at: 1)
        #expect(spec.check(nothing).contains { $0.location == "header.x-ms-copy-source" }, "a PUT with neither x-ms-blob-type nor x-ms-copy-source is an incomplete Copy Blob")
        var wrongType = put
        wrongType.headers[1] = ("x-ms-blob-type", "PageBlob")
        #expect(!spec.check(wrongType).isEmpty)
        let list = FakeHTTPServer.CapturedRequest(method: "PUT", path: "/photos/k", query: [("comp", "blocklist")],
                                                  headers: [("x-ms-version", "2024-08-04")], body: ByteBuffer(string: "<BlockList><Latest>QQ==</Latest><Newest>QQ==</Newest></BlockList>"))
        #expect(spec.operation(for: list)?.id == "BlockBlob_CommitBlockList")
        #expect(spec.check(list).map(\.location) == ["body.Newest"])
        let lease = FakeHTTPServer.CapturedRequest(method: "PUT", path: "/photos/k", query: [("comp", "lease")],
                                                   headers: [("x-ms-version", "2024-08-04"), ("x-ms-lease-action", "acquire"), ("x-ms-lease-duration", "fifteen")])
        #expect(spec.operation(for: lease)?.id == "Blob_AcquireLease")
        #expect(spec.check(lease).map(\.location) == ["header.x-ms-lease-duration"])
    }

    @Test("connection strings: account key, SAS with BlobEndpoint, and what is missing")
    func connectionStrings() throws {
        let parsed = try AzureStorageClient.blobEndpoint(connectionString: "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net")
        #expect(parsed.endpoint == "https://acct.blob.core.windows.net" && parsed.credential.description == "sharedKey(acct)")
        let sas = try AzureStorageClient.blobEndpoint(connectionString: "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sig=abc%3D")
        #expect(sas.endpoint == "https://acct.blob.core.windows.net/" && sas.credential.description == "sas(<redacted>)")
        #expect(throws: NimbusError.self) { _ = try AzureStorageClient.blobEndpoint(connectionString: "AccountName=acct") }
    }

    func code(_ body: () async throws -> Void) async -> NimbusError.Code? {
        do { try await body(); return nil } catch let error as NimbusError { return error.code } catch { return .internal }
    }
}
