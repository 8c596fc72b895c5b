import Foundation
import NimbusChat
import NimbusCore
import NimbusEmail
import NimbusPush
import NimbusSMS
import NimbusTemplate
import Synchronization
import Testing
import NimbusEmailMemory
import NimbusSMSMemory
import NimbusPushMemory
import NimbusChatMemory
@testable import NimbusNotify

/// An email driver that fails in a chosen way, counting its calls.
final class FailingEmailDriver: EmailDriver {
    let provider: String
    let error: NimbusError
    let calls = Mutex(0)
    init(provider: String, error: NimbusError) {
        self.provider = provider
        self.error = error
    }
    func send(_ email: OutgoingEmail) async throws -> EmailReceipt {
        calls.withLock { $0 += 1 }
        throw error
    }
}

@Suite("Notifier")
struct NotifyTests {
    static let templates = try! TemplateEngine(templates: [
        "shipped.subject": "Order {{order}} shipped",
        "shipped.html": "<p>Hi {{name}}, order {{order}} is on its way.</p>",
        "shipped.sms": "Order {{order}} shipped",
        "shipped.push-title": "Shipped",
        "shipped.push": "Order {{order}} is on its way",
        "shipped.pt.subject": "Pedido {{order}} enviado",
    ])
    static let data: JSONValue = ["name": "Zoë", "order": 1042]

    static func recipient(preferred: [NotificationChannel]? = nil, tokens: [String] = ["token-1"]) throws -> NotificationRecipient {
        NotificationRecipient(id: "user-1", email: try EmailAddress("zoe@example.org"), phone: try PhoneNumber("+14155550100"), pushTokens: tokens,
                              locale: "pt-BR", preferredChannels: preferred)
    }

    @Test func singleRoutingFailsOverBetweenProvidersAndStopsAtTheFirstChannelThatDelivers() async throws {
        let broken = FailingEmailDriver(provider: "ses", error: NimbusError(.resourceExhausted, "SES throttled", retryable: false))
        let smtp = MemoryEmailDriver()
        let sms = MemorySMSDriver()
        let log = try SQLiteDeliveryLog()
        let notifier = Notifier(templates: Self.templates, email: [EmailClient(driver: broken, configuration: .init(retry: .none)), EmailClient(driver: smtp)],
                                emailFrom: try EmailAddress("Shop <shop@example.com>"), sms: [SMSClient(driver: sms)], smsFrom: .service("MG1"), log: log)
        let outcome = try await notifier.send(NotificationRequest(template: "shipped", data: Self.data, recipient: try Self.recipient(preferred: [.email, .sms]),
                                                                  channels: [.email, .sms], idempotencyKey: "order-1042-shipped"))
        #expect(outcome.deliveredChannels == [.email] && outcome.attempts.map(\.provider) == ["ses", "memory"])
        #expect(smtp.sent.first?.document.header("Subject") == "Pedido 1042 enviado", "pt-BR → pt variant")
        #expect(sms.sent.isEmpty, "single routing stops at the first channel that delivers")
        // The same key again: nothing is sent, the earlier delivery is replayed.
        let again = try await notifier.send(NotificationRequest(template: "shipped", data: Self.data, recipient: try Self.recipient(preferred: [.email, .sms]),
                                                                channels: [.email, .sms], idempotencyKey: "order-1042-shipped"))
        #expect(again.attempts.count == 1 && again.attempts[0].replayed && smtp.sent.count == 1 && broken.calls.withLock { $0 } == 1)
        #expect(try await log.attempts(key: "order-1042-shipped").map { "\($0.provider):\($0.delivered)" } == ["ses:false", "memory:true"])
    }

    @Test func anUncertainFailureDoesNotFailOverAndAllRoutingUsesEveryChannel() async throws {
        let uncertain = FailingEmailDriver(provider: "smtp", error: NimbusError(.unavailable, "no reply after DATA", retryable: false))
        let backup = MemoryEmailDriver()
        let push = MemoryPushDriver()
        let sms = MemorySMSDriver()
        let notifier = Notifier(templates: Self.templates, email: [EmailClient(driver: uncertain, configuration: .init(retry: .none)), EmailClient(driver: backup)],
                                emailFrom: try EmailAddress("shop@example.com"), sms: [SMSClient(driver: sms)], smsFrom: .service("MG1"),
                                push: [PushClient(driver: push)], log: try SQLiteDeliveryLog())
        let outcome = try await notifier.send(NotificationRequest(template: "shipped", data: Self.data, recipient: try Self.recipient(),
                                                                  channels: [.email, .push, .sms], routing: .all, idempotencyKey: "k-all"))
        #expect(backup.sent.isEmpty, "the first SMTP server may have taken it: no second copy from the backup")
        #expect(Set(outcome.deliveredChannels) == [.push, .sms] && push.sent.first?.notification.title == "Shipped" && sms.sent.first?.body == "Order 1042 shipped")
        // Nothing reachable: a clear error; dead push tokens only: every channel failed.
        let nobody = NotificationRecipient(id: "ghost")
        await #expect(throws: NimbusError.self) { try await notifier.send(NotificationRequest(template: "shipped", data: Self.data, recipient: nobody, idempotencyKey: "k2")) }
        let dead = NotificationRecipient(id: "u", pushTokens: ["invalid-1"])
        let failed = await #expect(throws: NimbusError.self) {
            try await notifier.send(NotificationRequest(template: "shipped", data: Self.data, recipient: dead, channels: [.push], idempotencyKey: "k3"))
        }
        #expect(failed?.code == .failedPrecondition && failed?.message.contains("dead") == true)
    }

    @Test func concurrentSendsWithOneKeyDeliverOnce() async throws {
        let email = MemoryEmailDriver()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let notifier = Notifier(templates: Self.templates, email: [EmailClient(driver: email)], emailFrom: try EmailAddress("shop@example.com"),
                                log: try SQLiteDeliveryLog(path: path))
        let request = NotificationRequest(template: "shipped", data: Self.data, recipient: try Self.recipient(), channels: [.email], idempotencyKey: "same")
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<10 { group.addTask { (try? await notifier.send(request)) != nil } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(email.sent.count == 1, "ten concurrent sends, one email")
        #expect(results.contains(true))
        // After the first finished, a retry gets the replay.
        #expect(try await notifier.send(request).attempts.first?.replayed == true)
    }
}
