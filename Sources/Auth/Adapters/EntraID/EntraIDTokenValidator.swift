import Foundation
import NimbusAuth
import NimbusCore

/// Who an Entra ID access or ID token speaks for.
public struct EntraIdentity: Sendable, CustomStringConvertible {
    /// The directory object id (`oid`): the stable id of the user or service principal across apps.
    public var objectID: String
    /// The tenant the principal signed in from (`tid`).
    public var tenantID: String
    /// `sub` (pairwise: different for each app).
    public var subject: String
    /// `preferred_username` (v2) or `upn`/`unique_name` (v1), for display only: it can change.
    public var username: String?
    /// `name`.
    public var name: String?
    /// App roles (`roles`).
    public var roles: [String]
    /// Delegated scopes (`scp`), split.
    public var scopes: [String]
    /// Group object ids (`groups`), when the app asks for them.
    public var groups: [String]
    /// True when the token lists too many groups to carry (`_claim_names.groups` / `hasgroups`): read them from Graph.
    public var groupsOverage: Bool
    /// The client application (`azp` in v2, `appid` in v1).
    public var clientAppID: String?
    /// A token an application got for itself (client credentials), not for a user.
    public var isAppOnly: Bool
    /// `1.0` or `2.0`.
    public var version: String
    /// All claims.
    public var claims: JWTClaims

    public var description: String { "EntraIdentity(oid: \(objectID), tid: \(tenantID), v\(version), roles: \(roles), scopes: \(scopes)\(isAppOnly ? ", app-only" : ""))" }
}

/// Validates Microsoft Entra ID tokens for an API — v1 (`https://sts.windows.net/{tid}/`) and v2
/// (`https://login.microsoftonline.com/{tid}/v2.0`) issuers, single- and multi-tenant apps — the
/// way Microsoft's identity platform documentation prescribes:
///
/// - signature with the tenant's (or `common`'s) JWKS, RS256 only, `kid` rotation handled by ``RemoteJWKS``;
/// - `ver` decides which issuer form is valid, and the issuer must be exactly that form for the
///   token's own `tid` (the `{tenantid}` rule multi-tenant apps must apply themselves);
/// - single-tenant: `tid` must be the app's tenant; multi-tenant: `tid` must be in
///   ``Configuration/allowedTenants`` when that list is set, and personal Microsoft accounts
///   (tenant `9188040d-6c67-4c5b-b112-36a304b66dad`) only when ``Configuration/allowPersonalAccounts``;
/// - `aud` must be one of the app's ids (the client id, and `api://…` App ID URIs);
/// - `exp`/`nbf` with leeway; tokens without `oid` or `tid` are refused.
///
/// ```swift
/// let entra = EntraIDTokenValidator(configuration: .init(tenant: "contoso.onmicrosoft.com-guid", audiences: ["api://orders", clientID]))
/// let who = try await entra.validate(bearer)          // who.roles, who.scopes, who.objectID
/// ```
public struct EntraIDTokenValidator: Sendable {
    /// Settings.
    public struct Configuration: Sendable {
        /// The app's tenant id (a GUID), or `organizations`/`common` for a multi-tenant app.
        public var tenant: String
        /// Accepted `aud` values.
        public var audiences: Set<String>
        /// For a multi-tenant app: the tenants whose users may call (`nil`: any organisation).
        public var allowedTenants: Set<String>?
        /// Whether personal Microsoft accounts may call (multi-tenant `common` apps).
        public var allowPersonalAccounts: Bool
        /// Accepted token versions.
        public var versions: Set<String>
        /// Clock skew accepted.
        public var leeway: Duration
        /// The login host (`https://login.microsoftonline.com`; sovereign clouds differ).
        public var authority: String

        /// Creates settings.
        public init(tenant: String, audiences: Set<String>, allowedTenants: Set<String>? = nil, allowPersonalAccounts: Bool = false,
                    versions: Set<String> = ["1.0", "2.0"], leeway: Duration = .seconds(300), authority: String = "https://login.microsoftonline.com") {
            self.tenant = tenant
            self.audiences = audiences
            self.allowedTenants = allowedTenants
            self.allowPersonalAccounts = allowPersonalAccounts
            self.versions = versions
            self.leeway = leeway
            self.authority = authority.trimmingSuffix("/")
        }

        /// Whether the app takes users from more than one tenant.
        public var isMultiTenant: Bool { ["common", "organizations", "consumers"].contains(tenant.lowercased()) }
    }

    /// The personal Microsoft accounts tenant.
    public static let personalAccountsTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

    /// The settings.
    public let configuration: Configuration
    /// The signing keys.
    public let keys: any JWTKeyProvider
    private let now: @Sendable () -> Date

    /// A validator whose keys come from `{authority}/{tenant}/discovery/v2.0/keys`.
    public init(configuration: Configuration, now: @escaping @Sendable () -> Date = { Date() }) {
        self.init(configuration: configuration, keys: RemoteJWKS(url: "\(configuration.authority)/\(configuration.tenant)/discovery/v2.0/keys"), now: now)
    }

    /// A validator with its own key source (tests, a proxy).
    public init(configuration: Configuration, keys: any JWTKeyProvider, now: @escaping @Sendable () -> Date = { Date() }) {
        self.configuration = configuration
        self.keys = keys
        self.now = now
    }

    /// The issuer a token of `version` from tenant `tid` must carry.
    public func issuer(version: String, tenant tid: String) -> String {
        version == "1.0" ? "https://sts.windows.net/\(tid)/" : "\(configuration.authority)/\(tid)/v2.0"
    }

    static func reject(_ reason: JWTRejection.Reason, _ message: String) -> NimbusError {
        NimbusError(.unauthenticated, "Entra ID token refused: \(message)", underlying: JWTRejection(reason))
    }

    static let guid = #"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"#

    /// Validates `token` and says who it is for.
    /// - Throws: `unauthenticated` with a ``JWTRejection`` naming the failed rule.
    public func validate(_ token: String) async throws -> EntraIdentity {
        // Signature, algorithm, audience and time first; the issuer depends on claims, so it is checked after.
        let verifier = JWTVerifier(keys: keys, configuration: .init(issuers: [], audiences: configuration.audiences, algorithms: [.rs256], leeway: configuration.leeway,
                                                                    requiredClaims: ["iss", "tid", "oid", "ver"]), now: now)
        let claims = try await verifier.verify(token).claims
        guard let version = claims["ver"]?.stringValue, configuration.versions.contains(version) else {
            throw Self.reject(.wrongType, "token version \(claims["ver"]?.stringValue ?? "(none)") is not accepted (accepted: \(configuration.versions.sorted()))")
        }
        guard let tid = claims["tid"]?.stringValue, tid.range(of: Self.guid, options: .regularExpression) != nil else {
            throw Self.reject(.missingClaim, "tid is not a tenant id")
        }
        guard claims.issuer == issuer(version: version, tenant: tid) else {
            throw Self.reject(.wrongIssuer, "the issuer \(claims.issuer.map { "\"\($0.prefix(100))\"" } ?? "(none)") is not the v\(version) issuer of the token's own tenant \(tid)")
        }
        if configuration.isMultiTenant {
            if tid == Self.personalAccountsTenant, !configuration.allowPersonalAccounts {
                throw Self.reject(.wrongIssuer, "personal Microsoft accounts are not accepted")
            }
            if let allowed = configuration.allowedTenants, !allowed.contains(tid), !(tid == Self.personalAccountsTenant && configuration.allowPersonalAccounts) {
                throw Self.reject(.wrongIssuer, "tenant \(tid) is not among the tenants this app accepts")
            }
        } else if tid.lowercased() != configuration.tenant.lowercased() {
            throw Self.reject(.wrongIssuer, "the token is from tenant \(tid), this app is single-tenant in \(configuration.tenant)")
        }
        guard let oid = claims["oid"]?.stringValue, let subject = claims.subject else { throw Self.reject(.missingClaim, "the token has no oid or sub") }
        let scopes = claims["scp"]?.stringValue?.split(separator: " ").map(String.init) ?? []
        let roles = claims["roles"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let overage = claims["_claim_names"]?["groups"] != nil || claims["hasgroups"]?.boolValue == true
        let appOnly = claims["idtyp"]?.stringValue == "app" || (scopes.isEmpty && claims["scp"] == nil && (claims["upn"] == nil && claims["preferred_username"] == nil && claims["unique_name"] == nil))
        return EntraIdentity(objectID: oid, tenantID: tid, subject: subject,
                             username: (claims["preferred_username"] ?? claims["upn"] ?? claims["unique_name"])?.stringValue, name: claims["name"]?.stringValue,
                             roles: roles, scopes: scopes, groups: claims["groups"]?.arrayValue?.compactMap(\.stringValue) ?? [], groupsOverage: overage,
                             clientAppID: (claims["azp"] ?? claims["appid"])?.stringValue, isAppOnly: appOnly, version: version, claims: claims)
    }

    /// Validates `token` and checks it carries every one of `roles` (app permissions) or, for a
    /// user token, every one of `scopes`.
    /// - Throws: as ``validate(_:)``; `permissionDenied` naming what is missing.
    public func validate(_ token: String, requiringScopes scopes: Set<String> = [], roles: Set<String> = []) async throws -> EntraIdentity {
        let identity = try await validate(token)
        let missingRoles = roles.subtracting(identity.roles)
        let missingScopes = identity.isAppOnly ? [] : scopes.subtracting(identity.scopes)
        guard missingRoles.isEmpty, missingScopes.isEmpty, !(identity.isAppOnly && !scopes.isEmpty && roles.isEmpty) else {
            let missing = (missingRoles.map { "role \($0)" } + missingScopes.map { "scope \($0)" }).sorted()
            throw NimbusError(.permissionDenied, "the token lacks \(missing.isEmpty ? "a user: app-only tokens carry no scopes" : missing.joined(separator: ", "))")
        }
        return identity
    }
}
