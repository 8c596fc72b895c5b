import Foundation
import NimbusCore

/// A dependency at a version, in an OSV ecosystem (`SwiftURL`, `PyPI`, `Debian:12`, `npm`, …).
public struct Dependency: Sendable, Hashable, Codable {
    public var ecosystem: String
    public var name: String
    public var version: String
    /// Creates a dependency.
    public init(ecosystem: String, name: String, version: String) {
        self.ecosystem = ecosystem
        self.name = name
        self.version = version
    }
}

/// Reads dependency lists: SwiftPM's `Package.resolved` (v1, v2, v3), pip's `requirements.txt`
/// (pinned `==` lines) and dpkg's status file (installed packages).
public enum DependencyManifest {
    /// `Package.resolved`: every pin with a version, as `SwiftURL` packages named by their URL
    /// without scheme and `.git` (`github.com/apple/swift-nio`), OSV's naming.
    public static func packageResolved(_ data: Data) throws -> [Dependency] {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw NimbusError(.invalidArgument, "Package.resolved is not a JSON object")
        }
        let pins = (root["pins"] as? [[String: Any]]) ?? ((root["object"] as? [String: Any])?["pins"] as? [[String: Any]]) ?? []
        return pins.compactMap { pin in
            guard let location = (pin["location"] as? String) ?? (pin["repositoryURL"] as? String),
                  let version = (pin["state"] as? [String: Any])?["version"] as? String else { return nil }
            return Dependency(ecosystem: "SwiftURL", name: swiftURLName(location), version: version)
        }
    }

    /// `https://github.com/apple/swift-nio.git` → `github.com/apple/swift-nio`.
    public static func swiftURLName(_ location: String) -> String {
        var name = location
        for prefix in ["https://", "http://", "ssh://", "git@"] where name.hasPrefix(prefix) { name.removeFirst(prefix.count) }
        if name.hasSuffix(".git") { name.removeLast(4) }
        return name.replacingOccurrences(of: ":", with: "/").lowercased()
    }

    /// `requirements.txt`: `name==version` lines (extras and environment markers dropped, names
    /// normalized per PEP 503); other lines (ranges, `-r`, URLs) are returned in `unpinned`.
    public static func requirements(_ text: String) -> (pinned: [Dependency], unpinned: [String]) {
        var pinned: [Dependency] = [], unpinned: [String] = []
        for raw in text.split(whereSeparator: \.isNewline) {
            var line = String(raw)
            if let hash = line.range(of: " #") ?? (line.hasPrefix("#") ? line.range(of: "#") : nil) { line = String(line[..<hash.lowerBound]) }
            if let marker = line.firstIndex(of: ";") { line = String(line[..<marker]) }
            line = line.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty else { continue }
            let parts = line.components(separatedBy: "==")
            guard parts.count == 2, !line.hasPrefix("-"), !parts[1].contains(","), !parts[1].contains("*") else { unpinned.append(line); continue }
            var name = parts[0].trimmingCharacters(in: .whitespaces)
            if let bracket = name.firstIndex(of: "[") { name = String(name[..<bracket]) }
            pinned.append(Dependency(ecosystem: "PyPI", name: pep503(name), version: parts[1].trimmingCharacters(in: .whitespaces)))
        }
        return (pinned, unpinned)
    }

    /// PEP 503 name normalization: lower case, runs of `-`, `_`, `.` become `-`.
    public static func pep503(_ name: String) -> String {
        name.lowercased().replacingOccurrences(of: "[-_.]+", with: "-", options: .regularExpression)
    }

    /// dpkg's status file (`/var/lib/dpkg/status`): installed packages, as `Debian:RELEASE` packages
    /// named by their source package when it differs (OSV's Debian advisories name source packages).
    public static func dpkgStatus(_ text: String, release: String) -> [Dependency] {
        text.components(separatedBy: "\n\n").compactMap { stanza in
            var fields: [String: String] = [:]
            for line in stanza.split(separator: "\n") where !line.hasPrefix(" ") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            guard let package = fields["Package"], var version = fields["Version"], fields["Status"]?.hasSuffix(" installed") == true else { return nil }
            var name = package
            if let source = fields["Source"] {
                let parts = source.split(separator: " ")
                name = String(parts[0])
                // "Source: glibc (2.36-9)": the source version differs from the binary's.
                if parts.count > 1 { version = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "()")) }
            }
            return Dependency(ecosystem: "Debian:\(release)", name: name, version: version)
        }
    }
}

/// An OSV advisory (https://ossf.github.io/osv-schema/), the parts a scanner needs.
public struct Advisory: Sendable, Hashable, Decodable {
    public struct Affected: Sendable, Hashable, Decodable {
        public struct Package: Sendable, Hashable, Decodable {
            public var ecosystem: String
            public var name: String
        }
        public struct Range: Sendable, Hashable, Decodable {
            public struct Event: Sendable, Hashable, Decodable {
                public var introduced: String?
                public var fixed: String?
                public var last_affected: String?
                public var limit: String?
            }
            public var type: String
            public var events: [Event]
        }
        public var package: Package
        public var ranges: [Range]?
        public var versions: [String]?
    }
    public struct Severity: Sendable, Hashable, Decodable {
        public var type: String
        public var score: String
    }
    public var id: String
    public var aliases: [String]?
    public var summary: String?
    public var affected: [Affected]?
    public var severity: [Severity]?
    public var withdrawn: String?
}

/// A dependency an advisory affects.
public struct Finding: Sendable, Hashable {
    public var dependency: Dependency
    public var advisory: String
    public var aliases: [String]
    public var summary: String
    /// The lowest `fixed` version above the dependency's, if the advisory names one.
    public var fixedIn: String?
    public var severity: String?

    /// Creates a finding (the scanner's, or one read from a cloud scanner such as Inspector).
    public init(dependency: Dependency, advisory: String, aliases: [String] = [], summary: String, fixedIn: String? = nil, severity: String? = nil) {
        self.dependency = dependency
        self.advisory = advisory
        self.aliases = aliases
        self.summary = summary
        self.fixedIn = fixedIn
        self.severity = severity
    }
}

/// Matches dependencies against OSV advisories given as files — offline, nothing is fetched.
///
/// ```swift
/// let scanner = try DependencyScanner(advisoryDirectory: "./osv")          // *.json, one advisory each
/// let deps = try DependencyManifest.packageResolved(Data(contentsOf: resolvedURL))
/// for finding in scanner.scan(deps) { print(finding.dependency.name, finding.advisory, finding.fixedIn ?? "no fix") }
/// ```
///
/// Versions compare by the ecosystem's rules: Debian's (as dpkg does), PEP 440 for PyPI, SemVer
/// for `SEMVER` ranges; `ECOSYSTEM` ranges of other ecosystems use SemVer. `GIT` ranges and
/// withdrawn advisories are skipped.
public struct DependencyScanner: Sendable {
    public let advisories: [Advisory]
    private let index: [String: [Advisory]]

    /// A scanner over advisories.
    public init(advisories: [Advisory]) {
        self.advisories = advisories.filter { $0.withdrawn == nil }
        var index: [String: [Advisory]] = [:]
        for advisory in self.advisories {
            for affected in advisory.affected ?? [] { index[Self.key(affected.package.ecosystem, affected.package.name), default: []].append(advisory) }
        }
        self.index = index.mapValues { Array(Set($0)).sorted { $0.id < $1.id } }
    }

    /// Reads every `*.json` under `directory` (an OSV export unzipped).
    /// - Throws: `invalidArgument` naming a file that is not an OSV advisory.
    public init(advisoryDirectory directory: String) throws {
        var advisories: [Advisory] = []
        let files = (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".json") }.sorted()
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(file))
            do { advisories.append(try JSONDecoder().decode(Advisory.self, from: data)) } catch {
                throw NimbusError(.invalidArgument, "\(file) is not an OSV advisory: \(error)")
            }
        }
        self.init(advisories: advisories)
    }

    /// Ecosystems compare without their release suffix (`Debian:12` matches an advisory for `Debian:12` or `Debian`).
    static func key(_ ecosystem: String, _ name: String) -> String {
        let base = ecosystem.split(separator: ":").first.map(String.init) ?? ecosystem
        let normalized = base == "PyPI" ? DependencyManifest.pep503(name) : base == "SwiftURL" ? DependencyManifest.swiftURLName(name) : name
        return base.lowercased() + "/" + normalized
    }

    static func compare(_ a: String, _ b: String, ecosystem: String, rangeType: String) -> ComparisonResult {
        if rangeType == "SEMVER" { return VersionOrder.semver(a, b) }
        switch ecosystem.split(separator: ":").first.map(String.init) ?? ecosystem {
        case "Debian", "Ubuntu": return VersionOrder.debian(a, b)
        case "PyPI": return VersionOrder.pypi(a, b)
        default: return VersionOrder.semver(a, b)
        }
    }

    /// Whether `version` is inside one OSV range (events in the order the schema defines).
    static func inRange(_ version: String, _ range: Advisory.Affected.Range, ecosystem: String) -> (affected: Bool, fixed: String?) {
        var affected = false
        var fixed: String?
        func lessOrEqual(_ a: String, _ b: String) -> Bool { compare(a, b, ecosystem: ecosystem, rangeType: range.type) != .orderedDescending }
        // Sort events by version; "0" (introduced at the start) first.
        let events = range.events.sorted { a, b in
            let x = a.introduced ?? a.fixed ?? a.last_affected ?? a.limit ?? "0", y = b.introduced ?? b.fixed ?? b.last_affected ?? b.limit ?? "0"
            if x == "0" { return y != "0" }
            if y == "0" { return false }
            return compare(x, y, ecosystem: ecosystem, rangeType: range.type) == .orderedAscending
        }
        for event in events {
            if let introduced = event.introduced {
                if introduced == "0" || lessOrEqual(introduced, version) { affected = true }
            } else if let fix = event.fixed {
                if lessOrEqual(fix, version) { affected = false } else if affected, fixed == nil { fixed = fix }
            } else if let last = event.last_affected {
                if compare(last, version, ecosystem: ecosystem, rangeType: range.type) == .orderedAscending { affected = false }
            } else if let limit = event.limit {
                if lessOrEqual(limit, version) { affected = false }
            }
        }
        return (affected, affected ? fixed : nil)
    }

    /// The findings for `dependencies`, sorted by dependency then advisory id.
    public func scan(_ dependencies: [Dependency]) -> [Finding] {
        var findings: [Finding] = []
        for dependency in dependencies {
            for advisory in index[Self.key(dependency.ecosystem, dependency.name)] ?? [] {
                for affected in advisory.affected ?? [] where Self.key(affected.package.ecosystem, affected.package.name) == Self.key(dependency.ecosystem, dependency.name) {
                    var hit = affected.versions?.contains(dependency.version) ?? false
                    var fixed: String?
                    for range in affected.ranges ?? [] where range.type != "GIT" {
                        let result = Self.inRange(dependency.version, range, ecosystem: dependency.ecosystem)
                        if result.affected { hit = true; fixed = fixed ?? result.fixed }
                    }
                    if hit {
                        findings.append(Finding(dependency: dependency, advisory: advisory.id, aliases: advisory.aliases ?? [], summary: advisory.summary ?? "",
                                                fixedIn: fixed, severity: advisory.severity?.first?.score))
                        break
                    }
                }
            }
        }
        return findings.sorted { ($0.dependency.name, $0.advisory) < ($1.dependency.name, $1.advisory) }
    }
}
