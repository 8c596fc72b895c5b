import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NimbusArchive
import NimbusArchiveConformance
@testable import NimbusArchiveGlacier
import NimbusAWS
import NimbusCore
import NimbusTesting
import Synchronization
import Testing

/// A Glacier vault against moto: archives uploaded with their tree hash, retrieval jobs that finish
/// after moto's own delay (2 s for Expedited). On moto's unchecked server: its signature checker
/// refuses every Glacier request, boto3's own included (SignatureDoesNotMatch on CreateVault).
@Suite("Glacier archive (moto)", .requires(.moto), .timeLimit(.minutes(2)))
struct GlacierArchiveTests {
    /// A vault cannot tell an unknown archive id, nor an archive's size, without a job.
    static let capabilities: Set<ConformanceCapability> = [ArchiveConformance.coldTier]

    static func client() throws -> AWSClient {
        guard let url = Peer.setting("NIMBUS_PEER_MOTO_S3_URL") else { throw NimbusError(.unavailable, "no NIMBUS_PEER_MOTO_S3_URL; run scripts/peers up moto") }
        return AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: "test", secretAccessKey: Secret("test")),
                                              endpointURL: url, environment: [:]))
    }

    static let vault = Task<String, any Error> {
        let name = "nimbus-vault-\(IDGenerator.shared.ulid().description.lowercased().prefix(12))"
        try await client().call("glacier", "CreateVault", input: ["accountId": "-", "vaultName": .string(name)])
        return name
    }

    static func driver() async throws -> GlacierArchiveDriver {
        GlacierArchiveDriver(configuration: .init(vault: try await vault.value), client: try client())
    }

    @Test(arguments: ArchiveConformance.suite.checks(supportedBy: capabilities))
    func conformance(_ check: ArchiveConformance.Check) async throws {
        let driver = try await Self.driver()
        try await check.run(ArchiveConformance.Harness(makeDriver: { driver }, pollEvery: .milliseconds(500), timeout: .seconds(30)))
    }

    @Test("not run: unknown ids and sizes before a job (a vault has no lookup but inventories, which take hours), instant tiers (a vault has none)")
    func notSupported() {
        #expect(Set(ArchiveConformance.suite.unsupported(by: Self.capabilities).flatMap(\.needs))
                == [ArchiveConformance.knowsMissingObjects, ArchiveConformance.reportsSize, ArchiveConformance.instantTier])
    }

    @Test("the tree hash is Amazon's: one chunk is its SHA-256; 3 MiB + 1 is a three-level tree")
    func treeHash() {
        let small = ByteBuffer(string: "glacier")
        #expect(GlacierTreeHash.hex(of: small) == sha256Hex("glacier"))
        let chunk = 1024 * 1024
        var big = ByteBuffer()
        for index in 0..<(3 * chunk + 1) { big.writeInteger(UInt8(truncatingIfNeeded: index &* 7)) }
        let bytes = Array(big.readableBytesView)
        func hash(_ part: ArraySlice<UInt8>) -> [UInt8] { Array(SHA256Digest(part)) }
        let leaves = stride(from: 0, to: bytes.count, by: chunk).map { hash(bytes[$0..<min(bytes.count, $0 + chunk)]) }
        let level1 = [hash(ArraySlice(leaves[0] + leaves[1])), hash(ArraySlice(leaves[2] + leaves[3]))]
        let root = hash(ArraySlice(level1[0] + level1[1]))
        #expect(GlacierTreeHash.hex(of: big) == root.map { String(format: "%02x", $0) }.joined())
    }

    @Test("every request carries x-amz-glacier-version; an upload carries its linear and tree hashes")
    func customizations() throws {
        let model = try AWSServiceModel.named("glacier")
        let request = try AWSRequestSerializer.serialize(["accountId": "-", "vaultName": "v"], for: try model.operation("UploadArchive"), in: model,
                                                         payload: ByteBuffer(string: "glacier"))
        let headers = Dictionary(request.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(headers["x-amz-glacier-version"] == "2012-06-01")
        #expect(headers["x-amz-sha256-tree-hash"] == sha256Hex("glacier"))
        #expect(headers["x-amz-content-sha256"] == sha256Hex("glacier"))
        #expect(request.path == "/-/vaults/v/archives")
    }
}

private func SHA256Digest(_ bytes: ArraySlice<UInt8>) -> [UInt8] { Array(SHA256.hash(data: Array(bytes))) }
private func sha256Hex(_ text: String) -> String { SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined() }

/// Glacier's documented answers that moto leaves out: a job output's `x-amz-sha256-tree-hash`.
@Suite("Glacier job output checks (documented answers)", .timeLimit(.minutes(1)))
struct GlacierJobOutputTests {
    @Test("a job output whose bytes do not match its tree hash is dataLoss; a matching one reads")
    func treeHashChecked() async throws {
        let server = try await FakeHTTPServer.start()
        defer { Task { await server.shutdown() } }
        let body = ByteBuffer(string: "archived bytes")
        let good = GlacierTreeHash.hex(of: body)
        let tampered = Mutex(false)
        server.route(.GET, "/-/vaults/v/jobs", reply: .json(200, ["JobList": [["JobId": "job-1", "ArchiveId": "arch-1", "Action": "ArchiveRetrieval",
                                                                                "StatusCode": "Succeeded", "Completed": true, "ArchiveSizeInBytes": 14,
                                                                                "CreationDate": "2026-12-08T00:00:00.000Z", "CompletionDate": "2099-12-08T00:00:00.000Z"]]]))
        server.route(.GET, "/-/vaults/v/jobs/job-1/output") { _ in
            let hash = tampered.withLock { $0 } ? String(repeating: "0", count: 64) : good
            return .response(status: 200, headers: [("Content-Type", "application/octet-stream"), ("x-amz-sha256-tree-hash", hash)], body: body)
        }
        let client = AWSClient(configuration: .init(region: "us-east-1", credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Secret("secret")),
                                                    endpointURL: server.baseURL, environment: [:]))
        let archive = Archive(driver: GlacierArchiveDriver(configuration: .init(vault: "v"), client: client), configuration: .init(retry: .none))
        #expect(try await archive.get("arch-1") == body)
        tampered.withLock { $0 = true }
        do {
            _ = try await archive.get("arch-1")
            Issue.record("a tampered job output was read")
        } catch let error as NimbusError {
            #expect(error.code == .dataLoss)
        }
        #expect(server.requests.allSatisfy { $0.header("x-amz-glacier-version") == "2012-06-01" })
    }
}
