import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusAzure
import NimbusCore
import NimbusHTTP

/// Users and groups of an Entra ID tenant through Microsoft Graph v1.0: list (filter, search, order,
/// paging), read, create, update, delete; group members and user memberships, direct and transitive;
/// sign-in session revocation.
///
/// - Tokens come from an ``AzureTokenSource`` for `https://graph.microsoft.com/.default` (an app
///   registration with the `User.ReadWrite.All` / `Group.ReadWrite.All` application permissions, or
///   `GroupMember.ReadWrite.All` for membership only); national clouds change ``Configuration/endpoint``.
/// - Lists are ``GraphCollection``s, read page by page as they are iterated; `@odata.nextLink` is
///   followed only on the configured endpoint, so a token is never sent elsewhere.
/// - Queries that Graph runs only as *advanced queries* get `ConsistencyLevel: eventual` and
///   `$count=true` by themselves; filters are typed (``GraphFilter``), so values are escaped.
/// - Errors: `notFound` (`Request_ResourceNotFound`), `alreadyExists` (a taken userPrincipalName or
///   mailNickname, a member already in the group), `permissionDenied` (`Authorization_RequestDenied`,
///   with the permission to grant), `unauthenticated`, `resourceExhausted` after 429s (retried with
///   `Retry-After` first); every message carries Graph's error code and `request-id`.
///
/// ```swift
/// let graph = GraphDirectory(credential: try AzureCredentialChain.default())
/// let ada = try await graph.createUser(NewGraphUser(displayName: "Ada Lovelace", mailNickname: "ada",
///                                                  userPrincipalName: "ada@contoso.com", password: Secret(initial)))
/// let admins = try await graph.createGroup(NewGraphGroup(displayName: "Billing admins", mailNickname: "billing-admins"))
/// try await graph.addMember(ada.id, to: admins.id)
/// for try await user in graph.users(GraphQuery(filter: .startsWith("displayName", "Ada"))) { print(user.userPrincipalName ?? user.id) }
/// ```
public final class GraphDirectory: Sendable {
    /// Settings.
    public struct Configuration: Sendable {
        /// Graph's root: `https://graph.microsoft.com`, `https://graph.microsoft.us` (US Government L4),
        /// `https://dod-graph.microsoft.us`, `https://microsoftgraph.chinacloudapi.cn`.
        public var endpoint: String
        /// The API version path.
        public var version: String
        /// Page size for lists without one (`$top`; Graph's default is 100, its maximum 999).
        public var pageSize: Int
        /// Retries of 429, 503 and 504 answers (Graph throttles per app and tenant and says how long to wait).
        public var retry: RetryPolicy
        /// A bound on the items one ``GraphCollection/collect(upTo:)`` reads.
        public var maxItems: Int
        /// The token scope: `endpoint/.default` unless set (a proxy in front of Graph still needs Graph's scope).
        public var tokenScope: String?

        public init(endpoint: String = "https://graph.microsoft.com", version: String = "v1.0", pageSize: Int = 100,
                    retry: RetryPolicy = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(500), maxDelay: .seconds(30)), maxItems: Int = 1_000_000,
                    tokenScope: String? = nil) {
            self.endpoint = endpoint.trimmingSuffix("/"); self.version = version; self.pageSize = pageSize; self.retry = retry; self.maxItems = maxItems
            self.tokenScope = tokenScope
        }
    }

    /// The settings.
    public let configuration: Configuration
    /// `endpoint/version`: every request URL starts with it.
    public let baseURL: String
    let http: NimbusHTTPClient

    /// A directory client.
    public init(configuration: Configuration = .init(), credential: any AzureTokenSource, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.configuration = configuration
        baseURL = configuration.endpoint + "/" + configuration.version
        let scope = configuration.tokenScope ?? configuration.endpoint + "/.default"
        let tokens = AccessTokenCache(refreshAhead: .seconds(300)) { try await credential.fetchToken(scope: scope) }
        http = NimbusHTTPClient(configuration: .init(service: "microsoft-graph", auth: tokens.bearerAuth, retry: configuration.retry), httpClient: httpClient, logger: logger)
    }

    // MARK: Users

    /// The tenant's users (`GET /users`). Graph does not page users with `$skip`; paging follows `@odata.nextLink`.
    public func users(_ query: GraphQuery = .init()) -> GraphCollection<GraphUser> {
        collection("/users", query, fields: GraphUser.selectedFields, operation: "list users") { try GraphUser(json: $0) }
    }

    /// A user by object id or userPrincipalName (guests' `#EXT#` names included).
    /// - Throws: `notFound`.
    public func user(_ idOrUserPrincipalName: String, select: [String] = []) async throws -> GraphUser {
        let query = try GraphQuery(select: select).parameters(modelFields: GraphUser.selectedFields)
        return try GraphUser(json: try await call(.GET, try Self.userPath(idOrUserPrincipalName), query: query, operation: "get user"))
    }

    /// Creates a user (`POST /users`).
    /// - Throws: `invalidArgument` for a malformed userPrincipalName or mailNickname (before any request),
    ///   `alreadyExists` when the userPrincipalName is taken, `invalidArgument` for a password the tenant's policy refuses.
    @discardableResult
    public func createUser(_ user: NewGraphUser) async throws -> GraphUser {
        try GraphNames.checkUserPrincipalName(user.userPrincipalName)
        try GraphNames.checkMailNickname(user.mailNickname)
        guard !user.password.reveal().isEmpty else { throw NimbusError(.invalidArgument, "a new user needs an initial password") }
        var body: [String: JSONValue] = [
            "accountEnabled": .bool(user.accountEnabled), "displayName": .string(user.displayName), "mailNickname": .string(user.mailNickname),
            "userPrincipalName": .string(user.userPrincipalName),
            "passwordProfile": ["password": .string(user.password.reveal()), "forceChangePasswordNextSignIn": .bool(user.forceChangePasswordNextSignIn)],
        ]
        if let givenName = user.givenName { body["givenName"] = .string(givenName) }
        if let surname = user.surname { body["surname"] = .string(surname) }
        if let jobTitle = user.jobTitle { body["jobTitle"] = .string(jobTitle) }
        if let department = user.department { body["department"] = .string(department) }
        return try GraphUser(json: try await call(.POST, "/users", body: .object(body), operation: "create user"))
    }

    /// Updates a user (`PATCH /users/{id}`); a password in `changes` is an administrator's reset.
    public func updateUser(_ idOrUserPrincipalName: String, _ changes: GraphUserChanges) async throws {
        let body = changes.body
        guard !body.isEmpty else { return }
        try await call(.PATCH, try Self.userPath(idOrUserPrincipalName), body: .object(body), operation: "update user")
    }

    /// Deletes a user (it stays restorable for 30 days among Graph's deleted items). - Throws: `notFound`.
    public func deleteUser(_ idOrUserPrincipalName: String) async throws {
        try await call(.DELETE, try Self.userPath(idOrUserPrincipalName), operation: "delete user")
    }

    /// Invalidates the user's refresh tokens and session cookies (`revokeSignInSessions`): applications
    /// must sign the user in again once their access tokens expire.
    public func revokeSignInSessions(_ idOrUserPrincipalName: String) async throws {
        try await call(.POST, try Self.userPath(idOrUserPrincipalName) + "/revokeSignInSessions", operation: "revoke sign-in sessions")
    }

    /// The groups, directory roles and administrative units the user belongs to — directly
    /// (`memberOf`) or through nested groups too (`transitiveMemberOf`).
    public func memberships(of idOrUserPrincipalName: String, transitive: Bool = false, query: GraphQuery = .init()) -> GraphCollection<GraphDirectoryObject> {
        let path = Result { try Self.userPath(idOrUserPrincipalName) + (transitive ? "/transitiveMemberOf" : "/memberOf") }
        return collection(path, query, fields: [], operation: transitive ? "list transitive memberships" : "list memberships") { try GraphDirectoryObject(json: $0) }
    }

    /// The ids of every group the user belongs to, nested groups included: what an app reads when a
    /// token's `groups` claim overflowed (``EntraIdentity/groupsOverage``).
    public func groupIDs(of idOrUserPrincipalName: String) async throws -> [String] {
        let path = Result { try Self.userPath(idOrUserPrincipalName) + "/transitiveMemberOf" }
        let groups = collection(path, GraphQuery(select: ["id"], pageSize: 999), fields: [], operation: "list transitive memberships") { json -> String? in
            json["@odata.type"]?.stringValue == "#microsoft.graph.group" ? json["id"]?.stringValue : nil
        }
        return try await groups.collect()
    }

    // MARK: Groups

    /// The tenant's groups (`GET /groups`).
    public func groups(_ query: GraphQuery = .init()) -> GraphCollection<GraphGroup> {
        collection("/groups", query, fields: GraphGroup.selectedFields, operation: "list groups") { try GraphGroup(json: $0) }
    }

    /// A group by object id. - Throws: `notFound`.
    public func group(_ id: String, select: [String] = []) async throws -> GraphGroup {
        let query = try GraphQuery(select: select).parameters(modelFields: GraphGroup.selectedFields)
        return try GraphGroup(json: try await call(.GET, "/groups/" + (try Self.segment(id)), query: query, operation: "get group"))
    }

    /// Creates a security or Microsoft 365 group, static or dynamic.
    /// - Throws: `invalidArgument` for the Exchange-managed kinds or a malformed mailNickname.
    @discardableResult
    public func createGroup(_ group: NewGraphGroup) async throws -> GraphGroup {
        try GraphNames.checkMailNickname(group.mailNickname)
        var body: [String: JSONValue] = ["displayName": .string(group.displayName), "mailNickname": .string(group.mailNickname)]
        var types: [JSONValue] = []
        switch group.kind {
        case .security:
            body["mailEnabled"] = false; body["securityEnabled"] = true
        case .microsoft365:
            body["mailEnabled"] = true; body["securityEnabled"] = false; types.append("Unified")
        case .mailEnabledSecurity, .distribution:
            throw NimbusError(.invalidArgument, "Graph cannot create \(group.kind.rawValue) groups: Exchange Online manages them (New-DistributionGroup)")
        }
        if let rule = group.membershipRule {
            types.append("DynamicMembership")
            body["membershipRule"] = .string(rule)
            body["membershipRuleProcessingState"] = "On"
        }
        body["groupTypes"] = .array(types)
        if let description = group.description { body["description"] = .string(description) }
        return try GraphGroup(json: try await call(.POST, "/groups", body: .object(body), operation: "create group"))
    }

    /// Renames a group or changes its description; `description: .clear` empties it.
    public func updateGroup(_ id: String, displayName: String? = nil, description: GraphUserChanges.Change? = nil) async throws {
        var body: [String: JSONValue] = [:]
        if let displayName { body["displayName"] = .string(displayName) }
        switch description {
        case .set(let text): body["description"] = .string(text)
        case .clear: body["description"] = .null
        case nil: break
        }
        guard !body.isEmpty else { return }
        try await call(.PATCH, "/groups/" + (try Self.segment(id)), body: .object(body), operation: "update group")
    }

    /// Deletes a group. - Throws: `notFound`.
    public func deleteGroup(_ id: String) async throws {
        try await call(.DELETE, "/groups/" + (try Self.segment(id)), operation: "delete group")
    }

    /// The group's members: directly (`members`), or everyone through nested groups (`transitiveMembers`).
    public func members(of groupID: String, transitive: Bool = false, query: GraphQuery = .init()) -> GraphCollection<GraphDirectoryObject> {
        let path = Result { "/groups/" + (try Self.segment(groupID)) + (transitive ? "/transitiveMembers" : "/members") }
        return collection(path, query, fields: [], operation: transitive ? "list transitive members" : "list members") { try GraphDirectoryObject(json: $0) }
    }

    /// Adds a user, group, device or service principal to a group (`POST /groups/{id}/members/$ref`).
    /// - Throws: `alreadyExists` when it is a member already; `invalidArgument` for a dynamic group.
    public func addMember(_ memberID: String, to groupID: String) async throws {
        let reference = baseURL + "/directoryObjects/" + (try Self.segment(memberID))
        try await call(.POST, "/groups/" + (try Self.segment(groupID)) + "/members/$ref", body: ["@odata.id": .string(reference)], operation: "add member")
    }

    /// Removes a member (`DELETE /groups/{id}/members/{member}/$ref`). - Throws: `notFound` when it is not a member.
    public func removeMember(_ memberID: String, from groupID: String) async throws {
        try await call(.DELETE, "/groups/" + (try Self.segment(groupID)) + "/members/" + (try Self.segment(memberID)) + "/$ref", operation: "remove member")
    }

    // MARK: Paths

    /// A path segment, percent-encoded byte for byte (`#EXT#` becomes `%23EXT%23`).
    /// - Throws: `invalidArgument` for an empty id.
    static func segment(_ id: String) throws -> String {
        guard !id.isEmpty, id.count <= 1024 else { throw NimbusError(.invalidArgument, "a directory object id or userPrincipalName must be 1–1024 characters") }
        return FormEncoder.escapeComponent(id)
    }

    /// `/users/{id}`; a userPrincipalName that starts with `$` is addressed `/users('$name')`, as Graph
    /// documents (a leading `$` would read as a system segment such as `$count`).
    static func userPath(_ idOrUserPrincipalName: String) throws -> String {
        if idOrUserPrincipalName.hasPrefix("$") {
            let quoted = idOrUserPrincipalName.replacingOccurrences(of: "'", with: "''")
            return "/users('" + (try segment(quoted)) + "')"
        }
        return "/users/" + (try segment(idOrUserPrincipalName))
    }

    // MARK: Transport

    func collection<Element: Sendable>(_ path: String, _ query: GraphQuery, fields: [String], operation: String,
                                       transform: @escaping @Sendable (JSONValue) throws -> Element?) -> GraphCollection<Element> {
        collection(.success(path), query, fields: fields, operation: operation, transform: transform)
    }

    func collection<Element: Sendable>(_ path: Result<String, any Error>, _ query: GraphQuery, fields: [String], operation: String,
                                       transform: @escaping @Sendable (JSONValue) throws -> Element?) -> GraphCollection<Element> {
        var query = query
        if query.pageSize == nil { query.pageSize = configuration.pageSize }
        let request = Result { () throws -> GraphCollection<Element>.FirstRequest in
            let path = try path.get()
            return .init(path: path, query: try query.parameters(modelFields: fields), advanced: query.isAdvanced)
        }
        return GraphCollection(directory: self, first: request.mapError { $0 as? NimbusError ?? NimbusError(.invalidArgument, "\($0)") }, operation: operation, transform: transform)
    }

    /// Calls `method path` (a path under ``baseURL``, or an `@odata.nextLink` on it); returns the JSON answer (`{}` for 204).
    @discardableResult
    func call(_ method: HTTPMethod, _ pathOrLink: String, query: [(String, String)] = [], body: JSONValue? = nil, advanced: Bool = false,
              operation: String) async throws -> JSONValue {
        var url: String
        if pathOrLink.hasPrefix("https://") || pathOrLink.hasPrefix("http://") {
            // A nextLink is Graph's own URL; one that leaves the endpoint would carry the bearer token to another host.
            guard HTTPOrigin(pathOrLink) != nil, HTTPOrigin(pathOrLink) == HTTPOrigin(baseURL) else {
                throw NimbusError(.internal, "Microsoft Graph \(operation): the answer's @odata.nextLink (\(pathOrLink.prefix(80))) is not on \(configuration.endpoint); not following it")
            }
            url = pathOrLink
        } else {
            url = baseURL + pathOrLink
        }
        if !query.isEmpty {
            url += (url.contains("?") ? "&" : "?") + query.map { "\($0.0)=\(FormEncoder.escapeComponent($0.1))" }.joined(separator: "&")
        }
        var request = NimbusHTTPRequest(method, url, operation: "Graph \(operation)")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "client-request-id", value: UUID().uuidString.lowercased())
        if advanced { request.headers.add(name: "ConsistencyLevel", value: "eventual") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = ByteBuffer(string: body.description)
        }
        let response = try await http.send(request)
        let bytes = try await response.collect(upTo: 16 * 1024 * 1024)
        guard response.isSuccess else { throw Self.error(response, bytes, operation: operation) }
        if response.status == .noContent || bytes.readableBytes == 0 { return [:] }
        do {
            return try JSONValue.parse(Array(bytes.readableBytesView))
        } catch {
            throw NimbusError(.internal, "Microsoft Graph \(operation) answered \(response.status.code) with a body that is not JSON: \(String(decoding: bytes.readableBytesView.prefix(120), as: UTF8.self))")
        }
    }

    /// Graph's `{"error": {"code", "message", "innerError": {"request-id"}}}` as a portable error.
    static func error(_ response: NimbusHTTPResponse, _ bytes: ByteBuffer, operation: String) -> NimbusError {
        let json = try? JSONValue.parse(Array(bytes.readableBytesView))
        let code = json?["error"]?["code"]?.stringValue ?? "HTTP\(response.status.code)"
        let message = json?["error"]?["message"]?.stringValue ?? String(decoding: bytes.readableBytesView.prefix(300), as: UTF8.self)
        let requestID = json?["error"]?["innerError"]?["request-id"]?.stringValue ?? response.headers.first(name: "request-id")
        var portable = HTTPStatusMapping.code(for: response.status)
        var hint = ""
        switch code {
        case "Request_ResourceNotFound", "ResourceNotFound", "itemNotFound":
            portable = .notFound
        case "Authorization_RequestDenied", "Authorization_IdentityNotFound", "Forbidden":
            portable = .permissionDenied
            hint = "; grant the app the Graph application permission this call needs (User.ReadWrite.All, Group.ReadWrite.All or GroupMember.ReadWrite.All) and an administrator's consent"
        case "InvalidAuthenticationToken":
            portable = .unauthenticated
        case "Request_MultipleObjectsWithSameKeyValue", "ObjectConflict":
            portable = .alreadyExists
        case "Request_BadRequest" where message.localizedCaseInsensitiveContains("already exist"):
            portable = .alreadyExists
        case "Request_UnsupportedQuery":
            hint = "; this query may need to run as an advanced query (GraphQuery(advanced: true))"
        default:
            break
        }
        if response.status.code == 412 { portable = .failedPrecondition }
        let suffix = requestID.map { " (request-id \($0))" } ?? ""
        return NimbusError(portable, "Microsoft Graph \(operation): \(code): \(message.prefix(500))\(hint)\(suffix)", retryAfter: response.retryAfter())
    }
}

/// A Graph list, read a page at a time as it is iterated (`@odata.nextLink`).
///
/// ```swift
/// for try await member in graph.members(of: groupID) { … }
/// let page = try await graph.users(GraphQuery(advanced: true)).firstPage()   // page.count: the total
/// ```
public struct GraphCollection<Element: Sendable>: AsyncSequence, Sendable {
    struct FirstRequest: Sendable {
        var path: String
        var query: [(String, String)]
        var advanced: Bool
    }

    let directory: GraphDirectory
    let first: Result<FirstRequest, NimbusError>
    let operation: String
    let transform: @Sendable (JSONValue) throws -> Element?

    /// The first page, with `@odata.count` for advanced queries.
    public func firstPage() async throws -> GraphPage<Element> {
        let request = try first.get()
        return try await page(try await directory.call(.GET, request.path, query: request.query, advanced: request.advanced, operation: operation))
    }

    /// The page at a `nextLink` of an earlier page.
    public func page(after nextLink: String) async throws -> GraphPage<Element> {
        let advanced = (try? first.get().advanced) ?? false
        return try await page(try await directory.call(.GET, nextLink, advanced: advanced, operation: operation))
    }

    func page(_ json: JSONValue) async throws -> GraphPage<Element> {
        guard let values = json["value"]?.arrayValue else {
            throw NimbusError(.internal, "Microsoft Graph \(operation) answered without a `value` array: \(json.description.prefix(200))")
        }
        return GraphPage(items: try values.compactMap(transform), count: json["@odata.count"]?.numberValue.map { Int($0) },
                         nextLink: json["@odata.nextLink"]?.stringValue)
    }

    /// Every item, following `nextLink`s.
    /// - Throws: `resourceExhausted` past `limit` (default: ``GraphDirectory/Configuration/maxItems``).
    public func collect(upTo limit: Int? = nil) async throws -> [Element] {
        let limit = limit ?? directory.configuration.maxItems
        var items: [Element] = []
        for try await item in self {
            guard items.count < limit else { throw NimbusError(.resourceExhausted, "Microsoft Graph \(operation): more than \(limit) items; narrow the query or raise the limit") }
            items.append(item)
        }
        return items
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(collection: self) }

    /// Reads pages on demand.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let collection: GraphCollection
        var buffer: [Element] = []
        var index = 0
        var next: String?
        var started = false

        init(collection: GraphCollection) { self.collection = collection }

        public mutating func next() async throws -> Element? {
            while index == buffer.count {
                let page: GraphPage<Element>
                if !started {
                    started = true
                    page = try await collection.firstPage()
                } else if let link = next {
                    page = try await collection.page(after: link)
                } else {
                    return nil
                }
                buffer = page.items; index = 0; next = page.nextLink
            }
            defer { index += 1 }
            return buffer[index]
        }
    }
}
