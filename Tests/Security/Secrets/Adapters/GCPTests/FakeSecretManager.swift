import Foundation
import NIOHTTP1
import NimbusCore
import NimbusTesting
import Synchronization

/// Secret Manager v1 over REST as its protos and documentation describe it: secrets with
/// automatic replication, numbered versions (`ENABLED`/`DISABLED`/`DESTROYED`), `latest`,
/// `:access` with the payload's CRC32C, paging, bearer auth, and Google's error model. Every
/// request body is checked against the committed `resources.proto`/`service.proto` first.
final class FakeSecretManager: Sendable {
    let server: FakeHTTPServer
    let project = "nimbus-test"
    let token = "ya29.fake-secret-manager"

    struct Version { var data: [UInt8]; var state: String; var created: Date }
    struct State { var secrets: [String: [Version]] = [:] }
    let state = Mutex(State())

    static let protos = Result { try ProtoJSONChecker(fixtures: ["resources", "service"], in: Bundle.module) }

    var endpoint: String { server.baseURL + "/v1" }
    var specMismatches: [String] { server.refusals.flatMap(\.problems) }

    static func start() async throws -> FakeSecretManager {
        let fake = FakeSecretManager(server: try await FakeHTTPServer.start())
        let checker = try protos.get()
        fake.server.refuseRequests(failing: { fake.departures($0, checker) }) { problems in error(400, "INVALID_ARGUMENT", problems.joined(separator: "; ")) }
        fake.routes()
        return fake
    }

    private init(server: FakeHTTPServer) { self.server = server }

    func departures(_ request: FakeHTTPServer.CapturedRequest, _ checker: ProtoJSONChecker) -> [String] {
        var found: [String] = []
        if request.header("authorization") != "Bearer \(token)" { return [] }   // answered 401 by the routes
        let last = String(request.path.split(separator: "/").last ?? "")
        switch request.method {
        case "POST" where last.hasSuffix(":addVersion"):
            found = checker.check((try? request.json()) ?? .null, message: "AddSecretVersionRequest", pathFields: ["parent"])
        case "POST" where last == "secrets":
            found = checker.check((try? request.json()) ?? .null, message: "Secret")
            if request.queryItem("secretId") == nil { found.append("CreateSecret needs the secretId query parameter") }
            for (name, _) in request.query where name != "secretId" { found.append("query.\(name) is not a field of CreateSecretRequest") }
        case "GET", "DELETE":
            for (name, _) in request.query where !["pageSize", "pageToken", "filter"].contains(name) { found.append("query.\(name) is not a field of the request") }
        default:
            found.append("\(request.method) \(request.path) is not a Secret Manager method the fake knows")
        }
        if request.method == "POST", request.header("content-type")?.hasPrefix("application/json") != true { found.append("the body is not sent as application/json") }
        return found
    }

    static func error(_ code: Int, _ status: String, _ message: String) -> FakeHTTPServer.Reply {
        .json(code, ["error": ["code": .number(Double(code)), "message": .string(message), "status": .string(status)]])
    }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    func segments(_ request: FakeHTTPServer.CapturedRequest) -> [String] {
        request.path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
    }

    func versionJSON(_ id: String, _ number: Int, _ version: Version) -> JSONValue {
        ["name": .string("projects/\(project)/secrets/\(id)/versions/\(number)"), "createTime": .string(Self.time(version.created)), "state": .string(version.state),
         "replicationStatus": ["automatic": [:]], "etag": .string("\"\(number)\"")]
    }

    private func routes() {
        let authorized: (@escaping FakeHTTPServer.Handler) -> FakeHTTPServer.Handler = { handler in
            { request in
                request.header("authorization") == "Bearer \(self.token)" ? try await handler(request)
                    : Self.error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
            }
        }
        server.route(.POST, "/v1/projects/{p}/secrets", handler: authorized { request in
            let id = request.queryItem("secretId") ?? ""
            guard id.range(of: #"^[A-Za-z0-9_-]{1,255}$"#, options: .regularExpression) != nil else {
                return Self.error(400, "INVALID_ARGUMENT", "Secret ID [\(id)] must match [\\p{L}\\p{N}_-]{1,255}.")
            }
            return self.state.withLock { state in
                guard state.secrets[id] == nil else { return Self.error(409, "ALREADY_EXISTS", "Secret [projects/\(self.project)/secrets/\(id)] already exists.") }
                state.secrets[id] = []
                return .json(200, ["name": .string("projects/\(self.project)/secrets/\(id)"), "replication": ["automatic": [:]], "createTime": .string(Self.time(Date()))])
            }
        })
        server.route(.POST, "/v1/projects/{p}/secrets/{s}", handler: authorized { request in
            let last = self.segments(request).last ?? ""
            guard last.hasSuffix(":addVersion") else { return Self.error(404, "NOT_FOUND", "unknown method") }
            let id = String(last.dropLast(":addVersion".count))
            let body = try request.json()
            guard let data = body["payload"]?["data"]?.stringValue.flatMap({ Data(base64Encoded: $0) }) else { return Self.error(400, "INVALID_ARGUMENT", "payload.data is required") }
            if let crc = body["payload"]?["dataCrc32c"]?.stringValue, UInt32(crc) != CRC32C.checksum(Array(data)) {
                return Self.error(400, "INVALID_ARGUMENT", "Checksum mismatch: the payload's dataCrc32c does not match its data.")
            }
            return self.state.withLock { state in
                guard state.secrets[id] != nil else { return Self.error(404, "NOT_FOUND", "Secret [projects/\(self.project)/secrets/\(id)] not found.") }
                let version = Version(data: Array(data), state: "ENABLED", created: Date())
                state.secrets[id]!.append(version)
                return .json(200, self.versionJSON(id, state.secrets[id]!.count, version))
            }
        })
        server.route(.GET, "/v1/projects/{p}/secrets/{s}/versions/{v}", handler: authorized { request in
            let parts = self.segments(request)
            let id = parts[4], last = parts[6]
            guard last.hasSuffix(":access") else { return Self.error(404, "NOT_FOUND", "unknown method") }
            let wanted = String(last.dropLast(":access".count))
            return self.state.withLock { state in
                guard let versions = state.secrets[id] else { return Self.error(404, "NOT_FOUND", "Secret [projects/\(self.project)/secrets/\(id)] not found or has no versions.") }
                let number = wanted == "latest" ? versions.count : (Int(wanted) ?? 0)
                guard (1...max(1, versions.count)).contains(number), number <= versions.count else {
                    return Self.error(404, "NOT_FOUND", "Secret Version [projects/\(self.project)/secrets/\(id)/versions/\(wanted)] not found.")
                }
                let version = versions[number - 1]
                guard version.state == "ENABLED" else {
                    return Self.error(400, "FAILED_PRECONDITION", "Secret Version [projects/\(self.project)/secrets/\(id)/versions/\(number)] is in \(version.state) state.")
                }
                return .json(200, ["name": .string("projects/\(self.project)/secrets/\(id)/versions/\(number)"),
                                   "payload": ["data": .string(Data(version.data).base64EncodedString()), "dataCrc32c": .string(String(CRC32C.checksum(version.data)))]])
            }
        })
        server.route(.GET, "/v1/projects/{p}/secrets/{s}/versions", handler: authorized { request in
            let id = self.segments(request)[4]
            let size = request.queryItem("pageSize").flatMap(Int.init) ?? 25, start = request.queryItem("pageToken").flatMap(Int.init) ?? 0
            return self.state.withLock { state in
                guard let versions = state.secrets[id] else { return Self.error(404, "NOT_FOUND", "Secret [projects/\(self.project)/secrets/\(id)] not found.") }
                let all = versions.enumerated().reversed().map { self.versionJSON(id, $0.offset + 1, $0.element) }
                let page = Array(all.dropFirst(start).prefix(size))
                var answer: [String: JSONValue] = ["versions": .array(page), "totalSize": .number(Double(all.count))]
                if start + size < all.count { answer["nextPageToken"] = .string(String(start + size)) }
                return .json(200, .object(answer))
            }
        })
        server.route(.GET, "/v1/projects/{p}/secrets", handler: authorized { request in
            let size = request.queryItem("pageSize").flatMap(Int.init) ?? 25, start = request.queryItem("pageToken").flatMap(Int.init) ?? 0
            return self.state.withLock { state in
                let all = state.secrets.keys.sorted().map { JSONValue.object(["name": .string("projects/\(self.project)/secrets/\($0)"), "replication": ["automatic": [:]]]) }
                let page = Array(all.dropFirst(start).prefix(size))
                var answer: [String: JSONValue] = ["secrets": .array(page), "totalSize": .number(Double(all.count))]
                if start + size < all.count { answer["nextPageToken"] = .string(String(start + size)) }
                return .json(200, .object(answer))
            }
        })
        server.route(.DELETE, "/v1/projects/{p}/secrets/{s}", handler: authorized { request in
            let id = self.segments(request)[4]
            return self.state.withLock { state in
                state.secrets.removeValue(forKey: id) == nil ? Self.error(404, "NOT_FOUND", "Secret [projects/\(self.project)/secrets/\(id)] not found.") : .json(200, [:])
            }
        })
    }

    /// Disables a version, as the console would.
    func disable(_ id: String, version: Int) { state.withLock { $0.secrets[id]?[version - 1].state = "DISABLED" } }
}
