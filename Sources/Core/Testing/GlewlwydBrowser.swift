import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NimbusCore

/// The user's side of a sign-in at glewlwyd: a browser session (cookie), the sign-in, the consent,
/// and the authorization URL followed to its redirect — what glewlwyd's login page does.
public struct GlewlwydBrowser: Sendable {
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// glewlwyd's API root (`…/api`).
    public let api: String
    /// The session cookie, once signed in.
    public var cookie = ""

    /// A browser for the glewlwyd peer (its admin URL from `scripts/peers`).
    public init() throws {
        guard let api = Peer.setting("NIMBUS_PEER_GLEWLWYD_ADMIN_URL") else { throw NimbusError(.failedPrecondition, "glewlwyd's admin URL is not set") }
        self.api = api
    }

    /// Sends a request with the session cookie; relative URLs are under ``api``.
    public func send(_ method: HTTPMethod, _ url: String, json: JSONValue? = nil) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: url.hasPrefix("http") ? url : api + url)
        request.method = method
        if !cookie.isEmpty { request.headers.add(name: "Cookie", value: cookie) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json.description))
        }
        let response = try await Self.client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers, String(buffer: body))
    }

    /// Signs in with a password (glewlwyd's `/auth/`).
    public mutating func signIn(_ username: String, _ password: String) async throws {
        let answer = try await send(.POST, "/auth/", json: ["username": .string(username), "password": .string(password)])
        guard answer.status == 200, let setCookie = answer.headers.first(name: "Set-Cookie") else {
            throw NimbusError(.unauthenticated, "glewlwyd refused the sign-in of \(username): \(answer.status) \(answer.body)")
        }
        cookie = String(setCookie.split(separator: ";")[0])
    }

    /// Grants `scopes` to `clientID` for the signed-in user.
    public func consent(_ clientID: String, scopes: [String]) async throws {
        let answer = try await send(.PUT, "/auth/grant/\(clientID)", json: ["scope": .string(scopes.joined(separator: " "))])
        guard answer.status == 200 else { throw NimbusError(.internal, "glewlwyd refused the consent: \(answer.status) \(answer.body)") }
    }

    /// Follows the authorization URL as the login page would (`g_continue`) and returns the redirect.
    public func authorize(_ url: String) async throws -> String {
        let answer = try await send(.GET, url + "&g_continue")
        guard answer.status == 302, let location = answer.headers.first(name: "Location") else {
            throw NimbusError(.internal, "glewlwyd answered the authorization with \(answer.status) \(answer.body.prefix(300))")
        }
        return location
    }
}

