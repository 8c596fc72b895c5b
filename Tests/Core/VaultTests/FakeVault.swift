import Crypto
import Foundation
import NIOHTTP1
import NimbusCore
import NimbusTesting
import Synchronization

/// A Vault server for the KV v2 engine at `secret/` and the Transit engine at `transit/`, as the
/// Vault 1.15 API documentation describes them: token auth, `{"errors": [...]}` bodies, KV versions
/// with check-and-set and LIST, Transit aes256-gcm96 keys derived per context (HKDF-SHA256),
/// `vault:vN:` ciphertexts that really are AES-GCM and fail when altered. Every request is checked
/// against the committed extract of Vault's OpenAPI document first.
final class FakeVault: Sendable {
    let server: FakeHTTPServer
    let token = "s.fake-root-token"

    struct KVEntry {
        var versions: [Int: (data: JSONValue, created: Date)] = [:]
        var current = 0
    }

    struct State {
        var kv: [String: KVEntry] = [:]
        var keys: [String: [SymmetricKey]] = [:]
    }

    let state = Mutex(State())

    static let spec = Result { () throws -> OpenAPIRequestChecker in
        var checker = try OpenAPIRequestChecker.fixture("vault-kv2-transit", in: .module).get()
        checker.multiSegmentParameters = ["path"]
        return checker
    }

    static func errors(_ status: Int, _ messages: String...) -> FakeHTTPServer.Reply { .json(status, ["errors": .array(messages.map(JSONValue.string))]) }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func start() async throws -> FakeVault {
        let fake = FakeVault(server: try await FakeHTTPServer.start())
        let spec = try spec.get()
        fake.server.refuseRequests(failing: { spec.check($0).map(\.description) }) { problems in errors(400, problems.joined(separator: "; ")) }
        fake.routes()
        return fake
    }

    private init(server: FakeHTTPServer) { self.server = server }

    func authorized(_ request: FakeHTTPServer.CapturedRequest) -> Bool { request.header("X-Vault-Token") == token }

    /// The path after `/v1/<mount>/<area>/`, decoded.
    static func rest(_ request: FakeHTTPServer.CapturedRequest, after count: Int) -> String {
        request.path.split(separator: "/").dropFirst(count).map { $0.removingPercentEncoding ?? String($0) }.joined(separator: "/")
    }

    private func routes() {
        let guarded: (@escaping FakeHTTPServer.Handler) -> FakeHTTPServer.Handler = { handler in
            { request in self.authorized(request) ? try await handler(request) : Self.errors(403, "permission denied") }
        }
        // KV v2
        server.route(.GET, "/v1/secret/data/{path...}", handler: guarded { request in
            let path = Self.rest(request, after: 3)
            return self.state.withLock { state in
                guard let entry = state.kv[path], entry.current > 0 else { return Self.errors(404) }
                let number = request.queryItem("version").flatMap(Int.init) ?? entry.current
                guard let version = entry.versions[number] else { return Self.errors(404) }
                return .json(200, ["data": ["data": version.data, "metadata": ["created_time": .string(Self.timestamp(version.created)), "custom_metadata": .null,
                                                                               "deletion_time": "", "destroyed": false, "version": .number(Double(number))]]])
            }
        })
        server.route(.POST, "/v1/secret/data/{path...}", handler: guarded { request in
            let path = Self.rest(request, after: 3)
            let body = try request.json()
            guard case .object = body["data"] else { return Self.errors(400, "no data provided") }
            return self.state.withLock { state in
                var entry = state.kv[path] ?? KVEntry()
                if let cas = body["options"]?["cas"]?.numberValue, Int(cas) != entry.current {
                    return Self.errors(400, "check-and-set parameter did not match the current version")
                }
                entry.current += 1
                let now = Date()
                entry.versions[entry.current] = (body["data"]!, now)
                state.kv[path] = entry
                return .json(200, ["data": ["created_time": .string(Self.timestamp(now)), "custom_metadata": .null, "deletion_time": "", "destroyed": false,
                                            "version": .number(Double(entry.current))]])
            }
        })
        server.route(.GET, "/v1/secret/metadata/{path...}", handler: guarded { request in
            let path = Self.rest(request, after: 3)
            return self.state.withLock { state in
                if request.queryItem("list") == "true" {
                    let folder = path.isEmpty ? "" : (path.hasSuffix("/") ? path : path + "/")
                    var keys = Set<String>()
                    for name in state.kv.keys where name.hasPrefix(folder) {
                        let rest = name.dropFirst(folder.count)
                        keys.insert(rest.contains("/") ? String(rest[..<rest.firstIndex(of: "/")!]) + "/" : String(rest))
                    }
                    return keys.isEmpty ? Self.errors(404) : .json(200, ["data": ["keys": .array(keys.sorted().map(JSONValue.string))]])
                }
                guard let entry = state.kv[path] else { return Self.errors(404) }
                var versions: [String: JSONValue] = [:]
                for (number, version) in entry.versions {
                    versions[String(number)] = ["created_time": .string(Self.timestamp(version.created)), "deletion_time": "", "destroyed": false]
                }
                return .json(200, ["data": ["current_version": .number(Double(entry.current)), "max_versions": 0, "oldest_version": 0, "versions": .object(versions)]])
            }
        })
        server.route(.GET, "/v1/secret/metadata/", handler: guarded { request in   // LIST of the mount's root
            self.state.withLock { state in
                guard request.queryItem("list") == "true" else { return Self.errors(405) }
                let keys = Set(state.kv.keys.map { $0.contains("/") ? String($0[..<$0.firstIndex(of: "/")!]) + "/" : $0 })
                return keys.isEmpty ? Self.errors(404) : .json(200, ["data": ["keys": .array(keys.sorted().map(JSONValue.string))]])
            }
        })
        server.route(.DELETE, "/v1/secret/metadata/{path...}", handler: guarded { request in
            let path = Self.rest(request, after: 3)
            self.state.withLock { _ = $0.kv.removeValue(forKey: path) }
            return .text(204, "")
        })
        // Transit
        server.route(.POST, "/v1/transit/keys/{name}", handler: guarded { request in
            let name = Self.rest(request, after: 3)
            let body = try request.json()
            guard body["type"]?.stringValue == "aes256-gcm96", body["derived"]?.boolValue == true else {
                return Self.errors(400, "the fake supports derived aes256-gcm96 keys only")
            }
            self.state.withLock { state in if state.keys[name] == nil { state.keys[name] = [SymmetricKey(size: .bits256)] } }
            return .text(204, "")
        })
        server.route(.POST, "/v1/transit/keys/{name}/rotate", handler: guarded { request in
            let name = request.path.split(separator: "/")[3].removingPercentEncoding ?? ""
            return self.state.withLock { state in
                guard state.keys[name] != nil else { return Self.errors(400, "encryption key not found") }
                state.keys[name]!.append(SymmetricKey(size: .bits256))
                return .text(204, "")
            }
        })
        server.route(.POST, "/v1/transit/datakey/plaintext/{name}", handler: guarded { request in
            let name = Self.rest(request, after: 4)
            let body = try request.json()
            let plaintext = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
            return try self.seal(plaintext, key: name, context: body["context"]?.stringValue) { ciphertext, version in
                ["data": ["plaintext": .string(Data(plaintext).base64EncodedString()), "ciphertext": .string(ciphertext), "key_version": .number(Double(version))]]
            }
        })
        server.route(.POST, "/v1/transit/encrypt/{name}", handler: guarded { request in
            let name = Self.rest(request, after: 3)
            let body = try request.json()
            guard let plaintext = body["plaintext"]?.stringValue.flatMap({ Data(base64Encoded: $0) }) else { return Self.errors(400, "failed to base64-decode plaintext") }
            return try self.seal(Array(plaintext), key: name, context: body["context"]?.stringValue) { ciphertext, version in
                ["data": ["ciphertext": .string(ciphertext), "key_version": .number(Double(version))]]
            }
        })
        server.route(.POST, "/v1/transit/decrypt/{name}", handler: guarded { request in
            let name = Self.rest(request, after: 3)
            let body = try request.json()
            switch self.open(body["ciphertext"]?.stringValue ?? "", key: name, context: body["context"]?.stringValue) {
            case .success(let plaintext): return .json(200, ["data": ["plaintext": .string(Data(plaintext).base64EncodedString())]])
            case .failure(let refused): return refused.reply
            }
        })
        server.route(.POST, "/v1/transit/rewrap/{name}", handler: guarded { request in
            let name = Self.rest(request, after: 3)
            let body = try request.json()
            switch self.open(body["ciphertext"]?.stringValue ?? "", key: name, context: body["context"]?.stringValue) {
            case .success(let plaintext):
                return try self.seal(plaintext, key: name, context: body["context"]?.stringValue) { ciphertext, version in
                    ["data": ["ciphertext": .string(ciphertext), "key_version": .number(Double(version))]]
                }
            case .failure(let refused): return refused.reply
            }
        })
    }

    struct Refused: Error { let reply: FakeHTTPServer.Reply }

    func derived(_ key: SymmetricKey, context: String?) throws -> SymmetricKey {
        guard let context, let bytes = Data(base64Encoded: context), !bytes.isEmpty else { throw Refused(reply: Self.errors(400, "missing 'context' for key derivation; the key was marked for derivation")) }
        return HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: bytes, outputByteCount: 32)
    }

    func seal(_ plaintext: [UInt8], key name: String, context: String?, answer: (String, Int) -> JSONValue) throws -> FakeHTTPServer.Reply {
        guard let versions = state.withLock({ $0.keys[name] }) else { return Self.errors(400, "encryption key not found") }
        do {
            let sealed = try AES.GCM.seal(plaintext, using: try derived(versions.last!, context: context))
            let ciphertext = "vault:v\(versions.count):" + Data(sealed.combined!).base64EncodedString()
            return .json(200, answer(ciphertext, versions.count))
        } catch let refused as Refused {
            return refused.reply
        }
    }

    func open(_ ciphertext: String, key name: String, context: String?) -> Result<[UInt8], Refused> {
        guard let versions = state.withLock({ $0.keys[name] }) else { return .failure(Refused(reply: Self.errors(400, "encryption key not found"))) }
        let parts = ciphertext.split(separator: ":", maxSplits: 2)
        guard parts.count == 3, parts[0] == "vault", parts[1].hasPrefix("v"), let version = Int(parts[1].dropFirst()), (1...versions.count).contains(version),
              let combined = Data(base64Encoded: String(parts[2])) else {
            return .failure(Refused(reply: Self.errors(400, "invalid ciphertext: could not decode version or payload")))
        }
        do {
            let box = try AES.GCM.SealedBox(combined: combined)
            return .success(Array(try AES.GCM.open(box, using: try derived(versions[version - 1], context: context))))
        } catch let refused as Refused {
            return .failure(refused)
        } catch {
            return .failure(Refused(reply: Self.errors(400, "cipher: message authentication failed")))
        }
    }
}
