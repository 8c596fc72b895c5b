import Foundation
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

/// Microsoft Graph v1.0 users and groups as Microsoft documents them ("user resource type", "List
/// users", "Create user", "Add members", "Advanced query capabilities on Microsoft Entra ID objects",
/// "Paging", "Throttling", "Error responses"): GUID ids, users addressed by id or userPrincipalName,
/// `$select`/`$filter`/`$search`/`$orderby`/`$top`/`$count`, advanced queries refused without
/// `ConsistencyLevel: eventual`, `@odata.nextLink` paging with an opaque `$skiptoken`, references
/// through `@odata.id`, nested groups for the transitive lists, and Graph's error bodies.
///
/// Every request is first checked against the committed extract of Microsoft's own description
/// (`Fixtures/graph-users-groups-v1.0.json`, from PyPI msgraph-sdk; see scripts/auth/graph-extract).
final class FakeGraph: Sendable {
    let server: FakeHTTPServer
    let token = "graph-test-token"
    let readOnlyToken = "graph-read-only-token"
    var base: String { server.baseURL + "/v1.0" }

    struct State {
        var users: [String: [String: JSONValue]] = [:]
        var groups: [String: [String: JSONValue]] = [:]
        var members: [String: [String]] = [:]
        var order: [String] = []
        var clock = 1_790_000_000
        /// The next answers to replace with 429s (Retry-After: 1).
        var throttle = 0
        /// A host to put in nextLinks instead of the fake's own.
        var foreignNextLink: String?
    }
    let state = Mutex(State())

    static let spec = OpenAPIRequestChecker.fixture("graph-users-groups-v1.0", in: .module)

    static func start() async throws -> FakeGraph {
        let fake = FakeGraph(server: try await FakeHTTPServer.start())
        let checker = try spec.get()
        fake.server.refuseRequests(failing: { request in
            // $skiptoken is Graph's opaque paging state, not a parameter the client chose; users('$name') is
            // OData's parenthesised key, the same resource as users/$name.
            var described = request
            described.query.removeAll { $0.0 == "$skiptoken" }
            if let range = described.path.range(of: #"/users\('[^/]*'\)"#, options: .regularExpression) {
                described.path.replaceSubrange(range, with: "/users/key")
            }
            return checker.check(described).map(\.description)
        }) { problems in error(400, "Request_BadRequest", problems.joined(separator: "; ")) }
        fake.routes()
        return fake
    }

    private init(server: FakeHTTPServer) { self.server = server }

    static func error(_ status: Int, _ code: String, _ message: String, headers: [(String, String)] = []) -> FakeHTTPServer.Reply {
        .json(status, ["error": ["code": .string(code), "message": .string(message),
                                 "innerError": ["date": "2026-12-07T12:00:00", "request-id": "8a6e1b2c-0000-4000-8000-00000000f00d", "client-request-id": "x"]]],
              headers: [("request-id", "8a6e1b2c-0000-4000-8000-00000000f00d")] + headers)
    }

    static func notFound(_ id: String) -> FakeHTTPServer.Reply {
        error(404, "Request_ResourceNotFound", "Resource '\(id)' does not exist or one of its queried reference-property objects are not present.")
    }

    static let defaultUserFields = ["businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                                    "userPrincipalName", "id"]
    static let defaultGroupFields = ["id", "createdDateTime", "description", "displayName", "groupTypes", "mail", "mailEnabled", "mailNickname", "membershipRule",
                                     "securityEnabled", "visibility"]

    // MARK: Seeding and reading (for tests)

    @discardableResult
    func seedUser(_ upn: String, displayName: String, department: String? = nil, enabled: Bool = true) -> String {
        state.withLock { state in
            let id = UUID().uuidString.lowercased()
            state.clock += 1
            state.users[id] = ["id": .string(id), "userPrincipalName": .string(upn), "displayName": .string(displayName), "mailNickname": .string(String(upn.split(separator: "@")[0])),
                               "accountEnabled": .bool(enabled), "department": department.map(JSONValue.string) ?? .null, "mail": .string(upn), "userType": "Member",
                               "createdDateTime": .string(Self.timestamp(state.clock)), "givenName": .null, "surname": .null, "jobTitle": .null]
            state.order.append(id)
            return id
        }
    }

    @discardableResult
    func seedGroup(_ name: String, nested members: [String] = []) -> String {
        state.withLock { state in
            let id = UUID().uuidString.lowercased()
            state.clock += 1
            state.groups[id] = ["id": .string(id), "displayName": .string(name), "mailNickname": .string(name.lowercased()), "mailEnabled": false, "securityEnabled": true,
                                "groupTypes": [], "description": .null, "mail": .null, "membershipRule": .null, "createdDateTime": .string(Self.timestamp(state.clock))]
            state.order.append(id)
            state.members[id] = members
            return id
        }
    }

    static func timestamp(_ seconds: Int) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    // MARK: Routes

    private func routes() {
        let auth: (_ write: Bool, @escaping FakeHTTPServer.Handler) -> FakeHTTPServer.Handler = { write, handler in
            { request in
                let bearer = request.header("authorization")
                guard bearer == "Bearer \(self.token)" || bearer == "Bearer \(self.readOnlyToken)" else {
                    return Self.error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.",
                                      headers: [("WWW-Authenticate", "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\"")])
                }
                if write && bearer == "Bearer \(self.readOnlyToken)" {
                    return Self.error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
                }
                let throttled = self.state.withLock { state -> Bool in
                    guard state.throttle > 0 else { return false }
                    state.throttle -= 1
                    return true
                }
                if throttled {
                    return Self.error(429, "TooManyRequests", "Too many requests. Please try again later.", headers: [("Retry-After", "1")])
                }
                return try await handler(request)
            }
        }
        // `/users('$name')`: OData's parenthesised key; registered first, so every later route wins over it.
        server.route(.GET, "/v1.0/{keyed}", handler: auth(false) { request in self.readUser(request) })
        server.route(.GET, "/v1.0/users", handler: auth(false) { request in try self.list(request, kind: .user) { $0.users.values.map { $0 } } })
        server.route(.POST, "/v1.0/users", handler: auth(true) { request in try self.createUser(request) })
        server.route(.GET, "/v1.0/users/{id}", handler: auth(false) { request in self.readUser(request) })
        server.route(.PATCH, "/v1.0/users/{id}", handler: auth(true) { request in try self.updateUser(request) })
        server.route(.DELETE, "/v1.0/users/{id}", handler: auth(true) { request in
            let key = Self.segment(request, 2)
            return self.state.withLock { state in
                guard let id = Self.findUser(key, state) else { return Self.notFound(key) }
                state.users[id] = nil
                for group in state.members.keys { state.members[group]?.removeAll { $0 == id } }
                return .text(204, "")
            }
        })
        server.route(.POST, "/v1.0/users/{id}/revokeSignInSessions", handler: auth(true) { request in
            let key = Self.segment(request, 2)
            guard self.state.withLock({ Self.findUser(key, $0) }) != nil else { return Self.notFound(key) }
            return .json(200, ["@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": true])
        })
        for transitive in [false, true] {
            server.route(.GET, "/v1.0/users/{id}/\(transitive ? "transitiveMemberOf" : "memberOf")", handler: auth(false) { request in
                let key = Self.segment(request, 2)
                guard let id = self.state.withLock({ Self.findUser(key, $0) }) else { return Self.notFound(key) }
                return try self.list(request, kind: .directoryObject) { state in
                    state.groups.values.filter { group in
                        let members = transitive ? Self.transitiveMembers(group["id"]!.stringValue!, state) : state.members[group["id"]!.stringValue!] ?? []
                        return members.contains(id)
                    }
                }
            })
            server.route(.GET, "/v1.0/groups/{id}/\(transitive ? "transitiveMembers" : "members")", handler: auth(false) { request in
                let groupID = Self.segment(request, 2)
                guard self.state.withLock({ $0.groups[groupID] }) != nil else { return Self.notFound(groupID) }
                return try self.list(request, kind: .directoryObject) { state in
                    let ids = transitive ? Self.transitiveMembers(groupID, state) : state.members[groupID] ?? []
                    return ids.compactMap { state.users[$0] ?? state.groups[$0] }
                }
            })
        }
        server.route(.GET, "/v1.0/groups", handler: auth(false) { request in try self.list(request, kind: .group) { $0.groups.values.map { $0 } } })
        server.route(.POST, "/v1.0/groups", handler: auth(true) { request in try self.createGroup(request) })
        server.route(.GET, "/v1.0/groups/{id}", handler: auth(false) { request in
            let id = Self.segment(request, 2)
            guard let group = self.state.withLock({ $0.groups[id] }) else { return Self.notFound(id) }
            return .json(200, .object(Self.project(group, request, defaults: Self.defaultGroupFields, context: "groups/$entity")))
        })
        server.route(.PATCH, "/v1.0/groups/{id}", handler: auth(true) { request in
            let id = Self.segment(request, 2)
            let body = try request.json()
            return self.state.withLock { state in
                guard state.groups[id] != nil else { return Self.notFound(id) }
                for (name, value) in body.objectValue ?? [:] { state.groups[id]?[name] = value }
                return .text(204, "")
            }
        })
        server.route(.DELETE, "/v1.0/groups/{id}", handler: auth(true) { request in
            let id = Self.segment(request, 2)
            return self.state.withLock { state in
                guard state.groups.removeValue(forKey: id) != nil else { return Self.notFound(id) }
                state.members[id] = nil
                for group in state.members.keys { state.members[group]?.removeAll { $0 == id } }
                return .text(204, "")
            }
        })
        server.route(.POST, "/v1.0/groups/{id}/members/$ref", handler: auth(true) { request in
            let groupID = Self.segment(request, 2)
            let reference = try request.json()["@odata.id"]?.stringValue ?? ""
            let prefix = self.base + "/directoryObjects/"
            guard reference.hasPrefix(prefix) else {
                return Self.error(400, "Request_BadRequest", "Invalid URL format specified in @odata.bind for members")
            }
            let memberID = String(reference.dropFirst(prefix.count)).removingPercentEncoding ?? ""
            return self.state.withLock { state in
                guard let group = state.groups[groupID] else { return Self.notFound(groupID) }
                guard state.users[memberID] != nil || state.groups[memberID] != nil else { return Self.notFound(memberID) }
                if group["groupTypes"]?.arrayValue?.contains("DynamicMembership") == true {
                    return Self.error(400, "Request_BadRequest", "Insufficient privileges to complete the operation. Members of a group with dynamic membership cannot be changed.")
                }
                guard !(state.members[groupID] ?? []).contains(memberID) else {
                    return Self.error(400, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'.")
                }
                state.members[groupID, default: []].append(memberID)
                return .text(204, "")
            }
        })
        server.route(.DELETE, "/v1.0/groups/{id}/members/{member}/$ref", handler: auth(true) { request in
            let groupID = Self.segment(request, 2), memberID = Self.segment(request, 4)
            return self.state.withLock { state in
                guard state.groups[groupID] != nil else { return Self.notFound(groupID) }
                guard let index = state.members[groupID]?.firstIndex(of: memberID) else { return Self.notFound(memberID) }
                state.members[groupID]?.remove(at: index)
                return .text(204, "")
            }
        })
    }

    /// Path segment `index` (`/v1.0/users/ID` → 2 is `ID`), percent-decoded.
    static func segment(_ request: FakeHTTPServer.CapturedRequest, _ index: Int) -> String {
        let parts = request.path.split(separator: "/").map(String.init)
        return index < parts.count ? parts[index].removingPercentEncoding ?? "" : ""
    }

    static func findUser(_ key: String, _ state: State) -> String? {
        if state.users[key] != nil { return key }
        return state.users.first { $0.value["userPrincipalName"]?.stringValue?.lowercased() == key.lowercased() }?.key
    }

    static func transitiveMembers(_ groupID: String, _ state: State) -> [String] {
        var seen: [String] = [], queue = state.members[groupID] ?? []
        while let next = queue.first {
            queue.removeFirst()
            guard !seen.contains(next) else { continue }
            seen.append(next)
            if state.groups[next] != nil { queue += state.members[next] ?? [] }
        }
        return seen
    }

    // MARK: Handlers

    func readUser(_ request: FakeHTTPServer.CapturedRequest) -> FakeHTTPServer.Reply {
        var key = Self.segment(request, 2)
        if request.path.split(separator: "/").count == 2 {
            let keyed = Self.segment(request, 1)
            guard keyed.hasPrefix("users('"), keyed.hasSuffix("')") else {
                return .json(400, ["error": ["code": "BadRequest", "message": .string("Resource not found for the segment '\(keyed)'.")]])
            }
            key = String(keyed.dropFirst(7).dropLast(2)).replacingOccurrences(of: "''", with: "'")
        }
        guard let user = state.withLock({ state in Self.findUser(key, state).flatMap { state.users[$0] } }) else { return Self.notFound(key) }
        return .json(200, .object(Self.project(user, request, defaults: Self.defaultUserFields, context: "users/$entity")))
    }

    func createUser(_ request: FakeHTTPServer.CapturedRequest) throws -> FakeHTTPServer.Reply {
        guard var body = try request.json().objectValue else { return Self.error(400, "Request_BadRequest", "A JSON object is expected.") }
        for field in ["accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"] where body[field] == nil || body[field] == .null {
            return Self.error(400, "Request_BadRequest", "Invalid value specified for property '\(field)' of resource 'User'.")
        }
        let password = body["passwordProfile"]?["password"]?.stringValue ?? ""
        // Entra ID: 8–256 characters, three of the four character classes.
        let classes = [password.contains(where: \.isUppercase), password.contains(where: \.isLowercase), password.contains(where: \.isNumber),
                       password.contains(where: { !$0.isLetter && !$0.isNumber })].filter { $0 }.count
        guard password.count >= 8, classes >= 3 else {
            return Self.error(400, "Request_BadRequest", "The specified password does not comply with password complexity requirements. Please provide a different password.")
        }
        let upn = body["userPrincipalName"]!.stringValue ?? ""
        return state.withLock { state in
            if Self.findUser(upn, state) != nil {
                return Self.error(400, "Request_BadRequest", "Another object with the same value for property userPrincipalName already exists.")
            }
            let id = UUID().uuidString.lowercased()
            state.clock += 1
            body["passwordProfile"] = nil
            body["id"] = .string(id)
            body["userType"] = "Member"
            body["mail"] = .null
            body["createdDateTime"] = .string(Self.timestamp(state.clock))
            state.users[id] = body
            state.order.append(id)
            var answer = body.filter { Self.defaultUserFields.contains($0.key) }
            answer["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
            return .json(201, .object(answer))
        }
    }

    func updateUser(_ request: FakeHTTPServer.CapturedRequest) throws -> FakeHTTPServer.Reply {
        let key = Self.segment(request, 2)
        let body = try request.json().objectValue ?? [:]
        return state.withLock { state in
            guard let id = Self.findUser(key, state) else { return Self.notFound(key) }
            for (name, value) in body where name != "passwordProfile" { state.users[id]?[name] = value }
            return .text(204, "")
        }
    }

    func createGroup(_ request: FakeHTTPServer.CapturedRequest) throws -> FakeHTTPServer.Reply {
        guard var body = try request.json().objectValue else { return Self.error(400, "Request_BadRequest", "A JSON object is expected.") }
        for field in ["displayName", "mailEnabled", "mailNickname", "securityEnabled"] where body[field] == nil {
            return Self.error(400, "Request_BadRequest", "Invalid value specified for property '\(field)' of resource 'Group'.")
        }
        let unified = body["groupTypes"]?.arrayValue?.contains("Unified") == true
        if body["mailEnabled"] == true && !unified {
            return Self.error(400, "Request_BadRequest", "The service does not currently support writes of mail-enabled groups. Please ensure that the mail-enablement property is unset and the security-enablement property is set to true.")
        }
        return state.withLock { state in
            let nickname = body["mailNickname"]?.stringValue?.lowercased()
            if unified, state.groups.values.contains(where: { $0["mailNickname"]?.stringValue?.lowercased() == nickname && $0["groupTypes"]?.arrayValue?.contains("Unified") == true }) {
                return Self.error(400, "Request_BadRequest", "Another object with the same value for property mailNickname already exists.")
            }
            let id = UUID().uuidString.lowercased()
            state.clock += 1
            body["id"] = .string(id)
            body["mail"] = unified ? .string("\(nickname ?? "")@contoso.onmicrosoft.com") : .null
            body["createdDateTime"] = .string(Self.timestamp(state.clock))
            body["membershipRuleProcessingState"] = nil
            state.groups[id] = body
            state.order.append(id)
            state.members[id] = []
            var answer = body
            answer["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#groups/$entity"
            return .json(201, .object(answer))
        }
    }

    enum Kind { case user, group, directoryObject }

    /// A list with Graph's query options: advanced-query rules, $filter, $search, $orderby, $select, $top/$skiptoken paging, $count.
    func list(_ request: FakeHTTPServer.CapturedRequest, kind: Kind, items: (State) -> [[String: JSONValue]]) throws -> FakeHTTPServer.Reply {
        let eventual = request.header("consistencylevel") == "eventual"
        let counted = request.queryItem("$count") == "true"
        var objects = state.withLock { state in items(state).sorted { (state.order.firstIndex(of: $0["id"]!.stringValue!) ?? 0) < (state.order.firstIndex(of: $1["id"]!.stringValue!) ?? 0) } }
        if let filter = request.queryItem("$filter") {
            let parsed: ODataFilter
            do { parsed = try ODataFilter.parse(filter) } catch {
                return Self.error(400, "BadRequest", "Invalid filter clause: \(error)")
            }
            if parsed.advanced && !(eventual && counted) {
                return Self.error(400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property of resource.")
            }
            objects = objects.filter { parsed.matches($0) }
        }
        if let search = request.queryItem("$search") {
            guard eventual else { return Self.error(400, "Request_BadRequest", "Search operation is not supported without the ConsistencyLevel header set to 'eventual'.") }
            let clauses = search.components(separatedBy: " AND ").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            objects = objects.filter { object in
                clauses.allSatisfy { clause in
                    let parts = clause.split(separator: ":", maxSplits: 1).map(String.init)
                    guard parts.count == 2, let value = object[parts[0]]?.stringValue else { return false }
                    return value.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).contains { $0.hasPrefix(parts[1].lowercased()) }
                }
            }
        }
        if let order = request.queryItem("$orderby") {
            if request.queryItem("$filter") != nil && !(eventual && counted) {
                return Self.error(400, "Request_UnsupportedQuery", "Sorting not supported for current query.")
            }
            let parts = order.split(separator: " ")
            let field = String(parts[0]), descending = parts.count > 1 && parts[1] == "desc"
            objects.sort { a, b in
                let (x, y) = (a[field]?.stringValue ?? "", b[field]?.stringValue ?? "")
                return descending ? x > y : x < y
            }
        }
        let total = objects.count
        let size = min(request.queryItem("$top").flatMap(Int.init) ?? 100, 999)
        let start = request.queryItem("$skiptoken").flatMap { Int($0.dropFirst("X'".count).dropLast()) } ?? 0
        let slice = Array(objects.dropFirst(start).prefix(size))
        let defaults: [String]
        switch kind {
        case .user: defaults = Self.defaultUserFields
        case .group: defaults = Self.defaultGroupFields
        case .directoryObject: defaults = []
        }
        var answer: [String: JSONValue] = ["@odata.context": .string("https://graph.microsoft.com/v1.0/$metadata#\(kind == .group ? "groups" : kind == .user ? "users" : "directoryObjects")")]
        answer["value"] = .array(slice.map { object in
            var projected = Self.project(object, request, defaults: defaults.isEmpty ? (object["userPrincipalName"] != nil ? Self.defaultUserFields : Self.defaultGroupFields) : defaults, context: nil)
            if kind == .directoryObject { projected["@odata.type"] = object["userPrincipalName"] != nil ? "#microsoft.graph.user" : "#microsoft.graph.group" }
            return .object(projected)
        })
        if counted && eventual { answer["@odata.count"] = .number(Double(total)) }
        if start + size < total {
            var query = request.query.filter { $0.0 != "$skiptoken" }
            query.append(("$skiptoken", "X'\(start + size)'"))
            let host = state.withLock { $0.foreignNextLink } ?? server.baseURL
            answer["@odata.nextLink"] = .string(host + request.path + "?" + query.map { "\($0.0)=\(FormEncoder.escapeComponent($0.1))" }.joined(separator: "&"))
        }
        return .json(200, .object(answer))
    }

    static func project(_ object: [String: JSONValue], _ request: FakeHTTPServer.CapturedRequest, defaults: [String], context: String?) -> [String: JSONValue] {
        let fields = request.queryItem("$select").map { $0.split(separator: ",").map(String.init) + ["id"] } ?? defaults
        var answer = object.filter { fields.contains($0.key) }
        for field in fields where answer[field] == nil && object.keys.contains(field) == false && defaults.contains(field) { answer[field] = .null }
        if let context { answer["@odata.context"] = .string("https://graph.microsoft.com/v1.0/$metadata#\(context)") }
        return answer
    }
}

/// The subset of OData `$filter` that Graph runs on users and groups: `eq`, `ne`, `startsWith`,
/// `endsWith`, `in`, `any`, `and`, `or`, `not`, parentheses — parsed, not pattern-matched, so a
/// literal that escaped its quotes would fail to parse instead of matching.
indirect enum ODataFilter {
    case compare(String, String, JSONValue)
    case function(String, String, String)
    case isIn(String, [JSONValue])
    case any(String, JSONValue)
    case and(ODataFilter, ODataFilter)
    case or(ODataFilter, ODataFilter)
    case not(ODataFilter)

    var advanced: Bool {
        switch self {
        case .compare(_, let op, _): op == "ne"
        case .function(let name, _, _): name == "endsWith"
        case .not: true
        case .and(let a, let b), .or(let a, let b): a.advanced || b.advanced
        case .isIn, .any: false
        }
    }

    func matches(_ object: [String: JSONValue]) -> Bool {
        func value(_ path: String) -> JSONValue? { path.split(separator: "/").reduce(JSONValue.object(object)) { $0?[String($1)] } }
        switch self {
        case .compare(let path, let op, let literal):
            let actual = value(path) ?? .null
            let equal: Bool
            if case .string(let a) = actual, case .string(let b) = literal { equal = a.lowercased() == b.lowercased() } else { equal = actual == literal }
            return op == "eq" ? equal : !equal
        case .function(let name, let path, let text):
            guard let actual = value(path)?.stringValue?.lowercased() else { return false }
            return name == "startsWith" ? actual.hasPrefix(text.lowercased()) : actual.hasSuffix(text.lowercased())
        case .isIn(let path, let options): return options.contains(value(path) ?? .null)
        case .any(let path, let literal): return value(path)?.arrayValue?.contains(literal) ?? false
        case .and(let a, let b): return a.matches(object) && b.matches(object)
        case .or(let a, let b): return a.matches(object) || b.matches(object)
        case .not(let a): return !a.matches(object)
        }
    }

    struct ParseError: Error, CustomStringConvertible { var description: String }

    static func parse(_ text: String) throws -> ODataFilter {
        var parser = Parser(characters: Array(text))
        let filter = try parser.orExpression()
        parser.skipSpaces()
        guard parser.index == parser.characters.count else { throw ParseError(description: "unexpected '\(String(parser.characters[parser.index...]))'") }
        return filter
    }

    struct Parser {
        let characters: [Character]
        var index = 0

        mutating func skipSpaces() { while index < characters.count, characters[index] == " " { index += 1 } }
        mutating func keyword(_ word: String) -> Bool {
            skipSpaces()
            let end = index + word.count
            guard end <= characters.count, String(characters[index..<end]) == word, end == characters.count || !characters[end].isLetter else { return false }
            index = end
            return true
        }
        mutating func expect(_ character: Character) throws {
            skipSpaces()
            guard index < characters.count, characters[index] == character else { throw ParseError(description: "expected '\(character)' at \(index)") }
            index += 1
        }
        mutating func identifier() throws -> String {
            skipSpaces()
            let start = index
            while index < characters.count, characters[index].isLetter || characters[index].isNumber || characters[index] == "_" || characters[index] == "/" { index += 1 }
            guard index > start else { throw ParseError(description: "expected a property at \(index)") }
            return String(characters[start..<index])
        }
        mutating func literal() throws -> JSONValue {
            skipSpaces()
            guard index < characters.count else { throw ParseError(description: "expected a literal") }
            if characters[index] == "'" {
                index += 1
                var text = ""
                while true {
                    guard index < characters.count else { throw ParseError(description: "unterminated string") }
                    if characters[index] == "'" {
                        if index + 1 < characters.count, characters[index + 1] == "'" { text.append("'"); index += 2; continue }
                        index += 1
                        return .string(text)
                    }
                    text.append(characters[index]); index += 1
                }
            }
            if keyword("true") { return true }
            if keyword("false") { return false }
            if keyword("null") { return .null }
            let start = index
            while index < characters.count, characters[index].isNumber || characters[index] == "-" { index += 1 }
            guard let number = Double(String(characters[start..<index])) else { throw ParseError(description: "bad literal at \(start)") }
            return .number(number)
        }
        mutating func orExpression() throws -> ODataFilter {
            var left = try andExpression()
            while keyword("or") { left = .or(left, try andExpression()) }
            return left
        }
        mutating func andExpression() throws -> ODataFilter {
            var left = try unary()
            while keyword("and") { left = .and(left, try unary()) }
            return left
        }
        mutating func unary() throws -> ODataFilter {
            if keyword("not") { return .not(try unary()) }
            skipSpaces()
            if index < characters.count, characters[index] == "(" {
                index += 1
                let inner = try orExpression()
                try expect(")")
                return inner
            }
            for name in ["startsWith", "endsWith"] where keyword(name) {
                try expect("(")
                let path = try identifier()
                try expect(",")
                guard case .string(let text) = try literal() else { throw ParseError(description: "\(name) takes a string") }
                try expect(")")
                return .function(name, path, text)
            }
            let path = try identifier()
            if path.hasSuffix("/any") {
                try expect("(")
                _ = try identifier()
                try expect(":")
                _ = try identifier()
                guard keyword("eq") else { throw ParseError(description: "any() takes x:x eq value") }
                let value = try literal()
                try expect(")")
                return .any(String(path.dropLast(4)), value)
            }
            if keyword("eq") { return .compare(path, "eq", try literal()) }
            if keyword("ne") { return .compare(path, "ne", try literal()) }
            if keyword("in") {
                try expect("(")
                var values = [try literal()]
                while true {
                    skipSpaces()
                    if index < characters.count, characters[index] == "," { index += 1; values.append(try literal()) } else { break }
                }
                try expect(")")
                return .isIn(path, values)
            }
            throw ParseError(description: "expected an operator after \(path)")
        }
    }
}
