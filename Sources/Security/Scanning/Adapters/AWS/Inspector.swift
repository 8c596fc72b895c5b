import Foundation
import NimbusAWS
import NimbusCore
import NimbusScanning

/// Amazon Inspector (v2) management through the model-driven AWS core: which resource types are
/// scanned, suppression filters, and findings — package findings read as the same ``Finding``
/// the offline ``DependencyScanner`` gives, so one report can hold both.
///
/// ```swift
/// let inspector = Inspector(aws: AWSClient())
/// try await inspector.enable([.ecr, .lambda])
/// let critical = try await inspector.findings(Inspector.Criteria(severities: [.critical], statuses: [.active]))
/// let report = critical.compactMap(\.dependencyFinding) + DependencyScanner(advisories: osv).scan(dependencies)
/// ```
public struct Inspector: Sendable {
    /// What Inspector scans.
    public enum ResourceType: String, Sendable, CaseIterable {
        case ec2 = "EC2", ecr = "ECR", lambda = "LAMBDA", lambdaCode = "LAMBDA_CODE", codeRepository = "CODE_REPOSITORY"
    }

    /// An account's or a scan type's state.
    public enum Status: String, Sendable {
        case enabling = "ENABLING", enabled = "ENABLED", disabling = "DISABLING", disabled = "DISABLED", suspending = "SUSPENDING", suspended = "SUSPENDED"
    }

    /// Which scans run for one account.
    public struct AccountStatus: Sendable, Hashable {
        public var accountID: String
        public var status: Status
        /// Per resource type (types the service does not report are absent).
        public var resources: [ResourceType: Status]
    }

    /// Severity, as Inspector rates a finding.
    public enum Severity: String, Sendable { case informational = "INFORMATIONAL", low = "LOW", medium = "MEDIUM", high = "HIGH", critical = "CRITICAL", untriaged = "UNTRIAGED" }
    /// Whether a finding is open.
    public enum FindingStatus: String, Sendable { case active = "ACTIVE", suppressed = "SUPPRESSED", closed = "CLOSED" }

    /// Finding criteria: every non-empty list must match (values within one list: any).
    public struct Criteria: Sendable, Hashable {
        public var severities: [Severity]
        public var statuses: [FindingStatus]
        public var vulnerabilityIDs: [String]
        public var resourceTypes: [String]
        /// `AWS_ECR_CONTAINER_IMAGE`-style resource ids, or a prefix with `*` at the end.
        public var resourceIDs: [String]

        public init(severities: [Severity] = [], statuses: [FindingStatus] = [], vulnerabilityIDs: [String] = [], resourceTypes: [String] = [], resourceIDs: [String] = []) {
            self.severities = severities
            self.statuses = statuses
            self.vulnerabilityIDs = vulnerabilityIDs
            self.resourceTypes = resourceTypes
            self.resourceIDs = resourceIDs
        }

        var json: JSONValue {
            func list(_ values: [String]) -> JSONValue {
                .array(values.map { value in
                    value.hasSuffix("*") ? ["comparison": "PREFIX", "value": .string(String(value.dropLast()))] : ["comparison": "EQUALS", "value": .string(value)]
                })
            }
            var criteria: [String: JSONValue] = [:]
            if !severities.isEmpty { criteria["severity"] = list(severities.map(\.rawValue)) }
            if !statuses.isEmpty { criteria["findingStatus"] = list(statuses.map(\.rawValue)) }
            if !vulnerabilityIDs.isEmpty { criteria["vulnerabilityId"] = list(vulnerabilityIDs) }
            if !resourceTypes.isEmpty { criteria["resourceType"] = list(resourceTypes) }
            if !resourceIDs.isEmpty { criteria["resourceId"] = list(resourceIDs) }
            return .object(criteria)
        }
    }

    /// A suppression (or plain) filter.
    public struct Filter: Sendable, Hashable {
        public enum Action: String, Sendable { case none = "NONE", suppress = "SUPPRESS" }
        public var arn: String
        public var name: String
        public var action: Action
        public var description: String?
    }

    /// A package a finding names.
    public struct VulnerablePackage: Sendable, Hashable {
        /// `PIP`, `NPM`, `OS`, … as Inspector names it.
        public var manager: String?
        public var name: String
        public var version: String
        /// The first fixed version, when one exists.
        public var fixedIn: String?
    }

    /// One finding.
    public struct InspectorFinding: Sendable, Hashable {
        public var arn: String
        public var type: String
        public var title: String?
        public var severity: Severity
        public var status: FindingStatus
        public var resourceIDs: [String]
        /// For package findings: the vulnerability and each vulnerable package.
        public var vulnerabilityID: String?
        public var packages: [VulnerablePackage]

        /// The package findings as the offline scanner's ``Finding`` (ecosystem from the package
        /// manager: `PIP` → `PyPI`, `NPM` → `npm`, `OS` → `Debian`…).
        public var dependencyFindings: [Finding] {
            guard let vulnerabilityID else { return [] }
            return packages.map { package in
                Finding(dependency: Dependency(ecosystem: Inspector.ecosystem(package.manager), name: package.name, version: package.version),
                        advisory: vulnerabilityID, aliases: [], summary: title ?? vulnerabilityID, fixedIn: package.fixedIn, severity: severity.rawValue)
            }
        }
    }

    static func ecosystem(_ manager: String?) -> String {
        switch manager {
        case "PIP", "PIPENV", "POETRY": "PyPI"
        case "NPM", "YARN", "PNPM", "NODEPKG": "npm"
        case "GOBINARY", "GOMOD": "Go"
        case "JAR", "GRADLE", "POM": "Maven"
        case "GEMSPEC", "BUNDLER": "RubyGems"
        case "CARGO": "crates.io"
        case "NUGET", "DOTNET_CORE": "NuGet"
        case "COMPOSER": "Packagist"
        case "OS", "DPKG": "Debian"
        default: manager ?? "unknown"
        }
    }

    /// The AWS client.
    public let aws: AWSClient

    /// Inspector through `aws`.
    public init(aws: AWSClient) { self.aws = aws }

    @discardableResult
    func call(_ operation: String, _ input: [String: JSONValue]) async throws -> JSONValue {
        try await aws.call("inspector2", operation, input: .object(input)).output
    }


    /// `accounts`, or the caller's own account (from STS) when empty: the API's default, made
    /// explicit so that every endpoint (moto included) reads the same request.
    func accountIDs(_ accounts: [String]) async throws -> JSONValue {
        if !accounts.isEmpty { return .array(accounts.map(JSONValue.string)) }
        guard let own = try await AWS.STS(client: aws).getCallerIdentity().account else {
            throw NimbusError(.internal, "STS GetCallerIdentity answered without an Account")
        }
        return [.string(own)]
    }

    static func failures(_ output: JSONValue) throws {
        let failed = output["failedAccounts"]?.arrayValue ?? []
        guard failed.isEmpty else {
            let text = failed.map { "\($0["accountId"]?.stringValue ?? "?"): \($0["errorCode"]?.stringValue ?? "?") \($0["errorMessage"]?.stringValue ?? "")" }
            throw NimbusError(.failedPrecondition, "Inspector could not change \(failed.count) account\(failed.count == 1 ? "" : "s"): \(text.joined(separator: "; "))")
        }
    }

    // MARK: - Scanning

    /// Starts scanning `types` in `accounts` (the caller's account when empty).
    /// - Throws: `failedPrecondition` naming every account Inspector could not change.
    public func enable(_ types: Set<ResourceType>, accounts: [String] = []) async throws {
        guard !types.isEmpty else { throw NimbusError(.invalidArgument, "name at least one resource type to enable") }
        let input: [String: JSONValue] = ["resourceTypes": .array(types.map(\.rawValue).sorted().map(JSONValue.string)), "clientToken": .string(UUID().uuidString),
                                          "accountIds": try await accountIDs(accounts)]
        try Self.failures(try await call("Enable", input))
    }

    /// Stops scanning `types` (all when empty) in `accounts`.
    public func disable(_ types: Set<ResourceType> = [], accounts: [String] = []) async throws {
        var input: [String: JSONValue] = ["accountIds": try await accountIDs(accounts)]
        if !types.isEmpty { input["resourceTypes"] = .array(types.map(\.rawValue).sorted().map(JSONValue.string)) }
        try Self.failures(try await call("Disable", input))
    }

    /// What is scanned in `accounts` (the caller's when empty).
    public func status(accounts: [String] = []) async throws -> [AccountStatus] {
        let output = try await call("BatchGetAccountStatus", ["accountIds": try await accountIDs(accounts)])
        try Self.failures(output)
        return try (output["accounts"]?.arrayValue ?? []).map { account in
            var resources: [ResourceType: Status] = [:]
            let keys: [(String, ResourceType)] = [("ec2", .ec2), ("ecr", .ecr), ("lambda", .lambda), ("lambdaCode", .lambdaCode), ("codeRepository", .codeRepository)]
            for (key, type) in keys {
                if let state = account["resourceState"]?[key] { resources[type] = try state["status"].awsEnum(Status.self, "\(key) status", service: "Inspector") }
            }
            return AccountStatus(accountID: account["accountId"]?.stringValue ?? "", status: try (account["state"]?["status"]).awsEnum(Status.self, "account status", service: "Inspector"),
                                 resources: resources)
        }
    }

    // MARK: - Filters

    /// Creates a filter; `suppress` hides matching findings from the default views.
    @discardableResult
    public func createFilter(name: String, action: Filter.Action, criteria: Criteria, description: String? = nil, reason: String? = nil) async throws -> String {
        guard (1...128).contains(name.count) else { throw NimbusError(.invalidArgument, "an Inspector filter name has 1–128 characters") }
        guard criteria.json != [:] else { throw NimbusError(.invalidArgument, "an Inspector filter needs at least one criterion") }
        var input: [String: JSONValue] = ["name": .string(name), "action": .string(action.rawValue), "filterCriteria": criteria.json]
        if let description { input["description"] = .string(description) }
        if let reason { input["reason"] = .string(reason) }
        let output = try await call("CreateFilter", input)
        guard let arn = output["arn"]?.stringValue else { throw NimbusError(.internal, "Inspector CreateFilter answered without an arn") }
        return arn
    }

    /// The filters, optionally only those with `action`.
    public func filters(action: Filter.Action? = nil) async throws -> [Filter] {
        var filters: [Filter] = []
        let input: JSONValue = action.map { ["action": .string($0.rawValue)] } ?? [:]
        for try await page in aws.pages("inspector2", "ListFilters", input: input) {
            for item in page["filters"]?.arrayValue ?? [] {
                filters.append(Filter(arn: item["arn"]?.stringValue ?? "", name: item["name"]?.stringValue ?? "",
                                      action: try item["action"].awsEnum(Filter.Action.self, "filter action", service: "Inspector"), description: item["description"]?.stringValue))
            }
        }
        return filters
    }

    /// Deletes a filter.
    public func deleteFilter(arn: String) async throws { try await call("DeleteFilter", ["arn": .string(arn)]) }

    // MARK: - Findings

    /// The findings matching `criteria`, every page.
    public func findings(_ criteria: Criteria = .init()) async throws -> [InspectorFinding] {
        var findings: [InspectorFinding] = []
        let input: JSONValue = criteria.json == [:] ? [:] : ["filterCriteria": criteria.json]
        for try await page in aws.pages("inspector2", "ListFindings", input: input) {
            findings += try (page["findings"]?.arrayValue ?? []).map(Self.finding)
        }
        return findings
    }

    static func finding(_ item: JSONValue) throws -> InspectorFinding {
        guard let arn = item["findingArn"]?.stringValue else { throw NimbusError(.internal, "Inspector answered a finding without findingArn") }
        let details = item["packageVulnerabilityDetails"]
        let packages = (details?["vulnerablePackages"]?.arrayValue ?? []).compactMap { package -> VulnerablePackage? in
            guard let name = package["name"]?.stringValue, let version = package["version"]?.stringValue else { return nil }
            return VulnerablePackage(manager: package["packageManager"]?.stringValue, name: name, version: version,
                                     fixedIn: package["fixedInVersion"]?.stringValue.flatMap { $0 == "NotAvailable" ? nil : $0 })
        }
        return InspectorFinding(arn: arn, type: item["type"]?.stringValue ?? "", title: item["title"]?.stringValue,
                                severity: try item["severity"].awsEnum(Severity.self, "severity", service: "Inspector"), status: try item["status"].awsEnum(FindingStatus.self, "finding status", service: "Inspector"),
                                resourceIDs: (item["resources"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue },
                                vulnerabilityID: details?["vulnerabilityId"]?.stringValue, packages: packages)
    }
}
