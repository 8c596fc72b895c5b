import Foundation
import NimbusCore

/// A user of the directory, as Microsoft Graph v1.0 describes `microsoft.graph.user` (the
/// properties below are read with `$select`; Graph's default set leaves `accountEnabled` out).
public struct GraphUser: Sendable, Hashable {
    /// The object id (a GUID).
    public var id: String
    /// `alias@domain`; guests read `alias_home.com#EXT#@tenant.onmicrosoft.com`.
    public var userPrincipalName: String?
    public var displayName: String?
    public var givenName: String?
    public var surname: String?
    public var mail: String?
    public var mailNickname: String?
    public var jobTitle: String?
    public var department: String?
    /// `false` blocks sign-in.
    public var accountEnabled: Bool?
    /// `Member` or `Guest`.
    public var userType: String?
    public var createdDateTime: Date?
    /// Every property of the answer, including those asked for through ``GraphQuery/select``.
    public var properties: [String: JSONValue]

    /// The properties this type maps, sent as `$select`.
    public static let selectedFields = ["id", "userPrincipalName", "displayName", "givenName", "surname", "mail", "mailNickname", "jobTitle",
                                        "department", "accountEnabled", "userType", "createdDateTime"]

    init(json: JSONValue) throws {
        guard let object = json.objectValue, let id = object["id"]?.stringValue else {
            throw NimbusError(.internal, "Microsoft Graph answered a user without an id: \(json.description.prefix(200))")
        }
        self.id = id
        userPrincipalName = object["userPrincipalName"]?.stringValue
        displayName = object["displayName"]?.stringValue
        givenName = object["givenName"]?.stringValue
        surname = object["surname"]?.stringValue
        mail = object["mail"]?.stringValue
        mailNickname = object["mailNickname"]?.stringValue
        jobTitle = object["jobTitle"]?.stringValue
        department = object["department"]?.stringValue
        accountEnabled = object["accountEnabled"]?.boolValue
        userType = object["userType"]?.stringValue
        createdDateTime = try object["createdDateTime"]?.stringValue.map { try Date(graph: $0, field: "createdDateTime") }
        properties = object
    }
}

/// A group, as `microsoft.graph.group`.
public struct GraphGroup: Sendable, Hashable {
    /// What a group is for, read from `groupTypes`, `mailEnabled` and `securityEnabled`.
    public enum Kind: String, Sendable, Hashable {
        /// A security group (access control; no mailbox).
        case security
        /// A Microsoft 365 group (`groupTypes` has `Unified`: a mailbox, a team site).
        case microsoft365
        /// A mail-enabled security group (Exchange manages it; read-only in Graph).
        case mailEnabledSecurity
        /// A distribution list (Exchange manages it; read-only in Graph).
        case distribution
    }

    public var id: String
    public var displayName: String?
    public var description: String?
    public var mailNickname: String?
    public var mail: String?
    public var mailEnabled: Bool?
    public var securityEnabled: Bool?
    public var groupTypes: [String]
    /// The rule of a dynamic group (`groupTypes` has `DynamicMembership`).
    public var membershipRule: String?
    public var createdDateTime: Date?
    /// Every property of the answer.
    public var properties: [String: JSONValue]

    /// The properties this type maps, sent as `$select`.
    public static let selectedFields = ["id", "displayName", "description", "mailNickname", "mail", "mailEnabled", "securityEnabled", "groupTypes",
                                        "membershipRule", "createdDateTime"]

    /// The kind, from the flags.
    public var kind: Kind {
        if groupTypes.contains("Unified") { return .microsoft365 }
        switch (mailEnabled ?? false, securityEnabled ?? false) {
        case (true, true): return .mailEnabledSecurity
        case (true, false): return .distribution
        default: return .security
        }
    }

    /// Whether membership follows ``membershipRule`` (members cannot be added or removed by hand).
    public var isDynamic: Bool { groupTypes.contains("DynamicMembership") }

    init(json: JSONValue) throws {
        guard let object = json.objectValue, let id = object["id"]?.stringValue else {
            throw NimbusError(.internal, "Microsoft Graph answered a group without an id: \(json.description.prefix(200))")
        }
        self.id = id
        displayName = object["displayName"]?.stringValue
        description = object["description"]?.stringValue
        mailNickname = object["mailNickname"]?.stringValue
        mail = object["mail"]?.stringValue
        mailEnabled = object["mailEnabled"]?.boolValue
        securityEnabled = object["securityEnabled"]?.boolValue
        groupTypes = object["groupTypes"]?.arrayValue?.compactMap(\.stringValue) ?? []
        membershipRule = object["membershipRule"]?.stringValue
        createdDateTime = try object["createdDateTime"]?.stringValue.map { try Date(graph: $0, field: "createdDateTime") }
        properties = object
    }
}

/// A member of a group or a membership of a user: Graph answers `directoryObject`s whose
/// `@odata.type` says what each one is.
public enum GraphDirectoryObject: Sendable, Hashable {
    case user(GraphUser)
    case group(GraphGroup)
    /// A device, service principal, contact, directory role, administrative unit…: its type
    /// (`#microsoft.graph.servicePrincipal`), id and display name.
    case other(type: String, id: String, displayName: String?)

    /// The object id.
    public var id: String {
        switch self {
        case .user(let user): user.id
        case .group(let group): group.id
        case .other(_, let id, _): id
        }
    }

    init(json: JSONValue) throws {
        switch json["@odata.type"]?.stringValue {
        case "#microsoft.graph.user": self = .user(try GraphUser(json: json))
        case "#microsoft.graph.group": self = .group(try GraphGroup(json: json))
        case let type:
            guard let id = json["id"]?.stringValue else {
                throw NimbusError(.internal, "Microsoft Graph answered a directory object without an id: \(json.description.prefix(200))")
            }
            self = .other(type: type ?? "#microsoft.graph.directoryObject", id: id, displayName: json["displayName"]?.stringValue)
        }
    }
}

/// A user to create. Graph requires the five properties of the initialiser.
///
/// ```swift
/// let ada = try await directory.createUser(NewGraphUser(displayName: "Ada Lovelace", mailNickname: "ada",
///                                                      userPrincipalName: "ada@contoso.com", password: Secret(initialPassword)))
/// ```
public struct NewGraphUser: Sendable {
    public var displayName: String
    /// The mail alias: ASCII, none of `@ () \ [] " ; : < > , SPACE`, at most 64 characters.
    public var mailNickname: String
    /// `alias@verified-domain`.
    public var userPrincipalName: String
    /// The initial password (the tenant's password policy applies).
    public var password: Secret<String>
    /// Make the user choose a new password at first sign-in (the default).
    public var forceChangePasswordNextSignIn: Bool
    public var accountEnabled: Bool
    public var givenName: String?
    public var surname: String?
    public var jobTitle: String?
    public var department: String?

    public init(displayName: String, mailNickname: String, userPrincipalName: String, password: Secret<String>, forceChangePasswordNextSignIn: Bool = true,
                accountEnabled: Bool = true, givenName: String? = nil, surname: String? = nil, jobTitle: String? = nil, department: String? = nil) {
        self.displayName = displayName; self.mailNickname = mailNickname; self.userPrincipalName = userPrincipalName; self.password = password
        self.forceChangePasswordNextSignIn = forceChangePasswordNextSignIn; self.accountEnabled = accountEnabled
        self.givenName = givenName; self.surname = surname; self.jobTitle = jobTitle; self.department = department
    }
}

/// Changes to a user (`PATCH`): `nil` leaves a property as it is; ``Change/clear`` empties it.
public struct GraphUserChanges: Sendable {
    /// A new value, or `null`.
    public enum Change: Sendable, Hashable {
        case set(String)
        case clear
    }
    public var displayName: String?
    public var givenName: Change?
    public var surname: Change?
    public var jobTitle: Change?
    public var department: Change?
    public var accountEnabled: Bool?
    /// An administrator's password reset (needs the `User-PasswordProfile.ReadWrite.All` permission, or a
    /// role above the user's).
    public var password: (value: Secret<String>, forceChangeNextSignIn: Bool)?

    public init(displayName: String? = nil, givenName: Change? = nil, surname: Change? = nil, jobTitle: Change? = nil, department: Change? = nil,
                accountEnabled: Bool? = nil, password: (value: Secret<String>, forceChangeNextSignIn: Bool)? = nil) {
        self.displayName = displayName; self.givenName = givenName; self.surname = surname; self.jobTitle = jobTitle; self.department = department
        self.accountEnabled = accountEnabled; self.password = password
    }

    var body: [String: JSONValue] {
        var body: [String: JSONValue] = [:]
        func put(_ name: String, _ change: Change?) {
            switch change {
            case .set(let value): body[name] = .string(value)
            case .clear: body[name] = .null
            case nil: break
            }
        }
        if let displayName { body["displayName"] = .string(displayName) }
        put("givenName", givenName); put("surname", surname); put("jobTitle", jobTitle); put("department", department)
        if let accountEnabled { body["accountEnabled"] = .bool(accountEnabled) }
        if let password {
            body["passwordProfile"] = ["password": .string(password.value.reveal()), "forceChangePasswordNextSignIn": .bool(password.forceChangeNextSignIn)]
        }
        return body
    }
}

/// A group to create.
///
/// ```swift
/// let admins = try await directory.createGroup(NewGraphGroup(displayName: "Billing admins", mailNickname: "billing-admins"))
/// let everyoneInSales = NewGraphGroup(displayName: "Sales", mailNickname: "sales", membershipRule: #"user.department -eq "Sales""#)
/// ```
public struct NewGraphGroup: Sendable {
    public var displayName: String
    public var mailNickname: String
    public var description: String?
    /// `.security` (the default) or `.microsoft365`; Graph cannot create the two Exchange kinds.
    public var kind: GraphGroup.Kind
    /// A dynamic membership rule (needs Entra ID P1); processing starts `On`.
    public var membershipRule: String?

    public init(displayName: String, mailNickname: String, description: String? = nil, kind: GraphGroup.Kind = .security, membershipRule: String? = nil) {
        self.displayName = displayName; self.mailNickname = mailNickname; self.description = description; self.kind = kind; self.membershipRule = membershipRule
    }
}

/// One page of a list, with the total when the query was advanced (`@odata.count`).
public struct GraphPage<Element: Sendable>: Sendable {
    public var items: [Element]
    /// The number of matching objects, for advanced queries.
    public var count: Int?
    /// The next page (`@odata.nextLink`), for ``GraphCollection/page(after:)``.
    public var nextLink: String?
}

extension Date {
    /// A Graph date-time field, or `internal` naming it when it is not ISO 8601.
    init(graph text: String, field: String) throws {
        guard let date = Date(iso8601: text) else {
            throw NimbusError(.internal, "Microsoft Graph's \(field) \"\(text.prefix(40))\" is not an ISO 8601 date-time")
        }
        self = date
    }
}

enum GraphNames {
    /// Exchange's alias rule for `mailNickname`.
    static func checkMailNickname(_ nickname: String) throws {
        let forbidden = Set("@()\\[]\";:<>, ")
        guard (1...64).contains(nickname.count), nickname.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x21 && $0.value < 0x7f }),
              !nickname.contains(where: { forbidden.contains($0) }) else {
            throw NimbusError(.invalidArgument, "\"\(nickname.prefix(70))\" is not a mailNickname: 1–64 printable ASCII characters, none of @ ( ) \\ [ ] \" ; : < > , or space")
        }
    }

    /// `alias@domain`, with Graph's alias characters.
    static func checkUserPrincipalName(_ upn: String) throws {
        let parts = upn.split(separator: "@", omittingEmptySubsequences: false)
        let aliasCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.-_!#^~")
        guard parts.count == 2, (1...64).contains(parts[0].count), !parts[1].isEmpty, parts[1].contains("."),
              parts[0].allSatisfy({ aliasCharacters.contains($0) }), !parts[0].hasPrefix("."), !parts[0].hasSuffix(".") else {
            throw NimbusError(.invalidArgument, "\"\(upn.prefix(120))\" is not a userPrincipalName: alias@domain, the alias 1–64 of A–Z a–z 0–9 ' . - _ ! # ^ ~, not starting or ending with a dot")
        }
    }
}
