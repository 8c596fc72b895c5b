import Foundation
import NimbusAWS
import NimbusCore

/// AWS WAF (v2) management through the model-driven AWS core: IP sets, regex pattern sets, rule
/// groups and web ACLs, with typed rule statements, CIDR checks before any call, and WAF's
/// optimistic locking handled for you: ``modifyIPSet(_:)`` and ``modifyWebACL(_:_:)`` read the
/// current version with its lock token, apply your change, and retry from a fresh read when
/// another writer got there first (`WAFOptimisticLockException`).
///
/// ```swift
/// let waf = AWSWAF(aws: AWSClient(), scope: .regional)
/// let blocked = try await waf.createIPSet(name: "blocked", version: .ipv4, addresses: ["203.0.113.0/24"])
/// let acl = try await waf.createWebACL(name: "api", defaultAction: .allow, rules: [
///     .init(name: "blocked-ips", priority: 0, action: .block, statement: .ipSet(blocked.arn)),
///     .init(name: "rate", priority: 1, action: .block, statement: .rateBased(limit: 2000)),
/// ])
/// try await waf.modifyIPSet(blocked) { $0.append("198.51.100.7/32") }
/// try await waf.associate(acl.arn, with: loadBalancerARN)
/// ```
public struct AWSWAF: Sendable {
    /// Where the resources live: a region's (ALB, API Gateway, AppSync, Cognito) or CloudFront's (us-east-1 only).
    public enum Scope: String, Sendable { case regional = "REGIONAL", cloudFront = "CLOUDFRONT" }

    /// An IP address family.
    public enum AddressVersion: String, Sendable { case ipv4 = "IPV4", ipv6 = "IPV6" }

    /// What identifies a resource in later calls.
    public struct Reference: Sendable, Hashable {
        public var name: String
        public var id: String
        public var arn: String
    }

    /// What a matching rule does.
    public enum Action: String, Sendable { case allow = "Allow", block = "Block", count = "Count", captcha = "Captcha", challenge = "Challenge" }

    /// Part of a request a match statement reads.
    public enum Field: Sendable, Hashable {
        case uriPath, queryString, method, body, header(String), queryArgument(String)

        var json: JSONValue {
            switch self {
            case .uriPath: ["UriPath": [:]]
            case .queryString: ["QueryString": [:]]
            case .method: ["Method": [:]]
            case .body: ["Body": ["OversizeHandling": "MATCH"]]
            case .header(let name): ["SingleHeader": ["Name": .string(name.lowercased())]]
            case .queryArgument(let name): ["SingleQueryArgument": ["Name": .string(name.lowercased())]]
            }
        }
    }

    /// Where a byte match must occur.
    public enum Position: String, Sendable { case exactly = "EXACTLY", startsWith = "STARTS_WITH", endsWith = "ENDS_WITH", contains = "CONTAINS", containsWord = "CONTAINS_WORD" }

    /// A rule's condition.
    public indirect enum Statement: Sendable, Hashable {
        /// The client address is in an IP set.
        case ipSet(String)
        /// More than `limit` requests from one address in `window` seconds (60, 120, 300 or 600).
        case rateBased(limit: Int, window: Int = 300, scopeDown: Statement? = nil)
        /// `field` (after `transformations`) contains `value` at `position`.
        case byteMatch(field: Field, value: String, position: Position, transformations: [String] = ["NONE"])
        /// `field` matches a pattern of a regex pattern set.
        case regexSet(arn: String, field: Field, transformations: [String] = ["NONE"])
        /// The client address is in one of these ISO 3166 countries.
        case geo([String])
        /// SQL injection in `field`.
        case sqlInjection(field: Field, transformations: [String] = ["URL_DECODE", "HTML_ENTITY_DECODE"])
        /// Cross-site scripting in `field`.
        case crossSiteScripting(field: Field, transformations: [String] = ["URL_DECODE", "HTML_ENTITY_DECODE"])
        /// A managed rule group (`AWS`, `AWSManagedRulesCommonRuleSet`).
        case managed(vendor: String, name: String, excluding: [String] = [])
        /// One of your rule groups.
        case ruleGroup(String)
        /// All of these.
        case and([Statement])
        /// Any of these.
        case or([Statement])
        /// Not this.
        case not(Statement)

        /// Whether the rule must use an override action (rule groups) rather than an action.
        var isGroup: Bool {
            switch self {
            case .managed, .ruleGroup: true
            default: false
            }
        }

        static func transformations(_ names: [String]) -> JSONValue {
            .array(names.enumerated().map { ["Priority": .number(Double($0.offset)), "Type": .string($0.element)] })
        }

        func validate() throws {
            switch self {
            case .rateBased(let limit, let window, let scope):
                guard (10...2_000_000_000).contains(limit) else { throw NimbusError(.invalidArgument, "a rate limit is 10–2,000,000,000 requests (got \(limit))") }
                guard [60, 120, 300, 600].contains(window) else { throw NimbusError(.invalidArgument, "a rate window is 60, 120, 300 or 600 s (got \(window))") }
                try scope?.validate()
            case .geo(let countries):
                guard !countries.isEmpty, countries.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isUppercase) }) else {
                    throw NimbusError(.invalidArgument, "a geo match needs ISO 3166-1 alpha-2 codes in capitals (got \(countries.prefix(5)))")
                }
            case .byteMatch(_, let value, _, _):
                guard (1...200).contains(value.utf8.count) else { throw NimbusError(.invalidArgument, "a byte match string has 1–200 bytes") }
            case .and(let statements), .or(let statements):
                guard statements.count >= 2 else { throw NimbusError(.invalidArgument, "and/or statements combine at least two statements") }
                for statement in statements { try statement.validate() }
            case .not(let statement): try statement.validate()
            default: break
            }
        }

        var json: JSONValue {
            switch self {
            case .ipSet(let arn): return ["IPSetReferenceStatement": ["ARN": .string(arn)]]
            case .rateBased(let limit, let window, let scope):
                var body: [String: JSONValue] = ["Limit": .number(Double(limit)), "EvaluationWindowSec": .number(Double(window)), "AggregateKeyType": "IP"]
                if let scope { body["ScopeDownStatement"] = scope.json }
                return ["RateBasedStatement": .object(body)]
            case .byteMatch(let field, let value, let position, let transformations):
                return ["ByteMatchStatement": ["SearchString": .string(Data(value.utf8).base64EncodedString()), "FieldToMatch": field.json,
                                               "TextTransformations": Self.transformations(transformations), "PositionalConstraint": .string(position.rawValue)]]
            case .regexSet(let arn, let field, let transformations):
                return ["RegexPatternSetReferenceStatement": ["ARN": .string(arn), "FieldToMatch": field.json, "TextTransformations": Self.transformations(transformations)]]
            case .geo(let countries): return ["GeoMatchStatement": ["CountryCodes": .array(countries.map(JSONValue.string))]]
            case .sqlInjection(let field, let transformations):
                return ["SqliMatchStatement": ["FieldToMatch": field.json, "TextTransformations": Self.transformations(transformations)]]
            case .crossSiteScripting(let field, let transformations):
                return ["XssMatchStatement": ["FieldToMatch": field.json, "TextTransformations": Self.transformations(transformations)]]
            case .managed(let vendor, let name, let excluding):
                var body: [String: JSONValue] = ["VendorName": .string(vendor), "Name": .string(name)]
                if !excluding.isEmpty { body["ExcludedRules"] = .array(excluding.map { ["Name": .string($0)] }) }
                return ["ManagedRuleGroupStatement": .object(body)]
            case .ruleGroup(let arn): return ["RuleGroupReferenceStatement": ["ARN": .string(arn)]]
            case .and(let statements): return ["AndStatement": ["Statements": .array(statements.map(\.json))]]
            case .or(let statements): return ["OrStatement": ["Statements": .array(statements.map(\.json))]]
            case .not(let statement): return ["NotStatement": ["Statement": statement.json]]
            }
        }
    }

    /// One rule of a web ACL or rule group. A rule over a rule group has no action: it counts
    /// (`action: .count`, WAF's `OverrideAction.Count`) or lets the group's own actions apply (any other).
    public struct Rule: Sendable, Hashable {
        public var name: String
        public var priority: Int
        public var action: Action
        public var statement: Statement
        /// The CloudWatch metric name (default: the rule's name).
        public var metricName: String?

        public init(name: String, priority: Int, action: Action, statement: Statement, metricName: String? = nil) {
            self.name = name
            self.priority = priority
            self.action = action
            self.statement = statement
            self.metricName = metricName
        }

        var json: JSONValue {
            var body: [String: JSONValue] = ["Name": .string(name), "Priority": .number(Double(priority)), "Statement": statement.json,
                                             "VisibilityConfig": AWSWAF.visibility(metricName ?? name)]
            if statement.isGroup {
                body["OverrideAction"] = action == .count ? ["Count": [:]] : ["None": [:]]
            } else {
                body["Action"] = .object([action.rawValue: [:]])
            }
            return .object(body)
        }
    }

    /// A web ACL as read back.
    public struct WebACL: Sendable {
        public var reference: Reference
        public var defaultAction: Action
        /// The rules, as WAF stores them (JSON in the API's shape).
        public var rules: [JSONValue]
        /// WAF capacity units the rules use.
        public var capacity: Int?
    }

    /// The AWS client.
    public let aws: AWSClient
    /// The scope every call uses.
    public let scope: Scope
    /// Attempts of a modify when other writers keep winning the lock.
    public let lockRetries: Int

    /// WAF through `aws`, in `scope`.
    public init(aws: AWSClient, scope: Scope = .regional, lockRetries: Int = 5) {
        self.aws = aws
        self.scope = scope
        self.lockRetries = lockRetries
    }

    static func visibility(_ metric: String) -> JSONValue {
        ["SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": .string(String(metric.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }.prefix(128)))]
    }

    static func isLockConflict(_ error: NimbusError) -> Bool { (error.underlying as? AWSServiceError)?.code == "WAFOptimisticLockException" }

    @discardableResult
    func call(_ operation: String, _ input: [String: JSONValue]) async throws -> JSONValue {
        var input = input
        input["Scope"] = .string(scope.rawValue)
        return try await aws.call("wafv2", operation, input: .object(input)).output   // WAF's exception names are in the AWS core's table
    }

    static func reference(_ summary: JSONValue?, _ operation: String) throws -> Reference {
        guard let name = summary?["Name"]?.stringValue, let id = summary?["Id"]?.stringValue, let arn = summary?["ARN"]?.stringValue else {
            throw NimbusError(.internal, "WAF \(operation) answered without Name, Id and ARN")
        }
        return Reference(name: name, id: id, arn: arn)
    }

    static func validate(name: String) throws {
        guard (1...128).contains(name.count), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw NimbusError(.invalidArgument, "a WAF name has 1–128 characters from A–Z a–z 0–9 - _ (got \"\(name.prefix(40))\")")
        }
    }

    /// Checks and normalises a CIDR block: the family must match, the prefix be in range, and no
    /// host bit be set (`10.0.0.1/24` is refused, naming `10.0.0.0/24`).
    public static func validate(cidr: String, version: AddressVersion) throws -> String {
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]) else { throw NimbusError(.invalidArgument, "\"\(cidr.prefix(60))\" is not a CIDR block (address/prefix)") }
        let family = version == .ipv4 ? (count: 4, bits: 32, name: "IPv4") : (count: 16, bits: 128, name: "IPv6")
        guard let bytes = IPAddress.bytes(String(parts[0])), bytes.count == family.count, (1...family.bits).contains(prefix) else {
            throw NimbusError(.invalidArgument, "\"\(cidr.prefix(60))\" is not an \(family.name) CIDR block with a /1–/\(family.bits) prefix")
        }
        let network = IPAddress.network(bytes, prefix: prefix)
        guard network == bytes else {
            throw NimbusError(.invalidArgument, "\(cidr) has host bits set; the block is \(IPAddress.text(network) ?? "?")/\(prefix)")
        }
        return cidr
    }

    // MARK: - IP sets

    /// Creates an IP set.
    public func createIPSet(name: String, version: AddressVersion, addresses: [String], description: String? = nil) async throws -> Reference {
        try Self.validate(name: name)
        let checked = try addresses.map { try Self.validate(cidr: $0, version: version) }
        var input: [String: JSONValue] = ["Name": .string(name), "IPAddressVersion": .string(version.rawValue), "Addresses": .array(checked.map(JSONValue.string))]
        if let description { input["Description"] = .string(description) }
        return try Self.reference(try await call("CreateIPSet", input)["Summary"], "CreateIPSet")
    }

    /// An IP set's addresses and family, with the lock token of this version.
    public func ipSet(_ set: Reference) async throws -> (addresses: [String], version: AddressVersion, lockToken: String) {
        let output = try await call("GetIPSet", ["Name": .string(set.name), "Id": .string(set.id)])
        guard let token = output["LockToken"]?.stringValue else { throw NimbusError(.internal, "WAF GetIPSet answered without a LockToken") }
        let version = try (output["IPSet"]?["IPAddressVersion"]).awsEnum(AddressVersion.self, "IP address version", service: "WAF")
        return ((output["IPSet"]?["Addresses"]?.arrayValue ?? []).compactMap(\.stringValue), version, token)
    }

    /// Changes an IP set's addresses: reads them, lets `change` edit them, writes them back with the
    /// lock token read, and starts over when another writer changed the set in between.
    /// - Throws: `failedPrecondition` after ``lockRetries`` lost races; `invalidArgument` for a bad CIDR.
    @discardableResult
    public func modifyIPSet(_ set: Reference, _ change: @Sendable (inout [String]) throws -> Void) async throws -> [String] {
        for attempt in 1...max(1, lockRetries) {
            var (addresses, version, token) = try await ipSet(set)
            try change(&addresses)
            let checked = try Array(Set(addresses.map { try Self.validate(cidr: $0, version: version) })).sorted()
            do {
                try await call("UpdateIPSet", ["Name": .string(set.name), "Id": .string(set.id), "Addresses": .array(checked.map(JSONValue.string)), "LockToken": .string(token)])
                return checked
            } catch let error as NimbusError where Self.isLockConflict(error) && attempt < lockRetries {
                try await Task.sleep(for: .milliseconds(20 * attempt))
            }
        }
        throw NimbusError(.failedPrecondition, "IP set \(set.name) kept changing under us; gave up after \(lockRetries) attempts")
    }

    /// The IP sets of the scope.
    public func ipSets() async throws -> [Reference] {
        try await list("ListIPSets", key: "IPSets")
    }

    /// Deletes an IP set (it must not be referenced by a rule).
    public func deleteIPSet(_ set: Reference) async throws {
        let token = try await ipSet(set).lockToken
        try await call("DeleteIPSet", ["Name": .string(set.name), "Id": .string(set.id), "LockToken": .string(token)])
    }

    func list(_ operation: String, key: String) async throws -> [Reference] {
        var references: [Reference] = []
        var marker: String?
        repeat {
            var input: [String: JSONValue] = ["Limit": 100]
            if let marker { input["NextMarker"] = .string(marker) }
            let output = try await call(operation, input)
            references += try (output[key]?.arrayValue ?? []).map { try Self.reference($0, operation) }
            marker = output["NextMarker"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        } while marker != nil && references.count < 10_000
        return references
    }

    // MARK: - Regex pattern sets

    /// Creates a regex pattern set.
    public func createRegexPatternSet(name: String, patterns: [String], description: String? = nil) async throws -> Reference {
        try Self.validate(name: name)
        guard !patterns.isEmpty, patterns.allSatisfy({ (1...200).contains($0.utf8.count) }) else {
            throw NimbusError(.invalidArgument, "a regex pattern set needs patterns of 1–200 bytes each")
        }
        var input: [String: JSONValue] = ["Name": .string(name), "RegularExpressionList": .array(patterns.map { ["RegexString": .string($0)] })]
        if let description { input["Description"] = .string(description) }
        return try Self.reference(try await call("CreateRegexPatternSet", input)["Summary"], "CreateRegexPatternSet")
    }

    /// Deletes a regex pattern set.
    public func deleteRegexPatternSet(_ set: Reference) async throws {
        let output = try await call("GetRegexPatternSet", ["Name": .string(set.name), "Id": .string(set.id)])
        try await call("DeleteRegexPatternSet", ["Name": .string(set.name), "Id": .string(set.id), "LockToken": output["LockToken"] ?? ""])
    }

    // MARK: - Rule groups

    /// Creates a rule group of `capacity` WCUs.
    public func createRuleGroup(name: String, capacity: Int, rules: [Rule], description: String? = nil) async throws -> Reference {
        try Self.validate(name: name)
        try Self.validate(rules)
        guard rules.allSatisfy({ !$0.statement.isGroup }) else { throw NimbusError(.invalidArgument, "a rule group cannot reference other rule groups") }
        var input: [String: JSONValue] = ["Name": .string(name), "Capacity": .number(Double(capacity)), "Rules": .array(rules.map(\.json)),
                                          "VisibilityConfig": Self.visibility(name)]
        if let description { input["Description"] = .string(description) }
        return try Self.reference(try await call("CreateRuleGroup", input)["Summary"], "CreateRuleGroup")
    }

    /// Deletes a rule group.
    public func deleteRuleGroup(_ group: Reference) async throws {
        let output = try await call("GetRuleGroup", ["Name": .string(group.name), "Id": .string(group.id)])
        try await call("DeleteRuleGroup", ["Name": .string(group.name), "Id": .string(group.id), "LockToken": output["LockToken"] ?? ""])
    }

    static func validate(_ rules: [Rule]) throws {
        var names = Set<String>(), priorities = Set<Int>()
        for rule in rules {
            try validate(name: rule.name)
            guard names.insert(rule.name).inserted else { throw NimbusError(.invalidArgument, "two rules are named \(rule.name)") }
            guard rule.priority >= 0, priorities.insert(rule.priority).inserted else {
                throw NimbusError(.invalidArgument, "rule priorities are distinct and not negative (\(rule.name) has \(rule.priority))")
            }
            try rule.statement.validate()
        }
    }

    // MARK: - Web ACLs

    /// Creates a web ACL.
    public func createWebACL(name: String, defaultAction: Action, rules: [Rule], description: String? = nil) async throws -> Reference {
        try Self.validate(name: name)
        try Self.validate(rules)
        guard defaultAction == .allow || defaultAction == .block else { throw NimbusError(.invalidArgument, "a web ACL's default action is allow or block") }
        var input: [String: JSONValue] = ["Name": .string(name), "DefaultAction": .object([defaultAction.rawValue: [:]]), "Rules": .array(rules.map(\.json)),
                                          "VisibilityConfig": Self.visibility(name)]
        if let description { input["Description"] = .string(description) }
        return try Self.reference(try await call("CreateWebACL", input)["Summary"], "CreateWebACL")
    }

    /// A web ACL with its lock token.
    public func webACL(_ acl: Reference) async throws -> (acl: WebACL, lockToken: String) {
        let output = try await call("GetWebACL", ["Name": .string(acl.name), "Id": .string(acl.id)])
        guard let body = output["WebACL"], let token = output["LockToken"]?.stringValue else {
            throw NimbusError(.internal, "WAF GetWebACL answered without WebACL or LockToken")
        }
        let action: Action = body["DefaultAction"]?["Block"] != nil ? .block : .allow
        return (WebACL(reference: try Self.reference(body, "GetWebACL"), defaultAction: action, rules: body["Rules"]?.arrayValue ?? [],
                       capacity: body["Capacity"]?.numberValue.map { Int($0) }), token)
    }

    /// Replaces a web ACL's rules and default action from its current version, retrying on lock conflicts.
    /// `change` receives the current default action and rules (as stored) and returns the new ones.
    public func modifyWebACL(_ acl: Reference, _ change: @Sendable (_ current: WebACL) throws -> (defaultAction: Action, rules: [Rule])) async throws {
        for attempt in 1...max(1, lockRetries) {
            let (current, token) = try await webACL(acl)
            let wanted = try change(current)
            try Self.validate(wanted.rules)
            do {
                try await call("UpdateWebACL", ["Name": .string(acl.name), "Id": .string(acl.id), "DefaultAction": .object([wanted.defaultAction.rawValue: [:]]),
                                                "Rules": .array(wanted.rules.map(\.json)), "VisibilityConfig": Self.visibility(acl.name), "LockToken": .string(token)])
                return
            } catch let error as NimbusError where Self.isLockConflict(error) && attempt < lockRetries {
                try await Task.sleep(for: .milliseconds(20 * attempt))
            }
        }
        throw NimbusError(.failedPrecondition, "web ACL \(acl.name) kept changing under us; gave up after \(lockRetries) attempts")
    }

    /// The web ACLs of the scope.
    public func webACLs() async throws -> [Reference] { try await list("ListWebACLs", key: "WebACLs") }

    /// Deletes a web ACL (disassociate it first).
    public func deleteWebACL(_ acl: Reference) async throws {
        let token = try await webACL(acl).lockToken
        try await call("DeleteWebACL", ["Name": .string(acl.name), "Id": .string(acl.id), "LockToken": .string(token)])
    }

    /// Protects a resource (ALB, API Gateway stage, AppSync API, Cognito pool) with a web ACL.
    public func associate(_ aclARN: String, with resourceARN: String) async throws {
        try await aws.call("wafv2", "AssociateWebACL", input: ["WebACLArn": .string(aclARN), "ResourceArn": .string(resourceARN)])
    }

    /// Removes whatever web ACL protects a resource.
    public func disassociate(_ resourceARN: String) async throws {
        try await aws.call("wafv2", "DisassociateWebACL", input: ["ResourceArn": .string(resourceARN)])
    }

    /// The web ACL protecting a resource, if any.
    public func webACL(protecting resourceARN: String) async throws -> Reference? {
        let output = try await aws.call("wafv2", "GetWebACLForResource", input: ["ResourceArn": .string(resourceARN)]).output
        return output["WebACL"].flatMap { try? Self.reference($0, "GetWebACLForResource") }
    }
}
