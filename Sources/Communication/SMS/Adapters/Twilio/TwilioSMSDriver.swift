import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusHTTP
import NimbusSMS

/// Settings of ``TwilioSMSDriver``.
public struct TwilioConfiguration: Sendable {
    /// How requests are authorized.
    public enum Credentials: Sendable {
        /// The account's auth token (`AccountSid:AuthToken`).
        case authToken(Secret<String>)
        /// An API key (`SK…:secret`), revocable without touching the auth token.
        case apiKey(sid: String, secret: Secret<String>)
    }

    /// `AC` + 32 hex digits.
    public var accountSID: String
    public var credentials: Credentials
    /// `https://api.twilio.com`, or a fake's address in tests.
    public var baseURL: String
    /// The time limit of one call.
    public var timeout: Duration

    /// Creates settings.
    /// - Throws: `invalidArgument` when the account SID is not `AC` + 32 hex digits.
    public init(accountSID: String, credentials: Credentials, baseURL: String = "https://api.twilio.com", timeout: Duration = .seconds(30)) throws {
        guard accountSID.count == 34, accountSID.hasPrefix("AC"), accountSID.dropFirst(2).allSatisfy(\.isHexDigit) else {
            throw NimbusError(.invalidArgument, "'\(accountSID)' is not a Twilio account SID (AC followed by 32 hex digits)")
        }
        self.accountSID = accountSID
        self.credentials = credentials
        self.baseURL = baseURL
        self.timeout = timeout
    }
}

/// Twilio's error answer (`{"code": 21211, "message": …, "more_info": …, "status": 400}`), kept as the
/// `underlying` of the `NimbusError` thrown.
public struct TwilioError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var moreInfo: String?
    public var status: Int

    public var description: String { "Twilio \(code): \(message)\(moreInfo.map { " (\($0))" } ?? "")" }

    /// The portable code of Twilio's error codes (https://www.twilio.com/docs/api/errors).
    var nimbusCode: NimbusError.Code {
        switch code {
        case 20003, 20005: .unauthenticated
        case 20404: .notFound
        case 20429, 14107: .resourceExhausted
        case 21610, 21612, 30004: .failedPrecondition                  // the recipient unsubscribed (STOP); cannot route
        case 21408, 20008: .permissionDenied                          // no permission for the region; test credentials
        case 21211, 21212, 21602, 21603, 21604, 21606, 21614, 21617, 21601, 14101: .invalidArgument
        default: HTTPStatusMapping.code(for: HTTPResponseStatus(statusCode: status))
        }
    }
}

/// SMS through Twilio's Messages API (2010-04-01): `From` or a Messaging Service, status callbacks, validity
/// periods; Twilio's error codes mapped; a 429 retried after its Retry-After; a 5xx or a dropped connection
/// not retried (Twilio has no idempotency key: the message may have gone).
///
/// ```swift
/// let twilio = TwilioSMSDriver(configuration: try .init(accountSID: sid, credentials: .authToken(Secret(token))))
/// let receipt = try await SMSClient(driver: twilio).send(SMSMessage(from: .service("MG…"), to: try PhoneNumber("+14155550100"), body: "Hi"))
/// let later = try await twilio.fetch(receipt.id)        // .delivered, .undelivered…
/// ```
public struct TwilioSMSDriver: SMSDriver {
    public let provider = "twilio"
    public let configuration: TwilioConfiguration
    let http: NimbusHTTPClient

    /// Creates a driver over the shared transport (TLS verification on), or over `httpClient`.
    public init(configuration: TwilioConfiguration, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.configuration = configuration
        let auth: AuthMiddleware = switch configuration.credentials {
        case .authToken(let token): .basic(user: configuration.accountSID, password: token)
        case .apiKey(let sid, let secret): .basic(user: sid, password: secret)
        }
        http = NimbusHTTPClient(configuration: .init(service: "twilio", baseURL: configuration.baseURL,
                                                     defaultHeaders: ["User-Agent": "Nimbus/\(NimbusVersion.current)", "Accept": "application/json"],
                                                     auth: auth, retry: .none, timeout: configuration.timeout), httpClient: httpClient, logger: logger)
    }

    var messagesPath: String { "/2010-04-01/Accounts/\(configuration.accountSID)/Messages" }

    public func send(_ message: SMSMessage) async throws -> SMSReceipt {
        var form: [(String, String)] = [("To", message.to.e164), ("Body", message.body)]
        switch message.from {
        case .number(let number): form.append(("From", number.e164))
        case .alphanumeric(let id): form.append(("From", id))
        case .service(let sid):
            guard sid.count == 34, sid.hasPrefix("MG"), sid.dropFirst(2).allSatisfy(\.isHexDigit) else {
                throw NimbusError(.invalidArgument, "'\(sid)' is not a Twilio Messaging Service SID (MG followed by 32 hex digits)")
            }
            form.append(("MessagingServiceSid", sid))
        }
        if let callback = message.statusCallback { form.append(("StatusCallback", callback.absoluteString)) }
        if let validity = message.validity {
            let seconds = Int(validity.components.seconds)
            guard (1...36_000).contains(seconds) else { throw NimbusError(.invalidArgument, "Twilio's validity period is 1 to 36000 seconds, not \(seconds)") }
            form.append(("ValidityPeriod", String(seconds)))
        }
        var request = NimbusHTTPRequest(.POST, messagesPath + ".json", operation: "POST Messages")
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = ByteBuffer(string: form.map { "\(FormEncoder.escape($0.0))=\(FormEncoder.escape($0.1))" }.joined(separator: "&"))
        let object: JSONValue
        do {
            object = try await call(request)
        } catch let error as NimbusError where error.code == .unavailable || error.code == .deadlineExceeded || error.code == .internal {
            // No idempotency key exists for Messages: after a 5xx or a lost answer the message may have been queued.
            var ambiguous = error
            ambiguous.retryable = false
            ambiguous.message += " — the message may have been sent, so it is not retried; check with fetch() or the status callback"
            throw ambiguous
        }
        return try Self.receipt(object, fallbackSegments: message.encoding.segments)
    }

    /// The message as Twilio has it now.
    public func fetch(_ id: String) async throws -> SMSReceipt {
        guard id.hasPrefix("SM") || id.hasPrefix("MM"), id.allSatisfy({ $0.isLetter || $0.isNumber }) else {
            throw NimbusError(.invalidArgument, "'\(id)' is not a Twilio message SID")
        }
        return try Self.receipt(try await call(NimbusHTTPRequest(.GET, "\(messagesPath)/\(id).json", operation: "GET Message")), fallbackSegments: 1)
    }

    func call(_ request: NimbusHTTPRequest) async throws -> JSONValue {
        let response = try await http.send(request)
        let body = Array(try await response.collect(upTo: 4 * 1024 * 1024).readableBytesView)
        let parsed = try? JSONValue.parse(body)
        guard response.isSuccess else {
            let twilio = TwilioError(code: parsed?["code"]?.numberValue.map { Int($0) } ?? 0, message: parsed?["message"]?.stringValue ?? String(decoding: body.prefix(200), as: UTF8.self),
                                     moreInfo: parsed?["more_info"]?.stringValue, status: Int(response.status.code))
            throw NimbusError(twilio.nimbusCode, "twilio \(request.operation) failed: \(twilio)", underlying: twilio,
                              retryAfter: response.retryAfter(), retryable: response.status == .tooManyRequests ? true : nil)
        }
        guard let parsed, parsed.objectValue != nil else {
            throw NimbusError(.internal, "twilio \(request.operation) answered \(response.status.code) with a body that is not a JSON object: \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        return parsed
    }

    static func receipt(_ object: JSONValue, fallbackSegments: Int) throws -> SMSReceipt {
        guard let sid = object["sid"]?.stringValue, let status = object["status"]?.stringValue else {
            throw NimbusError(.dataLoss, "Twilio's message has no sid or status: \(object)")
        }
        let segments = object["num_segments"]?.stringValue.flatMap(Int.init) ?? object["num_segments"]?.numberValue.map { Int($0) } ?? fallbackSegments
        return SMSReceipt(id: sid, provider: "twilio", status: SMSStatus(rawValue: status), segments: segments)
    }
}

/// Twilio's webhook signature (`X-Twilio-Signature`) and status callbacks.
///
/// The signature is HMAC-SHA1 (base64) of the full URL followed by every POST parameter's name and value,
/// sorted by name; JSON bodies are covered by a `bodySHA256` query parameter instead. Twilio signs no
/// timestamp, so replays cannot be refused by age: handlers should be idempotent on `MessageSid` + status.
///
/// ```swift
/// try TwilioWebhook.validate(url: "https://example.com/twilio/status", parameters: form, signature: header, authTokens: [token])
/// let report = try TwilioWebhook.deliveryReport(form)
/// ```
public enum TwilioWebhook {
    /// The signing algorithm: HMAC-SHA1 with the auth token (the default), or HMAC-SHA256 with a webhook
    /// shared key when Twilio sends `X-Twilio-Webhooks-Signature-Settings: key=…,algorithm=HMAC_SHA256`.
    public enum Algorithm: String, Sendable {
        case hmacSHA1 = "HMAC_SHA1"
        case hmacSHA256 = "HMAC_SHA256"

        /// The algorithm the settings header names (none or no `algorithm=`: HMAC-SHA1).
        /// - Throws: `unauthenticated` for an algorithm this library does not know (the request cannot be checked).
        public init(settingsHeader: String?) throws {
            for part in (settingsHeader ?? "").split(separator: ",") {
                let pieces = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if pieces.count == 2, pieces[0] == "algorithm", !pieces[1].isEmpty {
                    guard let known = Algorithm(rawValue: pieces[1].uppercased()) else {
                        throw NimbusError(.unauthenticated, "Twilio signed with '\(pieces[1])', which this library cannot check")
                    }
                    self = known
                    return
                }
            }
            self = .hmacSHA1
        }
    }

    /// The signature Twilio sends for `url` and form `parameters`.
    public static func signature(url: String, parameters: [(String, String)], authToken: Secret<String>, algorithm: Algorithm = .hmacSHA1) -> String {
        var data = url
        // Twilio's libraries: names sorted, each name's distinct values sorted (byte order of UTF-8 = code point order).
        let grouped = Dictionary(grouping: parameters, by: \.0)
        for name in grouped.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let values = Set(grouped[name, default: []].map(\.1)).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for value in values { data += name + value }
        }
        return WebhookSignature.sign(payload: Array(data.utf8), secret: authToken, algorithm: algorithm == .hmacSHA1 ? .sha1 : .sha256, encoding: .base64)
    }

    /// Checks a form POST's signature, trying the URL with and without its default port as Twilio's libraries do.
    /// - Throws: `unauthenticated` when no token signs it.
    public static func validate(url: String, parameters: [(String, String)], signature: String?, authTokens: [Secret<String>],
                                algorithm: Algorithm = .hmacSHA1) throws {
        guard let signature, !signature.isEmpty else { throw NimbusError(.unauthenticated, "the Twilio request has no X-Twilio-Signature header") }
        guard !authTokens.isEmpty else { throw NimbusError(.failedPrecondition, "no Twilio auth token configured to check signatures with") }
        var matched = false
        for candidate in urlVariants(url) {
            for token in authTokens {
                let expected = Array(Self.signature(url: candidate, parameters: parameters, authToken: token, algorithm: algorithm).utf8)
                matched = ConstantTime.equals(expected, Array(signature.utf8)) || matched
            }
        }
        guard matched else { throw NimbusError(.unauthenticated, "the X-Twilio-Signature does not match (check the URL Twilio calls, including scheme, host, port and query)") }
    }

    /// Checks a JSON-body request: the URL's `bodySHA256` must be the body's hash, and the URL (with no
    /// parameters) must be signed.
    public static func validate(url: String, body: [UInt8], signature: String?, authTokens: [Secret<String>], algorithm: Algorithm = .hmacSHA1) throws {
        guard let components = URLComponents(string: url), let claimed = components.queryItems?.first(where: { $0.name == "bodySHA256" })?.value else {
            throw NimbusError(.unauthenticated, "the Twilio request's URL has no bodySHA256 parameter")
        }
        try validate(url: url, parameters: [], signature: signature, authTokens: authTokens, algorithm: algorithm)
        let actual = SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined()
        guard ConstantTime.equals(Array(actual.utf8), Array(claimed.lowercased().utf8)) else {
            throw NimbusError(.unauthenticated, "the Twilio request's body does not match its bodySHA256")
        }
    }

    /// The URL without any port, and with the scheme's default port when it has none (Twilio signs either).
    static func urlVariants(_ url: String) -> [String] {
        guard var components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else { return [url] }
        var variants: [String] = []
        let port = components.port
        components.port = nil
        if let withoutPort = components.string { variants.append(withoutPort) }
        components.port = port ?? (scheme == "https" ? 443 : 80)
        if let withPort = components.string { variants.append(withPort) }
        return variants.isEmpty ? [url] : variants
    }

    /// Reads a status callback (`MessageSid`, `MessageStatus`, `ErrorCode`…).
    /// - Throws: `invalidArgument` when the form is not a Twilio status callback.
    public static func deliveryReport(_ parameters: [(String, String)]) throws -> SMSDeliveryReport {
        func value(_ name: String) -> String? { parameters.first { $0.0 == name }?.1 }
        guard let sid = value("MessageSid") ?? value("SmsSid"), let status = value("MessageStatus") ?? value("SmsStatus") else {
            throw NimbusError(.invalidArgument, "not a Twilio status callback: MessageSid and MessageStatus are missing")
        }
        return SMSDeliveryReport(messageID: sid, status: SMSStatus(rawValue: status), to: value("To"), from: value("From"),
                                 errorCode: value("ErrorCode").flatMap { $0.isEmpty ? nil : $0 }, errorMessage: value("ErrorMessage"))
    }
}

extension URLOpenerRegistry where Resource == any SMSDriver {
    /// Adds `twilio://ACxxxx:AUTH_TOKEN@api.twilio.com` (or `twilio://SKxxxx:SECRET@api.twilio.com?account=ACxxxx`).
    public func withTwilio() -> Self {
        var copy = self
        copy.register("twilio") { url in
            guard let user = url.user, let secret = url.password else {
                throw NimbusError(.invalidArgument, "twilio:// needs credentials: twilio://ACxxxx:AUTH_TOKEN@api.twilio.com")
            }
            let host = url.host ?? "api.twilio.com"
            let base = (host == "api.twilio.com" ? "https://" : (try url.options.bool("tls") == false ? "http://" : "https://")) + host + (url.port.map { ":\($0)" } ?? "")
            let configuration: TwilioConfiguration = user.hasPrefix("SK")
                ? try .init(accountSID: url.options.string("account") ?? "", credentials: .apiKey(sid: user, secret: secret), baseURL: base)
                : try .init(accountSID: user, credentials: .authToken(secret), baseURL: base)
            return TwilioSMSDriver(configuration: configuration)
        }
        return copy
    }
}
