import Foundation
import NIOHTTP1
import NimbusCaptchaSiteverify
import NimbusCore
import NimbusTesting
import Synchronization

/// A `siteverify` endpoint as the three vendors document it: form fields checked (unknown ones,
/// a missing secret or response answered with the vendor's error codes), tokens accepted once,
/// and the documented answer shape per vendor.
///
/// Tokens are the ones ``issue(_:)`` handed out (anything else is `invalid-input-response`):
/// `good` ones succeed (hostname shop.example, action signup, score 0.9 where the vendor scores),
/// `low` with score 0.2, `other-host` on evil.example, `old` solved an hour ago. A token seen
/// before is `timeout-or-duplicate`.
final class SiteverifyFake: Sendable {
    let server: FakeHTTPServer
    let vendor: SiteverifyDriver.Vendor
    static let secret = "0x-test-secret"
    private let seen = Mutex<Set<String>>([])
    private let issued = Mutex<Set<String>>([])

    /// A token the fake will accept once, as a widget would produce it.
    func issue(_ kind: String = "good") -> String {
        let token = "\(kind)-\(UUID().uuidString)"
        issued.withLock { _ = $0.insert(token) }
        return token
    }
    private let idempotent = Mutex<[String: String]>([:])    // Turnstile: idempotency_key → token

    var allowedFields: Set<String> {
        switch vendor {
        case .hcaptcha: ["secret", "response", "remoteip", "sitekey"]
        case .recaptcha: ["secret", "response", "remoteip"]
        case .turnstile: ["secret", "response", "remoteip", "idempotency_key"]
        }
    }

    init(vendor: SiteverifyDriver.Vendor) async throws {
        self.vendor = vendor
        server = try await FakeHTTPServer.start()
        server.route(.POST, "/siteverify") { [self] request in try self.answer(request) }
    }

    func driver(secret: String = SiteverifyFake.secret) -> SiteverifyDriver {
        SiteverifyDriver(vendor: vendor, secret: Secret(secret), endpoint: server.baseURL + "/siteverify", siteKey: vendor == .hcaptcha ? "10000000-ffff-ffff-ffff-000000000001" : nil)
    }

    func answer(_ request: FakeHTTPServer.CapturedRequest) throws -> FakeHTTPServer.Reply {
        guard request.header("Content-Type")?.hasPrefix("application/x-www-form-urlencoded") == true else {
            return failure(["bad-request"])
        }
        var fields: [String: String] = [:]
        for pair in request.bodyText.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            fields[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        guard Set(fields.keys).isSubset(of: allowedFields) else { return failure(["bad-request"]) }
        guard let secret = fields["secret"], !secret.isEmpty else { return failure(["missing-input-secret"]) }
        guard secret == Self.secret else { return failure(["invalid-input-secret"]) }
        guard let token = fields["response"], !token.isEmpty else { return failure(["missing-input-response"]) }
        if vendor == .hcaptcha, let key = fields["sitekey"], key != "10000000-ffff-ffff-ffff-000000000001" { return failure(["sitekey-secret-mismatch"]) }
        if vendor == .turnstile, let key = fields["idempotency_key"] {
            // A retried call with the same key gets the first answer again, not a duplicate.
            let replay = idempotent.withLock { map -> Bool in
                if map[key] == token { return true }
                map[key] = token
                return false
            }
            if replay { return success(token) }
        }
        let first = seen.withLock { $0.insert(token).inserted }
        guard first else { return failure(["timeout-or-duplicate"]) }
        guard issued.withLock({ $0.contains(token) }) else { return failure(["invalid-input-response"]) }
        return success(token)
    }

    func failure(_ codes: [String]) -> FakeHTTPServer.Reply {
        .json(200, ["success": false, "error-codes": .array(codes.map(JSONValue.string))])
    }

    func success(_ token: String) -> FakeHTTPServer.Reply {
        let solved = token.hasPrefix("old-") ? Date().addingTimeInterval(-3600) : Date().addingTimeInterval(-5)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var body: [String: JSONValue] = ["success": true, "challenge_ts": .string(formatter.string(from: solved)),
                                         "hostname": .string(token.hasPrefix("other-host-") ? "evil.example" : "shop.example")]
        switch vendor {
        case .recaptcha:
            body["challenge_ts"] = .string(ISO8601DateFormatter().string(from: solved).replacingOccurrences(of: "Z", with: "+0000"))
            body["score"] = .number(token.hasPrefix("low-") ? 0.2 : 0.9)
            body["action"] = "signup"
        case .hcaptcha:
            body["credit"] = false
            if token.hasPrefix("low-") { body["score"] = .number(0.2) }
        case .turnstile:
            body["action"] = "signup"
            body["cdata"] = ""
            body["metadata"] = ["interactive": false]
            body["error-codes"] = []
        }
        return .json(200, .object(body))
    }
}
