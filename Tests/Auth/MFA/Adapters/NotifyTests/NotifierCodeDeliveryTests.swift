import Foundation
import NimbusCore
import NimbusEmail
import NimbusEmailMemory
import NimbusMFA
import NimbusMFANotify
import NimbusNotify
import NimbusSMS
import NimbusSMSMemory
import NimbusTemplate
import NimbusTesting
import Testing

@Suite("One-time codes through NimbusNotify")
struct NotifierCodeDeliveryTests {
    static let templates = try! TemplateEngine(templates: [
        "sign-in-code.subject": "Your sign-in code",
        "sign-in-code.text": "Your code is {{code}}. It expires in {{minutes}} minutes.",
        "sign-in-code.sms": "{{code}} is your code ({{minutes}} min)",
    ])

    @Test("an email destination gets one email with the code, an SMS destination one text; the delivery log keeps no code")
    func delivery() async throws {
        let email = MemoryEmailDriver(), sms = MemorySMSDriver()
        let log = RecordingLog(try SQLiteDeliveryLog())
        let notifier = Notifier(templates: Self.templates, email: [EmailClient(driver: email)], emailFrom: try EmailAddress("login@example.com"),
                                sms: [SMSClient(driver: sms)], smsFrom: .service("MG1"), log: log)
        let codes = try OneTimeCodes(deliver: OneTimeCodes.notifier(notifier, template: "sign-in-code"))

        try await codes.send(to: .email("ada@example.com"), account: "ada", purpose: "sign-in")
        #expect(email.sent.count == 1 && sms.sent.isEmpty)
        let text = String(decoding: try #require(email.sent.first).document.bytes, as: UTF8.self)
        let code = try #require(text.firstMatch(of: /Your code is (\d{6})\. It expires in 10 minutes\./)?.1)
        #expect(email.sent.first?.recipients.map(\.description) == ["ada@example.com"])
        try await codes.verify(String(code), account: "ada", purpose: "sign-in")

        try await codes.send(to: .sms("+14155550100"), account: "bob", purpose: "sign-in")
        #expect(sms.sent.count == 1 && email.sent.count == 1)
        let body = try #require(sms.sent.first?.body)
        let smsCode = try #require(body.firstMatch(of: /^(\d{6}) is your code \(10 min\)$/)?.1)
        try await codes.verify(String(smsCode), account: "bob", purpose: "sign-in")

        let written = log.written.withLock { $0 }
        #expect(written.count == 2, "one delivered attempt per send")
        for line in written { #expect(!line.contains(String(code)) && !line.contains(String(smsCode)), "\(line)") }
    }

    @Test("a notifier without the channel fails the send; an unparsable number is refused")
    func failures() async throws {
        let notifier = Notifier(templates: Self.templates, log: try SQLiteDeliveryLog())
        let codes = try OneTimeCodes(deliver: OneTimeCodes.notifier(notifier, template: "sign-in-code"))
        let noEmail = await #expect(throws: NimbusError.self) { try await codes.send(to: .email("ada@example.com"), account: "ada", purpose: "sign-in") }
        #expect(noEmail?.code == .failedPrecondition || noEmail?.code == .unavailable || noEmail?.code == .invalidArgument)
        await #expect(throws: NimbusError.self) { try await codes.send(to: .sms("not a number"), account: "eve", purpose: "sign-in") }
    }
}

/// A delivery log that remembers everything it is asked to record, to prove what reaches it.
final class RecordingLog: DeliveryLog {
    let base: SQLiteDeliveryLog
    let written = Mutex<[String]>([])
    init(_ base: SQLiteDeliveryLog) { self.base = base }
    func delivered(key: String, channel: NotificationChannel) async throws -> (provider: String, providerID: String?)? { try await base.delivered(key: key, channel: channel) }
    func record(key: String, recipient: String, attempt: NotificationOutcome.Attempt) async throws {
        written.withLock { $0.append("\(key) \(recipient) \(attempt)") }
        try await base.record(key: key, recipient: recipient, attempt: attempt)
    }
    func attempts(key: String) async throws -> [NotificationOutcome.Attempt] { try await base.attempts(key: key) }
    func claim(key: String, channel: NotificationChannel) async throws -> Bool { try await base.claim(key: key, channel: channel) }
    func release(key: String, channel: NotificationChannel) async throws { try await base.release(key: key, channel: channel) }
}

import Synchronization
