import AsyncHTTPClient
import Foundation
import NIOCore
import NimbusAWS
import NimbusBlob
import NimbusBlobConformance
@testable import NimbusBlobS3
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Testing

/// S3 against moto: the whole suite on moto's unchecked S3 server (its signature checker answers
/// 500 to presigned URLs and refuses non-ASCII keys), and writes, reads, parts and listings again
/// on the server that checks SigV4 signatures and IAM permissions.
@Suite("S3 blob store (moto)", .requires(.moto), .timeLimit(.minutes(3)))
struct S3BlobTests {
    static let capabilities: Set<ConformanceCapability> = [BlobConformance.multipart, BlobConformance.conditionalWrites, BlobConformance.pagedListing, BlobConformance.dotSegments, BlobConformance.objectsUnderObjects, BlobConformance.reportsCRC32C,
                                                           BlobConformance.signedURLs]

    static func unchecked() throws -> AWSClient {
        guard let url = Peer.setting("NIMBUS_PEER_MOTO_S3_URL") else { throw NimbusError(.unavailable, "no NIMBUS_PEER_MOTO_S3_URL; run scripts/peers up moto") }
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: "test", secretAccessKey: Secret("test")),
                                              endpointURL: url, environment: [:]))
    }

    static func checked() throws -> AWSClient {
        let (id, secret) = try Peer.motoKeys()
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret),
                                              endpointURL: try Peer.moto.url(), environment: [:]))
    }

    /// One bucket per client for the whole run (checks write under unique prefixes).
    static let uncheckedBucket = Task<String, any Error> { try await makeBucket(try unchecked()) }
    static let checkedBucket = Task<String, any Error> { try await makeBucket(try checked()) }

    static func makeBucket(_ client: AWSClient) async throws -> String {
        let name = "nimbus-blob-\(IDGenerator.shared.ulid().description.lowercased().prefix(12))"
        _ = try await AWS.S3(client: client).createBucket(.init(bucket: name))
        return name
    }

    @Test(arguments: BlobConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: BlobConformance.Check) async throws {
        let client = try Self.unchecked(), bucket = try await Self.uncheckedBucket.value
        try await check.run(BlobConformance.Harness(makeDriver: { S3BlobDriver(configuration: .init(bucket: bucket, readChunkSize: 3 * 1024 * 1024), client: client) },
                                                    partSize: 5 * 1024 * 1024, fetch: HTTPProbe.fetch))
    }

    @Test("not run on moto: tampered and expired signed URLs (its S3 server that accepts presigned URLs checks no signature)")
    func notSupported() {
        #expect(BlobConformance.suite.unsupported(by: Self.capabilities).flatMap(\.needs).filter { !Self.capabilities.contains($0) } == [BlobConformance.verifiesSignatures])
    }

    @Test("with signatures checked: single and multipart writes (33 MiB: over the client's response limit, which a HEAD must not trip), ranged reads, listings, conditions, deletes")
    func signed() async throws {
        let bucket = Bucket(driver: S3BlobDriver(configuration: .init(bucket: try await Self.checkedBucket.value), client: try Self.checked()),
                            configuration: .init(multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024))
        let prefix = "signed/\(IDGenerator.shared.ulid().description.lowercased())/"
        try await bucket.put(prefix + "small.txt", string: "hello", options: .init(contentType: "text/plain", metadata: ["owner": "ops"]))
        #expect(String(buffer: try await bucket.get(prefix + "small.txt")) == "hello")
        #expect(try await bucket.attributes(prefix + "small.txt").metadata == ["owner": "ops"])
        // Over the HTTP client's 32 MiB response limit: the HEAD announcing it carries no body and must pass.
        let large = BlobConformance.bytes(33 * 1024 * 1024 + 5, seed: 5)
        try await bucket.put(prefix + "large.bin", large)
        #expect(try await bucket.get(prefix + "large.bin") == large)
        let refused = await #expect(throws: NimbusError.self) { try await bucket.put(prefix + "small.txt", string: "x", options: .init(condition: .ifAbsent)) }
        #expect(refused?.code == .failedPrecondition)
        #expect(try await bucket.list(prefix: prefix).keys() == [prefix + "large.bin", prefix + "small.txt"])
        try await bucket.delete(prefix + "large.bin")
        #expect(try await bucket.exists(prefix + "large.bin") == false)
    }

    @Test("a wrong secret is unauthenticated; a missing bucket is notFound and says to create it")
    func refusals() async throws {
        let (id, _) = try Peer.motoKeys()
        let wrong = AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: id, secretAccessKey: Secret("wrong")),
                                                   endpointURL: try Peer.moto.url(), environment: [:]))
        let denied = Bucket(driver: S3BlobDriver(configuration: .init(bucket: try await Self.checkedBucket.value), client: wrong), configuration: .init(retry: .none))
        let unauthenticated = await #expect(throws: NimbusError.self) { try await denied.put("x", string: "x") }
        #expect(unauthenticated?.code == .unauthenticated)
        let missing = Bucket(driver: S3BlobDriver(configuration: .init(bucket: "no-such-bucket-\(IDGenerator.shared.ulid().description.lowercased().prefix(8))"), client: try Self.unchecked()),
                             configuration: .init(retry: .none))
        let absent = await #expect(throws: NimbusError.self) { try await missing.put("x", string: "x") }
        #expect(absent?.code == .notFound && absent?.message.contains("create the bucket") == true)
    }

    @Test("s3:// URLs carry the bucket, region and endpoint")
    func opener() async throws {
        let bucket = try await Bucket.open("s3://invoices?region=eu-west-1&endpoint=http://127.0.0.1:1", openers: .blob.withS3(environment: [:]))
        let driver = try #require(bucket.driver(as: S3BlobDriver.self))
        #expect(driver.configuration.bucket == "invoices" && driver.s3.client.region == "eu-west-1")
        await #expect(throws: NimbusError.self) { _ = try await Bucket.open("s3://?region=eu-west-1", openers: .blob.withS3(environment: [:])) }
    }
}
