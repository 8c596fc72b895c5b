import Foundation
import NimbusCore
import NimbusScanning
import NimbusTesting
import Testing

@Suite("Dependency scanning: version orders, manifests, OSV matching")
struct ScanningTests {
    @Test("Debian versions order exactly as dpkg --compare-versions, on 400 generated pairs and the tricky cases")
    func debianAgreesWithDpkg() async throws {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["0", "1", "2", "10", "9", "a", "b", "z", "~", "~rc1", ".", "+", "-1", "+deb12u1", "~deb12u2", "ubuntu1", ".0", "00", "1a", "A"]
        var pairs: [(String, String)] = [("1.0~rc1", "1.0"), ("1.0", "1.0+b1"), ("1:0.9", "2.0"), ("2.36-9+deb12u4", "2.36-9+deb12u10"), ("1.0-1", "1.0"),
                                         ("3.0.11-1~deb12u2", "3.0.11-1"), ("1.2.3a", "1.2.3"), ("0.9.8~", "0.9.8~~"), ("1.001", "1.1"), ("1.0a", "1.0+")]
        func version() -> String {
            var text = (Int.random(in: 0..<5, using: &generator) == 0 ? "\(Int.random(in: 1...3, using: &generator)):" : "") + String(Int.random(in: 0...12, using: &generator))
            for _ in 0..<Int.random(in: 0...4, using: &generator) { text += pieces.randomElement(using: &generator)! }
            return text
        }
        for _ in 0..<390 { pairs.append((version(), version())) }
        // One dpkg run per comparison would be 800 processes; one shell reads them all and prints
        // each exit status (0 true, 1 false).
        var script = ""
        var asked: [(String, String, String, ComparisonResult)] = []
        for (a, b) in pairs {
            for (op, expected) in [("lt", ComparisonResult.orderedAscending), ("eq", .orderedSame)] {
                script += "\(a) \(op) \(b)\n"
                asked.append((a, op, b, expected))
            }
        }
        let run = try await ProcessRunner.run("/bin/sh", ["-c", "while read a op b; do /usr/bin/dpkg --compare-versions \"$a\" \"$op\" \"$b\"; echo $?; done"],
                                              input: Array(script.utf8))
        let statuses = run.stdout.split(separator: "\n").map(String.init)
        #expect(statuses.count == asked.count, "dpkg answered \(statuses.count) of \(asked.count): \(run.stderr.prefix(300))")
        var disagreements: [String] = []
        for ((a, op, b, expected), status) in zip(asked, statuses) {
            guard status == "0" || status == "1" else { Issue.record("dpkg refused \(a) \(op) \(b)"); continue }
            let mine = VersionOrder.debian(a, b)
            if (status == "0") != (mine == expected) { disagreements.append("\(a) \(op) \(b): dpkg \(status == "0"), nimbus \(mine.rawValue)") }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(10))")
    }

    @Test("PEP 440 orders the specification's example list")
    func pep440() {
        let ordered = ["1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2", "1.0b2.post345.dev456", "1.0b2.post345",
                       "1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5", "1.0+abc.7", "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1"]
        for (a, b) in zip(ordered, ordered.dropFirst()) {
            #expect(VersionOrder.pypi(a, b) == .orderedAscending, "\(a) < \(b)")
            #expect(VersionOrder.pypi(b, a) == .orderedDescending, "\(b) > \(a)")
        }
        #expect(VersionOrder.pypi("1.0", "1.0.0") == .orderedSame && VersionOrder.pypi("1!0.1", "2.0") == .orderedDescending)
        #expect(VersionOrder.pypi("1.0-1", "1.0.post1") == .orderedSame && VersionOrder.pypi("1.0c1", "1.0rc1") == .orderedSame)
    }

    @Test("SemVer follows semver.org's precedence example; build metadata is ignored")
    func semver() {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
        for (a, b) in zip(ordered, ordered.dropFirst()) { #expect(VersionOrder.semver(a, b) == .orderedAscending, "\(a) < \(b)") }
        #expect(VersionOrder.semver("v1.2.3+build.7", "1.2.3") == .orderedSame)
    }

    @Test("manifests: Package.resolved v1 and v2, requirements.txt, dpkg status")
    func manifests() throws {
        let v2 = #"{"pins":[{"identity":"swift-nio","kind":"remoteSourceControl","location":"https://github.com/apple/swift-nio.git","state":{"revision":"abc","version":"2.62.0"}},{"identity":"x","kind":"remoteSourceControl","location":"https://github.com/a/x.git","state":{"branch":"main","revision":"def"}}],"version":2}"#
        #expect(try DependencyManifest.packageResolved(Data(v2.utf8)) == [Dependency(ecosystem: "SwiftURL", name: "github.com/apple/swift-nio", version: "2.62.0")])
        let v1 = #"{"object":{"pins":[{"package":"Yams","repositoryURL":"https://github.com/jpsim/Yams","state":{"branch":null,"revision":"1","version":"5.0.1"}}]},"version":1}"#
        #expect(try DependencyManifest.packageResolved(Data(v1.utf8)) == [Dependency(ecosystem: "SwiftURL", name: "github.com/jpsim/yams", version: "5.0.1")])
        #expect(throws: NimbusError.self) { _ = try DependencyManifest.packageResolved(Data("[]".utf8)) }
        let requirements = """
        # pinned
        Jinja2==3.1.2
        requests[socks]==2.31.0 ; python_version >= "3.8"  # http
        Django>=4.2
        -r other.txt
        zope.interface==6.0
        """
        let parsed = DependencyManifest.requirements(requirements)
        #expect(parsed.pinned.map(\.name) == ["jinja2", "requests", "zope-interface"] && parsed.pinned.map(\.version) == ["3.1.2", "2.31.0", "6.0"])
        #expect(parsed.unpinned == ["Django>=4.2", "-r other.txt"])
        let status = """
        Package: libc6
        Status: install ok installed
        Source: glibc (2.36-9+deb12u4)
        Version: 2.36-9+deb12u4

        Package: openssl
        Status: install ok installed
        Version: 3.0.11-1~deb12u2

        Package: removed-thing
        Status: deinstall ok config-files
        Version: 1.0
        """
        #expect(DependencyManifest.dpkgStatus(status, release: "12") == [Dependency(ecosystem: "Debian:12", name: "glibc", version: "2.36-9+deb12u4"),
                                                                        Dependency(ecosystem: "Debian:12", name: "openssl", version: "3.0.11-1~deb12u2")])
    }

    /// Advisories written for this test in the OSV schema (not copies of real ones).
    static let advisories: [String] = [
        #"{"id":"TEST-NIO-1","aliases":["CVE-0000-0001"],"summary":"header injection","affected":[{"package":{"ecosystem":"SwiftURL","name":"github.com/apple/swift-nio"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"2.29.1"},{"introduced":"2.60.0"},{"fixed":"2.62.1"}]}]}],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N"}]}"#,
        #"{"id":"TEST-JINJA-1","summary":"sandbox escape","affected":[{"package":{"ecosystem":"PyPI","name":"Jinja2"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.1.3"}]}],"versions":["2.11.3","3.1.2"]}]}"#,
        #"{"id":"TEST-SSL-1","summary":"timing","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u3"}]}]}]}"#,
        #"{"id":"TEST-GLIBC-1","summary":"last affected","affected":[{"package":{"ecosystem":"Debian","name":"glibc"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.36-1"},{"last_affected":"2.36-9+deb12u3"}]}]}]}"#,
        #"{"id":"TEST-WITHDRAWN","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"jinja2"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}"#,
        #"{"id":"TEST-GIT","affected":[{"package":{"ecosystem":"PyPI","name":"jinja2"},"ranges":[{"type":"GIT","events":[{"introduced":"0"},{"fixed":"deadbeef"}]}]}]}"#,
    ]

    @Test("OSV matching: SEMVER and ECOSYSTEM ranges, version lists, last_affected, fixed-in suggestions; withdrawn and GIT-only advisories ignored")
    func matching() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (index, text) in Self.advisories.enumerated() { try Data(text.utf8).write(to: directory.appendingPathComponent("a\(index).json")) }
        let scanner = try DependencyScanner(advisoryDirectory: directory.path)
        #expect(scanner.advisories.count == 5)
        let findings = scanner.scan([
            Dependency(ecosystem: "SwiftURL", name: "github.com/apple/swift-nio", version: "2.61.0"),     // second range
            Dependency(ecosystem: "SwiftURL", name: "https://github.com/apple/swift-nio.git", version: "2.62.1"),   // fixed
            Dependency(ecosystem: "PyPI", name: "jinja2", version: "3.1.2"),
            Dependency(ecosystem: "PyPI", name: "Jinja2", version: "3.1.3"),
            Dependency(ecosystem: "Debian:12", name: "openssl", version: "3.0.11-1~deb12u2"),
            Dependency(ecosystem: "Debian:12", name: "glibc", version: "2.36-9+deb12u4"),             // after last_affected
            Dependency(ecosystem: "Debian:12", name: "glibc", version: "2.36-9+deb12u3"),
        ])
        #expect(findings.map { "\($0.dependency.name)@\($0.dependency.version):\($0.advisory):\($0.fixedIn ?? "-")" } == [
            "github.com/apple/swift-nio@2.61.0:TEST-NIO-1:2.62.1",
            "glibc@2.36-9+deb12u3:TEST-GLIBC-1:-",
            "jinja2@3.1.2:TEST-JINJA-1:3.1.3",
            "openssl@3.0.11-1~deb12u2:TEST-SSL-1:3.0.11-1~deb12u3",
        ])
        #expect(findings.first?.aliases == ["CVE-0000-0001"] && findings.first?.severity?.hasPrefix("CVSS:3.1") == true)
        try Data("{\"not\":\"osv\"}".utf8).write(to: directory.appendingPathComponent("broken.json"))
        #expect(throws: NimbusError.self) { _ = try DependencyScanner(advisoryDirectory: directory.path) }
    }
}
