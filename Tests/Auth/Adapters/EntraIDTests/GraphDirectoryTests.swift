import Foundation
import NimbusAzure
@testable import NimbusAuthEntraID
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

/// Records the scopes it was asked for.
final class RecordingToken: AzureTokenSource {
    let value: String
    let scopes = Mutex<[String]>([])
    init(_ value: String) { self.value = value }
    func fetchToken(scope: String) async throws -> AccessTokenCache.Token {
        scopes.withLock { $0.append(scope) }
        return .init(value: Secret(value), expiresIn: .seconds(3600))
    }
}

@Suite("Microsoft Graph users and groups (fake checked against msgraph-sdk's description of Graph v1.0)", .timeLimit(.minutes(2)))
struct GraphDirectoryTests {
    static func directory(_ fake: FakeGraph, token: String? = nil, pageSize: Int = 100, retry: RetryPolicy = .none) -> (GraphDirectory, RecordingToken) {
        let credential = RecordingToken(token ?? fake.token)
        let configuration = GraphDirectory.Configuration(endpoint: fake.server.baseURL, pageSize: pageSize, retry: retry, tokenScope: "https://graph.microsoft.com/.default")
        return (GraphDirectory(configuration: configuration, credential: credential), credential)
    }

    static let strongPassword = Secret("Pa55-word-Xq!")

    @Test("users: create, read by id and by userPrincipalName, update, reset a password, revoke sessions, delete")
    func users() async throws {
        let fake = try await FakeGraph.start()
        let (graph, credential) = Self.directory(fake)
        let ada = try await graph.createUser(NewGraphUser(displayName: "Ada Lovelace", mailNickname: "ada", userPrincipalName: "ada@contoso.com",
                                                          password: Self.strongPassword, givenName: "Ada", department: "Research"))
        #expect(ada.userPrincipalName == "ada@contoso.com" && ada.id.count == 36)
        let create = try #require(fake.server.requests.last).json()
        #expect(create["passwordProfile"] == ["password": "Pa55-word-Xq!", "forceChangePasswordNextSignIn": true])
        #expect(create["accountEnabled"] == true && create["department"] == "Research")
        #expect(credential.scopes.withLock { $0 } == ["https://graph.microsoft.com/.default"])

        let byName = try await graph.user("ADA@contoso.com")
        #expect(byName.id == ada.id && byName.accountEnabled == true && byName.department == "Research")
        let read = try #require(fake.server.requests.last)
        #expect(read.queryItem("$select") == GraphUser.selectedFields.joined(separator: ","), "accountEnabled is outside Graph's default set: it must be selected")
        #expect(read.header("client-request-id")?.count == 36)

        try await graph.updateUser(ada.id, GraphUserChanges(jobTitle: .set("Analyst"), department: .clear, accountEnabled: false,
                                                            password: (Secret("N3w-Passw0rd!"), forceChangeNextSignIn: false)))
        let patch = try #require(fake.server.requests.last)
        #expect(patch.method == "PATCH" && patch.path == "/v1.0/users/\(ada.id)")
        #expect(try patch.json() == ["jobTitle": "Analyst", "department": nil, "accountEnabled": false,
                                     "passwordProfile": ["password": "N3w-Passw0rd!", "forceChangePasswordNextSignIn": false]])
        let after = try await graph.user(ada.id, select: ["officeLocation"])
        #expect(after.jobTitle == "Analyst" && after.department == nil && after.accountEnabled == false)
        #expect(fake.server.requests.last?.queryItem("$select")?.hasSuffix(",officeLocation") == true)
        try await graph.updateUser(ada.id, GraphUserChanges())
        #expect(fake.server.requests.last?.method == "GET", "an empty change sends nothing")

        try await graph.revokeSignInSessions("ada@contoso.com")
        #expect(fake.server.requests.last?.path == "/v1.0/users/ada%40contoso.com/revokeSignInSessions")
        try await graph.deleteUser(ada.id)
        let gone = await #expect(throws: NimbusError.self) { _ = try await graph.user(ada.id) }
        #expect(gone?.code == .notFound && gone?.message.contains("Request_ResourceNotFound") == true && gone?.message.contains("request-id 8a6e1b2c") == true)
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("a taken userPrincipalName is alreadyExists; a weak password is invalidArgument and its text is not in the error")
    func createRefusals() async throws {
        let fake = try await FakeGraph.start()
        let (graph, _) = Self.directory(fake)
        fake.seedUser("grace@contoso.com", displayName: "Grace Hopper")
        let taken = await #expect(throws: NimbusError.self) {
            try await graph.createUser(NewGraphUser(displayName: "Grace", mailNickname: "grace", userPrincipalName: "grace@contoso.com", password: Self.strongPassword))
        }
        #expect(taken?.code == .alreadyExists)
        let weak = await #expect(throws: NimbusError.self) {
            try await graph.createUser(NewGraphUser(displayName: "Linus", mailNickname: "linus", userPrincipalName: "linus@contoso.com", password: Secret("hunter2hunter")))
        }
        #expect(weak?.code == .invalidArgument && weak?.message.contains("password complexity") == true)
        #expect(weak.map { "\($0)".contains("hunter2hunter") } == false)
        // Refused before any request: malformed names, an empty password.
        let sent = fake.server.requests.count
        for bad in [NewGraphUser(displayName: "x", mailNickname: "x y", userPrincipalName: "x@contoso.com", password: Self.strongPassword),
                    NewGraphUser(displayName: "x", mailNickname: "x", userPrincipalName: "x@", password: Self.strongPassword),
                    NewGraphUser(displayName: "x", mailNickname: "x", userPrincipalName: ".x@contoso.com", password: Self.strongPassword),
                    NewGraphUser(displayName: "x", mailNickname: "x", userPrincipalName: "x@contoso.com", password: Secret(""))] {
            let refused = await #expect(throws: NimbusError.self) { try await graph.createUser(bad) }
            #expect(refused?.code == .invalidArgument)
        }
        #expect(fake.server.requests.count == sent)
        await fake.server.shutdown()
    }

    @Test("lists read page by page through @odata.nextLink; advanced queries send ConsistencyLevel and $count and read the total")
    func paging() async throws {
        let fake = try await FakeGraph.start()
        let (graph, _) = Self.directory(fake, pageSize: 3)
        for index in 0..<8 { fake.seedUser("user\(index)@contoso.com", displayName: "User \(index)", department: index % 2 == 0 ? "Sales" : "Research") }
        let all = try await graph.users().collect()
        #expect(all.map(\.userPrincipalName) == (0..<8).map { "user\($0)@contoso.com" })
        let lists = fake.server.requests.filter { $0.path == "/v1.0/users" }
        #expect(lists.count == 3 && lists.allSatisfy { $0.queryItem("$top") == "3" })
        #expect(lists.dropFirst().allSatisfy { $0.queryItem("$skiptoken") != nil })
        #expect(lists.allSatisfy { $0.header("consistencylevel") == nil && $0.queryItem("$count") == nil })

        let page = try await graph.users(GraphQuery(advanced: true)).firstPage()
        #expect(page.count == 8 && page.items.count == 3 && page.nextLink != nil)
        let advanced = try #require(fake.server.requests.last)
        #expect(advanced.header("consistencylevel") == "eventual" && advanced.queryItem("$count") == "true")
        let second = try await graph.users(GraphQuery(advanced: true)).page(after: try #require(page.nextLink))
        #expect(second.items.map(\.userPrincipalName) == ["user3@contoso.com", "user4@contoso.com", "user5@contoso.com"])
        #expect(fake.server.requests.last?.header("consistencylevel") == "eventual", "the header goes with every page of an advanced query")

        let limited = await #expect(throws: NimbusError.self) { _ = try await graph.users().collect(upTo: 5) }
        #expect(limited?.code == .resourceExhausted)
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("filters are typed: a quote cannot end a literal, property paths are checked, advanced operators switch on advanced queries")
    func filters() async throws {
        let fake = try await FakeGraph.start()
        let (graph, _) = Self.directory(fake)
        fake.seedUser("o'brien@contoso.com", displayName: "Conan O'Brien", department: "Sales")
        fake.seedUser("ada@contoso.com", displayName: "Ada Lovelace", department: "Research")
        fake.seedUser("alan@fabrikam.com", displayName: "Alan Turing", department: "Research")

        let quoted = try await graph.users(GraphQuery(filter: .equals("userPrincipalName", "o'brien@contoso.com"))).collect()
        #expect(quoted.map(\.displayName) == ["Conan O'Brien"])
        #expect(fake.server.requests.last?.queryItem("$filter") == "userPrincipalName eq 'o''brien@contoso.com'")
        // The classic injection: with string concatenation this would match every user.
        let injected = try await graph.users(GraphQuery(filter: .equals("displayName", "x' or displayName ne 'y"))).collect()
        #expect(injected.isEmpty)

        let research = try await graph.users(GraphQuery(filter: .equals("department", "Research") && .startsWith("displayName", "A"), orderBy: ["displayName desc"])).collect()
        #expect(research.map(\.displayName) == ["Alan Turing", "Ada Lovelace"])
        #expect(fake.server.requests.last?.header("consistencylevel") == "eventual", "$filter with $orderby is an advanced query")

        let outside = try await graph.users(GraphQuery(filter: .endsWith("userPrincipalName", "@fabrikam.com"))).collect()
        #expect(outside.map(\.displayName) == ["Alan Turing"])
        let ins = try await graph.users(GraphQuery(filter: .isIn("userPrincipalName", ["ada@contoso.com", "alan@fabrikam.com"]) && .not(.equals("department", "Sales")))).collect()
        #expect(ins.count == 2)

        let searched = try await graph.users(GraphQuery(search: [.init("displayName", "turi")])).collect()
        #expect(searched.map(\.displayName) == ["Alan Turing"])
        #expect(fake.server.requests.last?.queryItem("$search") == "\"displayName:turi\"")

        let sent = fake.server.requests.count
        for bad in [GraphQuery(filter: .equals("mail eq 'x' or 1", "y")), GraphQuery(filter: .isIn("id", Array(repeating: "x", count: 16))),
                    GraphQuery(orderBy: ["displayName; drop"]), GraphQuery(select: ["id,passwordProfile"]), GraphQuery(pageSize: 1000)] {
            let refused = await #expect(throws: NimbusError.self) { _ = try await graph.users(bad).collect() }
            #expect(refused?.code == .invalidArgument)
        }
        #expect(fake.server.requests.count == sent, "refused before any request")
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("without ConsistencyLevel, Graph refuses advanced operators: the error says to run an advanced query")
    func advancedRefused() async throws {
        let fake = try await FakeGraph.start()
        let (graph, _) = Self.directory(fake)
        let refused = await #expect(throws: NimbusError.self) {
            try await graph.call(.GET, "/users", query: [("$filter", "endsWith(mail,'@contoso.com')")], operation: "list users")
        }
        #expect(refused?.code == .invalidArgument && refused?.message.contains("Request_UnsupportedQuery") == true && refused?.message.contains("advanced") == true)
        await fake.server.shutdown()
    }

    @Test("groups: security and Microsoft 365 groups, dynamic rules, members added and removed, nested groups in the transitive lists")
    func groups() async throws {
        let fake = try await FakeGraph.start()
        let (graph, _) = Self.directory(fake)
        let ada = fake.seedUser("ada@contoso.com", displayName: "Ada")
        let alan = fake.seedUser("alan@contoso.com", displayName: "Alan")
        let admins = try await graph.createGroup(NewGraphGroup(displayName: "Billing admins", mailNickname: "billing-admins", description: "Can refund"))
        #expect(admins.kind == .security && !admins.isDynamic)
        #expect(try fake.server.requests.last?.json() == ["displayName": "Billing admins", "mailNickname": "billing-admins", "mailEnabled": false, "securityEnabled": true,
                                                          "groupTypes": [], "description": "Can refund"])
        let team = try await graph.createGroup(NewGraphGroup(displayName: "Finance", mailNickname: "finance", kind: .microsoft365))
        #expect(team.kind == .microsoft365 && team.mail == "finance@contoso.onmicrosoft.com")
        let sales = try await graph.createGroup(NewGraphGroup(displayName: "Sales", mailNickname: "sales", membershipRule: #"user.department -eq "Sales""#))
        #expect(sales.isDynamic && sales.membershipRule == #"user.department -eq "Sales""#)
        #expect(try fake.server.requests.last?.json()["membershipRuleProcessingState"] == "On")
        let exchange = await #expect(throws: NimbusError.self) { try await graph.createGroup(NewGraphGroup(displayName: "DL", mailNickname: "dl", kind: .distribution)) }
        #expect(exchange?.code == .invalidArgument)
        let sameMailbox = await #expect(throws: NimbusError.self) { try await graph.createGroup(NewGraphGroup(displayName: "Finance 2", mailNickname: "finance", kind: .microsoft365)) }
        #expect(sameMailbox?.code == .alreadyExists)

        try await graph.addMember(ada, to: admins.id)
        #expect(try fake.server.requests.last?.json() == ["@odata.id": .string("\(fake.base)/directoryObjects/\(ada)")])
        try await graph.addMember(team.id, to: admins.id)       // a nested group
        try await graph.addMember(alan, to: team.id)
        let twice = await #expect(throws: NimbusError.self) { try await graph.addMember(ada, to: admins.id) }
        #expect(twice?.code == .alreadyExists)
        let dynamic = await #expect(throws: NimbusError.self) { try await graph.addMember(ada, to: sales.id) }
        #expect(dynamic?.code == .invalidArgument)
        let nobody = await #expect(throws: NimbusError.self) { try await graph.addMember(UUID().uuidString.lowercased(), to: admins.id) }
        #expect(nobody?.code == .notFound)

        let direct = try await graph.members(of: admins.id).collect()
        #expect(direct.map(\.id) == [ada, team.id])
        guard case .user(let first) = direct[0], case .group(let nested) = direct[1] else { Issue.record("members are typed by @odata.type: \(direct)"); return }
        #expect(first.userPrincipalName == "ada@contoso.com" && nested.displayName == "Finance")
        #expect(Set(try await graph.members(of: admins.id, transitive: true).collect().map(\.id)) == [ada, team.id, alan])
        #expect(try await graph.memberships(of: alan).collect().map(\.id) == [team.id])
        #expect(Set(try await graph.memberships(of: "alan@contoso.com", transitive: true).collect().map(\.id)) == [team.id, admins.id])
        #expect(Set(try await graph.groupIDs(of: alan)) == [team.id, admins.id])
        #expect(fake.server.requests.last?.queryItem("$select") == "id" && fake.server.requests.last?.queryItem("$top") == "999")

        try await graph.removeMember(team.id, from: admins.id)
        #expect(try await graph.groupIDs(of: alan) == [team.id])
        let notMember = await #expect(throws: NimbusError.self) { try await graph.removeMember(alan, from: admins.id) }
        #expect(notMember?.code == .notFound)

        try await graph.updateGroup(admins.id, displayName: "Billing administrators", description: .clear)
        #expect(try fake.server.requests.last?.json() == ["displayName": "Billing administrators", "description": nil])
        let renamed = try await graph.group(admins.id)
        #expect(renamed.displayName == "Billing administrators" && renamed.description == nil)
        let found = try await graph.groups(GraphQuery(filter: .contains("groupTypes", "Unified"))).collect()
        #expect(found.map(\.id) == [team.id])
        try await graph.deleteGroup(team.id)
        #expect(try await graph.memberships(of: alan).collect().isEmpty)
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("guests' #EXT# names and names starting with $ are addressed the way Graph documents")
    func addressing() async throws {
        let fake = try await FakeGraph.start()
        let (graph, _) = Self.directory(fake)
        let guest = fake.seedUser("ada_fabrikam.com#EXT#@contoso.onmicrosoft.com", displayName: "Ada (guest)")
        let dollar = fake.seedUser("$admin@contoso.com", displayName: "Dollar admin")
        #expect(try await graph.user("ada_fabrikam.com#EXT#@contoso.onmicrosoft.com").id == guest)
        #expect(fake.server.requests.last?.path.contains("%23EXT%23") == true, "# must be percent-encoded, or the rest is a fragment")
        #expect(try await graph.user("$admin@contoso.com").id == dollar)
        #expect(fake.server.requests.last?.path == "/v1.0/users('%24admin%40contoso.com')")
        #expect(throws: NimbusError.self) { _ = try GraphDirectory.userPath("") }
        #expect(fake.server.refusals.isEmpty)
        await fake.server.shutdown()
    }

    @Test("refusals: wrong token, missing permission (the error names it), 429s retried with Retry-After, then resourceExhausted")
    func refusals() async throws {
        let fake = try await FakeGraph.start()
        let id = fake.seedUser("ada@contoso.com", displayName: "Ada")
        let (wrong, _) = Self.directory(fake, token: "stolen")
        let unauthenticated = await #expect(throws: NimbusError.self) { _ = try await wrong.user(id) }
        #expect(unauthenticated?.code == .unauthenticated && unauthenticated?.message.contains("InvalidAuthenticationToken") == true)
        let (reader, _) = Self.directory(fake, token: fake.readOnlyToken)
        #expect(try await reader.user(id).displayName == "Ada")
        let denied = await #expect(throws: NimbusError.self) { try await reader.deleteUser(id) }
        #expect(denied?.code == .permissionDenied && denied?.message.contains("User.ReadWrite.All") == true)

        let (patient, _) = Self.directory(fake, retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(10), maxDelay: .seconds(2)))
        fake.state.withLock { $0.throttle = 2 }
        let start = ContinuousClock.now
        #expect(try await patient.user(id).displayName == "Ada")
        #expect(ContinuousClock.now - start >= .seconds(2), "Retry-After: 1 was honoured twice")
        fake.state.withLock { $0.throttle = 5 }
        let throttled = await #expect(throws: NimbusError.self) { _ = try await patient.user(id) }
        #expect(throttled?.code == .resourceExhausted && throttled?.retryAfter == .seconds(1))
        await fake.server.shutdown()
    }

    @Test("an @odata.nextLink to another host is not followed: the bearer token stays with Graph")
    func foreignNextLink() async throws {
        let fake = try await FakeGraph.start()
        let elsewhere = try await FakeHTTPServer.start()
        for index in 0..<3 { fake.seedUser("u\(index)@contoso.com", displayName: "U\(index)") }
        fake.state.withLock { $0.foreignNextLink = elsewhere.baseURL }
        let (graph, _) = Self.directory(fake, pageSize: 2)
        let refused = await #expect(throws: NimbusError.self) { _ = try await graph.users().collect() }
        #expect(refused?.message.contains("not following it") == true)
        #expect(elsewhere.requests.isEmpty)
        await elsewhere.shutdown()
        await fake.server.shutdown()
    }

    @Test("malformed answers are clear errors: not JSON, no value array, an object without an id")
    func malformed() async throws {
        let server = try await FakeHTTPServer.start()
        server.route(.GET, "/v1.0/users", reply: .json(200, ["value": 3]))
        server.route(.GET, "/v1.0/groups", reply: .json(200, ["value": [["displayName": "no id"]]]))
        server.route(.GET, "/v1.0/users/{id}", reply: .text(200, "<html>maintenance</html>", headers: [("Content-Type", "text/html")]))
        let graph = GraphDirectory(configuration: .init(endpoint: server.baseURL, retry: .none), credential: AzureStaticToken(Secret("t")))
        let noArray = await #expect(throws: NimbusError.self) { _ = try await graph.users().collect() }
        #expect(noArray?.message.contains("without a `value` array") == true)
        let noID = await #expect(throws: NimbusError.self) { _ = try await graph.groups().collect() }
        #expect(noID?.message.contains("without an id") == true)
        let html = await #expect(throws: NimbusError.self) { _ = try await graph.user("x") }
        #expect(html?.message.contains("not JSON") == true && html?.message.contains("maintenance") == true)
        await server.shutdown()
    }

    @Test("the fake's checker refuses a misspelled field and an unknown query option")
    func checkerBites() async throws {
        let fake = try await FakeGraph.start()
        let (graph, _) = Self.directory(fake)
        await fake.server.expectRefusal(renaming: "mailNickname", to: "mailNickName") {
            try await graph.createUser(NewGraphUser(displayName: "Ada", mailNickname: "ada", userPrincipalName: "ada@contoso.com", password: Self.strongPassword))
        }
        await fake.server.expectRefusal(renaming: "forceChangePasswordNextSignIn", to: "forceChangePassword", at: ["passwordProfile"]) {
            try await graph.createUser(NewGraphUser(displayName: "Ada", mailNickname: "ada", userPrincipalName: "ada@contoso.com", password: Self.strongPassword))
        }
        // Graph lists users without $skip: the description has no such parameter on /users.
        let checker = try FakeGraph.spec.get()
        let skip = FakeHTTPServer.CapturedRequest(method: "GET", path: "/v1.0/users", query: [("$skip", "10")])
        #expect(checker.check(skip).contains { $0.location == "query.$skip" })
        let member = FakeHTTPServer.CapturedRequest(method: "GET", path: "/v1.0/groups/g/members", query: [("$skip", "10"), ("$select", "id,displayName")])
        #expect(checker.check(member).isEmpty)
        let badHeader = FakeHTTPServer.CapturedRequest(method: "GET", path: "/v1.0/users", query: [("$count", "true")], headers: [("consistencylevel", "session")], body: .init())
        #expect(!checker.check(badHeader).isEmpty)
        await fake.server.shutdown()
    }
}
