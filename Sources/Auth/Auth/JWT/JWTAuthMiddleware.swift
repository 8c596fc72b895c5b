import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

/// A request context that carries the caller's verified token.
public protocol JWTAuthRequestContext: RequestContext {
    /// The verified token, set by ``JWTAuthMiddleware``.
    var token: VerifiedJWT? { get set }
}

/// A basic request context with a ``JWTAuthRequestContext/token``.
public struct JWTAuthContext: JWTAuthRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var token: VerifiedJWT?

    public init(source: Source) {
        coreContext = .init(source: source)
        token = nil
    }
}

/// Hummingbird middleware that admits a request only with a valid bearer JWT (RFC 6750) carrying
/// the required scopes and roles, and hands the verified token to the handlers in the context.
///
/// ```swift
/// let router = Router(context: JWTAuthContext.self)
/// router.group("orders")
///     .add(middleware: JWTAuthMiddleware(verifier: verifier, scopes: ["orders:read"]))
///     .get { _, context in "hello \(context.token?.claims.subject ?? "")" }
/// ```
///
/// A missing or refused token answers 401 with `WWW-Authenticate: Bearer error="invalid_token"`;
/// a valid token lacking a scope or role answers 403 with `error="insufficient_scope"`. The reason is
/// in the header's `error_description`; the token itself is never echoed or logged.
public struct JWTAuthMiddleware<Context: JWTAuthRequestContext>: RouterMiddleware {
    /// The verifier.
    public let verifier: JWTVerifier
    /// Scopes the token must grant (all of them).
    public let scopes: Set<String>
    /// Roles the token must hold (all of them), read from ``rolesClaim``.
    public let roles: Set<String>
    /// The claim holding roles: a list or a space-separated string (`roles`; Keycloak's `realm_access.roles` via a dotted path).
    public let rolesClaim: String
    /// The realm named in `WWW-Authenticate`.
    public let realm: String

    /// Creates the middleware.
    public init(verifier: JWTVerifier, scopes: Set<String> = [], roles: Set<String> = [], rolesClaim: String = "roles", realm: String = "nimbus") {
        self.verifier = verifier
        self.scopes = scopes
        self.roles = roles
        self.rolesClaim = rolesClaim
        self.realm = realm
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            return challenge(.unauthorized, error: nil, description: "a bearer token is required")
        }
        let token = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        let verified: VerifiedJWT
        do {
            verified = try await verifier.verify(token)
        } catch let error as NimbusError where error.code == .unauthenticated {
            return challenge(.unauthorized, error: "invalid_token", description: (error.underlying as? JWTRejection)?.reason.rawValue ?? "invalid token")
        }
        let missingScopes = scopes.subtracting(verified.claims.scopes)
        let missingRoles = roles.subtracting(Self.roles(in: verified.claims, claim: rolesClaim))
        guard missingScopes.isEmpty, missingRoles.isEmpty else {
            return challenge(.forbidden, error: "insufficient_scope",
                             description: missingScopes.isEmpty ? "a role is missing" : "a scope is missing",
                             scope: scopes.sorted().joined(separator: " "))
        }
        var context = context
        context.token = verified
        return try await next(request, context)
    }

    /// The roles a token holds under `claim` (a dotted path for nested claims).
    public static func roles(in claims: JWTClaims, claim: String) -> Set<String> {
        let path = claim.split(separator: ".").map(String.init)
        var value = path.first.flatMap { claims[$0] }
        for step in path.dropFirst() { value = value?[step] }
        if let text = value?.stringValue { return Set(text.split(separator: " ").map(String.init)) }
        return Set(value?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    private func challenge(_ status: HTTPResponse.Status, error: String?, description: String, scope: String? = nil) -> Response {
        var parts = ["realm=\"\(realm)\""]
        if let error { parts.append("error=\"\(error)\"") }
        parts.append("error_description=\"\(description)\"")
        if let scope, !scope.isEmpty { parts.append("scope=\"\(scope)\"") }
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = "Bearer " + parts.joined(separator: ", ")
        headers[.contentType] = "application/json"
        let body = JSONValue.object(["error": .string(error ?? "invalid_request"), "error_description": .string(description)]).description
        return Response(status: status, headers: headers, body: .init(byteBuffer: .init(string: body)))
    }
}
