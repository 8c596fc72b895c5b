import Crypto
import Foundation
import NIOHTTP1
import NimbusCore
import NimbusTesting
import Synchronization

/// Cloud KMS v1 over REST as its protos and documentation describe it: symmetric crypto keys
/// with versions and a primary, `:encrypt`/`:decrypt` with additional authenticated data and the
/// CRC32C fields (checked on the way in, filled on the way out), bearer auth, Google's error model.
/// Ciphertexts are real AES-256-GCM under the version's key, prefixed by the version number, so
/// an altered byte or another context fails like the service does. Every request body is checked
/// against the committed `resources.proto`/`service.proto` first.
final class FakeCloudKMS: Sendable {
    let server: FakeHTTPServer
    let keyRing = "projects/nimbus-test/locations/europe-west1/keyRings/app"
    let token = "ya29.fake-cloud-kms"

    struct Key { var versions: [SymmetricKey]; var primary: Int }
    let keys = Mutex<[String: Key]>([:])

    static let protos = Result { try ProtoJSONChecker(fixtures: ["resources", "service"], in: Bundle.module) }

    var endpoint: String { server.baseURL + "/v1" }
    var specMismatches: [String] { server.refusals.flatMap(\.problems) }

    static func start() async throws -> FakeCloudKMS {
        let fake = FakeCloudKMS(server: try await FakeHTTPServer.start())
        let checker = try protos.get()
        fake.server.refuseRequests(failing: { fake.departures($0, checker) }) { problems in error(400, "INVALID_ARGUMENT", problems.joined(separator: "; ")) }
        fake.routes()
        return fake
    }

    private init(server: FakeHTTPServer) { self.server = server }

    func departures(_ request: FakeHTTPServer.CapturedRequest, _ checker: ProtoJSONChecker) -> [String] {
        guard request.method == "POST" else { return ["\(request.method) \(request.path) is not a Cloud KMS method the fake knows"] }
        let body = (try? request.json()) ?? .null
        let last = String(request.path.split(separator: "/").last ?? "")
        var found: [String]
        if last.hasSuffix(":encrypt") { found = checker.check(body, message: "EncryptRequest", pathFields: ["name"]) }
        else if last.hasSuffix(":decrypt") { found = checker.check(body, message: "DecryptRequest", pathFields: ["name"]) }
        else if last.hasSuffix(":updatePrimaryVersion") { found = checker.check(body, message: "UpdateCryptoKeyPrimaryVersionRequest", pathFields: ["name"]) }
        else if last == "cryptoKeyVersions" { found = checker.check(body, message: "CryptoKeyVersion") }
        else if last == "cryptoKeys" {
            found = checker.check(body, message: "CryptoKey")
            if request.queryItem("cryptoKeyId") == nil { found.append("CreateCryptoKey needs the cryptoKeyId query parameter") }
        } else { return ["POST \(request.path) is not a Cloud KMS method the fake knows"] }
        for (name, _) in request.query where !(last == "cryptoKeys" && ["cryptoKeyId", "skipInitialVersionCreation"].contains(name)) {
            found.append("query.\(name) is not a field of the request")
        }
        if request.header("content-type")?.hasPrefix("application/json") != true { found.append("the body is not sent as application/json") }
        return found
    }

    static func error(_ code: Int, _ status: String, _ message: String) -> FakeHTTPServer.Reply {
        .json(code, ["error": ["code": .number(Double(code)), "message": .string(message), "status": .string(status)]])
    }

    static func crc(_ bytes: [UInt8]) -> JSONValue { .string(String(CRC32C.checksum(bytes))) }

    static func checksum(_ body: JSONValue, _ field: String, _ bytes: [UInt8]) -> Bool {
        guard let value = body[field] else { return true }
        return (value.stringValue.flatMap(UInt32.init) ?? value.numberValue.map { UInt32($0) }) == CRC32C.checksum(bytes)
    }

    /// `…/cryptoKeys/ID` of a request path ending in `:verb`.
    func keyName(_ request: FakeHTTPServer.CapturedRequest, verb: String) -> String {
        let path = request.path.removingPercentEncoding ?? request.path
        return String(path.dropFirst("/v1/".count).dropLast(verb.count))
    }

    private func routes() {
        let authorized: (@escaping FakeHTTPServer.Handler) -> FakeHTTPServer.Handler = { handler in
            { request in
                request.header("authorization") == "Bearer \(self.token)" ? try await handler(request)
                    : Self.error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
            }
        }
        server.route(.POST, "/v1/projects/{p}/locations/{l}/keyRings/{r}/cryptoKeys", handler: authorized { request in
            let id = request.queryItem("cryptoKeyId") ?? ""
            let body = try request.json()
            guard body["purpose"]?.stringValue == "ENCRYPT_DECRYPT" else { return Self.error(400, "INVALID_ARGUMENT", "the fake makes ENCRYPT_DECRYPT keys only") }
            let name = "\(self.keyRing)/cryptoKeys/\(id)"
            return self.keys.withLock { keys in
                guard keys[name] == nil else { return Self.error(409, "ALREADY_EXISTS", "CryptoKey \(name) already exists.") }
                keys[name] = Key(versions: [SymmetricKey(size: .bits256)], primary: 1)
                return .json(200, ["name": .string(name), "purpose": "ENCRYPT_DECRYPT", "primary": ["name": .string("\(name)/cryptoKeyVersions/1"), "state": "ENABLED"]])
            }
        })
        server.route(.POST, "/v1/projects/{p}/locations/{l}/keyRings/{r}/cryptoKeys/{k}", handler: authorized { request in
            let last = request.path.split(separator: "/").last ?? ""
            let body = try request.json()
            if last.hasSuffix(":encrypt") {
                let name = self.keyName(request, verb: ":encrypt")
                guard let plaintext = body["plaintext"]?.stringValue.flatMap({ Data(base64Encoded: $0) }).map(Array.init) else {
                    return Self.error(400, "INVALID_ARGUMENT", "plaintext is required")
                }
                let aad = body["additionalAuthenticatedData"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map(Array.init) ?? []
                guard Self.checksum(body, "plaintextCrc32c", plaintext), Self.checksum(body, "additionalAuthenticatedDataCrc32c", aad) else {
                    return Self.error(400, "INVALID_ARGUMENT", "The checksum in field plaintext_crc32c did not match the data in field plaintext.")
                }
                return try self.keys.withLock { keys in
                    guard let key = keys[name] else { return Self.error(404, "NOT_FOUND", "CryptoKey \(name) not found.") }
                    let sealed = try AES.GCM.seal(plaintext, using: key.versions[key.primary - 1], authenticating: aad)
                    let ciphertext = withUnsafeBytes(of: UInt32(key.primary).bigEndian) { Array($0) } + Array(sealed.combined!)
                    return .json(200, ["name": .string("\(name)/cryptoKeyVersions/\(key.primary)"), "ciphertext": .string(Data(ciphertext).base64EncodedString()),
                                       "ciphertextCrc32c": Self.crc(ciphertext), "verifiedPlaintextCrc32c": .bool(body["plaintextCrc32c"] != nil),
                                       "verifiedAdditionalAuthenticatedDataCrc32c": .bool(body["additionalAuthenticatedDataCrc32c"] != nil), "protectionLevel": "SOFTWARE"])
                }
            }
            if last.hasSuffix(":decrypt") {
                let name = self.keyName(request, verb: ":decrypt")
                guard let ciphertext = body["ciphertext"]?.stringValue.flatMap({ Data(base64Encoded: $0) }).map(Array.init) else {
                    return Self.error(400, "INVALID_ARGUMENT", "ciphertext is required")
                }
                let aad = body["additionalAuthenticatedData"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map(Array.init) ?? []
                guard Self.checksum(body, "ciphertextCrc32c", ciphertext), Self.checksum(body, "additionalAuthenticatedDataCrc32c", aad) else {
                    return Self.error(400, "INVALID_ARGUMENT", "The checksum in field ciphertext_crc32c did not match the data in field ciphertext.")
                }
                return self.keys.withLock { keys in
                    guard let key = keys[name] else { return Self.error(404, "NOT_FOUND", "CryptoKey \(name) not found.") }
                    guard ciphertext.count > 4 else { return Self.error(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.") }
                    let version = Int(ciphertext.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                    guard (1...key.versions.count).contains(version), let box = try? AES.GCM.SealedBox(combined: ciphertext.dropFirst(4)),
                          let plaintext = try? AES.GCM.open(box, using: key.versions[version - 1], authenticating: aad) else {
                        return Self.error(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.")
                    }
                    return .json(200, ["plaintext": .string(Data(plaintext).base64EncodedString()), "plaintextCrc32c": Self.crc(Array(plaintext)),
                                       "usedPrimary": .bool(version == key.primary), "protectionLevel": "SOFTWARE"])
                }
            }
            if last.hasSuffix(":updatePrimaryVersion") {
                let name = self.keyName(request, verb: ":updatePrimaryVersion")
                let version = body["cryptoKeyVersionId"]?.stringValue.flatMap(Int.init) ?? 0
                return self.keys.withLock { keys in
                    guard let key = keys[name], (1...key.versions.count).contains(version) else { return Self.error(404, "NOT_FOUND", "CryptoKeyVersion not found.") }
                    keys[name]!.primary = version
                    return .json(200, ["name": .string(name), "purpose": "ENCRYPT_DECRYPT", "primary": ["name": .string("\(name)/cryptoKeyVersions/\(version)"), "state": "ENABLED"]])
                }
            }
            return Self.error(404, "NOT_FOUND", "unknown method")
        })
        server.route(.POST, "/v1/projects/{p}/locations/{l}/keyRings/{r}/cryptoKeys/{k}/cryptoKeyVersions", handler: authorized { request in
            let name = String((request.path.removingPercentEncoding ?? request.path).dropFirst("/v1/".count).dropLast("/cryptoKeyVersions".count))
            return self.keys.withLock { keys in
                guard keys[name] != nil else { return Self.error(404, "NOT_FOUND", "CryptoKey \(name) not found.") }
                keys[name]!.versions.append(SymmetricKey(size: .bits256))
                return .json(200, ["name": .string("\(name)/cryptoKeyVersions/\(keys[name]!.versions.count)"), "state": "ENABLED", "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"])
            }
        })
    }
}
