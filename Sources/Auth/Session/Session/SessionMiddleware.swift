import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore
import Synchronization

/// A request context that carries the session.
public protocol SessionRequestContext: RequestContext {
    /// The request's session, loaded by ``SessionMiddleware`` (`nil`: none or ended).
    var session: Session? { get set }
    /// Where a handler puts the `Set-Cookie` values it produced (from `login`, `rotate`, `destroy`);
    /// the middleware sends them. A reference, so what the handler adds reaches the middleware.
    var sessionCookies: SessionCookieJar { get }
}

/// The `Set-Cookie` values a request's handlers produced.
public final class SessionCookieJar: Sendable {
    private let values = Mutex<[String]>([])
    /// An empty jar.
    public init() {}
    /// Adds a `Set-Cookie` value.
    public func send(_ setCookie: String) { values.withLock { $0.append(setCookie) } }
    /// What was added.
    public var cookies: [String] { values.withLock { $0 } }
}

/// A basic request context with a session.
public struct SessionContext: SessionRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var session: Session?
    public let sessionCookies = SessionCookieJar()

    public init(source: Source) {
        coreContext = .init(source: source)
        session = nil
    }
}

/// Loads the session named by the request's cookie into the context, and sends the cookies the
/// handler set (a sign-in's new session, a sign-out's cleared cookie). With `requireCSRF`, requests
/// with unsafe methods (POST, PUT, PATCH, DELETE) must carry the session's CSRF token in
/// `X-CSRF-Token`, or get 403.
///
/// ```swift
/// let router = Router(context: SessionContext.self)
/// router.add(middleware: SessionMiddleware(sessions: sessions))
/// router.post("/login") { request, context in
///     let (_, cookie) = try await sessions.login(context.session, userID: try await checkPassword(request))
///     context.sessionCookies.send(cookie)
///     return Response(status: .noContent)
/// }
/// ```
public struct SessionMiddleware<Context: SessionRequestContext>: RouterMiddleware {
    /// The sessions.
    public let sessions: SessionManager
    /// Whether unsafe methods need the CSRF token.
    public let requireCSRF: Bool
    /// The header carrying the CSRF token.
    public let csrfHeader: HTTPField.Name

    /// Creates the middleware.
    public init(sessions: SessionManager, requireCSRF: Bool = true, csrfHeader: HTTPField.Name = HTTPField.Name("X-CSRF-Token")!) {
        self.sessions = sessions
        self.requireCSRF = requireCSRF
        self.csrfHeader = csrfHeader
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.session = try await sessions.load(cookieHeader: request.headers[.cookie])
        if requireCSRF, ![.get, .head, .options, .trace].contains(request.method), let session = context.session,
           !sessions.verifyCSRF(request.headers[csrfHeader], for: session) {
            return Response(status: .forbidden, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: .init(string: #"{"error":"csrf","error_description":"this request needs the session's CSRF token"}"#)))
        }
        var response = try await next(request, context)
        for cookie in context.sessionCookies.cookies { response.headers.append(HTTPField(name: .setCookie, value: cookie)) }
        return response
    }
}

/// The signed double-submit cookie pattern (OWASP) for requests without a server-side session: a
/// random value MAC'd with the server's key and bound to something of the caller's (a session id,
/// a client id), sent both as a cookie and in a header; a cross-site attacker can make the browser
/// send the cookie but cannot read it to copy it into the header, nor forge one.
///
/// ```swift
/// let csrf = DoubleSubmitCSRF(key: key)
/// let token = csrf.issue(binding: visitorID)        // Set-Cookie: csrf=<token>; SameSite=Strict; Secure
/// guard csrf.verify(cookie: cookieValue, header: headerValue, binding: visitorID) else { return .forbidden }
/// ```
public struct DoubleSubmitCSRF: Sendable {
    let key: SessionSigningKey

    /// Tokens MAC'd with `key`.
    public init(key: SessionSigningKey) { self.key = key }

    /// A new token bound to `binding`.
    public func issue(binding: String) -> String {
        let random = SessionManager.newID()
        return random + "." + Base64URL.encode(key.mac("\(binding.utf8.count):\(binding)!\(random)"))
    }

    /// Whether the header repeats the cookie exactly and the cookie is a token this server issued for `binding`.
    public func verify(cookie: String?, header: String?, binding: String) -> Bool {
        guard let cookie, let header, ConstantTime.equals(Array(cookie.utf8), Array(header.utf8)) else { return false }
        let parts = cookie.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let mac = Base64URL.decode(parts[1]) else { return false }
        return ConstantTime.equals(mac, key.mac("\(binding.utf8.count):\(binding)!\(parts[0])"))
    }
}
