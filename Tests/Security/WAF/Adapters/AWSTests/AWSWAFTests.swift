import Foundation
import NimbusAWS
import NimbusCore
import NimbusTesting
@testable import NimbusWAFAWS
import Testing

@Suite("AWS WAF (v2) management (moto, signatures checked)", .requires(.moto), .timeLimit(.minutes(2)))
struct AWSWAFTests {
    static func waf(_ region: String = "eu-central-1", lockRetries: Int = 5) throws -> AWSWAF {
        let (id, secret) = try Peer.motoKeys()
        let aws = AWSClient(configuration: .init(region: region, credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret),
                                                 endpointURL: try Peer.moto.url(), maxAttempts: 1, environment: [:]))
        return AWSWAF(aws: aws, scope: .regional, lockRetries: lockRetries)
    }

    static func unique(_ base: String) -> String { "\(base)-\(UUID().uuidString.prefix(8))" }

    @Test("CIDR blocks: family, prefix range and host bits are checked, naming the network")
    func cidrs() throws {
        #expect(try AWSWAF.validate(cidr: "203.0.113.0/24", version: .ipv4) == "203.0.113.0/24")
        #expect(try AWSWAF.validate(cidr: "2001:db8::/32", version: .ipv6) == "2001:db8::/32")
        let hostBits = #expect(throws: NimbusError.self) { try AWSWAF.validate(cidr: "10.0.0.1/24", version: .ipv4) }
        #expect(hostBits?.message.contains("10.0.0.0/24") == true)
        let v6HostBits = #expect(throws: NimbusError.self) { try AWSWAF.validate(cidr: "2001:db8::1/64", version: .ipv6) }
        #expect(v6HostBits?.message.contains("2001:db8::/64") == true)
        for bad in [("10.0.0.0/33", AWSWAF.AddressVersion.ipv4), ("10.0.0.0", .ipv4), ("2001:db8::/32", .ipv4), ("10.0.0.0/8", .ipv6), ("10.0.0.0/0", .ipv4), ("x/8", .ipv4)] {
            #expect(throws: NimbusError.self, "\(bad.0)") { try AWSWAF.validate(cidr: bad.0, version: bad.1) }
        }
    }

    @Test("an IP set is created, read, changed under its lock token, listed and deleted")
    func ipSets() async throws {
        let waf = try Self.waf()
        let set = try await waf.createIPSet(name: Self.unique("blocked"), version: .ipv4, addresses: ["203.0.113.0/24"])
        #expect(set.arn.hasPrefix("arn:aws:wafv2:eu-central-1:") && set.arn.contains("/ipset/"))
        let read = try await waf.ipSet(set)
        #expect(read.addresses == ["203.0.113.0/24"] && read.version == .ipv4 && !read.lockToken.isEmpty)
        let after = try await waf.modifyIPSet(set) { $0.append("198.51.100.7/32") }
        #expect(after == ["198.51.100.7/32", "203.0.113.0/24"])
        #expect(try await waf.ipSet(set).addresses.sorted() == after)
        #expect(try await waf.ipSets().contains(set))
        let bad = await #expect(throws: NimbusError.self) { try await waf.modifyIPSet(set) { $0.append("198.51.100.7/16") } }
        #expect(bad?.code == .invalidArgument)
        try await waf.deleteIPSet(set)
        let gone = await #expect(throws: NimbusError.self) { _ = try await waf.ipSet(set) }
        #expect(gone?.code == .notFound)
    }

    @Test("a stale lock token is refused by WAF; concurrent modifies all land by re-reading")
    func optimisticLocking() async throws {
        let waf = try Self.waf(lockRetries: 20)
        let set = try await waf.createIPSet(name: Self.unique("race"), version: .ipv4, addresses: [])
        let stale = try await waf.ipSet(set).lockToken
        try await waf.modifyIPSet(set) { $0.append("192.0.2.0/28") }
        let conflict = await #expect(throws: NimbusError.self) {
            try await waf.call("UpdateIPSet", ["Name": .string(set.name), "Id": .string(set.id), "Addresses": [], "LockToken": .string(stale)])
        }
        #expect(conflict?.code == .failedPrecondition && AWSWAF.isLockConflict(conflict!))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 1...5 {
                group.addTask { try await waf.modifyIPSet(set) { $0.append("198.51.100.\(index)/32") } }
            }
            try await group.waitForAll()
        }
        #expect(Set(try await waf.ipSet(set).addresses) == Set(["192.0.2.0/28"] + (1...5).map { "198.51.100.\($0)/32" }))
        try await waf.deleteIPSet(set)
    }

    @Test("a web ACL with typed statements and a rule group round-trips, changes under its lock, and protects a resource")
    func webACLs() async throws {
        let waf = try Self.waf("eu-west-2")
        let blocked = try await waf.createIPSet(name: Self.unique("deny"), version: .ipv4, addresses: ["203.0.113.0/24"])
        let patterns = try await waf.createRegexPatternSet(name: Self.unique("bots"), patterns: ["(?i)sqlmap", "(?i)nikto"])
        let group = try await waf.createRuleGroup(name: Self.unique("app"), capacity: 100, rules: [
            .init(name: "admin-path", priority: 0, action: .block, statement: .byteMatch(field: .uriPath, value: "/admin", position: .startsWith, transformations: ["LOWERCASE"])),
            .init(name: "bad-agents", priority: 1, action: .block, statement: .regexSet(arn: patterns.arn, field: .header("User-Agent"))),
        ])
        let rules: [AWSWAF.Rule] = [
            .init(name: "deny-list", priority: 0, action: .block, statement: .ipSet(blocked.arn)),
            .init(name: "rate", priority: 1, action: .block, statement: .rateBased(limit: 2000, window: 300, scopeDown: .geo(["US", "CA"]))),
            .init(name: "sqli-or-xss", priority: 2, action: .block, statement: .or([.sqlInjection(field: .queryString), .crossSiteScripting(field: .body)])),
            .init(name: "not-get", priority: 3, action: .count, statement: .not(.byteMatch(field: .method, value: "GET", position: .exactly))),
            .init(name: "common", priority: 4, action: .allow, statement: .managed(vendor: "AWS", name: "AWSManagedRulesCommonRuleSet", excluding: ["SizeRestrictions_BODY"])),
            .init(name: "app-rules", priority: 5, action: .count, statement: .ruleGroup(group.arn)),
        ]
        let acl = try await waf.createWebACL(name: Self.unique("api"), defaultAction: .allow, rules: rules)
        var (read, _) = try await waf.webACL(acl)
        #expect(read.defaultAction == .allow && read.rules.count == 6)
        #expect(read.rules.compactMap { $0["Name"]?.stringValue } == rules.map(\.name))
        #expect(read.rules[4]["OverrideAction"]?["None"] != nil && read.rules[5]["OverrideAction"]?["Count"] != nil && read.rules[0]["Action"]?["Block"] != nil)
        #expect(read.rules[1]["Statement"]?["RateBasedStatement"]?["Limit"]?.numberValue == 2000)

        try await waf.modifyWebACL(acl) { current in (.block, Array(rules.prefix(2))) }
        (read, _) = try await waf.webACL(acl)
        #expect(read.defaultAction == .block && read.rules.count == 2)

        let resource = "arn:aws:elasticloadbalancing:eu-west-2:123456789012:loadbalancer/app/api/50dc6c495c0c9188"
        try await waf.associate(acl.arn, with: resource)
        #expect(try await waf.webACL(protecting: resource) == acl)
        try await waf.disassociate(resource)
        #expect(try await waf.webACL(protecting: resource) == nil)
        #expect(try await waf.webACLs().contains(acl))
        try await waf.deleteWebACL(acl)
        try await waf.deleteRuleGroup(group)
        try await waf.deleteRegexPatternSet(patterns)
        try await waf.deleteIPSet(blocked)
    }

    @Test("rules that WAF would refuse are refused before any call: duplicate names or priorities, bad limits, windows, countries, nesting")
    func refusals() async throws {
        let waf = AWSWAF(aws: AWSClient(configuration: .init(region: "eu-west-1", credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s"),
                                                            endpointURL: "http://127.0.0.1:9", maxAttempts: 1, environment: [:])))
        let cases: [[AWSWAF.Rule]] = [
            [.init(name: "a", priority: 0, action: .block, statement: .geo(["US"])), .init(name: "a", priority: 1, action: .block, statement: .geo(["CA"]))],
            [.init(name: "a", priority: 0, action: .block, statement: .geo(["US"])), .init(name: "b", priority: 0, action: .block, statement: .geo(["CA"]))],
            [.init(name: "a", priority: 0, action: .block, statement: .rateBased(limit: 5))],
            [.init(name: "a", priority: 0, action: .block, statement: .rateBased(limit: 100, window: 90))],
            [.init(name: "a", priority: 0, action: .block, statement: .geo(["us"]))],
            [.init(name: "a", priority: 0, action: .block, statement: .and([.geo(["US"])]))],
            [.init(name: "has space", priority: 0, action: .block, statement: .geo(["US"]))],
            [.init(name: "a", priority: 0, action: .block, statement: .byteMatch(field: .uriPath, value: "", position: .contains))],
        ]
        for rules in cases {
            let error = await #expect(throws: NimbusError.self) { _ = try await waf.createWebACL(name: "acl", defaultAction: .allow, rules: rules) }
            #expect(error?.code == .invalidArgument, "\(rules.map(\.name))")
        }
        await #expect(throws: NimbusError.self) { _ = try await waf.createWebACL(name: "acl", defaultAction: .count, rules: []) }
        await #expect(throws: NimbusError.self) {
            _ = try await waf.createRuleGroup(name: "g", capacity: 10, rules: [.init(name: "r", priority: 0, action: .count, statement: .ruleGroup("arn:x"))])
        }
    }

    @Test("a byte match's search string is sent base64-encoded and headers by lower-case name, as WAF's JSON protocol wants")
    func statementJSON() {
        let json = AWSWAF.Statement.byteMatch(field: .header("User-Agent"), value: "curl/", position: .startsWith).json
        #expect(json["ByteMatchStatement"]?["SearchString"] == "Y3VybC8=")
        #expect(json["ByteMatchStatement"]?["FieldToMatch"]?["SingleHeader"]?["Name"] == "user-agent")
        #expect(json["ByteMatchStatement"]?["TextTransformations"] == [["Priority": 0, "Type": "NONE"]])
    }
}
