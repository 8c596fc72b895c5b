import Crypto
import Foundation
import NimbusCore
import NimbusHTTP
import NimbusSMS
import NimbusTesting
import Testing
@testable import NimbusSMSTwilio

@Suite("Twilio against a spec-checked fake")
struct TwilioDriverTests {
    func driver(_ fake: TwilioFake, token: String = TwilioFake.authToken) throws -> TwilioSMSDriver {
        TwilioSMSDriver(configuration: try TwilioConfiguration(accountSID: TwilioFake.accountSID, credentials: .authToken(Secret(token)), baseURL: fake.baseURL))
    }

    @Test func aMessageIsCreatedWithEveryFieldAndFetchedLater() async throws {
        let fake = try await TwilioFake()
        defer { Task { await fake.shutdown() } }
        let twilio = try driver(fake)
        let message = SMSMessage(from: .number(try PhoneNumber("+15005550006")), to: try PhoneNumber("+14155550100"),
                                 body: "Ваш код: 123456 — don't share it", statusCallback: URL(string: "https://example.com/twilio/status"),
                                 validity: .seconds(600))
        let receipt = try await SMSClient(driver: twilio).send(message)
        #expect(receipt.id.hasPrefix("SM") && receipt.status == .queued && receipt.segments == 1 && receipt.provider == "twilio")
        let sent = try #require(fake.server.requests.first)
        let form = Dictionary(uniqueKeysWithValues: FormDecoder.pairs(sent.bodyText))
        #expect(form == ["To": "+14155550100", "From": "+15005550006", "Body": message.body, "StatusCallback": "https://example.com/twilio/status", "ValidityPeriod": "600"])
        let later = try await twilio.fetch(receipt.id)
        #expect(later.status == .delivered && later.status.isFinal)
        let viaService = try await twilio.send(SMSMessage(from: .service("MG" + String(repeating: "b", count: 32)), to: try PhoneNumber("+14155550100"),
                                                          body: String(repeating: "long ", count: 40)))
        #expect(viaService.status == .accepted && viaService.segments == 2)
    }

    @Test func twiliosErrorCodesMapToWhatToDo() async throws {
        let fake = try await TwilioFake()
        defer { Task { await fake.shutdown() } }
        let client = SMSClient(driver: try driver(fake), configuration: .init(retry: .none))
        let cases: [(String, NimbusError.Code, Int)] = [("+15005550001", .invalidArgument, 21211), ("+15005550002", .failedPrecondition, 21612),
                                                        ("+15005550003", .permissionDenied, 21408), ("+15005550004", .failedPrecondition, 21610),
                                                        ("+15005550009", .invalidArgument, 21614)]
        for (number, code, twilioCode) in cases {
            let error = await #expect(throws: NimbusError.self) {
                try await client.send(SMSMessage(from: .number(try PhoneNumber("+15005550006")), to: try PhoneNumber(number), body: "x"))
            }
            #expect(error?.code == code && (error?.underlying as? TwilioError)?.code == twilioCode, "\(number): \(String(describing: error))")
        }
        let wrongToken = SMSClient(driver: try driver(fake, token: "wrong"), configuration: .init(retry: .none))
        let auth = await #expect(throws: NimbusError.self) { try await wrongToken.send(SMSMessage(from: .service("MG1"), to: try PhoneNumber("+14155550100"), body: "x")) }
        #expect(auth?.code == .invalidArgument, "a Messaging Service SID is checked before sending: \(String(describing: auth))")
        let unauthenticated = await #expect(throws: NimbusError.self) {
            try await wrongToken.send(SMSMessage(from: .number(try PhoneNumber("+15005550006")), to: try PhoneNumber("+14155550100"), body: "x"))
        }
        #expect(unauthenticated?.code == .unauthenticated && !"\(String(describing: unauthenticated))".contains("wrong"))
        await #expect(throws: NimbusError.self) { try await try driver(fake).fetch("SM-not-a-sid") }
        let missing = await #expect(throws: NimbusError.self) { try await try driver(fake).fetch("SM" + String(repeating: "0", count: 32)) }
        #expect(missing?.code == .notFound)
    }

    @Test func a429IsRetriedAfterItsDelayButA5xxOrABrokenAnswerIsNot() async throws {
        let fake = try await TwilioFake()
        defer { Task { await fake.shutdown() } }
        let path = "/2010-04-01/Accounts/\(TwilioFake.accountSID)/Messages.json"
        let created: JSONValue = ["sid": .string("SM" + String(repeating: "c", count: 32)), "status": "queued", "num_segments": "1"]
        fake.server.route(.POST, path, replies: [.json(429, #"{"code":20429,"message":"Too Many Requests","status":429}"#, headers: [("Retry-After", "0")]),
                                                 .json(201, created)])
        let client = SMSClient(driver: try driver(fake), configuration: .init(retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5))))
        let message = SMSMessage(from: .number(try PhoneNumber("+15005550006")), to: try PhoneNumber("+14155550100"), body: "x")
        #expect(try await client.send(message).id == created["sid"]?.stringValue)
        #expect(fake.server.requests.count == 2)
        fake.server.route(.POST, path, reply: .json(500, #"{"code":20500,"message":"Internal Server Error","status":500}"#))
        let serverError = await #expect(throws: NimbusError.self) { try await client.send(message) }
        #expect(serverError?.isRetryable == false && serverError?.message.contains("may have been sent") == true && fake.server.requests.count == 3)
        fake.server.route(.POST, path, reply: .text(201, "<html>not json</html>"))
        let malformed = await #expect(throws: NimbusError.self) { try await client.send(message) }
        #expect(malformed?.isRetryable == false && malformed?.message.contains("not a JSON object") == true)
        fake.server.route(.POST, path, reply: .json(201, #"{"status":"queued"}"#))
        let incomplete = await #expect(throws: NimbusError.self) { try await client.send(message) }
        #expect(incomplete?.code == .dataLoss)
        // A status Twilio adds later is kept, not refused.
        fake.server.route(.POST, path, reply: .json(201, #"{"sid":"SMdddddddddddddddddddddddddddddddd","status":"partially_delivered"}"#))
        #expect(try await client.send(message).status.rawValue == "partially_delivered")
    }

    @Test func statusCallbacksAreRead() throws {
        let report = try TwilioWebhook.deliveryReport([("MessageSid", "SM1"), ("MessageStatus", "undelivered"), ("ErrorCode", "30003"), ("To", "+14155550100")])
        #expect(report.status == .undelivered && report.status.isFailure && report.errorCode == "30003" && report.to == "+14155550100")
        #expect(try TwilioWebhook.deliveryReport([("SmsSid", "SM2"), ("SmsStatus", "delivered"), ("ErrorCode", "")]).errorCode == nil)
        #expect(throws: NimbusError.self) { try TwilioWebhook.deliveryReport([("Body", "hello")]) }
    }
}

/// `X-Twilio-Signature` computed here and by Twilio's own `RequestValidator` (pip `twilio`) on the same URLs
/// and parameters, both ways.
@Suite("Twilio signatures against the official library", .requires(.commsSDKs))
struct TwilioSignatureTests {
    static let cases: [(url: String, parameters: [(String, String)])] = [
        ("https://mycompany.com/myapp.php?foo=1&bar=2", [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"), ("From", "+12349013030"), ("To", "+18005551212")]),
        ("https://example.com/twilio/status", [("MessageSid", "SM1"), ("MessageStatus", "delivered"), ("Body", "Grüße 👋 & = + %"), ("Empty", "")]),
        ("https://example.com:8443/hooks?x=a%20b", [("B", "2"), ("a", "1"), ("A", "0"), ("MediaUrl0", "https://x.test/a?b=c")]),
        ("http://127.0.0.1:8080/cb", [("Repeated", "z"), ("Repeated", "a"), ("Repeated", "a")]),
    ]

    @Test func signaturesEqualTwiliosRequestValidator() async throws {
        let python = try Peer.commsSDKs.url()
        let token = "12345abcde-auth-token"
        let script = """
        import json, sys
        from twilio.request_validator import RequestValidator
        class MultiDict(dict):
            # What Flask hands the validator: repeated names keep all their values.
            def __init__(self, pairs):
                super().__init__(pairs)
                self.pairs = pairs
            def getall(self, name):
                return [value for key, value in self.pairs if key == name]
        cases = json.load(sys.stdin)
        v = RequestValidator(sys.argv[1])
        out = []
        for c in cases:
            params = MultiDict([(k, val) for k, val in c["params"]])
            out.append({"sha1": v.compute_signature(c["url"], params), "sha256": v.compute_signature(c["url"], params, "HMAC_SHA256"),
                        "valid": v.validate(c["url"], params, c["ours"]), "valid_other_port": v.validate(c["other"], params, c["ours"])})
        print(json.dumps(out))
        """
        var input: [JSONValue] = []
        for (url, parameters) in Self.cases {
            let ours = TwilioWebhook.signature(url: url, parameters: parameters, authToken: Secret(token))
            let variants = TwilioWebhook.urlVariants(url)
            input.append(["url": .string(url), "params": .array(parameters.map { .array([.string($0.0), .string($0.1)]) }), "ours": .string(ours),
                          "other": .string(variants.last ?? url)])
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("twilio-sig-\(UUID().uuidString).py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        let stdin = FileManager.default.temporaryDirectory.appendingPathComponent("twilio-sig-\(UUID().uuidString).json")
        try Data(JSONValue.array(input).description.utf8).write(to: stdin)
        let result = try await ProcessRunner.run("/bin/sh", ["-c", "\"\(python)\" \"\(file.path)\" \(token) < \"\(stdin.path)\""])
        #expect(result.status == 0, "\(result.stderr)")
        let answers = try #require(try JSONValue.parse(Data(result.stdout.utf8)).arrayValue)
        #expect(answers.count == Self.cases.count)
        for (index, (url, parameters)) in Self.cases.enumerated() {
            let theirs = answers[index]
            #expect(theirs["sha1"]?.stringValue == TwilioWebhook.signature(url: url, parameters: parameters, authToken: Secret(token)), "\(url)")
            #expect(theirs["sha256"]?.stringValue == TwilioWebhook.signature(url: url, parameters: parameters, authToken: Secret(token), algorithm: .hmacSHA256))
            #expect(theirs["valid"]?.boolValue == true && theirs["valid_other_port"]?.boolValue == true, "\(url)")
            // Theirs validates here too, with the port added or removed; a changed parameter does not.
            let signature = try #require(theirs["sha1"]?.stringValue)
            try TwilioWebhook.validate(url: url, parameters: parameters, signature: signature, authTokens: [Secret("rotated-old"), Secret(token)])
            #expect(throws: NimbusError.self) { try TwilioWebhook.validate(url: url, parameters: parameters + [("Injected", "1")], signature: signature, authTokens: [Secret(token)]) }
        }
    }

    @Test func jsonBodiesAreCoveredByTheirHash() throws {
        let token = Secret("tok")
        let body = Array(#"{"event":"delivered"}"#.utf8)
        let hash = body.sha256Hex
        let url = "https://example.com/hook?bodySHA256=\(hash)"
        let signature = TwilioWebhook.signature(url: url, parameters: [], authToken: token)
        try TwilioWebhook.validate(url: url, body: body, signature: signature, authTokens: [token])
        #expect(throws: NimbusError.self) { try TwilioWebhook.validate(url: url, body: Array(#"{"event":"failed"}"#.utf8), signature: signature, authTokens: [token]) }
        #expect(throws: NimbusError.self) { try TwilioWebhook.validate(url: url, body: body, signature: nil, authTokens: [token]) }
        #expect(throws: NimbusError.self) { try TwilioWebhook.Algorithm(settingsHeader: "key=k,algorithm=HMAC_SHA512") }
        #expect(try TwilioWebhook.Algorithm(settingsHeader: "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256") == .hmacSHA256)
    }
}

extension Array where Element == UInt8 {
    var sha256Hex: String { SHA256.hash(data: self).map { String(format: "%02x", $0) }.joined() }
}
