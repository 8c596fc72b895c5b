import Foundation
import NimbusCore
import NimbusHTTP
import NimbusTesting
import Synchronization
import Testing

/// A local Twilio Messages API: checks each request against the committed spec extract and Basic auth,
/// answers with the spec's example message (its fields from this fake's state), and behaves like Twilio's
/// documented test numbers: To +15005550001 → 21211 invalid number, +15005550002 → 21612 cannot route,
/// +15005550003 → 21408 no permission for the region, +15005550004 → 21610 unsubscribed, +15005550009 → 21614
/// not a mobile number.
final class TwilioFake: Sendable {
    static let spec = OpenAPIRequestChecker.fixture("twilio-messages-extract", in: .module)
    static let accountSID = "AC" + String(repeating: "a1", count: 16)
    static let authToken = "fake-auth-token-0123456789abcdef"

    let server: FakeHTTPServer
    private let messages = Mutex<[String: JSONValue]>([:])
    private let example: JSONValue

    init() async throws {
        server = try await FakeHTTPServer.start()
        let checker = try Self.spec.get()
        let url = try #require(Bundle.module.url(forResource: "twilio-messages-extract", withExtension: "json", subdirectory: "Fixtures"))
        let document = try JSONValue.parse(try Data(contentsOf: url))
        example = try #require(document["paths"]?["/2010-04-01/Accounts/{AccountSid}/Messages.json"]?["post"]?["responses"]?["201"]?["content"]?["application/json"]?["examples"]?["create"]?["value"],
                               "the spec's documented answer to a create")
        server.refuseRequests(departingFrom: checker) { problems in Self.error(400, 21600, "request does not match the spec: \(problems)") }
        server.route(.POST, "/2010-04-01/Accounts/{account}/Messages.json") { [self] request in try self.create(request) }
        server.route(.GET, "/2010-04-01/Accounts/{account}/Messages/{sid}") { [self] request in try self.fetch(request) }
    }

    var baseURL: String { server.baseURL }

    /// The message the fake stored for a SID, as Twilio would return it.
    func stored(_ sid: String) -> JSONValue? { messages.withLock { $0[sid] } }

    func shutdown() async { await server.shutdown() }

    static func error(_ status: Int, _ code: Int, _ message: String) -> FakeHTTPServer.Reply {
        .json(status, ["code": .number(Double(code)), "message": .string(message), "more_info": .string("https://www.twilio.com/docs/errors/\(code)"),
                       "status": .number(Double(status))])
    }

    private func authorized(_ request: FakeHTTPServer.CapturedRequest) -> Bool {
        let expected = "Basic " + Data("\(Self.accountSID):\(Self.authToken)".utf8).base64EncodedString()
        return request.header("Authorization") == expected
    }

    private func create(_ request: FakeHTTPServer.CapturedRequest) throws -> FakeHTTPServer.Reply {
        guard authorized(request) else { return Self.error(401, 20003, "Authentication Error - invalid username") }
        let form = FormDecoder.pairs(request.bodyText)
        func field(_ name: String) -> String? { form.first { $0.0 == name }?.1 }
        guard let to = field("To") else { return Self.error(400, 21604, "A 'To' phone number is required.") }
        guard field("From") != nil || field("MessagingServiceSid") != nil else {
            return Self.error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.")
        }
        guard let body = field("Body"), !body.isEmpty else { return Self.error(400, 21602, "Message body is required.") }
        switch to {
        case "+15005550001": return Self.error(400, 21211, "The 'To' number \(to) is not a valid phone number.")
        case "+15005550002": return Self.error(400, 21612, "The 'To' phone number: \(to), is not currently reachable using the 'From' phone number via SMS.")
        case "+15005550003": return Self.error(400, 21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: \(to).")
        case "+15005550004": return Self.error(400, 21610, "Attempt to send to unsubscribed recipient")
        case "+15005550009": return Self.error(400, 21614, "'To' number is not a valid mobile number")
        default: break
        }
        guard body.count <= 1600 else { return Self.error(400, 21617, "The concatenated message body exceeds the 1600 character limit.") }
        let sid = "SM" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        var object = example.objectValue ?? [:]
        object["sid"] = .string(sid)
        object["account_sid"] = .string(Self.accountSID)
        object["to"] = .string(to)
        object["from"] = field("From").map(JSONValue.string) ?? .null
        object["messaging_service_sid"] = field("MessagingServiceSid").map(JSONValue.string) ?? .null
        object["body"] = .string(body)
        object["status"] = .string(field("MessagingServiceSid") != nil ? "accepted" : "queued")
        object["num_segments"] = .string(String(Self.segments(body)))
        object["uri"] = .string("/2010-04-01/Accounts/\(Self.accountSID)/Messages/\(sid).json")
        messages.withLock { $0[sid] = .object(object) }
        return .json(201, .object(object))
    }

    private func fetch(_ request: FakeHTTPServer.CapturedRequest) throws -> FakeHTTPServer.Reply {
        guard authorized(request) else { return Self.error(401, 20003, "Authentication Error - invalid username") }
        let sid = String(request.path.split(separator: "/").last?.dropLast(5) ?? "")
        guard var object = messages.withLock({ $0[sid] })?.objectValue else {
            return Self.error(404, 20404, "The requested resource \(request.path) was not found")
        }
        object["status"] = "delivered"                         // by the time anyone asks, the handset has it
        return .json(200, .object(object))
    }

    /// Twilio's count, the same rule as SMSEncoding (kept independent here: GSM-7 160/153, else 70/67).
    static func segments(_ body: String) -> Int {
        let gsm = Set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€")
        let isGSM = body.unicodeScalars.allSatisfy { gsm.contains(Character($0)) }
        let units = isGSM ? body.unicodeScalars.reduce(0) { $0 + ("^{}\\[~]|€".unicodeScalars.contains($1) ? 2 : 1) } : body.utf16.count
        let single = isGSM ? 160 : 70, multi = isGSM ? 153 : 67
        return units <= single ? 1 : (units + multi - 1) / multi
    }
}
