import Foundation
import NimbusAWS
import NimbusCore
import NimbusScanning
@testable import NimbusScanningAWS
import NimbusTesting
import Testing

/// The moto without IAM checks: moto 5.2's checked mode refuses every GuardDuty GET as
/// SignatureDoesNotMatch (boto3's own requests too), and answers Inspector's Enable with HTTP 500.
enum Moto {
    static func aws(region: String = "us-east-1") throws -> AWSClient {
        let (id, secret) = try Peer.motoKeys()
        guard let url = Peer.setting("NIMBUS_PEER_MOTO_S3_URL") else { throw NimbusError(.unavailable, "no NIMBUS_PEER_MOTO_S3_URL; run scripts/peers up moto") }
        return AWSClient(configuration: .init(region: region, credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret),
                                              endpointURL: url, maxAttempts: 1, environment: [:]))
    }
}

@Suite("GuardDuty management (moto)", .requires(.moto), .timeLimit(.minutes(2)))
struct GuardDutyTests {
    @Test("a detector is created, read, suspended with a new frequency, and deleted")
    func detectors() async throws {
        let guardDuty = GuardDuty(aws: try Moto.aws(region: "eu-north-1"))
        let id = try await guardDuty.createDetector(frequency: .fifteenMinutes)
        #expect(try await guardDuty.detectorIDs().contains(id))
        var detector = try await guardDuty.detector(id)
        #expect(detector.isEnabled && detector.frequency == .fifteenMinutes)
        try await guardDuty.updateDetector(id, enabled: false, frequency: .oneHour)
        detector = try await guardDuty.detector(id)
        #expect(!detector.isEnabled && detector.frequency == .oneHour)
        try await guardDuty.deleteDetector(id)
        #expect(try await guardDuty.detectorIDs().contains(id) == false)
        await #expect(throws: NimbusError.self) { _ = try await guardDuty.detector(id) }
    }

    @Test("a filter round-trips its action, rank and criteria; bad names and ranks are refused before any call")
    func filters() async throws {
        let guardDuty = GuardDuty(aws: try Moto.aws(region: "eu-south-1"))
        let detector = try await guardDuty.createDetector()
        let filter = GuardDuty.Filter(name: "archive-scanner.1", action: .archive, rank: 3, description: "our own scanner",
                                      criteria: ["service.action.networkConnectionAction.remoteIpDetails.ipAddressV4": .equals(["198.51.100.7"]),
                                                 "severity": .atLeast(4)])
        try await guardDuty.createFilter(detector, filter)
        #expect(try await guardDuty.filter(detector, named: filter.name) == filter)
        var changed = filter
        changed.action = .noop
        changed.rank = 9
        changed.criteria = ["type": .notEquals(["Recon:EC2/PortProbeUnprotectedPort"])]
        try await guardDuty.updateFilter(detector, changed)
        #expect(try await guardDuty.filter(detector, named: filter.name) == changed)
        try await guardDuty.deleteFilter(detector, named: filter.name)
        await #expect(throws: NimbusError.self) { _ = try await guardDuty.filter(detector, named: filter.name) }

        for bad in [GuardDuty.Filter(name: "ab", action: .noop, rank: 1, criteria: ["severity": .atLeast(1)]),
                    GuardDuty.Filter(name: "has space", action: .noop, rank: 1, criteria: ["severity": .atLeast(1)]),
                    GuardDuty.Filter(name: "rank-zero", action: .noop, rank: 0, criteria: ["severity": .atLeast(1)]),
                    GuardDuty.Filter(name: "no-criteria", action: .noop, rank: 1, criteria: [:])] {
            let error = await #expect(throws: NimbusError.self) { try await guardDuty.createFilter(detector, bad) }
            #expect(error?.code == .invalidArgument)
        }
        try await guardDuty.deleteDetector(detector)
    }

    @Test("a trusted IP list is created, listed, renamed and deleted; a location outside S3 is refused")
    func ipSets() async throws {
        let guardDuty = GuardDuty(aws: try Moto.aws(region: "eu-west-3"))
        let detector = try await guardDuty.createDetector()
        let id = try await guardDuty.createIPSet(detector, name: "office", format: .txt, location: "s3://nimbus-lists/office.txt")
        #expect(try await guardDuty.ipSetIDs(detector) == [id])
        var set = try await guardDuty.ipSet(detector, id: id)
        #expect(set.name == "office" && set.format == .txt && set.location == "s3://nimbus-lists/office.txt")
        try await guardDuty.updateIPSet(detector, id: id, name: "office-2", activate: false)
        set = try await guardDuty.ipSet(detector, id: id)
        #expect(set.name == "office-2")
        try await guardDuty.deleteIPSet(detector, id: id)
        let error = await #expect(throws: NimbusError.self) { _ = try await guardDuty.createIPSet(detector, name: "x", format: .txt, location: "/etc/hosts") }
        #expect(error?.code == .invalidArgument)
        try await guardDuty.deleteDetector(detector)
    }
}

@Suite("Inspector management (moto)", .requires(.moto), .timeLimit(.minutes(2)))
struct InspectorTests {
    @Test("enabling and disabling scan types shows in the account status")
    func scanning() async throws {
        let inspector = Inspector(aws: try Moto.aws(region: "ap-south-1"))
        try await inspector.enable([.ecr, .ec2])
        var status = try #require(try await inspector.status().first)
        #expect(status.resources[.ecr] == .enabled && status.resources[.ec2] == .enabled)
        try await inspector.disable([.ecr])
        status = try #require(try await inspector.status().first)
        #expect(status.resources[.ecr] == .disabled && status.resources[.ec2] == .enabled)
        let error = await #expect(throws: NimbusError.self) { try await inspector.enable([]) }
        #expect(error?.code == .invalidArgument)
    }

    @Test("a suppression filter is created, listed by action and deleted")
    func filters() async throws {
        let inspector = Inspector(aws: try Moto.aws(region: "ap-south-2"))
        let arn = try await inspector.createFilter(name: "low-noise", action: .suppress, criteria: .init(severities: [.low, .informational], resourceIDs: ["i-0abc*"]),
                                                   reason: "accepted risk")
        let suppressing = try await inspector.filters(action: .suppress)
        #expect(suppressing.map(\.arn) == [arn] && suppressing.first?.name == "low-noise")
        #expect(try await inspector.filters(action: Inspector.Filter.Action.none).isEmpty)
        try await inspector.deleteFilter(arn: arn)
        #expect(try await inspector.filters().isEmpty)
        await #expect(throws: NimbusError.self) { try await inspector.createFilter(name: "empty", action: .suppress, criteria: .init()) }
        #expect(try await inspector.findings(.init(severities: [.critical], statuses: [.active])).isEmpty)
    }

    @Test("criteria: lists are ANDed, values ORed, a trailing * is a PREFIX comparison")
    func criteria() {
        let json = Inspector.Criteria(severities: [.high, .critical], vulnerabilityIDs: ["CVE-2024-3094"], resourceIDs: ["arn:aws:ecr:*"]).json
        #expect(json == ["severity": [["comparison": "EQUALS", "value": "HIGH"], ["comparison": "EQUALS", "value": "CRITICAL"]],
                         "vulnerabilityId": [["comparison": "EQUALS", "value": "CVE-2024-3094"]],
                         "resourceId": [["comparison": "PREFIX", "value": "arn:aws:ecr:"]]])
    }

    /// A package-vulnerability finding in the shape of the inspector2 model's `Finding` (member
    /// names and enums from botocore 1.44.8's service-2.json).
    static let finding: JSONValue = [
        "findingArn": "arn:aws:inspector2:us-east-1:123456789012:finding/0d0a3d5e", "awsAccountId": "123456789012",
        "type": "PACKAGE_VULNERABILITY", "description": "xz backdoor", "title": "CVE-2024-3094 - xz-utils",
        "remediation": ["recommendation": ["text": "upgrade"]], "severity": "CRITICAL", "status": "ACTIVE",
        "firstObservedAt": 1_712_000_000, "lastObservedAt": 1_712_100_000,
        "resources": [["type": "AWS_ECR_CONTAINER_IMAGE", "id": "arn:aws:ecr:us-east-1:123456789012:repository/api/sha256:ab"]],
        "packageVulnerabilityDetails": ["vulnerabilityId": "CVE-2024-3094", "source": "DEBIAN_CVE",
                                        "vulnerablePackages": [["name": "xz-utils", "version": "5.6.0-0.2", "packageManager": "OS", "fixedInVersion": "5.6.1+really5.4.5-1"],
                                                               ["name": "liblzma5", "version": "5.6.0-0.2", "packageManager": "OS", "fixedInVersion": "NotAvailable"]]],
    ]

    @Test("a package finding reads as the offline scanner's findings; an unknown severity is refused by name")
    func findingShape() throws {
        let finding = try Inspector.finding(Self.finding)
        #expect(finding.severity == .critical && finding.status == .active && finding.resourceIDs.count == 1)
        let findings = finding.dependencyFindings
        #expect(findings == [Finding(dependency: Dependency(ecosystem: "Debian", name: "xz-utils", version: "5.6.0-0.2"), advisory: "CVE-2024-3094",
                                     summary: "CVE-2024-3094 - xz-utils", fixedIn: "5.6.1+really5.4.5-1", severity: "CRITICAL"),
                             Finding(dependency: Dependency(ecosystem: "Debian", name: "liblzma5", version: "5.6.0-0.2"), advisory: "CVE-2024-3094",
                                     summary: "CVE-2024-3094 - xz-utils", fixedIn: nil, severity: "CRITICAL")])
        var unknown = Self.finding
        if case .object(var fields) = unknown { fields["severity"] = "APOCALYPTIC"; unknown = .object(fields) }
        let error = #expect(throws: NimbusError.self) { _ = try Inspector.finding(unknown) }
        #expect(error?.message.contains("APOCALYPTIC") == true)
    }
}
