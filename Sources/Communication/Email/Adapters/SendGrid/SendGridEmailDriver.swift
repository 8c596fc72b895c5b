import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NimbusCore
import NimbusEmail
import NimbusHTTP

/// Settings of ``SendGridEmailDriver``.
public struct SendGridConfiguration: Sendable {
    /// The API key (`SG.…`), with the Mail Send permission. Never logged.
    public var apiKey: Secret<String>
    /// `https://api.sendgrid.com`, `https://api.eu.sendgrid.com` for EU regional subusers, or a fake in tests.
    public var baseURL: String
    /// SendGrid validates the request but sends nothing (`mail_settings.sandbox_mode`).
    public var sandbox: Bool
    /// The IP pool to send from.
    public var ipPool: String?
    /// An unsubscribe group (`asm.group_id`) for every message.
    public var unsubscribeGroup: Int?
    public var timeout: Duration

    public init(apiKey: Secret<String>, baseURL: String = "https://api.sendgrid.com", sandbox: Bool = false, ipPool: String? = nil,
                unsubscribeGroup: Int? = nil, timeout: Duration = .seconds(30)) {
        self.apiKey = apiKey
        self.baseURL = baseURL
        self.sandbox = sandbox
        self.ipPool = ipPool
        self.unsubscribeGroup = unsubscribeGroup
        self.timeout = timeout
    }
}

/// SendGrid's error answer (`{"errors": [{"message", "field", "help"}]}`), kept as the `underlying` error.
public struct SendGridError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Item: Sendable, Hashable {
        public var message: String
        public var field: String?
    }
    public var status: Int
    public var errors: [Item]
    public var description: String {
        "SendGrid \(status): " + errors.map { $0.field.map { f in "\(f): " } ?? "" }.enumerated().map { "\($1)\(errors[$0].message)" }.joined(separator: "; ")
    }
}

/// Email through SendGrid's v3 Mail Send API: personalizations (to, cc, bcc), text and HTML content,
/// attachments and inline images, categories (the message's tags), custom args (its metadata),
/// headers, sandbox mode, dynamic templates; errors mapped; a 429 retried after its reset time.
///
/// ```swift
/// let sendgrid = SendGridEmailDriver(configuration: .init(apiKey: Secret(env["SENDGRID_API_KEY"]!)))
/// try await EmailClient(driver: sendgrid).send(message)
/// try await sendgrid.send(templateID: "d-4f1…", data: ["name": "Zoë"], message: message)   // a dynamic template
/// ```
public struct SendGridEmailDriver: EmailDriver {
    public let provider = "sendgrid"
    public let configuration: SendGridConfiguration
    let http: NimbusHTTPClient

    /// Headers SendGrid refuses in `headers` (it writes them itself).
    static let reservedHeaders: Set<String> = ["x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type", "content-transfer-encoding",
                                                "to", "from", "subject", "reply-to", "cc", "bcc"]

    public init(configuration: SendGridConfiguration, httpClient: HTTPClient = NimbusHTTPClient.defaultTransport, logger: Logger? = nil) {
        self.configuration = configuration
        http = NimbusHTTPClient(configuration: .init(service: "sendgrid", baseURL: configuration.baseURL,
                                                     defaultHeaders: ["User-Agent": "Nimbus/\(NimbusVersion.current)"],
                                                     auth: .bearer(configuration.apiKey), retry: .none, timeout: configuration.timeout),
                                httpClient: httpClient, logger: logger)
    }

    public func send(_ email: OutgoingEmail) async throws -> EmailReceipt {
        try await post(try Self.body(email, configuration: configuration, template: nil), email: email)
    }

    /// Sends a dynamic template (`d-…`) with `data` for its Handlebars fields, to the message's recipients;
    /// the template's subject and content replace the message's.
    public func send(templateID: String, data: JSONValue, message: EmailMessage) async throws -> EmailReceipt {
        guard templateID.hasPrefix("d-") else { throw NimbusError(.invalidArgument, "'\(templateID)' is not a dynamic template id (d-…)") }
        guard !message.recipients.isEmpty else { throw NimbusError(.invalidArgument, "the message has no recipient") }
        let id = "<\(IDGenerator.shared.ulid().description.lowercased())@\(message.from.asciiDomain)>"
        let email = OutgoingEmail(message: message, document: MIMEDocument(headers: [], body: [], messageID: id),
                                  envelopeFrom: message.from, recipients: message.recipients)
        return try await post(try Self.body(email, configuration: configuration, template: (templateID, data)), email: email)
    }

    func post(_ body: JSONValue, email: OutgoingEmail) async throws -> EmailReceipt {
        var request = NimbusHTTPRequest(.POST, "/v3/mail/send", operation: "POST /v3/mail/send")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = ByteBuffer(bytes: try JSONEncoder().encode(body))
        let response: NimbusHTTPResponse
        do { response = try await http.send(request) } catch let error as NimbusError {
            var ambiguous = error
            ambiguous.retryable = false
            ambiguous.message += " — SendGrid may have accepted the message, so it is not retried"
            throw ambiguous
        }
        let data = Array(try await response.collect(upTo: 1024 * 1024).readableBytesView)
        guard response.isSuccess else { throw Self.error(status: Int(response.status.code), body: data, retryAfter: Self.retryAfter(response)) }
        return EmailReceipt(messageID: email.document.messageID, providerMessageID: response.headers.first(name: "X-Message-Id"),
                            provider: provider, accepted: email.recipients)
    }

    /// A 429's wait: `Retry-After`, else `X-RateLimit-Reset` (a Unix time).
    static func retryAfter(_ response: NimbusHTTPResponse) -> Duration? {
        if let after = response.retryAfter() { return after }
        guard let reset = response.headers.first(name: "X-RateLimit-Reset").flatMap(Double.init), reset.isFinite else { return nil }
        return .milliseconds(Int64(min(3600, max(0, reset - Date().timeIntervalSince1970)) * 1000))   // a vendor's junk never traps or waits for hours
    }

    static func error(status: Int, body: [UInt8], retryAfter: Duration?) -> NimbusError {
        let items = (try? JSONValue.parse(body))?["errors"]?.arrayValue?.map {
            SendGridError.Item(message: $0["message"]?.stringValue ?? "", field: $0["field"]?.stringValue)
        } ?? [SendGridError.Item(message: String(decoding: body.prefix(200), as: UTF8.self), field: nil)]
        let sendgrid = SendGridError(status: status, errors: items)
        let code: NimbusError.Code = switch status {
        case 400: .invalidArgument
        case 401: .unauthenticated
        case 403: .permissionDenied           // a key without Mail Send, an unverified sender
        case 413: .invalidArgument            // over 30 MB
        case 429: .resourceExhausted
        default: HTTPStatusMapping.code(for: HTTPResponseStatus(statusCode: status))
        }
        // 429: nothing was accepted, retrying is safe. 5xx: SendGrid may have queued it.
        return NimbusError(code, "sendgrid mail send failed: \(sendgrid)", underlying: sendgrid, retryAfter: retryAfter,
                           retryable: status == 429 ? true : (status >= 500 ? false : nil))
    }

    /// The Mail Send body for a message.
    static func body(_ email: OutgoingEmail, configuration: SendGridConfiguration, template: (id: String, data: JSONValue)?) throws -> JSONValue {
        let message = email.message
        func address(_ address: EmailAddress) -> JSONValue {
            var object: [String: JSONValue] = ["email": .string(address.smtpAddress)]
            if let name = address.name, !name.isEmpty { object["name"] = .string(name) }
            return .object(object)
        }
        var personalization: [String: JSONValue] = [:]
        if !message.to.isEmpty { personalization["to"] = .array(message.to.map(address)) }
        if !message.cc.isEmpty { personalization["cc"] = .array(message.cc.map(address)) }
        if !message.bcc.isEmpty { personalization["bcc"] = .array(message.bcc.map(address)) }
        if personalization["to"] == nil {
            // SendGrid needs a `to`: the first cc or bcc takes its place.
            let first = message.cc.first ?? message.bcc.first
            guard let first else { throw NimbusError(.invalidArgument, "the message has no recipient") }
            personalization["to"] = .array([address(first)])
        }
        var body: [String: JSONValue] = ["from": address(message.from)]
        if let template {
            body["template_id"] = .string(template.id)
            personalization["dynamic_template_data"] = template.data
        } else {
            body["subject"] = .string(message.subject)
            var content: [JSONValue] = []
            if let text = message.text { content.append(["type": "text/plain", "value": .string(text)]) }
            if let html = message.html { content.append(["type": "text/html", "value": .string(html)]) }
            if !content.isEmpty { body["content"] = .array(content) }
        }
        if message.replyTo.count == 1 { body["reply_to"] = address(message.replyTo[0]) }
        if message.replyTo.count > 1 { body["reply_to_list"] = .array(message.replyTo.map(address)) }
        if !message.attachments.isEmpty {
            body["attachments"] = .array(message.attachments.map { attachment in
                var object: [String: JSONValue] = ["content": .string(Data(attachment.data).base64EncodedString()), "type": .string(attachment.contentType),
                                                   "filename": .string(attachment.filename), "disposition": attachment.isInline ? "inline" : "attachment"]
                if let id = attachment.contentID { object["content_id"] = .string(id) }
                return .object(object)
            })
        }
        var headers: [String: JSONValue] = [:]
        for header in message.headers {
            guard !reservedHeaders.contains(header.name.lowercased()) else {
                throw NimbusError(.invalidArgument, "SendGrid does not take the header '\(header.name)'; set the message's field instead")
            }
            headers[header.name] = .string(header.value)
        }
        if let unsubscribe = email.document.header("List-Unsubscribe") { headers["List-Unsubscribe"] = .string(unsubscribe.replacingOccurrences(of: "\r\n ", with: " ")) }
        if let post = email.document.header("List-Unsubscribe-Post") { headers["List-Unsubscribe-Post"] = .string(post) }
        if !headers.isEmpty { body["headers"] = .object(headers) }
        if !message.tags.isEmpty {
            guard message.tags.count <= 10, message.tags.allSatisfy({ $0.count <= 255 }) else {
                throw NimbusError(.invalidArgument, "SendGrid takes at most 10 categories of at most 255 characters")
            }
            body["categories"] = .array(message.tags.map(JSONValue.string))
        }
        if !message.metadata.isEmpty {
            let encoded = try JSONEncoder().encode(message.metadata)
            guard encoded.count <= 10_000 else { throw NimbusError(.invalidArgument, "SendGrid's custom args are limited to 10,000 bytes; these take \(encoded.count)") }
            // On the personalization, where the spec types them as an object (the message-level field is typed `string`).
            personalization["custom_args"] = .object(message.metadata.mapValues(JSONValue.string))
        }
        body["personalizations"] = .array([.object(personalization)])
        if configuration.sandbox { body["mail_settings"] = ["sandbox_mode": ["enable": true]] }
        if let pool = configuration.ipPool { body["ip_pool_name"] = .string(pool) }
        if let group = configuration.unsubscribeGroup { body["asm"] = ["group_id": .number(Double(group))] }
        return .object(body)
    }
}

/// SendGrid's signed Event Webhook: ECDSA P-256 over the timestamp followed by the raw body, with the
/// public key SendGrid shows in its settings; events normalized to ``EmailEvent``.
///
/// ```swift
/// let webhook = try SendGridEventWebhook(publicKeyBase64: settings.verificationKey)
/// let events = try webhook.events(body: body, signature: request.header("X-Twilio-Email-Event-Webhook-Signature"),
///                                 timestamp: request.header("X-Twilio-Email-Event-Webhook-Timestamp"))
/// ```
public struct SendGridEventWebhook: Sendable {
    public static let signatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
    public static let timestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"

    let publicKey: P256.Signing.PublicKey
    /// How far the signed timestamp may be from now (replays older than this are refused).
    public var tolerance: Duration

    /// Creates a verifier from the base64 DER public key SendGrid gives (`MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE…`).
    public init(publicKeyBase64: String, tolerance: Duration = .seconds(300)) throws {
        guard let der = Data(base64Encoded: publicKeyBase64.trimmingCharacters(in: .whitespacesAndNewlines)),
              let key = try? P256.Signing.PublicKey(derRepresentation: der) else {
            throw NimbusError(.invalidArgument, "the SendGrid verification key is not a base64 P-256 public key (DER)")
        }
        publicKey = key
        self.tolerance = tolerance
    }

    /// Checks the signature and the timestamp's age.
    /// - Throws: `unauthenticated` when the signature or the time is wrong.
    public func verify(body: [UInt8], signature: String?, timestamp: String?, now: Date = Date()) throws {
        guard let signature, let timestamp, !signature.isEmpty, !timestamp.isEmpty else {
            throw NimbusError(.unauthenticated, "the SendGrid event webhook request has no signature or timestamp header")
        }
        let sent = try WebhookSignature.timestamp(timestamp, header: "X-Twilio-Email-Event-Webhook-Timestamp")
        try WebhookSignature.checkAge(sent, tolerance: tolerance, now: now, source: "the SendGrid webhook")
        guard let der = Data(base64Encoded: signature), let parsed = try? P256.Signing.ECDSASignature(derRepresentation: der) else {
            throw NimbusError(.unauthenticated, "the SendGrid webhook signature is not a base64 DER ECDSA signature")
        }
        guard publicKey.isValidSignature(parsed, for: Array(timestamp.utf8) + body) else {
            throw NimbusError(.unauthenticated, "the SendGrid webhook signature does not match the verification key")
        }
    }

    /// Verifies, then reads the events (unknown event types are kept, not refused).
    public func events(body: [UInt8], signature: String?, timestamp: String?, now: Date = Date()) throws -> [EmailEvent] {
        try verify(body: body, signature: signature, timestamp: timestamp, now: now)
        return try Self.parse(body)
    }

    static let standardFields: Set<String> = ["email", "timestamp", "event", "sg_event_id", "sg_message_id", "category", "reason", "response",
                                              "status", "url", "type", "ip", "useragent", "smtp-id", "tls", "cert_err", "attempt", "asm_group_id",
                                              "bounce_classification", "sg_content_type", "marketing_campaign_id", "marketing_campaign_name", "url_offset",
                                              "sg_machine_open", "pool"]

    /// Reads an event batch.
    /// - Throws: `invalidArgument` when the body is not SendGrid's JSON array of events.
    public static func parse(_ body: [UInt8]) throws -> [EmailEvent] {
        guard let items = (try? JSONValue.parse(body))?.arrayValue else {
            throw NimbusError(.invalidArgument, "the SendGrid event webhook body is not a JSON array of events")
        }
        return try items.map { item in
            guard let email = item["email"]?.stringValue, let event = item["event"]?.stringValue else {
                throw NimbusError(.invalidArgument, "a SendGrid event has no email or event field: \(item)")
            }
            let kind: EmailEvent.Kind = switch event {
            case "processed": .processed
            case "delivered": .delivered
            case "deferred": .deferred
            case "bounce": .bounced
            case "dropped": .dropped
            case "open": .opened
            case "click": .clicked
            case "spamreport": .complained
            case "unsubscribe", "group_unsubscribe": .unsubscribed
            case "group_resubscribe": .resubscribed
            default: EmailEvent.Kind(rawValue: event)
            }
            let categories: [String] = item["category"]?.arrayValue?.compactMap(\.stringValue) ?? item["category"]?.stringValue.map { [$0] } ?? []
            var metadata: [String: String] = [:]
            for (key, value) in item.objectValue ?? [:] where !standardFields.contains(key) {
                if let text = value.stringValue { metadata[key] = text }
            }
            return EmailEvent(kind: kind, recipient: email, timestamp: Date(timeIntervalSince1970: item["timestamp"]?.numberValue ?? 0),
                              providerMessageID: item["sg_message_id"]?.stringValue, eventID: item["sg_event_id"]?.stringValue,
                              reason: item["reason"]?.stringValue ?? item["response"]?.stringValue, url: item["url"]?.stringValue,
                              tags: categories, metadata: metadata)
        }
    }
}

extension URLOpenerRegistry where Resource == any EmailDriver {
    /// Adds `sendgrid://API_KEY@api.sendgrid.com?sandbox=true` (the key may also come from `SENDGRID_API_KEY`).
    public func withSendGrid() -> Self {
        var copy = self
        copy.register("sendgrid") { url in
            guard let key = url.user.map(Secret.init) ?? url.password ?? ProcessInfo.processInfo.environment["SENDGRID_API_KEY"].map(Secret.init) else {
                throw NimbusError(.invalidArgument, "sendgrid:// needs an API key: sendgrid://SG.xxxx@api.sendgrid.com or SENDGRID_API_KEY")
            }
            let host = url.host ?? "api.sendgrid.com"
            let scheme = try url.options.bool("tls") == false ? "http" : "https"
            return SendGridEmailDriver(configuration: .init(apiKey: key, baseURL: "\(scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")",
                                                            sandbox: try url.options.bool("sandbox") ?? false, ipPool: url.options.string("ipPool")))
        }
        return copy
    }
}
